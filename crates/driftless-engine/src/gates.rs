//! Trust gates between Git and the cluster: signature verification of the deployed commit,
//! the keys that decrypt SOPS files, and policy evaluation of the rendered objects.
//!
//! Each gate fails closed: a commit that does not verify is not rendered, a SOPS file that
//! does not decrypt fails the render, a policy that cannot be loaded or evaluated fails the
//! sync — in every case before anything is applied or pruned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftless_cluster::ClusterClient;
use driftless_core::spec::{Application, is_inline_key};
use driftless_core::{DesiredObject, Revision};
use driftless_policy::{Limits, PolicySet, Report};
use driftless_sops::Keys;
use driftless_verify::{Mode, TrustedKeys, Verified};
use serde_json::Value;

use crate::{Engine, EngineError, short};

/// Largest key file read for `spec.decryption.keyFile` (1 MiB).
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// Compiled policy sets by what they were built from, and when policy repositories were
/// last fetched.
#[derive(Default)]
pub(crate) struct PolicyCache {
    sets: Mutex<HashMap<String, Arc<PolicySet>>>,
    fetched: Mutex<HashMap<String, Instant>>,
}

/// A path from an app spec: absolute, or relative to the directory of the local file that
/// declared the app (the working directory when the app did not come from a local file).
pub(crate) fn spec_relative(app: &Application, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_owned();
    }
    if let Some(origin) = &app.origin {
        let file = Path::new(&origin.file);
        if file.is_file()
            && let Some(dir) = file.parent()
        {
            return dir.join(p);
        }
    }
    p.to_owned()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// Checks `revision` against the app's `spec.source.verify` (nothing to do without one).
    /// Returns what verified.
    pub async fn verify_revision(&self, app: &Application, revision: &Revision) -> Result<Vec<Verified>, EngineError> {
        let Some(spec) = &app.spec.source.verify else {
            return Ok(Vec::new());
        };
        let name = app.metadata.name.clone();
        let fail = |reason: String| EngineError::Signature {
            app: name.clone(),
            commit: revision.commit.clone(),
            reason,
        };
        let mode: Mode = spec.mode.parse().map_err(&fail)?;
        let mut texts = Vec::new();
        let mut files = Vec::new();
        for entry in &spec.keys {
            if is_inline_key(entry) {
                texts.push(entry.clone());
            } else {
                files.push(spec_relative(app, entry.trim()));
            }
        }
        let keys = TrustedKeys::parse(&texts)
            .and_then(|mut k| {
                if !files.is_empty() {
                    k.extend(TrustedKeys::parse_files(&files)?);
                }
                Ok(k)
            })
            .map_err(|e| fail(format!("the trusted keys in spec.source.verify.keys are unusable: {e}")))?;
        let commit = revision.commit.clone();
        let (raw, tags) = self
            .git_task(app, move |git, url| {
                let raw = git.raw_commit(url, &commit)?;
                let tags = if mode == Mode::Head {
                    Vec::new()
                } else {
                    git.raw_tags_for(url, &commit)?
                };
                Ok((raw, tags))
            })
            .await?;
        let verified = driftless_verify::verify_revision(mode, &raw, &tags, &keys)
            .map_err(|e| fail(format!("signature verification ({mode}) failed: {e}")))?;
        for v in &verified {
            tracing::debug!(app = %app.metadata.name, object = %v.object, signer = %v.signer, "signature verified");
        }
        Ok(verified)
    }

    /// The keys that may decrypt the app's SOPS files: `SOPS_AGE_KEY`/`SOPS_AGE_KEY_FILE`
    /// from the environment, `spec.decryption.keyFile`, and the Secret named by
    /// `spec.decryption.secretRef` (read from `cluster`; without a cluster such an app
    /// cannot be decrypted).
    pub(crate) async fn sops_keys(
        &self,
        app: &Application,
        cluster: Option<&ClusterClient>,
    ) -> Result<Keys, EngineError> {
        let name = &app.metadata.name;
        let fail = |reason: String| EngineError::Keys {
            app: name.clone(),
            reason,
        };
        let mut keys = Keys::from_env().map_err(|e| fail(format!("reading SOPS_AGE_KEY/SOPS_AGE_KEY_FILE: {e}")))?;
        let Some(spec) = &app.spec.decryption else {
            return Ok(keys);
        };
        if let Some(file) = &spec.key_file {
            let path = spec_relative(app, file);
            let shown = path.display().to_string();
            let meta = std::fs::metadata(&path)
                .map_err(|e| fail(format!("spec.decryption.keyFile {shown}: cannot read it: {e}")))?;
            if meta.len() > MAX_KEY_FILE {
                return Err(fail(format!(
                    "spec.decryption.keyFile {shown}: larger than {MAX_KEY_FILE} bytes"
                )));
            }
            let text = driftless_sops::Zeroizing::new(
                std::fs::read_to_string(&path)
                    .map_err(|e| fail(format!("spec.decryption.keyFile {shown}: cannot read it: {e}")))?,
            );
            add_key_text(&mut keys, &text).map_err(|e| fail(format!("spec.decryption.keyFile {shown}: {e}")))?;
        }
        if let Some(r) = &spec.secret_ref {
            let ns = r.namespace.as_deref().unwrap_or(&app.spec.destination.namespace);
            let shown = format!("Secret/{ns}/{}", r.name);
            let cluster = cluster.ok_or_else(|| {
                fail(format!(
                    "spec.decryption.secretRef {shown} needs the cluster; this command runs without one"
                ))
            })?;
            let kind = cluster
                .resolve("v1", "Secret")
                .await
                .map_err(|e| fail(format!("reading {shown}: {e}")))?;
            let secret = cluster
                .get(&kind, Some(ns), &r.name)
                .await
                .map_err(|e| fail(format!("reading {shown}: {e}")))?
                .ok_or_else(|| fail(format!("spec.decryption.secretRef: {shown} does not exist")))?;
            let data = secret
                .get("data")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut found = 0;
            for (key, value) in &data {
                if !(key.ends_with(".agekey") || key.ends_with(".asc")) {
                    continue;
                }
                let Some(b64) = value.as_str() else { continue };
                use base64::Engine as _;
                let bytes = driftless_sops::Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|_| fail(format!("{shown}: data key {key} is not base64")))?,
                );
                let text = std::str::from_utf8(&bytes).map_err(|_| fail(format!("{shown}: {key} is not text")))?;
                let added = if key.ends_with(".agekey") {
                    keys.add_age_identities(text)
                } else {
                    keys.add_pgp_secret_key(text)
                };
                added.map_err(|e| fail(format!("{shown}: {key}: {e}")))?;
                found += 1;
            }
            if found == 0 {
                return Err(fail(format!(
                    "{shown} holds no key: name its data keys *.agekey (age identities) or *.asc (armored OpenPGP secret keys)"
                )));
            }
        }
        Ok(keys)
    }

    /// Evaluates the app's policies (`spec.policy`) on `objects` rendered at `revision`.
    /// `None` when the app has no policy.
    pub async fn check_policy(
        &self,
        app: &Application,
        revision: &Revision,
        objects: &[DesiredObject],
    ) -> Result<Option<Report>, EngineError> {
        let Some(spec) = app.spec.policy.clone() else {
            return Ok(None);
        };
        let name = app.metadata.name.clone();
        let fail = |reason: String| EngineError::Policy {
            app: name.clone(),
            commit: revision.commit.clone(),
            reason,
        };
        // Policy sources: (repository url, commit, path) triples plus baselines.
        let mut sources: Vec<(String, String, String)> = spec
            .paths
            .iter()
            .map(|p| (app.spec.source.repo_url.clone(), revision.commit.clone(), p.clone()))
            .collect();
        if let Some(repo) = &spec.repo {
            let commit = self.policy_repo_commit(app, repo).await?;
            sources.push((repo.repo_url.clone(), commit, repo.path.clone()));
        }
        let cache_key = format!("{sources:?}|{:?}", spec.baselines);
        let cached = lock(&self.policies.sets).get(&cache_key).cloned();
        let set = match cached {
            Some(set) => set,
            None => {
                let git = self.git.clone();
                let baselines = spec.baselines.clone();
                let built = tokio::task::spawn_blocking(move || -> Result<PolicySet, String> {
                    let mut set = PolicySet::new();
                    for (url, commit, path) in &sources {
                        let shown = format!("{}@{}:{}", driftless_source::redact_url(url), short(commit), path);
                        let files = git
                            .list_files(url, commit, path)
                            .map_err(|e| format!("reading policies from {shown}: {e}"))?;
                        let mut found = 0;
                        for rel in files.iter().filter(|f| driftless_policy::is_policy_file(f)) {
                            let full = if path.is_empty() {
                                rel.clone()
                            } else {
                                format!("{}/{rel}", path.trim_end_matches('/'))
                            };
                            let bytes = git
                                .read_file(url, commit, &full)
                                .map_err(|e| format!("reading policy {full} from {shown}: {e}"))?;
                            let text = String::from_utf8(bytes)
                                .map_err(|_| format!("policy {full} in {shown} is not UTF-8 text"))?;
                            set.add_file(&full, &text).map_err(|e| e.to_string())?;
                            found += 1;
                        }
                        if found == 0 {
                            return Err(format!(
                                "no policy (*.rego, Gatekeeper *.yaml) under {shown}: check spec.policy"
                            ));
                        }
                    }
                    set.add_baseline(&baselines).map_err(|e| e.to_string())?;
                    set.validate().map_err(|e| e.to_string())?;
                    Ok(set)
                })
                .await
                .map_err(|e| fail(format!("policy task: {e}")))?
                .map_err(&fail)?;
                let set = Arc::new(built);
                let mut sets = lock(&self.policies.sets);
                if sets.len() > 256 {
                    sets.clear();
                }
                sets.insert(cache_key, set.clone());
                set
            }
        };
        // Policies judge shape, not secrets: Secret values are masked before evaluation, so a
        // policy message can never quote one.
        let objects: Vec<DesiredObject> = objects.iter().map(masked_secret).collect();
        let report = tokio::task::spawn_blocking(move || set.evaluate(&objects, &Limits::default()))
            .await
            .map_err(|e| fail(format!("policy task: {e}")))?
            .map_err(|e| fail(e.to_string()))?;
        Ok(Some(report))
    }

    /// Resolves a central policy repository's ref, fetching it when the engine fetches on
    /// every resolve (the CLI) or when it was not fetched within the app's refresh interval.
    async fn policy_repo_commit(
        &self,
        app: &Application,
        repo: &driftless_core::spec::PolicyRepo,
    ) -> Result<String, EngineError> {
        let pseudo = {
            let mut a = app.clone();
            a.spec.source.repo_url = repo.repo_url.clone();
            a.spec.source.git_ref = repo.git_ref.clone();
            a.spec.source.path = repo.path.clone();
            a
        };
        let due = {
            let fetched = lock(&self.policies.fetched);
            fetched
                .get(&repo.repo_url)
                .is_none_or(|t| t.elapsed() >= app.spec.refresh_interval.max(Duration::from_secs(1)))
        };
        if due || self.auto_fetch.load(std::sync::atomic::Ordering::Relaxed) {
            self.fetch(&pseudo).await?;
            lock(&self.policies.fetched).insert(repo.repo_url.clone(), Instant::now());
        }
        let git_ref = repo.git_ref.clone();
        let rev = self
            .git_task(&pseudo, move |git, url| git.resolve(url, &git_ref))
            .await?;
        Ok(rev.commit)
    }
}

