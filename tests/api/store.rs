//! The store's queries on SQLite, and on PostgreSQL when `TEST_DATABASE_URL`
//! names a server (each test gets a database of its own).

use chrono::{Timelike, Utc};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, Statement};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use mcp_mux::credentials::Credentials;
use mcp_mux::mux::{Curation, ItemRules, ToolMode};
use mcp_mux::store::crypto::{EncryptionKey, KeySource, Keyring};
use mcp_mux::store::{AuditRecord, McpSessionRecord, PrefixMode, Rotation, SessionRecord, Store};

use crate::helpers::{TEST_KEY, contains, database_bytes};

/// A second key, and the ids of both (see `EncryptionKey::id`).
pub(crate) const OTHER_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const TEST_KEY_ID: &str = "3a537210cd9ae4ec";
const OTHER_KEY_ID: &str = "cc68210862f76214";

pub(crate) fn key(encoded: &str) -> EncryptionKey {
    EncryptionKey::from_base64(encoded, KeySource::Environment).expect("valid key")
}

/// `current` as MCP_MUX_ENCRYPTION_KEY, `previous` as MCP_MUX_PREVIOUS_KEYS.
pub(crate) fn keys(current: &str, previous: &[&str]) -> Keyring {
    let previous = previous
        .iter()
        .enumerate()
        .map(|(index, encoded)| {
            EncryptionKey::from_base64(
                encoded,
                KeySource::Previous {
                    position: index + 1,
                },
            )
            .expect("valid key")
        })
        .collect();
    Keyring::new(key(current), previous)
}

/// Runs SQL behind the store's back.
async fn execute(url: &str, sql: &str) {
    let db = Database::connect(url).await.expect("database opens");
    db.execute_unprepared(sql).await.expect("statement runs");
}

/// (session id, key id) of every stored session, by session id.
async fn stored_key_ids(url: &str) -> Vec<(String, Option<String>)> {
    let db = Database::connect(url).await.expect("database opens");
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT id, key_id FROM sessions ORDER BY id",
    ))
    .await
    .expect("query")
    .iter()
    .map(|row| {
        (
            row.try_get("", "id").expect("id"),
            row.try_get("", "key_id").expect("key_id"),
        )
    })
    .collect()
}

async fn key_check_key_id(url: &str) -> Option<String> {
    let db = Database::connect(url).await.expect("database opens");
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT key_id FROM key_check",
    ))
    .await
    .expect("query")
    .expect("a key check row")
    .try_get("", "key_id")
    .expect("key_id")
}

async fn token_of(store: &Store, id: Uuid) -> String {
    store
        .find_session(id)
        .await
        .expect("opens")
        .expect("found")
        .credentials
        .get("hf")
        .expect("credential")
        .expose_secret()
        .to_owned()
}

