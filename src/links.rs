//! Join links: making them for a conference and resolving a path segment back
//! to its conference. The codec itself is pure code in
//! `confgate_signalling::join_link`.

use confgate_signalling::join_link::{self, JoinCode, OpaqueCode, Password};

use crate::AppState;
use crate::config::LinkFormat;
use crate::error::{AppError, AppResult};
use crate::store::{Conference, JoinLinkRow};
use crate::tokens::random_bytes;

/// The path under which join codes live.
pub const JOIN_PATH: &str = "/gzbwclient/conference/";

/// A seed-format code for `password`, with a fresh random prefix. Anyone
/// holding it can decode the password.
pub fn seed_code(password: &Password) -> AppResult<String> {
    let prefix = join_link::seed_prefix_from_random(random_bytes::<4>());
    join_link::encode_seed(password, prefix)
        .map_err(|e| AppError::Internal(format!("seed link: {e}")))
}

/// Makes a new opaque link for a conference.
pub async fn create_opaque(
    state: &AppState,
    conf: &Conference,
    now_ms: i64,
) -> AppResult<JoinLinkRow> {
    let ttl = state.config.links.opaque_ttl_secs;
    let ttl_end = (ttl > 0).then(|| {
        now_ms.saturating_add(i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX))
    });
    let row = JoinLinkRow {
        code: OpaqueCode::from_random(random_bytes()).as_str().to_string(),
        conf_id: conf.conf_id.clone(),
        created_at: now_ms,
        expires_at: ttl_end,
        revoked_at: None,
    };
    state.store.insert_join_link(&row).await?;
    Ok(row)
}

/// The conference's join links as full URLs, the configured format first.
pub async fn urls(state: &AppState, conf: &Conference, now_ms: i64) -> AppResult<Vec<String>> {
    let base = format!("{}{JOIN_PATH}", state.config.public_base_url());
    let password = Password::parse(&conf.password)
        .map_err(|e| AppError::Internal(format!("stored password of {}: {e}", conf.conf_id)))?;
    let seed = format!("{base}{}", seed_code(&password)?);
    let opaque = state.store.usable_join_links(&conf.conf_id, now_ms).await?;
    let mut urls: Vec<String> = opaque.iter().map(|l| format!("{base}{}", l.code)).collect();
    match state.config.links.format {
        LinkFormat::Seed => urls.insert(0, seed),
        LinkFormat::Opaque => urls.push(seed),
    }
    Ok(urls)
}

/// Resolves a path segment (a password, a seed code or an opaque code) to its
/// conference. `None` when it names none: a malformed code, an unknown
/// password, a revoked or expired link.
pub async fn resolve(
    state: &AppState,
    segment: &str,
    now_ms: i64,
) -> AppResult<Option<Conference>> {
    let Ok(code) = JoinCode::parse(segment) else {
        return Ok(None);
    };
    match code {
        JoinCode::Password(p) | JoinCode::Seed(p) => {
            state.authority.conference_by_password(p).await
        }
        JoinCode::Opaque(code) => {
            let Some(link) = state.store.join_link(code.as_str()).await? else {
                return Ok(None);
            };
            if !link.usable(now_ms) {
                return Ok(None);
            }
            state.authority.conference(link.conf_id).await
        }
    }
}
