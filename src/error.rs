//! Errors of the control plane, and their one mapping to the wire.
//!
//! JSON-RPC errors use the spec's codes for protocol faults (-32700 to
//! -32603) and these application codes, documented in `docs/api.md`:
//!
//! | code | meaning |
//! |------|---------|
//! | 401 | access token missing, expired or invalid; or bad credentials |
//! | 403 | the token's account may not do this |
//! | 404 | no such conference, user or link |
//! | 409 | already exists (user id, conference password in use) |
//! | 429 | too many failed attempts from this address; retry later |
//! | 503 | a backing service (the database) is unavailable; retry later |
//!
//! Internal causes go to the log, never to the client.

use confgate_signalling::jsonrpc::{self, ErrorObject};

use crate::store::StoreError;
use crate::tokens::TokenError;

pub const UNAUTHORIZED: i64 = 401;
pub const FORBIDDEN: i64 = 403;
pub const NOT_FOUND: i64 = 404;
pub const CONFLICT: i64 = 409;
pub const THROTTLED: i64 = 429;
pub const UNAVAILABLE: i64 = 503;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The client sent something malformed or out of range.
    #[error("{0}")]
    InvalidParams(String),
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("invalid credentials")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// The infrastructure failed; the cause is logged where it is mapped.
    #[error("service unavailable, retry later")]
    Unavailable(#[source] StoreError),
    /// Our own bug; the cause is logged where it is mapped.
    #[error("internal error")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => AppError::Conflict("already exists".into()),
            other => AppError::Unavailable(other),
        }
    }
}

impl AppError {
    /// The JSON-RPC error object for this error. Logs what the client must
    /// not see.
    pub fn to_rpc(&self) -> ErrorObject {
        match self {
            AppError::InvalidParams(m) => ErrorObject::invalid_params(m),
            AppError::Token(e) => ErrorObject::new(UNAUTHORIZED, e.to_string()),
            AppError::BadCredentials => ErrorObject::new(UNAUTHORIZED, self.to_string()),
            AppError::Forbidden(m) => ErrorObject::new(FORBIDDEN, m.clone()),
            AppError::NotFound(m) => ErrorObject::new(NOT_FOUND, m.clone()),
            AppError::Conflict(m) => ErrorObject::new(CONFLICT, m.clone()),
            AppError::Throttled { retry_after_secs } => {
                ErrorObject::new(THROTTLED, self.to_string())
                    .with_data(serde_json::json!({ "retryAfter": retry_after_secs }))
            }
            AppError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "request failed: backing service unavailable");
                ErrorObject::new(UNAVAILABLE, self.to_string())
            }
            AppError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                ErrorObject::new(jsonrpc::INTERNAL_ERROR, "Internal error")
            }
        }
    }

    /// The HTTP status for this error on a plain HTTP route.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            AppError::InvalidParams(_) => S::BAD_REQUEST,
            AppError::Token(_) | AppError::BadCredentials => S::UNAUTHORIZED,
            AppError::Forbidden(_) => S::FORBIDDEN,
            AppError::NotFound(_) => S::NOT_FOUND,
            AppError::Conflict(_) => S::CONFLICT,
            AppError::Throttled { .. } => S::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }
}

impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        let status = self.status();
        let error = self.to_rpc();
        let mut response = (
            status,
            axum::Json(serde_json::json!({ "code": status.as_u16(), "error": error.message })),
        )
            .into_response();
        if let AppError::Throttled { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

impl From<AppError> for ErrorObject {
    fn from(e: AppError) -> Self {
        e.to_rpc()
    }
}
