//! Durations as users write them: `30s`, `2m`, `1h30m`, `500ms`.
//!
//! Go-style units (`ms`, `s`, `m`, `h`) because Kubernetes users already know them; integer
//! amounts only, so `1.5h` is written `1h30m`. Parsing is total: every malformed or overflowing
//! input is an error with a message, never a panic (Flux CVE-2022-39272 crashed on one).

use std::fmt;
use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (write e.g. 30s, 2m, 1h30m)")]
pub struct DurationError {
    /// The text as written (truncated to 40 characters).
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses `30s`, `2m`, `1h30m`, `250ms`. Units must appear largest first, each at most once.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.chars().take(40).collect(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.len() > 40 {
        return Err(err("too long"));
    }
    let bytes = s.as_bytes();
    let mut total: u64 = 0; // milliseconds
    let mut i = 0;
    let mut last_rank = usize::MAX;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(err("expected a number"));
        }
        let amount: u64 = s[start..i].parse().map_err(|_| err("number too large"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let (rank, millis) = match &s[unit_start..i] {
            "h" => (3, 3_600_000),
            "m" => (2, 60_000),
            "s" => (1, 1_000),
            "ms" => (0, 1),
            "" => return Err(err("missing unit (h, m, s or ms)")),
            _ => return Err(err("unknown unit (use h, m, s or ms)")),
        };
        if rank >= last_rank {
            return Err(err("units must go from largest to smallest, each once"));
        }
        last_rank = rank;
        total = amount
            .checked_mul(millis)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `45s`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// A `Display` adapter for durations in the user's notation.
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// serde `with` module: a [`Duration`] as a string such as `2m`.
pub mod serde_str {
    use super::*;
    use serde::{Deserializer, Serializer};

    /// Serializes as `1h30m`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Deserializes from `1h30m`; numbers without unit are refused.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 30s, 2m or 1h30m")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map_err(E::custom)
            }
            // `healthTimeout: 10` is a common slip; say what is missing rather than the type.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration {v}: missing unit (write e.g. {v}s or {v}m)"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!("invalid duration {v}: missing unit")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration {v}: use whole units such as 1h30m"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1m500ms").unwrap(), Duration::from_millis(60_500));
        assert_eq!(parse_duration(" 0s ").unwrap(), Duration::ZERO);
    }

    #[test]
    fn malformed_durations_are_errors_not_panics() {
        for bad in [
            "",
            "10",
            "s",
            "1x",
            "1.5h",
            "-1s",
            "1m1h",
            "1s1s",
            "1h 30m",
            "99999999999999999999h",
            "18446744073709551615h",
            "1h\u{0}",
            "é",
            "1ç",
            "mm",
            "1hms",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains("invalid duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn format_round_trips() {
        for s in ["1h30m", "45s", "2m", "1h0m", "250ms"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
