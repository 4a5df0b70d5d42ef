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
        "the database was written with key id 3a537210cd9ae4ec, but the encryption key from MCP_MUX_ENCRYPTION_KEY has id cc68210862f76214 and MCP_MUX_PREVIOUS_KEYS holds no key with that id"
    );

    let mut options = AppOptions::new(registry.clone());
    options.data_dir = Some(data_dir.clone());
    options.encryption_key = Some("c2hvcnQ=".to_owned());
    let error = spawn_app_with(options).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        "encryption key: MCP_MUX_ENCRYPTION_KEY must be the base64 encoding of exactly 32 bytes"
    );

    let mut options = AppOptions::new(registry);
    options.data_dir = Some(data_dir);
    options.encryption_key = Some(OTHER_KEY.to_owned());
    options.previous_keys = Some(format!("{TEST_KEY},c2hvcnQ="));
    let error = spawn_app_with(options).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        "encryption key: entry 2 of MCP_MUX_PREVIOUS_KEYS must be the base64 encoding of exactly 32 bytes"
    );
}

#[tokio::test]
async fn a_gateway_with_a_new_key_serves_sessions_sealed_with_the_previous_one() {
    let backend = spawn_rmcp_backend("beta", Some("beta-secret-token")).await;
    let registry = registry_yaml(&[("beta", &backend.url, "auth: { type: bearer }")]);
    let app = spawn_app(&registry).await;
    let session = app
        .create_session(json!({ "servers": ["beta"], "credentials": { "beta": { "token": "beta-secret-token" } } }))
        .await;
    let data_dir = app.stop().await;

    let mut options = AppOptions::new(registry);
    options.data_dir = Some(data_dir);
    options.encryption_key = Some(OTHER_KEY.to_owned());
    options.previous_keys = Some(TEST_KEY.to_owned());
    let app = spawn_app_with(options).await.expect("restarts");
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        first_text(
            &mcp.call_tool("beta__echo", json!({ "text": "rotated" }))
                .await
        ),
        "beta: rotated"
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
    app.mux.reap_idle(std::time::Duration::ZERO).await;
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

/// Stops `app` and starts it again on the same address and database.
async fn restart(app: TestApp, registry: &str) -> TestApp {
    let bind = app.address.trim_start_matches("http://").to_owned();
    let data_dir = app.stop().await;
    let mut options = AppOptions::new(registry);
    options.data_dir = Some(data_dir);
    options.bind = Some(bind);
    spawn_app_with(options).await.expect("restarts")
}

#[tokio::test]
async fn an_mcp_session_id_keeps_working_after_a_restart() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let registry = registry_yaml(&[("alpha", &backend.url, "")]);
    let app = spawn_app(&registry).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        first_text(&mcp.call_tool("alpha__echo", json!({ "text": "1" })).await),
        "alpha: 1"
    );

    let app = restart(app, &registry).await;
    // No initialize: the client goes on with the id it had.
    assert_eq!(
        first_text(&mcp.call_tool("alpha__echo", json!({ "text": "2" })).await),
        "alpha: 2"
    );
    assert_eq!(mcp.tool_names().await.len(), 2);
    let stream = mcp.open_stream().await;
    assert_eq!(stream.status(), 200);
    assert_eq!(app.shown_session(&session).await["mcp_sessions"], 1);
}

#[tokio::test]
async fn an_rmcp_client_goes_on_through_a_restart_of_the_gateway() {
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let backend = spawn_rmcp_backend("alpha", None).await;
    let registry = registry_yaml(&[("alpha", &backend.url, "")]);
    let app = spawn_app(&registry).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let client = rmcp_client(StreamableHttpClientTransportConfig::with_uri(
        app.mcp_url(&session),
    ))
    .await;
    assert_eq!(
        rmcp_echo(&client, "alpha__echo", "before").await,
        "alpha: before"
    );

    let _app = restart(app, &registry).await;
    assert_eq!(
        rmcp_echo(&client, "alpha__echo", "after").await,
        "alpha: after"
    );
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn an_ended_or_reaped_mcp_session_stays_ended_after_a_restart() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let registry = registry_yaml(&[("alpha", &backend.url, "")]);
    let app = spawn_app(&registry).await;
    let session = app.create_session(json!({ "servers": ["alpha"] })).await;
    let ended = app.mcp(&session).await;
    let reaped = app.mcp(&session).await;
    let deleted = app
        .http
        .delete(app.mcp_url(&session))
        .header("mcp-session-id", ended.session_id.clone().expect("id"))
        .send()
        .await
        .expect("answer");
    assert_eq!(deleted.status(), 200);
    assert_eq!(app.mux.reap_idle(std::time::Duration::ZERO).await, 1);

    let _app = restart(app, &registry).await;
    for mcp in [&ended, &reaped] {
        let response = mcp
            .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
            .await;
        assert_eq!(response.status(), 404);
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(
            body["error"]["message"],
            "unknown or ended MCP session: initialize again"
        );
    }
}

