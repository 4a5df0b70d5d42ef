//! Each sealed value names the key that sealed it, so that several keys can be
//! configured at once while the key is rotated.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Hex id of the key (not the key). NULL in rows written before this
        // migration: the store fills them in at its next start, with the id of
        // the key that opens key_check, the only key that could have sealed them.
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(string_len_null(Sessions::KeyId, 16))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(KeyCheck::Table)
                    .add_column(string_len_null(KeyCheck::KeyId, 16))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(KeyCheck::Table)
                    .drop_column(KeyCheck::KeyId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::KeyId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    KeyId,
}

#[derive(DeriveIden)]
enum KeyCheck {
    Table,
    KeyId,
}
