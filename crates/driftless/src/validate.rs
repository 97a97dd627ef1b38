//! `driftless validate PATH`: the trust gates of a sync, run on a checkout with no cluster —
//! for pull requests, before merge.
//!
//! Steps, each reported as findings in one [`Report`] so that human, JSON and JUnit output
//! share one shape:
//! 1. render PATH (a directory of manifests, a kustomization, or one file) exactly as a sync
//!    would (a render error is an error: exit 2);
//! 2. structural checks of every object: identity, and for built-in kinds the API server's
//!    own validation rules (required fields, formats, ranges) — policy `structure`;
//! 3. SOPS files: when keys are available (`SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY`), every
//!    encrypted file under PATH must decrypt with its MAC intact — policy `sops`; without
//!    keys they are only counted;
//! 4. signatures (with `--verify-key`): the checkout's HEAD (and/or a tag at it) must carry a
//!    trusted signature — policy `signature`;
//! 5. policies: `--policy DIR` (Conftest-style Rego and Gatekeeper templates/constraints),
//!    `--baseline NAME` — their own policy names.
//!
//! Exit codes: 0 when no deny finding, 1 when at least one, 2 on error.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use driftless_core::object::{ObjectRef, Origin};
use driftless_core::spec::is_inline_key;
use driftless_policy::{Limits, PolicySet, Severity, Violation};
use serde_json::{Value, json};

/// Flags of `driftless validate`.
#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Directory (plain manifests or a kustomization) or file to validate.
    pub path: PathBuf,
    /// Directory of policies: `*.rego` (Conftest-style `deny`/`warn`/`violation` rules) and
    /// Gatekeeper `ConstraintTemplate` + constraint YAML. Repeatable.
    #[arg(long = "policy", value_name = "DIR")]
    pub policy: Vec<PathBuf>,
    /// Built-in baseline policy to switch on (`no-privileged`, `no-latest-tag`,
    /// `resources-requests`, `no-host-path`, `no-host-network`, `all`). Repeatable.
    #[arg(long = "baseline", value_name = "NAME")]
    pub baseline: Vec<String>,
    /// Trusted key (armored OpenPGP public key, SSH public key or allowed_signers line, inline
    /// or a file): the checkout's HEAD must be signed by one. Repeatable.
    #[arg(long = "verify-key", value_name = "KEY|FILE")]
    pub verify_key: Vec<String>,
    /// What must be signed: `head`, `tag` (an annotated tag at HEAD) or `both`.
    #[arg(long, default_value = "head", value_name = "MODE")]
    pub verify_mode: String,
    /// Output: `human`, `json` or `junit` (default: human; the global `-o json` means json).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Also write a JUnit XML report to this file (for CI test reports).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Runs `validate`; returns the exit code. Errors (exit 2) are returned as `Err`.
