//! The audit trail: one row per `tools/call`, never its arguments or result.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditRecords::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditRecords::Id))
                    .col(string_len(AuditRecords::SessionId, 36))
                    .col(string_len(AuditRecords::McpSessionId, 64))
                    // NULL when the tool name led to no backend.
                    .col(string_len_null(AuditRecords::Backend, 64))
                    .col(text(AuditRecords::Tool))
                    // ok | tool_error | error
                    .col(string_len(AuditRecords::Outcome, 16))
                    .col(string_len_null(AuditRecords::ErrorClass, 32))
                    .col(big_integer(AuditRecords::DurationMs))
                    .col(timestamp_with_time_zone(AuditRecords::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_records_session_id")
                    .table(AuditRecords::Table)
                    .col(AuditRecords::SessionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_records_at")
                    .table(AuditRecords::Table)
                    .col(AuditRecords::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditRecords::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditRecords {
    Table,
    Id,
    SessionId,
    McpSessionId,
    Backend,
    Tool,
    Outcome,
    ErrorClass,
    DurationMs,
    At,
}
