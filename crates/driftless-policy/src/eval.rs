//! Running policies on objects: a worker thread evaluates, the caller's thread watches the
//! clock (see the crate docs, "Limits").

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use driftless_core::object::{DesiredObject, ObjectRef, group_of};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

use crate::error::PolicyError;
use crate::gatekeeper::{self, Constraint, Target, Template};
use crate::rego::{self, RuleClass};
use crate::report::{Report, Severity, Violation};
use crate::{Limits, RegoRule, RegoUnit};

/// Interpreter steps between two clock reads of regorus' execution timer.
const TIMER_CHECK_INTERVAL: u32 = 32;

/// Stack of the worker thread: the interpreter recurses per nested expression.
const WORKER_STACK: usize = 32 * 1024 * 1024;

/// Compiles a unit by running each rule once on an empty object, so compile errors (unsafe
/// variables, unknown functions, conflicting rules) are reported at load time and clones of
/// the engine skip preparation.
pub(crate) fn prepare(unit: &mut RegoUnit) -> Result<(), PolicyError> {
    unit.engine.set_input(Value::new_object());
    for rule in &unit.rules {
        unit.engine
            .eval_rule(rule.path.clone())
            .map_err(|e| PolicyError::Rego {
                policy: rule.policy.clone(),
                message: rego::clean_error(&e.to_string()),
            })?;
    }
    Ok(())
}

/// What the worker evaluates for one (policy, object) pair.
enum Job {
    /// Rule `rule` of rego unit `unit` on object `object`.
    Rule { unit: usize, rule: usize, object: usize },
    /// Constraint `constraint` (whose template engine is `template`) on object `object`.
    Constraint {
        template: usize,
        constraint: usize,
        object: usize,
    },
}

/// The outcome of one job: messages with their severity, or an error text and whether it
/// was the execution timer.
type JobResult = Result<Vec<(Severity, String)>, (String, bool)>;

/// Everything the worker owns.
struct Worker {
    units: Vec<RegoUnit>,
    /// Template engines with their entry point (`data.<pkg>.violation`).
    templates: Vec<(Engine, String)>,
    constraints: Vec<Constraint>,
    /// The objects (converted for the engine one at a time, as jobs reach them).
    objects: Vec<serde_json::Value>,
    jobs: Vec<Job>,
}

pub(crate) fn evaluate(
    units: Vec<RegoUnit>,
    templates: &BTreeMap<String, Template>,
    constraints: &[Constraint],
    objects: &[DesiredObject],
    limits: &Limits,
) -> Result<Report, PolicyError> {
    let timer = ExecutionTimerConfig {
        limit: limits.timeout,
        check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).expect("non-zero"),
    };
    let refs: Vec<ObjectRef> = objects.iter().map(object_ref).collect();

    // Template engines, in kind order; each gets this render's inventory if it reads one.
    let mut template_index = BTreeMap::new();
    let mut template_engines = Vec::new();
    let mut inventory: Option<Value> = None;
    for (kind, t) in templates {
        let mut engine = t.engine.clone();
        if t.uses_inventory {
            let inv = inventory.get_or_insert_with(|| {
                let objs: Vec<&serde_json::Value> = objects.iter().map(|o| &o.object).collect();
                rego::to_rego(&gatekeeper::inventory(&objs))
            });
            engine.add_data(inv.clone()).map_err(|e| PolicyError::Template {
                file: t.file.clone(),
                template: t.name.clone(),
                message: format!("cannot load data.inventory: {e}"),
            })?;
        }
        template_index.insert(kind.clone(), template_engines.len());
        template_engines.push((engine, t.entry.clone()));
    }

    // Labels of the Namespaces in the render, for namespaceSelector.
    let namespace_labels: BTreeMap<&str, &serde_json::Map<String, serde_json::Value>> = objects
        .iter()
        .filter(|o| o.object.get("kind").and_then(|k| k.as_str()) == Some("Namespace"))
        .filter_map(|o| {
            Some((
                o.object.pointer("/metadata/name")?.as_str()?,
                o.object.pointer("/metadata/labels")?.as_object()?,
            ))
        })
        .collect();

    let mut jobs = Vec::new();
    for (oi, obj) in objects.iter().enumerate() {
        for (ui, unit) in units.iter().enumerate() {
            for ri in 0..unit.rules.len() {
                jobs.push(Job::Rule {
                    unit: ui,
                    rule: ri,
                    object: oi,
                });
            }
        }
        let r = &refs[oi];
        let target = Target {
            object: &obj.object,
            group: &r.group,
            kind: &r.kind,
            name: &r.name,
            namespace: r.namespace.as_deref(),
            namespace_labels: r.namespace.as_deref().and_then(|ns| namespace_labels.get(ns).copied()),
        };
        for (ci, c) in constraints.iter().enumerate() {
            if c.matcher.matches(&target) {
                jobs.push(Job::Constraint {
                    template: template_index[&c.kind],
                    constraint: ci,
                    object: oi,
                });
            }
        }
    }
    let describe = |job: &Job| -> (String, usize) {
        match *job {
            Job::Rule { unit, rule, object } => (units[unit].rules[rule].policy.clone(), object),
            Job::Constraint { constraint, object, .. } => (constraints[constraint].policy_name(), object),
        }
    };
    let labels: Vec<(String, usize)> = jobs.iter().map(describe).collect();
    if jobs.is_empty() {
        return Ok(Report::default());
    }

    let mut worker = Worker {
        units,
        templates: template_engines,
        constraints: constraints.to_vec(),
        objects: objects.iter().map(|o| o.object.clone()).collect(),
        jobs,
    };
    for u in &mut worker.units {
        u.engine.set_execution_timer_config(timer);
    }
    for (e, _) in &mut worker.templates {
        e.set_execution_timer_config(timer);
    }

    let (tx, rx) = mpsc::channel::<JobResult>();
    std::thread::Builder::new()
        .name("driftless-policy".into())
        .stack_size(WORKER_STACK)
        .spawn(move || worker.run(&tx))
        .map_err(|e| PolicyError::Runtime {
            policy: "(all)".into(),
            object: "(all)".into(),
            message: format!("cannot start the policy worker thread: {e}"),
        })?;

    collect(&rx, labels, &refs, objects, limits.timeout)
}

