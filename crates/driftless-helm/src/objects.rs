//! The Go objects Helm puts in a template's data besides plain maps: `.Files` and
//! `.Capabilities` (with `.KubeVersion`, `.APIVersions`, `.HelmVersion`).

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::value::{Object, Value};

/// `.Files`: the chart's non-template files (Helm's `files` map type and its methods).
#[derive(Debug, Clone, Default)]
pub struct Files {
    files: BTreeMap<String, Rc<[u8]>>,
}

impl Files {
    /// The files by path relative to the chart root.
    pub fn new(files: BTreeMap<String, Rc<[u8]>>) -> Files {
        Files { files }
    }

    /// As a template value.
    pub fn into_value(self) -> Value {
        Value::Object(Rc::new(self))
    }

    fn get_bytes(&self, name: &str) -> Rc<[u8]> {
        self.files.get(name).cloned().unwrap_or_else(|| Rc::from(&[][..]))
    }

    fn to_yaml_map(&self, encode: impl Fn(&[u8]) -> String) -> Value {
        // Helm: m[path.Base(k)] = …; later files with the same base name win (Go map iteration
        // is random there; here the last in path order wins, deterministically).
        let mut m = BTreeMap::new();
        for (k, v) in &self.files {
            let base = k.rsplit('/').next().unwrap_or(k);
            m.insert(base.to_string(), Value::str(encode(v)));
        }
        Value::map(m)
    }
}

impl Object for Files {
    fn type_name(&self) -> &'static str {
        "engine.files"
    }

    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let one_string = |args: &[Value]| -> Result<String, String> {
            crate::funcs::Args::new(args).exactly(name, 1)?;
            crate::funcs::Args::new(args).str(0).map(str::to_string)
        };
        Some(match name {
            "Get" => one_string(args).map(|n| Value::str(String::from_utf8_lossy(&self.get_bytes(&n)).into_owned())),
            "GetBytes" => one_string(args).map(|n| Value::Bytes(self.get_bytes(&n))),
            "Glob" => one_string(args).map(|pattern| {
                let glob = Glob::compile(&pattern).unwrap_or_else(|_| Glob::any());
                let files = self
                    .files
                    .iter()
                    .filter(|(k, _)| glob.matches(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Files { files }.into_value()
            }),
            "AsConfig" => crate::funcs::Args::new(args).exactly(name, 0).and_then(|()| {
                if self.files.is_empty() {
                    // Helm: a nil map gives "", an empty one "{}"; Glob returns an empty map.
                    return crate::goyaml::to_yaml(&Value::empty_map()).map(|s| Value::str(s.trim_end_matches('\n')));
                }
                let m = self.to_yaml_map(|b| String::from_utf8_lossy(b).into_owned());
                crate::goyaml::to_yaml(&m).map(|s| Value::str(s.trim_end_matches('\n')))
            }),
            "AsSecrets" => crate::funcs::Args::new(args).exactly(name, 0).and_then(|()| {
                let m = self.to_yaml_map(crate::value::base64_std);
                crate::goyaml::to_yaml(&m).map(|s| Value::str(s.trim_end_matches('\n')))
            }),
            "Lines" => one_string(args).map(|n| {
                let data = self.get_bytes(&n);
                if data.is_empty() {
                    return Value::list(Vec::new());
                }
                let s = String::from_utf8_lossy(&data);
                let s = s.strip_suffix('\n').unwrap_or(&s);
                Value::list(s.split('\n').map(Value::str).collect())
            }),
            _ => return None,
        })
    }

    fn as_collection(&self) -> Option<Value> {
        Some(Value::map(
            self.files.iter().map(|(k, v)| (k.clone(), Value::Bytes(v.clone()))).collect(),
        ))
    }

    fn format(&self) -> String {
        self.as_collection().map(|v| v.format_v()).unwrap_or_default()
    }
}

/// A glob as `github.com/gobwas/glob` compiles it with `/` as the separator (what
/// `.Files.Glob` uses): `*` any run without `/`, `**` any run, `?` one non-`/` character,
/// `[abc]`/`[!abc]`/`[a-z]` classes, `{a,b}` alternatives, `\` escapes. Written by hand: no
/// maintained crate implements this dialect.
#[derive(Debug, Clone)]
pub struct Glob {
    tokens: Vec<Tok>,
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    Any,       // ?
    Star,      // *
    SuperStar, // **
    Class { negated: bool, ranges: Vec<(char, char)> },
    Alt(Vec<Vec<Tok>>),
}

impl Glob {
    /// Compiles `pattern`; an error for an unclosed class or alternative.
    pub fn compile(pattern: &str) -> Result<Glob, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pos = 0;
        let tokens = parse_seq(&chars, &mut pos, 0)?;
        if pos != chars.len() {
            return Err(format!("unexpected {:?} in glob {pattern:?}", chars[pos]));
        }
        Ok(Glob { tokens })
    }

    /// Matches everything (Helm falls back to `**` when a pattern does not compile).
    pub fn any() -> Glob {
        Glob {
            tokens: vec![Tok::SuperStar],
        }
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let n: Vec<char> = name.chars().collect();
        let mut budget = 1_000_000u32;
        match_toks(&self.tokens, &n, &mut budget)
    }
}

