//! The dynamic values templates work on, modelled on the Go types Helm hands to
//! `text/template`.
//!
//! Go's template engine inspects data through reflection; charts depend on the Go *types* of
//! their values (a number read from `values.yaml` is a `float64` and prints as `1e+06`, the
//! same number given with `--set` is an `int64` and prints as `1000000`; `eq 1 .Values.n`
//! fails when `n` came from a values file). So [`Value`] keeps the distinctions Go keeps:
//!
//! | Go type                    | [`Value`]                         |
//! |----------------------------|-----------------------------------|
//! | `nil` / missing key        | [`Value::Nil`]                    |
//! | `bool`                     | [`Value::Bool`]                   |
//! | `int`, `int64`             | [`Value::Int`] (with [`IntKind`]) |
//! | `float64`                  | [`Value::Float`]                  |
//! | `string`                   | [`Value::Str`]                    |
//! | `[]byte`                   | [`Value::Bytes`]                  |
//! | `[]interface{}`            | [`Value::List`]                   |
//! | `map[string]interface{}`   | [`Value::Map`] (shared, mutable)  |
//! | structs with methods       | [`Value::Object`]                 |
//!
//! Maps are reference types in Go: sprig's `set`/`unset` change a map every holder sees (charts
//! rely on `$_ := set .Values "x" 1`). [`Map`] is therefore shared (`Rc<RefCell<…>>`); lists are
//! never mutated in place by any template function, so they are shared immutably. Values are
//! single-threaded (`Rc`): one render runs on one thread; parsed templates (which hold no
//! values) are what is shared between threads.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

/// A Go map as templates see it: string keys iterated in sorted order (as Go's template
/// `range` and every encoder Helm uses do), shared by reference.
pub type Map = Rc<RefCell<BTreeMap<String, Value>>>;

/// Which Go integer type an [`Value::Int`] stands for. Only `typeOf`/`kindOf`/`kindIs` and
/// error messages can tell them apart; arithmetic and comparison treat them alike, as Go's
/// template `eq` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntKind {
    /// Go `int`: integer literals in templates, `len`, most sprig results.
    Int,
    /// Go `int64`: `--set` numbers, sprig's `int64`, `add`/`sub`/... results.
    Int64,
}

