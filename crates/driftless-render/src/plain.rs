//! Walking an application directory: plain manifests, and kustomizations wherever they are.
//!
//! Decisions:
//! - Files are `*.yaml`, `*.yml`, `*.json` (lower-case, as kubectl), found recursively and
//!   processed in byte order of their path relative to the repository root, so the output
//!   order depends only on the tree.
//! - Names starting with `.` are skipped (`.git`, `.github` workflows are YAML but not
//!   manifests).
//! - A directory holding a kustomization is built with Kustomize and not descended into: its
//!   other files are patches and fragments that must never be applied as objects. That is
//!   also how the application path itself is handled.
//! - Symlinks are resolved; one that leads outside the repository is an error even if its
//!   name is not a manifest (CVE-2022-24904: refuse, don't skip, so the author notices).
//!   A symlink back to an ancestor directory is an error (it would loop). A dangling symlink
//!   is skipped with a warning.
//! - Sizes are checked before reading (and enforced while reading, in case a file grows).

use std::fs;
use std::path::{Path, PathBuf};

use crate::confine::{Root, join_rel};
use crate::error::RenderError;
use crate::kustomize;
use crate::manifest::{self, Collector, LineMode};
use crate::options::RenderOptions;

/// Deepest directory nesting walked.
const MAX_DIR_DEPTH: usize = 64;

/// One unit of work, ordered by its relative path.
#[derive(Debug)]
enum Unit {
    File { canon: PathBuf, rel: String },
    Kustomization { canon: PathBuf, rel: String },
}

impl Unit {
    fn rel(&self) -> &str {
        match self {
            Unit::File { rel, .. } | Unit::Kustomization { rel, .. } => rel,
        }
    }
}

/// Renders the application at `app` (canonical) / `app_rel` (display).
pub(crate) fn render_path(
    root: &Root,
    app: &Path,
    app_rel: &str,
    options: &RenderOptions,
    out: &mut Collector,
) -> Result<(), RenderError> {
    let mut units = Vec::new();
    let meta = fs::metadata(app).map_err(|source| RenderError::Io {
        file: app_rel.to_owned(),
        source,
    })?;
    if meta.is_file() {
        units.push(Unit::File {
            canon: app.to_path_buf(),
            rel: app_rel.to_owned(),
        });
    } else {
        let mut ancestors = Vec::new();
        collect(root, app, app_rel, &mut ancestors, &mut units, out)?;
    }
    units.sort_by(|a, b| a.rel().cmp(b.rel()));

    let mut total = 0u64;
    for unit in units {
        match unit {
            Unit::File { canon, rel } => {
                let size = fs::metadata(&canon)
                    .map_err(|source| RenderError::Io {
                        file: rel.clone(),
                        source,
                    })?
                    .len();
                if size > options.max_file_bytes {
                    return Err(RenderError::FileTooLarge {
                        file: rel,
                        size,
                        limit: options.max_file_bytes,
                    });
                }
                total = add_total(total, size, &rel, options)?;
                let text = kustomize::read_limited(&canon, &rel, options.max_file_bytes)?;
                if rel.ends_with(".json") {
                    manifest::collect_json(&text, &rel, out)?;
                } else {
                    manifest::collect_yaml(&text, &rel, LineMode::SourceLine, out)?;
                }
            }
            Unit::Kustomization { canon, rel } => {
                let bytes = kustomize::build(root, &canon, options, out)?;
                total = add_total(total, bytes, &format!("kustomize:{rel}"), options)?;
            }
        }
    }
    Ok(())
}

fn add_total(total: u64, more: u64, file: &str, options: &RenderOptions) -> Result<u64, RenderError> {
    let total = total.saturating_add(more);
    if total > options.max_total_bytes {
        return Err(RenderError::TotalTooLarge {
            file: file.to_owned(),
            total,
            limit: options.max_total_bytes,
        });
    }
    Ok(total)
}

fn is_manifest_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")
}

/// Collects the units under `dir` (canonical) whose display path is `rel`.
fn collect(
    root: &Root,
    dir: &Path,
    rel: &str,
    ancestors: &mut Vec<PathBuf>,
    units: &mut Vec<Unit>,
    out: &mut Collector,
) -> Result<(), RenderError> {
    if ancestors.len() >= MAX_DIR_DEPTH {
        return Err(RenderError::InvalidPath {
            path: rel.to_owned(),
            reason: format!("directories nest deeper than {MAX_DIR_DEPTH} levels"),
        });
    }
    if kustomize::kustomization_file(dir, rel)?.is_some() {
        units.push(Unit::Kustomization {
            canon: dir.to_path_buf(),
            rel: rel.to_owned(),
        });
        return Ok(());
    }
    let io_err = |file: &str| {
        let file = file.to_owned();
        move |source| RenderError::Io { file, source }
    };
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(rel))? {
        let entry = entry.map_err(io_err(rel))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        entries.push((name, entry.path()));
    }
    entries.sort();
    ancestors.push(dir.to_path_buf());
    for (name, path) in entries {
        let child_rel = join_rel(rel, &name);
        let lmeta = fs::symlink_metadata(&path).map_err(io_err(&child_rel))?;
        let (canon, is_dir, is_file) = if lmeta.file_type().is_symlink() {
            let canon = match path.canonicalize() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    out.warnings.push(format!("{child_rel}: dangling symlink; skipped"));
                    continue;
                }
                Err(source) => {
                    return Err(RenderError::Io {
                        file: child_rel,
                        source,
                    });
                }
            };
            if !root.contains(&canon) {
                return Err(RenderError::OutsideRepository {
                    file: child_rel,
                    reason: "it is a symlink whose target is outside the repository".into(),
                });
            }
            let meta = fs::metadata(&canon).map_err(io_err(&child_rel))?;
            (canon, meta.is_dir(), meta.is_file())
        } else {
            (path.clone(), lmeta.is_dir(), lmeta.is_file())
        };
        if is_dir {
            if ancestors.contains(&canon) {
                return Err(RenderError::InvalidPath {
                    path: child_rel,
                    reason: "it is a symlink to one of its own parent directories (a loop)".into(),
                });
            }
            collect(root, &canon, &child_rel, ancestors, units, out)?;
        } else if is_file && is_manifest_name(&name) {
            // Only regular files: a FIFO named `x.yaml` would block the render forever.
            units.push(Unit::File { canon, rel: child_rel });
        }
    }
    ancestors.pop();
    Ok(())
}
