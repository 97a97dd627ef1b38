//! Kustomize: a confinement check of the whole kustomization graph, then `kustomize build`
//! (or `kubectl kustomize`) with a deadline.
//!
//! # Decisions
//!
//! - **We walk the graph ourselves before running anything.** Every field of a Kustomization
//!   that names a file or directory (`resources`, `bases`, `components`, `crds`,
//!   `configurations`, `openapi.path`, `patches[].path`, `patchesStrategicMerge`,
//!   `patchesJson6902[].path`, `replacements[].path`, `configMapGenerator`/`secretGenerator`
//!   `files`/`envs`/`env`, `generators`/`transformers`/`validators`) is resolved with `..` and
//!   symlinks followed and must stay inside the *repository* root — `../base` from an overlay
//!   is fine, `../../../etc` is not (Argo CD CVE-2022-24348, Flux CVE-2022-24877). Kustomize
//!   rejects unknown Kustomization fields, so this list is the whole surface.
//! - **Load restrictor.** Kustomize's default restrictor (`LoadRestrictionsRootOnly`) is kept
//!   whenever it suffices — it is a second, independent line of defence. Only when our walk has
//!   verified that some *file* reference leaves its kustomization directory (a shared patch in
//!   `../common`) but stays in the repository do we pass `LoadRestrictionsNone`.
//! - **Remote references.** Kustomize treats any `resources` entry that does not exist locally
//!   as a remote URL and fetches it. So a missing local entry is an error here (never handed to
//!   Kustomize), and a URL-like entry is refused unless remote bases are allowed. Allowed
//!   remote bases are not walked (we do not have them); Kustomize still refuses plugins in
//!   them because we never pass the plugin flags.
//! - **Cycles and depth.** A directory that reappears on the current chain is a cycle; chains
//!   longer than [`MAX_KUSTOMIZE_DEPTH`] are refused (Flux CVE-2022-24878). Diamonds (two
//!   overlays sharing a base) are legal and are checked once (memoized by subtree height).
//! - **No code execution.** `--enable-alpha-plugins`, `--enable-exec` and `--enable-helm` are
//!   never passed. On top of that, `helmCharts`/`helmGlobals`/`helmChartInflationGenerator` are
//!   refused outright, and every plugin configuration reachable from `generators`,
//!   `transformers` or `validators` must be a builtin (`apiVersion: builtin`) without a
//!   `config.kubernetes.io/function` annotation: exec, container and Go plugins are refused
//!   with a clear message instead of an obscure Kustomize failure.
//! - **The process** runs in the kustomization directory with a cleared environment (only
//!   `PATH` and `HOME`, plus `KUBECONFIG=/dev/null` so kubectl never loads a kubeconfig with an
//!   `exec` credential plugin — Flux CVE-2022-24817), its own process group, a deadline and an
//!   output cap. `kustomize` is preferred when on `PATH`, else `kubectl kustomize`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::confine::Root;
use crate::error::RenderError;
use crate::manifest::{self, Collector, LineMode};
use crate::options::{MAX_KUSTOMIZE_DEPTH, RenderOptions};
use crate::process::{self, Outcome};

/// File names Kustomize recognizes, in its order of preference.
pub(crate) const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomization file of a directory, if any. More than one is an error (Kustomize
/// refuses too, and we must know which one it reads).
pub(crate) fn kustomization_file(dir: &Path, dir_rel: &str) -> Result<Option<PathBuf>, RenderError> {
    let mut found = None;
    for name in KUSTOMIZATION_FILES {
        let p = dir.join(name);
        match fs::symlink_metadata(&p) {
            Ok(_) => {
                if found.is_some() {
                    return Err(RenderError::InvalidKustomization {
                        file: crate::confine::join_rel(dir_rel, name),
                        reason: "the directory holds more than one kustomization file; keep exactly one".into(),
                    });
                }
                found = Some(p);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RenderError::Io {
                    file: crate::confine::join_rel(dir_rel, name),
                    source,
                });
            }
        }
    }
    Ok(found)
}

