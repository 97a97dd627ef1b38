//! Routes and handlers: the JSON API, the webhook endpoint, health and metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{authorize, require_auth};
use crate::config::{Principal, Tokens};
use crate::webhook::{self, Delivery, VerifyError};
use crate::{Backend, BackendError, Forge, ServerConfig, SyncRequest, WebhookSecrets};

/// Largest accepted API request body (the optional sync options).
const MAX_API_BODY: usize = 64 * 1024;
/// Time allowed to receive a webhook body.
const WEBHOOK_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default and maximum `limit` of the history endpoint.
const DEFAULT_HISTORY: usize = 20;
const MAX_HISTORY: usize = 1000;
/// Longest accepted application name (a Kubernetes name).
const MAX_NAME_LEN: usize = 253;
/// Longest backend message returned to a client.
const MAX_MESSAGE_LEN: usize = 1024;

/// An HTTP error, rendered as `{"error": "...", "code": N}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.message, "code": self.status.as_u16() }));
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

fn client_message(s: &str) -> String {
    if s.len() <= MAX_MESSAGE_LEN {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, client_message(&m)),
            BackendError::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, client_message(&m)),
            BackendError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, client_message(&m)),
            BackendError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, client_message(&m)),
            BackendError::Internal(detail) => {
                tracing::error!(%detail, "internal error serving API request");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

struct AppState<B> {
    backend: Arc<B>,
    tokens: Arc<Tokens>,
    secrets: Arc<WebhookSecrets>,
    max_webhook_body: usize,
}

impl<B> Clone for AppState<B> {
    fn clone(&self) -> Self {
        AppState {
            backend: self.backend.clone(),
            tokens: self.tokens.clone(),
            secrets: self.secrets.clone(),
            max_webhook_body: self.max_webhook_body,
        }
    }
}

pub(crate) fn router<B: Backend>(backend: Arc<B>, config: &ServerConfig) -> Router {
    let tokens = Arc::new(config.tokens.clone());
    let state = AppState {
        backend,
        tokens: tokens.clone(),
        secrets: Arc::new(config.webhook_secrets.clone()),
        max_webhook_body: config.max_webhook_body,
    };
    let api = Router::new()
        .route("/apps", get(list_apps::<B>))
        .route("/apps/{name}", get(get_app::<B>))
        .route("/apps/{name}/diff", get(diff::<B>))
        .route("/apps/{name}/history", get(history::<B>))
        .route("/apps/{name}/refresh", post(refresh::<B>))
        .route("/apps/{name}/sync", post(sync::<B>))
        .route("/apps/{name}/rollback/{id}", post(rollback::<B>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
        // Outermost: authorization happens before routing-dependent work and any lookup.
        .layer(from_fn_with_state(tokens, require_auth));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<B>))
        .route("/metrics", get(metrics::<B>))
        .route("/api/webhook", post(webhook_detect::<B>))
        .route("/api/webhook/{forge}", post(webhook_forge::<B>))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz<B: Backend>(State(st): State<AppState<B>>) -> Response {
    if st.backend.ready() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics<B: Backend>(State(st): State<AppState<B>>, headers: axum::http::HeaderMap) -> Response {
    if let Err(e) = authorize(&st.tokens, &headers, false) {
        return e.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        st.backend.metrics_text(),
    )
        .into_response()
}

// ---- API ----

fn app_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|_| ApiError::bad_request("invalid application name"))?;
    check_name(name)
}

fn check_name(name: String) -> Result<String, ApiError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("invalid application name"));
    }
    Ok(name)
}

fn who(principal: &Option<axum::Extension<Principal>>) -> &str {
    principal.as_ref().map_or("anonymous", |p| p.name.as_str())
}

async fn list_apps<B: Backend>(State(st): State<AppState<B>>) -> Response {
    Json(st.backend.apps().await).into_response()
}

async fn get_app<B: Backend>(
    State(st): State<AppState<B>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = app_name(name)?;
    Ok(Json(st.backend.app(&name).await?))
}

