//! The gateway nodes sharing a store, each with its heartbeat, the URL the
//! others reach it at and the secret they show it when they pass it a
//! request; and the node that holds each MCP session in memory, which the
//! others pass its requests to.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Nodes::Table)
                    .if_not_exists()
                    .col(string_len(Nodes::Id, 36).primary_key())
                    .col(timestamp_with_time_zone(Nodes::StartedAt))
                    .col(timestamp_with_time_zone(Nodes::HeartbeatAt))
                    .col(text_null(Nodes::Url))
                    .col(string_len(Nodes::Secret, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(McpSessions::Table)
                    .add_column(string_len_null(McpSessions::NodeId, 36))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(McpSessions::Table)
                    .drop_column(McpSessions::NodeId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Nodes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Id,
    StartedAt,
    HeartbeatAt,
    Url,
    Secret,
}

#[derive(DeriveIden)]
enum McpSessions {
    Table,
    NodeId,
}