fn parse_seq(p: &[char], pos: &mut usize, depth: usize) -> Result<Vec<Tok>, String> {
    if depth > 32 {
        return Err("glob alternatives nested too deeply".into());
    }
    let mut out = Vec::new();
    while *pos < p.len() {
        let c = p[*pos];
        match c {
            '}' | ',' if depth > 0 => return Ok(out),
            '*' => {
                if p.get(*pos + 1) == Some(&'*') {
                    *pos += 2;
                    out.push(Tok::SuperStar);
                } else {
                    *pos += 1;
                    out.push(Tok::Star);
                }
            }
            '?' => {
                *pos += 1;
                out.push(Tok::Any);
            }
            '\\' => {
                let Some(&e) = p.get(*pos + 1) else {
                    return Err("unexpected end of glob after \\".into());
                };
                *pos += 2;
                out.push(Tok::Lit(e));
            }
            '[' => {
                *pos += 1;
                let negated = p.get(*pos) == Some(&'!');
                if negated {
                    *pos += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let Some(&lo) = p.get(*pos) else {
                        return Err("unclosed [ in glob".into());
                    };
                    if lo == ']' {
                        *pos += 1;
                        break;
                    }
                    *pos += 1;
                    if p.get(*pos) == Some(&'-') && p.get(*pos + 1).is_some_and(|c| *c != ']') {
                        let hi = p[*pos + 1];
                        *pos += 2;
                        ranges.push((lo, hi));
                    } else {
                        ranges.push((lo, lo));
                    }
                }
                out.push(Tok::Class { negated, ranges });
            }
            '{' => {
                *pos += 1;
                let mut alts = Vec::new();
                loop {
                    alts.push(parse_seq(p, pos, depth + 1)?);
                    match p.get(*pos) {
                        Some(',') => *pos += 1,
                        Some('}') => {
                            *pos += 1;
                            break;
                        }
                        _ => return Err("unclosed { in glob".into()),
                    }
                }
                out.push(Tok::Alt(alts));
            }
            other => {
                *pos += 1;
                out.push(Tok::Lit(other));
            }
        }
    }
    Ok(out)
}

fn match_toks(toks: &[Tok], n: &[char], budget: &mut u32) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let Some((first, rest)) = toks.split_first() else {
        return n.is_empty();
    };
    match first {
        Tok::Lit(c) => n.first() == Some(c) && match_toks(rest, &n[1..], budget),
        Tok::Any => n.first().is_some_and(|c| *c != '/') && match_toks(rest, &n[1..], budget),
        Tok::Class { negated, ranges } => {
            n.first().is_some_and(|c| {
                let inside = ranges.iter().any(|(lo, hi)| lo <= c && c <= hi);
                inside != *negated && *c != '/'
            }) && match_toks(rest, &n[1..], budget)
        }
        Tok::Star => {
            for i in 0..=n.len() {
                if match_toks(rest, &n[i..], budget) {
                    return true;
                }
                if i < n.len() && n[i] == '/' {
                    break;
                }
            }
            false
        }
        Tok::SuperStar => (0..=n.len()).any(|i| match_toks(rest, &n[i..], budget)),
        Tok::Alt(alts) => alts.iter().any(|alt| {
            let mut joined = alt.clone();
            joined.extend_from_slice(rest);
            match_toks(&joined, n, budget)
        }),
    }
}

/// `.Capabilities.KubeVersion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersion {
    /// The version as the cluster reports it (`v1.33.4-gke.1245000`).
    pub version: String,
    /// `vMAJOR.MINOR.PATCH`, what `String()` and constraint checks use.
    pub normalized: String,
    /// Major version number as a string.
    pub major: String,
    /// Minor version number as a string (as the cluster reports it, e.g. `33`).
    pub minor: String,
}

impl KubeVersion {
    /// Parses a Kubernetes version (`1.33`, `v1.33.4`, `v1.33.4-gke.1`), as Helm's
    /// `ParseKubeVersion` (Kubernetes' generic version parser).
    pub fn parse(s: &str) -> Result<KubeVersion, String> {
        let t = s.trim();
        let body = t.strip_prefix('v').unwrap_or(t);
        let end = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
        let (nums, rest) = body.split_at(end);
        let parts: Vec<&str> = nums.split('.').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!("could not parse {s:?} as version"));
        }
        let num = |p: &str| p.parse::<u64>().map_err(|_| format!("could not parse {s:?} as version"));
        let (major, minor) = (num(parts[0])?, num(parts[1])?);
        let patch = if parts.len() == 3 { num(parts[2])? } else { 0 };
        if !rest.is_empty() && !rest.starts_with('-') && !rest.starts_with('+') {
            return Err(format!("could not parse {s:?} as version"));
        }
        let normalized = format!("v{major}.{minor}.{patch}");
        let version = if t.starts_with('v') { t.to_string() } else { format!("v{t}") };
        Ok(KubeVersion {
            version,
            normalized,
            major: major.to_string(),
            minor: minor.to_string(),
        })
    }
}