/// Whether a kustomization entry names a remote location (git URL, `github.com/org/repo`,
/// HTTP archive) rather than a local path.
pub(crate) fn looks_remote(entry: &str) -> bool {
    let e = entry.trim();
    if e.contains("://") || e.starts_with("git@") || e.starts_with("git::") || e.contains("?ref=") {
        return true;
    }
    // `host.tld/org/repo`: the first segment looks like a host name.
    match e.split_once('/') {
        Some((host, rest)) => {
            !rest.is_empty()
                && host.contains('.')
                && !host.starts_with('.')
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':')
        }
        None => false,
    }
}

/// Masks credentials in URLs (`https://user:token@host` -> `https://***@host`).
pub(crate) fn mask_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Result of the graph check.
#[derive(Debug, Default)]
pub(crate) struct GraphCheck {
    /// Some verified file reference leaves its kustomization directory.
    pub(crate) needs_unrestricted: bool,
    /// Number of kustomizations visited.
    pub(crate) kustomizations: usize,
}

struct Walker<'a> {
    root: &'a Root,
    options: &'a RenderOptions,
    stack: Vec<PathBuf>,
    heights: HashMap<(PathBuf, bool), usize>,
    result: GraphCheck,
}

/// What a reference is expected to be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A resource-like entry: a file or a kustomization directory; remote allowed if enabled;
    /// must exist (Kustomize would fetch a missing one as a URL).
    Resource,
    /// A file that must exist.
    File,
    /// A file or an inline document; only checked when it exists as a file.
    MaybeFile,
    /// A plugin configuration: a file, a kustomization directory, or inline YAML.
    Plugin,
}

/// Checks the kustomization graph rooted at `dir` (canonical, inside the root).
pub(crate) fn check_graph(root: &Root, dir: &Path, options: &RenderOptions) -> Result<GraphCheck, RenderError> {
    let mut w = Walker {
        root,
        options,
        stack: Vec::new(),
        heights: HashMap::new(),
        result: GraphCheck::default(),
    };
    w.visit_dir(dir, false)?;
    Ok(w.result)
}

