use super::{Store, StoreError, StoreResult};

/// A node of the gateway pool, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    pub node_id: String,
    /// Its WebSocket gateway, such as `wss://gw1.example.com:8443`.
    pub gateway: String,
    /// Members joined on it, and conferences it serves.
    pub members: i64,
    pub rooms: i64,
    /// Media streams it carries: tracks received plus copies sent.
    pub streams: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

impl NodeRow {
    /// The load used to choose where a conference goes. Media streams cost
    /// most (each is packets forwarded); a member costs its WebSocket and
    /// state even without media, a conference its room task.
    pub fn load(&self) -> i64 {
        self.streams
            .saturating_add(self.members.saturating_mul(4))
            .saturating_add(self.rooms)
    }
}

impl Store {
    /// Records a node's heartbeat and load, registering it the first time.
    pub async fn heartbeat(&self, node: &NodeRow) -> StoreResult<()> {
        let updated = sqlx::query(
            "UPDATE nodes SET gateway = ?, members = ?, rooms = ?, streams = ?, heartbeat_at = ? \
             WHERE node_id = ?",
        )
        .bind(&node.gateway)
        .bind(node.members)
        .bind(node.rooms)
        .bind(node.streams)
        .bind(node.heartbeat_at)
        .bind(&node.node_id)
        .execute(self.pool())
        .await?;
        if updated.rows_affected() > 0 {
            return Ok(());
        }
        let inserted = sqlx::query(
            "INSERT INTO nodes (node_id, gateway, members, rooms, streams, started_at, heartbeat_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&node.node_id)
        .bind(&node.gateway)
        .bind(node.members)
        .bind(node.rooms)
        .bind(node.streams)
        .bind(node.started_at)
        .bind(node.heartbeat_at)
        .execute(self.pool())
        .await;
        match inserted.map_err(StoreError::from) {
            // Registered by a concurrent beat of the same node: fine.
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Nodes whose last heartbeat is at or after `since_ms`, least loaded
    /// first (ties by id, so that every node chooses alike).
    pub async fn live_nodes(&self, since_ms: i64) -> StoreResult<Vec<NodeRow>> {
        let mut nodes: Vec<NodeRow> = sqlx::query_as(
            "SELECT node_id, gateway, members, rooms, streams, started_at, heartbeat_at \
             FROM nodes WHERE heartbeat_at >= ?",
        )
        .bind(since_ms)
        .fetch_all(self.pool())
        .await?;
        nodes.sort_by(|a, b| {
            a.load()
                .cmp(&b.load())
                .then_with(|| a.node_id.cmp(&b.node_id))
        });
        Ok(nodes)
    }

    /// A node leaving cleanly: its row and its conferences go.
    pub async fn remove_node(&self, node_id: &str) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM conference_nodes WHERE node_id = ?")
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM nodes WHERE node_id = ?")
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The node a conference is allocated to, if any.
    pub async fn conference_node(&self, conf_id: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT node_id FROM conference_nodes WHERE conf_id = ?")
                .bind(conf_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(n,)| n))
    }

    /// Allocates a conference to `node_id` unless it is allocated to a node
    /// in `alive`; returns the node it is allocated to. Two nodes allocating
    /// at once agree: the first insert wins and the other reads it.
    pub async fn allocate_conference(
        &self,
        conf_id: &str,
        node_id: &str,
        alive: &[String],
        now_ms: i64,
    ) -> StoreResult<String> {
        for _ in 0..3 {
            if let Some(current) = self.conference_node(conf_id).await? {
                if alive.contains(&current) {
                    return Ok(current);
                }
                // Its node is dead: take it over, unless someone else just did.
                sqlx::query("DELETE FROM conference_nodes WHERE conf_id = ? AND node_id = ?")
                    .bind(conf_id)
                    .bind(&current)
                    .execute(self.pool())
                    .await?;
            }
            let inserted = sqlx::query(
                "INSERT INTO conference_nodes (conf_id, node_id, allocated_at) VALUES (?, ?, ?)",
            )
            .bind(conf_id)
            .bind(node_id)
            .bind(now_ms)
            .execute(self.pool())
            .await;
            match inserted.map_err(StoreError::from) {
                Ok(_) => return Ok(node_id.to_string()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        self.conference_node(conf_id)
            .await?
            .ok_or_else(|| StoreError::Unavailable(sqlx::Error::RowNotFound))
    }
}
