//! Bearer-token authorization for `/api/v1/*` and `/metrics`.
//!
//! Runs as middleware before routing reaches a handler, so no lookup happens for an
//! unauthenticated caller (CVE-2024-36106). GET and HEAD are reads; every other method is a
//! mutation and needs an admin token — and a mutation is refused when no token file is
//! configured at all, so the API is never writable anonymously.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::config::{Principal, Role, Tokens};

/// Message for a mutation attempted on a server without a token file.
pub(crate) const NO_TOKEN_FILE: &str =
    "authentication required: mutating API calls are disabled until the server is started with --api-token-file";

/// Decides whether a request may proceed. `Ok(None)` is an allowed anonymous read.
pub(crate) fn authorize(tokens: &Tokens, headers: &HeaderMap, mutating: bool) -> Result<Option<Principal>, ApiError> {
    if !tokens.is_configured() {
        return if mutating {
            Err(ApiError::unauthorized(NO_TOKEN_FILE))
        } else {
            Ok(None)
        };
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "authentication required: send Authorization: Bearer TOKEN",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(ApiError::unauthorized(
            "invalid Authorization header: expected Bearer TOKEN",
        ));
    };
    let Some(principal) = tokens.authenticate(token) else {
        return Err(ApiError::unauthorized("invalid token"));
    };
    if mutating && principal.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this token is read-only; the call needs an admin token",
        ));
    }
    Ok(Some(principal))
}

pub(crate) fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD)
}

/// Middleware: authorizes, then stores the [`Principal`] (if any) in the request extensions.
pub(crate) async fn require_auth(State(tokens): State<Arc<Tokens>>, mut req: Request, next: Next) -> Response {
    let mutating = is_mutating(req.method());
    match authorize(&tokens, req.headers(), mutating) {
        Ok(principal) => {
            if let Some(p) = principal {
                req.extensions_mut().insert(p);
            }
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}
