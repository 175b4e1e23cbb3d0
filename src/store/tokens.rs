use super::{Store, StoreResult};

impl Store {
    pub async fn insert_refresh_token(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO refresh_tokens (token_hash, user_id, expires_at, created_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash)
            .bind(user_id)
            .bind(expires_at)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Consumes a refresh token: returns its user when it was valid and
    /// deletes it, so that it works once. Of two concurrent uses, one wins.
    pub async fn take_refresh_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT user_id, expires_at FROM refresh_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(self.pool())
                .await?;
        let Some((user_id, expires_at)) = row else {
            return Ok(None);
        };
        let deleted = sqlx::query("DELETE FROM refresh_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok((deleted.rows_affected() == 1 && expires_at > now_ms).then_some(user_id))
    }

    pub async fn delete_expired_refresh_tokens(&self, now_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= ?")
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
