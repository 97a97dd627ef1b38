//! Policy as code for driftless: Rego policies evaluated on rendered objects before any apply.
//!
//! A [`PolicySet`] holds compiled policies of three origins, and [`PolicySet::evaluate`] runs
//! all of them on every [`DesiredObject`] of a render, producing a [`Report`] of
//! [`Violation`]s (`deny` blocks the apply, `warn` is reported):
//!
//! - **Conftest-style modules** (`*.rego`): each object is `input` (the object itself, as
//!   `conftest test` gives each document), and every rule named `deny`, `violation` or
//!   `warn` — or prefixed `deny_`, `violation_`, `warn_`, as Conftest accepts — in any package
//!   is evaluated (`data.<package>.<rule>`). A rule's value may be a set of strings, a set of
//!   objects with `msg` (Conftest's structured form, Gatekeeper's `violation[{"msg": m}]`),
//!   or `true`. All user modules share one engine, as in Conftest, so helper packages and
//!   multi-file packages work. Both Rego v0 (`deny[msg] { ... }`) and v1
//!   (`deny contains msg if { ... }`) are accepted, per module.
//! - **Gatekeeper** `ConstraintTemplate` and constraint documents, taken as they are (see
//!   [`gatekeeper`](crate::PolicySet::add_gatekeeper_yaml) for input, matching and
//!   enforcement actions).
//! - **Baseline policies** embedded in the crate and switched on by name
//!   ([`PolicySet::baseline_names`]).
//!
//! # Decisions
//!
//! - **Engine: regorus** (Microsoft's Rego interpreter in Rust), so policies run in-process
//!   with no OPA binary. Its default features (`full-opa`, `rvm`) are off; on are `arc` (so
//!   engines can move to a worker thread), `std`, and the builtin families Gatekeeper-library
//!   templates and common Conftest policies call: `regex`, `glob`, `semver`, `base64`,
//!   `base64url`, `hex`, `yaml` (`yaml.unmarshal`), `net` (`net.cidr_contains`), `time`
//!   (`time.now_ns`, `time.parse_rfc3339_ns`; pulls chrono-tz, a few seconds to build),
//!   `graph` and `opa-runtime` (no extra dependencies). Off: `jsonschema` (a large dependency
//!   tree for a builtin policies rarely call), `http` (`http.send` has no place in an
//!   offline check), `uuid`, `urlquery`, `cache`, `coverage`, `jsonpatch` and `rvm`.
//!   Unknown builtins are reported when the policy is compiled, naming the policy.
//! - **Limits.** Each evaluation of one policy rule on one object is bounded by
//!   [`Limits::timeout`], twice over: regorus' cooperative execution timer (checked as the
//!   interpreter steps, it stops loops and huge comprehensions with an error), and a
//!   watchdog: evaluation runs on a worker thread, and when a result does not arrive within
//!   the timeout plus a grace period (a builtin that never yields to the timer), the worker
//!   is abandoned — it keeps its CPU until it finishes on its own, the evaluation returns
//!   [`PolicyError::Timeout`] at once. Rust cannot kill a thread; a process-level sandbox
//!   would be the only stronger bound. [`Limits::max_instructions`] is accepted but not
//!   enforced yet: regorus' instruction counter exists only in its bytecode VM, which
//!   cannot compile `with` and some partial-object rules; the tree interpreter used here has
//!   the timer only.
//! - **Broken policies are errors, not panics or silence**: Rego that does not parse or
//!   compile is refused when loaded ([`PolicyError::Rego`], [`PolicyError::Template`] naming
//!   the template); a policy that fails on an object returns [`PolicyError::Runtime`] naming
//!   the policy and the object. Evaluation stops at the first error, in a deterministic
//!   order (objects in render order, then policies in name order).
//! - **Determinism**: violations are sorted (object, policy, message) and de-duplicated.

#![warn(missing_docs)]

mod error;
mod eval;
mod gatekeeper;
mod rego;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use driftless_core::object::DesiredObject;
use regorus::Engine;

pub use error::PolicyError;
pub use report::{Report, Severity, Violation};

use crate::gatekeeper::{Constraint, Template};
use crate::rego::RuleClass;

/// The lib module every baseline engine holds (`data.driftless.lib.workloads`).
const BASELINE_LIB: &str = include_str!("baseline/workloads.rego");

/// Baseline policies: name and Rego source.
const BASELINES: &[(&str, &str)] = &[
    ("no-privileged", include_str!("baseline/no_privileged.rego")),
    ("no-latest-tag", include_str!("baseline/no_latest_tag.rego")),
    ("resources-requests", include_str!("baseline/resources_requests.rego")),
    ("no-host-path", include_str!("baseline/no_host_path.rego")),
    ("no-host-network", include_str!("baseline/no_host_network.rego")),
];

