//! The notification configuration file (`driftless serve --notifications FILE`).
//!
//! YAML or JSON (JSON when the file ends in `.json` or starts with `{`). Unknown fields are
//! errors so a typo (`subscription:`, `timeout:`) does not silently disable a notification.
//! Everything that can be checked without sending is checked by [`NotifyConfig::load`]:
//! receiver names are unique and referenced names exist, every URL parses as `http`/`https`
//! (reading `urlFile` to check it), headers are valid, templates only use known placeholders
//! and webhook templates produce JSON. Errors never show a URL beyond its scheme, host and port.
//!
//! ```yaml
//! receivers:
//!   - name: ops-slack
//!     kind: slack
//!     urlFile: /etc/driftless/slack-url        # relative paths: relative to this file
//!   - name: audit
//!     kind: webhook
//!     url: https://audit.example.com/hooks/driftless
//!     headers: { Authorization: "Bearer …" }
//!     timeoutSeconds: 5
//!     template: '{"app": "{{app}}", "event": "{{kind}}", "commit": "{{revision}}"}'
//! subscriptions:
//!   - receiver: ops-slack
//!     apps: ["team-*", "guestbook"]             # globs; omitted or empty = all apps
//!     events: [sync-failed, health-degraded]    # omitted or empty = all events
//!   - receiver: audit                           # everything
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::delivery::redact_url;
use crate::template::Template;
use crate::{EventKind, NotifyError};

/// Largest configuration file accepted.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// Largest `urlFile` accepted.
const MAX_URL_FILE_BYTES: u64 = 64 * 1024;
/// Per-request timeout when `timeoutSeconds` is not set.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT_SECONDS: u64 = 300;

/// Where and how to send: loaded from a YAML/JSON file given to
/// `driftless serve --notifications FILE`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyConfig {
    /// Destinations, each with a unique name.
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    /// Which events go to which receiver. An event that matches several subscriptions of the
    /// same receiver is sent to it once.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// The two receiver flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiverKind {
    /// POST the event as JSON (or the rendered template, which must be JSON).
    Webhook,
    /// POST `{"text": "…"}`: Slack incoming webhooks, Mattermost, Rocket.Chat.
    Slack,
}

/// One destination.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receiver {
    /// Unique name, used in subscriptions, logs and metrics.
    pub name: String,
    /// `webhook` or `slack`.
    pub kind: ReceiverKind,
    /// Target URL (`http` or `https`). Exactly one of `url` and `urlFile`.
    #[serde(default)]
    pub url: Option<String>,
    /// File holding the URL (surrounding whitespace ignored), for URLs that are secrets such as
    /// Slack webhooks. Read when the configuration is loaded and when the notifier starts.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Body template (see [`crate::template`]): for `webhook` the whole JSON body, for `slack`
    /// the message text.
    #[serde(default)]
    pub template: Option<String>,
    /// Extra request headers; values are treated as secrets and never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per-request timeout in seconds (1 to 300, default 10).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// Debug without the URL's path and query, or header values: both may be credentials.
impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("url_file", &self.url_file)
            .field("template", &self.template)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

/// Which events a receiver gets.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    /// Name of a receiver.
    pub receiver: String,
    /// App names or globs (`team-*`, `?` for one character); empty = all apps.
    #[serde(default)]
    pub apps: Vec<String>,
    /// Event kinds; empty = all kinds.
    #[serde(default)]
    pub events: Vec<EventKind>,
}

impl Subscription {
    /// Whether an event of `kind` for `app` is covered.
    pub fn matches(&self, app: &str, kind: EventKind) -> bool {
        (self.events.is_empty() || self.events.contains(&kind))
            && (self.apps.is_empty() || self.apps.iter().any(|p| crate::glob_match(p, app)))
    }
}

/// A receiver checked and ready to send to.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedReceiver {
    pub name: String,
    pub kind: ReceiverKind,
    pub url: reqwest::Url,
    /// `scheme://host:port/…`, the only form of the URL that may be logged.
    pub redacted_url: String,
    pub template: Option<Template>,
    pub headers: HeaderMap,
    pub timeout: Duration,
}

