//! Reading a path of a commit's tree straight from the object database, without a checkout.
//!
//! Hostile repositories are expected (THREATS.md). The rules:
//! - The requested path must be relative and free of `..`; `.` and empty mean the root.
//! - Tree entries named `.`, `..`, `.git`, or containing `\` are refused (git itself refuses
//!   them on checkout; a crafted tree can still carry them).
//! - **Symlinks are never written.** A symlink whose target resolves inside the repository is
//!   replaced by a copy of its target (a file, or a directory copied recursively); a symlink
//!   that is absolute or climbs out of the repository root is refused with
//!   [`SourceError::SymlinkEscape`] naming it, even if nothing would read it. Chains are
//!   followed up to 40 hops; a directory symlink into one of its own ancestors (a loop) is
//!   refused with [`SourceError::SymlinkLoop`].
//! - Submodules (gitlinks) are skipped: their content is not in this repository.
//! - Sizes are checked from object headers before a blob is loaded: one file over
//!   [`Limits::max_file_bytes`], or all files over [`Limits::max_total_bytes`] or
//!   [`Limits::max_files`], aborts the operation.
//! - Files are created with `create_new`, so nothing already in `dest` is overwritten or
//!   followed.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;

use crate::{Limits, SourceError};

const MAX_SYMLINK_HOPS: u32 = 40;

/// What a path in a tree resolved to.
#[derive(Debug, Clone)]
enum Node {
    Tree(gix::ObjectId),
    Blob { id: gix::ObjectId, executable: bool },
    Link(gix::ObjectId),
    Submodule,
}

/// A decoded tree: its entries in tree order, and for large trees an index by name.
pub(crate) struct Decoded {
    entries: Vec<(String, Node)>,
    index: Option<HashMap<String, usize>>,
}

impl Decoded {
    fn find(&self, name: &str) -> Option<&Node> {
        match &self.index {
            Some(index) => index.get(name).map(|&i| &self.entries[i].1),
            None => self.entries.iter().find(|(n, _)| n == name).map(|(_, node)| node),
        }
    }
}

/// Trees with more entries than this get an index by name.
const INDEX_FROM: usize = 32;
/// Entries (summed over trees) the cache holds before it starts over.
const TREE_CACHE_ENTRIES: usize = 250_000;

/// Decoded trees by id, shared by every read of a [`crate::GitCache`].
///
/// A monorepo's root tree holds one entry per application; without this, each of N apps'
/// reads inflated and decoded that whole tree again (N² work: 10,000 apps took minutes).
/// Tree objects are immutable (their id is their content's hash), so a cached tree can
/// never be stale; the cache is bounded and simply starts over when full.
#[derive(Default)]
pub(crate) struct TreeCache {
    inner: Mutex<(HashMap<gix::ObjectId, Arc<Decoded>>, usize)>,
}

impl TreeCache {
    fn get(&self, id: &gix::ObjectId) -> Option<Arc<Decoded>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0.get(id).cloned()
    }

    fn put(&self, id: gix::ObjectId, tree: Arc<Decoded>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = tree.entries.len();
        if inner.1 + n > TREE_CACHE_ENTRIES {
            inner.0.clear();
            inner.1 = 0;
        }
        if n <= TREE_CACHE_ENTRIES && inner.0.insert(id, tree).is_none() {
            inner.1 += n;
        }
    }
}

pub(crate) struct TreeReader<'r> {
    pub repo: &'r gix::Repository,
    pub trees: &'r TreeCache,
    pub root: gix::ObjectId,
    pub limits: Limits,
    pub url: String,
    pub commit: String,
}

