//! What each session's clients chose after a search: the query's words and
//! the tool called next, with how often and when last, so that search mode
//! lifts that tool for like queries after a restart too.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SearchChoices::Table)
                    .if_not_exists()
                    .col(pk_auto(SearchChoices::Id))
                    .col(string_len(SearchChoices::SessionId, 36))
                    .col(text(SearchChoices::Words))
                    .col(string_len(SearchChoices::Tool, 256))
                    .col(integer(SearchChoices::Uses))
                    .col(timestamp_with_time_zone(SearchChoices::ChosenAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("search_choices_by_session")
                    .table(SearchChoices::Table)
                    .col(SearchChoices::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SearchChoices::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SearchChoices {
    Table,
    Id,
    SessionId,
    Words,
    Tool,
    Uses,
    ChosenAt,
}
