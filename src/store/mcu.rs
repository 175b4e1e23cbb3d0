use super::{Store, StoreResult};

/// A conference's binding to a SIP/MCU conference, as stored. Absent fields
/// fall back to the `[sip]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct McuBindingRow {
    pub conf_id: String,
    /// `sip:ROOM@mcu.example.com`.
    pub uri: String,
    /// `udp` or `tcp`.
    pub transport: String,
    pub outbound_proxy: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Comma-separated codec names in order of preference.
    pub codecs: String,
    pub created_at: i64,
}

impl Store {
    /// Binds a conference, replacing an earlier binding.
    pub async fn set_mcu_binding(&self, b: &McuBindingRow) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM mcu_bindings WHERE conf_id = ?")
            .bind(&b.conf_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO mcu_bindings (conf_id, uri, transport, outbound_proxy, username, password, codecs, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&b.conf_id)
        .bind(&b.uri)
        .bind(&b.transport)
        .bind(&b.outbound_proxy)
        .bind(&b.username)
        .bind(&b.password)
        .bind(&b.codecs)
        .bind(b.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn mcu_binding(&self, conf_id: &str) -> StoreResult<Option<McuBindingRow>> {
        Ok(sqlx::query_as(
            "SELECT conf_id, uri, transport, outbound_proxy, username, password, codecs, created_at \
             FROM mcu_bindings WHERE conf_id = ?",
        )
        .bind(conf_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// False when the conference was not bound.
    pub async fn delete_mcu_binding(&self, conf_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM mcu_bindings WHERE conf_id = ?")
            .bind(conf_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
