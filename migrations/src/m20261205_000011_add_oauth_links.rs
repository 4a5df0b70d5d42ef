//! An authorization request and the grant it yields remember the redirect
//! URI they were made with (the token endpoint wants it again, and the
//! client registered for it refreshes the grant); one-time authorization
//! links let a session's holder send its user to authorize a backend.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(OauthStates::Table)
                    .add_column(text(OauthStates::RedirectUri).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthGrants::Table)
                    .add_column(text(OauthGrants::RedirectUri).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthLinks::Table)
                    .if_not_exists()
                    // Hex SHA-256 of the link's key: the key itself is not kept.
                    .col(string_len(OauthLinks::KeyDigest, 64).primary_key())
                    .col(string_len(OauthLinks::SessionId, 36))
                    .col(string_len(OauthLinks::Server, 64))
                    .col(timestamp_with_time_zone(OauthLinks::ExpiresAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OauthLinks::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthGrants::Table)
                    .drop_column(OauthGrants::RedirectUri)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthStates::Table)
                    .drop_column(OauthStates::RedirectUri)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    RedirectUri,
}

#[derive(DeriveIden)]
enum OauthGrants {
    Table,
    RedirectUri,
}

#[derive(DeriveIden)]
enum OauthLinks {
    Table,
    KeyDigest,
    SessionId,
    Server,
    ExpiresAt,
}