/// Receives one result per job, in job order, turning them into violations. A result that
/// does not arrive within `timeout` plus a grace period ends the evaluation with
/// [`PolicyError::Timeout`]; the worker is abandoned (it stops at its next send, or runs on
/// until its builtin returns).
fn collect(
    rx: &mpsc::Receiver<JobResult>,
    labels: Vec<(String, usize)>,
    refs: &[ObjectRef],
    objects: &[DesiredObject],
    timeout: Duration,
) -> Result<Report, PolicyError> {
    let grace = (timeout / 4).max(Duration::from_millis(250));
    let mut report = Report::default();
    for (policy, oi) in labels {
        let started = Instant::now();
        let result = match rx.recv_timeout(timeout + grace) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    policy,
                    object = %refs[oi],
                    elapsed = ?started.elapsed(),
                    "policy evaluation did not return in time; abandoning its worker thread"
                );
                return Err(PolicyError::Timeout {
                    policy,
                    object: refs[oi].to_string(),
                    limit: timeout,
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(("the policy worker stopped (panicked)".into(), false)),
        };
        match result {
            Ok(messages) => {
                for (severity, message) in messages {
                    report.violations.push(Violation {
                        severity,
                        policy: policy.clone(),
                        object: refs[oi].clone(),
                        origin: objects[oi].origin.clone(),
                        message,
                    });
                }
            }
            Err((_, true)) => {
                return Err(PolicyError::Timeout {
                    policy,
                    object: refs[oi].to_string(),
                    limit: timeout,
                });
            }
            Err((message, false)) => {
                return Err(PolicyError::Runtime {
                    policy,
                    object: refs[oi].to_string(),
                    message,
                });
            }
        }
    }
    Ok(report)
}

impl Worker {
    /// Evaluates every job in order, sending one result per job; stops when the receiver is
    /// gone (an error or a timeout ended the evaluation).
    fn run(mut self, tx: &mpsc::Sender<JobResult>) {
        let mut converted: Option<(usize, Value)> = None;
        let jobs = std::mem::take(&mut self.jobs);
        for job in &jobs {
            let oi = match *job {
                Job::Rule { object, .. } | Job::Constraint { object, .. } => object,
            };
            if converted.as_ref().is_none_or(|(i, _)| *i != oi) {
                converted = Some((oi, rego::to_rego(&self.objects[oi])));
            }
            let input = &converted.as_ref().expect("set above").1;
            let result = match *job {
                Job::Rule { unit, rule, .. } => {
                    let unit = &mut self.units[unit];
                    unit.engine.set_input(input.clone());
                    eval_rule(&mut unit.engine, &unit.rules[rule])
                }
                Job::Constraint {
                    template, constraint, ..
                } => {
                    let c = &self.constraints[constraint];
                    let (engine, entry) = &mut self.templates[template];
                    engine.set_input(review_value(input, &self.objects[oi], &c.parameters));
                    eval_constraint(engine, entry, c.severity)
                }
            };
            if tx.send(result).is_err() {
                return;
            }
        }
    }
}

