//! A resolved Git revision: what the Source stage hands to Render and Record.

use serde::{Deserialize, Serialize};

/// One commit that an application's ref resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// Full hex commit id.
    pub commit: String,
    /// The ref the user asked for (`main`, `v1.2.3`, `~1.2`, a SHA), as written.
    pub requested_ref: String,
    /// What the ref resolved through, e.g. `refs/heads/main` or `refs/tags/v1.2.3`.
    pub resolved_ref: String,
    /// Commit author as `Name <email>`.
    pub author: String,
    /// First line of the commit message.
    pub message: String,
    /// Commit time, seconds since the Unix epoch.
    pub time: i64,
}
