//! The routes. `app(state)` is the whole HTTP surface, testable with `oneshot`.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::{avatar, health, join_page, jsonrpc_endpoint, websocket};
use crate::AppState;

/// Request bodies larger than this are refused: every request of the API fits
/// in far less, and it bounds what a client can make the server buffer.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(join_page::index))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/gzbwclient/jsonrpc", post(jsonrpc_endpoint::handle))
        .route(
            "/gzbwclient/conference/{code}",
            get(join_page::lookup).post(join_page::join),
        )
        .route("/gzbwclient/avatar/{user_id}", get(avatar::avatar))
        .route("/gzbwclient/websck", get(websocket::upgrade))
        .route("/static/{*path}", get(join_page::static_file))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