/// Whether [`PolicySet::add_file`] reads a file of this name.
pub fn is_policy_file(rel: &str) -> bool {
    (rel.ends_with(".rego") && !rel.ends_with("_test.rego")) || rel.ends_with(".yaml") || rel.ends_with(".yml")
}

/// Names of [`BASELINES`], in the same order.
const BASELINE_NAMES: &[&str] = &[
    "no-privileged",
    "no-latest-tag",
    "resources-requests",
    "no-host-path",
    "no-host-network",
];

/// Bounds on one evaluation of one policy rule on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one evaluation (default 5 s). See the crate docs for how it is
    /// enforced.
    pub timeout: Duration,
    /// Reserved: an instruction budget. Not enforced yet (see the crate docs, "Limits");
    /// a `Some` value is logged at debug level and otherwise ignored.
    pub max_instructions: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(5),
            max_instructions: None,
        }
    }
}

/// One rule evaluated per object: `data.<pkg>.<rule>`.
#[derive(Debug, Clone)]
pub(crate) struct RegoRule {
    /// `data.main.deny`.
    pub(crate) path: String,
    /// `deny` (used as the message of a rule that is just `true`).
    pub(crate) rule: String,
    pub(crate) class: RuleClass,
    /// Name in reports: the declaring file(s) or the baseline name.
    pub(crate) policy: String,
}

/// An engine and the rules to evaluate in it.
#[derive(Clone)]
pub(crate) struct RegoUnit {
    pub(crate) engine: Engine,
    pub(crate) rules: Vec<RegoRule>,
}

