//! [`ClusterError`]: what went wrong talking to a cluster, classified by what to do next.
//!
//! Every variant carries the object (`Kind/ns/name`) or server it concerns, and its message
//! says what the user can do. [`ClusterError::is_retryable`] answers the engine's question
//! "retry soon, or wait for a change?".
//!
//! # Secrets
//!
//! Messages are built only from the API server's `Status.message` and from object identity,
//! never from request bodies. The API server may echo a rejected value in a 422 message
//! (`data[x]: Invalid value: "…"`), so for `Secret` objects quoted values in messages are
//! replaced by `"<redacted>"` ([`redact_secret_message`]).

use std::time::Duration;

/// Why a cluster operation failed.
#[derive(thiserror::Error, Debug)]
pub enum ClusterError {
    /// The API server could not be reached (connection refused, DNS, TLS, timeout).
    #[error("cannot reach the cluster at {server}: {cause} — is it running? check --kubeconfig/--context")]
    Unreachable {
        /// The API server URL.
        server: String,
        /// What the transport reported (connection refused, certificate problem, ...).
        cause: String,
    },
    /// The cluster serves no resource for this apiVersion and kind.
    #[error("the cluster does not serve {kind} ({api_version}): install its CRD first or fix apiVersion")]
    KindNotServed {
        /// The requested apiVersion (`apps/v1`).
        api_version: String,
        /// The requested kind.
        kind: String,
    },
    /// The API server rejected the object as invalid (422); the message names the fields.
    #[error("{object} is invalid: {message}")]
    Invalid {
        /// `Kind/ns/name`.
        object: String,
        /// The API server's message (Secret values redacted).
        message: String,
    },
    /// A server-side apply field conflict: another field manager owns fields we set.
    #[error(
        "{object}: another field manager owns these fields; set syncPolicy.forceConflicts or pass --force-conflicts ({message})"
    )]
    Conflict {
        /// `Kind/ns/name`.
        object: String,
        /// The API server's message, listing the conflicting fields and their managers.
        message: String,
    },
    /// The credentials are not allowed to do this (403).
    #[error("{object}: forbidden: {message} — grant the driftless identity this permission (RBAC)")]
    Forbidden {
        /// `Kind/ns/name`, or the resource for collection requests.
        object: String,
        /// The API server's message (names the verb and resource).
        message: String,
    },
    /// The API server did not accept the credentials at all (401).
    #[error(
        "the cluster at {server} rejected the credentials (401 Unauthorized): check the user in the kubeconfig (token expired?)"
    )]
    Unauthorized {
        /// The API server URL.
        server: String,
    },
    /// Any other API error, with its HTTP status code.
    #[error("{object}: API server answered {code}: {message}")]
    Api {
        /// `Kind/ns/name`, or the resource for collection and discovery requests.
        object: String,
        /// HTTP status code (0 when the response could not be decoded at all).
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// The kubeconfig could not be read or used, or names an exec plugin that is not allowed.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// A wait (for a CRD to be Established, ...) ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl ClusterError {
    /// Whether retrying the same request soon may succeed: the server is unreachable or
    /// overloaded (429, 5xx), an optimistic-concurrency conflict (409 "the object has been
    /// modified"), or a wait timed out. Invalid objects, field conflicts, missing kinds,
    /// permission and kubeconfig errors need a change first.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClusterError::Unreachable { .. } | ClusterError::Timeout(_) => true,
            ClusterError::Api { code, message, .. } => {
                *code == 429
                    || ((500..=599).contains(code) && *code != 501)
                    || (*code == 409 && is_optimistic_conflict_message(message))
            }
            _ => false,
        }
    }
}

/// The API server's wording for a stale `resourceVersion` ("Operation cannot be fulfilled
/// on … : the object has been modified; please apply your changes to the latest version and
/// try again"). Field-manager conflicts from server-side apply read "Apply failed with N
/// conflict(s)" instead.
fn is_optimistic_conflict_message(message: &str) -> bool {
    message.contains("the object has been modified")
        || message.contains("please apply your changes to the latest version")
}

/// A failed request, classified, plus the server's `Retry-After` hint when it gave one.
pub(crate) struct Classified {
    pub(crate) error: ClusterError,
    pub(crate) retry_after: Option<Duration>,
}

/// Turns a kube-rs error into a [`ClusterError`] about `object` (a `Kind/ns/name` or
/// resource description) of `kind`, on `server`.
pub(crate) fn classify(err: kube::Error, server: &str, object: &str, kind: &str) -> Classified {
    let mut retry_after = None;
    let error = match err {
        kube::Error::Api(status) => {
            let message = if kind == "Secret" {
                redact_secret_message(&status.message)
            } else {
                status.message.clone()
            };
            if let Some(details) = &status.details
                && details.retry_after_seconds > 0
            {
                retry_after = Some(Duration::from_secs(u64::from(details.retry_after_seconds)));
            }
            let field_conflict = status.code == 409
                && (status
                    .details
                    .as_ref()
                    .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
                    || status.message.starts_with("Apply failed with"));
            match status.code {
                401 => ClusterError::Unauthorized {
                    server: server.to_owned(),
                },
                403 => ClusterError::Forbidden {
                    object: object.to_owned(),
                    message,
                },
                409 if field_conflict => ClusterError::Conflict {
                    object: object.to_owned(),
                    message,
                },
                422 => ClusterError::Invalid {
                    object: object.to_owned(),
                    message,
                },
                code => ClusterError::Api {
                    object: object.to_owned(),
                    code,
                    message,
                },
            }
        }
        kube::Error::HyperError(e) => ClusterError::Unreachable {
            server: server.to_owned(),
            cause: error_chain(&e),
        },
        kube::Error::Service(e) => ClusterError::Unreachable {
            server: server.to_owned(),
            cause: error_chain(e.as_ref()),
        },
        kube::Error::Auth(e) => {
            ClusterError::Kubeconfig(format!("cannot obtain credentials for {server}: {}", error_chain(&e)))
        }
        kube::Error::RustlsTls(e) => ClusterError::Unreachable {
            server: server.to_owned(),
            cause: format!("TLS: {}", error_chain(&e)),
        },
        kube::Error::SerdeError(e) => ClusterError::Api {
            object: object.to_owned(),
            code: 0,
            // serde_json's message names a position, never echoes the body.
            message: format!("cannot decode the API server's response: {e}"),
        },
        other => ClusterError::Api {
            object: object.to_owned(),
            code: 0,
            message: error_chain(&other),
        },
    };
    Classified { error, retry_after }
}