#[tokio::test]
async fn an_expired_session_answers_404_and_is_deleted_from_the_store() {
    use sea_orm::{ConnectionTrait, Database};
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let created: serde_json::Value = app
        .post_create_session(&json!({ "servers": ["alpha"], "ttl_seconds": 3600 }))
        .await
        .json()
        .await
        .expect("JSON");
    let session = created["session_id"].as_str().expect("id").to_owned();
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(created["expires_at"].as_str().expect("expires_at"))
            .expect("a time");
    let created_at =
        chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().expect("created_at"))
            .expect("a time");
    assert_eq!((expires_at - created_at).num_seconds(), 3600);
    let mut mcp = app.mcp(&session).await;
    assert_eq!(mcp.tool_names().await.len(), 2);

    // An hour passes: the stored expiry moves into the past.
    let db = Database::connect(format!("sqlite://{}", app.database_file().display()))
        .await
        .expect("database opens");
    db.execute_unprepared(&format!(
        "UPDATE sessions SET expires_at = '2000-01-01T00:00:00+00:00' WHERE id = '{session}'"
    ))
    .await
    .expect("updated");
    app.mux
        .reap_idle(std::time::Duration::from_secs(3600))
        .await;

    let shown = app
        .http
        .get(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(shown.status(), 404);
    let response = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .await;
    assert_eq!(response.status(), 404);
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT id FROM sessions WHERE id = '{session}'"),
        ))
        .await
        .expect("query");
    assert!(rows.is_empty(), "the expired session is deleted");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT id FROM mcp_sessions WHERE session_id = '{session}'"),
        ))
        .await
        .expect("query");
    assert!(rows.is_empty(), "its MCP sessions are forgotten");
}

#[tokio::test]
async fn a_session_past_its_ttl_answers_404_at_once() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let session = app
        .create_session(json!({ "servers": ["alpha"], "ttl_seconds": 1 }))
        .await;
    let mcp = app.mcp(&session).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(
        body["error"]["message"],
        format!("no session \"{session}\"")
    );
    let shown = app
        .http
        .get(format!("{}/session/{session}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(shown.status(), 404);
}

#[tokio::test]
async fn a_session_cannot_end_another_sessions_mcp_session() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let registry = registry_yaml(&[("alpha", &backend.url, "")]);
    let app = spawn_app(&registry).await;
    let intruder = app.create_session(json!({ "servers": ["alpha"] })).await;
    let victim = app.create_session(json!({ "servers": ["alpha"] })).await;
    let mut mcp = app.mcp(&victim).await;
    let victims_id = mcp.session_id.clone().expect("an MCP session");

    let refused = app
        .http
        .delete(app.mcp_url(&intruder))
        .header("mcp-session-id", &victims_id)
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 404);
    assert_eq!(
        refused.json::<serde_json::Value>().await.expect("JSON"),
        json!({ "jsonrpc": "2.0", "id": null, "error": {
            "code": -32600, "message": "unknown or ended MCP session: initialize again",
        } }),
        "the same answer as for an id that never existed"
    );

    // Neither here nor in the store: it outlives a restart.
    let _app = restart(app, &registry).await;
    assert_eq!(
        first_text(
            &mcp.call_tool("alpha__echo", json!({ "text": "still" }))
                .await
        ),
        "alpha: still"
    );
}