/// A database for one test: a SQLite file, or a PostgreSQL database of its own.
pub(crate) struct TestDatabase {
    pub(crate) url: String,
    dir: Option<tempfile::TempDir>,
    /// (server URL, database name) to drop afterwards.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// The SQLite database's file; `None` on PostgreSQL.
    pub(crate) fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.dir.as_ref().map(|dir| dir.path().join("store.db"))
    }

    pub(crate) async fn drop_database(self) {
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
pub(crate) async fn databases() -> Vec<TestDatabase> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut databases = vec![TestDatabase {
        url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("store.db").display()
        ),
        dir: Some(dir),
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
            dir: None,
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
        created_at: Utc::now(),
        prefix: PrefixMode::WhenNeeded,
        expires_at: None,
        token_digest: Some([7; 32]),
        rate_limit: None,
        curation: Default::default(),
        owner: None,
        name: None,
        labels: Default::default(),
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
        assert_eq!(
            error.to_string(),
            "the database was written with key id 3a537210cd9ae4ec, but the encryption key from \
             MCP_MUX_ENCRYPTION_KEY has id cc68210862f76214 and MCP_MUX_PREVIOUS_KEYS holds no key \
             with that id",
            "{url}"
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
            node: None,
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
        assert!(
            !store
                .delete_mcp_session(Uuid::new_v4(), "kept")
                .await
                .expect("query"),
            "another session cannot delete it"
        );
        assert!(
            store
                .delete_mcp_session(session.id, "kept")
                .await
                .expect("deleted")
        );
        assert!(
            !store
                .delete_mcp_session(session.id, "kept")
                .await
                .expect("query")
        );

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

#[tokio::test]
async fn a_previous_key_opens_what_it_sealed_while_the_current_key_seals() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let old = record("hf_sealed_under_the_old_key");
        store.insert_session(&old).await.expect("inserted");
        drop(store);

        let store = Store::connect(&url, keys(OTHER_KEY, &[TEST_KEY]))
            .await
            .expect("the previous key passes the key check");
        assert_eq!(
            token_of(&store, old.id).await,
            "hf_sealed_under_the_old_key",
            "{url}"
        );
        let new = record("hf_sealed_under_the_new_key");
        store.insert_session(&new).await.expect("inserted");
        assert_eq!(
            token_of(&store, new.id).await,
            "hf_sealed_under_the_new_key"
        );
        let mut expected = vec![
            (old.id.to_string(), Some(TEST_KEY_ID.to_owned())),
            (new.id.to_string(), Some(OTHER_KEY_ID.to_owned())),
        ];
        expected.sort();
        assert_eq!(stored_key_ids(&url).await, expected);
        drop(store);

        // Until rotate-key, the key check names the old key: it alone passes,
        // but a session sealed with the new key does not open.
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let error = store
            .find_session(new.id)
            .await
            .expect_err("not configured");
        assert_eq!(
            error.to_string(),
            format!(
                "stored session {} was sealed with key id cc68210862f76214, which is neither \
                 the current key nor in MCP_MUX_PREVIOUS_KEYS",
                new.id
            )
        );
        drop(store);
        database.drop_database().await;
    }
}

#[tokio::test]
async fn a_database_from_before_key_ids_names_the_key_of_its_rows_at_first_start() {
    for database in databases().await {
        let url = database.url.clone();
        let db = Database::connect(url.as_str())
            .await
            .expect("database opens");
        Migrator::up(&db, Some(4))
            .await
            .expect("the migrations before key ids");
        let old_key = key(TEST_KEY);
        let plaintext = |token: &str| {
            let mut credentials = Credentials::default();
            credentials.insert("hf".into(), SecretString::from(token.to_owned()));
            credentials.to_plaintext()
        };
        let insert_old_row = |id: Uuid, sealed: String| {
            format!(
                "INSERT INTO sessions (id, servers, credentials, status, created_at, prefix) \
                 VALUES ('{id}', '[\"hf\"]', '{sealed}', 'active', '2026-11-01T00:00:00+00:00', 'always')"
            )
        };
        let old = Uuid::new_v4();
        execute(
            &url,
            &insert_old_row(
                old,
                old_key.seal(&plaintext("hf_old"), old.to_string().as_bytes()),
            ),
        )
        .await;
        execute(
            &url,
            &format!(
                "INSERT INTO key_check (id, sealed) VALUES (1, '{}')",
                old_key.seal(b"mcp-mux key check v1", b"1")
            ),
        )
        .await;

        let error = Store::connect(&url, key(OTHER_KEY))
            .await
            .expect_err("the old key is not configured");
        assert_eq!(
            error.to_string(),
            "the encryption key from MCP_MUX_ENCRYPTION_KEY is not the key this database was \
             written with; start with the original key",
            "{url}"
        );
        assert_eq!(key_check_key_id(&url).await, None, "nothing was written");

        // The first start may already rotate: the rows get the id of the key
        // that opens the key check, not of the current key.
        let store = Store::connect(&url, keys(OTHER_KEY, &[TEST_KEY]))
            .await
            .expect("the previous key opens the key check");
        assert_eq!(
            stored_key_ids(&url).await,
            vec![(old.to_string(), Some(TEST_KEY_ID.to_owned()))]
        );
        assert_eq!(key_check_key_id(&url).await, Some(TEST_KEY_ID.to_owned()));
        assert_eq!(token_of(&store, old).await, "hf_old");

        // An older gateway on the same database still writes rows without a
        // key id: whichever configured key opens them is used.
        let later = Uuid::new_v4();
        execute(
            &url,
            &insert_old_row(
                later,
                old_key.seal(&plaintext("hf_later"), later.to_string().as_bytes()),
            ),
        )
        .await;
        assert_eq!(token_of(&store, later).await, "hf_later");
        let broken = Uuid::new_v4();
        execute(&url, &insert_old_row(broken, "AAAA".into())).await;
        let error = store
            .find_session(broken)
            .await
            .expect_err("opens with no key");
        assert_eq!(
            error.to_string(),
            format!(
                "stored session {broken} is unreadable: credentials do not open with any \
                 configured key"
            )
        );
        drop(store);
        drop(db);
        database.drop_database().await;
    }
}

#[tokio::test]
async fn altered_sealed_values_are_clear_errors() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let stored = record("t");
        store.insert_session(&stored).await.expect("inserted");
        execute(
            &url,
            &format!(
                "UPDATE sessions SET credentials = 'AAAA' WHERE id = '{}'",
                stored.id
            ),
        )
        .await;
        let error = store.find_session(stored.id).await.expect_err("altered");
        assert_eq!(
            error.to_string(),
            format!(
                "stored session {} is unreadable: credentials do not open with the key that \
                 sealed them",
                stored.id
            ),
            "{url}"
        );
        drop(store);

        execute(&url, "UPDATE key_check SET sealed = 'AAAA'").await;
        let error = Store::connect(&url, key(TEST_KEY))
            .await
            .expect_err("altered");
        assert_eq!(
            error.to_string(),
            "the key check record does not open with key id 3a537210cd9ae4ec: the database was \
             altered"
        );
        database.drop_database().await;
    }
}

