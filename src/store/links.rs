use super::{Store, StoreResult};

/// An opaque join link.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JoinLinkRow {
    pub code: String,
    pub conf_id: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl JoinLinkRow {
    pub fn usable(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now_ms)
    }
}

impl Store {
    pub async fn insert_join_link(&self, link: &JoinLinkRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO join_links (code, conf_id, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&link.code)
        .bind(&link.conf_id)
        .bind(link.created_at)
        .bind(link.expires_at)
        .bind(link.revoked_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn join_link(&self, code: &str) -> StoreResult<Option<JoinLinkRow>> {
        Ok(sqlx::query_as(
            "SELECT code, conf_id, created_at, expires_at, revoked_at FROM join_links WHERE code = ?",
        )
        .bind(code)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The opaque links of a conference that still work, oldest first.
    pub async fn usable_join_links(
        &self,
        conf_id: &str,
        now_ms: i64,
    ) -> StoreResult<Vec<JoinLinkRow>> {
        Ok(sqlx::query_as(
            "SELECT code, conf_id, created_at, expires_at, revoked_at FROM join_links \
             WHERE conf_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) \
             ORDER BY created_at, code",
        )
        .bind(conf_id)
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?)
    }

    /// Revokes an opaque link. False when there is no such usable link.
    pub async fn revoke_join_link(&self, code: &str, now_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE join_links SET revoked_at = ? WHERE code = ? AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(code)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
