//! MCP sessions as stored, so that a client's `Mcp-Session-Id` outlives a
//! restart of the gateway or moves to another node sharing the store.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::mcp_session;
use super::{Store, StoreError};

/// An MCP session as stored, so that a client's `Mcp-Session-Id` outlives
/// a restart of the gateway. Nothing in it is secret.
#[derive(Debug, Clone, PartialEq)]
pub struct McpSessionRecord {
    pub id: String,
    pub session_id: Uuid,
    pub protocol_version: String,
    /// The client capabilities its backends are told of.
    pub client_capabilities: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The node that holds it in memory (its backend sessions, the calls
    /// and streams in progress), if one said so.
    pub node: Option<Uuid>,
}

impl Store {
    pub async fn insert_mcp_session(&self, record: &McpSessionRecord) -> Result<(), StoreError> {
        let row = mcp_session::ActiveModel {
            id: Set(record.id.clone()),
            session_id: Set(record.session_id.to_string()),
            protocol_version: Set(record.protocol_version.clone()),
            client_capabilities: Set(record.client_capabilities.to_string()),
            created_at: Set(record.created_at),
            last_seen_at: Set(record.last_seen_at),
            node_id: Set(record.node.map(|node| node.to_string())),
        };
        mcp_session::Entity::insert(row).exec(&self.db).await?;
        Ok(())
    }

    /// The MCP session `id` of session `session_id`, if it is stored.
    pub async fn find_mcp_session(
        &self,
        session_id: Uuid,
        id: &str,
    ) -> Result<Option<McpSessionRecord>, StoreError> {
        let Some(row) = mcp_session::Entity::find_by_id(id.to_owned())
            .filter(mcp_session::Column::SessionId.eq(session_id.to_string()))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let client_capabilities =
            serde_json::from_str(&row.client_capabilities).map_err(|_| StoreError::Corrupt {
                id: row.id.clone(),
                reason: "client_capabilities is not JSON",
            })?;
        Ok(Some(McpSessionRecord {
            id: row.id,
            session_id,
            protocol_version: row.protocol_version,
            client_capabilities,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            node: row
                .node_id
                .as_deref()
                .and_then(|node| Uuid::try_parse(node).ok()),
        }))
    }

    /// The node that holds the MCP session `id` of session `session_id`,
    /// made `node` when no node holds it or its holder is not alive (no
    /// heartbeat after `since`). Of nodes asking at once, one is made the
    /// holder and the others are told it.
    pub async fn claim_mcp_session(
        &self,
        record: &McpSessionRecord,
        node: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let row = mcp_session::ActiveModel {
            id: Set(record.id.clone()),
            session_id: Set(record.session_id.to_string()),
            protocol_version: Set(record.protocol_version.clone()),
            client_capabilities: Set(record.client_capabilities.to_string()),
            created_at: Set(record.created_at),
            last_seen_at: Set(record.last_seen_at),
            node_id: Set(Some(node.to_string())),
        };
        mcp_session::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(mcp_session::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        for _ in 0..2 {
            let holder = self
                .find_mcp_session(record.session_id, &record.id)
                .await?
                .and_then(|stored| stored.node);
            let alive = match holder {
                Some(holder) if holder == node => return Ok(node),
                Some(holder) => self.live_node(holder, since).await?.is_some(),
                None => false,
            };
            if alive {
                return holder.ok_or(StoreError::Corrupt {
                    id: record.id.clone(),
                    reason: "holder vanished",
                });
            }
            // Taken over only from the holder found gone: of two nodes
            // taking over at once, one does.
            let mut update = mcp_session::Entity::update_many()
                .col_expr(mcp_session::Column::NodeId, Expr::value(node.to_string()))
                .filter(mcp_session::Column::Id.eq(record.id.as_str()));
            update = match holder {
                Some(gone) => update.filter(mcp_session::Column::NodeId.eq(gone.to_string())),
                None => update.filter(mcp_session::Column::NodeId.is_null()),
            };
            update.exec(&self.db).await?;
        }
        Ok(self
            .find_mcp_session(record.session_id, &record.id)
            .await?
            .and_then(|stored| stored.node)
            .unwrap_or(node))
    }

    /// Says that `node` holds the MCP session `id` from now on.
    pub async fn hold_mcp_session(&self, id: &str, node: Uuid) -> Result<(), StoreError> {
        mcp_session::Entity::update_many()
            .col_expr(mcp_session::Column::NodeId, Expr::value(node.to_string()))
            .filter(mcp_session::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets the MCP session `id` of session `session_id`; false when that
    /// session has no such MCP session stored.
    pub async fn delete_mcp_session(&self, session_id: Uuid, id: &str) -> Result<bool, StoreError> {
        let result = mcp_session::Entity::delete_many()
            .filter(mcp_session::Column::Id.eq(id))
            .filter(mcp_session::Column::SessionId.eq(session_id.to_string()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Records that the MCP sessions `ids` were in use at `now`.
    pub async fn touch_mcp_sessions(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // In chunks: SQLite bounds the number of values in one statement.
        for chunk in ids.chunks(500) {
            mcp_session::Entity::update_many()
                .col_expr(mcp_session::Column::LastSeenAt, Expr::value(now))
                .filter(mcp_session::Column::Id.is_in(chunk.iter().map(String::as_str)))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Forgets MCP sessions last seen before `cutoff`: their clients left
    /// without ending them. Returns how many were forgotten.
    pub async fn prune_mcp_sessions(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = mcp_session::Entity::delete_many()
            .filter(mcp_session::Column::LastSeenAt.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}
