//! Helpers around the regorus engine: adding modules of either Rego version, finding the
//! rules driftless evaluates, and turning rule values into messages.

use regorus::{Engine, Value};

/// Adds a module to `engine`, accepting both Rego v1 (`deny contains msg if ...`, the syntax
/// OPA 1.0 and current Conftest default to) and Rego v0 (`deny[msg] { ... }`, what Gatekeeper
/// templates and older Conftest policies use).
///
/// regorus records the version per module, so one engine can hold both. The module is parsed
/// as v1 first and, when that fails, as v0; a failed parse leaves the engine unchanged. When
/// both fail, the error of the version the source looks like it was written for is returned
/// (v1 when it uses `if`/`contains` or imports `rego.v1`, else v0).
///
/// Returns the package path (`data.main`).
pub(crate) fn add_module(engine: &mut Engine, path: &str, source: &str) -> Result<String, String> {
    engine.set_rego_v0(false);
    let v1 = engine.add_policy(path.to_owned(), source.to_owned());
    let v1_err = match v1 {
        Ok(pkg) => return Ok(pkg),
        Err(e) => e,
    };
    engine.set_rego_v0(true);
    let v0 = engine.add_policy(path.to_owned(), source.to_owned());
    engine.set_rego_v0(false);
    match v0 {
        Ok(pkg) => Ok(pkg),
        Err(v0_err) => {
            let err = if looks_like_v1(source) { v1_err } else { v0_err };
            Err(clean_error(&err.to_string()))
        }
    }
}

/// Whether the source uses Rego v1 keywords without the v0 opt-in imports.
fn looks_like_v1(source: &str) -> bool {
    if source.contains("import rego.v1") {
        return true;
    }
    if source.contains("future.keywords") {
        return false;
    }
    // `if`, or `contains` used as a keyword (not the v0 builtin `contains(s, sub)`), outside
    // comments and string literals.
    source.lines().any(|line| {
        let mut code = String::new();
        let mut in_string = false;
        let mut escaped = false;
        for c in line.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                '#' if !in_string => break,
                c if !in_string => code.push(c),
                _ => {}
            }
        }
        code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '('))
            .any(|w| w == "if" || w == "contains")
    })
}

/// regorus errors are multi-line with a source excerpt (`--> file:line:col`, the line, a
/// caret, `error: ...`); keep them, trimmed.
pub(crate) fn clean_error(message: &str) -> String {
    message.trim().to_owned()
}

/// Severity class of a Conftest-style rule name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RuleClass {
    /// `deny`, `deny_*`, `violation`, `violation_*`.
    Deny,
    /// `warn`, `warn_*`.
    Warn,
}

/// Classifies a rule name the way Conftest does: `deny`, `violation` and `warn`, optionally
/// followed by `_suffix` (`deny_latest_tag`).
pub(crate) fn classify_rule(name: &str) -> Option<RuleClass> {
    let prefixed = |p: &str| name == p || name.strip_prefix(p).is_some_and(|rest| rest.starts_with('_'));
    if prefixed("deny") || prefixed("violation") {
        Some(RuleClass::Deny)
    } else if prefixed("warn") {
        Some(RuleClass::Warn)
    } else {
        None
    }
}

/// Names of rules in the module at `path` that Conftest would evaluate (see
/// [`classify_rule`]), found by scanning the source for candidate rule heads and confirming
/// each with the parsed module, so comments and strings never produce a rule.
pub(crate) fn policy_rules(engine: &Engine, path: &str, source: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in source.lines() {
        let word: String = line
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if classify_rule(&word).is_some() && !names.contains(&word) {
            names.push(word);
        }
    }
    names.retain(|n| engine.has_declared_rule_rooted_at(path, n).unwrap_or(false));
    names.sort();
    names
}

/// Messages of a rule's value, the way Conftest and Gatekeeper read them:
/// - a set or array yields one message per element;
/// - a string is the message;
/// - an object's `msg` field is the message (other fields such as `details` are dropped);
/// - `true` (a boolean rule such as `deny if ...`) yields `rule` itself as the message;
/// - `false`, undefined and empty collections yield nothing;
/// - anything else is shown as JSON.
pub(crate) fn messages(value: &Value, rule: &str) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        Value::Undefined | Value::Null | Value::Bool(false) => {}
        Value::Bool(true) => out.push(rule.to_owned()),
        Value::Set(items) => {
            for v in items.iter() {
                out.push(message_of(v));
            }
        }
        Value::Array(items) => {
            for v in items.iter() {
                out.push(message_of(v));
            }
        }
        v => out.push(message_of(v)),
    }
    out
}

fn message_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Object(fields) => match fields.get(&Value::from("msg")) {
            Some(Value::String(s)) => s.to_string(),
            Some(other) => to_json_text(other),
            None => to_json_text(v),
        },
        other => to_json_text(other),
    }
}

fn to_json_text(v: &Value) -> String {
    v.to_json_str().unwrap_or_else(|_| format!("{v}"))
}

/// Converts a JSON value into a regorus value.
pub(crate) fn to_rego(v: &serde_json::Value) -> Value {
    Value::from(v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_classes() {
        assert_eq!(classify_rule("deny"), Some(RuleClass::Deny));
        assert_eq!(classify_rule("deny_latest"), Some(RuleClass::Deny));
        assert_eq!(classify_rule("violation"), Some(RuleClass::Deny));
        assert_eq!(classify_rule("warn_x"), Some(RuleClass::Warn));
        assert_eq!(classify_rule("denyx"), None);
        assert_eq!(classify_rule("allow"), None);
    }

    #[test]
    fn v0_and_v1_modules_share_an_engine() {
        let mut e = Engine::new();
        add_module(&mut e, "a.rego", "package a\ndeny[msg] { msg := \"v0\" }\n").unwrap();
        add_module(&mut e, "b.rego", "package b\ndeny contains msg if { msg := \"v1\" }\n").unwrap();
        let a = e.eval_rule("data.a.deny".into()).unwrap();
        let b = e.eval_rule("data.b.deny".into()).unwrap();
        assert_eq!(messages(&a, "deny"), vec!["v0"]);
        assert_eq!(messages(&b, "deny"), vec!["v1"]);
        let err = add_module(&mut e, "c.rego", "package c\ndeny contains msg if {\n").unwrap_err();
        assert!(err.contains("c.rego"), "{err}");
    }

    #[test]
    fn version_guess_ignores_comments_strings_and_the_contains_builtin() {
        assert!(looks_like_v1("package a\ndeny contains m if { m := 1 }"));
        assert!(looks_like_v1("package a\nimport rego.v1\n"));
        assert!(!looks_like_v1(
            "package a\n# allow if the user is admin\nx { contains(\"if\", \"i\") }"
        ));
        assert!(!looks_like_v1("package a\nimport future.keywords.if\nx if { true }"));
    }

    #[test]
    fn rules_found_in_source() {
        let mut e = Engine::new();
        let src = "package main\n# deny_commented is not a rule\ndeny_x[msg] { msg := \"a\" }\nwarn contains \"b\" if { true }\nallow := true\n";
        add_module(&mut e, "m.rego", src).unwrap();
        assert_eq!(policy_rules(&e, "m.rego", src), vec!["deny_x", "warn"]);
    }
}
