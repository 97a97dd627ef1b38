//! Decrypting every SOPS file of a checkout in place, for renderers.
//!
//! A renderer works on files: Kubernetes manifests encrypted as a whole (a `Secret` with
//! `encrypted_regex: ^(data|stringData)$`), dotenv or binary files a kustomization's
//! `secretGenerator` reads. Decrypting them where they lie, in a private temporary checkout,
//! lets every renderer read them unchanged. The checkout is the caller's to protect and delete.

use std::path::{Path, PathBuf};

use crate::{Format, Keys, MAX_INPUT_BYTES, SopsError, decrypt, is_encrypted};

/// Files visited at most (a repository larger than this is refused, not half-decrypted).
pub const MAX_FILES: usize = 100_000;

/// Why decrypting a checkout failed: the file (relative to the root) and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {source}")]
pub struct DirError {
    /// Path relative to the root, with `/` separators.
    pub file: String,
    /// Cause (never a plaintext value).
    pub source: SopsError,
}

/// Decrypts, in place, every SOPS-encrypted regular file under `root` (symbolic links are
/// neither followed nor decrypted; hidden directories such as `.git` are skipped) and returns
/// the decrypted files' paths relative to `root`, sorted. Files are recognised by content (a
/// top-level `sops` map with `mac` and `version`), their format by name as sops does. A file
/// that is SOPS-encrypted but cannot be decrypted (no matching key, bad MAC) fails the whole
/// call: rendering half a secret set would be worse than rendering none.
pub fn decrypt_dir(root: &Path, keys: &Keys) -> Result<Vec<String>, DirError> {
    let found = encrypted_files(root)?;
    // Everything is decrypted (and every MAC checked) before the first file is written.
    let mut plain = Vec::with_capacity(found.len());
    for (rel, _, format, text) in &found {
        plain.push(decrypt(text, *format, keys).map_err(|source| DirError {
            file: rel.clone(),
            source,
        })?);
    }
    for ((rel, path, ..), plain) in found.iter().zip(plain) {
        std::fs::write(path, plain.as_slice()).map_err(|source| DirError {
            file: rel.clone(),
            source: SopsError::Io {
                path: rel.clone(),
                source,
            },
        })?;
    }
    Ok(found.into_iter().map(|(rel, ..)| rel).collect())
}

/// Paths (relative to `root`, sorted) of the SOPS-encrypted files [`decrypt_dir`] would
/// decrypt, without decrypting anything.
pub fn find_encrypted(root: &Path) -> Result<Vec<String>, DirError> {
    Ok(encrypted_files(root)?.into_iter().map(|(rel, ..)| rel).collect())
}

type Found = (String, PathBuf, Format, Vec<u8>);

