//! What the nodes sharing a PostgreSQL store know of each other: a row
//! each with its heartbeat, and notifications (LISTEN/NOTIFY) that wake
//! every node when one changes what the others hold in memory. A SQLite
//! store belongs to one node: it has neither.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Statement,
};
use uuid::Uuid;

use super::entity::{node, session};
use super::{Store, StoreError};

/// The notification channel every node listens on.
pub const CHANNEL: &str = "mcp_mux_events";

/// A node as the others see it.
#[derive(Clone)]
pub struct NodeRecord {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    /// Where the others reach it, if it can be reached.
    pub url: Option<String>,
    /// What the others show it when they pass it a request.
    pub secret: String,
}

// The secret is the node's: a Debug print shows that it is there.
impl std::fmt::Debug for NodeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Whether other nodes may share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// Says that `node` is alive at `now`.
    pub async fn heartbeat(&self, node: &NodeRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        let row = node::ActiveModel {
            id: Set(node.id.to_string()),
            started_at: Set(node.started_at),
            heartbeat_at: Set(now),
            url: Set(node.url.clone()),
            secret: Set(node.secret.clone()),
        };
        node::Entity::insert(row)
            .on_conflict(
                OnConflict::column(node::Column::Id)
                    .update_column(node::Column::HeartbeatAt)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// The nodes whose last heartbeat is after `since`; those before are
    /// forgotten.
    pub async fn live_nodes(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        node::Entity::delete_many()
            .filter(node::Column::HeartbeatAt.lt(since))
            .exec(&self.db)
            .await?;
        Ok(node::Entity::find().count(&self.db).await?)
    }

    /// Where `node` is reached and the secret it takes, if it is alive (a
    /// heartbeat after `since`) and said where it is reached.
    pub async fn live_node(
        &self,
        node: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(node::Entity::find_by_id(node.to_string())
            .filter(node::Column::HeartbeatAt.gt(since))
            .one(&self.db)
            .await?
            .and_then(|row| Some((row.url?, row.secret))))
    }

    /// A node that stops says so, and the others stop counting it at once.
    pub async fn leave(&self, node: Uuid) -> Result<(), StoreError> {
        node::Entity::delete_by_id(node.to_string())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Wakes every node listening (this one too) with `payload`; nothing
    /// on a store no other node shares.
    pub async fn notify(&self, payload: &str) -> Result<(), StoreError> {
        if !self.is_shared() {
            return Ok(());
        }
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
        Ok(())
    }

    /// A connection listening on [`CHANNEL`]; None on a store no other
    /// node shares.
    pub async fn listen(&self) -> Result<Option<PgListener>, StoreError> {
        if !self.is_shared() {
            return Ok(None);
        }
        let pool = self.db.get_postgres_connection_pool();
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(listen_failed)?;
        listener.listen(CHANNEL).await.map_err(listen_failed)?;
        Ok(Some(listener))
    }

    /// Which of `ids` are still stored.
    pub async fn stored_sessions(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let found: Vec<String> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::Id.is_in(ids.iter().map(Uuid::to_string)))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(found
            .iter()
            .filter_map(|id| Uuid::try_parse(id).ok())
            .collect())
    }
}

fn listen_failed(error: sea_orm::sqlx::Error) -> StoreError {
    StoreError::Database {
        source: sea_orm::DbErr::Custom(format!("cannot listen for notifications: {error}")),
    }
}
