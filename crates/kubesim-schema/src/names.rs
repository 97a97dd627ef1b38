//! Name and label syntax checks of `k8s.io/apimachinery/pkg/util/validation`, returning the
//! same explanation strings kube-apiserver puts after `Invalid value: "...": `.
//!
//! Each function returns the list of problems (empty when valid), like the Go helpers.

/// Maximum length of a DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Maximum length of a DNS label (RFC 1123 or RFC 1035).
pub const DNS_LABEL_MAX: usize = 63;
/// Maximum length of a label value.
pub const LABEL_VALUE_MAX: usize = 63;
/// Maximum total size of all annotations of an object, in bytes.
pub const TOTAL_ANNOTATION_SIZE_MAX: usize = 256 * 1024;

fn max_len_msg(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_label_1123(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// RFC 1123 label (Namespace names, container names): `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, ≤ 63.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS_LABEL_MAX {
        errs.push(max_len_msg(DNS_LABEL_MAX));
    }
    if !is_label_1123(s) {
        errs.push(DNS1123_LABEL_MSG.to_owned());
    }
    errs
}

/// RFC 1123 subdomain (most object names): dot-separated RFC 1123 labels, ≤ 253.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_msg(DNS1123_SUBDOMAIN_MAX));
    }
    if s.is_empty() || !s.split('.').all(is_label_1123) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    errs
}

/// RFC 1035 label (Service names): `[a-z]([-a-z0-9]*[a-z0-9])?`, ≤ 63.
pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS_LABEL_MAX {
        errs.push(max_len_msg(DNS_LABEL_MAX));
    }
    if !is_label_1123(s) || !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        errs.push(DNS1035_LABEL_MSG.to_owned());
    }
    errs
}

/// Path-segment names (RBAC objects, which may contain `:`): not `.`/`..`, no `/` or `%`.
pub fn path_segment_name(s: &str) -> Vec<String> {
    if s == "." || s == ".." {
        return vec![format!("may not be '{s}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

fn is_qualified_name_part(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(ok)
        && s.ends_with(ok)
}

/// Qualified names (label and annotation keys): optional DNS-subdomain prefix and `/`, then a
/// name part of ≤ 63 alphanumerics, `-`, `_`, `.`.
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                for msg in dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > DNS_LABEL_MAX {
        errs.push(format!("name part {}", max_len_msg(DNS_LABEL_MAX)));
    }
    if !name.is_empty() && !is_qualified_name_part(name) {
        errs.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errs
}

/// Label values: empty, or ≤ 63 alphanumerics, `-`, `_`, `.` starting and ending alphanumeric.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_VALUE_MAX {
        errs.push(max_len_msg(LABEL_VALUE_MAX));
    }
    if !s.is_empty() && !is_qualified_name_part(s) {
        errs.push(LABEL_VALUE_MSG.to_owned());
    }
    errs
}

/// ConfigMap and Secret keys: `[-._a-zA-Z0-9]+`, ≤ 253, not `.`/`..`, not starting with `..`.
pub fn config_map_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_msg(DNS1123_SUBDOMAIN_MAX));
    }
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        errs.push(CONFIG_KEY_MSG.to_owned());
    }
    if s == "." {
        errs.push("must not be '.'".to_owned());
    } else if s == ".." {
        errs.push("must not be '..'".to_owned());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".to_owned());
    }
    errs
}

/// IANA service names (named ports): ≤ 15 lower-case alphanumerics and `-`, at least one
/// letter, no leading/trailing or doubled hyphen.
pub fn iana_svc_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push(max_len_msg(15));
    }
    if !s.chars().all(|c| is_lower_alnum(c) || c == '-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// The first byte offset at which `s` stops being valid standard (padded) base64, as Go's
/// `base64.StdEncoding` reports it (`illegal base64 data at input byte N`); `None` if valid.
/// Like Go, `\r` and `\n` are ignored.
pub fn base64_error_offset(s: &str) -> Option<usize> {
    let bytes: Vec<(usize, u8)> = s
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b != b'\r' && *b != b'\n')
        .collect();
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let mut i = 0;
    while i < bytes.len() {
        let quad = &bytes[i..bytes.len().min(i + 4)];
        for (j, (off, b)) in quad.iter().enumerate() {
            if is_b64(*b) {
                continue;
            }
            // Padding is only allowed in the last two positions of the final quantum.
            if *b == b'=' && j >= 2 {
                let rest_pad = quad[j..].iter().all(|(_, c)| *c == b'=');
                if rest_pad && quad.len() == 4 {
                    // Data after the padding is reported at its first byte.
                    return bytes.get(i + 4).map(|(o, _)| *o);
                }
            }
            return Some(*off);
        }
        if quad.len() < 4 {
            // An incomplete final quantum is reported at its start.
            return Some(quad[0].0);
        }
        i += 4;
    }
    None
}

