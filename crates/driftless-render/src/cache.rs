//! Render cache and the desired-set digest.
//!
//! Rendering is a pure function of (commit, path, options) (architecture invariant 6), so a
//! render can be reused for as long as the key is equal. Decisions:
//! - The file name is the sha256 of the key, never anything the repository controls, so one
//!   application cannot address another's entry through a crafted path (Argo CD
//!   CVE-2023-40026). The key is stored in the entry too and compared on read.
//! - Only successes are cached: a failure might be transient (a timeout), and re-rendering a
//!   broken revision is cheap.
//! - Writes go to a temporary file that is renamed into place, so a crash never leaves a
//!   truncated entry; an unreadable or mismatched entry is a miss and gets overwritten.
//! - The directory is created private (0700): rendered Secrets are in the entries.
//! - A failure to *store* an entry does not fail the render; it is reported as a warning.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use driftless_core::object::DesiredSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::RenderError;
use crate::{RenderOptions, Rendered};

/// Identity of one render: the inputs it is a pure function of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheKey {
    /// The commit id.
    pub commit: String,
    /// The application path inside the repository.
    pub path: String,
    /// [`RenderOptions::digest`].
    pub options_digest: String,
}

impl CacheKey {
    /// Builds a key from the commit, the application path and the options.
    pub fn new(commit: &str, path: &str, options: &RenderOptions) -> CacheKey {
        CacheKey {
            commit: commit.to_owned(),
            path: path.to_owned(),
            options_digest: options.digest(),
        }
    }

    /// The entry's file name: a hash, so no part of the key reaches the file system.
    pub fn file_name(&self) -> String {
        let mut h = Sha256::new();
        // Length-prefixed fields: ("ab","c") and ("a","bc") must not collide.
        for field in [&self.commit, &self.path, &self.options_digest] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        format!("{}.json", hex::encode(h.finalize()))
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: CacheKey,
    rendered: Rendered,
}

/// A directory of rendered desired sets keyed by [`CacheKey`].
#[derive(Debug, Clone)]
pub struct RenderCache {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl RenderCache {
    /// Opens (creating if needed, mode 0700) a cache directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<RenderCache, RenderError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| RenderError::Cache {
            file: dir.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|source| RenderError::Cache {
                file: dir.clone(),
                source,
            })?;
        }
        Ok(RenderCache { dir })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored render for `key`, if there is a readable, matching entry.
    pub fn get(&self, key: &CacheKey) -> Option<Rendered> {
        let bytes = fs::read(self.dir.join(key.file_name())).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        (entry.key == *key).then_some(entry.rendered)
    }

    /// Stores a render under `key` (atomically replacing any previous entry).
    pub fn put(&self, key: &CacheKey, rendered: &Rendered) -> Result<(), RenderError> {
        let path = self.dir.join(key.file_name());
        let temp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let entry = Entry {
            key: key.clone(),
            rendered: rendered.clone(),
        };
        let write = || -> std::io::Result<()> {
            let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
            // No fsync: this is a cache. The rename keeps readers from seeing a partial
            // entry; an entry torn by a power cut fails to parse or to match its key and is
            // rendered again.
            let mut f = fs::File::create(&temp)?;
            f.write_all(&bytes)?;
            fs::rename(&temp, &path)
        };
        write().map_err(|source| {
            let _ = fs::remove_file(&temp);
            RenderError::Cache { file: path, source }
        })
    }

    /// Returns the cached render for `key`, or runs `render`, stores its success and returns it.
    pub fn get_or_render<F>(&self, key: &CacheKey, render: F) -> Result<Rendered, RenderError>
    where
        F: FnOnce() -> Result<Rendered, RenderError>,
    {
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let mut rendered = render()?;
        if let Err(e) = self.put(key, &rendered) {
            rendered.warnings.push(e.to_string());
        }
        Ok(rendered)
    }
}

/// A hex sha256 of a desired set, for history and change detection.
///
/// Computed over the objects in render order, each as canonical JSON (object keys sorted,
/// no whitespace). Origins are left out: moving a manifest to another file does not change
/// what the cluster should look like.
pub fn digest(set: &DesiredSet) -> String {
    let mut h = Sha256::new();
    let mut buf = String::new();
    for obj in &set.objects {
        buf.clear();
        canonical_json(&obj.object, &mut buf);
        h.update((buf.len() as u64).to_be_bytes());
        h.update(buf.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Writes `v` as JSON with object keys sorted, whatever the map's insertion order.
fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftless_core::object::{DesiredObject, Origin};
    use serde_json::json;

    fn set(obj: Value, file: &str) -> DesiredSet {
        DesiredSet {
            objects: vec![DesiredObject {
                object: obj,
                origin: Origin {
                    file: file.into(),
                    line: 1,
                },
            }],
        }
    }

    #[test]
    fn digest_ignores_key_order_and_origin() {
        let a = set(json!({"a": 1, "b": {"c": 2, "d": 3}}), "x.yaml");
        let b = set(json!({"b": {"d": 3, "c": 2}, "a": 1}), "y.yaml");
        assert_eq!(digest(&a), digest(&b));
        let c = set(json!({"a": 2, "b": {"c": 2, "d": 3}}), "x.yaml");
        assert_ne!(digest(&a), digest(&c));
    }

    #[test]
    fn file_names_are_hashes() {
        let k = CacheKey::new("abc", "../../etc/passwd", &RenderOptions::default());
        let name = k.file_name();
        assert_eq!(name.len(), 64 + 5);
        assert!(name.chars().all(|c| c.is_ascii_hexdigit()
            || c == '.'
            || c == 'j'
            || c == 's'
            || c == 'o'
            || c == 'n'));
        let k2 = CacheKey::new("ab", "c../../etc/passwd", &RenderOptions::default());
        assert_ne!(name, k2.file_name());
    }

    #[test]
    fn cache_hit_skips_render_and_corrupt_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RenderCache::new(dir.path().join("c")).unwrap();
        let key = CacheKey::new("c1", "apps/web", &RenderOptions::default());
        let calls = std::cell::Cell::new(0);
        let render = || {
            calls.set(calls.get() + 1);
            Ok(Rendered {
                set: set(json!({"apiVersion": "v1"}), "a.yaml"),
                warnings: vec!["w".into()],
            })
        };
        let first = cache.get_or_render(&key, render).unwrap();
        let second = cache.get_or_render(&key, render).unwrap();
        assert_eq!(first, second);
        assert_eq!(calls.get(), 1);

        // Errors are not cached.
        let other = CacheKey::new("c2", "apps/web", &RenderOptions::default());
        assert!(
            cache
                .get_or_render(&other, || Err(RenderError::KustomizeMissing { dir: ".".into() }))
                .is_err()
        );
        assert!(cache.get(&other).is_none());

        fs::write(cache.dir().join(key.file_name()), b"{not json").unwrap();
        let third = cache.get_or_render(&key, render).unwrap();
        assert_eq!(third, first);
        assert_eq!(calls.get(), 2);
    }
}
