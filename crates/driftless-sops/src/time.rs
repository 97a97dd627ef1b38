//! Minimal RFC 3339 handling, just what SOPS needs.
//!
//! SOPS authenticates the encrypted MAC with `lastmodified` as additional data,
//! but not the string in the file: Go parses it with `time.Parse(RFC3339)` and
//! formats it again with `Format(RFC3339)`. That drops fractional seconds and
//! prints a zero offset as `Z`. [`normalize_rfc3339`] reproduces exactly that
//! round trip so that files whose timestamp was written by other tools (or by
//! Python sops, with fractions) still verify. No date library is needed.

use std::time::{SystemTime, UNIX_EPOCH};

/// Parses an RFC 3339 timestamp the way Go's `time.Parse(time.RFC3339, s)` does and
/// returns what Go's `t.Format(time.RFC3339)` would print, or `None` when Go would fail.
pub(crate) fn normalize_rfc3339(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    let hour = digits(11..13)?;
    let minute = digits(14..16)?;
    let second = digits(17..19)?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 59 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let zone = match &b[i..] {
        [b'Z'] => "Z".to_string(),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let all = [*h1, *h2, *m1, *m2];
            if !all.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let hh = u32::from(h1 - b'0') * 10 + u32::from(h2 - b'0');
            let mm = u32::from(m1 - b'0') * 10 + u32::from(m2 - b'0');
            if hh > 23 || mm > 59 {
                return None;
            }
            if hh == 0 && mm == 0 {
                "Z".to_string()
            } else {
                format!("{}{hh:02}:{mm:02}", *sign as char)
            }
        }
        _ => return None,
    };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{zone}"
    ))
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// The current UTC time formatted as Go's `time.Now().UTC().Format(time.RFC3339)`.
pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_unix(secs)
}

pub(crate) fn format_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_go() {
        assert_eq!(
            normalize_rfc3339("2019-12-10T22:45:55Z").unwrap(),
            "2019-12-10T22:45:55Z"
        );
        assert_eq!(
            normalize_rfc3339("2016-05-05T23:25:01.384924Z").unwrap(),
            "2016-05-05T23:25:01Z"
        );
        assert_eq!(
            normalize_rfc3339("2020-01-01T10:00:00+00:00").unwrap(),
            "2020-01-01T10:00:00Z"
        );
        assert_eq!(
            normalize_rfc3339("2020-01-01T10:00:00+02:00").unwrap(),
            "2020-01-01T10:00:00+02:00"
        );
        assert!(normalize_rfc3339("2020-02-30T10:00:00Z").is_none());
        assert!(normalize_rfc3339("garbage").is_none());
        assert!(normalize_rfc3339("2020-01-01 10:00:00Z").is_none());
    }

    #[test]
    fn formats_unix_time() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(1_575_917_155), "2019-12-09T18:45:55Z");
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00Z");
    }
}