/// `error: cause: cause`, deduplicated (hyper and tower repeat their sources' text).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Replaces every double-quoted value in an API server message with `"<redacted>"`.
///
/// Applied to messages about `Secret` objects, whose validation errors may quote the
/// rejected value. Field paths (`data[tls.key]`) and the server's explanation are kept, so
/// the message still says what to fix.
pub fn redact_secret_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("Invalid value: \"") {
        let open = start + "Invalid value: \"".len();
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        // Find the closing quote, skipping backslash-escaped characters.
        let mut end = None;
        let mut escaped = false;
        for (i, ch) in tail.char_indices() {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        out.push_str("<redacted>\"");
        match end {
            Some(i) => rest = &tail[i + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_redacted_but_fields_kept() {
        let m = r#"Secret "s" is invalid: data[tls.key]: Invalid value: "hunter\"2": bad, data[x]: Invalid value: "p""#;
        let r = redact_secret_message(m);
        assert!(!r.contains("hunter"), "{r}");
        assert!(r.contains("data[tls.key]: Invalid value: \"<redacted>\": bad"), "{r}");
        assert!(r.ends_with("Invalid value: \"<redacted>\""), "{r}");
        // An unterminated quote still hides everything after it.
        let r = redact_secret_message("x: Invalid value: \"abc");
        assert_eq!(r, "x: Invalid value: \"<redacted>\"");
    }

    #[test]
    fn retryable_classification() {
        let api = |code, message: &str| ClusterError::Api {
            object: "ConfigMap/default/a".into(),
            code,
            message: message.into(),
        };
        assert!(api(429, "slow down").is_retryable());
        assert!(api(500, "boom").is_retryable());
        assert!(api(503, "unavailable").is_retryable());
        assert!(!api(501, "not implemented").is_retryable());
        assert!(!api(404, "not found").is_retryable());
        assert!(
            api(
                409,
                "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
            )
            .is_retryable()
        );
        assert!(!api(409, "configmaps \"a\" already exists").is_retryable());
        assert!(
            !ClusterError::Conflict {
                object: "x".into(),
                message: "Apply failed with 1 conflict".into()
            }
            .is_retryable()
        );
        assert!(
            ClusterError::Unreachable {
                server: "https://x".into(),
                cause: "connection refused".into()
            }
            .is_retryable()
        );
    }

    fn status(value: serde_json::Value) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_value(value).unwrap()))
    }

    #[test]
    fn conflicts_are_told_apart() {
        let field = status(serde_json::json!({
            "status": "Failure", "code": 409, "reason": "Conflict",
            "message": "Apply failed with 1 conflict: conflict with \"kubectl\": .data.k",
            "details": {"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl\"", "field": ".data.k"}]}
        }));
        let c = classify(field, "https://k", "ConfigMap/d/a", "ConfigMap");
        assert!(matches!(c.error, ClusterError::Conflict { .. }), "{:?}", c.error);
        assert!(!c.error.is_retryable());

        let stale = status(serde_json::json!({
            "status": "Failure", "code": 409, "reason": "Conflict",
            "message": "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
        }));
        let c = classify(stale, "https://k", "ConfigMap/d/a", "ConfigMap");
        assert!(matches!(c.error, ClusterError::Api { code: 409, .. }), "{:?}", c.error);
        assert!(c.error.is_retryable());
    }

    #[test]
    fn retry_after_and_auth_errors() {
        let throttled = status(serde_json::json!({
            "status": "Failure", "code": 429, "reason": "TooManyRequests", "message": "slow down",
            "details": {"retryAfterSeconds": 3}
        }));
        let c = classify(throttled, "https://k", "x", "ConfigMap");
        assert_eq!(c.retry_after, Some(Duration::from_secs(3)));
        assert!(c.error.is_retryable());
        let forbidden = status(serde_json::json!({"code": 403, "reason": "Forbidden", "message": "no"}));
        let c = classify(forbidden, "https://k", "Secret/d/s", "Secret");
        assert!(matches!(c.error, ClusterError::Forbidden { .. }));
        let unauthorized = status(serde_json::json!({"code": 401, "reason": "Unauthorized", "message": "no"}));
        let c = classify(unauthorized, "https://k", "x", "");
        assert!(matches!(c.error, ClusterError::Unauthorized { ref server } if server == "https://k"));
    }

    #[test]
    fn messages_tell_the_user_what_to_do() {
        let e = ClusterError::KindNotServed {
            api_version: "example.com/v1".into(),
            kind: "Gadget".into(),
        };
        assert_eq!(
            e.to_string(),
            "the cluster does not serve Gadget (example.com/v1): install its CRD first or fix apiVersion"
        );
        let e = ClusterError::Conflict {
            object: "ConfigMap/default/a".into(),
            message: "Apply failed with 1 conflict: conflict with \"kubectl\": .data.k".into(),
        };
        assert!(e.to_string().contains("--force-conflicts"));
    }
}
