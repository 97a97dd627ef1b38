//! The calling convention of template functions, shared by the engine's builtins, sprig and
//! Helm's own functions.
//!
//! A function is a plain `fn(&mut dyn Env, &[Value]) -> Result<Value, String>`. The
//! [`Env`] gives the few functions that need more than their arguments (`include`, `tpl`,
//! `lookup`, the non-deterministic ones that must warn) access to the running render. An
//! `Err(message)` becomes Go's `error calling NAME: message`, positioned at the action.
//!
//! Go checks argument types by reflection before calling a function; the [`Args`] helpers
//! reproduce those checks and Go's messages (`wrong type for value; expected string; got
//! float64`), because charts that pass a number where a string is expected fail under Helm and
//! must fail here too.

use std::collections::HashMap;
use std::rc::Rc;

use crate::value::{IntKind, Map, Value};

/// What a function may ask of the running render.
pub trait Env {
    /// Executes the named template (`define`/file) with `data` and returns its output
    /// (`include`). Errors are already formatted Go-style.
    fn include(&mut self, name: &str, data: &Value) -> Result<String, String>;
    /// Parses `src` as a template that sees every template defined so far and executes it
    /// with `data` (`tpl`).
    fn tpl(&mut self, src: &str, data: &Value) -> Result<String, String>;
    /// Helm's `lookup apiVersion kind namespace name`; an empty map when not found or offline.
    fn lookup(&mut self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<Value, String>;
    /// Records a warning about the current template (non-deterministic functions use it).
    fn warn(&mut self, message: String);
    /// The name of the template being executed (`chart/templates/x.yaml`).
    fn template_name(&self) -> String;
}

/// A template function.
pub type Func = fn(&mut dyn Env, &[Value]) -> Result<Value, String>;

/// Functions by name.
pub type FuncMap = HashMap<&'static str, Func>;

/// An [`Env`] that supports nothing; for tests of pure functions.
#[derive(Debug, Default)]
pub struct NoEnv {
    /// Warnings recorded.
    pub warnings: Vec<String>,
}

impl Env for NoEnv {
    fn include(&mut self, name: &str, _data: &Value) -> Result<String, String> {
        Err(format!("no template {name:?} associated with template"))
    }
    fn tpl(&mut self, _src: &str, _data: &Value) -> Result<String, String> {
        Err("tpl is not available here".into())
    }
    fn lookup(&mut self, _: &str, _: &str, _: &str, _: &str) -> Result<Value, String> {
        Ok(Value::empty_map())
    }
    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }
    fn template_name(&self) -> String {
        "test".into()
    }
}

/// Argument access with Go's reflection checks and messages.
pub struct Args<'a> {
    /// The arguments as passed.
    pub values: &'a [Value],
}

impl<'a> Args<'a> {
    /// Wraps `values`.
    pub fn new(values: &'a [Value]) -> Args<'a> {
        Args { values }
    }

    /// Refuses a call with another number of arguments than `n` (Go: `wrong number of args
    /// for NAME: want N got M`).
    pub fn exactly(&self, name: &str, n: usize) -> Result<(), String> {
        if self.values.len() != n {
            return Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                self.values.len()
            ));
        }
        Ok(())
    }

    /// Refuses fewer than `n` arguments (variadic functions: Go's `want at least N got M`).
    pub fn at_least(&self, name: &str, n: usize) -> Result<(), String> {
        if self.values.len() < n {
            return Err(format!(
                "wrong number of args for {name}: want at least {n} got {}",
                self.values.len()
            ));
        }
        Ok(())
    }

    /// Argument `i` of any type (`interface{}`); `nil` when absent.
    pub fn any(&self, i: usize) -> &'a Value {
        self.values.get(i).unwrap_or(&Value::Nil)
    }

    /// Argument `i` of Go type `string`.
    pub fn str(&self, i: usize) -> Result<&'a str, String> {
        match self.any(i) {
            Value::Str(s) => Ok(s),
            other => Err(wrong_type("string", other)),
        }
    }

    /// Argument `i` of Go type `int` (an `int` or `int64`; a `float64` is refused as Go does).
    pub fn int(&self, i: usize) -> Result<i64, String> {
        match self.any(i) {
            Value::Int(n, _) => Ok(*n),
            other => Err(wrong_type("int", other)),
        }
    }

    /// Argument `i` of Go type `bool`.
    pub fn bool(&self, i: usize) -> Result<bool, String> {
        match self.any(i) {
            Value::Bool(b) => Ok(*b),
            other => Err(wrong_type("bool", other)),
        }
    }

    /// Argument `i` of Go type `[]interface{}` (`nil` is an empty list, as a nil slice is).
    pub fn list(&self, i: usize) -> Result<Rc<Vec<Value>>, String> {
        match self.any(i) {
            Value::List(l) => Ok(l.clone()),
            Value::Nil => Ok(Rc::new(Vec::new())),
            other => Err(wrong_type("[]interface {}", other)),
        }
    }

    /// Argument `i` of Go type `map[string]interface{}` (`nil` is refused: sprig's dict
    /// functions would panic on a nil map write, and reading one is pointless).
    pub fn map(&self, i: usize) -> Result<Map, String> {
        match self.any(i) {
            Value::Map(m) => Ok(m.clone()),
            other => Err(wrong_type("map[string]interface {}", other)),
        }
    }
}

