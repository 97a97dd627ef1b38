//! The `Application` spec: what to deploy, from where, to where, and how carefully.
//!
//! ```yaml
//! apiVersion: driftless.dev/v1alpha1
//! kind: Application
//! metadata: {name: guestbook}
//! spec:
//!   source: {repoURL: https://git.example.com/org/repo.git, ref: main, path: apps/guestbook}
//!   destination: {context: prod-eu, namespace: guestbook}
//!   sync: {prune: true, pruneThreshold: 50, allowEmpty: false, automated: true, selfHeal: true}
//!   healthTimeout: 2m
//! ```
//!
//! Design decisions:
//!
//! * **Strict.** Unknown fields are errors at every level, so `repoUrl` or `prunne` cannot pass
//!   silently. Only `metadata.labels`/`metadata.annotations` are free-form.
//! * **Every error is located.** Files are parsed once into a line-aware tree
//!   ([`crate::yaml`]); the typed structs are then read from it with the field path tracked, and
//!   validation maps each failing field back to its line: `apps/web.yaml:7:
//!   spec.source.repoURL: required`. All problems of a file set are reported together.
//! * **Safe defaults.** `prune` is off unless asked for, `pruneThreshold` is 50 %, empty renders
//!   never prune (`allowEmpty: false`), namespaces are not created unless asked for.
//! * **Directories are read flat** (not recursively), `*.yaml` and `*.yml` only, in byte order
//!   of file name, skipping hidden files. Flat, because an apps directory sits next to the
//!   manifests it points to and recursion would sweep those up; hidden files are skipped so that
//!   editor backups and the `..data` entries of a mounted ConfigMap are not read twice.
//!   Symlinks are followed (ConfigMap mounts are symlinks); spec files are operator
//!   configuration, not repository content.
//! * `ref` is required: there is no good default between `main`, `master` and `HEAD`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Diagnostic, Error, Result};
use crate::object::Origin;
use crate::yaml::{self, Node, YamlLimits};

/// The `apiVersion` of application specs.
pub const API_VERSION: &str = "driftless.dev/v1alpha1";
/// The `kind` of application specs.
pub const KIND: &str = "Application";
/// Spec files larger than this are refused before reading.
pub const MAX_SPEC_FILE_BYTES: u64 = 1024 * 1024;

/// One application: a path in a Git repository deployed to a namespace of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Application {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// Name and labels.
    pub metadata: Metadata,
    /// What to deploy and how.
    pub spec: ApplicationSpec,
    /// Where the spec was read from (not part of the document).
    #[serde(skip)]
    pub origin: Option<Origin>,
}

/// `metadata` of an application.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Unique application name, an RFC 1123 label.
    pub name: String,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `spec` of an application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSpec {
    /// Where the manifests live.
    pub source: SourceSpec,
    /// Where they go.
    pub destination: Destination,
    /// Prune, apply and automation behaviour (`spec.sync`; `spec.syncPolicy` is accepted too).
    #[serde(default, rename = "sync", alias = "syncPolicy")]
    pub sync_policy: SyncPolicy,
    /// How often `driftless serve` checks Git for new commits (default 3m; webhooks make it
    /// immediate). Jitter of up to 10% spreads apps sharing an interval.
    #[serde(default = "default_refresh_interval", with = "crate::duration::serde_str")]
    pub refresh_interval: Duration,
    /// Report objects in the destination namespace that no app manages (default false).
    #[serde(default)]
    pub report_unmanaged: bool,
    /// How long to wait for the app to become healthy after a sync (default 5m).
    #[serde(default = "default_health_timeout", with = "crate::duration::serde_str")]
    pub health_timeout: Duration,
    /// Where the keys that decrypt the app's SOPS files come from (besides `SOPS_AGE_KEY_FILE`
    /// and `SOPS_AGE_KEY` in driftless's environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<DecryptionSpec>,
    /// Policies the rendered objects must pass before anything is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySpec>,
}

