//! The built-in conference authority: conferences and accounts in confgate's
//! own database, and an XMPP IQ endpoint that answers ping and disco#info.

use confgate_signalling::iq::{self, DiscoIdentity, Iq, IqType};
use confgate_signalling::join_link::Password;
use rand::Rng;

use super::{Authority, BoxFuture, CreatedAccount, NewAccount, NewConference};
use crate::error::{AppError, AppResult};
use crate::store::{Conference, NewUser, Store, StoreError, UserRow};
use crate::tokens;

/// Attempts at a free random id before giving up: with 10^7 ids, a clash is
/// rare until millions are taken.
const ID_ATTEMPTS: usize = 16;

/// What disco#info lists.
pub const FEATURES: &[&str] = &[iq::NS_DISCO_INFO, iq::NS_PING];

#[derive(Debug, Clone)]
pub struct EmbeddedAuthority {
    store: Store,
}

impl EmbeddedAuthority {
    pub fn new(store: Store) -> EmbeddedAuthority {
        EmbeddedAuthority { store }
    }

    async fn create_conference_inner(
        &self,
        new: NewConference,
        now_ms: i64,
    ) -> AppResult<Conference> {
        let name = validate_conference_name(&new.name)?;
        if let (Some(s), Some(e)) = (new.starts_at, new.ends_at)
            && e <= s
        {
            return Err(AppError::InvalidParams(
                "endsAt must be after startsAt".into(),
            ));
        }
        let password = match new.password {
            Some(p) => {
                if self.store.password_in_use(p.as_str(), now_ms).await? {
                    return Err(AppError::Conflict(
                        "that password is in use by a conference that is not over".into(),
                    ));
                }
                p
            }
            None => self.free_password(now_ms).await?,
        };
        for _ in 0..ID_ATTEMPTS {
            let conference = Conference {
                conf_id: random_digits(8, false),
                name: name.clone(),
                password: password.as_str().to_string(),
                chair_user_id: new.chair_user_id.clone(),
                starts_at: new.starts_at,
                ends_at: new.ends_at,
                ended_at: None,
                created_at: now_ms,
            };
            match self.store.insert_conference(&conference).await {
                Ok(()) => return Ok(conference),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Internal("no free conference id".into()))
    }

    async fn free_password(&self, now_ms: i64) -> AppResult<Password> {
        for _ in 0..ID_ATTEMPTS {
            let candidate = Password::parse(&random_digits(6, true))
                .map_err(|e| AppError::Internal(format!("generated password: {e}")))?;
            if !self
                .store
                .password_in_use(candidate.as_str(), now_ms)
                .await?
            {
                return Ok(candidate);
            }
        }
        Err(AppError::Internal("no free conference password".into()))
    }

    async fn create_account_inner(
        &self,
        new: NewAccount,
        now_ms: i64,
    ) -> AppResult<CreatedAccount> {
        let name = super::validate_display_name(&new.name)?;
        if let Some(id) = &new.user_id {
            validate_user_id(id)?;
        }
        let mobile = optional_field("mobile", new.mobile, 32)?;
        let email = optional_field("email", new.email, 254)?;
        if email.as_deref().is_some_and(|e| !e.contains('@')) {
            return Err(AppError::InvalidParams("email must contain @".into()));
        }
        let (secret_hash, client_secret) = match &new.password {
            Some(p) if p.is_empty() || p.len() > 128 => {
                return Err(AppError::InvalidParams(
                    "password must be 1 to 128 bytes".into(),
                ));
            }
            Some(p) => (tokens::hash_password(p), None),
            None => {
                let secret = tokens::new_client_secret();
                (tokens::hash_client_secret(&secret), Some(secret))
            }
        };
        for _ in 0..ID_ATTEMPTS {
            let sip_account = format!("u{}", random_digits(7, false));
            let user = NewUser {
                user_id: new.user_id.clone().unwrap_or_else(|| sip_account.clone()),
                name: name.clone(),
                sip_account,
                mobile: mobile.clone(),
                email: email.clone(),
                role: new.role,
                conf_id: new.conf_id.clone(),
                secret_hash: Some(secret_hash.clone()),
            };
            match self.store.insert_user(&user, now_ms).await {
                Ok(user) => {
                    return Ok(CreatedAccount {
                        user,
                        client_secret,
                    });
                }
                Err(StoreError::Conflict) => {
                    if let Some(id) = &new.user_id
                        && self.store.user(id).await?.is_some()
                    {
                        return Err(AppError::Conflict(format!("userId {id} is taken")));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Internal("no free user id".into()))
    }

    fn answer_iq(iq: &Iq) -> String {
        let payload = iq.payload.as_ref();
        let ns = payload.and_then(|p| p.namespace.as_deref());
        match (iq.iq_type, payload.map(|p| p.name.as_str()), ns) {
            (IqType::Get, Some("ping"), Some(iq::NS_PING)) => iq::result(iq),
            (IqType::Get, Some("query"), Some(iq::NS_DISCO_INFO)) => iq::disco_info_result(
                iq,
                &DiscoIdentity {
                    category: "component",
                    kind: "generic",
                    name: "confgate",
                },
                FEATURES,
            ),
            // A result or error needs no answer; echo an empty result so the
            // caller always gets XML back.
            (IqType::Result | IqType::Error, _, _) => iq::result(iq),
            _ => iq::error(iq, "cancel", "service-unavailable", None),
        }
    }
}

impl Authority for EmbeddedAuthority {
    fn create_conference(
        &self,
        new: NewConference,
        now_ms: i64,
    ) -> BoxFuture<'_, AppResult<Conference>> {
        Box::pin(self.create_conference_inner(new, now_ms))
    }

    fn conference(&self, conf_id: String) -> BoxFuture<'_, AppResult<Option<Conference>>> {
        Box::pin(async move { Ok(self.store.conference(&conf_id).await?) })
    }

    fn conference_by_password(
        &self,
        password: Password,
    ) -> BoxFuture<'_, AppResult<Option<Conference>>> {
        Box::pin(async move { Ok(self.store.conference_by_password(password.as_str()).await?) })
    }

    fn list_conferences(
        &self,
        chair: Option<String>,
        limit: i64,
    ) -> BoxFuture<'_, AppResult<Vec<Conference>>> {
        Box::pin(async move { Ok(self.store.list_conferences(chair.as_deref(), limit).await?) })
    }

