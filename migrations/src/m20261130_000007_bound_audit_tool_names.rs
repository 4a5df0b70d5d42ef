//! Audit records keep at most 128 characters of a tool name (a client may
//! call any name, of any length). Records written before that are cut here,
//! so that no audit answer carries an unbounded name.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The same SQL on SQLite and PostgreSQL: both count characters.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE audit_records SET tool = substr(tool, 1, 120) || '…' \
                 WHERE length(tool) > 128",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // What was cut is gone; the schema is unchanged.
        Ok(())
    }
}