/// A value in a template's data, a variable, a function argument or result.
#[derive(Clone)]
pub enum Value {
    /// Go's untyped `nil`, also what a missing map key yields.
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` or `int64`.
    Int(i64, IntKind),
    /// `float64`.
    Float(f64),
    /// `string`.
    Str(Rc<str>),
    /// `[]byte`.
    Bytes(Rc<[u8]>),
    /// `[]interface{}`.
    List(Rc<Vec<Value>>),
    /// `map[string]interface{}`.
    Map(Map),
    /// A Go struct or named type with fields and methods (`.Files`, `.Capabilities`, ...).
    Object(Rc<dyn Object>),
}

/// A Go value with fields and methods, such as Helm's `.Files` or `.Capabilities`.
///
/// The template engine resolves `.X` on an object with [`Object::field`] and, when that is
/// `None` or the chain passes arguments, calls [`Object::method`].
pub trait Object {
    /// The Go type name used in messages, e.g. `chartutil.Files`.
    fn type_name(&self) -> &'static str;
    /// A field, or a method that takes no arguments; `None` when there is none of that name.
    fn field(&self, name: &str) -> Option<Value>;
    /// A method called with `args`; `None` when there is no such method.
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let _ = (name, args);
        None
    }
    /// The map or list this value also is, for `range`, `len` and `index` (Helm's `.Files`
    /// is a Go map type with methods; `.Capabilities.APIVersions` a slice type with `Has`).
    fn as_collection(&self) -> Option<Value> {
        None
    }
    /// How `%v` prints the value.
    fn format(&self) -> String {
        format!("{{{}}}", self.type_name())
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Nil => write!(f, "Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(n, k) => write!(f, "Int({n}, {k:?})"),
            Value::Float(x) => write!(f, "Float({x:?})"),
            Value::Str(s) => write!(f, "Str({s:?})"),
            Value::Bytes(b) => write!(f, "Bytes({b:?})"),
            Value::List(l) => f.debug_list().entries(l.iter()).finish(),
            Value::Map(m) => f.debug_map().entries(m.borrow().iter()).finish(),
            Value::Object(o) => write!(f, "Object({})", o.type_name()),
        }
    }
}

impl PartialEq for Value {
    /// Structural equality (Go's `reflect.DeepEqual` on the same types); used by tests and by
    /// functions such as `has`, `uniq` and `without`. Template `eq` has its own rules.
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a, ka), Value::Int(b, kb)) => a == b && ka == kb,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => Rc::ptr_eq(a, b) || *a.borrow() == *b.borrow(),
            (Value::Object(a), Value::Object(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// A Go `int`.
    pub fn int(n: i64) -> Value {
        Value::Int(n, IntKind::Int)
    }

    /// A Go `int64`.
    pub fn int64(n: i64) -> Value {
        Value::Int(n, IntKind::Int64)
    }

    /// A list.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(items))
    }

    /// A new map (not shared with anything).
    pub fn map(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(Rc::new(RefCell::new(entries)))
    }

    /// An empty new map.
    pub fn empty_map() -> Value {
        Value::map(BTreeMap::new())
    }

    /// Go template truth: false, 0, nil, empty string/list/map are false; everything else is
    /// true (objects always).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(n, _) => *n != 0,
            Value::Float(x) => *x != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Object(_) => true,
        }
    }

    /// The Go type name, as `printf "%T"` and sprig's `typeOf` print it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_, IntKind::Int) => "int".into(),
            Value::Int(_, IntKind::Int64) => "int64".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::Bytes(_) => "[]uint8".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Object(o) => o.type_name().into(),
        }
    }

    /// The Go `reflect.Kind` name, as sprig's `kindOf` prints it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_, IntKind::Int) => "int",
            Value::Int(_, IntKind::Int64) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Bytes(_) | Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(_) => "struct",
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is `nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// A deep copy: maps and lists are copied all the way down (sprig `deepCopy`, and what
    /// Helm does to values before handing them to a chart).
    pub fn deep_copy(&self) -> Value {
        match self {
            Value::List(l) => Value::list(l.iter().map(Value::deep_copy).collect()),
            Value::Map(m) => Value::map(m.borrow().iter().map(|(k, v)| (k.clone(), v.deep_copy())).collect()),
            other => other.clone(),
        }
    }

    /// Go's `fmt` `%v` of the value (what `{{ . }}` prints, except that the template engine
    /// prints a nil as `<no value>`).
    pub fn format_v(&self) -> String {
        let mut out = String::new();
        self.write_v(&mut out);
        out
    }

