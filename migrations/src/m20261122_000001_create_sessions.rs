//! Sessions and the record that proves which encryption key sealed them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(string_len(Sessions::Id, 36).primary_key())
                    // JSON array of backend names, in the order the client chose them.
                    .col(text(Sessions::Servers))
                    // base64(nonce || AES-256-GCM ciphertext) of the credentials.
                    .col(text(Sessions::Credentials))
                    .col(string_len(Sessions::Status, 16))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(KeyCheck::Table)
                    .if_not_exists()
                    .col(integer(KeyCheck::Id).primary_key())
                    // A known plaintext sealed with the key the store was created with,
                    // so that starting with another key fails at once.
                    .col(text(KeyCheck::Sealed))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KeyCheck::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    Servers,
    Credentials,
    Status,
    CreatedAt,
}

#[derive(DeriveIden)]
enum KeyCheck {
    Table,
    Id,
    Sealed,
}
