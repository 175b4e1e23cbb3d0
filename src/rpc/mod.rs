//! JSON-RPC methods. [`handle_call`] runs one parsed call (single or batch)
//! and gives the reply to send, if any; each method lives in its own module.

pub mod auth;
pub mod conferences;
pub mod config_properties;
pub mod iq;
pub mod users;

use std::net::IpAddr;

use confgate_signalling::jsonrpc::{Call, ErrorObject, Parsed, Request, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::store::{UserRow, now_ms};
use crate::tokens::{Claims, TokenError};

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Context {
    /// The bearer token, when the request had one.
    pub token: Option<String>,
    pub ip: IpAddr,
}

/// The caller, authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    pub user: UserRow,
}

impl Context {
    /// The caller behind the token. A token whose account is gone (its
    /// conference ended and the sweeper removed it) no longer works.
    pub async fn caller(&self, state: &AppState) -> AppResult<Caller> {
        authenticate(state, self.token.as_deref()).await
    }
}

/// The account behind an access token: the token must be valid and its
/// account must still exist (temporary accounts go when their conference
/// ends).
pub async fn authenticate(state: &AppState, token: Option<&str>) -> AppResult<Caller> {
    let token = token.ok_or(TokenError::Missing)?;
    let claims = state.keys.verify(token, now_ms())?;
    let user = state
        .authority
        .user(claims.user_id.clone())
        .await?
        .ok_or(AppError::Token(TokenError::Invalid))?;
    Ok(Caller { claims, user })
}

/// Runs a call. `None` when nothing is to be sent back (notifications only).
pub async fn handle_call(state: &AppState, call: Call, ctx: &Context) -> Option<Value> {
    match call {
        Call::Single(parsed) => handle_one(state, parsed, ctx).await.map(to_value),
        Call::Batch(items) => {
            let mut replies = Vec::with_capacity(items.len());
            for parsed in items {
                if let Some(reply) = handle_one(state, parsed, ctx).await {
                    replies.push(to_value(reply));
                }
            }
            // A batch of notifications only gets no reply at all.
            (!replies.is_empty()).then_some(Value::Array(replies))
        }
    }
}

fn to_value(response: Response) -> Value {
    serde_json::to_value(response).unwrap_or(Value::Null)
}

async fn handle_one(state: &AppState, parsed: Parsed, ctx: &Context) -> Option<Response> {
    let request = match parsed {
        Ok(request) => request,
        Err(invalid) => return Some(invalid),
    };
    let outcome = dispatch(state, &request, ctx).await;
    state.metrics.rpc(&request.method, outcome.is_ok());
    if let Err(e) = &outcome {
        tracing::debug!(method = %request.method, code = e.code, message = %e.message, "request failed");
    }
    let id = request.id?;
    Some(match outcome {
        Ok(result) => Response::success(id, result),
        Err(e) => Response::error(id, e),
    })
}

async fn dispatch(state: &AppState, req: &Request, ctx: &Context) -> Result<Value, ErrorObject> {
    let result = match req.method.as_str() {
        "auth.http.login" => auth::login(state, params(req)?, ctx).await,
        "config.getProperties" => config_properties::get(state, params(req)?),
        "org.user.createUser" => users::create(state, params(req)?, ctx).await,
        "org.user.getUsers" => users::get(state, params(req)?, ctx).await,
        "org.user.processIQ" => iq::process(state, params(req)?, ctx).await,
        "conference.create" => conferences::create(state, params(req)?, ctx).await,
        "conference.get" => conferences::get(state, params(req)?, ctx).await,
        "conference.list" => conferences::list(state, params(req)?, ctx).await,
        "conference.end" => conferences::end(state, params(req)?, ctx).await,
        "conference.bindMcu" => conferences::bind_mcu(state, params(req)?, ctx).await,
        "conference.unbindMcu" => conferences::unbind_mcu(state, params(req)?, ctx).await,
        other => return Err(ErrorObject::method_not_found(other)),
    };
    result.map_err(|e| e.to_rpc())
}

/// The params as `T`; absent params read as `{}`.
fn params<T: DeserializeOwned>(req: &Request) -> Result<T, ErrorObject> {
    req.params()
}

/// Serializes a result; our own types always serialize.
fn json<T: serde::Serialize>(value: &T) -> AppResult<Value> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(format!("serialize result: {e}")))
}