/// `spec.decryption`: keys for SOPS files.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecryptionSpec {
    /// A file of age identities (`AGE-SECRET-KEY-1...` lines) or an armored OpenPGP secret key;
    /// relative paths are resolved against the directory of the file declaring the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// A Kubernetes Secret in the destination cluster holding the keys: every data key ending in
    /// `.agekey` is read as age identities, every key ending in `.asc` as an armored OpenPGP
    /// secret key (the layout Flux uses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
}

/// A reference to a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
    /// Namespace (default: the app's destination namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `spec.policy`: Rego policies checked against the rendered objects before any apply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Directories in the app's own repository (at the commit being synced) holding Conftest
    /// style `*.rego` modules and Gatekeeper `ConstraintTemplate`/constraint YAML.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// A central policy repository (same layout), at its own ref.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<PolicyRepo>,
    /// Built-in baseline policies to switch on (`no-privileged`, `no-latest-tag`,
    /// `resources-requests`, `no-host-path`, `no-host-network`, or `all`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<String>,
}

/// A policy repository: a path at a ref of a Git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRepo {
    /// Clone URL.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Branch, tag or commit (default `main`).
    #[serde(rename = "ref", default = "default_policy_ref")]
    pub git_ref: String,
    /// Directory inside the repository; empty for the root.
    #[serde(default)]
    pub path: String,
}

fn default_policy_ref() -> String {
    "main".to_owned()
}

/// `spec.source.verify`: which signatures the deployed commit must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// `head` (the commit is signed), `tag` (an annotated tag pointing at it is signed) or `both`.
    #[serde(default = "default_verify_mode")]
    pub mode: String,
    /// Trusted keys: armored OpenPGP public keys, SSH public keys or allowed_signers lines —
    /// inline, or paths of files holding them (relative paths are resolved against the
    /// directory of the file declaring the app).
    pub keys: Vec<String>,
}

fn default_verify_mode() -> String {
    "head".to_owned()
}

/// True when a `keys` entry is key text rather than a file path.
pub fn is_inline_key(entry: &str) -> bool {
    let t = entry.trim_start();
    t.contains('\n')
        || t.starts_with("-----BEGIN")
        || t.starts_with("ssh-")
        || t.starts_with("ecdsa-")
        || t.starts_with("sk-")
        || t.contains(" ssh-")
        || t.contains(" ecdsa-")
        || t.contains(" sk-")
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(300)
}

fn default_refresh_interval() -> Duration {
    Duration::from_secs(180)
}

/// `spec.source`: a path at a ref of a Git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Clone URL (`https://`, `ssh://`, `git://`, `file://` or scp-like `git@host:org/repo`).
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Branch, tag, commit SHA or semver range over tags; see [`classify_ref`].
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Directory inside the repository, relative, without `..`; empty for the root.
    #[serde(default)]
    pub path: String,
    /// Signature verification of the deployed commit (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySpec>,
    /// Render the path as a Helm chart, with these settings (a path holding `Chart.yaml` is a
    /// chart without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSpec>,
    /// Render the path's `*.jsonnet` files, with these settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonnet: Option<JsonnetSpec>,
    /// Render the path with Kustomize (explicit choice; detection finds kustomizations anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeSpec>,
    /// Read the path as plain manifests, whatever it holds (explicit choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySpec>,
}

/// `spec.source.helm`: how a chart is rendered (Argo CD's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmSpec {
    /// Release name (`.Release.Name`); the application's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Values files, paths relative to the chart directory (as Argo CD), confined to the
    /// repository; applied in order over the chart's `values.yaml`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_files: Vec<String>,
    /// Inline values: a YAML string (Argo CD's form) or a map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Value>,
    /// Inline values as a map (wins over `values` when both are given, as in Argo CD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_object: Option<Value>,
    /// `--set NAME=VALUE` (or `--set-string` with `forceString`), highest precedence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<HelmParameter>,
    /// `--set-file NAME=PATH`: the file's content (a path relative to the chart directory,
    /// confined to the repository) as a string value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_parameters: Vec<HelmFileParameter>,
    /// `--set-json NAME=JSON`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_parameters: Vec<HelmJsonParameter>,
    /// Do not render the chart's `crds/` (templates still render).
    #[serde(default)]
    pub skip_crds: bool,
    /// `.Capabilities.KubeVersion` instead of the destination cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_version: Option<String>,
    /// `.Capabilities.APIVersions` instead of the destination cluster's (replaces them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_versions: Vec<String>,
    /// Let templates call `lookup` against the destination cluster (read-only, confined to
    /// it). Off: `lookup` returns an empty map, as `helm template` does.
    #[serde(default)]
    pub lookup: bool,
}

