//! The audit trail's records: written in batches, read back a page at a
//! time, pruned by age.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionTrait,
};
use uuid::Uuid;

use super::entity::audit_record;
use super::{Store, StoreError};

/// One `tools/call` in the audit trail: who called what, how it ended and
/// how long it took; never its arguments or its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub session_id: Uuid,
    pub mcp_session_id: String,
    /// None when the tool name led to no backend.
    pub backend: Option<String>,
    pub tool: String,
    /// `ok`, `tool_error` (the tool answered `isError`) or `error`.
    pub outcome: &'static str,
    /// What kind of error, for `error`: `timeout`, `unreachable`, …
    pub error_class: Option<&'static str>,
    pub duration_ms: i64,
    pub at: DateTime<Utc>,
    /// The signed-in user who made the call, if any.
    pub subject: Option<std::sync::Arc<str>>,
}

/// An audit record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditRecord {
    pub id: i64,
    pub mcp_session_id: String,
    pub backend: Option<String>,
    pub tool: String,
    pub outcome: String,
    pub error_class: Option<String>,
    pub duration_ms: i64,
    pub at: DateTime<Utc>,
    pub subject: Option<String>,
}

/// The columns of an audit INSERT, in the order `audit_values` gives them.
const AUDIT_COLUMNS: [audit_record::Column; 9] = [
    audit_record::Column::SessionId,
    audit_record::Column::McpSessionId,
    audit_record::Column::Backend,
    audit_record::Column::Tool,
    audit_record::Column::Outcome,
    audit_record::Column::ErrorClass,
    audit_record::Column::DurationMs,
    audit_record::Column::At,
    audit_record::Column::Subject,
];
/// Rows per audit INSERT. A batch is cut into statements of these sizes
/// only, so that their few SQL texts are built once per store and each
/// stays prepared on its connection: the database parses no SQL per record.
const AUDIT_ROWS_PER_INSERT: [usize; 5] = [256, 64, 16, 4, 1];

impl Store {
    pub async fn insert_audit_records(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let backend = self.db.get_database_backend();
        // One commit for the whole batch, however many statements it takes.
        let transaction = self.db.begin().await?;
        let mut rest = records;
        let inserts = self.audit_inserts.get_or_init(|| {
            AUDIT_ROWS_PER_INSERT
                .iter()
                .map(|&rows| audit_insert_sql(backend, rows))
                .collect()
        });
        for (&rows, sql) in AUDIT_ROWS_PER_INSERT.iter().zip(inserts) {
            while rest.len() >= rows {
                let (these, after) = rest.split_at(rows);
                let values = these.iter().flat_map(audit_values).collect::<Vec<_>>();
                transaction
                    .execute_raw(Statement::from_sql_and_values(backend, sql.clone(), values))
                    .await?;
                rest = after;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The latest `limit` audit records of a session, newest first, older
    /// than record `before` when given (for paging).
    pub async fn audit_records(
        &self,
        session_id: Uuid,
        limit: u64,
        before: Option<i64>,
    ) -> Result<Vec<StoredAuditRecord>, StoreError> {
        let mut query = audit_record::Entity::find()
            .filter(audit_record::Column::SessionId.eq(session_id.to_string()));
        if let Some(before) = before {
            query = query.filter(audit_record::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(audit_record::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredAuditRecord {
                id: row.id,
                mcp_session_id: row.mcp_session_id,
                backend: row.backend,
                tool: row.tool,
                outcome: row.outcome,
                error_class: row.error_class,
                duration_ms: row.duration_ms,
                at: row.at,
                subject: row.subject,
            })
            .collect())
    }

    /// Deletes audit records older than `cutoff`; returns how many.
    pub async fn prune_audit_records(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = audit_record::Entity::delete_many()
            .filter(audit_record::Column::At.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

/// An INSERT of `rows` audit records, with placeholders for their values.
fn audit_insert_sql(backend: DbBackend, rows: usize) -> String {
    let mut insert = Query::insert();
    insert
        .into_table(audit_record::Entity)
        .columns(AUDIT_COLUMNS);
    for _ in 0..rows {
        insert.values_panic(AUDIT_COLUMNS.map(|_| Expr::val(0)));
    }
    backend.build(&insert).sql
}

/// A record's values, in the order of `AUDIT_COLUMNS`.
fn audit_values(record: &AuditRecord) -> [sea_orm::Value; 9] {
    [
        record.session_id.to_string().into(),
        record.mcp_session_id.clone().into(),
        record.backend.clone().into(),
        record.tool.clone().into(),
        record.outcome.into(),
        record.error_class.into(),
        record.duration_ms.into(),
        record.at.into(),
        record.subject.as_deref().map(str::to_owned).into(),
    ]
}