pub fn run(args: &ValidateArgs, json_output: bool) -> Result<u8> {
    let format = match args.format.as_deref() {
        None if json_output => "json",
        None => "human",
        Some(f @ ("human" | "json" | "junit")) => f,
        Some(other) => bail!("--format {other:?}: expected human, json or junit"),
    };
    let path = args
        .path
        .canonicalize()
        .with_context(|| format!("cannot read {}", args.path.display()))?;
    let (root, rel) = render_root(&path);

    let rendered = driftless_render::render(&root, &rel, &driftless_render::RenderOptions::default())
        .with_context(|| format!("rendering {} failed", args.path.display()))?;
    let objects = rendered.set.objects;
    let mut findings: Vec<Violation> = Vec::new();
    let mut notes: Vec<String> = rendered.warnings.clone();

    // 2. Structure.
    for o in &objects {
        findings.extend(structure(o));
    }

    // 3. SOPS files.
    let sops_root = if path.is_dir() { path.clone() } else { root.clone() };
    let encrypted = driftless_sops::find_encrypted(&sops_root).map_err(|e| anyhow!("{e}"))?;
    if !encrypted.is_empty() {
        let keys = driftless_sops::Keys::from_env().context("reading SOPS_AGE_KEY/SOPS_AGE_KEY_FILE")?;
        if keys.is_empty() {
            notes.push(format!(
                "{} SOPS file(s) not decrypted (no key: set SOPS_AGE_KEY_FILE to check them)",
                encrypted.len()
            ));
        } else {
            for file in &encrypted {
                let full = sops_root.join(file);
                let text = std::fs::read(&full).with_context(|| format!("reading {}", full.display()))?;
                let fmt = driftless_sops::Format::from_path(&full);
                if let Err(e) = driftless_sops::decrypt(&text, fmt, &keys) {
                    findings.push(finding("sops", "File", file, file, format!("does not decrypt: {e}")));
                }
            }
        }
    }

    // 4. Signatures.
    let mut signature = Value::Null;
    if !args.verify_key.is_empty() {
        let mode: driftless_verify::Mode = args.verify_mode.parse().map_err(|e: String| anyhow!(e))?;
        let keys = trusted_keys(&args.verify_key)?;
        let driftless_source::LocalHead { commit, raw, tags } = driftless_source::local_head(&path)?;
        match driftless_verify::verify_revision(mode, &raw, &tags, &keys) {
            Ok(v) => {
                signature = json!({"commit": commit, "mode": mode.to_string(), "verified": v.iter().map(|v| json!({"object": v.object, "signer": v.signer})).collect::<Vec<_>>()});
            }
            Err(e) => {
                signature = json!({"commit": commit, "mode": mode.to_string(), "error": e.to_string()});
                findings.push(finding(
                    "signature",
                    "Commit",
                    &commit,
                    &path.display().to_string(),
                    format!("signature verification ({mode}) failed: {e}"),
                ));
            }
        }
    }

    // 5. Policies.
    let mut set = PolicySet::new();
    for dir in &args.policy {
        set.add_dir(dir)
            .with_context(|| format!("loading policies from {}", dir.display()))?;
    }
    set.add_baseline(&args.baseline)?;
    set.validate().context("checking the policies")?;
    let mut report = set
        .evaluate(&objects, &Limits::default())
        .context("evaluating the policies")?;
    report.objects = objects.len();
    let mut policies = report.policies.clone();
    policies.extend(["structure".to_owned(), "sops".to_owned()]);
    if !args.verify_key.is_empty() {
        policies.push("signature".into());
    }
    policies.sort();
    policies.dedup();
    report.policies = policies;
    report.violations.extend(findings);

    let denied = report.denied();
    if let Some(file) = &args.junit {
        std::fs::write(file, report.to_junit("driftless validate"))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    match format {
        "json" => {
            let mut v = report.to_json();
            v["path"] = json!(args.path.display().to_string());
            v["notes"] = json!(notes);
            v["sopsFiles"] = json!(encrypted);
            if !signature.is_null() {
                v["signature"] = signature;
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        "junit" => print!("{}", report.to_junit("driftless validate")),
        _ => {
            for n in &notes {
                eprintln!("note: {n}");
            }
            print!("{}", report.human());
            println!(
                "{}: {} object(s), {} policies: {} denied, {} warning(s)",
                args.path.display(),
                report.objects,
                report.policies.len(),
                report.count(Severity::Deny),
                report.count(Severity::Warn)
            );
        }
    }
    Ok(if denied { 1 } else { 0 })
}

/// The directory to render from and PATH relative to it: the enclosing git work tree when
/// there is one (a kustomization may use bases elsewhere in the repository; the renderer
/// confines it to that root), else PATH itself (or a file's directory).
fn render_root(path: &Path) -> (PathBuf, String) {
    let start = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(path)
    };
    let root = start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(start)
        .to_path_buf();
    let rel = path
        .strip_prefix(&root)
        .map(|r| r.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default();
    (root, rel)
}

fn trusted_keys(entries: &[String]) -> Result<driftless_verify::TrustedKeys> {
    let (texts, files): (Vec<String>, Vec<String>) = entries.iter().cloned().partition(|e| is_inline_key(e));
    let mut keys = driftless_verify::TrustedKeys::parse(&texts)?;
    keys.extend(driftless_verify::TrustedKeys::parse_files(&files)?);
    Ok(keys)
}

/// A deny finding about something that is not a Kubernetes object (a commit, a file).
fn finding(policy: &str, kind: &str, name: &str, file: &str, message: String) -> Violation {
    Violation {
        severity: Severity::Deny,
        policy: policy.into(),
        object: ObjectRef {
            group: String::new(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        },
        origin: Origin {
            file: file.into(),
            line: 0,
        },
        message,
    }
}

/// Structural findings for one object: built-in kinds are checked with the API server's
/// validation rules (after its defaulting, as the server would do).
fn structure(o: &driftless_core::DesiredObject) -> Vec<Violation> {
    let Some(r) = o.object_ref() else {
        return Vec::new(); // the renderer refuses objects without identity
    };
    let api_version = o.object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let types = kubesim_schema::builtin_types();
    let Some(rt) = types
        .iter()
        .find(|t| t.group == group && t.version == version && t.kind == r.kind)
    else {
        return Vec::new(); // custom resources: their schema lives in the cluster
    };
    let mut obj = o.object.clone();
    if let Some(m) = obj.as_object_mut() {
        m.remove("sops"); // an encrypted Secret not decrypted here
    }
    if rt.namespaced
        && obj.pointer("/metadata/namespace").is_none()
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), json!("default"));
    }
    kubesim_schema::apply_defaults(rt, &mut obj);
    match kubesim_schema::validate(rt, &obj, None) {
        Ok(()) => Vec::new(),
        Err(invalid) => invalid
            .causes
            .iter()
            .map(|c| Violation {
                severity: Severity::Deny,
                policy: "structure".into(),
                object: r.clone(),
                origin: o.origin.clone(),
                message: format!("{}: {}", c.field, c.message),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> driftless_core::DesiredObject {
        driftless_core::DesiredObject {
            object: v,
            origin: Origin {
                file: "x.yaml".into(),
                line: 1,
            },
        }
    }

    #[test]
    fn a_deployment_without_containers_fails_structure() {
        let bad = obj(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}}}),
        );
        let f = structure(&bad);
        assert!(!f.is_empty());
        assert!(
            f.iter()
                .all(|v| v.policy == "structure" && v.object.kind == "Deployment")
        );
        let report = driftless_policy::Report {
            violations: f,
            ..Default::default()
        };
        assert!(report.denied());
    }

    #[test]
    fn good_objects_and_custom_resources_pass() {
        let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}));
        assert!(structure(&cm).is_empty());
        let cr =
            obj(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"x": 1}}));
        assert!(structure(&cr).is_empty());
    }

    #[test]
    fn render_root_is_the_enclosing_git_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::create_dir_all(dir.path().join("apps/web")).unwrap();
        let (root, rel) = render_root(&dir.path().join("apps/web"));
        assert_eq!(root, dir.path());
        assert_eq!(rel, "apps/web");
    }
}