/// Standard padded base64 encoding (for `Secret.stringData` → `data`).
pub fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_and_labels() {
        assert!(dns1123_subdomain("web").is_empty());
        assert!(dns1123_subdomain("web.example.com").is_empty());
        assert!(dns1123_subdomain("0abc").is_empty());
        assert_eq!(dns1123_subdomain("Web"), [DNS1123_SUBDOMAIN_MSG]);
        assert_eq!(dns1123_subdomain("a..b").len(), 1);
        assert_eq!(dns1123_subdomain("-a").len(), 1);
        assert_eq!(dns1123_subdomain(""), [DNS1123_SUBDOMAIN_MSG]);
        assert_eq!(
            dns1123_subdomain(&"a".repeat(254)),
            ["must be no more than 253 characters"]
        );
        assert!(dns1123_label("team-a").is_empty());
        assert_eq!(dns1123_label("team.a"), [DNS1123_LABEL_MSG]);
        assert_eq!(dns1123_label(&"a".repeat(64)).len(), 1);
        assert!(dns1035_label("web-1").is_empty());
        assert_eq!(dns1035_label("1web"), [DNS1035_LABEL_MSG]);
        assert!(path_segment_name("system:aggregate-to-edit").is_empty());
        assert_eq!(path_segment_name("a/b"), ["may not contain '/'"]);
        assert_eq!(path_segment_name(".."), ["may not be '..'"]);
    }

    #[test]
    fn label_keys_and_values() {
        assert!(qualified_name("app").is_empty());
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(qualified_name("Example_Key.1").is_empty());
        assert_eq!(qualified_name("bad key"), [format!("name part {QUALIFIED_NAME_MSG}")]);
        assert_eq!(qualified_name("/x"), ["prefix part must be non-empty"]);
        assert_eq!(qualified_name("a/"), ["name part must be non-empty"]);
        assert_eq!(qualified_name("a/b/c").len(), 1);
        assert!(qualified_name("Bad.Prefix/x")[0].starts_with("prefix part a lowercase RFC 1123"));
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2_3-x").is_empty());
        assert_eq!(label_value("-x"), [LABEL_VALUE_MSG]);
        assert_eq!(label_value(&"x".repeat(64)), ["must be no more than 63 characters"]);
    }

    #[test]
    fn config_keys_and_ports() {
        assert!(config_map_key("app.properties").is_empty());
        assert!(config_map_key(".dockerconfigjson").is_empty());
        assert_eq!(config_map_key("a b"), [CONFIG_KEY_MSG]);
        assert_eq!(config_map_key(".."), ["must not be '..'"]);
        assert_eq!(config_map_key("..x"), ["must not start with '..'"]);
        assert!(iana_svc_name("http").is_empty());
        assert!(!iana_svc_name("8080").is_empty());
        assert!(!iana_svc_name("a--b").is_empty());
    }

    #[test]
    fn base64() {
        assert_eq!(base64_error_offset("aGVsbG8="), None);
        assert_eq!(base64_error_offset("aGVsbG8h"), None);
        assert_eq!(base64_error_offset("aGk="), None);
        assert_eq!(base64_error_offset("YQ=="), None);
        assert_eq!(base64_error_offset(""), None);
        assert_eq!(base64_error_offset("aGVs\nbG8="), None);
        assert_eq!(base64_error_offset("hello!"), Some(5));
        assert_eq!(base64_error_offset("aGVsbG8"), Some(4));
        assert_eq!(base64_error_offset("YQ==YQ=="), Some(4));
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"abc"), "YWJj");
        assert_eq!(base64_encode(b""), "");
    }
}
