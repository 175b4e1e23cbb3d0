use sqlx::AssertSqlSafe;

use super::{Store, StoreResult};

/// A conference as stored. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Conference {
    pub conf_id: String,
    pub name: String,
    pub password: String,
    pub chair_user_id: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub created_at: i64,
}

/// Where a conference is in its life, with the original design's state codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConferenceState {
    /// Members may join: state 0.
    Live,
    /// Before `starts_at`: state 30.
    NotStarted,
    /// After `ends_at`, or ended explicitly: state 31.
    Ended,
}

impl ConferenceState {
    pub fn code(self) -> u16 {
        match self {
            ConferenceState::Live => 0,
            ConferenceState::NotStarted => 30,
            ConferenceState::Ended => 31,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConferenceState::Live => "live",
            ConferenceState::NotStarted => "notStarted",
            ConferenceState::Ended => "ended",
        }
    }
}

impl Conference {
    pub fn state(&self, now_ms: i64) -> ConferenceState {
        if self.ended_at.is_some_and(|t| t <= now_ms) || self.ends_at.is_some_and(|t| t <= now_ms) {
            ConferenceState::Ended
        } else if self.starts_at.is_some_and(|t| t > now_ms) {
            ConferenceState::NotStarted
        } else {
            ConferenceState::Live
        }
    }
}

const COLUMNS: &str =
    "conf_id, name, password, chair_user_id, starts_at, ends_at, ended_at, created_at";

impl Store {
    pub async fn insert_conference(&self, c: &Conference) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO conferences (conf_id, name, password, chair_user_id, starts_at, ends_at, ended_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.conf_id)
        .bind(&c.name)
        .bind(&c.password)
        .bind(&c.chair_user_id)
        .bind(c.starts_at)
        .bind(c.ends_at)
        .bind(c.ended_at)
        .bind(c.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn conference(&self, conf_id: &str) -> StoreResult<Option<Conference>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM conferences WHERE conf_id = ?"
        )))
        .bind(conf_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The newest conference with this password: a password may be reused
    /// once the conference that had it is over.
    pub async fn conference_by_password(&self, password: &str) -> StoreResult<Option<Conference>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM conferences WHERE password = ? ORDER BY created_at DESC, conf_id DESC LIMIT 1"
        )))
        .bind(password)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Whether a conference that is not over yet uses this password.
    pub async fn password_in_use(&self, password: &str, now_ms: i64) -> StoreResult<bool> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM conferences WHERE password = ? AND ended_at IS NULL \
             AND (ends_at IS NULL OR ends_at > ?)",
        )
        .bind(password)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Conferences, newest first; only those chaired by `chair` when given.
    pub async fn list_conferences(
        &self,
        chair: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Conference>> {
        let filter = if chair.is_some() {
            "WHERE chair_user_id = ?"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM conferences {filter} ORDER BY created_at DESC, conf_id DESC LIMIT ?"
        );
        let mut query = sqlx::query_as(AssertSqlSafe(sql));
        if let Some(chair) = chair {
            query = query.bind(chair);
        }
        Ok(query.bind(limit).fetch_all(self.pool()).await?)
    }

    pub async fn count_conferences(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM conferences")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Ends a conference now. False when it does not exist or had already
    /// ended explicitly.
    pub async fn end_conference(&self, conf_id: &str, now_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE conferences SET ended_at = ? WHERE conf_id = ? AND ended_at IS NULL",
        )
        .bind(now_ms)
        .bind(conf_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conference(starts: Option<i64>, ends: Option<i64>, ended: Option<i64>) -> Conference {
        Conference {
            conf_id: "1".into(),
            name: "n".into(),
            password: "123456".into(),
            chair_user_id: None,
            starts_at: starts,
            ends_at: ends,
            ended_at: ended,
            created_at: 0,
        }
    }

    #[test]
    fn state_follows_the_clock() {
        assert_eq!(conference(None, None, None).state(5), ConferenceState::Live);
        assert_eq!(
            conference(Some(10), None, None).state(5),
            ConferenceState::NotStarted
        );
        assert_eq!(
            conference(Some(10), None, None).state(10),
            ConferenceState::Live
        );
        assert_eq!(
            conference(Some(10), Some(20), None).state(20),
            ConferenceState::Ended
        );
        assert_eq!(
            conference(None, None, Some(3)).state(5),
            ConferenceState::Ended
        );
        assert_eq!(
            conference(Some(10), None, Some(3)).state(5),
            ConferenceState::Ended
        );
        assert_eq!(ConferenceState::NotStarted.code(), 30);
        assert_eq!(ConferenceState::Ended.code(), 31);
    }
}