/// Go's message for an argument of the wrong type.
pub fn wrong_type(expected: &str, got: &Value) -> String {
    if got.is_nil() {
        return format!("invalid value; expected {expected}");
    }
    format!("wrong type for value; expected {expected}; got {}", got.type_name())
}

/// sprig's `toString`/`strval`: strings as they are, `[]byte` as text, everything else `%v`.
pub fn to_string(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Nil => "<nil>".into(),
        other => other.format_v(),
    }
}

/// `cast.ToInt64` as sprig uses it for `int`, `int64`, `add`, ...: numbers truncate, strings
/// parse (decimal, or `0x`/`0o`/`0b` prefixed as Go's `strconv.ParseInt(s, 0, 0)`), `true` is
/// 1, anything else is 0.
pub fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(n, _) => *n,
        Value::Float(x) => *x as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => parse_go_int(s).unwrap_or(0),
        _ => 0,
    }
}

/// `cast.ToFloat64`: numbers convert, strings parse, `true` is 1, anything else 0.
pub fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(n, _) => *n as f64,
        Value::Float(x) => *x,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, base prefix `0x`/`0o`/`0b` or a leading
/// `0` for octal, `_` separators only with a prefix.
pub fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.replace('_', ""))
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.replace('_', ""))
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.replace('_', ""))
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].replace('_', ""))
    } else {
        if lower.contains('_') {
            return None;
        }
        (10, lower.clone())
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    let magnitude = i128::from_str_radix(&digits, radix).ok()?;
    let n = if neg { -magnitude } else { magnitude };
    i64::try_from(n).ok()
}

/// A Go `int64` result.
pub fn int64(n: i64) -> Value {
    Value::Int(n, IntKind::Int64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_checks_speak_go() {
        let vals = [Value::Float(3.0), Value::Nil];
        let a = Args::new(&vals);
        assert_eq!(
            a.str(0).unwrap_err(),
            "wrong type for value; expected string; got float64"
        );
        assert_eq!(a.int(0).unwrap_err(), "wrong type for value; expected int; got float64");
        assert_eq!(a.str(1).unwrap_err(), "invalid value; expected string");
        assert_eq!(
            a.exactly("upper", 1).unwrap_err(),
            "wrong number of args for upper: want 1 got 2"
        );
        assert!(a.list(1).unwrap().is_empty());
    }

    #[test]
    fn casts_follow_spf13_cast() {
        assert_eq!(to_int64(&Value::str("0x1F")), 31);
        assert_eq!(to_int64(&Value::str("017")), 15);
        assert_eq!(to_int64(&Value::str("12abc")), 0);
        assert_eq!(to_int64(&Value::Float(3.9)), 3);
        assert_eq!(to_float64(&Value::str("1.5")), 1.5);
        assert_eq!(to_string(&Value::Float(1e6)), "1e+06");
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_int("9223372036854775808"), None);
    }
}
