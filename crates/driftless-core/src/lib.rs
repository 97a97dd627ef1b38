//! driftless vocabulary shared by every stage of the loop.
//!
//! This crate does no I/O (except reading application spec files, [`spec::load_path`]): it
//! holds the types that flow from one stage to the next
//! (`Source -> Render -> Gate -> Plan -> Apply -> Verify -> Record`) and the pure functions
//! over them (planning, ordering, diff normalisation, health assessment), so they can be tested
//! with fixtures.

pub mod diff;
pub mod duration;
pub mod error;
pub mod health;
pub mod object;
pub mod plan;
pub mod revision;
pub mod spec;
pub mod window;
pub mod yaml;

pub use diff::{IgnoreRule, ObjectDiff, normalize_for_compare, object_diff};
pub use error::{Diagnostic, Error};
pub use health::{HealthReport, HealthStatus, assess, worst};
pub use object::{DesiredObject, DesiredSet, ObjectRef, Origin};
pub use plan::{Action, Plan, PlanEntry, PlanInput, PruneRefusal, PruneSafety, Step, check_prune};
pub use revision::Revision;
pub use spec::{Application, RefKind, classify_ref};
