//! What a session's clients chose after a search (see
//! `mux::search::learning`): the query's terms and the tool called next,
//! kept per session, newest `limit` only.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entity::search_choice;
use super::{Store, StoreError};

/// One remembered choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchChoice {
    /// The query's terms, space-separated.
    pub words: String,
    pub tool: String,
    /// How often this tool was chosen after these words.
    pub uses: u32,
}

impl Store {
    /// Notes that `session`'s client chose `choice.tool` after searching
    /// `choice.words` (its uses as counted in memory), and forgets the
    /// session's choices past the newest `limit`.
    pub async fn record_search_choice(
        &self,
        session: Uuid,
        choice: &SearchChoice,
        limit: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let session = session.to_string();
        let uses = i32::try_from(choice.uses).unwrap_or(i32::MAX);
        let existing = search_choice::Entity::find()
            .filter(search_choice::Column::SessionId.eq(session.as_str()))
            .filter(search_choice::Column::Words.eq(choice.words.as_str()))
            .filter(search_choice::Column::Tool.eq(choice.tool.as_str()))
            .one(&self.db)
            .await?;
        match existing {
            Some(row) => {
                search_choice::Entity::update_many()
                    .col_expr(search_choice::Column::Uses, uses.into())
                    .col_expr(search_choice::Column::ChosenAt, now.into())
                    .filter(search_choice::Column::Id.eq(row.id))
                    .exec(&self.db)
                    .await?;
            }
            None => {
                let row = search_choice::ActiveModel {
                    session_id: Set(session.clone()),
                    words: Set(choice.words.clone()),
                    tool: Set(choice.tool.clone()),
                    uses: Set(uses),
                    chosen_at: Set(now),
                    ..Default::default()
                };
                search_choice::Entity::insert(row)
                    .exec_without_returning(&self.db)
                    .await?;
            }
        }
        let older: Vec<i32> = search_choice::Entity::find()
            .select_only()
            .column(search_choice::Column::Id)
            .filter(search_choice::Column::SessionId.eq(session.as_str()))
            .order_by_desc(search_choice::Column::ChosenAt)
            .order_by_desc(search_choice::Column::Id)
            .offset(limit)
            // SQLite takes an OFFSET only after a LIMIT.
            .limit(i64::MAX as u64)
            .into_tuple()
            .all(&self.db)
            .await?;
        if !older.is_empty() {
            search_choice::Entity::delete_many()
                .filter(search_choice::Column::Id.is_in(older))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// `session`'s remembered choices, oldest first.
    pub async fn search_choices(&self, session: Uuid) -> Result<Vec<SearchChoice>, StoreError> {
        let rows = search_choice::Entity::find()
            .filter(search_choice::Column::SessionId.eq(session.to_string()))
            .order_by_asc(search_choice::Column::ChosenAt)
            .order_by_asc(search_choice::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| SearchChoice {
                words: row.words,
                tool: row.tool,
                uses: u32::try_from(row.uses).unwrap_or(0),
            })
            .collect())
    }
}
