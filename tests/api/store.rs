//! The store's queries on SQLite, and on PostgreSQL when `TEST_DATABASE_URL`
//! names a server (each test gets a database of its own).

use chrono::Utc;
use sea_orm::{ConnectionTrait, Database};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use mcp_mux::credentials::Credentials;
use mcp_mux::store::crypto::{EncryptionKey, KeySource};
use mcp_mux::store::{
    McpSessionRecord, PrefixMode, STATUS_ACTIVE, SessionRecord, Store, StoreError,
};

use crate::helpers::TEST_KEY;

fn key(encoded: &str) -> EncryptionKey {
    EncryptionKey::from_base64(encoded, KeySource::Environment).expect("valid key")
}

/// A database for one test: a SQLite file, or a PostgreSQL database of its own.
struct TestDatabase {
    url: String,
    _dir: Option<tempfile::TempDir>,
    /// (server URL, database name) to drop afterwards.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    async fn drop_database(self) {
        if let Some((server, name)) = self.postgres {
            let admin = Database::connect(server.as_str())
                .await
                .expect("TEST_DATABASE_URL answers");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .expect("database dropped");
        }
    }
}

/// The databases to run each store test on: SQLite always, PostgreSQL when
/// `TEST_DATABASE_URL` is set.
async fn databases() -> Vec<TestDatabase> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut databases = vec![TestDatabase {
        url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("store.db").display()
        ),
        _dir: Some(dir),
        postgres: None,
    }];
    if let Ok(server) = std::env::var("TEST_DATABASE_URL") {
        let admin = Database::connect(server.as_str())
            .await
            .expect("TEST_DATABASE_URL answers");
        let name = format!("mcp_mux_test_{}", Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("database created");
        let mut url = url::Url::parse(&server).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        databases.push(TestDatabase {
            url: url.to_string(),
            _dir: None,
            postgres: Some((server, name)),
        });
    }
    databases
}

fn record(token: &str) -> SessionRecord {
    let mut credentials = Credentials::default();
    credentials.insert("hf".into(), SecretString::from(token.to_owned()));
    SessionRecord {
        id: Uuid::new_v4(),
        servers: vec!["everything".into(), "hf".into()],
        credentials,
        status: STATUS_ACTIVE.into(),
        created_at: Utc::now(),
        prefix: PrefixMode::WhenNeeded,
        expires_at: None,
        token_digest: Some([7; 32]),
    }
}

#[tokio::test]
async fn sessions_round_trip_with_their_credentials() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let stored = record("hf_round_trip");
        store.insert_session(&stored).await.expect("inserted");

        let found = store
            .find_session(stored.id)
            .await
            .expect("query")
            .expect("found");
        assert_eq!(found.servers, stored.servers, "{url}");
        assert_eq!(found.status, STATUS_ACTIVE);
        assert_eq!(found.prefix, PrefixMode::WhenNeeded);
        assert_eq!(
            found.created_at.timestamp_millis(),
            stored.created_at.timestamp_millis()
        );
        let token = found
            .credentials
            .get("hf")
            .expect("credential")
            .expose_secret()
            .to_owned();
        assert_eq!(token, "hf_round_trip");

        assert!(
            store
                .find_session(Uuid::new_v4())
                .await
                .expect("query")
                .is_none()
        );
        assert!(store.delete_session(stored.id).await.expect("deleted"));
        assert!(!store.delete_session(stored.id).await.expect("query"));
        assert!(
            store
                .find_session(stored.id)
                .await
                .expect("query")
                .is_none()
        );
        drop(store);
        database.drop_database().await;
    }
}

#[tokio::test]
async fn reopening_with_another_key_is_refused() {
    const OTHER_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        store.insert_session(&record("t")).await.expect("inserted");
        drop(store);
        let error = Store::connect(&url, key(OTHER_KEY))
            .await
            .expect_err("refused");
        assert!(
            matches!(error, StoreError::WrongKey { .. }),
            "{url}: {error}"
        );
        drop(
            Store::connect(&url, key(TEST_KEY))
                .await
                .expect("the right key still opens it"),
        );
        database.drop_database().await;
    }
}

#[tokio::test]
async fn mcp_sessions_are_stored_touched_pruned_and_go_with_their_session() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let mut session = record("t");
        session.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
        store.insert_session(&session).await.expect("inserted");
        let long_ago = Utc::now() - chrono::Duration::hours(2);
        let mcp = |id: &str| McpSessionRecord {
            id: id.to_owned(),
            session_id: session.id,
            protocol_version: "2025-06-18".into(),
            client_capabilities: serde_json::json!({ "sampling": {} }),
            created_at: long_ago,
            last_seen_at: long_ago,
        };
        for id in ["used", "abandoned", "kept"] {
            store.insert_mcp_session(&mcp(id)).await.expect("inserted");
        }
        let found = store
            .find_mcp_session(session.id, "used")
            .await
            .expect("query")
            .expect("found");
        assert_eq!(found.protocol_version, "2025-06-18", "{url}");
        assert_eq!(
            found.client_capabilities,
            serde_json::json!({ "sampling": {} })
        );
        assert!(
            store
                .find_mcp_session(Uuid::new_v4(), "used")
                .await
                .expect("query")
                .is_none(),
            "another session's id finds nothing"
        );

        store
            .touch_mcp_sessions(&["used".into(), "kept".into()], Utc::now())
            .await
            .expect("touched");
        let cutoff = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(store.prune_mcp_sessions(cutoff).await.expect("pruned"), 1);
        assert!(
            store
                .find_mcp_session(session.id, "abandoned")
                .await
                .expect("query")
                .is_none()
        );
        assert!(store.delete_mcp_session("kept").await.expect("deleted"));
        assert!(!store.delete_mcp_session("kept").await.expect("query"));

        assert_eq!(
            store.expired_sessions(Utc::now()).await.expect("query"),
            vec![session.id]
        );
        assert!(store.delete_session(session.id).await.expect("deleted"));
        assert!(
            store
                .find_mcp_session(session.id, "used")
                .await
                .expect("query")
                .is_none(),
            "deleting a session forgets its MCP sessions"
        );
        drop(store);
        database.drop_database().await;
    }
}