impl Receiver {
    /// Check everything and read `urlFile`.
    pub(crate) fn resolve(&self) -> Result<ResolvedReceiver, NotifyError> {
        let url_error = |reason: String| NotifyError::Url {
            receiver: self.name.clone(),
            reason,
        };
        let raw = match (&self.url, &self.url_file) {
            (Some(url), None) => url.trim().to_string(),
            (None, Some(path)) => read_url_file(path).map_err(url_error)?,
            (Some(_), Some(_)) => return Err(url_error("set either `url` or `urlFile`, not both".into())),
            (None, None) => return Err(url_error("set `url` or `urlFile`".into())),
        };
        // Neither the parse error nor anything below quotes the URL; at most its redacted form.
        let url = reqwest::Url::parse(&raw).map_err(|e| url_error(format!("url is not a valid URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(url_error(format!(
                "url scheme must be http or https, got {:?} ({})",
                url.scheme(),
                redact_url(&raw)
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(url_error("url has no host".into()));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header_error = |reason: &str| NotifyError::Header {
                receiver: self.name.clone(),
                name: name.clone(),
                reason: reason.to_string(),
            };
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| header_error("not a valid name"))?;
            let mut header_value = HeaderValue::from_str(value)
                .map_err(|_| header_error("value has characters not allowed in a header (not shown)"))?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }

        let timeout = match self.timeout_seconds {
            None => DEFAULT_TIMEOUT,
            Some(value @ 1..=MAX_TIMEOUT_SECONDS) => Duration::from_secs(value),
            Some(value) => {
                return Err(NotifyError::Timeout {
                    receiver: self.name.clone(),
                    value,
                });
            }
        };

        let template = match &self.template {
            None => None,
            Some(text) => {
                let template_error = |source| NotifyError::Template {
                    receiver: self.name.clone(),
                    source,
                };
                let template = Template::parse(text).map_err(template_error)?;
                if self.kind == ReceiverKind::Webhook {
                    template.check_json().map_err(template_error)?;
                }
                Some(template)
            }
        };

        Ok(ResolvedReceiver {
            name: self.name.clone(),
            kind: self.kind,
            redacted_url: redact_url(url.as_str()),
            url,
            template,
            headers,
            timeout,
        })
    }
}

fn read_url_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read urlFile {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_URL_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read urlFile {}: {e}", path.display()))?;
    let url = text.trim();
    if url.is_empty() {
        return Err(format!("urlFile {} is empty", path.display()));
    }
    Ok(url.to_string())
}

impl NotifyConfig {
    /// Read, parse and [validate](NotifyConfig::validate) a YAML or JSON file. A relative
    /// `urlFile` is taken relative to the directory of `path`.
    pub fn load(path: &Path) -> Result<NotifyConfig, NotifyError> {
        let bytes = std::fs::read(path).map_err(|source| NotifyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_error = |message: String| NotifyError::Parse {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(parse_error(format!("file is larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let text = String::from_utf8(bytes).map_err(|_| parse_error("file is not UTF-8".into()))?;
        let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let mut config = parse_text(&text, json).map_err(parse_error)?;
        let base = path.parent().unwrap_or(Path::new(""));
        for receiver in &mut config.receivers {
            if let Some(file) = &receiver.url_file
                && file.is_relative()
            {
                receiver.url_file = Some(base.join(file));
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Parse and [validate](NotifyConfig::validate) YAML or JSON text (a relative `urlFile` is
    /// relative to the working directory).
    pub fn parse(text: &str) -> Result<NotifyConfig, NotifyError> {
        let parse_error = |message: String| NotifyError::Parse {
            path: PathBuf::from("<inline>"),
            message,
        };
        if text.len() > MAX_CONFIG_BYTES {
            return Err(parse_error(format!("text is larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let config = parse_text(text, false).map_err(parse_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Check names, references, URLs, headers, timeouts and templates (reads each `urlFile`).
    pub fn validate(&self) -> Result<(), NotifyError> {
        let mut names = BTreeSet::new();
        for receiver in &self.receivers {
            if receiver.name.trim().is_empty() || !names.insert(receiver.name.as_str()) {
                return Err(NotifyError::ReceiverName {
                    name: receiver.name.clone(),
                });
            }
        }
        for (i, subscription) in self.subscriptions.iter().enumerate() {
            if !names.contains(subscription.receiver.as_str()) {
                return Err(NotifyError::UnknownReceiver {
                    index: i + 1,
                    receiver: subscription.receiver.clone(),
                    known: names.iter().copied().collect::<Vec<_>>().join(", "),
                });
            }
            if subscription.apps.iter().any(|p| p.is_empty()) {
                return Err(NotifyError::EmptyAppPattern { index: i + 1 });
            }
        }
        for receiver in &self.receivers {
            receiver.resolve()?;
        }
        Ok(())
    }
}

fn parse_text(text: &str, json: bool) -> Result<NotifyConfig, String> {
    if json || text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 1;
    budget.max_depth = 16;
    budget.max_nodes = 100_000;
    budget.max_events = 400_000;
    budget.max_total_scalar_bytes = MAX_CONFIG_BYTES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // A snippet of the file could show a webhook URL or a header value.
    options.with_snippet = false;
    options.strict_booleans = true;
    options.alias_limits.max_total_replayed_events = 10_000;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_matching() {
        let s = Subscription {
            receiver: "r".into(),
            apps: vec!["team-*".into(), "guestbook".into()],
            events: vec![EventKind::SyncFailed],
        };
        assert!(s.matches("team-a", EventKind::SyncFailed));
        assert!(s.matches("guestbook", EventKind::SyncFailed));
        assert!(!s.matches("guestbook", EventKind::SyncSucceeded));
        assert!(!s.matches("other", EventKind::SyncFailed));
        let all = Subscription {
            receiver: "r".into(),
            apps: vec![],
            events: vec![],
        };
        assert!(EventKind::ALL.iter().all(|k| all.matches("anything", *k)));
    }

    #[test]
    fn receiver_debug_hides_secrets() {
        let config = NotifyConfig::parse(
            "receivers:\n  - name: s\n    kind: slack\n    url: https://hooks.slack.com/services/T000/B000/SECRET\n    \
             headers: {Authorization: Bearer TOKEN}\nsubscriptions: []\n",
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("SECRET") && !debug.contains("TOKEN"), "{debug}");
        assert!(debug.contains("hooks.slack.com"));
    }
}
