//! driftless-helm: Helm charts rendered in-process, in Rust.
//!
//! The pieces, each in its own module:
//!
//! - [`value`]: the Go types templates work on ([`Value`]), with Go's `%v` printing.
//! - [`funcs`]: the calling convention of template functions ([`Func`], [`Env`], [`Args`]).
//!
//! Why not an existing crate: `gotmpl` (a port of Go's `text/template`, with Go's exec tests)
//! was judged as a base and not taken, because Helm needs what its design leaves out:
//! execution errors positioned at the action (`x.yaml:LINE:COL: executing … at <…>`), functions
//! that run templates (`include`, `tpl`) and read the render's context, values with methods
//! (`.Files.Get`, `.Capabilities.APIVersions.Has`), Go maps shared by reference (`set` on
//! `.Values`), and Go's `int`/`int64`/`float64` distinctions. `gtmpl` lacks the same and is not
//! maintained. So the template language is implemented here, following Go's own
//! `text/template` and `fmt` sources for semantics and messages.

#![warn(missing_docs)]

pub mod chart;
pub mod funcs;
pub mod ignore;
pub mod schema;
pub mod value;

pub use funcs::{Args, Env, Func, FuncMap};
pub use value::{IntKind, Map, Object, Value};
