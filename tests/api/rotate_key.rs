//! `mcp-mux rotate-key`, run as the built binary: what it prints, its exit
//! status, and its errors.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

use secrecy::SecretString;
use uuid::Uuid;

use mcp_mux::credentials::Credentials;
use mcp_mux::store::crypto::{EncryptionKey, KeySource};
use mcp_mux::store::{PrefixMode, SessionRecord, Store};

use crate::helpers::TEST_KEY;

const NEW_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Runs `mcp-mux rotate-key --data-dir <data_dir>` with only `env` set.
async fn rotate_key(data_dir: &Path, env: &[(&str, &OsStr)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-mux"));
    command
        .arg("rotate-key")
        .arg("--data-dir")
        .arg(data_dir)
        .env_clear()
        .env("RUST_LOG", "off");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().await.expect("mcp-mux runs")
}

fn keys<'a>(current: &'a str, previous: Option<&'a str>) -> Vec<(&'a str, &'a OsStr)> {
    let mut env = vec![("MCP_MUX_ENCRYPTION_KEY", OsStr::new(current))];
    if let Some(previous) = previous {
        env.push(("MCP_MUX_PREVIOUS_KEYS", OsStr::new(previous)));
    }
    env
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// A gateway's data directory with `count` sessions sealed with TEST_KEY.
async fn data_dir_with_sessions(count: usize) -> (tempfile::TempDir, Vec<Uuid>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("mcp-mux.db").display()
    );
    let key = EncryptionKey::from_base64(TEST_KEY, KeySource::Environment).expect("valid key");
    let store = Store::connect(&url, key).await.expect("store opens");
    let mut ids = Vec::new();
    for n in 0..count {
        let mut credentials = Credentials::default();
        credentials.insert("hf".into(), SecretString::from(format!("hf_{n}")));
        let record = SessionRecord {
            id: Uuid::new_v4(),
            servers: vec!["hf".into()],
            credentials,
            created_at: chrono::Utc::now(),
            prefix: PrefixMode::Always,
            expires_at: None,
            token_digest: None,
            rate_limit: None,
            curation: Default::default(),
            owner: None,
            name: None,
            labels: Default::default(),
        };
        store.insert_session(&record).await.expect("inserted");
        ids.push(record.id);
    }
    (dir, ids)
}

#[tokio::test]
async fn rotate_key_prints_what_it_re_sealed_and_can_run_again() {
    let (dir, _) = data_dir_with_sessions(2).await;

    let first = rotate_key(dir.path(), &keys(NEW_KEY, Some(TEST_KEY))).await;
    assert_eq!(text(&first.stderr), "");
    assert_eq!(
        text(&first.stdout),
        "re-sealed 2 sessions with key id cc68210862f76214; 0 already current\n"
    );
    assert!(first.status.success());

    let second = rotate_key(dir.path(), &keys(NEW_KEY, None)).await;
    assert_eq!(
        text(&second.stdout),
        "re-sealed 0 sessions with key id cc68210862f76214; 2 already current\n"
    );
    assert!(second.status.success());

    let old_key_only = rotate_key(dir.path(), &keys(TEST_KEY, None)).await;
    assert_eq!(
        text(&old_key_only.stderr),
        "mcp-mux: the database was written with key id cc68210862f76214, but the encryption key \
         from MCP_MUX_ENCRYPTION_KEY has id 3a537210cd9ae4ec and MCP_MUX_PREVIOUS_KEYS holds no \
         key with that id\n"
    );
    assert_eq!(text(&old_key_only.stdout), "");
    assert_eq!(old_key_only.status.code(), Some(1));
}

#[tokio::test]
async fn rotate_key_names_what_is_wrong_with_its_keys() {
    let (dir, _) = data_dir_with_sessions(1).await;

    let malformed = rotate_key(
        dir.path(),
        &keys(NEW_KEY, Some(&format!("{TEST_KEY},nope"))),
    )
    .await;
    assert_eq!(
        text(&malformed.stderr),
        "mcp-mux: encryption key: entry 2 of MCP_MUX_PREVIOUS_KEYS must be the base64 encoding \
         of exactly 32 bytes\n"
    );
    assert_eq!(malformed.status.code(), Some(1));

    let missing = rotate_key(dir.path(), &keys(NEW_KEY, None)).await;
    assert_eq!(
        text(&missing.stderr),
        "mcp-mux: the database was written with key id 3a537210cd9ae4ec, but the encryption key \
         from MCP_MUX_ENCRYPTION_KEY has id cc68210862f76214 and MCP_MUX_PREVIOUS_KEYS holds no \
         key with that id\n"
    );
    assert_eq!(missing.status.code(), Some(1));

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let not_text = rotate_key(
            dir.path(),
            &[
                ("MCP_MUX_ENCRYPTION_KEY", OsStr::new(NEW_KEY)),
                ("MCP_MUX_PREVIOUS_KEYS", OsStr::from_bytes(b"\xff")),
            ],
        )
        .await;
        assert_eq!(
            text(&not_text.stderr),
            "mcp-mux: MCP_MUX_PREVIOUS_KEYS must be base64 keys separated by commas\n"
        );
        assert_eq!(not_text.status.code(), Some(1));
    }
}

#[tokio::test]
async fn rotate_key_creates_neither_a_key_file_nor_a_database() {
    let dir = tempfile::tempdir().expect("temp dir");

    let no_key = rotate_key(dir.path(), &[]).await;
    assert_eq!(
        text(&no_key.stderr),
        format!(
            "mcp-mux: encryption key: {} does not exist: set MCP_MUX_ENCRYPTION_KEY, or \
             --data-dir to the gateway's data directory\n",
            dir.path().join("encryption.key").display()
        )
    );
    assert_eq!(no_key.status.code(), Some(1));

    let no_database = rotate_key(dir.path(), &keys(NEW_KEY, None)).await;
    assert_eq!(
        text(&no_database.stderr),
        format!(
            "mcp-mux: cannot open the database sqlite://{}?mode=rw: Connection Error: error \
             returned from database: (code: 14) unable to open database file\n",
            dir.path().join("mcp-mux.db").display()
        )
    );
    assert_eq!(no_database.status.code(), Some(1));
    assert!(
        std::fs::read_dir(dir.path())
            .expect("readable")
            .next()
            .is_none(),
        "nothing was created"
    );
}
