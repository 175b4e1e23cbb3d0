//! `auth.http.login`: tokens for an account.
//!
//! Grants: `client_credentials` needs `clientId` and a credential (the
//! `clientSecret` issued at join, or the `password` given at
//! `org.user.createUser`); `refresh_token` needs `refreshToken` and rotates
//! it: the old one stops working.

use confgate_signalling::methods::{LoginParams, LoginResult};
use serde_json::Value;

use super::{Context, json};
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::store::{UserRow, now_ms};
use crate::tokens::{self, Claims};

pub async fn login(state: &AppState, p: LoginParams, ctx: &Context) -> AppResult<Value> {
    let now = now_ms();
    let user = match p.grant_type.as_str() {
        "client_credentials" => {
            let client_id = p
                .client_id
                .filter(|c| !c.is_empty())
                .ok_or_else(|| AppError::InvalidParams("clientId is required".into()))?;
            let secret = p.client_secret.or(p.password).ok_or_else(|| {
                AppError::InvalidParams(
                    "clientSecret (issued at join) or password is required: a clientId alone is not a credential"
                        .into(),
                )
            })?;
            state.check_throttle(ctx.ip)?;
            state.authority.check_credentials(client_id, secret).await?
        }
        "refresh_token" => {
            let refresh = p
                .refresh_token
                .ok_or_else(|| AppError::InvalidParams("refreshToken is required".into()))?;
            state.check_throttle(ctx.ip)?;
            match state
                .store
                .take_refresh_token(&tokens::hash_token(&refresh), now)
                .await?
            {
                Some(user_id) if p.client_id.as_deref().is_none_or(|c| c == user_id) => {
                    state.authority.user(user_id).await?
                }
                _ => None,
            }
        }
        other => {
            return Err(AppError::InvalidParams(format!(
                "grantType must be client_credentials or refresh_token, got {other:?}"
            )));
        }
    };
    let Some(user) = user else {
        state.record_failure(ctx.ip);
        return Err(AppError::BadCredentials);
    };
    json(&issue_tokens(state, &user, &p.grant_type, now).await?)
}

/// Issues an access token and a fresh refresh token for `user`.
pub async fn issue_tokens(
    state: &AppState,
    user: &UserRow,
    grant: &str,
    now: i64,
) -> AppResult<LoginResult> {
    let ttl_ms =
        i64::try_from(state.config.tokens.access_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let deadline = now.saturating_add(ttl_ms);
    let claims = Claims {
        user_id: user.user_id.clone(),
        user_name: user.name.clone(),
        role: user.role.clone(),
        conf_id: user.conf_id.clone(),
        grant_type: grant.to_string(),
        creation_date: now,
        deadline,
        exp: deadline / 1000,
        nonce: tokens::new_nonce(),
    };
    let refresh = tokens::new_refresh_token();
    let refresh_ttl_ms = i64::try_from(state.config.tokens.refresh_ttl_secs.saturating_mul(1000))
        .unwrap_or(i64::MAX);
    state
        .store
        .insert_refresh_token(
            &tokens::hash_token(&refresh),
            &user.user_id,
            now.saturating_add(refresh_ttl_ms),
            now,
        )
        .await?;
    state.store.touch_user(&user.user_id, now).await?;
    Ok(LoginResult {
        client_type: grant.to_string(),
        corp_id: None,
        name: user.name.clone(),
        access_token: state.keys.sign(&claims),
        deadline,
        user_id: user.user_id.clone(),
        refresh_token: refresh,
    })
}
