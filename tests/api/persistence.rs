//! Sessions outlive a restart; credentials are sealed at rest with the right key.

use serde_json::json;

use crate::helpers::*;

const OTHER_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

#[tokio::test]
async fn a_session_url_created_before_a_restart_works_after_it() {
    let backend = spawn_rmcp_backend("beta", Some("beta-secret-token")).await;
    let registry = registry_yaml(&[("beta", &backend.url, "auth: { type: bearer }")]);
    let app = spawn_app(&registry).await;
    let session = app
        .create_session(json!({ "servers": ["beta"], "credentials": { "beta": { "token": "beta-secret-token" } } }))
        .await;
    let mut before = app.mcp(&session).await;
    assert_eq!(
        first_text(&before.call_tool("beta__echo", json!({ "text": "1" })).await),
        "beta: 1"
    );
    let data_dir = app.stop().await;

    let mut options = AppOptions::new(registry);
    options.data_dir = Some(data_dir);
    let app = spawn_app_with(options).await.expect("restarts");
    let mut after = app.mcp(&session).await;
    assert_eq!(
        first_text(&after.call_tool("beta__echo", json!({ "text": "2" })).await),
        "beta: 2"
    );
    let shown = app
        .http
        .get(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(shown.status(), 200);
}

#[tokio::test]
async fn credentials_are_sealed_in_the_database_file() {
    let app = spawn_app(&registry_yaml(&[(
        "hf",
        "https://huggingface.co/mcp",
        "auth: { type: bearer }",
    )]))
    .await;
    let token = "hf_plaintext_must_not_be_stored_123";
    let session = app
        .create_session(json!({ "servers": ["hf"], "credentials": { "hf": { "token": token } } }))
        .await;
    let database = app.database_file();
    let data_dir = app.stop().await;
    let bytes = database_bytes(&database);
    assert!(
        contains(&bytes, &session),
        "the session row is in the file we searched"
    );
    assert!(!contains(&bytes, token));
    drop(data_dir);
}

#[tokio::test]
async fn starting_with_another_key_is_a_clear_error() {
    let registry = registry_yaml(&[("hf", "https://huggingface.co/mcp", "auth: { type: bearer }")]);
    let app = spawn_app(&registry).await;
    app.create_session(json!({ "servers": ["hf"], "credentials": { "hf": { "token": "t" } } }))
        .await;
    let data_dir = app.stop().await;

    let mut options = AppOptions::new(registry.clone());
    options.data_dir = Some(data_dir.clone());
    options.encryption_key = Some(OTHER_KEY.to_owned());
    let error = spawn_app_with(options).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        "the encryption key from MCP_MUX_ENCRYPTION_KEY is not the key this database was written with; start with the original key"
    );

    let mut options = AppOptions::new(registry);
    options.data_dir = Some(data_dir);
    options.encryption_key = Some("c2hvcnQ=".to_owned());
    let error = spawn_app_with(options).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        "encryption key: MCP_MUX_ENCRYPTION_KEY must be the base64 encoding of exactly 32 bytes"
    );
}

#[tokio::test]
async fn without_a_key_in_the_environment_a_private_key_file_is_created_and_reused() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let registry = registry_yaml(&[("alpha", &backend.url, "")]);
    let mut options = AppOptions::new(registry.clone());
    options.encryption_key = None;
    let app = spawn_app_with(options).await.expect("starts");
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let key_file = app.data_dir.path().join("encryption.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let data_dir = app.stop().await;

    let mut options = AppOptions::new(registry);
    options.encryption_key = None;
    options.data_dir = Some(data_dir);
    let app = spawn_app_with(options)
        .await
        .expect("restarts with the key file");
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        first_text(&mcp.call_tool("alpha__echo", json!({ "text": "k" })).await),
        "alpha: k"
    );
}

#[tokio::test]
async fn a_session_whose_stored_credentials_do_not_open_is_an_internal_error_without_details() {
    use sea_orm::{ConnectionTrait, Database};
    let app = spawn_app(&registry_yaml(&[(
        "hf",
        "https://huggingface.co/mcp",
        "auth: { type: bearer }",
    )]))
    .await;
    let session = app
        .create_session(json!({ "servers": ["hf"], "credentials": { "hf": { "token": "t" } } }))
        .await;
    let db = Database::connect(format!("sqlite://{}", app.database_file().display()))
        .await
        .expect("database opens");
    db.execute_unprepared(&format!(
        "UPDATE sessions SET credentials = 'AAAA' WHERE id = '{session}'"
    ))
    .await
    .expect("tampered");
    app.mux.reap_idle(std::time::Duration::ZERO);
    let response = app
        .http
        .get(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({ "error": "internal", "message": "internal error; see the gateway log" })
    );
}

#[tokio::test]
async fn a_data_directory_with_url_characters_in_its_name_works() {
    let dir = tempfile::Builder::new()
        .prefix("data %25?#")
        .tempdir()
        .expect("temp dir");
    let mut options = AppOptions::new(registry_yaml(&[(
        "hf",
        "https://huggingface.co/mcp",
        "auth: { type: bearer }",
    )]));
    options.data_dir = Some(std::sync::Arc::new(dir));
    let app = spawn_app_with(options).await.expect("starts");
    app.create_session(json!({ "servers": ["hf"], "credentials": { "hf": { "token": "t" } } }))
        .await;
    assert!(
        app.database_file().exists(),
        "the database is where the directory says"
    );
}

#[tokio::test]
async fn the_prefix_choice_survives_a_restart() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let registry = registry_yaml(&[("alpha", &backend.url, "")]);
    let app = spawn_app(&registry).await;
    let session = app
        .create_session(json!({ "servers": ["alpha"], "prefix": "when_needed" }))
        .await;
    let data_dir = app.stop().await;
    let mut options = AppOptions::new(registry);
    options.data_dir = Some(data_dir);
    let app = spawn_app_with(options).await.expect("restarts");
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        first_text(&mcp.call_tool("echo", json!({ "text": "same" })).await),
        "alpha: same"
    );
}