/// Adds a key file's text: age identities, or an armored OpenPGP secret key.
fn add_key_text(keys: &mut Keys, text: &str) -> Result<(), driftless_sops::SopsError> {
    if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
        keys.add_pgp_secret_key(text).map(|_| ())
    } else {
        keys.add_age_identities(text).map(|_| ())
    }
}

/// A copy of `o` whose Secret `data`/`stringData` values are replaced by `<redacted>`.
fn masked_secret(o: &DesiredObject) -> DesiredObject {
    let mut o = o.clone();
    if o.object.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(map) = o.object.get_mut(field).and_then(Value::as_object_mut) {
                for v in map.values_mut() {
                    *v = Value::String("<redacted>".into());
                }
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app_from(file: &Path) -> Application {
        let text = "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  source: {repoURL: 'https://git.example.com/a.git', ref: main}\n  destination: {namespace: a}\n";
        std::fs::write(file, text).unwrap();
        driftless_core::spec::parse_applications(text, &file.to_string_lossy())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn spec_paths_are_relative_to_the_declaring_file() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_from(&dir.path().join("app.yaml"));
        assert_eq!(spec_relative(&app, "keys/age.txt"), dir.path().join("keys/age.txt"));
        assert_eq!(spec_relative(&app, "/etc/k"), PathBuf::from("/etc/k"));
        let mut detached = app.clone();
        detached.origin = None;
        assert_eq!(spec_relative(&detached, "k"), PathBuf::from("k"));
    }

    #[test]
    fn policies_never_see_secret_values() {
        let o = DesiredObject {
            object: json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "data": {"p": "c2VjcmV0"}, "stringData": {"q": "plain"}}),
            origin: driftless_core::object::Origin {
                file: "s.yaml".into(),
                line: 1,
            },
        };
        let m = masked_secret(&o);
        assert_eq!(m.object["data"]["p"], "<redacted>");
        assert_eq!(m.object["stringData"]["q"], "<redacted>");
        let cm = DesiredObject {
            object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}),
            origin: o.origin.clone(),
        };
        assert_eq!(masked_secret(&cm).object, cm.object);
    }

    #[test]
    fn unusable_key_files_are_errors() {
        assert!(add_key_text(&mut Keys::new(), "not a key").is_err());
        let pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PRIVATE KEY BLOCK-----\n";
        assert!(add_key_text(&mut Keys::new(), pgp).is_err());
    }
}
