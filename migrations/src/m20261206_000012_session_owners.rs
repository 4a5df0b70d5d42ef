//! Sessions that belong to a signed-in user (the issuer and subject of the
//! token that made them), the user of each audited call, and backend
//! grants held by a user rather than by one session: the grants' key
//! becomes a holder, a session id or a user's.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column at a time.
        for column in [Sessions::OwnerIssuer, Sessions::OwnerSubject] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .add_column(ColumnDef::new(column).text().null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(AuditRecords::Table)
                    .add_column(ColumnDef::new(AuditRecords::Subject).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthGrants::Table)
                    .rename_column(OauthGrants::SessionId, OauthGrants::Holder)
                    .to_owned(),
            )
            .await?;
        // A user's holder key is longer than a session id. SQLite does not
        // hold text to a length; PostgreSQL does.
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .alter_table(
                    Table::alter()
                        .table(OauthGrants::Table)
                        .modify_column(
                            ColumnDef::new(OauthGrants::Holder)
                                .string_len(80)
                                .not_null(),
                        )
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_owner")
                    .table(Sessions::Table)
                    .col(Sessions::OwnerIssuer)
                    .col(Sessions::OwnerSubject)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_sessions_owner")
                    .table(Sessions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthGrants::Table)
                    .rename_column(OauthGrants::Holder, OauthGrants::SessionId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditRecords::Table)
                    .drop_column(AuditRecords::Subject)
                    .to_owned(),
            )
            .await?;
        for column in [Sessions::OwnerSubject, Sessions::OwnerIssuer] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    OwnerIssuer,
    OwnerSubject,
}

#[derive(DeriveIden)]
enum AuditRecords {
    Table,
    Subject,
}

#[derive(DeriveIden)]
enum OauthGrants {
    Table,
    SessionId,
    Holder,
}
