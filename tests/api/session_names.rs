//! A session's name and labels: given at create-session, shown wherever
//! the session is (its answer, `GET /session/<id>`, the list, the audit,
//! the metrics), and found again with the list's filters.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_named_labelled_session_is_shown_everywhere_and_found_by_its_filters() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let beta = spawn_rmcp_backend("beta", None).await;
    let app = spawn_app(&registry_yaml(&[
        ("alpha", &alpha.url, ""),
        ("beta", &beta.url, ""),
    ]))
    .await;
    let created = app
        .post_create_session(&json!({
            "servers": ["alpha"],
            "name": "Nightly CI",
            "labels": { "team": "platform", "env": "ci" },
        }))
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("JSON");
    assert_eq!(created["name"], "Nightly CI");
    assert_eq!(
        created["labels"],
        json!({ "env": "ci", "team": "platform" })
    );
    let named = created["session_id"].as_str().expect("id").to_owned();
    let plain = app.create_session(json!({ "servers": ["beta"] })).await;
    let other = app
        .create_session(json!({ "servers": ["alpha", "beta"], "labels": { "team": "web" } }))
        .await;

    let shown = app.get_json(&format!("/session/{named}")).await;
    assert_eq!(shown["name"], "Nightly CI");
    assert_eq!(shown["labels"], json!({ "env": "ci", "team": "platform" }));
    let shown = app.get_json(&format!("/session/{plain}")).await;
    assert_eq!(shown["name"], Value::Null);
    assert_eq!(shown["labels"], json!({}));

    let listed = |query: &'static str| {
        let app = &app;
        async move {
            app.get_json(&format!("/sessions{query}")).await["sessions"]
                .as_array()
                .expect("sessions")
                .iter()
                .map(|session| session["session_id"].as_str().expect("id").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed("").await,
        [other.as_str(), plain.as_str(), named.as_str()]
    );
    assert_eq!(listed("?name=nightly").await, [named.as_str()]);
    assert_eq!(listed("?label=team=platform").await, [named.as_str()]);
    assert_eq!(
        listed("?label=team=platform&label=env=ci").await,
        [named.as_str()]
    );
    assert_eq!(
        listed("?label=team=platform&label=env=prod").await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed("?server=beta").await,
        [other.as_str(), plain.as_str()]
    );
    assert_eq!(
        listed("?server=alpha&label=team=web").await,
        [other.as_str()]
    );
    // An empty filter, as a form sends it, filters nothing.
    assert_eq!(listed("?name=&server=").await.len(), 3);
    let first = &app.get_json("/sessions?name=nightly").await["sessions"][0];
    assert_eq!(first["name"], "Nightly CI");
    assert_eq!(first["labels"], json!({ "env": "ci", "team": "platform" }));

    // A call of the named session is counted under its name, and its
    // audit page names it.
    let answer = app
        .http
        .post(format!("{}/session/{named}/tools/alpha__echo", app.address))
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let audit_path = format!("/session/{named}/audit");
    assert!(
        eventually(|| async {
            app.get_json(&audit_path).await["records"][0]["tool"] == "alpha__echo"
        })
        .await
    );
    let audit = app.get_json(&audit_path).await;
    assert_eq!(audit["name"], "Nightly CI");
    assert_eq!(audit["labels"], json!({ "env": "ci", "team": "platform" }));
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("mcp_mux_named_session_tool_calls_total{name=\"Nightly CI\"} 1"),
        "{metrics}"
    );
}
