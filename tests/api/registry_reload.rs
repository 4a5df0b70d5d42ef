//! The registry, live: `POST /registry/reload` (and SIGHUP, in
//! `cli.rs`) reads `registry.yaml` again while sessions keep calling.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const ADMIN_TOKEN: &str = "admin-token-0123456789";

async fn reload(app: &TestApp) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/registry/reload", app.address))
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn registry(app: &TestApp) -> Value {
    app.http
        .get(format!("{}/registry", app.address))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON")
}

fn sha256_of(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn a_reload_adds_changes_and_removes_servers_while_the_servers_that_stay_keep_answering() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let beta = spawn_rmcp_backend("beta", None).await;
    let gamma = spawn_rmcp_backend("gamma", None).await;
    let first = registry_yaml(&[("a", &alpha.url, ""), ("b", &beta.url, "")]);
    let app = spawn_app(&first).await;
    let file = app.data_dir.path().join("registry.yaml");
    let listed = registry(&app).await;
    assert_eq!(listed["sha256"], sha256_of(&first));
    assert!(listed["loaded_at"].is_string(), "{listed}");

    let session = app.create_session(json!({ "servers": ["a", "b"] })).await;
    let mut mcp = app.mcp(&session).await;
    assert_eq!(
        first_text(&mcp.call_tool("a__echo", json!({ "text": "1" })).await),
        "alpha: 1"
    );

    // Another client calls a's tool without a pause, across every reload.
    let reloading = std::sync::atomic::AtomicBool::new(true);
    let mut steady = app.mcp(&session).await;
    let steady_calls = async {
        let (mut calls, mut failed) = (0, Vec::new());
        while reloading.load(std::sync::atomic::Ordering::Relaxed) {
            let answer = steady
                .call_tool("a__echo", json!({ "text": calls.to_string() }))
                .await;
            if answer["result"]["content"][0]["text"] != format!("alpha: {calls}") {
                failed.push(answer);
            }
            calls += 1;
        }
        (calls, failed)
    };
    let reloads = async {
        // b removed, a changed (a timeout), c added.
        let second = registry_yaml(&[
            ("a", &alpha.url, "timeout_ms: 20000"),
            ("c", &gamma.url, ""),
        ]);
        std::fs::write(&file, &second).expect("registry rewritten");
        let (status, reloaded) = reload(&app).await;
        assert_eq!(status, 200, "{reloaded}");
        assert_eq!(reloaded["added"], json!(["c"]));
        assert_eq!(reloaded["changed"], json!(["a"]));
        assert_eq!(reloaded["removed"], json!(["b"]));
        assert_eq!(reloaded["sha256"], sha256_of(&second));
        let listed = registry(&app).await;
        let names: Vec<&Value> = listed["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .map(|server| &server["name"])
            .collect();
        assert_eq!(names, [&json!("a"), &json!("c")]);
        assert_eq!(listed["sha256"], sha256_of(&second));

        // The MCP session open before the reload goes on.
        assert_eq!(
            first_text(&mcp.call_tool("a__echo", json!({ "text": "2" })).await),
            "alpha: 2"
        );
        // An added server can be chosen at once.
        let new = app.create_session(json!({ "servers": ["c"] })).await;
        let mut over_c = app.mcp(&new).await;
        assert_eq!(
            first_text(&over_c.call_tool("c__echo", json!({ "text": "3" })).await),
            "gamma: 3"
        );
        // The removed server can no longer be chosen, and a new MCP session of
        // the old session does not open it, saying why.
        let refused = app.post_create_session(&json!({ "servers": ["b"] })).await;
        assert_eq!(refused.status(), 400);
        let mut later = app.mcp(&session).await;
        assert_eq!(
            first_text(&later.call_tool("a__echo", json!({ "text": "4" })).await),
            "alpha: 4"
        );
        let failed = later.call_tool("b__echo", json!({ "text": "5" })).await;
        let message = failed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains(
                "backend \"b\" was removed from the registry; its session cannot open it again (create a session without it)"
            ),
            "{failed}"
        );

        // A broken file keeps the registry served, and says why.
        std::fs::write(&file, "servers:\n  a:\n    url: ftp://example.com/mcp\n")
            .expect("registry broken");
        let (status, refused) = reload(&app).await;
        assert_eq!(status, 422);
        assert_eq!(refused["error"], "registry_invalid");
        let message = refused["message"].as_str().expect("a message");
        assert_eq!(
            message,
            format!(
                "registry {}: servers.a.url: must be an http or https URL with a host; the registry served is unchanged",
                file.display()
            )
        );
        assert_eq!(registry(&app).await["sha256"], sha256_of(&second));
        assert_eq!(
            first_text(&mcp.call_tool("a__echo", json!({ "text": "6" })).await),
            "alpha: 6"
        );
        reloading.store(false, std::sync::atomic::Ordering::Relaxed);
    };
    let ((calls, failed), ()) = tokio::join!(steady_calls, reloads);
    assert!(failed.is_empty(), "{failed:?}");
    assert!(calls > 0, "the client called throughout");
}

#[tokio::test]
async fn only_the_admin_may_reload_the_registry() {
    let mut options = AppOptions::new(registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")]));
    options.admin_token = Some(ADMIN_TOKEN.into());
    let app = spawn_app_with(options).await.expect("gateway starts");
    let refused = app
        .http
        .post(format!("{}/registry/reload", app.address))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 401);
    let allowed = app
        .http
        .post(format!("{}/registry/reload", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(allowed.status(), 200);
    let body: Value = allowed.json().await.expect("JSON");
    assert_eq!(body["added"], json!([]));
    assert_eq!(body["changed"], json!([]));
}