impl Walker<'_> {
    fn chain(&self, last: &Path) -> String {
        self.stack
            .iter()
            .map(|p| self.root.rel(p))
            .chain(std::iter::once(self.root.rel(last)))
            .collect::<Vec<_>>()
            .join(" -> ")
    }

    /// Visits a kustomization directory; returns the height of its subtree.
    fn visit_dir(&mut self, dir: &Path, plugin_mode: bool) -> Result<usize, RenderError> {
        if self.stack.iter().any(|p| p.as_path() == dir) {
            return Err(RenderError::KustomizeCycle { chain: self.chain(dir) });
        }
        let key = (dir.to_path_buf(), plugin_mode);
        if let Some(&h) = self.heights.get(&key) {
            if self.stack.len() + h > MAX_KUSTOMIZE_DEPTH {
                return Err(self.too_deep(dir));
            }
            return Ok(h);
        }
        if self.stack.len() + 1 > MAX_KUSTOMIZE_DEPTH {
            return Err(self.too_deep(dir));
        }
        let dir_rel = self.root.rel(dir);
        let Some(kfile) = kustomization_file(dir, &dir_rel)? else {
            return Err(RenderError::NotFound {
                file: dir_rel,
                hint: "; a directory referenced from a kustomization must contain kustomization.yaml".into(),
            });
        };
        let kfile_name = kfile
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kfile_rel = crate::confine::join_rel(&dir_rel, &kfile_name);
        // The kustomization file itself may be a symlink.
        let kcanon = self.confine(&kfile, &kfile_rel, "the kustomization file")?;
        let text = read_limited(&kcanon, &kfile_rel, self.options.max_file_bytes)?;
        let docs = manifest::parse_yaml_documents(&text, &kfile_rel)?;
        let k = match docs.as_slice() {
            [] => Value::Object(Default::default()),
            [(v @ Value::Object(_), _)] => v.clone(),
            _ => {
                return Err(RenderError::InvalidKustomization {
                    file: kfile_rel,
                    reason: "expected a single mapping document".into(),
                });
            }
        };
        self.result.kustomizations += 1;
        self.stack.push(dir.to_path_buf());
        let height = self.visit_fields(dir, &kfile_rel, &k, plugin_mode);
        self.stack.pop();
        let height = height?;
        self.heights.insert(key, height);
        Ok(height)
    }

    fn too_deep(&self, dir: &Path) -> RenderError {
        RenderError::KustomizeTooDeep {
            dir: self.root.rel(dir),
            limit: MAX_KUSTOMIZE_DEPTH,
            chain: self.chain(dir),
        }
    }

    fn visit_fields(
        &mut self,
        dir: &Path,
        kfile_rel: &str,
        k: &Value,
        plugin_mode: bool,
    ) -> Result<usize, RenderError> {
        for helm in ["helmCharts", "helmGlobals", "helmChartInflationGenerator"] {
            if k.get(helm).is_some() {
                return Err(RenderError::PluginRefused {
                    file: kfile_rel.to_owned(),
                    what: format!("`{helm}` (Helm chart inflation)"),
                    advice: "render the chart into plain manifests and commit them, or use a Helm application".into(),
                });
            }
        }
        let mut height = 1usize;
        let mut refs: Vec<(&str, String, Expect)> = Vec::new();
        for field in ["resources", "bases", "components"] {
            for entry in strings(k, field, kfile_rel)? {
                refs.push((field, entry, Expect::Resource));
            }
        }
        for field in ["crds", "configurations"] {
            for entry in strings(k, field, kfile_rel)? {
                refs.push((field, entry, Expect::File));
            }
        }
        for entry in strings(k, "patchesStrategicMerge", kfile_rel)? {
            refs.push(("patchesStrategicMerge", entry, Expect::MaybeFile));
        }
        if let Some(openapi) = k.get("openapi")
            && let Some(p) = openapi.get("path").and_then(Value::as_str)
        {
            refs.push(("openapi.path", p.to_owned(), Expect::File));
        }
        for field in ["patches", "patchesJson6902", "replacements"] {
            for item in seq(k, field, kfile_rel)? {
                if let Some(p) = item.get("path") {
                    let Some(p) = p.as_str() else {
                        return Err(bad_field(kfile_rel, field, "`path` must be a string"));
                    };
                    refs.push((field, p.to_owned(), Expect::File));
                }
            }
        }
        for field in ["configMapGenerator", "secretGenerator"] {
            for item in seq(k, field, kfile_rel)? {
                for sub in ["files", "envs"] {
                    for entry in strings(item, sub, kfile_rel)? {
                        // `key=path` or `path`.
                        let path = entry.split_once('=').map_or(entry.as_str(), |(_, p)| p);
                        refs.push((field, path.to_owned(), Expect::File));
                    }
                }
                if let Some(env) = item.get("env").and_then(Value::as_str) {
                    refs.push((field, env.to_owned(), Expect::File));
                }
            }
        }
        for field in ["generators", "transformers", "validators"] {
            for entry in strings(k, field, kfile_rel)? {
                refs.push((field, entry, Expect::Plugin));
            }
        }

        for (field, entry, expect) in refs {
            let h = self.reference(dir, kfile_rel, field, &entry, expect, plugin_mode)?;
            height = height.max(h + 1);
        }
        Ok(height)
    }

    /// Resolves one reference; returns the height of a visited subtree (0 for files).
    fn reference(
        &mut self,
        dir: &Path,
        kfile_rel: &str,
        field: &str,
        entry: &str,
        expect: Expect,
        plugin_mode: bool,
    ) -> Result<usize, RenderError> {
        if expect == Expect::Plugin && (entry.contains('\n') || entry.trim_start().starts_with('{')) {
            check_plugin_text(entry, &format!("{kfile_rel} ({field}, inline)"))?;
            return Ok(0);
        }
        if expect == Expect::MaybeFile && (entry.contains('\n') || entry.trim_start().starts_with('{')) {
            return Ok(0);
        }
        let what = format!("{kfile_rel}: `{field}` entry `{}`", mask_credentials(entry));
        if entry.contains('\0') || entry.trim().is_empty() {
            return Err(bad_field(kfile_rel, field, "entries must be non-empty paths"));
        }
        let joined = dir.join(entry);
        let canon = match joined.canonicalize() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A remote-looking entry is refused as remote whether or not a local file
                // happens to have a similar name.
                if looks_remote(entry) && matches!(expect, Expect::Resource) {
                    if self.options.allow_remote_bases {
                        return Ok(0);
                    }
                    return Err(RenderError::RemoteRefused {
                        file: kfile_rel.to_owned(),
                        field: field.to_owned(),
                        entry: mask_credentials(entry),
                    });
                }
                if expect == Expect::MaybeFile {
                    return Ok(0);
                }
                let hint = if expect == Expect::Resource {
                    "; a missing local entry would make Kustomize try to fetch it as a remote URL, so it is refused here — fix the path"
                } else {
                    "; fix the path"
                };
                // Say where the dangling reference is, without resolving it further.
                return Err(RenderError::NotFound {
                    file: what,
                    hint: hint.into(),
                });
            }
            Err(source) => {
                return Err(RenderError::Io { file: what, source });
            }
        };
        if !self.root.contains(&canon) {
            return Err(RenderError::OutsideRepository {
                file: kfile_rel.to_owned(),
                reason: format!("`{field}` entry `{}`", mask_credentials(entry)),
            });
        }
        let meta = fs::metadata(&canon).map_err(|source| RenderError::Io {
            file: self.root.rel(&canon),
            source,
        })?;
        if meta.is_dir() {
            if !matches!(expect, Expect::Resource | Expect::Plugin) {
                return Err(bad_field(
                    kfile_rel,
                    field,
                    &format!("`{entry}` is a directory; a file is expected"),
                ));
            }
            return self.visit_dir(&canon, plugin_mode || expect == Expect::Plugin);
        }
        if meta.len() > self.options.max_file_bytes {
            return Err(RenderError::FileTooLarge {
                file: self.root.rel(&canon),
                size: meta.len(),
                limit: self.options.max_file_bytes,
            });
        }
        if !canon.starts_with(dir) {
            // Verified inside the repository but outside this kustomization's directory:
            // Kustomize's RootOnly restrictor would refuse it.
            self.result.needs_unrestricted = true;
        }
        if expect == Expect::Plugin || (plugin_mode && expect == Expect::Resource) {
            let rel = self.root.rel(&canon);
            let text = read_limited(&canon, &rel, self.options.max_file_bytes)?;
            check_plugin_text(&text, &rel)?;
        }
        Ok(0)
    }

    fn confine(&self, path: &Path, rel: &str, what: &str) -> Result<PathBuf, RenderError> {
        let canon = path.canonicalize().map_err(|source| RenderError::Io {
            file: rel.to_owned(),
            source,
        })?;
        if !self.root.contains(&canon) {
            return Err(RenderError::OutsideRepository {
                file: rel.to_owned(),
                reason: format!("{what} is a symlink leaving the repository"),
            });
        }
        Ok(canon)
    }
}