async fn diff<B: Backend>(
    State(st): State<AppState<B>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = app_name(name)?;
    Ok(Json(st.backend.diff(&name).await?))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

async fn history<B: Backend>(
    State(st): State<AppState<B>>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = app_name(name)?;
    let Query(q) = query.map_err(|_| ApiError::bad_request("invalid query: limit must be a positive integer"))?;
    let limit = match q.limit {
        None => DEFAULT_HISTORY,
        Some(0) => return Err(ApiError::bad_request("invalid query: limit must be a positive integer")),
        Some(n) => n.min(MAX_HISTORY),
    };
    Ok(Json(st.backend.history(&name, limit).await?))
}

async fn refresh<B: Backend>(
    State(st): State<AppState<B>>,
    principal: Option<axum::Extension<Principal>>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = app_name(name)?;
    tracing::info!(app = %name, by = who(&principal), "refresh requested");
    st.backend.refresh(&name).await?;
    Ok(Json(json!({ "status": "refreshed", "app": name })))
}

async fn sync<B: Backend>(
    State(st): State<AppState<B>>,
    principal: Option<axum::Extension<Principal>>,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = app_name(name)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        } else {
            ApiError::bad_request("cannot read request body")
        }
    })?;
    let req: SyncRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SyncRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid sync options: expected a JSON object with boolean prune, dryRun, confirmPrune, forceConflicts (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?
    };
    tracing::info!(app = %name, by = who(&principal), ?req, "sync requested");
    Ok(Json(st.backend.sync(&name, req).await?))
}

async fn rollback<B: Backend>(
    State(st): State<AppState<B>>,
    principal: Option<axum::Extension<Principal>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path((name, id)) = path.map_err(|_| ApiError::bad_request("invalid path"))?;
    let name = check_name(name)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid history id: expected an integer"))?;
    tracing::info!(app = %name, id, by = who(&principal), "rollback requested");
    Ok(Json(st.backend.rollback(&name, id).await?))
}

// ---- webhooks ----

async fn webhook_detect<B: Backend>(State(st): State<AppState<B>>, req: Request) -> Response {
    match webhook::detect_forge(req.headers()) {
        Some(forge) => receive(&st, forge, req).await,
        None => {
            st.backend.record_webhook("unknown", "malformed");
            ApiError::bad_request("cannot tell which forge sent this webhook; use /api/webhook/{forge}").into_response()
        }
    }
}

async fn webhook_forge<B: Backend>(
    State(st): State<AppState<B>>,
    forge: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    match forge.ok().and_then(|Path(f)| Forge::from_name(&f)) {
        Some(forge) => receive(&st, forge, req).await,
        None => {
            st.backend.record_webhook("unknown", "malformed");
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown forge; expected github, gitlab, gitea, bitbucket, bitbucket-server or generic",
            )
            .into_response()
        }
    }
}

/// Reads at most `limit` bytes of `body`; `Err` is the response to send.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, (&'static str, ApiError)> {
    let too_large = || {
        (
            "too_large",
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "webhook body too large"),
        )
    };
    match tokio::time::timeout(WEBHOOK_READ_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => Err((
            "malformed",
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "timed out reading webhook body"),
        )),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err(("malformed", ApiError::bad_request("cannot read webhook body"))),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn receive<B: Backend>(st: &AppState<B>, forge: Forge, req: Request) -> Response {
    let name = forge.as_str();
    let record = |result: &str| st.backend.record_webhook(name, result);
    let (parts, body) = req.into_parts();

    // 1. Size, before reading.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(str::parse::<u64>);
    if let Some(Ok(len)) = declared
        && len > st.max_webhook_body as u64
    {
        record("too_large");
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "webhook body too large").into_response();
    }
    let body = match read_limited(body, st.max_webhook_body).await {
        Ok(b) => b,
        Err((result, e)) => {
            record(result);
            return e.into_response();
        }
    };

    // 2. Authenticity, on the raw bytes.
    let Some(secret) = st.secrets.for_forge(forge) else {
        record("unauthenticated");
        tracing::warn!(
            forge = name,
            "webhook refused: no webhook secret configured for this forge"
        );
        return ApiError::unauthorized("webhook secret not configured").into_response();
    };
    if let Err(e) = webhook::verify(forge, &parts.headers, &body, secret) {
        let result = match e {
            VerifyError::Missing => "unauthenticated",
            VerifyError::Bad => "bad_signature",
        };
        record(result);
        tracing::warn!(forge = name, result, "webhook refused");
        return ApiError::unauthorized(e.to_string()).into_response();
    }

    // 3. Event and payload.
    match webhook::parse(forge, &parts.headers, &body) {
        Err(e) => {
            record("malformed");
            tracing::warn!(forge = name, error = %e, "malformed webhook payload");
            ApiError::bad_request(e.to_string()).into_response()
        }
        Ok(Delivery::Ignored(reason)) => {
            record("ignored");
            Json(json!({ "status": "ignored", "reason": reason })).into_response()
        }
        Ok(Delivery::Push(events)) => {
            let mut refreshed: Vec<String> = Vec::new();
            for event in events {
                tracing::info!(forge = name, git_ref = %event.git_ref, after = ?event.after, "webhook push");
                for app in st.backend.push(event).await {
                    if !refreshed.contains(&app) {
                        refreshed.push(app);
                    }
                }
            }
            record("accepted");
            Json(json!({ "status": "accepted", "refreshed": refreshed })).into_response()
        }
    }
}