#[tokio::test]
async fn a_session_rate_limit_round_trips_and_a_tampered_one_is_a_clear_error() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let stored = SessionRecord {
            rate_limit: Some(25),
            ..record("t")
        };
        store.insert_session(&stored).await.expect("inserted");
        let found = store
            .find_session(stored.id)
            .await
            .expect("query")
            .expect("stored");
        assert_eq!(found.rate_limit, Some(25), "{url}");

        for tampered in ["0", "-5", "4294967296"] {
            execute(
                &url,
                &format!(
                    "UPDATE sessions SET rate_limit = {tampered} WHERE id = '{}'",
                    stored.id
                ),
            )
            .await;
            let error = store.find_session(stored.id).await.expect_err("tampered");
            assert_eq!(
                error.to_string(),
                format!(
                    "stored session {} is unreadable: rate_limit is not a positive 32-bit number",
                    stored.id
                ),
                "{url} {tampered}"
            );
        }
        database.drop_database().await;
    }
}

#[tokio::test]
async fn a_session_curation_round_trips_and_a_tampered_one_is_a_clear_error() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let curation = Curation {
            tools: std::collections::BTreeMap::from([(
                "py".to_owned(),
                ItemRules {
                    deny: vec!["whoami".into()],
                    rename: std::collections::BTreeMap::from([("add".into(), "plus".into())]),
                    ..ItemRules::default()
                },
            )]),
            tool_mode: ToolMode::Search,
            ..Curation::default()
        };
        let stored = SessionRecord {
            curation: curation.clone(),
            ..record("t")
        };
        store.insert_session(&stored).await.expect("inserted");
        let found = store
            .find_session(stored.id)
            .await
            .expect("query")
            .expect("stored");
        assert_eq!(found.curation, curation, "{url}");

        execute(
            &url,
            &format!(
                "UPDATE sessions SET curation = '{{\"tools\": []}}' WHERE id = '{}'",
                stored.id
            ),
        )
        .await;
        let error = store.find_session(stored.id).await.expect_err("tampered");
        assert_eq!(
            error.to_string(),
            format!(
                "stored session {} is unreadable: curation is not the stored rules' JSON",
                stored.id
            ),
            "{url}"
        );
        database.drop_database().await;
    }
}