fn encrypted_files(root: &Path) -> Result<Vec<Found>, DirError> {
    let mut files = Vec::new();
    collect(root, root, &mut files)?;
    files.sort();
    let mut out = Vec::new();
    for (rel, path) in files {
        let text = std::fs::read(&path).map_err(|source| DirError {
            file: rel.clone(),
            source: SopsError::Io {
                path: rel.clone(),
                source,
            },
        })?;
        // Cheap filter before parsing: a SOPS document names its `mac` and `sops` keys.
        if !contains(&text, b"sops") || !contains(&text, b"mac") {
            continue;
        }
        let format = Format::from_path(&path);
        if is_encrypted(&text, format) {
            out.push((rel, path, format, text));
        }
    }
    Ok(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), DirError> {
    let io = |p: &Path, source: std::io::Error| {
        let file = p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/");
        DirError {
            source: SopsError::Io {
                path: file.clone(),
                source,
            },
            file,
        }
    };
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        // `symlink_metadata` semantics: a link is neither a file nor a directory here.
        let ty = entry.file_type().map_err(|e| io(&path, e))?;
        if ty.is_dir() {
            if !name.to_string_lossy().starts_with('.') {
                collect(root, &path, out)?;
            }
        } else if ty.is_file() {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            if len > MAX_INPUT_BYTES as u64 {
                continue;
            }
            if out.len() >= MAX_FILES {
                return Err(DirError {
                    file: String::new(),
                    source: SopsError::Structure(format!("more than {MAX_FILES} files to inspect")),
                });
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncryptOptions;

    fn age_pair() -> (Keys, String) {
        let id = age::x25519::Identity::generate();
        let recipient = id.to_public().to_string();
        let mut keys = Keys::new();
        use age::secrecy::ExposeSecret;
        keys.add_age_identities(id.to_string().expose_secret()).unwrap();
        (keys, recipient)
    }

    #[test]
    fn decrypts_encrypted_files_in_place_and_leaves_others() {
        let (keys, recipient) = age_pair();
        let dir = tempfile::tempdir().unwrap();
        let opts = EncryptOptions {
            age_recipients: vec![recipient],
            encrypted_regex: Some("^(data|stringData)$".into()),
            ..Default::default()
        };
        let secret =
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2-very-secret\n";
        let enc = crate::encrypt(secret.as_bytes(), Format::Yaml, &opts).unwrap();
        assert!(!String::from_utf8_lossy(&enc).contains("hunter2"));
        std::fs::create_dir(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/secret.yaml"), &enc).unwrap();
        let env = crate::encrypt(b"TOKEN=abc123-secret\n", Format::Dotenv, &opts).unwrap();
        std::fs::write(dir.path().join("app/creds.env"), &env).unwrap();
        let plain = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sops\n";
        std::fs::write(dir.path().join("app/cm.yaml"), plain).unwrap();

        assert_eq!(find_encrypted(dir.path()).unwrap().len(), 2);
        let done = decrypt_dir(dir.path(), &keys).unwrap();
        assert_eq!(done, vec!["app/creds.env".to_string(), "app/secret.yaml".to_string()]);
        let out = std::fs::read_to_string(dir.path().join("app/secret.yaml")).unwrap();
        assert!(out.contains("hunter2-very-secret") && !out.contains("sops:"), "{out}");
        assert_eq!(std::fs::read_to_string(dir.path().join("app/cm.yaml")).unwrap(), plain);
        let env_out = std::fs::read_to_string(dir.path().join("app/creds.env")).unwrap();
        assert!(env_out.contains("TOKEN=abc123-secret"), "{env_out}");
    }

    #[test]
    fn a_file_no_key_opens_fails_the_whole_call_and_names_it() {
        let (_, recipient) = age_pair();
        let (other_keys, _) = age_pair();
        let dir = tempfile::tempdir().unwrap();
        let opts = EncryptOptions {
            age_recipients: vec![recipient],
            ..Default::default()
        };
        let enc = crate::encrypt(b"password: s3cr3t-value\n", Format::Yaml, &opts).unwrap();
        std::fs::write(dir.path().join("s.yaml"), &enc).unwrap();
        let err = decrypt_dir(dir.path(), &other_keys).unwrap_err();
        assert_eq!(err.file, "s.yaml");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        // Nothing was written.
        assert_eq!(std::fs::read(dir.path().join("s.yaml")).unwrap(), enc);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_not_followed() {
        let (keys, recipient) = age_pair();
        let outside = tempfile::tempdir().unwrap();
        let opts = EncryptOptions {
            age_recipients: vec![recipient],
            ..Default::default()
        };
        let enc = crate::encrypt(b"k: v-secret\n", Format::Yaml, &opts).unwrap();
        std::fs::write(outside.path().join("x.yaml"), &enc).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.yaml"), dir.path().join("x.yaml")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).unwrap();
        assert!(decrypt_dir(dir.path(), &keys).unwrap().is_empty());
        assert_eq!(std::fs::read(outside.path().join("x.yaml")).unwrap(), enc);
    }
}