fn bad_field(kfile_rel: &str, field: &str, reason: &str) -> RenderError {
    RenderError::InvalidKustomization {
        file: kfile_rel.to_owned(),
        reason: format!("`{field}`: {reason}"),
    }
}

/// A field that must be a sequence of strings (absent or null = empty).
fn strings(v: &Value, field: &str, kfile_rel: &str) -> Result<Vec<String>, RenderError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad_field(kfile_rel, field, "entries must be strings"))
            })
            .collect(),
        Some(_) => Err(bad_field(kfile_rel, field, "must be a sequence")),
    }
}

/// A field that must be a sequence (absent or null = empty).
fn seq<'v>(v: &'v Value, field: &str, kfile_rel: &str) -> Result<&'v [Value], RenderError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(bad_field(kfile_rel, field, "must be a sequence")),
    }
}

/// Refuses plugin configurations that would run code: KRM functions (exec or container,
/// marked by the `config.kubernetes.io/function` annotation) and non-builtin plugins.
fn check_plugin_text(text: &str, where_: &str) -> Result<(), RenderError> {
    for (doc, line) in manifest::parse_yaml_documents(text, where_)? {
        let file = if line > 0 {
            format!("{where_}:{line}")
        } else {
            where_.to_owned()
        };
        let annotations = doc.pointer("/metadata/annotations");
        for key in ["config.kubernetes.io/function", "config.k8s.io/function"] {
            if annotations.and_then(|a| a.get(key)).is_some() {
                return Err(RenderError::PluginRefused {
                    file,
                    what: format!("a KRM function plugin (`{key}` annotation: exec or container)"),
                    advice: "driftless never runs plugin code; use builtin generators/transformers or commit the generated manifests".into(),
                });
            }
        }
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if api_version != "builtin" {
            let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
            return Err(RenderError::PluginRefused {
                file,
                what: format!("the non-builtin plugin `{api_version}` `{kind}`"),
                advice: "only builtin plugins (`apiVersion: builtin`) are allowed; use a builtin transformer or commit the generated manifests".into(),
            });
        }
    }
    Ok(())
}