fn eval_rule(engine: &mut Engine, rule: &RegoRule) -> JobResult {
    let value = engine.eval_rule(rule.path.clone()).map_err(classify)?;
    let severity = match rule.class {
        RuleClass::Deny => Severity::Deny,
        RuleClass::Warn => Severity::Warn,
    };
    Ok(rego::messages(&value, &rule.rule)
        .into_iter()
        .map(|m| (severity, m))
        .collect())
}

fn eval_constraint(engine: &mut Engine, entry: &str, severity: Severity) -> JobResult {
    let value = engine.eval_rule(entry.to_owned()).map_err(classify)?;
    Ok(rego::messages(&value, "violation")
        .into_iter()
        .map(|m| (severity, m))
        .collect())
}

/// The review input as a regorus value, splicing in the already converted object.
fn review_value(object: &Value, raw: &serde_json::Value, parameters: &serde_json::Value) -> Value {
    let mut value = rego::to_rego(&gatekeeper::review_input_without_object(raw, parameters));
    if let Ok(map) = value.as_object_mut()
        && let Some(review) = map.get_mut(&Value::from("review"))
        && let Ok(review) = review.as_object_mut()
    {
        review.insert(Value::from("object"), object.clone());
    }
    value
}

/// Splits an engine error into its message and whether it is the execution timer.
fn classify(e: anyhow::Error) -> (String, bool) {
    let timed_out = e.chain().any(|c| {
        c.downcast_ref::<regorus::LimitError>()
            .is_some_and(|l| matches!(l, regorus::LimitError::TimeLimitExceeded { .. }))
    }) || e.to_string().contains("time limit");
    (rego::clean_error(&e.to_string()), timed_out)
}

/// The identity of an object; rendered objects always have one, others get placeholders.
fn object_ref(o: &DesiredObject) -> ObjectRef {
    o.object_ref().unwrap_or_else(|| {
        let s = |p: &str| o.object.pointer(p).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
        ObjectRef {
            group: group_of(&s("/apiVersion")).to_owned(),
            kind: s("/kind"),
            namespace: o
                .object
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            name: s("/metadata/name"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftless_core::object::Origin;

    #[test]
    fn watchdog_abandons_a_worker_that_does_not_answer() {
        let object = DesiredObject {
            object: serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            origin: Origin {
                file: "c.yaml".into(),
                line: 1,
            },
        };
        let refs = vec![object_ref(&object)];
        let (tx, rx) = mpsc::channel::<JobResult>();
        // A worker stuck in a builtin that never checks the timer: it answers the first job
        // at once, the second only after 5 s.
        let worker = std::thread::spawn(move || {
            let _ = tx.send(Ok(vec![(Severity::Warn, "first".into())]));
            std::thread::sleep(Duration::from_secs(5));
            let _ = tx.send(Ok(Vec::new()));
        });
        let labels = vec![("fast.rego".to_owned(), 0), ("stuck.rego".to_owned(), 0)];
        let started = Instant::now();
        let err = collect(
            &rx,
            labels,
            &refs,
            std::slice::from_ref(&object),
            Duration::from_millis(200),
        )
        .unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(&err, PolicyError::Timeout { policy, object, .. } if policy == "stuck.rego" && object == "ConfigMap/c"),
            "{err}"
        );
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        drop(rx);
        drop(worker); // detached, as evaluate() leaves it
    }

    #[test]
    fn timer_errors_are_recognised() {
        let mut e = Engine::new();
        e.add_policy(
            "t.rego".into(),
            "package t\nimport rego.v1\nx contains a if { some a in numbers.range(1, 5000); some b in numbers.range(1, 5000); a + b < 0 }\n".into(),
        )
        .unwrap();
        e.set_execution_timer_config(ExecutionTimerConfig {
            limit: Duration::from_millis(20),
            check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).unwrap(),
        });
        let err = e.eval_rule("data.t.x".into()).unwrap_err();
        let (message, timed_out) = classify(err);
        assert!(timed_out, "{message}");
    }
}
