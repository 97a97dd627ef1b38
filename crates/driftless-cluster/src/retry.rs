//! Bounded retries with exponential backoff for API requests.
//!
//! Retried: 429 (waiting at least the server's `Retry-After`, which the API server sends
//! both as a header and as `Status.details.retryAfterSeconds`; the latter is what kube-rs
//! hands back, so that is what is honoured), 5xx except 501, connection failures, and 409s
//! that are optimistic-concurrency conflicts. Not retried: server-side apply field
//! conflicts (a person must decide; see [`crate::ClusterError::Conflict`]) unless the caller
//! forced the apply, invalid objects, missing kinds, permission errors.
//!
//! Retries live here rather than in a tower layer under the kube client because the
//! decision needs the decoded `Status` (409 wording, `retryAfterSeconds`) and because every
//! request driftless makes is idempotent at this level: server-side apply, GET, LIST and
//! DELETE (a DELETE retried after a lost response finds the object gone, which the caller
//! reports as "already gone").

use std::future::Future;
use std::time::Duration;

use crate::ClusterError;
use crate::error::{Classified, classify};

/// How often and how patiently requests are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further retry.
    pub initial_backoff: Duration,
    /// Upper bound of the exponential delay.
    pub max_backoff: Duration,
    /// Upper bound on a server's `Retry-After` we are willing to honour.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries: every request is tried once.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (1-based), given the server's hint.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        // Up to +25% jitter so that many reconcilers retrying together spread out. The
        // clock's sub-second nanoseconds are random enough for that and need no dependency.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = exp.mul_f64(f64::from(nanos % 1000) / 4000.0);
        let backoff = exp + jitter;
        match retry_after {
            Some(server) => backoff.max(server.min(self.max_retry_after)),
            None => backoff,
        }
    }
}

/// What a request is about, for error messages and retry decisions.
pub(crate) struct Target<'a> {
    pub(crate) server: &'a str,
    /// `Kind/ns/name` or a collection description.
    pub(crate) object: &'a str,
    pub(crate) kind: &'a str,
    /// Also retry server-side apply field conflicts (the apply is forced).
    pub(crate) retry_field_conflicts: bool,
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's attempts are spent.
pub(crate) async fn run<T, F, Fut>(policy: &RetryPolicy, target: Target<'_>, mut attempt: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut tries = 0u32;
    loop {
        tries += 1;
        let err = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Classified { error, retry_after } = classify(err, target.server, target.object, target.kind);
        let retryable =
            error.is_retryable() || (target.retry_field_conflicts && matches!(error, ClusterError::Conflict { .. }));
        if !retryable || tries >= policy.max_attempts.max(1) {
            return Err(error);
        }
        let delay = policy.delay(tries, retry_after);
        tracing::debug!(
            object = target.object,
            attempt = tries,
            delay_ms = delay.as_millis() as u64,
            error = %error,
            "retrying API request"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_and_honour_retry_after() {
        let p = RetryPolicy::default();
        let d1 = p.delay(1, None);
        assert!(d1 >= Duration::from_millis(200) && d1 <= Duration::from_millis(250));
        let d3 = p.delay(3, None);
        assert!(d3 >= Duration::from_millis(800) && d3 <= Duration::from_millis(1000));
        assert!(p.delay(40, None) <= Duration::from_millis(6250));
        assert!(p.delay(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        // A hostile or confused server cannot park us for an hour.
        assert!(p.delay(1, Some(Duration::from_secs(3600))) <= Duration::from_secs(30));
    }
}