impl Object for KubeVersion {
    fn type_name(&self) -> &'static str {
        "common.KubeVersion"
    }
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Version" | "GitVersion" => Value::str(self.version.as_str()),
            "Major" => Value::str(self.major.as_str()),
            "Minor" => Value::str(self.minor.as_str()),
            "String" => Value::str(self.normalized.as_str()),
            _ => return None,
        })
    }
    fn format(&self) -> String {
        self.normalized.clone()
    }
}

/// `.Capabilities.APIVersions`: `group/version` and `group/version/Kind` strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSet(pub Vec<String>);

impl Object for VersionSet {
    fn type_name(&self) -> &'static str {
        "common.VersionSet"
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        if name != "Has" {
            return None;
        }
        let a = crate::funcs::Args::new(args);
        Some(
            a.exactly("Has", 1)
                .and_then(|()| a.str(0))
                .map(|v| Value::Bool(self.0.iter().any(|x| x == v))),
        )
    }
    fn as_collection(&self) -> Option<Value> {
        Some(Value::list(self.0.iter().map(|s| Value::str(s.as_str())).collect()))
    }
    fn format(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }
}

/// `.Capabilities`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The cluster's version.
    pub kube_version: KubeVersion,
    /// The API versions the cluster serves.
    pub api_versions: Vec<String>,
    /// What `.Capabilities.HelmVersion.Version` says (the Helm release whose behaviour this
    /// renderer follows).
    pub helm_version: String,
}

/// The Helm release whose behaviour driftless's renderer reproduces.
pub const HELM_COMPAT_VERSION: &str = "v4.1.4";

impl Capabilities {
    /// As a template value.
    pub fn to_value(&self) -> Value {
        let helm = Value::map(BTreeMap::from([
            ("Version".to_string(), Value::str(self.helm_version.as_str())),
            ("GitCommit".to_string(), Value::str("")),
            ("GitTreeState".to_string(), Value::str("")),
            ("GoVersion".to_string(), Value::str("")),
            ("KubeClientVersion".to_string(), Value::str("")),
        ]));
        Value::map(BTreeMap::from([
            ("KubeVersion".to_string(), Value::Object(Rc::new(self.kube_version.clone()))),
            (
                "APIVersions".to_string(),
                Value::Object(Rc::new(VersionSet(self.api_versions.clone()))),
            ),
            ("HelmVersion".to_string(), helm),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gobwas_globs() {
        for (pat, name, want) in [
            ("conf/*", "conf/a.conf", true),
            ("conf/*", "conf/sub/a.conf", false),
            ("conf/**", "conf/sub/a.conf", true),
            ("**.yaml", "a/b/c.yaml", true),
            ("*.{yaml,json}", "x.json", true),
            ("*.{yaml,json}", "x.toml", false),
            ("file?.txt", "file1.txt", true),
            ("[ab].txt", "b.txt", true),
            ("[!ab].txt", "b.txt", false),
            ("[a-c]*", "cat", true),
        ] {
            assert_eq!(Glob::compile(pat).unwrap().matches(name), want, "{pat} vs {name}");
        }
        assert!(Glob::compile("[abc").is_err());
        assert!(Glob::compile("{a,b").is_err());
    }

    #[test]
    fn kube_versions_parse_as_kubernetes_does() {
        let v = KubeVersion::parse("v1.33.4-gke.1245000").unwrap();
        assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "33"));
        assert_eq!(v.normalized, "v1.33.4");
        assert_eq!(v.version, "v1.33.4-gke.1245000");
        assert_eq!(KubeVersion::parse("1.30").unwrap().version, "v1.30");
        assert!(KubeVersion::parse("latest").is_err());
        assert!(KubeVersion::parse("1").is_err());
    }

    #[test]
    fn files_methods() {
        let files = Files::new(BTreeMap::from([
            ("conf/a.conf".to_string(), Rc::from(&b"x=1\n"[..])),
            ("conf/b.conf".to_string(), Rc::from(&b"y=2"[..])),
            ("lines.txt".to_string(), Rc::from(&b"one\ntwo\n"[..])),
        ]));
        let get = files.method("Get", &[Value::str("conf/b.conf")]).unwrap().unwrap();
        assert_eq!(get.format_v(), "y=2");
        let missing = files.method("Get", &[Value::str("nope")]).unwrap().unwrap();
        assert_eq!(missing.format_v(), "");
        let lines = files.method("Lines", &[Value::str("lines.txt")]).unwrap().unwrap();
        assert_eq!(lines.format_v(), "[one two]");
        assert!(files.method("Get", &[Value::int(1)]).unwrap().is_err());
        let Value::Object(glob) = files.method("Glob", &[Value::str("conf/*")]).unwrap().unwrap() else {
            panic!("Glob returns files");
        };
        assert_eq!(glob.as_collection().unwrap().format_v(), "map[conf/a.conf:[120 61 49 10] conf/b.conf:[121 61 50]]");
    }
}
