//! Confinement: every path the renderer reads must resolve inside the repository root.
//!
//! The check is done on canonical paths (`..` and symlinks resolved by the OS), never on the
//! lexical spelling, so `base/../../etc` and a symlink to `/etc` are caught the same way
//! (Argo CD CVE-2022-24904, CVE-2022-24348). Relative names shown to users are computed from
//! the *logical* path (as written in the repository), so an error points at the symlink
//! rather than its target.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::RenderError;

/// The canonical repository root.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    canon: PathBuf,
}

impl Root {
    /// Canonicalizes the repository root.
    pub(crate) fn new(root: &Path) -> Result<Root, RenderError> {
        let canon = root.canonicalize().map_err(|source| RenderError::Io {
            file: "<repository root>".into(),
            source,
        })?;
        Ok(Root { canon })
    }

    /// The canonical root.
    pub(crate) fn path(&self) -> &Path {
        &self.canon
    }

    /// Whether a canonical path is the root or below it.
    pub(crate) fn contains(&self, canonical: &Path) -> bool {
        canonical.starts_with(&self.canon)
    }

    /// A canonical path inside the root shown relative to it (`.` for the root itself).
    pub(crate) fn rel(&self, canonical: &Path) -> String {
        match canonical.strip_prefix(&self.canon) {
            Ok(r) if r.as_os_str().is_empty() => ".".to_owned(),
            Ok(r) => r.to_string_lossy().into_owned(),
            // Never show where outside the root something points: only that it does.
            Err(_) => "<outside the repository>".to_owned(),
        }
    }

    /// Validates the application path and returns `(canonical path, normalized relative path)`.
    pub(crate) fn app_path(&self, path: &str) -> Result<(PathBuf, String), RenderError> {
        let invalid = |reason: &str| RenderError::InvalidPath {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if path.contains('\0') {
            return Err(invalid("it contains a NUL byte"));
        }
        let mut parts = Vec::new();
        for c in Path::new(path).components() {
            match c {
                Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => return Err(invalid("it contains `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(invalid("it is absolute"));
                }
            }
        }
        let rel = if parts.is_empty() {
            ".".to_owned()
        } else {
            parts.join("/")
        };
        let joined = self.canon.join(path);
        let canon = match joined.canonicalize() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RenderError::NotFound {
                    file: rel,
                    hint: "; check the application path and the revision".into(),
                });
            }
            Err(source) => return Err(RenderError::Io { file: rel, source }),
        };
        if !self.contains(&canon) {
            return Err(RenderError::OutsideRepository {
                file: rel,
                reason: "the application path goes through a symlink leaving the repository".into(),
            });
        }
        Ok((canon, rel))
    }
}

/// Joins a relative display path and a child name.
pub(crate) fn join_rel(dir: &str, name: &str) -> String {
    if dir == "." || dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_path_validation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps/web")).unwrap();
        let root = Root::new(dir.path()).unwrap();
        let (_, rel) = root.app_path("apps/./web").unwrap();
        assert_eq!(rel, "apps/web");
        assert_eq!(root.app_path("").unwrap().1, ".");
        assert_eq!(root.app_path(".").unwrap().1, ".");
        for bad in ["../x", "apps/../..", "/etc", "apps/../apps/web", "a\0b"] {
            assert!(
                matches!(root.app_path(bad), Err(RenderError::InvalidPath { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(root.app_path("nope"), Err(RenderError::NotFound { .. })));
    }

    #[test]
    fn join_rel_handles_root() {
        assert_eq!(join_rel(".", "a.yaml"), "a.yaml");
        assert_eq!(join_rel("apps", "a.yaml"), "apps/a.yaml");
    }
}
