//! MCP sessions outlive a restart of the gateway, and a session may carry an
//! expiry time chosen at create-session.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(timestamp_with_time_zone_null(Sessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(McpSessions::Table)
                    .if_not_exists()
                    // The client's Mcp-Session-Id.
                    .col(string_len(McpSessions::Id, 64).primary_key())
                    .col(string_len(McpSessions::SessionId, 36))
                    // The revision negotiated at initialize.
                    .col(string_len(McpSessions::ProtocolVersion, 16))
                    // JSON: the client capabilities its backends are told of.
                    .col(text(McpSessions::ClientCapabilities))
                    .col(timestamp_with_time_zone(McpSessions::CreatedAt))
                    // Refreshed now and then while the MCP session is in use,
                    // so that records of abandoned ones can be pruned.
                    .col(timestamp_with_time_zone(McpSessions::LastSeenAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mcp_sessions_session_id")
                    .table(McpSessions::Table)
                    .col(McpSessions::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(McpSessions::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum McpSessions {
    Table,
    Id,
    SessionId,
    ProtocolVersion,
    ClientCapabilities,
    CreatedAt,
    LastSeenAt,
}
