use confgate_signalling::events::ConferenceEvent;

use super::{Store, StoreError, StoreResult};

/// The most events one catch-up reads: a page further behind gets a snapshot.
pub const MAX_CATCH_UP: u32 = 10_000;

impl Store {
    /// Stores events (of one or more conferences); an event already stored
    /// (same conference and sequence number) makes the whole batch fail with
    /// [`StoreError::Conflict`], and nothing of it is stored.
    pub async fn insert_events(&self, events: &[ConferenceEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        for event in events {
            let body = serde_json::to_string(event)
                .map_err(|e| StoreError::Unavailable(sqlx::Error::Encode(Box::new(e))))?;
            sqlx::query(
                "INSERT INTO conference_events (conf_id, seq, event_id, kind, body, at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&event.conf_id)
            .bind(seq_to_db(event.seq))
            .bind(&event.event_id)
            .bind(event.kind.name())
            .bind(body)
            .bind(event.at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stored events of a conference with `from <= seq <= to`, in order
    /// (at most [`MAX_CATCH_UP`]). Rows that no longer parse are skipped: the
    /// caller checks that the run has no gap.
    pub async fn events_between(
        &self,
        conf_id: &str,
        from: u64,
        to: u64,
    ) -> StoreResult<Vec<ConferenceEvent>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT body FROM conference_events WHERE conf_id = ? AND seq >= ? AND seq <= ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(conf_id)
        .bind(seq_to_db(from))
        .bind(seq_to_db(to))
        .bind(i64::from(MAX_CATCH_UP))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(body,)| serde_json::from_str(&body).ok())
            .collect())
    }

    /// The highest stored sequence number of a conference, 0 when none.
    pub async fn last_event_seq(&self, conf_id: &str) -> StoreResult<u64> {
        let (max,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(seq) FROM conference_events WHERE conf_id = ?")
                .bind(conf_id)
                .fetch_one(self.pool())
                .await?;
        Ok(max.map_or(0, |m| u64::try_from(m).unwrap_or(0)))
    }

    /// Removes events older than `before_ms`; returns how many.
    pub async fn prune_events(&self, before_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM conference_events WHERE at < ?")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

fn seq_to_db(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