/// Compiled policies, cheap to evaluate many times.
///
/// Build one with [`PolicySet::load_dir`] (or [`PolicySet::default`] and the `add_*`
/// methods), then call [`PolicySet::evaluate`] for each render. Evaluation takes `&self`:
/// engines are cloned (cheaply, their modules are shared) for each evaluation.
#[derive(Clone, Default)]
pub struct PolicySet {
    /// All Conftest-style modules, in one engine.
    conftest: Option<Engine>,
    /// Module names added to `conftest`.
    conftest_modules: BTreeSet<String>,
    /// `data.pkg.rule` -> (class, declaring files).
    conftest_rules: BTreeMap<String, (String, RuleClass, BTreeSet<String>)>,
    /// One engine per enabled baseline policy.
    baselines: Vec<(String, RegoUnit)>,
    /// Templates by constraint kind.
    templates: BTreeMap<String, Template>,
    /// Constraints in load order.
    constraints: Vec<Constraint>,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("rego_modules", &self.conftest_modules)
            .field("rego_rules", &self.conftest_rules.keys().collect::<Vec<_>>())
            .field("baselines", &self.baselines.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("templates", &self.templates.keys().collect::<Vec<_>>())
            .field(
                "constraints",
                &self.constraints.iter().map(Constraint::policy_name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PolicySet {
    /// An empty set (no policy: every evaluation reports nothing).
    pub fn new() -> PolicySet {
        PolicySet::default()
    }

    /// Loads every policy under `dir`, recursively and in path order: `*.rego` files as
    /// Conftest-style modules (`*_test.rego` files, OPA unit tests, are skipped) and
    /// `*.yaml`/`*.yml` files as Gatekeeper documents (a YAML file without any
    /// `ConstraintTemplate` or constraint is skipped). Hidden files and directories are
    /// skipped. Policies are named by their path relative to `dir` (`k8s/deny.rego`).
    ///
    /// After loading, the set is [validated](PolicySet::validate).
    pub fn load_dir(dir: &Path) -> Result<PolicySet, PolicyError> {
        let mut set = PolicySet::new();
        set.add_dir(dir)?;
        set.validate()?;
        tracing::debug!(dir = %dir.display(), policies = ?set, "loaded policies");
        Ok(set)
    }

    /// Adds every policy under `dir` as [`PolicySet::load_dir`] does (several directories
    /// may be added to one set). Call [`PolicySet::validate`] after the last one.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), PolicyError> {
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        for (rel, path) in files {
            if !is_policy_file(&rel) {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
                path: path.clone(),
                source,
            })?;
            self.add_file(&rel, &text)?;
        }
        Ok(())
    }

    /// Adds one policy file by its name, as [`PolicySet::load_dir`] does: `*.rego` (not
    /// `*_test.rego`) as a Conftest-style module, `*.yaml`/`*.yml` as Gatekeeper documents;
    /// other files are ignored. For callers reading files from elsewhere than a directory
    /// (a Git tree). Call [`PolicySet::validate`] after the last file.
    pub fn add_file(&mut self, rel: &str, text: &str) -> Result<(), PolicyError> {
        if rel.ends_with(".rego") && !rel.ends_with("_test.rego") {
            self.add_rego(rel, text)
        } else if rel.ends_with(".yaml") || rel.ends_with(".yml") {
            self.add_gatekeeper_yaml(rel, text)
        } else {
            Ok(())
        }
    }

    /// Adds a Conftest-style Rego module named `name` (a file name; it names the policy in
    /// reports and errors). Fails when the module does not parse or the name is taken.
    ///
    /// Modules may refer to each other (helpers in another package), so compile errors that
    /// involve several modules surface in [`PolicySet::validate`] (which
    /// [`PolicySet::load_dir`] calls) or, failing that, as a runtime error at evaluation.
    pub fn add_rego(&mut self, name: &str, source: &str) -> Result<(), PolicyError> {
        if !self.conftest_modules.insert(name.to_owned()) {
            return Err(PolicyError::Rego {
                policy: name.to_owned(),
                message: "a policy with this name is already loaded".into(),
            });
        }
        let engine = self.conftest.get_or_insert_with(Engine::new);
        let package = match rego::add_module(engine, name, source) {
            Ok(p) => p,
            Err(message) => {
                self.conftest_modules.remove(name);
                return Err(PolicyError::Rego {
                    policy: name.to_owned(),
                    message,
                });
            }
        };
        for rule in rego::policy_rules(engine, name, source) {
            let class = rego::classify_rule(&rule).expect("policy_rules only returns classified rules");
            let entry = self
                .conftest_rules
                .entry(format!("{package}.{rule}"))
                .or_insert_with(|| (rule.clone(), class, BTreeSet::new()));
            entry.2.insert(name.to_owned());
        }
        Ok(())
    }

    /// Adds the Gatekeeper documents of one YAML file (`file` names it in errors): every
    /// `ConstraintTemplate` is compiled (broken Rego is an error naming the template) and
    /// every constraint is read. A constraint's template may come from a later file;
    /// [`PolicySet::validate`] checks that each constraint has one.
    ///
    /// See the `gatekeeper` module docs (in the source) for the review input, `match`
    /// semantics, `data.inventory` and enforcement actions.
    pub fn add_gatekeeper_yaml(&mut self, file: &str, text: &str) -> Result<(), PolicyError> {
        let parsed = gatekeeper::parse_file(file, text)?;
        for t in parsed.templates {
            if let Some(prev) = self.templates.get(&t.kind) {
                return Err(PolicyError::Template {
                    file: file.to_owned(),
                    template: t.name,
                    message: format!(
                        "kind {} is already defined by template {} in {}",
                        prev.kind, prev.name, prev.file
                    ),
                });
            }
            self.templates.insert(t.kind.clone(), t);
        }
        for c in parsed.constraints {
            if let Some(prev) = self.constraints.iter().find(|p| p.kind == c.kind && p.name == c.name) {
                return Err(PolicyError::Constraint {
                    file: file.to_owned(),
                    kind: c.kind,
                    name: c.name,
                    message: format!("already defined in {}", prev.file),
                });
            }
            self.constraints.push(c);
        }
        Ok(())
    }

    /// Switches on built-in baseline policies by name (see [`PolicySet::baseline_names`]);
    /// names already on are ignored. Their violations are `deny` and name the baseline as
    /// the policy.
    pub fn add_baseline(&mut self, names: &[String]) -> Result<(), PolicyError> {
        if names.iter().any(|n| n == "all") {
            let all: Vec<String> = BASELINE_NAMES.iter().map(|n| (*n).to_owned()).collect();
            return self.add_baseline(&all);
        }
        for name in names {
            let Some((name, source)) = BASELINES.iter().find(|(n, _)| n == name) else {
                return Err(PolicyError::UnknownBaseline { name: name.clone() });
            };
            if self.baselines.iter().any(|(n, _)| n == name) {
                continue;
            }
            let mut engine = Engine::new();
            let rego_err = |message: String| PolicyError::Rego {
                policy: (*name).to_owned(),
                message,
            };
            rego::add_module(&mut engine, "driftless/lib/workloads.rego", BASELINE_LIB).map_err(rego_err)?;
            let path = format!("driftless/baseline/{name}.rego");
            let package = rego::add_module(&mut engine, &path, source).map_err(rego_err)?;
            let rules = rego::policy_rules(&engine, &path, source)
                .into_iter()
                .map(|rule| RegoRule {
                    path: format!("{package}.{rule}"),
                    class: rego::classify_rule(&rule).expect("classified"),
                    rule,
                    policy: (*name).to_owned(),
                })
                .collect();
            let mut unit = RegoUnit { engine, rules };
            eval::prepare(&mut unit)?;
            self.baselines.push(((*name).to_owned(), unit));
        }
        Ok(())
    }

    /// Names accepted by [`PolicySet::add_baseline`] (which also takes `all`):
    /// - `no-privileged`: no container (or init/ephemeral container) sets
    ///   `securityContext.privileged: true`;
    /// - `no-latest-tag`: every image has a tag other than `latest`, or a digest;
    /// - `resources-requests`: every container and init container requests `cpu` and
    ///   `memory` (a limit alone counts, Kubernetes then requests the limit);
    /// - `no-host-path`: no `hostPath` volume, no hostPath PersistentVolume;
    /// - `no-host-network`: no `hostNetwork: true`.
    ///
    /// They apply to Pods and to the pod templates of Deployments, StatefulSets, DaemonSets,
    /// ReplicaSets, ReplicationControllers, Jobs, CronJobs and PodTemplates.
    pub fn baseline_names() -> &'static [&'static str] {
        BASELINE_NAMES
    }

    /// Whether the set holds no policy at all.
    pub fn is_empty(&self) -> bool {
        self.conftest_rules.is_empty() && self.baselines.is_empty() && self.constraints.is_empty()
    }

    /// Names of every policy that [`PolicySet::evaluate`] runs, sorted.
    pub fn policy_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .rego_units()
            .iter()
            .flat_map(|u| u.rules.iter().map(|r| r.policy.clone()))
            .chain(self.constraints.iter().map(Constraint::policy_name))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Checks that the set can be evaluated: every Conftest-style module compiles together
    /// (each rule is run once on an empty object) and every constraint has a template.
    /// [`PolicySet::load_dir`] calls this; call it after `add_rego` to fail early.
    pub fn validate(&mut self) -> Result<(), PolicyError> {
        for c in &self.constraints {
            if !self.templates.contains_key(&c.kind) {
                return Err(missing_template(c));
            }
        }
        if let Some(mut unit) = self.conftest_unit() {
            eval::prepare(&mut unit)?;
            // Keep the prepared engine: clones of it skip preparation.
            self.conftest = Some(unit.engine);
        }
        Ok(())
    }

    /// Evaluates every policy on every object. Returns the violations (an empty report when
    /// all pass) or the first error: a policy failing or running out of `limits` on an
    /// object, or a constraint without template.
    pub fn evaluate(&self, objects: &[DesiredObject], limits: &Limits) -> Result<Report, PolicyError> {
        if let Some(n) = limits.max_instructions {
            tracing::debug!(
                max_instructions = n,
                "instruction limits are not enforced by the Rego interpreter"
            );
        }
        for c in &self.constraints {
            if !self.templates.contains_key(&c.kind) {
                return Err(missing_template(c));
            }
        }
        let mut report = eval::evaluate(self.rego_units(), &self.templates, &self.constraints, objects, limits)?;
        report.policies = self.policy_names();
        report.objects = objects.len();
        report.normalise();
        Ok(report)
    }

    /// The Conftest engine with its rules, if any module declares one.
    fn conftest_unit(&self) -> Option<RegoUnit> {
        let engine = self.conftest.as_ref()?;
        if self.conftest_rules.is_empty() {
            return None;
        }
        let rules = self
            .conftest_rules
            .iter()
            .map(|(path, (rule, class, files))| RegoRule {
                path: path.clone(),
                rule: rule.clone(),
                class: *class,
                policy: files.iter().cloned().collect::<Vec<_>>().join(","),
            })
            .collect();
        Some(RegoUnit {
            engine: engine.clone(),
            rules,
        })
    }

    fn rego_units(&self) -> Vec<RegoUnit> {
        self.conftest_unit()
            .into_iter()
            .chain(self.baselines.iter().map(|(_, u)| u.clone()))
            .collect()
    }
}

fn missing_template(c: &Constraint) -> PolicyError {
    PolicyError::Constraint {
        file: c.file.clone(),
        kind: c.kind.clone(),
        name: c.name.clone(),
        message: format!("no ConstraintTemplate defines kind {}", c.kind),
    }
}

/// Collects `(relative path, path)` of the regular files under `dir`, sorted, skipping
/// hidden entries and symlinked directories.
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) -> Result<(), PolicyError> {
    let io = |source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| PolicyError::Io {
            path: path.clone(),
            source,
        })?;
        // Symlinked files are read; symlinked directories are not followed (no loops).
        let meta = std::fs::metadata(&path).map_err(|source| PolicyError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() && !file_type.is_symlink() {
            collect_files(root, &path, out)?;
        } else if meta.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_names_match_the_embedded_policies() {
        let embedded: Vec<&str> = BASELINES.iter().map(|(n, _)| *n).collect();
        assert_eq!(embedded, PolicySet::baseline_names());
    }
}