/// One `--set` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmParameter {
    /// The key path (`image.tag`, `list[0]`, `a\.b`).
    pub name: String,
    /// The value, typed as `--set` types it unless `forceString`.
    #[serde(default)]
    pub value: String,
    /// `--set-string`: always a string.
    #[serde(default)]
    pub force_string: bool,
}

/// One `--set-file` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmFileParameter {
    /// The key path.
    pub name: String,
    /// File relative to the chart directory.
    pub path: String,
}

/// One `--set-json` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmJsonParameter {
    /// The key path.
    pub name: String,
    /// A JSON value.
    pub value: String,
}

/// `spec.source.jsonnet` (Argo CD's `directory.jsonnet` fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonnetSpec {
    /// Top-level arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlas: Vec<JsonnetVar>,
    /// External variables (`std.extVar`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext_vars: Vec<JsonnetVar>,
    /// Library directories (`jpath`), relative to the repository root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libs: Vec<String>,
}

/// A Jsonnet variable: a string, or Jsonnet code when `code` is true.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonnetVar {
    /// Name.
    pub name: String,
    /// Value (a string, or code).
    #[serde(default)]
    pub value: String,
    /// Evaluate `value` as Jsonnet code.
    #[serde(default)]
    pub code: bool,
}

/// `spec.source.kustomize`: render with Kustomize (no settings yet; the presence chooses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KustomizeSpec {}

/// `spec.source.directory`: read plain manifests (no settings yet; the presence chooses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySpec {}

impl SourceSpec {
    /// How the source should resolve [`SourceSpec::git_ref`].
    pub fn ref_kind(&self) -> RefKind {
        classify_ref(&self.git_ref)
    }
}

/// `spec.destination`: a cluster (kubeconfig context) and a default namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// kubeconfig context; `None` means the current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Namespace for namespaced objects that do not name one.
    pub namespace: String,
}

/// `spec.sync` (alias `spec.syncPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncPolicy {
    /// Delete objects that Git no longer declares (default false).
    #[serde(default)]
    pub prune: bool,
    /// A prune of more than this share (percent, 1..=100) of the inventory needs
    /// `--confirm-prune` (default 50).
    #[serde(default = "default_prune_threshold")]
    pub prune_threshold: u8,
    /// Allow an empty render to prune everything (default false).
    #[serde(default)]
    pub allow_empty: bool,
    /// Take ownership of fields managed by other field managers (default false).
    #[serde(default)]
    pub force_conflicts: bool,
    /// Create the destination namespace if it does not exist (default false).
    #[serde(default)]
    pub create_namespace: bool,
    /// `driftless serve` syncs new commits by itself (default false: it only reports
    /// OutOfSync and waits for `driftless sync` or the API).
    #[serde(default)]
    pub automated: bool,
    /// `driftless serve` reverts changes made to managed objects in the cluster (default false:
    /// drift is reported, not reverted).
    #[serde(default)]
    pub self_heal: bool,
    /// When the application file is removed from the apps source, delete what it manages
    /// (default false: stop managing and leave the workload in place).
    #[serde(default)]
    pub delete_on_removal: bool,
    /// Retries of a failed automated sync.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Allow/deny windows for automated syncs (manual syncs are not held back).
    #[serde(default)]
    pub windows: Vec<SyncWindow>,
}

/// `spec.sync.retry`: exponential backoff for failed automated syncs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per revision before giving up until the next commit (default 5; 0 = no retry).
    #[serde(default = "default_retry_limit")]
    pub limit: u32,
    /// First delay (default 5s); doubles each attempt.
    #[serde(default = "default_backoff", with = "crate::duration::serde_str")]
    pub backoff: Duration,
    /// Longest delay (default 3m).
    #[serde(default = "default_max_backoff", with = "crate::duration::serde_str")]
    pub max_backoff: Duration,
}