    /// Appends Go's `%v` of the value to `out`.
    pub fn write_v(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n, _) => {
                let _ = write!(out, "{n}");
            }
            Value::Float(x) => out.push_str(&format_float_g(*x)),
            Value::Str(s) => out.push_str(s),
            Value::Bytes(b) => {
                out.push('[');
                for (i, byte) in b.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{byte}");
                }
                out.push(']');
            }
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_v(out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_v(out);
                }
                out.push(']');
            }
            Value::Object(o) => out.push_str(&o.format()),
        }
    }

    /// Converts JSON data. Numbers become `float64`, as Helm's values files do (they are read
    /// through `sigs.k8s.io/yaml`, i.e. JSON decoding into `interface{}`).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                Value::map(o.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    /// Converts to JSON data (objects and non-finite floats have no JSON form and are
    /// refused with a message naming the type).
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        Ok(match self {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(n, _) => serde_json::Value::from(*n),
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .ok_or_else(|| format!("json: unsupported value: {}", format_float_g(*x)))?,
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::Bytes(b) => serde_json::Value::String(base64_std(b)),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect::<Result<_, _>>()?),
            Value::Map(m) => {
                let mut o = serde_json::Map::new();
                for (k, v) in m.borrow().iter() {
                    o.insert(k.clone(), v.to_json()?);
                }
                serde_json::Value::Object(o)
            }
            Value::Object(o) => return Err(format!("json: unsupported type: {}", o.type_name())),
        })
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// Standard base64 with padding (Go's `encoding/json` form of `[]byte`). Written by hand to
/// keep this crate's dependencies to none for six lines of code.
pub(crate) fn base64_std(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The shortest decimal digits of `x` and its decimal exponent: `x = 0.d1d2d3… × 10^exp`
/// (Go's `decimalSlice` `d`/`dp`). `x` must be finite and non-zero; sign ignored.
pub(crate) fn shortest_digits(x: f64) -> (String, i32) {
    // Rust's `{:e}` prints the shortest representation that round-trips, as Go's
    // strconv with precision -1 does: "1.2345e6".
    let s = format!("{:e}", x.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (digits.to_string(), exp + 1)
}

/// Go's `strconv.FormatFloat(x, 'g', -1, 64)`, which is also `%v` of a `float64`: the
/// shortest digits that read back as `x`, in `%e` form (`1e+06`) when the decimal exponent is
/// below -4 or at least 6 (Go fixes the threshold at 6 for the shortest form).
pub fn format_float_g(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let (digits, dp) = shortest_digits(x);
    let neg = x < 0.0;
    let nd = digits.len() as i32;
    let eprec = 6;
    let exp = dp - 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        // %e: d.ddddde±XX (at least two exponent digits)
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        let _ = write!(out, "{e}");
    } else if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_does() {
        // Go: fmt.Sprint(x) for each.
        for (x, want) in [
            (1_000_000.0, "1e+06"),
            (100_000.0, "100000"),
            (123_456_789.0, "1.23456789e+08"),
            (3.0, "3"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-2.0, "-2"),
            (1e-7, "1e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e21, "1e+21"),
            (12.0, "12"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
        ] {
            assert_eq!(Value::Float(x).format_v(), want, "{x}");
        }
    }

    #[test]
    fn composite_values_print_as_go_does() {
        let m = Value::map(BTreeMap::from([
            ("b".to_string(), Value::list(vec![Value::int(1), Value::str("x")])),
            ("a".to_string(), Value::Nil),
        ]));
        assert_eq!(m.format_v(), "map[a:<nil> b:[1 x]]");
        assert_eq!(Value::Bytes(Rc::from(&b"hi"[..])).format_v(), "[104 105]");
    }

    #[test]
    fn truth_follows_go() {
        assert!(!Value::Nil.truthy());
        assert!(!Value::Float(0.0).truthy());
        assert!(!Value::str("").truthy());
        assert!(!Value::empty_map().truthy());
        assert!(Value::str("0").truthy());
        assert!(Value::int(-1).truthy());
    }

    #[test]
    fn maps_are_shared_like_go_maps() {
        let m = Value::empty_map();
        let alias = m.clone();
        if let Value::Map(inner) = &m {
            inner.borrow_mut().insert("k".into(), Value::int(1));
        }
        assert_eq!(alias.format_v(), "map[k:1]");
        let copy = m.deep_copy();
        if let Value::Map(inner) = &m {
            inner.borrow_mut().insert("j".into(), Value::int(2));
        }
        assert_eq!(copy.format_v(), "map[k:1]");
    }

    #[test]
    fn json_round_trip_keeps_go_number_types() {
        let v = Value::from_json(&serde_json::json!({"n": 3, "s": "x", "l": [true, null]}));
        assert_eq!(v.format_v(), "map[l:[true <nil>] n:3 s:x]");
        match &v {
            Value::Map(m) => assert!(matches!(m.borrow()["n"], Value::Float(_))),
            _ => panic!("not a map"),
        }
        assert_eq!(
            v.to_json().unwrap(),
            serde_json::json!({"l": [true, null], "n": 3.0, "s": "x"})
        );
        assert_eq!(base64_std(b"hello"), "aGVsbG8=");
        assert_eq!(base64_std(b"hi!"), "aGkh");
    }
}
