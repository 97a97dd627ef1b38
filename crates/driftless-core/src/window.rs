//! Sync windows: whether an automated sync may run at a given time.
//!
//! A window opens at each time its 5-field cron schedule (UTC) fires and stays open for its
//! duration. Rules, as Argo CD users expect them: inside any deny window, automated syncs are
//! held back; when allow windows exist, automated syncs run only inside one of them. Manual
//! syncs are never held back (the caller decides that).

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;

use crate::spec::{SyncWindow, WindowKind};

/// Parses a 5-field cron expression (minute hour day-of-month month day-of-week).
pub fn parse_schedule(schedule: &str) -> Result<Cron, String> {
    if schedule.split_whitespace().count() != 5 {
        return Err(format!(
            "{schedule:?} must have 5 fields: minute hour day-of-month month day-of-week"
        ));
    }
    schedule
        .parse::<Cron>()
        .map_err(|e| format!("{schedule:?} is not a valid cron schedule: {e}"))
}

/// Whether `window` is open at `now` (seconds since the epoch, UTC).
pub fn is_open(window: &SyncWindow, now: i64) -> bool {
    let Ok(cron) = parse_schedule(&window.schedule) else {
        return false;
    };
    let Some(now) = Utc.timestamp_opt(now, 0).single() else {
        return false;
    };
    let Ok(duration) = chrono::Duration::from_std(window.duration) else {
        return false;
    };
    let Some(from) = now.checked_sub_signed(duration) else {
        return false;
    };
    // The first firing after (now - duration): open if it is not later than now.
    match cron.find_next_occurrence(&from, false) {
        Ok(start) => start <= now,
        Err(_) => false,
    }
}

/// The verdict for an automated sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowVerdict {
    /// May run.
    Open,
    /// Held back, with the reason to show.
    Closed(String),
}

/// Evaluates all windows at `now`.
pub fn evaluate(windows: &[SyncWindow], now: i64) -> WindowVerdict {
    if let Some(w) = windows.iter().find(|w| w.kind == WindowKind::Deny && is_open(w, now)) {
        return WindowVerdict::Closed(format!(
            "inside deny window {:?} ({})",
            w.schedule,
            crate::duration::format_duration(w.duration)
        ));
    }
    let allows: Vec<&SyncWindow> = windows.iter().filter(|w| w.kind == WindowKind::Allow).collect();
    if !allows.is_empty() && !allows.iter().any(|w| is_open(w, now)) {
        let list: Vec<String> = allows
            .iter()
            .map(|w| format!("{:?} for {}", w.schedule, crate::duration::format_duration(w.duration)))
            .collect();
        return WindowVerdict::Closed(format!("outside every allow window ({})", list.join(", ")));
    }
    WindowVerdict::Open
}

/// Seconds since the epoch for a UTC date-time (tests and callers).
pub fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .map(|t: DateTime<Utc>| t.timestamp())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn w(kind: WindowKind, schedule: &str, mins: u64) -> SyncWindow {
        SyncWindow {
            kind,
            schedule: schedule.into(),
            duration: Duration::from_secs(mins * 60),
        }
    }

    #[test]
    fn deny_window_holds_back_inside_only() {
        let deny = vec![w(WindowKind::Deny, "0 22 * * *", 120)];
        assert_eq!(evaluate(&deny, utc(2026, 11, 22, 21, 59)), WindowVerdict::Open);
        assert!(matches!(
            evaluate(&deny, utc(2026, 11, 22, 22, 0)),
            WindowVerdict::Closed(_)
        ));
        assert!(matches!(
            evaluate(&deny, utc(2026, 11, 22, 23, 59)),
            WindowVerdict::Closed(_)
        ));
        assert_eq!(evaluate(&deny, utc(2026, 11, 23, 0, 0)), WindowVerdict::Open);
    }

    #[test]
    fn allow_windows_restrict_to_their_hours_and_deny_wins() {
        // Weekdays 09:00-17:00.
        let allow = vec![w(WindowKind::Allow, "0 9 * * 1-5", 480)];
        assert_eq!(evaluate(&allow, utc(2026, 11, 23, 10, 0)), WindowVerdict::Open); // Monday
        assert!(
            matches!(evaluate(&allow, utc(2026, 11, 22, 10, 0)), WindowVerdict::Closed(m) if m.contains("outside"))
        ); // Sunday
        let both = vec![allow[0].clone(), w(WindowKind::Deny, "0 12 * * *", 60)];
        assert!(matches!(evaluate(&both, utc(2026, 11, 23, 12, 30)), WindowVerdict::Closed(m) if m.contains("deny")));
    }

    #[test]
    fn bad_schedules_are_rejected() {
        assert!(parse_schedule("* * *").is_err());
        assert!(parse_schedule("61 * * * *").is_err());
        assert!(parse_schedule("*/5 * * * *").is_ok());
    }
}