fn default_retry_limit() -> u32 {
    5
}
fn default_backoff() -> Duration {
    Duration::from_secs(5)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(180)
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            limit: default_retry_limit(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based): backoff × 2^(attempt-1), capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Whether a window allows or denies automated syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// Automated syncs run only inside allow windows (when any allow window exists).
    Allow,
    /// Automated syncs never run inside a deny window.
    Deny,
}

/// `spec.sync.windows[]`: a recurring window, in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncWindow {
    /// allow or deny.
    pub kind: WindowKind,
    /// Start times as a 5-field cron expression (`0 22 * * 1-5`), UTC.
    pub schedule: String,
    /// How long each window lasts (`1h`, `30m`).
    #[serde(with = "crate::duration::serde_str")]
    pub duration: Duration,
}

fn default_prune_threshold() -> u8 {
    50
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            prune: false,
            prune_threshold: default_prune_threshold(),
            allow_empty: false,
            force_conflicts: false,
            create_namespace: false,
            automated: false,
            self_heal: false,
            delete_on_removal: false,
            retry: RetryPolicy::default(),
            windows: Vec::new(),
        }
    }
}

/// How a `ref` is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefKind {
    /// A full commit id (40 or 64 hex digits), lowercased.
    Commit(String),
    /// The highest tag matching the range (`>=1.2.0 <2`, `~1.4`, `1.x`).
    SemverRange(semver::VersionReq),
    /// A branch or tag name, resolved by the source (branch first, then tag).
    Name(String),
}

/// Classifies a ref as a commit, a semver range or a name.
///
/// A bare version (`1.4.2`, `v1.4`) is a *name*, the tag with that exact name: a range needs
/// an operator or a wildcard (`^1.4`, `~1.4`, `>=1.4`, `1.4.x`, `1.*`). Space-separated
/// comparators (`>=1.2.0 <2`, npm style) are accepted as well as comma-separated ones, and a
/// `v` prefix on the versions is ignored. Text that looks like a range but does not parse is
/// returned as a name; [`Application::validate`] reports it instead.
pub fn classify_ref(text: &str) -> RefKind {
    match parse_ref(text) {
        Ok(kind) => kind,
        Err(_) => RefKind::Name(text.trim().to_owned()),
    }
}

fn is_commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn looks_like_range(s: &str) -> bool {
    s.contains(['<', '>', '=', '~', '^', '*', ' ', ',']) || s.split('.').skip(1).any(|part| part == "x" || part == "X")
}

/// Like [`classify_ref`], but says why a ref is unusable.
pub fn parse_ref(text: &str) -> Result<RefKind, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("required".to_owned());
    }
    if is_commit_id(s) {
        return Ok(RefKind::Commit(s.to_ascii_lowercase()));
    }
    if looks_like_range(s) {
        if s.contains("||") {
            return Err("semver ranges with `||` are not supported; use one range".to_owned());
        }
        let mut comparators: Vec<String> = Vec::new();
        let mut pending_op = String::new();
        for token in s.split([' ', ',']).filter(|t| !t.is_empty()) {
            if token.chars().all(|c| "<>=~^".contains(c)) {
                pending_op.push_str(token);
                continue;
            }
            let op_len = token.find(|c: char| !"<>=~^".contains(c)).unwrap_or(0);
            let (op, version) = token.split_at(op_len);
            let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
            comparators.push(format!("{pending_op}{op}{version}"));
            pending_op.clear();
        }
        if !pending_op.is_empty() {
            return Err(format!("semver range {s:?} ends with an operator"));
        }
        return semver::VersionReq::parse(&comparators.join(", "))
            .map(RefKind::SemverRange)
            .map_err(|e| format!("not a valid semver range ({e}); e.g. \">=1.2.0 <2\", \"~1.4\", \"1.x\""));
    }
    check_ref_name(s)?;
    Ok(RefKind::Name(s.to_owned()))
}