/// Reads a file after checking its size.
pub(crate) fn read_limited(path: &Path, rel: &str, limit: u64) -> Result<String, RenderError> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(|source| RenderError::Io {
        file: rel.to_owned(),
        source,
    })?;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| RenderError::Io {
            file: rel.to_owned(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(RenderError::FileTooLarge {
            file: rel.to_owned(),
            size: buf.len() as u64,
            limit,
        });
    }
    String::from_utf8(buf).map_err(|_| RenderError::NotUtf8 { file: rel.to_owned() })
}

/// The Kustomize command to run: `kustomize build` when available, else `kubectl kustomize`.
fn find_tool() -> Option<(PathBuf, &'static str)> {
    let path = std::env::var_os("PATH")?;
    for (name, sub) in [("kustomize", "build"), ("kubectl", "kustomize")] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Some((candidate, sub));
            }
        }
    }
    None
}

fn is_executable(p: &Path) -> bool {
    match fs::metadata(p) {
        #[cfg(unix)]
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        }
        #[cfg(not(unix))]
        Ok(m) => m.is_file(),
        Err(_) => false,
    }
}

/// Checks and builds the kustomization in `dir` (canonical), adding its objects to `out`.
/// Returns the number of output bytes.
pub(crate) fn build(root: &Root, dir: &Path, options: &RenderOptions, out: &mut Collector) -> Result<u64, RenderError> {
    let dir_rel = root.rel(dir);
    if !options.kustomize {
        return Err(RenderError::KustomizeDisabled { dir: dir_rel });
    }
    let check = check_graph(root, dir, options)?;
    let Some((tool, sub)) = find_tool() else {
        return Err(RenderError::KustomizeMissing { dir: dir_rel });
    };
    let tool_name = tool
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let restrictor = if check.needs_unrestricted {
        "LoadRestrictionsNone"
    } else {
        "LoadRestrictionsRootOnly"
    };
    let tool_line = format!("{tool_name} {sub}");
    let mut cmd = Command::new(&tool);
    cmd.arg(sub)
        .arg(".")
        .arg("--load-restrictor")
        .arg(restrictor)
        .current_dir(dir)
        .env_clear()
        .env("KUBECONFIG", "/dev/null");
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    // Keep Go's temp files somewhere writable even with a cleared environment.
    cmd.env(
        "TMPDIR",
        std::env::var_os("TMPDIR").unwrap_or_else(|| OsString::from("/tmp")),
    );
    let outcome =
        process::run(&mut cmd, options.timeout, options.max_total_bytes).map_err(|source| RenderError::Io {
            file: format!("{dir_rel} (running {tool_line})"),
            source,
        })?;
    let stdout = match outcome {
        Outcome::TimedOut => {
            return Err(RenderError::KustomizeTimeout {
                dir: dir_rel,
                tool: tool_line,
                timeout: options.timeout,
            });
        }
        Outcome::OutputTooLarge => {
            return Err(RenderError::KustomizeOutputTooLarge {
                dir: dir_rel,
                limit: options.max_total_bytes,
            });
        }
        Outcome::Exited { status, stdout, stderr } => {
            if !status.success() {
                return Err(RenderError::KustomizeFailed {
                    dir: dir_rel,
                    tool: tool_line,
                    status: status.to_string(),
                    stderr: clean_stderr(&stderr, root),
                });
            }
            stdout
        }
    };
    let bytes = stdout.len() as u64;
    let origin = format!("kustomize:{dir_rel}");
    let text = String::from_utf8(stdout).map_err(|_| RenderError::NotUtf8 { file: origin.clone() })?;
    manifest::collect_yaml(&text, &origin, LineMode::DocumentIndex, out)?;
    Ok(bytes)
}

