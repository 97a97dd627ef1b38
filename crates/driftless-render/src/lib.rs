//! driftless-render: turns an application directory of a checked-out revision into a
//! [`DesiredSet`].
//!
//! ```text
//! render(root, "apps/web", &RenderOptions::default()) -> Rendered { set, warnings }
//! ```
//!
//! - **Plain directories** (the `plain` module): `*.yaml`, `*.yml`, `*.json` found
//!   recursively and read in path order; multi-document YAML, JSON streams, `List` kinds
//!   flattened. Documents that are not Kubernetes objects (no `apiVersion`/`kind`) are skipped
//!   with a warning; objects without `metadata.name` are errors.
//! - **Kustomize**: any directory holding `kustomization.yaml` (`.yml`, `Kustomization`) —
//!   the application path itself or a subdirectory — is built with `kustomize build` or
//!   `kubectl kustomize` after a confinement check of its whole graph (see the `kustomize`
//!   module's docs for the rules: no remote bases by default, no plugins, no Helm, no cycles,
//!   depth ≤ 20, nothing outside the repository).
//! - **Confinement**: the application path must be relative without `..`; every file read,
//!   through symlinks or `..`, must resolve inside the repository root.
//! - **Limits**: 8 MiB per file, 64 MiB per render (files read plus Kustomize output), YAML
//!   budgets against alias and nesting bombs, a Kustomize timeout.
//! - **Uniqueness**: two documents declaring the same object (same group, kind, namespace as
//!   written, name) are an error naming both origins — applying both would let file order
//!   silently pick a winner.
//! - **Cache**: [`RenderCache`] keyed by [`CacheKey`] (commit, path, options digest);
//!   [`digest`] gives a stable hash of a desired set for history.
//!
//! The application's default namespace is not filled in here; the engine does that, which
//! keeps renders (and cache entries) independent of it.
//!
//! Rendering performs no network access unless remote bases are explicitly allowed, and never
//! talks to a cluster.

#![warn(missing_docs)]

mod cache;
mod confine;
mod error;
mod kustomize;
mod manifest;
mod options;
mod plain;
mod process;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use driftless_core::object::DesiredSet;
use serde::{Deserialize, Serialize};

pub use cache::{CacheKey, RenderCache, digest};
pub use error::{NextStep, RenderError};
pub use options::{
    DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_TOTAL_BYTES, DEFAULT_TIMEOUT, MAX_KUSTOMIZE_DEPTH, RenderOptions,
};

/// The result of a successful render.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    /// The objects, in deterministic order.
    pub set: DesiredSet,
    /// Things the user should know that did not stop the render (skipped documents, ...),
    /// each starting with `file:line:`.
    pub warnings: Vec<String>,
}

static RENDERS: AtomicU64 = AtomicU64::new(0);

/// How many renders this process has run (cache hits are not renders). Exposed as the
/// `driftless_renders_total` metric, so that an idle daemon can be seen to render nothing.
pub fn renders_total() -> u64 {
    RENDERS.load(Ordering::Relaxed)
}

/// Renders the application at `path` (relative to the repository checkout at `root`).
///
/// Deterministic: the same tree, path and options give the same result.
pub fn render(root: &Path, path: &str, options: &RenderOptions) -> Result<Rendered, RenderError> {
    RENDERS.fetch_add(1, Ordering::Relaxed);
    let root = confine::Root::new(root)?;
    let (app, app_rel) = root.app_path(path)?;
    let mut out = manifest::Collector::default();
    plain::render_path(&root, &app, &app_rel, options, &mut out)?;
    let set = DesiredSet { objects: out.objects };
    check_unique(&set)?;
    Ok(Rendered {
        set,
        warnings: out.warnings,
    })
}

/// Refuses two declarations of the same object.
fn check_unique(set: &DesiredSet) -> Result<(), RenderError> {
    let mut seen = HashMap::with_capacity(set.objects.len());
    for obj in &set.objects {
        // Rendered objects always have a ref (names are checked while parsing).
        let Some(r) = obj.object_ref() else { continue };
        if let Some(first) = seen.insert(r.clone(), &obj.origin) {
            return Err(RenderError::DuplicateObject {
                object: r.to_string(),
                first: first.to_string(),
                second: obj.origin.to_string(),
            });
        }
    }
    Ok(())
}