/// Split a user-supplied path into components, refusing absolute paths and `..`.
pub(crate) fn safe_components(path: &str) -> Result<Vec<String>, SourceError> {
    let unsafe_path = |reason: &str| SourceError::UnsafePath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.starts_with('/') || path.starts_with('\\') || Path::new(path).is_absolute() {
        return Err(unsafe_path(
            "absolute paths are not allowed; give a path relative to the repository root",
        ));
    }
    if path.contains('\0') {
        return Err(unsafe_path("contains a NUL byte"));
    }
    let mut out = Vec::new();
    for c in path.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => return Err(unsafe_path("'..' is not allowed")),
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

fn check_entry_name(name: &str, display: &str) -> Result<(), SourceError> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.eq_ignore_ascii_case(".git")
        || name.contains('\\')
        || name.contains('/')
        || name.contains('\0')
    {
        return Err(SourceError::UnsafePath {
            path: display.to_string(),
            reason: "the repository contains a tree entry with an unsafe name".into(),
        });
    }
    Ok(())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Receives what a walk finds.
pub(crate) trait Sink {
    fn dir(&mut self, rel: &str) -> Result<(), SourceError>;
    fn file(&mut self, rel: &str, data: &[u8], executable: bool) -> Result<(), SourceError>;
    /// Whether the sink needs file contents (listing does not).
    fn wants_data(&self) -> bool {
        true
    }
}

struct Budget {
    bytes: u64,
    files: usize,
}

impl<'r> TreeReader<'r> {
    fn git_err(&self, e: &dyn std::error::Error) -> SourceError {
        SourceError::Git {
            url: self.url.clone(),
            message: crate::cache::error_chain(e, &[]),
        }
    }

    fn entries(&self, id: gix::ObjectId) -> Result<Arc<Decoded>, SourceError> {
        if let Some(hit) = self.trees.get(&id) {
            return Ok(hit);
        }
        let tree = self.repo.find_tree(id).map_err(|e| self.git_err(&e))?;
        let decoded = tree.decode().map_err(|e| self.git_err(&e))?;
        let mut out = Vec::with_capacity(decoded.entries.len());
        for e in &decoded.entries {
            let name = e.filename.to_str_lossy().into_owned();
            let id = e.oid.to_owned();
            let node = match e.mode.kind() {
                EntryKind::Tree => Node::Tree(id),
                EntryKind::Blob => Node::Blob { id, executable: false },
                EntryKind::BlobExecutable => Node::Blob { id, executable: true },
                EntryKind::Link => Node::Link(id),
                EntryKind::Commit => Node::Submodule,
            };
            out.push((name, node));
        }
        let index = (out.len() > INDEX_FROM).then(|| {
            let mut index = HashMap::with_capacity(out.len());
            for (i, (name, _)) in out.iter().enumerate() {
                // The first of two equal names wins, as the linear search would pick it.
                index.entry(name.clone()).or_insert(i);
            }
            index
        });
        let decoded = Arc::new(Decoded { entries: out, index });
        self.trees.put(id, decoded.clone());
        Ok(decoded)
    }

    fn blob_size(&self, id: gix::ObjectId) -> Result<u64, SourceError> {
        let header = self.repo.find_header(id).map_err(|e| self.git_err(&e))?;
        Ok(header.size())
    }

    fn blob_data(&self, id: gix::ObjectId, display: &str) -> Result<Vec<u8>, SourceError> {
        let size = self.blob_size(id)?;
        if size > self.limits.max_file_bytes {
            return Err(SourceError::FileTooLarge {
                file: display.to_string(),
                size,
                limit: self.limits.max_file_bytes,
            });
        }
        let blob = self.repo.find_blob(id).map_err(|e| self.git_err(&e))?;
        Ok(blob.data.clone())
    }

    fn link_target(&self, id: gix::ObjectId, display: &str) -> Result<String, SourceError> {
        // A symlink target is a path; 4 KiB is PATH_MAX on Linux.
        let size = self.blob_size(id)?;
        if size > 4096 {
            return Err(SourceError::SymlinkLoop {
                file: display.to_string(),
                reason: format!("its target is {size} bytes long"),
            });
        }
        let data = self.blob_data(id, display)?;
        Ok(String::from_utf8_lossy(&data).into_owned())
    }

    fn tree_at(&self, real: &[String]) -> Result<gix::ObjectId, SourceError> {
        let mut cur = self.root;
        for c in real {
            cur = match self.entries(cur)?.find(c) {
                Some(Node::Tree(id)) => *id,
                _ => {
                    return Err(SourceError::Git {
                        url: self.url.clone(),
                        message: format!("internal: '{}' is no longer a directory", real.join("/")),
                    });
                }
            };
        }
        Ok(cur)
    }

    /// Resolve `comps` (relative to directory `start`, a real path from the root) to a node,
    /// following symlinks on the way (and at the end when `follow_final`). Returns the node and
    /// its real path. `link_display` names the symlink being resolved for error messages.
    fn lookup(
        &self,
        start: &[String],
        comps: Vec<String>,
        follow_final: bool,
        requested: &str,
    ) -> Result<(Node, Vec<String>), SourceError> {
        let mut real: Vec<String> = start.to_vec();
        let mut cur = self.tree_at(&real)?;
        let mut queue: VecDeque<String> = comps.into();
        let mut hops = 0u32;
        let not_found = || SourceError::PathNotFound {
            url: self.url.clone(),
            commit: self.commit.clone(),
            path: requested.to_string(),
        };
        if queue.is_empty() {
            return Ok((Node::Tree(cur), real));
        }
        while let Some(c) = queue.pop_front() {
            match c.as_str() {
                "" | "." => {
                    if queue.is_empty() {
                        return Ok((Node::Tree(cur), real));
                    }
                    continue;
                }
                ".." => {
                    // Only symlink targets put `..` here; user paths were checked before.
                    if real.pop().is_none() {
                        return Err(SourceError::SymlinkEscape {
                            file: requested.to_string(),
                            target: "..".into(),
                        });
                    }
                    cur = self.tree_at(&real)?;
                    if queue.is_empty() {
                        return Ok((Node::Tree(cur), real));
                    }
                    continue;
                }
                _ => {}
            }
            let Some(node) = self.entries(cur)?.find(&c).cloned() else {
                return Err(not_found());
            };
            let last = queue.is_empty();
            match node {
                Node::Tree(id) => {
                    real.push(c);
                    cur = id;
                    if last {
                        return Ok((Node::Tree(id), real));
                    }
                }
                Node::Blob { .. } | Node::Submodule => {
                    if last {
                        real.push(c);
                        return Ok((node, real));
                    }
                    return Err(not_found());
                }
                Node::Link(id) => {
                    let link_path = join(&real.join("/"), &c);
                    if last && !follow_final {
                        real.push(c);
                        return Ok((node, real));
                    }
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(SourceError::SymlinkLoop {
                            file: link_path,
                            reason: format!("more than {MAX_SYMLINK_HOPS} symlinks to follow"),
                        });
                    }
                    let target = self.link_target(id, &link_path)?;
                    if target.starts_with('/')
                        || target.starts_with('\\')
                        || target.contains('\0')
                        || Path::new(&target).is_absolute()
                    {
                        return Err(SourceError::SymlinkEscape {
                            file: link_path,
                            target,
                        });
                    }
                    // Check that the target stays inside the repository, relative to the
                    // symlink's own directory.
                    let mut depth = real.len() as i64;
                    for t in target.split('/') {
                        match t {
                            "" | "." => {}
                            ".." => {
                                depth -= 1;
                                if depth < 0 {
                                    return Err(SourceError::SymlinkEscape {
                                        file: link_path,
                                        target,
                                    });
                                }
                            }
                            _ => depth += 1,
                        }
                    }
                    for t in target.split('/').rev() {
                        queue.push_front(t.to_string());
                    }
                    if queue.iter().all(|t| t.is_empty() || t == ".") {
                        return Ok((Node::Tree(cur), real));
                    }
                }
            }
        }
        Ok((Node::Tree(cur), real))
    }

    /// Walk the node at `path` into `sink`.
    pub(crate) fn walk(&self, path: &str, sink: &mut dyn Sink) -> Result<(), SourceError> {
        let comps = safe_components(path)?;
        let (node, real) = self.lookup(&[], comps, true, path)?;
        let mut budget = Budget { bytes: 0, files: 0 };
        match node {
            Node::Tree(id) => {
                let mut stack = vec![real.clone()];
                self.walk_tree(id, &real, "", path, sink, &mut budget, &mut stack)
            }
            Node::Blob { id, executable } => {
                let name = real.last().cloned().unwrap_or_default();
                self.emit_file(id, executable, &name, path, path, sink, &mut budget)
            }
            Node::Submodule | Node::Link(_) => Err(SourceError::PathNotFound {
                url: self.url.clone(),
                commit: self.commit.clone(),
                path: path.to_string(),
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_file(
        &self,
        id: gix::ObjectId,
        executable: bool,
        rel: &str,
        display: &str,
        requested: &str,
        sink: &mut dyn Sink,
        budget: &mut Budget,
    ) -> Result<(), SourceError> {
        let size = self.blob_size(id)?;
        if size > self.limits.max_file_bytes {
            return Err(SourceError::FileTooLarge {
                file: display.to_string(),
                size,
                limit: self.limits.max_file_bytes,
            });
        }
        budget.bytes += size;
        budget.files += 1;
        if budget.bytes > self.limits.max_total_bytes || budget.files > self.limits.max_files {
            return Err(SourceError::TotalTooLarge {
                path: requested.to_string(),
                limit: self.limits.max_total_bytes,
                max_files: self.limits.max_files,
            });
        }
        if sink.wants_data() {
            let data = self.blob_data(id, display)?;
            sink.file(rel, &data, executable)
        } else {
            sink.file(rel, &[], executable)
        }
    }

    /// `real`: real repo path of `tree`; `rel`: output path relative to the walk's root;
    /// `stack`: real paths of directories being expanded (for loop detection).
    #[allow(clippy::too_many_arguments)]
    fn walk_tree(
        &self,
        tree: gix::ObjectId,
        real: &[String],
        rel: &str,
        requested: &str,
        sink: &mut dyn Sink,
        budget: &mut Budget,
        stack: &mut Vec<Vec<String>>,
    ) -> Result<(), SourceError> {
        let decoded = self.entries(tree)?;
        for (name, node) in decoded.entries.iter().cloned() {
            let display = join(&real.join("/"), &name);
            check_entry_name(&name, &display)?;
            let out = join(rel, &name);
            match node {
                Node::Submodule => {
                    let shown: &str = &display;
                    tracing::debug!(path = shown, "skipping submodule");
                }
                Node::Blob { id, executable } => {
                    self.emit_file(id, executable, &out, &display, requested, sink, budget)?;
                }
                Node::Tree(id) => {
                    budget.files += 1;
                    if budget.files > self.limits.max_files {
                        return Err(SourceError::TotalTooLarge {
                            path: requested.to_string(),
                            limit: self.limits.max_total_bytes,
                            max_files: self.limits.max_files,
                        });
                    }
                    sink.dir(&out)?;
                    let mut child = real.to_vec();
                    child.push(name);
                    stack.push(child.clone());
                    self.walk_tree(id, &child, &out, requested, sink, budget, stack)?;
                    stack.pop();
                }
                Node::Link(_) => {
                    let (target, target_real) =
                        self.lookup(real, vec![name.clone()], true, &display)
                            .map_err(|e| match e {
                                // A dangling link inside the repository: say which file.
                                SourceError::PathNotFound { url, commit, .. } => SourceError::PathNotFound {
                                    url,
                                    commit,
                                    path: format!("{display} (symlink target)"),
                                },
                                other => other,
                            })?;
                    match target {
                        Node::Blob { id, executable } => {
                            self.emit_file(id, executable, &out, &display, requested, sink, budget)?;
                        }
                        Node::Tree(id) => {
                            // Copying a directory that contains (or is) the one being expanded
                            // would never end.
                            let loops = stack
                                .iter()
                                .any(|s| s.starts_with(&target_real) || target_real.is_empty());
                            if loops {
                                return Err(SourceError::SymlinkLoop {
                                    file: display,
                                    reason: format!(
                                        "it points to '{}', a directory that contains it",
                                        if target_real.is_empty() {
                                            ".".to_string()
                                        } else {
                                            target_real.join("/")
                                        }
                                    ),
                                });
                            }
                            sink.dir(&out)?;
                            stack.push(target_real.clone());
                            self.walk_tree(id, &target_real, &out, requested, sink, budget, stack)?;
                            stack.pop();
                        }
                        Node::Submodule | Node::Link(_) => {
                            let shown: &str = &display;
                            tracing::debug!(path = shown, "skipping symlink to a submodule");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Read one file, following in-repository symlinks.
    /// The object id of `path` (tree or blob), or `None` when the subtree holds symlinks
    /// (their targets may live elsewhere, so the id would not capture the content).
    pub(crate) fn content_id(&self, path: &str) -> Result<Option<String>, SourceError> {
        let comps = safe_components(path)?;
        let (node, _) = self.lookup(&[], comps, true, path)?;
        match node {
            Node::Tree(id) => Ok((!self.has_links(id, 0)?).then(|| id.to_string())),
            Node::Blob { id, .. } => Ok(Some(id.to_string())),
            Node::Link(_) | Node::Submodule => Ok(None),
        }
    }

    fn has_links(&self, tree: gix::ObjectId, depth: usize) -> Result<bool, SourceError> {
        if depth > 64 {
            return Ok(true);
        }
        for (_, node) in self.entries(tree)?.entries.iter() {
            match node {
                Node::Link(_) => return Ok(true),
                Node::Tree(id) if self.has_links(*id, depth + 1)? => return Ok(true),
                _ => {}
            }
        }
        Ok(false)
    }

    pub(crate) fn read(&self, path: &str) -> Result<Vec<u8>, SourceError> {
        let comps = safe_components(path)?;
        let (node, _) = self.lookup(&[], comps, true, path)?;
        match node {
            Node::Blob { id, .. } => self.blob_data(id, path),
            _ => Err(SourceError::PathNotFound {
                url: self.url.clone(),
                commit: self.commit.clone(),
                path: format!("{path} (not a file)"),
            }),
        }
    }
}

/// Writes files under a destination directory.
pub(crate) struct DirSink {
    pub dest: PathBuf,
}

impl Sink for DirSink {
    fn dir(&mut self, rel: &str) -> Result<(), SourceError> {
        let p = self.dest.join(rel);
        std::fs::create_dir(&p).map_err(|e| SourceError::io(&p, e))
    }

    fn file(&mut self, rel: &str, data: &[u8], executable: bool) -> Result<(), SourceError> {
        let p = self.dest.join(rel);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if executable { 0o755 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = executable;
        let mut f = opts.open(&p).map_err(|e| SourceError::io(&p, e))?;
        f.write_all(data).map_err(|e| SourceError::io(&p, e))
    }
}

/// Collects file paths.
#[derive(Default)]
pub(crate) struct ListSink {
    pub files: Vec<String>,
}

impl Sink for ListSink {
    fn dir(&mut self, _rel: &str) -> Result<(), SourceError> {
        Ok(())
    }
    fn file(&mut self, rel: &str, _data: &[u8], _executable: bool) -> Result<(), SourceError> {
        self.files.push(rel.to_string());
        Ok(())
    }
    fn wants_data(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_paths() {
        assert_eq!(safe_components("").unwrap(), Vec::<String>::new());
        assert_eq!(safe_components("./a//b/").unwrap(), vec!["a", "b"]);
        assert!(safe_components("/etc").is_err());
        assert!(safe_components("a/../../b").is_err());
        assert!(safe_components("..").is_err());
        assert!(safe_components("a\\..\\b").is_err());
    }
}