/// `git check-ref-format` rules that matter, plus no leading `-` (it would read as a git option).
fn check_ref_name(s: &str) -> Result<(), String> {
    let bad = if s.starts_with('-') {
        Some("must not start with '-'")
    } else if s.contains("..") || s.contains("@{") || s.contains("//") {
        Some("must not contain '..', '@{' or '//'")
    } else if s.chars().any(|c| c.is_control() || " ~^:?*[\\".contains(c)) {
        Some("must not contain spaces, control characters or any of ~^:?*[\\")
    } else if s.ends_with('/') || s.ends_with('.') || s.ends_with(".lock") || s.starts_with('/') {
        Some("must not start with '/' or end with '/', '.' or '.lock'")
    } else {
        None
    };
    match bad {
        Some(reason) => Err(format!("invalid branch or tag name: {reason}")),
        None => Ok(()),
    }
}

/// Whether `s` is an RFC 1123 label: 1-63 lowercase letters, digits or '-', starting and ending
/// with a letter or digit (the rule for namespaces and application names).
pub fn is_rfc1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn check_repo_url(url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("required".to_owned());
    }
    if url.starts_with('-') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not start with '-' or contain spaces".to_owned());
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if !["https", "http", "ssh", "git", "file"].contains(&scheme) {
            return Err(format!(
                "unsupported scheme {scheme:?}; use https, http, ssh, git or file"
            ));
        }
        // Never echo the URL here: it may carry a password.
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            return Err("must not contain a password; configure repository credentials instead".to_owned());
        }
        if scheme != "file" && authority.is_empty() {
            return Err("has no host".to_owned());
        }
        return Ok(());
    }
    // scp-like `user@host:path`; `ext::` and other remote helpers run commands, refuse them.
    if url.contains("::") {
        return Err("git remote helpers (`transport::address`) are not allowed".to_owned());
    }
    match url.split_once(':') {
        Some((host, path)) if !host.is_empty() && !path.is_empty() && !host.contains('/') => Ok(()),
        _ => Err("must be a URL (https://, ssh://, git://, file://) or user@host:path".to_owned()),
    }
}

fn check_source_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err("must be a relative path with '/' separators".to_owned());
    }
    if path.split('/').any(|seg| seg == "..") {
        return Err("must not contain '..'".to_owned());
    }
    Ok(())
}