#[tokio::test]
async fn audit_batches_of_any_size_are_written_whole_and_field_for_field() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let session_id = Uuid::new_v4();
        let at = Utc::now().with_nanosecond(0).expect("a whole second");
        // Sizes that take statements of each size the store cuts into, and
        // an empty batch.
        let mut written = 0;
        for size in [0, 1, 3, 5, 21, 85, 341, 600] {
            let batch: Vec<AuditRecord> = (written..written + size)
                .map(|n| AuditRecord {
                    session_id,
                    mcp_session_id: format!("mcp-{n}"),
                    backend: (n % 2 == 0).then(|| format!("server-{n}")),
                    tool: format!("tool-{n}"),
                    outcome: if n % 3 == 0 { "error" } else { "ok" },
                    error_class: (n % 3 == 0).then_some("timeout"),
                    duration_ms: n as i64,
                    at,
                    subject: (n % 5 == 0).then(|| std::sync::Arc::from("alice")),
                })
                .collect();
            store.insert_audit_records(&batch).await.expect("written");
            written += size;
        }
        let stored = store
            .audit_records(session_id, 10_000, None)
            .await
            .expect("read back");
        assert_eq!(stored.len(), written, "{url}");
        // Newest first: record n is at position written - 1 - n.
        for (position, record) in stored.iter().enumerate() {
            let n = written - 1 - position;
            assert_eq!(
                (
                    record.mcp_session_id.as_str(),
                    record.backend.as_deref(),
                    record.tool.as_str(),
                    record.outcome.as_str(),
                    record.error_class.as_deref(),
                    record.duration_ms,
                    record.at,
                ),
                (
                    format!("mcp-{n}").as_str(),
                    (n % 2 == 0).then(|| format!("server-{n}")).as_deref(),
                    format!("tool-{n}").as_str(),
                    if n % 3 == 0 { "error" } else { "ok" },
                    (n % 3 == 0).then_some("timeout"),
                    n as i64,
                    at,
                ),
                "{url} record {n}"
            );
        }
        database.drop_database().await;
    }
}

/// Asserts that no `tokens` are in the database: in the SQLite files' bytes,
/// or in the sealed columns on PostgreSQL.
async fn assert_sealed(database: &TestDatabase, tokens: &[String], some_session: Uuid) {
    let db = Database::connect(database.url.as_str())
        .await
        .expect("database opens");
    let sealed: Vec<String> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT credentials AS sealed FROM sessions UNION ALL SELECT sealed FROM key_check",
        ))
        .await
        .expect("query")
        .iter()
        .map(|row| row.try_get("", "sealed").expect("sealed"))
        .collect();
    let bytes = database
        .sqlite_file()
        .map(|file| database_bytes(&file))
        .unwrap_or_default();
    if database.sqlite_file().is_some() {
        assert!(
            contains(&bytes, &some_session.to_string()),
            "the session rows are in the bytes searched"
        );
    }
    for token in tokens {
        assert!(!sealed.iter().any(|value| value.contains(token.as_str())));
        assert!(!contains(&bytes, token), "{token} is in the database file");
    }
}

#[tokio::test]
async fn rotating_re_seals_every_session_with_the_current_key() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let tokens: Vec<String> = (0..5)
            .map(|n| format!("hf_plaintext_{n}_never_stored"))
            .collect();
        let mut sessions = Vec::new();
        for token in &tokens[..4] {
            let stored = record(token);
            store.insert_session(&stored).await.expect("inserted");
            sessions.push(stored.id);
        }
        drop(store);

        let store = Store::connect(&url, keys(OTHER_KEY, &[TEST_KEY]))
            .await
            .expect("store opens");
        let new = record(&tokens[4]);
        store.insert_session(&new).await.expect("inserted");
        sessions.push(new.id);
        // Batches of 3: the four old sessions take two.
        assert_eq!(
            store.rotate_key(3).await.expect("rotated"),
            Rotation {
                key_id: OTHER_KEY_ID.to_owned(),
                resealed: 4,
                already_current: 1,
                oauth_resealed: 0,
            },
            "{url}"
        );
        assert!(
            stored_key_ids(&url)
                .await
                .iter()
                .all(|(_, key_id)| key_id.as_deref() == Some(OTHER_KEY_ID))
        );
        assert_eq!(key_check_key_id(&url).await, Some(OTHER_KEY_ID.to_owned()));
        let again = store.rotate_key(3).await.expect("rotated");
        assert_eq!((again.resealed, again.already_current), (0, 5));
        assert_eq!(
            again.to_string(),
            "re-sealed 0 sessions with key id cc68210862f76214; 5 already current"
        );
        drop(store);

        let store = Store::connect(&url, key(OTHER_KEY))
            .await
            .expect("the new key alone passes the key check");
        for (id, token) in sessions.iter().zip(&tokens) {
            assert_eq!(&token_of(&store, *id).await, token);
        }
        drop(store);
        assert_sealed(&database, &tokens, sessions[0]).await;
        let error = Store::connect(&url, key(TEST_KEY))
            .await
            .expect_err("the old key is no longer enough");
        assert_eq!(
            error.to_string(),
            "the database was written with key id cc68210862f76214, but the encryption key from \
             MCP_MUX_ENCRYPTION_KEY has id 3a537210cd9ae4ec and MCP_MUX_PREVIOUS_KEYS holds no key \
             with that id"
        );
        database.drop_database().await;
    }
}