    fn end_conference(&self, conf_id: String, now_ms: i64) -> BoxFuture<'_, AppResult<bool>> {
        Box::pin(async move { Ok(self.store.end_conference(&conf_id, now_ms).await?) })
    }

    fn create_account(
        &self,
        new: NewAccount,
        now_ms: i64,
    ) -> BoxFuture<'_, AppResult<CreatedAccount>> {
        Box::pin(self.create_account_inner(new, now_ms))
    }

    fn user(&self, user_id: String) -> BoxFuture<'_, AppResult<Option<UserRow>>> {
        Box::pin(async move { Ok(self.store.user(&user_id).await?) })
    }

    fn users(&self, user_ids: Vec<String>) -> BoxFuture<'_, AppResult<Vec<UserRow>>> {
        Box::pin(async move { Ok(self.store.users(&user_ids).await?) })
    }

    fn check_credentials(
        &self,
        user_id: String,
        secret: String,
    ) -> BoxFuture<'_, AppResult<Option<UserRow>>> {
        Box::pin(async move {
            let Some(user) = self.store.user(&user_id).await? else {
                return Ok(None);
            };
            let ok = user
                .secret_hash
                .as_deref()
                .is_some_and(|h| tokens::verify_secret(h, &secret));
            Ok(ok.then_some(user))
        })
    }

    fn process_iq(&self, iq: Iq) -> BoxFuture<'_, AppResult<String>> {
        Box::pin(async move { Ok(Self::answer_iq(&iq)) })
    }

    fn sweep(&self, now_ms: i64) -> BoxFuture<'_, AppResult<u64>> {
        Box::pin(async move {
            let removed = self.store.delete_temporary_users_of_ended(now_ms).await?;
            self.store.delete_expired_refresh_tokens(now_ms).await?;
            Ok(removed)
        })
    }
}

fn random_digits(n: usize, leading_zero: bool) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|i| {
            let low = if i == 0 && !leading_zero { 1 } else { 0 };
            char::from(b'0' + rng.random_range(low..10u8))
        })
        .collect()
}

fn validate_conference_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 128 || name.chars().any(char::is_control) {
        return Err(AppError::InvalidParams(
            "conference name must be 1 to 128 characters without control characters".into(),
        ));
    }
    Ok(name.to_string())
}

fn validate_user_id(id: &str) -> AppResult<()> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AppError::InvalidParams(
            "userId must be 1 to 64 characters of letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

fn optional_field(what: &str, value: Option<String>, max: usize) -> AppResult<Option<String>> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.len() > max || v.chars().any(char::is_control) => {
            Err(AppError::InvalidParams(format!(
                "{what} must be at most {max} bytes without control characters"
            )))
        }
        other => Ok(other),
    }
}
