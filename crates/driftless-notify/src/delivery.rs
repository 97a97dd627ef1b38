//! Sending one event to one receiver, with retries.
//!
//! * **Body.** Webhook: the [`Event`] as JSON, or the rendered template (values JSON-escaped,
//!   re-checked to be JSON before sending). Slack: `{"text": …}` with the rendered template
//!   (values Slack-escaped) or [`default_slack_text`]. Always `Content-Type: application/json`.
//! * **Retries.** Up to [`RetryPolicy::max_attempts`] attempts. Connection errors, timeouts and
//!   5xx are retried after an exponential backoff (0.5 s, 1 s, 2 s, 4 s, capped); 429 is retried
//!   after its `Retry-After` (delay in seconds; capped at [`RetryPolicy::max_retry_after`]) or
//!   the backoff when it has none or an HTTP date. Every other status (3xx, 4xx) is final:
//!   sending the same request again will not fix it. No jitter: each receiver has one sequential
//!   worker, so there is no herd of clients to spread out.
//! * **Redirects are not followed.** A webhook URL that redirects is misconfigured, and following
//!   it would carry the body (and headers) to another host.
//! * **Redaction.** Errors and logs show the URL only as `scheme://host:port/…` ([`redact_url`]):
//!   Slack-style webhook URLs carry the credential in the path. reqwest errors are stripped of
//!   their URL, and any echo of the path or query in an error text (some servers put the
//!   request path in their 404 page) is replaced by `…`.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Client, StatusCode};

use crate::config::{ReceiverKind, ResolvedReceiver};
use crate::template::{Escape, short_revision, slack_escape, truncate};
use crate::{Event, EventKind, NotifyError};

