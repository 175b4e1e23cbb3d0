//! `org.user.createUser` and `org.user.getUsers`.

use std::collections::BTreeMap;

use confgate_signalling::methods::{CreateUserParams, GetUsersParams, UserCard, UserInfo};
use serde_json::Value;

use super::{Context, json};
use crate::AppState;
use crate::authority::NewAccount;
use crate::error::{AppError, AppResult};
use crate::store::{Role, UserRow, now_ms};

/// Ids per `org.user.getUsers` call at most: a page asks for one conference's
/// members.
const MAX_IDS: usize = 200;

/// Creates an account. A chair's accounts are permanent; an account made with
/// a member's token is temporary like the member, and goes when its
/// conference ends. Without a password, the answer carries a `clientSecret`
/// for `auth.http.login`.
pub async fn create(state: &AppState, p: CreateUserParams, ctx: &Context) -> AppResult<Value> {
    let caller = ctx.caller(state).await?;
    let conf_id = match caller.user.role() {
        Role::Chair => None,
        Role::Member => caller.user.conf_id.clone(),
    };
    let created = state
        .authority
        .create_account(
            NewAccount {
                name: p.name,
                user_id: p.user_id,
                password: p.password,
                mobile: p.mobile,
                email: p.email,
                role: Role::Member,
                conf_id,
            },
            now_ms(),
        )
        .await?;
    let mut value = json(&user_info(&created.user))?;
    if let (Some(secret), Value::Object(map)) = (created.client_secret, &mut value) {
        map.insert("clientSecret".into(), Value::String(secret));
    }
    Ok(value)
}

/// Names and avatars of the accounts asked for that exist.
pub async fn get(state: &AppState, p: GetUsersParams, ctx: &Context) -> AppResult<Value> {
    ctx.caller(state).await?;
    if p.user_ids.len() > MAX_IDS {
        return Err(AppError::InvalidParams(format!(
            "at most {MAX_IDS} userIds per call"
        )));
    }
    let users = state.authority.users(p.user_ids).await?;
    let cards: Vec<UserCard> = users
        .into_iter()
        .map(|u| UserCard {
            avatar_url: u
                .avatar
                .clone()
                .unwrap_or_else(|| format!("/gzbwclient/avatar/{}", u.user_id)),
            user_id: u.user_id,
            name: u.name,
        })
        .collect();
    json(&cards)
}

/// A stored account in the original design's user shape.
pub fn user_info(u: &UserRow) -> UserInfo {
    UserInfo {
        user_id: u.user_id.clone(),
        name: u.name.clone(),
        sip_account: u.sip_account.clone(),
        mobile: u.mobile.clone(),
        email: u.email.clone(),
        gender: "0".into(),
        birthday: None,
        english_name: None,
        signature: None,
        avatar: u.avatar.clone(),
        avatar_bin_val: None,
        custom_id: String::new(),
        creation_date: u.created_at,
        modification_date: u.modified_at,
        active_date: u.active_at,
        is_logged_in: false,
        logged_in: false,
        client_enabled: true,
        ip_white_enabled: false,
        ip_block_enabled: false,
        tenements: Vec::new(),
        properties: BTreeMap::from([(
            "custom.isClientLoginEnable".to_string(),
            "true".to_string(),
        )]),
        delete_date: None,
        status: "normal".into(),
    }
}