#[tokio::test]
async fn rotation_stops_at_a_session_whose_key_is_not_configured() {
    for database in databases().await {
        let url = database.url.clone();
        drop(
            Store::connect(&url, key(TEST_KEY))
                .await
                .expect("store opens"),
        );
        let store = Store::connect(&url, keys(OTHER_KEY, &[TEST_KEY]))
            .await
            .expect("store opens");
        let stored = record("t");
        store.insert_session(&stored).await.expect("inserted");
        drop(store);

        // The key check still names the first key, so it alone starts.
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let error = store.rotate_key(10).await.expect_err("a key is missing");
        assert_eq!(
            error.to_string(),
            format!(
                "stored session {} was sealed with key id cc68210862f76214, which is neither \
                 the current key nor in MCP_MUX_PREVIOUS_KEYS",
                stored.id
            ),
            "{url}"
        );
        assert_eq!(
            stored_key_ids(&url).await,
            vec![(stored.id.to_string(), Some(OTHER_KEY_ID.to_owned()))],
            "nothing changed"
        );
        assert_eq!(key_check_key_id(&url).await, Some(TEST_KEY_ID.to_owned()));
        drop(store);
        database.drop_database().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_reads_sessions_while_they_are_re_sealed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let mut sessions = Vec::new();
        for n in 0..30 {
            let stored = record(&format!("hf_{n}"));
            store.insert_session(&stored).await.expect("inserted");
            sessions.push((stored.id, format!("hf_{n}")));
        }
        drop(store);

        // A gateway and the command, both with the new key current and the old
        // one previous, as during a rotation.
        let gateway = Store::connect(&url, keys(OTHER_KEY, &[TEST_KEY]))
            .await
            .expect("store opens");
        let command = Store::connect(&url, keys(OTHER_KEY, &[TEST_KEY]))
            .await
            .expect("store opens");
        let done = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn({
            let done = done.clone();
            let sessions = sessions.clone();
            async move {
                let mut rounds = 0;
                // One more full round after the rotation ended.
                loop {
                    let last = done.load(Ordering::SeqCst);
                    for (id, token) in &sessions {
                        assert_eq!(&token_of(&gateway, *id).await, token);
                    }
                    rounds += 1;
                    if last {
                        return rounds;
                    }
                }
            }
        });
        let rotation = command.rotate_key(4).await.expect("rotated");
        done.store(true, Ordering::SeqCst);
        assert!(reader.await.expect("every read succeeded") >= 1);
        assert_eq!(
            (rotation.resealed, rotation.already_current),
            (30, 0),
            "{url}"
        );
        drop(command);
        database.drop_database().await;
    }
}

#[tokio::test]
async fn nodes_starting_at_once_on_a_new_database_all_start() {
    for database in databases().await {
        let starting = (0..4).map(|_| Store::connect(&database.url, key(TEST_KEY)));
        for started in futures_util::future::join_all(starting).await {
            let store = started.expect("every node migrates or finds the migrations applied");
            assert_eq!(store.count_sessions().await.expect("store answers"), 0);
        }
    }
}

