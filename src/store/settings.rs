use super::{Store, StoreError, StoreResult};

impl Store {
    /// The stored value of `name`, inserting `make()` on first use. Safe when
    /// several nodes start at once: the first insert wins and all read it.
    pub async fn setting_or_insert(
        &self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> StoreResult<String> {
        if let Some(value) = self.setting(name).await? {
            return Ok(value);
        }
        match sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?)")
            .bind(name)
            .bind(make())
            .execute(self.pool())
            .await
            .map_err(StoreError::from)
        {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
        self.setting(name)
            .await?
            .ok_or_else(|| StoreError::Unavailable(sqlx::Error::RowNotFound))
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let value: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(value.map(|(v,)| v))
    }
}