/// Makes Kustomize's stderr fit for an error message: lossy UTF-8, repository paths shown
/// relative, URL credentials masked, bounded length.
fn clean_stderr(stderr: &[u8], root: &Root) -> String {
    let text = String::from_utf8_lossy(stderr);
    // Drop klog's `E1122 03:57:40.752172   23998 run.go:72] "command failed" err=` prefix.
    let text: Vec<&str> = text
        .lines()
        .map(|line| {
            let is_klog = line.len() > 5
                && matches!(line.as_bytes()[0], b'E' | b'W' | b'I' | b'F')
                && line.as_bytes()[1..5].iter().all(u8::is_ascii_digit);
            match line.find("] ") {
                Some(i) if is_klog => {
                    let rest = &line[i + 2..];
                    rest.strip_prefix("\"command failed\" err=").unwrap_or(rest)
                }
                _ => line,
            }
        })
        .collect();
    let text = text.join("\n");
    let root_prefix = format!("{}/", root.path().display());
    let text = text
        .replace(&root_prefix, "")
        .replace(&*root.path().to_string_lossy(), ".");
    let text = mask_credentials(text.trim());
    const MAX: usize = 2000;
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_detection() {
        for r in [
            "https://github.com/org/repo//base?ref=v1",
            "github.com/org/repo/base?ref=main",
            "git@github.com:org/repo.git",
            "git::https://example.com/x",
            "example.com/org/repo",
            "ssh://git@host/repo",
        ] {
            assert!(looks_remote(r), "{r}");
        }
        // `config.d/x.yaml` would look remote, but that is only consulted when no such local
        // path exists — exactly when Kustomize would try it as a URL too.
        for l in ["../base", "base", "./deploy.yaml", "..", "a.yaml"] {
            assert!(!looks_remote(l), "{l}");
        }
    }

    #[test]
    fn credentials_are_masked() {
        assert_eq!(
            mask_credentials("fetch https://user:tok@github.com/o/r failed"),
            "fetch https://***@github.com/o/r failed"
        );
        assert_eq!(mask_credentials("https://github.com/o"), "https://github.com/o");
    }

    #[test]
    fn stderr_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path()).unwrap();
        let raw = format!(
            "E1122 03:57:40.752172   23998 run.go:72] \"command failed\" err=\"accumulating resources from '{}/app/x.yaml' via https://u:secret@example.com/r\"\n",
            root.path().display()
        );
        let clean = clean_stderr(raw.as_bytes(), &root);
        assert_eq!(
            clean,
            "\"accumulating resources from 'app/x.yaml' via https://***@example.com/r\""
        );
        let long = "x".repeat(10_000);
        assert!(clean_stderr(long.as_bytes(), &root).len() < 2100);
    }

    #[test]
    fn plugins_are_refused() {
        assert!(
            check_plugin_text(
                "apiVersion: builtin\nkind: PrefixSuffixTransformer\nmetadata: {name: p}\nprefix: x-\n",
                "t.yaml"
            )
            .is_ok()
        );
        let e = check_plugin_text(
            "apiVersion: example.com/v1\nkind: Exec\nmetadata:\n  name: p\n  annotations:\n    config.kubernetes.io/function: |\n      exec: {path: /bin/sh}\n",
            "t.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("KRM function"), "{e}");
        let e = check_plugin_text(
            "apiVersion: someteam.example.com/v1\nkind: Gen\nmetadata: {name: p}\n",
            "t.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("non-builtin"), "{e}");
    }
}