/// How a failed delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// Upper bound of the backoff delay.
    pub max_backoff: Duration,
    /// Upper bound of a delay asked for by `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Backoff before attempt `attempt + 1`, after `attempt` (1-based) failed.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Why a delivery failed for good. The text never contains the full URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver answered with a non-success status.
    #[error("{url} answered {status} after {attempts} attempt(s){}", fmt_body(.body))]
    Status {
        /// Redacted URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body, sanitized and scrubbed of the URL's path and query.
        body: String,
        /// Attempts made.
        attempts: u32,
    },
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("{url}: {reason} (after {attempts} attempt(s))")]
    Transport {
        /// Redacted URL.
        url: String,
        /// What went wrong, without the URL.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The body could not be built (a template that rendered invalid JSON).
    #[error("cannot build the request body for {url}: {reason}")]
    Body {
        /// Redacted URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

fn fmt_body(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// `scheme://host:port/…`: a URL without user info, path, query or fragment, safe to log.
/// Text that is not a URL becomes `<invalid URL>`.
pub fn redact_url(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else {
        return "<invalid URL>".to_string();
    };
    let mut out = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
    if let Some(port) = parsed.port() {
        out.push_str(&format!(":{port}"));
    }
    let bare = parsed.path() == "/" && parsed.query().is_none() && parsed.fragment().is_none();
    out.push_str(if bare { "/" } else { "/…" });
    out
}

/// Remove any echo of the URL's secret parts (user info, path, query) from `text`.
fn scrub(text: &str, url: &reqwest::Url) -> String {
    let mut out = text.replace(url.as_str(), &redact_url(url.as_str()));
    let mut secrets: Vec<&str> = vec![url.path(), url.username()];
    secrets.extend(url.query());
    secrets.extend(url.password());
    for secret in secrets {
        // Short fragments ("/", "a") would mangle innocent text and are no credential.
        if secret.len() >= 4 {
            out = out.replace(secret, "…");
        }
    }
    out
}

/// The text of a Slack message when the receiver has no template, e.g.
/// `:white_check_mark: guestbook synced to abc1234: 3 objects applied`.
pub fn default_slack_text(event: &Event) -> String {
    let app = slack_escape(&event.app);
    let short = slack_escape(short_revision(&event.revision));
    let (icon, what) = match event.kind {
        EventKind::SyncSucceeded => (":white_check_mark:", format!("{app} synced to {short}")),
        EventKind::SyncFailed => (":x:", format!("{app} sync to {short} failed")),
        EventKind::HealthDegraded => (":warning:", format!("{app} health degraded at {short}")),
        EventKind::DriftDetected => (":mag:", format!("{app} drifted from {short}")),
    };
    let message = event.message.trim();
    if message.is_empty() {
        format!("{icon} {what}")
    } else {
        format!("{icon} {what}: {}", slack_escape(&truncate(message.to_string())))
    }
}

/// The request body for `event` at `receiver`.
pub(crate) fn build_body(receiver: &ResolvedReceiver, event: &Event) -> Result<Vec<u8>, DeliveryError> {
    let body_error = |reason: String| DeliveryError::Body {
        url: receiver.redacted_url.clone(),
        reason,
    };
    match receiver.kind {
        ReceiverKind::Webhook => match &receiver.template {
            Some(template) => {
                let body = template.render(event, Escape::Json);
                // Checked at load with sample values; re-checked so a bad body is never sent.
                serde_json::from_str::<serde_json::Value>(&body)
                    .map_err(|e| body_error(format!("template did not render JSON: {e}")))?;
                Ok(body.into_bytes())
            }
            None => serde_json::to_vec(event).map_err(|e| body_error(e.to_string())),
        },
        ReceiverKind::Slack => {
            let text = match &receiver.template {
                Some(template) => template.render(event, Escape::Slack),
                None => default_slack_text(event),
            };
            serde_json::to_vec(&serde_json::json!({ "text": text })).map_err(|e| body_error(e.to_string()))
        }
    }
}

/// Install the `ring` rustls provider unless the process has one: reqwest is built without a
/// bundled provider (see Cargo.toml), as in driftless-source.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// The HTTP client shared by all receivers of a notifier. Per-request timeouts come from each
/// receiver; redirects are not followed; no proxy from the environment (reqwest is built
/// without `system-proxy`).
pub(crate) fn build_client() -> Result<Client, NotifyError> {
    install_tls_provider();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("driftless-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::Client(e.without_url().to_string()))
}

/// What one attempt came to.
enum Attempt {
    Sent,
    /// Failed; `Some(delay)` if worth retrying after `delay`.
    Failed(DeliveryError, Option<Duration>),
}

/// Send `event` to `receiver`, retrying per `policy`. Returns the number of attempts used.
pub(crate) async fn deliver(
    client: &Client,
    receiver: &ResolvedReceiver,
    event: &Event,
    policy: &RetryPolicy,
) -> Result<u32, DeliveryError> {
    let body = build_body(receiver, event)?;
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match attempt_once(client, receiver, &body, policy, attempt).await {
            Attempt::Sent => return Ok(attempt),
            Attempt::Failed(error, Some(delay)) if attempt < max_attempts => {
                tracing::warn!(
                    receiver = %receiver.name,
                    app = %event.app,
                    kind = %event.kind,
                    attempt,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %error,
                    "notification not delivered, will retry"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Attempt::Failed(error, _) => return Err(error),
        }
    }
}

async fn attempt_once(
    client: &Client,
    receiver: &ResolvedReceiver,
    body: &[u8],
    policy: &RetryPolicy,
    attempt: u32,
) -> Attempt {
    let request = client
        .post(receiver.url.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .headers(receiver.headers.clone())
        .timeout(receiver.timeout)
        .body(body.to_vec());
    let backoff = policy.backoff(attempt);
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let error = DeliveryError::Transport {
                url: receiver.redacted_url.clone(),
                reason: describe(error, receiver),
                attempts: attempt,
            };
            return Attempt::Failed(error, Some(backoff));
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Sent;
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let snippet = read_snippet(&mut response, receiver).await;
    let error = DeliveryError::Status {
        url: receiver.redacted_url.clone(),
        status: status.as_u16(),
        body: snippet,
        attempts: attempt,
    };
    let delay = if status == StatusCode::TOO_MANY_REQUESTS {
        Some(retry_after.map_or(backoff, |d| d.min(policy.max_retry_after)))
    } else if status.is_server_error() {
        Some(backoff)
    } else {
        None
    };
    Attempt::Failed(error, delay)
}

/// The start of an error response (Slack says `invalid_payload`, `no_service`, …), one line,
/// printable characters only, without echoes of the URL.
async fn read_snippet(response: &mut reqwest::Response, receiver: &ResolvedReceiver) -> String {
    const MAX_BYTES: usize = 1024;
    const MAX_CHARS: usize = 200;
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_BYTES);
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_CHARS)
        .collect();
    scrub(text.trim(), &receiver.url)
}

/// A reqwest error as text: without its URL, with its causes, scrubbed of the URL's secrets.
fn describe(error: reqwest::Error, receiver: &ResolvedReceiver) -> String {
    if error.is_timeout() {
        return format!("timed out after {}s", receiver.timeout.as_secs_f64());
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    scrub(&text, &receiver.url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://user:pw@127.0.0.1:8080/x?token=abc#f"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(redact_url("https://example.com"), "https://example.com/");
        assert_eq!(redact_url("http://[::1]:9/a"), "http://[::1]:9/…");
        assert_eq!(redact_url("not a url /secret"), "<invalid URL>");
    }

    #[test]
    fn scrub_removes_echoed_secrets() {
        let url = reqwest::Url::parse("https://h.example/services/T0/B0/SECRET?token=TOKEN").unwrap();
        let text = scrub("404 no route for /services/T0/B0/SECRET?token=TOKEN", &url);
        assert!(!text.contains("SECRET") && !text.contains("TOKEN"), "{text}");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        let delays: Vec<u128> = (1..=6).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(p.backoff(u32::MAX), p.max_backoff);
    }

    #[test]
    fn default_slack_texts() {
        let mut e = Event::now(EventKind::SyncSucceeded, "guestbook", "abc1234def", "3 objects applied");
        assert_eq!(
            default_slack_text(&e),
            ":white_check_mark: guestbook synced to abc1234: 3 objects applied"
        );
        e.kind = EventKind::SyncFailed;
        e.message = "render failed: <bad> & worse".into();
        assert_eq!(
            default_slack_text(&e),
            ":x: guestbook sync to abc1234 failed: render failed: &lt;bad&gt; &amp; worse"
        );
        e.kind = EventKind::DriftDetected;
        e.message = String::new();
        assert_eq!(default_slack_text(&e), ":mag: guestbook drifted from abc1234");
        e.kind = EventKind::HealthDegraded;
        assert!(default_slack_text(&e).starts_with(":warning: guestbook health degraded at abc1234"));
    }
}
