//! Render options and their digest (part of the cache key).

use std::time::Duration;

use sha2::{Digest, Sha256};

/// Default per-file limit: 8 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Default limit for all files of one render (and for Kustomize output): 64 MiB.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// Default timeout for one Kustomize run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Deepest kustomization nesting accepted (Flux CVE-2022-24878 was an unbounded loop).
pub const MAX_KUSTOMIZE_DEPTH: usize = 20;

/// How to render one application.
///
/// Filling in the application's default namespace is deliberately *not* an option here: the
/// engine does it, so the cached render stays independent of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Build directories holding a kustomization with Kustomize. When false, such a directory
    /// is an error (never silently read as plain YAML: its patches would become objects).
    pub kustomize: bool,
    /// Let Kustomize fetch remote bases (git URLs, `github.com/...`). Off by default: it makes
    /// the render depend on something other than the commit and lets a repository make the
    /// driftless host fetch arbitrary URLs.
    pub allow_remote_bases: bool,
    /// Wall-clock limit for one Kustomize process; it is killed when exceeded.
    pub timeout: Duration,
    /// Largest single file accepted.
    pub max_file_bytes: u64,
    /// Largest total of all files read (plain), and largest Kustomize output.
    pub max_total_bytes: u64,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            kustomize: true,
            allow_remote_bases: false,
            timeout: DEFAULT_TIMEOUT,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

impl RenderOptions {
    /// A hex sha256 over every option that can change the output.
    ///
    /// The timeout is included: a render that succeeds only with a longer timeout should not
    /// be served from the cache to an application configured with a shorter one (it would
    /// hide a timeout the user asked for). The format is versioned (`v1`) so a change to the
    /// renderer's semantics can invalidate old cache entries by bumping it.
    pub fn digest(&self) -> String {
        let text = format!(
            "driftless-render/v1\nkustomize={}\nremote={}\ntimeout_ms={}\nmax_file={}\nmax_total={}\n",
            self.kustomize,
            self.allow_remote_bases,
            self.timeout.as_millis(),
            self.max_file_bytes,
            self.max_total_bytes
        );
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_changes_with_options() {
        let a = RenderOptions::default();
        let b = RenderOptions {
            allow_remote_bases: true,
            ..RenderOptions::default()
        };
        assert_eq!(a.digest(), RenderOptions::default().digest());
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 64);
    }

    #[test]
    fn defaults_are_safe() {
        let o = RenderOptions::default();
        assert!(!o.allow_remote_bases);
        assert_eq!(o.timeout, Duration::from_secs(60));
        assert_eq!(o.max_file_bytes, 8 << 20);
        assert_eq!(o.max_total_bytes, 64 << 20);
    }
}