impl Application {
    /// Checks the rules serde cannot express. Returns `(field path, message)` pairs; empty when
    /// valid. Pure, so specs arriving through the API are checked the same way as files.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, msg: String| problems.push((field.to_owned(), msg));
        if self.api_version != API_VERSION {
            bad("apiVersion", format!("must be {API_VERSION}"));
        }
        if self.kind != KIND {
            bad("kind", format!("must be {KIND}"));
        }
        if self.metadata.name.is_empty() {
            bad("metadata.name", "required".to_owned());
        } else if !is_rfc1123_label(&self.metadata.name) {
            bad(
                "metadata.name",
                "must be an RFC 1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit".to_owned(),
            );
        }
        let source = &self.spec.source;
        if let Err(m) = check_repo_url(&source.repo_url) {
            bad("spec.source.repoURL", m);
        }
        if let Err(m) = parse_ref(&source.git_ref) {
            bad("spec.source.ref", m);
        }
        if let Err(m) = check_source_path(&source.path) {
            bad("spec.source.path", m);
        }
        let dest = &self.spec.destination;
        if dest.namespace.is_empty() {
            bad("spec.destination.namespace", "required".to_owned());
        } else if !is_rfc1123_label(&dest.namespace) {
            bad(
                "spec.destination.namespace",
                "must be an RFC 1123 label: at most 63 lowercase letters, digits or '-'".to_owned(),
            );
        }
        if let Some(ctx) = &dest.context
            && (ctx.trim().is_empty() || ctx.chars().any(char::is_control))
        {
            bad(
                "spec.destination.context",
                "must not be empty; omit it to use the current context".to_owned(),
            );
        }
        let threshold = self.spec.sync_policy.prune_threshold;
        if !(1..=100).contains(&threshold) {
            bad(
                "spec.sync.pruneThreshold",
                format!("must be between 1 and 100 (percent), got {threshold}"),
            );
        }
        for (i, w) in self.spec.sync_policy.windows.iter().enumerate() {
            if let Err(m) = crate::window::parse_schedule(&w.schedule) {
                bad(&format!("spec.sync.windows[{i}].schedule"), m);
            }
            if w.duration.is_zero() {
                bad(
                    &format!("spec.sync.windows[{i}].duration"),
                    "must be greater than 0s".to_owned(),
                );
            }
        }
        if self.spec.refresh_interval < Duration::from_secs(1) {
            bad("spec.refreshInterval", "must be at least 1s".to_owned());
        }
        if self.spec.health_timeout.is_zero() {
            bad("spec.healthTimeout", "must be greater than 0s".to_owned());
        }
        if let Some(v) = &source.verify {
            if !matches!(v.mode.to_ascii_lowercase().as_str(), "head" | "commit" | "tag" | "both") {
                bad(
                    "spec.source.verify.mode",
                    format!("must be head, tag or both, got {:?}", v.mode),
                );
            }
            if v.keys.is_empty() || v.keys.iter().any(|k| k.trim().is_empty()) {
                bad(
                    "spec.source.verify.keys",
                    "list at least one trusted key (key text or a file path); empty entries are not allowed".to_owned(),
                );
            }
        }
        if let Some(d) = &self.spec.decryption {
            if d.key_file.is_none() && d.secret_ref.is_none() {
                bad("spec.decryption", "set keyFile, secretRef or both".to_owned());
            }
            if let Some(r) = &d.secret_ref
                && (r.name.len() > 253 || !r.name.split('.').all(is_rfc1123_label))
            {
                bad("spec.decryption.secretRef.name", "must be a Secret name".to_owned());
            }
        }
        if let Some(p) = &self.spec.policy {
            for (i, path) in p.paths.iter().enumerate() {
                if let Err(m) = check_source_path(path) {
                    bad(&format!("spec.policy.paths[{i}]"), m);
                }
            }
            if let Some(r) = &p.repo {
                if let Err(m) = check_repo_url(&r.repo_url) {
                    bad("spec.policy.repo.repoURL", m);
                }
                if let Err(m) = parse_ref(&r.git_ref) {
                    bad("spec.policy.repo.ref", m);
                }
                if let Err(m) = check_source_path(&r.path) {
                    bad("spec.policy.repo.path", m);
                }
            }
            if p.paths.is_empty() && p.repo.is_none() && p.baselines.is_empty() {
                bad("spec.policy", "set paths, repo or baselines".to_owned());
            }
        }
        problems
    }
}

/// Parses and validates all applications in one YAML text (several documents allowed).
///
/// `file` names the text in errors. Problems of all documents are collected into one
/// [`Error::InvalidSpec`]; YAML syntax errors stop at the first.
pub fn parse_applications(text: &str, file: &str) -> Result<Vec<Application>> {
    let nodes = yaml::parse_nodes(text, file, YamlLimits::SPEC)?;
    let mut apps = Vec::new();
    let mut diagnostics = Vec::new();
    for node in nodes.iter().filter(|n| n.kind != yaml::NodeKind::Null) {
        match application_from_node(node, file) {
            Ok(app) => apps.push(app),
            Err(mut d) => diagnostics.append(&mut d),
        }
    }
    if !diagnostics.is_empty() {
        return Err(Error::InvalidSpec { diagnostics });
    }
    check_unique(&apps)?;
    Ok(apps)
}

