//! Search mode with a sentence model (`--search-model`): the first search
//! of an MCP session finds a tool that shares no word with the query, and
//! a model directory that is not one stops the gateway at start with the
//! file named.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_model_that_is_not_there_stops_the_gateway_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = AppOptions::new(registry_yaml(&[("alpha", "http://127.0.0.1:9/mcp", "")]));
    options.search_model = Some(dir.path().to_owned());
    let error = spawn_app_with(options).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "search model: cannot read {}: No such file or directory (os error 2)",
            dir.path().join("config.json").display()
        )
    );
}

#[tokio::test]
async fn with_a_model_a_search_finds_a_tool_by_meaning() {
    let Some(model) = std::env::var_os("MCP_MUX_TEST_SEARCH_MODEL") else {
        eprintln!("MCP_MUX_TEST_SEARCH_MODEL is not set: the search by meaning is not tried");
        return;
    };
    let alpha = spawn_rmcp_backend("alpha", None).await;
    let mut options = AppOptions::new(registry_yaml(&[("alpha", &alpha.url, "")]));
    options.search_model = Some(model.into());
    let app = spawn_app_with(options).await.expect("starts");
    let session = app
        .create_session(json!({ "servers": ["alpha"], "tool_mode": "search" }))
        .await;
    // Words alone find nothing for this query ("Add two integers").
    let tools = app.get_json(&format!("/session/{session}/tools")).await["tools"]
        .as_array()
        .expect("tools")
        .clone();
    let lexical =
        mcp_mux::mux::search::ToolIndex::build(&tools).search("what is seven plus five", 5);
    assert!(lexical.is_empty(), "{lexical:?}");
    let mut mcp = app.mcp(&session).await;
    let query = json!({ "query": "what is seven plus five", "limit": 1 });
    // The MCP session started making the list's embeddings when it opened,
    // and the first search waits for them: it already ranks by meaning.
    let found = first_text(&mcp.call_tool("search_tools", query).await).to_owned();
    assert!(found.contains("\"alpha__add\""), "{found}");
}
