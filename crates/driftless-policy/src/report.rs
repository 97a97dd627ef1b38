//! The outcome of an evaluation and its renderings (human text, JSON, JUnit XML).
//!
//! Decisions:
//! - **Order is deterministic**: violations are sorted by object (kind, namespace, name, then
//!   API group — the order of `Kind/ns/name` as printed), then policy, then message, then
//!   severity, so two runs over the same input print and serialise byte for byte the same.
//! - **The policy's own message is kept as is**; the object it concerns is a separate field
//!   (`Kind/ns/name` in the human and JSON forms), so a message never has to name its object.
//! - **JUnit: one test case per policy.** A policy with at least one `deny` violation is a
//!   failed test case whose failure text lists them; warnings go to the test case's
//!   `system-out` and do not fail it. CI dashboards then show one line per policy, passing or
//!   not, instead of one line per object (which would be thousands for a large render).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use driftless_core::object::{ObjectRef, Origin};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks the apply (`deny`/`violation` rules, Gatekeeper `enforcementAction: deny`).
    Deny,
    /// Reported only (`warn` rules, Gatekeeper `enforcementAction: warn` or `dryrun`).
    Warn,
}

impl Severity {
    /// `deny` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Deny => "deny",
            Severity::Warn => "warn",
        }
    }
}

/// One message a policy produced for one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// `deny` or `warn`.
    pub severity: Severity,
    /// The policy: the `.rego` file(s) declaring the rule, a baseline's name, or
    /// `ConstraintKind/constraint-name` for Gatekeeper constraints.
    pub policy: String,
    /// The object the message is about.
    pub object: ObjectRef,
    /// Where the object was declared.
    pub origin: Origin,
    /// The policy's message, unchanged.
    pub message: String,
}

impl Violation {
    /// Object as people read it (kind, namespace, name, then group), policy, message.
    #[allow(clippy::type_complexity)]
    fn sort_key(&self) -> (&str, Option<&str>, &str, &str, &str, &str, Severity) {
        let o = &self.object;
        (
            &o.kind,
            o.namespace.as_deref(),
            &o.name,
            &o.group,
            &self.policy,
            &self.message,
            self.severity,
        )
    }
}

/// Everything one [`crate::PolicySet::evaluate`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Violations, sorted by object, policy, message.
    pub violations: Vec<Violation>,
    /// Every policy that was evaluated (sorted, without duplicates), violated or not.
    pub policies: Vec<String>,
    /// How many objects were evaluated.
    pub objects: usize,
}

impl Report {
    /// Sorts violations and policies into their canonical order and drops exact duplicates.
    pub(crate) fn normalise(&mut self) {
        self.violations.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.violations.dedup();
        self.policies.sort();
        self.policies.dedup();
    }

    /// True when at least one violation has severity [`Severity::Deny`]: the apply must not
    /// proceed.
    pub fn denied(&self) -> bool {
        self.violations.iter().any(|v| v.severity == Severity::Deny)
    }

    /// Number of violations of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.violations.iter().filter(|v| v.severity == severity).count()
    }

    /// One line per violation, e.g.
    /// `deny  Deployment/prod/web (apps/web.yaml:3) [no-latest-tag]: container web uses an untagged image`.
    /// Empty when there are no violations.
    pub fn human(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            let _ = writeln!(
                out,
                "{:<5} {} ({}) [{}]: {}",
                v.severity.as_str(),
                v.object,
                v.origin,
                v.policy,
                v.message
            );
        }
        out
    }

    /// The report as JSON:
    ///
    /// ```json
    /// {"denied": true,
    ///  "summary": {"deny": 1, "warn": 0, "objects": 3, "policies": 2},
    ///  "policies": ["no-latest-tag", "policy/main.rego"],
    ///  "violations": [{"severity": "deny", "policy": "no-latest-tag",
    ///                  "object": {"group": "apps", "kind": "Deployment", "namespace": "prod", "name": "web"},
    ///                  "objectName": "Deployment/prod/web",
    ///                  "origin": {"file": "apps/web.yaml", "line": 3},
    ///                  "message": "container web uses an untagged image"}]}
    /// ```
    ///
    /// `object.namespace` is `null` for objects without a namespace.
    pub fn to_json(&self) -> Value {
        let violations: Vec<Value> = self
            .violations
            .iter()
            .map(|v| {
                json!({
                    "severity": v.severity.as_str(),
                    "policy": v.policy,
                    "object": {
                        "group": v.object.group,
                        "kind": v.object.kind,
                        "namespace": v.object.namespace,
                        "name": v.object.name,
                    },
                    "objectName": v.object.to_string(),
                    "origin": {"file": v.origin.file, "line": v.origin.line},
                    "message": v.message,
                })
            })
            .collect();
        json!({
            "denied": self.denied(),
            "summary": {
                "deny": self.count(Severity::Deny),
                "warn": self.count(Severity::Warn),
                "objects": self.objects,
                "policies": self.policies.len(),
            },
            "policies": self.policies,
            "violations": violations,
        })
    }

    /// The report as a JUnit XML document with one test suite named `suite` and one test case
    /// per evaluated policy (see the module docs).
    pub fn to_junit(&self, suite: &str) -> String {
        let mut by_policy: BTreeMap<&str, Vec<&Violation>> = BTreeMap::new();
        for p in &self.policies {
            by_policy.entry(p.as_str()).or_default();
        }
        for v in &self.violations {
            by_policy.entry(v.policy.as_str()).or_default().push(v);
        }
        let failures = by_policy
            .values()
            .filter(|vs| vs.iter().any(|v| v.severity == Severity::Deny))
            .count();
        let suite = xml_escape(suite);
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">",
            by_policy.len()
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
            by_policy.len()
        );
        for (policy, vs) in &by_policy {
            let policy = xml_escape(policy);
            let _ = write!(out, "    <testcase classname=\"{suite}\" name=\"{policy}\"");
            if vs.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            let denies: Vec<&&Violation> = vs.iter().filter(|v| v.severity == Severity::Deny).collect();
            let warns: Vec<&&Violation> = vs.iter().filter(|v| v.severity == Severity::Warn).collect();
            if !denies.is_empty() {
                let _ = write!(
                    out,
                    "      <failure type=\"deny\" message=\"{} violation(s)\">",
                    denies.len()
                );
                for v in &denies {
                    out.push_str(&xml_escape(&line_of(v)));
                    out.push('\n');
                }
                out.push_str("</failure>\n");
            }
            if !warns.is_empty() {
                out.push_str("      <system-out>");
                for v in &warns {
                    out.push_str(&xml_escape(&format!("warn: {}", line_of(v))));
                    out.push('\n');
                }
                out.push_str("</system-out>\n");
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// `Kind/ns/name (file:line): message`, for JUnit bodies.
fn line_of(v: &Violation) -> String {
    format!("{} ({}): {}", v.object, v.origin, v.message)
}

/// Escapes text for XML attributes and character data, dropping characters XML 1.0 forbids
/// (control characters other than tab, newline and carriage return).
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_drops_control_characters() {
        assert_eq!(xml_escape("a<b>&\"'\u{1}c\n"), "a&lt;b&gt;&amp;&quot;&apos;c\n");
    }
}