fn application_from_node(node: &Node, file: &str) -> std::result::Result<Application, Vec<Diagnostic>> {
    let diag = |path: &str, message: String| {
        let mut segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
        // `spec.sync` may be written under its alias `syncPolicy`.
        if segments.get(1) == Some(&"sync") && node.line_of(&segments[..2]) == node.line_of(&segments[..1]) {
            segments[1] = "syncPolicy";
        }
        Diagnostic {
            file: file.to_owned(),
            line: node.line_of(&segments),
            field: path.to_owned(),
            message,
        }
    };
    let value: Value = node.to_value();
    if !value.is_object() {
        return Err(vec![diag(
            "",
            "expected a mapping (an Application document)".to_owned(),
        )]);
    }
    // Say which kind of document this is before complaining about its fields.
    if value.get("kind").and_then(Value::as_str) != Some(KIND) {
        return Err(vec![diag("kind", format!("must be {KIND}"))]);
    }
    let mut app: Application = match serde_path_to_error::deserialize(&value) {
        Ok(app) => app,
        Err(e) => {
            let mut path = e.path().to_string();
            if path == "." {
                path.clear();
            }
            let message = e.inner().to_string();
            let (path, message) = explain_serde_error(path, message);
            return Err(vec![diag(&path, message)]);
        }
    };
    let problems = app.validate();
    if !problems.is_empty() {
        return Err(problems.into_iter().map(|(f, m)| diag(&f, m)).collect());
    }
    app.origin = Some(Origin {
        file: file.to_owned(),
        line: node.line,
    });
    Ok(app)
}

/// Turns serde's wording into ours: `missing field `x`` at `a.b` becomes `a.b.x: required`,
/// and an unknown field is reported at its own path.
fn explain_serde_error(path: String, message: String) -> (String, String) {
    let join = |field: &str| {
        if path.is_empty() {
            field.to_owned()
        } else if path.ends_with(&format!(".{field}")) || path == field {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    let quoted = |m: &str, prefix: &str| {
        m.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = quoted(&message, "missing field `") {
        return (join(&field), "required".to_owned());
    }
    if let Some(field) = quoted(&message, "unknown field `") {
        let expected = message
            .split_once(", expected ")
            .map(|(_, e)| format!(" (expected {e})"))
            .unwrap_or_default();
        return (join(&field), format!("unknown field{expected}"));
    }
    (path, message)
}

/// Errors if two applications share a name, naming both places.
pub fn check_unique(apps: &[Application]) -> Result<()> {
    let mut seen: BTreeMap<&str, &Application> = BTreeMap::new();
    for app in apps {
        if let Some(first) = seen.insert(&app.metadata.name, app) {
            let unknown = || Origin {
                file: "<unknown>".to_owned(),
                line: 0,
            };
            return Err(Error::DuplicateApplication {
                name: app.metadata.name.clone(),
                first: first.origin.clone().unwrap_or_else(unknown),
                second: app.origin.clone().unwrap_or_else(unknown),
            });
        }
    }
    Ok(())
}

/// Reads applications from a file, or from every `*.yaml`/`*.yml` file directly inside a
/// directory (see the module docs for the rules). Names must be unique across all files.
pub fn load_path(path: &Path) -> Result<Vec<Application>> {
    let io = |p: &Path, source| Error::Io {
        path: p.display().to_string(),
        source,
    };
    let meta = fs::metadata(path).map_err(|e| io(path, e))?;
    let files = if meta.is_dir() {
        spec_files_in(path)?
    } else {
        vec![path.to_path_buf()]
    };
    let mut apps = Vec::new();
    let mut diagnostics = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let size = fs::metadata(&file).map_err(|e| io(&file, e))?.len();
        if size > MAX_SPEC_FILE_BYTES {
            return Err(Error::TooLarge {
                file: name,
                size,
                limit: MAX_SPEC_FILE_BYTES,
            });
        }
        let text = fs::read_to_string(&file).map_err(|e| io(&file, e))?;
        match parse_applications(&text, &name) {
            Ok(mut more) => apps.append(&mut more),
            Err(Error::InvalidSpec { diagnostics: mut more }) => diagnostics.append(&mut more),
            Err(other) => return Err(other),
        }
    }
    if !diagnostics.is_empty() {
        return Err(Error::InvalidSpec { diagnostics });
    }
    check_unique(&apps)?;
    Ok(apps)
}

fn spec_files_in(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let io = |p: &Path, source| Error::Io {
        path: p.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let path = entry.path();
        // Follows symlinks: a dangling link is an error, a link to a directory is skipped.
        if fs::metadata(&path).map_err(|e| io(&path, e))?.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

#[cfg(test)]
mod tests;
