//! Gateways sharing one PostgreSQL store (`TEST_DATABASE_URL`; skipped
//! without it, as SQLite belongs to one node), with requests alternating
//! between them as a round-robin balancer sends them: a session deleted
//! through one node ends its MCP sessions on the other, a session's rate
//! holds across the nodes together, and what lives in one node's memory
//! (a call waiting for the client's model, a stateless call waiting for
//! its retry) is reached through the other.

use serde_json::{Value, json};

use crate::helpers::{
    AppOptions, AskingServer, RawMcp, TestApp, eventually, read_message, registry_yaml,
    serve_rmcp_service, spawn_app_with, spawn_rmcp_backend,
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

/// Two nodes over one backend whose tool asks the client's model (sampling).
async fn two_nodes_over_an_asking_backend(
    database: &TestDatabase,
) -> (TestApp, TestApp, crate::helpers::RmcpBackend, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = serve_rmcp_service(listener, AskingServer::new, None);
    let registry = registry_yaml(&[("oracle", &backend.url, "")]);
    let (first, second) = two_nodes(&registry, database).await;
    let id = first.create_session(json!({ "servers": ["oracle"] })).await;
    (first, second, backend, id)
}

#[tokio::test]
async fn a_backends_request_answered_through_another_node_reaches_the_call() {
    let Some(database) = postgres().await else {
        return;
    };
    let (first, second, _backend, id) = two_nodes_over_an_asking_backend(&database).await;
    // The MCP session lives on the first node, and declares sampling.
    let initialized = first
        .http
        .post(first.mcp_url(&id))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {"sampling": {}},
            "clientInfo": {"name": "test", "version": "1"}}}),
        )
        .send()
        .await
        .expect("answers");
    assert_eq!(initialized.status(), 200);
    let mcp_session = initialized.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let post = |node: &TestApp, message: Value| {
        node.http
            .post(node.mcp_url(&id))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &mcp_session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&message)
            .send()
    };
    assert_eq!(
        post(
            &second,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
        )
        .await
        .expect("answers")
        .status(),
        202
    );
    // The call goes to the first node; the client's next request, its
    // model's answer, lands on the second.
    let mut call = post(
        &first,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "oracle__ask", "arguments": {"question": "why?"}}}),
    )
    .await
    .expect("answers");
    assert_eq!(call.status(), 200);
    let mut text = String::new();
    let asked: Value = loop {
        let chunk = call.chunk().await.expect("stream").expect("an event");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(data) = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim)
            .find(|data| data.contains("sampling/createMessage"))
        {
            break serde_json::from_str(data).expect("JSON");
        }
    };
    // The model's answer goes to the other node, which passes it back.
    let answered = post(
        &second,
        json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
            "role": "assistant", "model": "m",
            "content": {"type": "text", "text": "because"}}}),
    )
    .await
    .expect("answers");
    assert_eq!(answered.status(), 202);
    let mut rest = String::new();
    let finished = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(chunk) = call.chunk().await.expect("stream") {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(finished.is_ok(), "the call never ended: {rest}");
    assert!(rest.contains("the model said: because"), "{rest}");
    // A later request through the second node is served by the first,
    // where the MCP session lives: no second copy of it opens.
    let listed = post(
        &second,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await
    .expect("answers");
    assert_eq!(listed.status(), 200);
    let second_holds = second
        .mux
        .session(uuid::Uuid::parse_str(&id).expect("uuid"))
        .await
        .expect("store answers")
        .map_or(0, |session| session.mcp_session_count());
    assert_eq!(second_holds, 0, "the second node opened no copy");
    first.stop().await;
    second.stop().await;
    database.drop_database().await;
}

#[tokio::test]
async fn a_stateless_retry_on_another_node_resumes_the_call_where_it_waits() {
    let Some(database) = postgres().await else {
        return;
    };
    let (first, second, _backend, id) = two_nodes_over_an_asking_backend(&database).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": { "sampling": {} },
    });
    let call = |node: &TestApp, id_: u64, params: Value| {
        node.http
            .post(node.mcp_url(&id))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "oracle__ask")
            .json(&json!({"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}))
            .send()
    };
    let ask = json!({"name": "oracle__ask", "arguments": {"question": "why?"}, "_meta": meta});
    let first_answer = read_message(call(&first, 1, ask.clone()).await.expect("answers")).await;
    let result = &first_answer["result"];
    assert_eq!(result["resultType"], "input_required", "{first_answer}");
    let (key, _) = result["inputRequests"]
        .as_object()
        .and_then(|requests| requests.iter().next())
        .expect("an input request");
    let mut retry = ask.clone();
    retry["requestState"] = result["requestState"].clone();
    retry["inputResponses"] = json!({ key: {
        "role": "assistant", "model": "m",
        "content": { "type": "text", "text": "because" },
    }});
    let done = read_message(call(&second, 2, retry).await.expect("answers")).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "the model said: because"
    );
    first.stop().await;
    second.stop().await;
    database.drop_database().await;
}

