//! Search mode learns from use: the tool a client calls after a search is
//! lifted for like queries in that session, in the store's record too, so
//! that it outlives a restart; bounded per session on SQLite and PostgreSQL.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use mcp_mux::mux::search::learning::MAX_CHOICES;
use mcp_mux::store::{SearchChoice, Store};

use crate::helpers::*;
use crate::store::{databases, key, record};

/// The names `search_tools` answered for `query`, best first.
async fn found(mcp: &mut RawMcp, query: &str) -> Vec<String> {
    let answer = mcp
        .call_tool("search_tools", json!({ "query": query }))
        .await;
    let hits: Value = serde_json::from_str(first_text(&answer)).expect("JSON text");
    hits["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|tool| tool["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn a_tool_called_after_a_search_comes_first_for_like_queries_after_a_restart_too() {
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let registry = registry_yaml(&[("alpha", &alpha.url, "")]);
    let app = spawn_app(&registry).await;
    let session = app
        .create_session(json!({ "servers": ["alpha"], "tool_mode": "search" }))
        .await;
    let other = app
        .create_session(json!({ "servers": ["alpha"], "tool_mode": "search" }))
        .await;
    let mut mcp = app.mcp(&session).await;
    assert!(found(&mut mcp, "zebra stripes").await.is_empty());
    let called = mcp
        .call_tool(
            "call_tool",
            json!({ "name": "alpha__echo", "arguments": { "text": "hi" } }),
        )
        .await;
    assert_eq!(first_text(&called), "alpha: hi");
    assert_eq!(found(&mut mcp, "zebra stripes").await, ["alpha__echo"]);
    assert_eq!(found(&mut mcp, "striped zebra").await, ["alpha__echo"]);
    // Another session learned nothing.
    let mut stranger = app.mcp(&other).await;
    assert!(found(&mut stranger, "zebra stripes").await.is_empty());

    let data_dir = app.stop().await;
    let mut options = AppOptions::new(registry);
    options.data_dir = Some(data_dir);
    let app = spawn_app_with(options).await.expect("restarts");
    let mut mcp = app.mcp(&session).await;
    assert_eq!(found(&mut mcp, "zebra stripes").await, ["alpha__echo"]);
    app.stop().await;
}

#[tokio::test]
async fn search_choices_are_kept_per_session_bounded_and_go_with_their_session() {
    for database in databases().await {
        let url = database.url.clone();
        let store = Store::connect(&url, key(TEST_KEY))
            .await
            .expect("store opens");
        let session = record("t");
        store.insert_session(&session).await.expect("inserted");
        let start = Utc::now();
        let limit = MAX_CHOICES as u64;
        for i in 0..limit + 3 {
            let choice = SearchChoice {
                words: format!("task {i}"),
                tool: format!("a__tool{i}"),
                uses: 1,
            };
            let at = start + Duration::seconds(i as i64);
            store
                .record_search_choice(session.id, &choice, limit, at)
                .await
                .expect("recorded");
        }
        // Chosen again: its uses change and it becomes the newest.
        let again = SearchChoice {
            words: "task 5".into(),
            tool: "a__tool5".into(),
            uses: 2,
        };
        let later = start + Duration::seconds(1000);
        store
            .record_search_choice(session.id, &again, limit, later)
            .await
            .expect("recorded");
        let kept = store.search_choices(session.id).await.expect("read");
        assert_eq!(kept.len(), MAX_CHOICES, "{url}");
        assert_eq!(kept.last(), Some(&again), "{url}");
        assert!(!kept.iter().any(|c| c.tool == "a__tool2"), "{url}");
        assert!(kept.iter().any(|c| c.tool == "a__tool3"), "{url}");
        assert!(
            store
                .search_choices(Uuid::new_v4())
                .await
                .expect("read")
                .is_empty()
        );
        assert!(store.delete_session(session.id).await.expect("deleted"));
        assert!(
            store
                .search_choices(session.id)
                .await
                .expect("read")
                .is_empty(),
            "{url}"
        );
        drop(store);
        database.drop_database().await;
    }
}
