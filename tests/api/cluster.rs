//! Gateways sharing one PostgreSQL store (`TEST_DATABASE_URL`; skipped
//! without it, as SQLite belongs to one node): a session deleted through
//! one node ends its MCP sessions on the other, and a session's rate holds
//! across the nodes together.

use serde_json::{Value, json};

use crate::helpers::{
    AppOptions, RawMcp, TestApp, eventually, registry_yaml, spawn_app_with, spawn_rmcp_backend,
};
use crate::store::{TestDatabase, databases};

/// A PostgreSQL database of its own, when the tests have a server.
async fn postgres() -> Option<TestDatabase> {
    let database = databases()
        .await
        .into_iter()
        .find(|db| db.sqlite_file().is_none());
    if database.is_none() {
        eprintln!("TEST_DATABASE_URL is not set: the tests of many nodes are skipped");
    }
    database
}

/// Two gateways over `registry` on `database`, once each counts both.
async fn two_nodes(registry: &str, database: &TestDatabase) -> (TestApp, TestApp) {
    let node = || {
        let mut options = AppOptions::new(registry);
        options.database_url = Some(database.url.clone());
        spawn_app_with(options)
    };
    let first = node().await.expect("the first node starts");
    let second = node().await.expect("the second node starts");
    assert!(
        eventually(|| async {
            first.mux.cluster().live_nodes() == 2 && second.mux.cluster().live_nodes() == 2
        })
        .await,
        "each node counts both"
    );
    (first, second)
}

#[tokio::test]
async fn a_session_deleted_through_one_node_ends_its_mcp_sessions_on_the_other() {
    let Some(database) = postgres().await else {
        return;
    };
    let backend = spawn_rmcp_backend("a", None).await;
    let registry = registry_yaml(&[("a", &backend.url, "")]);
    let (first, second) = two_nodes(&registry, &database).await;
    let id = first.create_session(json!({ "servers": ["a"] })).await;
    let mut on_second = RawMcp::new(second.mcp_url(&id));
    on_second.initialize("2025-11-25").await;
    assert!(on_second.tool_names().await.contains(&"a__echo".to_owned()));

    let deleted = first
        .http
        .delete(format!("{}/session/{id}", first.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), 200);
    assert!(
        eventually(|| async {
            let response = on_second
                .post(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
                .await;
            response.status() == 404
        })
        .await,
        "the MCP session on the other node ends"
    );
    let answer: Value = on_second
        .post(&json!({"jsonrpc": "2.0", "id": 10, "method": "tools/list"}))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        answer["error"]["message"],
        format!("no session \"{id}\""),
        "{answer}"
    );
    first.stop().await;
    second.stop().await;
    database.drop_database().await;
}

#[tokio::test]
async fn a_sessions_rate_holds_across_the_nodes_together() {
    let Some(database) = postgres().await else {
        return;
    };
    let backend = spawn_rmcp_backend("a", None).await;
    let registry = registry_yaml(&[("a", &backend.url, "")]);
    let (first, second) = two_nodes(&registry, &database).await;
    // 10 a second, 20 at once: each node takes half.
    let id = first
        .create_session(json!({ "servers": ["a"], "rate_limit": 10 }))
        .await;
    let mut admitted = 0;
    for n in 0..40 {
        let node = if n % 2 == 0 { &first } else { &second };
        let response = node
            .http
            .get(format!("{}/session/{id}/tools", node.address))
            .send()
            .await
            .expect("answers");
        match response.status().as_u16() {
            200 => admitted += 1,
            429 => {}
            other => panic!("request {n}: {other}"),
        }
    }
    // Both bursts, and what refilled meanwhile; two unshared bursts would
    // have admitted all 40.
    assert!((20..30).contains(&admitted), "{admitted} of 40 admitted");
    first.stop().await;
    second.stop().await;
    database.drop_database().await;
}
