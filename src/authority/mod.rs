//! The conference authority: who owns conferences and accounts.
//!
//! confgate ships a built-in authority ([`embedded::EmbeddedAuthority`]) that
//! keeps both in confgate's own database. A remote EIM (JSON-RPC plus XMPP IQ)
//! can take its place behind the same trait; the rest of the server never
//! knows which one answers.

pub mod embedded;

use std::future::Future;
use std::pin::Pin;

use confgate_signalling::iq::Iq;
use confgate_signalling::join_link::Password;

use crate::error::AppResult;
use crate::store::{Conference, Role, UserRow};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A conference to create.
#[derive(Debug, Clone)]
pub struct NewConference {
    pub name: String,
    /// A random one is chosen when absent.
    pub password: Option<Password>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub chair_user_id: Option<String>,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    /// Generated (`u` + digits) when absent.
    pub user_id: Option<String>,
    pub password: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub role: Role,
    /// Temporary accounts name their conference and go when it ends.
    pub conf_id: Option<String>,
}

/// A new account and, when none was given, the secret it logs in with.
#[derive(Debug, Clone)]
pub struct CreatedAccount {
    pub user: UserRow,
    pub client_secret: Option<String>,
}

pub trait Authority: Send + Sync + 'static {
    fn create_conference(
        &self,
        new: NewConference,
        now_ms: i64,
    ) -> BoxFuture<'_, AppResult<Conference>>;
    fn conference(&self, conf_id: String) -> BoxFuture<'_, AppResult<Option<Conference>>>;
    fn conference_by_password(
        &self,
        password: Password,
    ) -> BoxFuture<'_, AppResult<Option<Conference>>>;
    /// Newest first; only those chaired by `chair` when given.
    fn list_conferences(
        &self,
        chair: Option<String>,
        limit: i64,
    ) -> BoxFuture<'_, AppResult<Vec<Conference>>>;
    /// False when there is no such conference or it had ended already.
    fn end_conference(&self, conf_id: String, now_ms: i64) -> BoxFuture<'_, AppResult<bool>>;

    /// Creates an account. Without a password, a client secret is issued.
    fn create_account(
        &self,
        new: NewAccount,
        now_ms: i64,
    ) -> BoxFuture<'_, AppResult<CreatedAccount>>;
    fn user(&self, user_id: String) -> BoxFuture<'_, AppResult<Option<UserRow>>>;
    fn users(&self, user_ids: Vec<String>) -> BoxFuture<'_, AppResult<Vec<UserRow>>>;
    /// The account when `secret` is its client secret or password.
    fn check_credentials(
        &self,
        user_id: String,
        secret: String,
    ) -> BoxFuture<'_, AppResult<Option<UserRow>>>;

    /// Answers an IQ (its `from` is the caller's JID), as XML.
    fn process_iq(&self, iq: Iq) -> BoxFuture<'_, AppResult<String>>;

    /// Removes what outlived its conference: temporary accounts of ended
    /// conferences, expired refresh tokens. Returns the accounts removed.
    fn sweep(&self, now_ms: i64) -> BoxFuture<'_, AppResult<u64>>;
}

/// A display name: 1 to 64 characters after trimming, no control characters.
pub fn validate_display_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(crate::error::AppError::InvalidParams(
            "name must not be empty".into(),
        ));
    }
    if chars > 64 {
        return Err(crate::error::AppError::InvalidParams(format!(
            "name must be at most 64 characters, got {chars}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(crate::error::AppError::InvalidParams(
            "name must not contain control characters".into(),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(validate_display_name("  张三 ").expect("ok"), "张三");
        assert!(validate_display_name("   ").is_err());
        assert!(validate_display_name("a\u{0}b").is_err());
        assert!(validate_display_name("a\nb").is_err());
        assert!(validate_display_name(&"名".repeat(64)).is_ok());
        assert!(validate_display_name(&"名".repeat(65)).is_err());
    }
}
