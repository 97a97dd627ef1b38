//! Routes (in progress).
use std::sync::Arc;

use crate::{Backend, ServerConfig};

pub(crate) fn router<B: Backend>(_backend: Arc<B>, _config: &ServerConfig) -> axum::Router {
    axum::Router::new()
}
