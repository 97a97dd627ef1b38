//! Notifications for driftless: sync succeeded or failed, health degraded, drift detected.
//!
//! The daemon builds an [`Event`] and hands it to [`Notifier::notify`], which matches it
//! against the [`Subscription`]s of a [`NotifyConfig`] and queues one delivery per matching
//! [`Receiver`]. Delivery happens in background tasks, so a slow or dead receiver can never slow
//! down or fail a sync:
//!
//! * **one bounded queue and one worker task per receiver**: a receiver that hangs delays only
//!   its own notifications, and deliveries to one receiver keep their order (a `sync-failed`
//!   never arrives after the `sync-succeeded` that followed it);
//! * a full queue drops the event with a warning and counts it ([`NotifyStats`]) instead of
//!   blocking the caller or growing without bound;
//! * retries with exponential backoff on connection errors, timeouts, 429 (honouring
//!   `Retry-After` up to a cap) and 5xx; other statuses are final (see [`delivery`]).
//!
//! Receivers are a generic JSON webhook or a Slack-compatible incoming webhook (`{"text": …}`,
//! also accepted by Mattermost and Rocket.Chat); bodies can be shaped with a small,
//! hand-written [`template`] language without code execution.
//!
//! # Secrets
//!
//! Webhook URLs are credentials (anyone holding a Slack webhook URL can post to the channel), so
//! they can be read from a file (`urlFile`) and are **never** logged or shown in errors: only
//! `scheme://host:port/…` is ([`redact_url`]). Header values (often `Authorization`) are never
//! logged either. Events are sent as they are, so **callers must put only messages and object
//! references in an event — never Secret data or decrypted values** (the engine already masks
//! Secret values in diffs and messages; invariant 4 of the architecture guide).

#![warn(missing_docs)]

mod config;
pub mod delivery;
mod glob;
mod notifier;
pub mod template;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use config::{NotifyConfig, Receiver, ReceiverKind, Subscription};
pub use delivery::{DeliveryError, RetryPolicy, default_slack_text, redact_url};
pub use glob::glob_match;
pub use notifier::{Notifier, NotifierOptions, NotifyStats, ReceiverStats};
pub use template::{Template, TemplateError};

/// Something worth telling people about.
///
/// Must not carry Secret values: put messages and object references (`Kind/ns/name`) in
/// `message` and `details`, never object data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Application name.
    pub app: String,
    /// Revision (commit) the event concerns.
    pub revision: String,
    /// One human-readable line (or a few).
    pub message: String,
    /// Structured extras (object refs, counts, durations); `null` when there are none.
    #[serde(default)]
    pub details: serde_json::Value,
    /// When it happened, in Unix seconds.
    pub time: i64,
}

impl Event {
    /// An event happening now, with no details.
    pub fn now(
        kind: EventKind,
        app: impl Into<String>,
        revision: impl Into<String>,
        message: impl Into<String>,
    ) -> Event {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Event {
            kind,
            app: app.into(),
            revision: revision.into(),
            message: message.into(),
            details: serde_json::Value::Null,
            time,
        }
    }

    /// The same event with `details` set.
    pub fn with_details(mut self, details: serde_json::Value) -> Event {
        self.details = details;
        self
    }
}

/// The kinds of events; serialized kebab-case (`sync-succeeded`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A sync applied the revision and the app is healthy.
    SyncSucceeded,
    /// A sync failed (fetch, render, policy, apply or health wait).
    SyncFailed,
    /// The app's health got worse than healthy.
    HealthDegraded,
    /// The live state no longer matches the desired state.
    DriftDetected,
}

impl EventKind {
    /// All kinds, in declaration order.
    pub const ALL: [EventKind; 4] = [
        EventKind::SyncSucceeded,
        EventKind::SyncFailed,
        EventKind::HealthDegraded,
        EventKind::DriftDetected,
    ];

    /// The kebab-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SyncSucceeded => "sync-succeeded",
            EventKind::SyncFailed => "sync-failed",
            EventKind::HealthDegraded => "health-degraded",
            EventKind::DriftDetected => "drift-detected",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of this crate: all are about the configuration; delivery failures are counted and
/// logged, never returned to the caller. No variant ever contains a full webhook URL or a
/// header value.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The configuration file could not be read.
    #[error("cannot read notification config {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration is not valid YAML/JSON or does not have the expected fields.
    #[error("invalid notification config {path}: {message}")]
    Parse {
        /// The file (`<inline>` when parsed from a string).
        path: std::path::PathBuf,
        /// The parser's message (never includes a source snippet).
        message: String,
    },
    /// Two receivers share a name, or a name is empty.
    #[error("receiver name {name:?} is empty or used more than once; give each receiver a unique name")]
    ReceiverName {
        /// The name.
        name: String,
    },
    /// A subscription names a receiver that does not exist.
    #[error("subscription #{index} refers to unknown receiver {receiver:?}; known receivers: {known}")]
    UnknownReceiver {
        /// 1-based position of the subscription.
        index: usize,
        /// The name it refers to.
        receiver: String,
        /// Comma-separated defined receiver names.
        known: String,
    },
    /// A subscription has an empty app pattern.
    #[error("subscription #{index} has an empty app pattern; use \"*\" or omit `apps` for all apps")]
    EmptyAppPattern {
        /// 1-based position of the subscription.
        index: usize,
    },
    /// The URL is missing, given twice, unreadable or invalid. `reason` shows at most the
    /// redacted URL.
    #[error("receiver {receiver:?}: {reason}")]
    Url {
        /// Receiver name.
        receiver: String,
        /// What is wrong.
        reason: String,
    },
    /// A header name or value is invalid (the value is never shown).
    #[error("receiver {receiver:?}: invalid header {name:?}: {reason}")]
    Header {
        /// Receiver name.
        receiver: String,
        /// Header name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `timeoutSeconds` is 0 or unreasonably large.
    #[error("receiver {receiver:?}: timeoutSeconds must be between 1 and 300, got {value}")]
    Timeout {
        /// Receiver name.
        receiver: String,
        /// The configured value.
        value: u64,
    },
    /// The receiver's template is invalid.
    #[error("receiver {receiver:?}: {source}")]
    Template {
        /// Receiver name.
        receiver: String,
        /// What is wrong with the template.
        source: TemplateError,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client for notifications: {0}")]
    Client(String),
    /// [`Notifier::try_new`] was called outside a tokio runtime.
    #[error("notifications need a tokio runtime; create the Notifier inside one")]
    NoRuntime,
}
