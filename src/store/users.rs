use sqlx::AssertSqlSafe;

use super::{Store, StoreResult};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A conference member; temporary accounts made at join are members.
    Member,
    /// May create, list and end conferences, and chairs its own.
    Chair,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Chair => "chair",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "member" => Some(Role::Member),
            "chair" => Some(Role::Chair),
            _ => None,
        }
    }
}

/// An account as stored. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: String,
    pub name: String,
    pub sip_account: String,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub avatar: Option<String>,
    pub role: String,
    /// Set for temporary accounts: the conference whose end removes them.
    pub conf_id: Option<String>,
    pub secret_hash: Option<String>,
    pub created_at: i64,
    pub modified_at: i64,
    pub active_at: i64,
}

impl UserRow {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Member)
    }
}

/// The fields of a new account; the rest are set by the store.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: String,
    pub name: String,
    pub sip_account: String,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub role: Role,
    pub conf_id: Option<String>,
    pub secret_hash: Option<String>,
}

const COLUMNS: &str = "user_id, name, sip_account, mobile, email, avatar, role, conf_id, secret_hash, created_at, modified_at, active_at";

impl Store {
    /// Inserts an account. `StoreError::Conflict` when the user id or SIP
    /// account is taken.
    pub async fn insert_user(&self, user: &NewUser, now_ms: i64) -> StoreResult<UserRow> {
        sqlx::query(
            "INSERT INTO users (user_id, name, sip_account, mobile, email, avatar, role, conf_id, secret_hash, created_at, modified_at, active_at) \
             VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.user_id)
        .bind(&user.name)
        .bind(&user.sip_account)
        .bind(&user.mobile)
        .bind(&user.email)
        .bind(user.role.as_str())
        .bind(&user.conf_id)
        .bind(&user.secret_hash)
        .bind(now_ms)
        .bind(now_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(UserRow {
            user_id: user.user_id.clone(),
            name: user.name.clone(),
            sip_account: user.sip_account.clone(),
            mobile: user.mobile.clone(),
            email: user.email.clone(),
            avatar: None,
            role: user.role.as_str().into(),
            conf_id: user.conf_id.clone(),
            secret_hash: user.secret_hash.clone(),
            created_at: now_ms,
            modified_at: now_ms,
            active_at: now_ms,
        })
    }

    pub async fn user(&self, user_id: &str) -> StoreResult<Option<UserRow>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE user_id = ?"
        )))
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The accounts among `user_ids` that exist, in the order asked.
    pub async fn users(&self, user_ids: &[String]) -> StoreResult<Vec<UserRow>> {
        let mut found = Vec::with_capacity(user_ids.len());
        // Few ids per call (the page asks for one conference's members), and a
        // fixed statement keeps the statement cache small.
        for id in user_ids {
            if let Some(user) = self.user(id).await? {
                found.push(user);
            }
        }
        Ok(found)
    }

    /// Marks a login.
    pub async fn touch_user(&self, user_id: &str, now_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET active_at = ? WHERE user_id = ?")
            .bind(now_ms)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes the temporary accounts of conferences that are over, with their
    /// refresh tokens. Returns how many accounts went.
    pub async fn delete_temporary_users_of_ended(&self, now_ms: i64) -> StoreResult<u64> {
        const ENDED: &str = "SELECT conf_id FROM conferences WHERE ended_at IS NOT NULL \
                             OR (ends_at IS NOT NULL AND ends_at <= ?)";
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM refresh_tokens WHERE user_id IN \
             (SELECT user_id FROM users WHERE conf_id IN ({ENDED}))"
        )))
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        let done = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM users WHERE conf_id IN ({ENDED})"
        )))
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn count_users(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }
}

impl Store {
    /// Temporary accounts of conferences that are live now.
    pub async fn count_live_members(&self, now_ms: i64) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM users u JOIN conferences c ON u.conf_id = c.conf_id \
             WHERE c.ended_at IS NULL AND (c.ends_at IS NULL OR c.ends_at > ?) \
             AND (c.starts_at IS NULL OR c.starts_at <= ?)",
        )
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }
}
