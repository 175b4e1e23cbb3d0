//! The join address `/gzbwclient/conference/{code}`: JSON for programs, the
//! join page for browsers; `POST` joins. Plus the embedded static files.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{IntoResponse, Response};
use confgate_signalling::methods::{
    ConferenceLookup, JoinAnswer, JoinRequest, JoinState, LoginResult,
};
use http::{HeaderMap, StatusCode, header};
use rust_embed::RustEmbed;
use serde::Deserialize;

use crate::authority::NewAccount;
use crate::error::{AppError, AppResult};
use crate::store::{Conference, ConferenceState, Role, now_ms};
use crate::{AppState, rpc};

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    format: Option<String>,
}

fn wants_json(headers: &HeaderMap, query: &LookupQuery) -> bool {
    if query.format.as_deref() == Some("json") {
        return true;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

fn state_of(conf: &Conference, now: i64) -> JoinState {
    match conf.state(now) {
        ConferenceState::Live => JoinState::Ok,
        ConferenceState::NotStarted => JoinState::NotStarted,
        ConferenceState::Ended => JoinState::Ended,
    }
}

fn lookup_of(conf: Option<&Conference>, now: i64) -> ConferenceLookup {
    match conf {
        Some(c) => ConferenceLookup {
            conf_id: Some(c.conf_id.clone()),
            conf_name: Some(c.name.clone()),
            state: state_of(c, now),
            code: 200,
        },
        None => ConferenceLookup {
            conf_id: None,
            conf_name: None,
            state: JoinState::NotFound,
            code: 200,
        },
    }
}

/// Resolves a code under the guess throttle: a code that names nothing counts
/// as a failure of the caller's address.
async fn resolve_throttled(
    state: &AppState,
    ip: std::net::IpAddr,
    code: &str,
    now: i64,
) -> AppResult<Option<Conference>> {
    state.check_throttle(ip)?;
    let conf = crate::links::resolve(state, code, now).await?;
    if conf.is_none() {
        state.record_failure(ip);
        state.metrics.link_failures.fetch_add(1, Relaxed);
        tracing::info!(%ip, "join code names no conference");
    }
    Ok(conf)
}

/// `GET /gzbwclient/conference/{code}`.
pub async fn lookup(
    State(state): State<Arc<AppState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    Query(query): Query<LookupQuery>,
    headers: HeaderMap,
) -> Response {
    if !wants_json(&headers, &query) {
        return page("join.html");
    }
    let now = now_ms();
    match resolve_throttled(&state, remote.ip(), &code, now).await {
        Ok(conf) => {
            let lookup = lookup_of(conf.as_ref(), now);
            let mut body = serde_json::to_value(&lookup).unwrap_or_default();
            // A page whose node went away asks here where to go now.
            if let (Some(conf_id), JoinState::Ok) = (&lookup.conf_id, lookup.state) {
                let serving = crate::nodes::serving(&state, conf_id).await;
                if !serving.here
                    && let Some(gateway) = serving.gateways.first()
                {
                    body["gateway"] = serde_json::Value::String(gateway.clone());
                }
            }
            let mut response = Json(body).into_response();
            allow_pool_origin(&state, &headers, &mut response);
            response
        }
        Err(e) => {
            let mut response = e.into_response();
            allow_pool_origin(&state, &headers, &mut response);
            response
        }
    }
}

/// Pages loaded from another node of the pool read the lookup across
/// origins (when their own node went away): they may, and only they.
fn allow_pool_origin(state: &AppState, headers: &HeaderMap, response: &mut Response) {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return;
    };
    if origin
        .to_str()
        .is_ok_and(|o| crate::nodes::is_pool_origin(state, o))
    {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    }
}

/// `POST /gzbwclient/conference/{code}` with `{"name": …}`: when the
/// conference is live, makes a temporary account and answers its tokens;
/// otherwise answers only the state.
pub async fn join(
    State(state): State<Arc<AppState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match join_inner(&state, remote.ip(), &code, &body, bearer).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn join_inner(
    state: &AppState,
    ip: std::net::IpAddr,
    code: &str,
    body: &[u8],
    bearer: Option<&str>,
) -> AppResult<Response> {
    let request: JoinRequest = serde_json::from_slice(body).map_err(|e| {
        AppError::InvalidParams(format!("body must be {{\"name\": \"display name\"}}: {e}"))
    })?;
    let name = crate::authority::validate_display_name(&request.name)?;
    let now = now_ms();
    let conf = resolve_throttled(state, ip, code, now).await?;
    let lookup = lookup_of(conf.as_ref(), now);
    let Some(conf) = conf.filter(|_| lookup.state == JoinState::Ok) else {
        return Ok(Json(lookup).into_response());
    };
    if let Some(token) = bearer {
        return join_as_chair(state, &conf, lookup, token, now).await;
    }
    let created = state
        .authority
        .create_account(
            NewAccount {
                name,
                user_id: None,
                password: None,
                mobile: None,
                email: None,
                role: Role::Member,
                conf_id: Some(conf.conf_id.clone()),
            },
            now,
        )
        .await?;
    let login = rpc::auth::issue_tokens(state, &created.user, "client_credentials", now).await?;
    state.metrics.joins.fetch_add(1, Relaxed);
    tracing::info!(conf_id = %conf.conf_id, user_id = %created.user.user_id, "member joined by link");
    Ok(join_answer(
        state,
        lookup,
        login,
        created.client_secret.unwrap_or_default(),
    )
    .await)
}

/// The join's answer. `webrtcAddress` is the gateway of the node that serves
/// the conference: the page opens its WebSocket there.
async fn join_answer(
    state: &AppState,
    conference: ConferenceLookup,
    login: LoginResult,
    client_secret: String,
) -> Response {
    let serving = match conference.conf_id.as_deref() {
        Some(conf_id) => crate::nodes::serving(state, conf_id).await,
        None => crate::nodes::Serving {
            gateways: crate::nodes::gateways(state),
            here: true,
        },
    };
    Json(JoinAnswer {
        conference,
        user_id: login.user_id,
        name: login.name,
        access_token: login.access_token,
        deadline: login.deadline,
        refresh_token: login.refresh_token,
        client_secret,
        gateway: (!serving.here)
            .then(|| serving.gateways.first().cloned())
            .flatten(),
        webrtc_address: serving.gateways.join(","),
        pool: if state.pool.identity().is_some() {
            crate::nodes::gateways(state)
        } else {
            Vec::new()
        },
    })
    .into_response()
}

/// A chair's page joins with the chair's own account (its access token in
/// `Authorization`), not a temporary one.
async fn join_as_chair(
    state: &AppState,
    conf: &Conference,
    lookup: ConferenceLookup,
    token: &str,
    now: i64,
) -> AppResult<Response> {
    let user = rpc::authenticate(state, Some(token)).await?.user;
    if conf.chair_user_id.as_deref() != Some(user.user_id.as_str()) {
        return Err(AppError::Forbidden(
            "this account does not chair that conference".into(),
        ));
    }
    let login = rpc::auth::issue_tokens(state, &user, "client_credentials", now).await?;
    tracing::info!(conf_id = %conf.conf_id, user_id = %user.user_id, "chair joined by link");
    // No client secret: the chair logs in with its own.
    Ok(join_answer(state, lookup, login, String::new()).await)
}

/// `GET /`: a short page saying what this server is.
pub async fn index() -> Response {
    page("index.html")
}

/// `GET /static/{path}`.
pub async fn static_file(Path(path): Path<String>) -> Response {
    page(&path)
}

fn page(path: &str) -> Response {
    match Static::get(path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                ],
                file.data,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
