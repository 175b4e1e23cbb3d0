//! `conference.create`, `conference.get`, `conference.list`,
//! `conference.end`: for chairs. A chair sees and ends the conferences it
//! chairs.

use confgate_signalling::join_link::Password;
use confgate_signalling::methods::{
    BindMcuParams, ConferenceIdParams, ConferenceInfo, CreateConferenceParams, JoinState,
    ListConferencesParams,
};
use serde_json::Value;

use super::{Caller, Context, json};
use crate::AppState;
use crate::authority::NewConference;
use crate::error::{AppError, AppResult};
use crate::store::{Conference, ConferenceState, Role, now_ms};

async fn chair(state: &AppState, ctx: &Context) -> AppResult<Caller> {
    let caller = ctx.caller(state).await?;
    if caller.user.role() != Role::Chair {
        return Err(AppError::Forbidden(
            "only a chair may manage conferences".into(),
        ));
    }
    Ok(caller)
}

pub async fn create(
    state: &AppState,
    p: CreateConferenceParams,
    ctx: &Context,
) -> AppResult<Value> {
    let caller = chair(state, ctx).await?;
    let password = p
        .password
        .map(|p| Password::parse(&p).map_err(|e| AppError::InvalidParams(format!("password: {e}"))))
        .transpose()?;
    let conf = create_conference(
        state,
        NewConference {
            name: p.name,
            password,
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            chair_user_id: Some(caller.user.user_id),
        },
    )
    .await?;
    json(&info(state, &conf).await?)
}

/// Creates a conference and its opaque link.
pub async fn create_conference(state: &AppState, new: NewConference) -> AppResult<Conference> {
    let now = now_ms();
    let conf = state.authority.create_conference(new, now).await?;
    crate::links::create_opaque(state, &conf, now).await?;
    tracing::info!(conf_id = %conf.conf_id, name = %conf.name, "conference created");
    Ok(conf)
}

async fn own_conference(
    state: &AppState,
    caller: &Caller,
    conf_id: String,
) -> AppResult<Conference> {
    let conf = state
        .authority
        .conference(conf_id.clone())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no conference {conf_id}")))?;
    if conf.chair_user_id.as_deref() != Some(caller.user.user_id.as_str()) {
        return Err(AppError::Forbidden(format!(
            "you do not chair conference {conf_id}"
        )));
    }
    Ok(conf)
}

pub async fn get(state: &AppState, p: ConferenceIdParams, ctx: &Context) -> AppResult<Value> {
    let caller = chair(state, ctx).await?;
    let conf = own_conference(state, &caller, p.conf_id).await?;
    json(&info(state, &conf).await?)
}

pub async fn list(state: &AppState, p: ListConferencesParams, ctx: &Context) -> AppResult<Value> {
    let caller = chair(state, ctx).await?;
    let limit = i64::from(p.limit.unwrap_or(100).clamp(1, 1000));
    let confs = state
        .authority
        .list_conferences(Some(caller.user.user_id), limit)
        .await?;
    let mut out = Vec::with_capacity(confs.len());
    for conf in &confs {
        out.push(info(state, conf).await?);
    }
    json(&out)
}

pub async fn end(state: &AppState, p: ConferenceIdParams, ctx: &Context) -> AppResult<Value> {
    let caller = chair(state, ctx).await?;
    let conf = own_conference(state, &caller, p.conf_id).await?;
    let now = now_ms();
    state
        .authority
        .end_conference(conf.conf_id.clone(), now)
        .await?;
    if let Some(room) = state.rooms.existing(&conf.conf_id) {
        let _ = room.send(crate::rooms::RoomCommand::Ended).await;
    }
    let conf = state
        .authority
        .conference(conf.conf_id.clone())
        .await?
        .unwrap_or(conf);
    json(&info(state, &conf).await?)
}

/// Binds a conference to a SIP/MCU conference (replacing an earlier
/// binding): its web members will call into it.
pub async fn bind_mcu(state: &AppState, p: BindMcuParams, ctx: &Context) -> AppResult<Value> {
    let caller = chair(state, ctx).await?;
    let conf = own_conference(state, &caller, p.conf_id.clone()).await?;
    let binding = crate::mcu::binding(p, &state.config.sip, now_ms())?;
    state.store.set_mcu_binding(&binding).await?;
    tracing::info!(conf_id = %conf.conf_id, uri = %binding.uri, "conference bound to an MCU");
    json(&info(state, &conf).await?)
}

pub async fn unbind_mcu(
    state: &AppState,
    p: ConferenceIdParams,
    ctx: &Context,
) -> AppResult<Value> {
    let caller = chair(state, ctx).await?;
    let conf = own_conference(state, &caller, p.conf_id).await?;
    if !state.store.delete_mcu_binding(&conf.conf_id).await? {
        return Err(AppError::NotFound(format!(
            "conference {} is not bound to an MCU",
            conf.conf_id
        )));
    }
    json(&info(state, &conf).await?)
}

/// A conference as the API and the CLI show it.
pub async fn info(state: &AppState, conf: &Conference) -> AppResult<ConferenceInfo> {
    let now = now_ms();
    Ok(ConferenceInfo {
        conf_id: conf.conf_id.clone(),
        conf_name: conf.name.clone(),
        password: conf.password.clone(),
        state: match conf.state(now) {
            ConferenceState::Live => JoinState::Ok,
            ConferenceState::NotStarted => JoinState::NotStarted,
            ConferenceState::Ended => JoinState::Ended,
        },
        chair_user_id: conf.chair_user_id.clone(),
        starts_at: conf.starts_at,
        ends_at: conf.ends_at,
        ended_at: conf.ended_at,
        created_at: conf.created_at,
        links: crate::links::urls(state, conf, now).await?,
        mcu: state
            .store
            .mcu_binding(&conf.conf_id)
            .await?
            .map(|b| crate::mcu::view(&b, &state.config.sip)),
    })
}
