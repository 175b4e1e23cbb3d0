//! `POST /gzbwclient/jsonrpc`: JSON-RPC 2.0 over HTTPS.
//!
//! Replies are HTTP 200 with the JSON-RPC answer (errors included), 204 when
//! the call held only notifications, and 413 with a JSON-RPC error for a body
//! over the limit. The token comes from `Authorization: Bearer …` or
//! `?accessToken=…`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Response};
use confgate_signalling::jsonrpc::{self, ErrorObject};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

use super::router::MAX_BODY_BYTES;
use crate::AppState;
use crate::rpc::{self, Context};

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(rename = "accessToken")]
    access_token: Option<String>,
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let error = ErrorObject::invalid_request(&format!(
                "request body exceeds {} KiB",
                MAX_BODY_BYTES / 1024
            ));
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(jsonrpc::Response::error(serde_json::Value::Null, error)),
            )
                .into_response();
        }
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
        .or(query.access_token);
    let ctx = Context {
        token,
        ip: remote.ip(),
    };
    let call = match jsonrpc::parse_call(&bytes) {
        Ok(call) => call,
        Err(reply) => return Json(reply).into_response(),
    };
    match rpc::handle_call(&state, call, &ctx).await {
        Some(reply) => Json(reply).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}
