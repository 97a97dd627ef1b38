//! API errors rendered as Kubernetes `Status` objects.

use serde_json::{Value, json};

/// An error the API answers with: an HTTP code plus a `metav1.Status` body, shaped exactly
/// as kube-apiserver shapes it so that kubectl and client libraries print the same messages.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason` (NotFound, AlreadyExists, Conflict, Invalid, ...).
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when there is an object to name.
    pub details: Option<Box<Value>>,
    /// Seconds for a `Retry-After` header (429 and some 5xx).
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        let mut d = json!({"name": name, "kind": kind});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        self.details = Some(Box::new(d));
        self
    }

    /// `resource` is the plural, optionally qualified by group (`deployments.apps`).
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", qualified(group, plural), name),
        )
        .with_details(group, plural, name)
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", qualified(group, plural), name),
        )
        .with_details(group, plural, name)
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, plural),
                name
            ),
        )
        .with_details(group, plural, name)
    }

    /// 409 Conflict raised by server-side apply (message from the field manager).
    pub fn apply_conflict(group: &str, plural: &str, name: &str, message: String, causes: Vec<Value>) -> Self {
        let mut e = Self::new(409, "Conflict", message).with_details(group, plural, name);
        if let Some(d) = e.details.as_mut() {
            d["causes"] = Value::Array(causes);
        }
        e
    }

    /// 422 Invalid with field causes.
    pub fn invalid(group: &str, kind: &str, name: &str, message: String, causes: Vec<Value>) -> Self {
        let mut e = Self::new(422, "Invalid", message).with_details(group, kind, name);
        if let Some(d) = e.details.as_mut() {
            d["causes"] = Value::Array(causes);
        }
        e
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 404 for a path no resource serves.
    pub fn no_route() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    /// 405 for a verb a resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 415 for a body type the endpoint does not accept.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    }

    /// 413 for bodies over the request size limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 429 TooManyRequests with Retry-After.
    pub fn too_many_requests(retry_after: u32) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        );
        e.retry_after = Some(retry_after);
        e.details = Some(Box::new(json!({"retryAfterSeconds": retry_after})));
        e
    }

    /// 410 Gone / Expired for a watch or continue token older than the retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = (**d).clone();
        }
        s
    }
}

/// `plural` or `plural.group` as kube-apiserver names resources in messages.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_owned()
    } else {
        format!("{plural}.{group}")
    }
}