#[tokio::test]
async fn sessions_are_listed_newest_first_and_filtered_by_name_labels_server_and_owner() {
    use mcp_mux::store::{Labels, Owner, SessionFilter};
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let started = Utc::now();
        let labelled = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect()
        };
        let alice = Owner {
            issuer: "https://auth.example.com".into(),
            subject: "alice".into(),
        };
        // Oldest first, a millisecond apart; two share a time, so that the
        // id breaks the tie.
        let mut stored = Vec::new();
        for (n, (name, labels, servers, owner)) in [
            (
                Some("Nightly_CI"),
                labelled(&[("team", "platform"), ("env", "ci")]),
                vec!["everything"],
                None,
            ),
            (
                Some("nightly%cd"),
                labelled(&[("team", "platform")]),
                vec!["hf"],
                Some(alice.clone()),
            ),
            (
                None,
                labelled(&[("team", "web"), ("env", "ci")]),
                vec!["everything", "hf_2"],
                None,
            ),
            (Some("adhoc"), Labels::new(), vec!["hf_2"], None),
            (Some("adhoc twin"), Labels::new(), vec!["everything"], None),
        ]
        .into_iter()
        .enumerate()
        {
            let at = started + chrono::Duration::milliseconds(n.min(3) as i64);
            let record = SessionRecord {
                name: name.map(str::to_owned),
                labels,
                servers: servers.into_iter().map(str::to_owned).collect(),
                owner,
                created_at: at,
                ..record("t")
            };
            store.insert_session(&record).await.expect("inserted");
            stored.push(record);
        }
        let found = store
            .find_session(stored[0].id)
            .await
            .expect("query")
            .expect("stored");
        assert_eq!(found.name.as_deref(), Some("Nightly_CI"), "{url}");
        assert_eq!(found.labels, stored[0].labels, "{url}");

        let ids = |filter: SessionFilter| {
            let store = &store;
            async move {
                store
                    .list_sessions(100, None, &filter)
                    .await
                    .expect("list")
                    .iter()
                    .map(|summary| summary.id)
                    .collect::<Vec<_>>()
            }
        };
        // Newest first; of the two made at one time, the greater id first.
        let mut tied = [stored[3].id, stored[4].id];
        tied.sort();
        let newest_first = vec![tied[1], tied[0], stored[2].id, stored[1].id, stored[0].id];
        assert_eq!(ids(SessionFilter::default()).await, newest_first, "{url}");

        // Pages of two, each after the cursor of the page before, see every
        // session once, in the same order.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_sessions(2, after, &SessionFilter::default())
                .await
                .expect("page");
            paged.extend(page.iter().map(|summary| summary.id));
            match page.last() {
                Some(last) if page.len() == 2 => {
                    after = Some(last.cursor().to_string().parse().expect("cursor"))
                }
                _ => break,
            }
        }
        assert_eq!(paged, newest_first, "{url}");

        // A name is found by any part of it, ASCII case ignored, with `%`
        // and `_` taken literally; labels and servers keep their case.
        let by_name = |name: &str| SessionFilter {
            name: Some(name.into()),
            ..SessionFilter::default()
        };
        assert_eq!(
            ids(by_name("nightly")).await,
            [stored[1].id, stored[0].id],
            "{url}"
        );
        assert_eq!(ids(by_name("Y_c")).await, [stored[0].id], "{url}");
        assert_eq!(ids(by_name("%")).await, [stored[1].id], "{url}");
        assert_eq!(ids(by_name("missing")).await, Vec::<Uuid>::new(), "{url}");

        // Every label given must hold, as key and value together.
        let by_labels = |pairs: &[(&str, &str)]| SessionFilter {
            labels: pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            ..SessionFilter::default()
        };
        assert_eq!(
            ids(by_labels(&[("team", "platform")])).await,
            [stored[1].id, stored[0].id],
            "{url}"
        );
        assert_eq!(
            ids(by_labels(&[("team", "platform"), ("env", "ci")])).await,
            [stored[0].id],
            "{url}"
        );
        assert_eq!(
            ids(by_labels(&[("env", "platform")])).await,
            Vec::<Uuid>::new(),
            "{url}"
        );
        assert_eq!(
            ids(by_labels(&[("team", "plat")])).await,
            Vec::<Uuid>::new(),
            "{url}"
        );
        assert_eq!(
            ids(by_labels(&[("team", "Platform")])).await,
            Vec::<Uuid>::new(),
            "{url}"
        );

        // A server by its whole name: `hf` is not `hf_2`.
        let by_server = |server: &str| SessionFilter {
            server: Some(server.into()),
            ..SessionFilter::default()
        };
        assert_eq!(ids(by_server("hf")).await, [stored[1].id], "{url}");
        assert_eq!(
            ids(by_server("hf_2")).await,
            [stored[3].id, stored[2].id],
            "{url}"
        );

        let by_owner = SessionFilter {
            owner_subject: Some("alice".into()),
            ..SessionFilter::default()
        };
        assert_eq!(ids(by_owner).await, [stored[1].id], "{url}");
        let of_user = SessionFilter {
            owner: Some(alice.clone()),
            name: Some("adhoc".into()),
            ..SessionFilter::default()
        };
        assert_eq!(ids(of_user).await, Vec::<Uuid>::new(), "{url}");
        database.drop_database().await;
    }
}