#[tokio::test]
async fn a_sessions_stateless_clients_share_one_mcp_session_on_one_node() {
    let Some(database) = postgres().await else {
        return;
    };
    let backend = spawn_rmcp_backend("a", None).await;
    let registry = registry_yaml(&[("a", &backend.url, "")]);
    let (first, second) = two_nodes(&registry, &database).await;
    let id = first.create_session(json!({ "servers": ["a"] })).await;
    let call = |node: &TestApp, n: u64| {
        node.http
            .post(node.mcp_url(&id))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "a__echo")
            .json(
                &json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {
                "name": "a__echo", "arguments": {"text": format!("hi {n}")},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": { "name": "test", "version": "1" },
                    "io.modelcontextprotocol/clientCapabilities": {},
                }}}),
            )
            .send()
    };
    for n in 0..6 {
        let node = if n % 2 == 0 { &first } else { &second };
        let answer = read_message(call(node, n).await.expect("answers")).await;
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    let session = uuid::Uuid::parse_str(&id).expect("uuid");
    let mut held = Vec::new();
    for node in [&first, &second] {
        held.push(
            node.mux
                .session(session)
                .await
                .expect("store answers")
                .map_or(0, |session| session.mcp_sessions().len()),
        );
    }
    assert_eq!(
        (held[0], held[1]),
        (1, 0),
        "one shared MCP session, on the node that opened it"
    );
    first.stop().await;
    second.stop().await;
    database.drop_database().await;
}

/// A node the store names as an MCP session's holder, reached at `url`.
async fn pretend_holder(app: &TestApp, mcp_session: &str, url: String) {
    let store = app.mux.store();
    let node = mcp_mux::store::NodeRecord {
        id: uuid::Uuid::new_v4(),
        started_at: chrono::Utc::now(),
        url: Some(url),
        secret: "a-node-secret".into(),
    };
    store
        .heartbeat(&node, chrono::Utc::now())
        .await
        .expect("heartbeat stored");
    store
        .hold_mcp_session(mcp_session, node.id)
        .await
        .expect("holder stored");
}

#[tokio::test]
async fn a_holder_that_went_away_with_a_request_is_a_502_and_one_not_reached_is_taken_over() {
    let Some(database) = postgres().await else {
        return;
    };
    let backend = spawn_rmcp_backend("a", None).await;
    let registry = registry_yaml(&[("a", &backend.url, "")]);
    let (first, second) = two_nodes(&registry, &database).await;
    let id = first.create_session(json!({ "servers": ["a"] })).await;
    let list = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"});

    // A holder that takes the request and closes without an answer: the
    // request may have run there, so it is not run again.
    let mut on_first = RawMcp::new(first.mcp_url(&id));
    on_first.initialize("2025-11-25").await;
    let taken = on_first.session_id.clone().expect("an MCP session");
    let dropper = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dropper_url = format!("http://{}", dropper.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = dropper.accept().await {
            use tokio::io::AsyncReadExt;
            let mut head = [0u8; 1024];
            let _ = socket.read(&mut head).await;
        }
    });
    pretend_holder(&first, &taken, dropper_url).await;
    let mut via_second = RawMcp::new(second.mcp_url(&id));
    via_second.session_id = Some(taken);
    let answer = via_second.post(&list).await;
    assert_eq!(answer.status(), 502);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32603, "message":
            "the gateway node holding this MCP session went away during the request, which may have run there; check before sending it again (the session moves to another node)"}})
    );

    // A holder that cannot be reached at all: the node the request
    // reached takes the MCP session over and answers.
    let mut other = RawMcp::new(first.mcp_url(&id));
    other.initialize("2025-11-25").await;
    let moved = other.session_id.clone().expect("an MCP session");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let closed_url = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    pretend_holder(&first, &moved, closed_url).await;
    let mut via_second = RawMcp::new(second.mcp_url(&id));
    via_second.session_id = Some(moved);
    let answer = via_second.post(&list).await;
    assert_eq!(answer.status(), 200);
    assert!(
        read_message(answer).await["result"]["tools"].is_array(),
        "served where it landed"
    );
    first.stop().await;
    second.stop().await;
    database.drop_database().await;
}
