//! Schema migrations for mcp-mux's store, applied at start-up; the same
//! migrations run on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_sessions;
mod m20261122_000002_add_session_prefix;
mod m20261122_000003_mcp_sessions_and_expiry;
mod m20261122_000004_add_session_token;
mod m20261122_000005_add_key_ids;
mod m20261122_000006_create_audit_records;
mod m20261130_000007_bound_audit_tool_names;
mod m20261201_000008_add_session_rate_limit;
mod m20261201_000009_add_session_curation;
mod m20261205_000010_create_oauth_tables;
mod m20261205_000011_add_oauth_links;
mod m20261206_000012_session_owners;
mod m20261206_000013_create_nodes;
mod m20261207_000014_session_names;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_sessions::Migration),
            Box::new(m20261122_000002_add_session_prefix::Migration),
            Box::new(m20261122_000003_mcp_sessions_and_expiry::Migration),
            Box::new(m20261122_000004_add_session_token::Migration),
            Box::new(m20261122_000005_add_key_ids::Migration),
            Box::new(m20261122_000006_create_audit_records::Migration),
            Box::new(m20261130_000007_bound_audit_tool_names::Migration),
            Box::new(m20261201_000008_add_session_rate_limit::Migration),
            Box::new(m20261201_000009_add_session_curation::Migration),
            Box::new(m20261205_000010_create_oauth_tables::Migration),
            Box::new(m20261205_000011_add_oauth_links::Migration),
            Box::new(m20261206_000012_session_owners::Migration),
            Box::new(m20261206_000013_create_nodes::Migration),
            Box::new(m20261207_000014_session_names::Migration),
        ]
    }
}
