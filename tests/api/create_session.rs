//! `POST /create-session`, `GET|DELETE /session/<id>`, `GET /registry`, `GET /healthz`.

use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use crate::helpers::*;
use sha2::Digest;

const REGISTRY: &str = r#"
servers:
  everything:
    url: http://127.0.0.1:9/mcp
    description: Reference server
  huggingface:
    url: https://huggingface.co/mcp
    auth: { type: bearer }
  kb:
    url: http://127.0.0.1:9/kb?key=${HOME}
    auth: { type: api_key, header: X-Api-Key }
"#;

async fn stored_sessions(app: &TestApp) -> i64 {
    let url = format!("sqlite://{}?mode=ro", app.database_file().display());
    let db = Database::connect(url).await.expect("database opens");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM sessions",
        ))
        .await
        .expect("query")
        .expect("row");
    row.try_get::<i64>("", "n").expect("count")
}

#[tokio::test]
async fn a_valid_request_creates_a_session() {
    let app = spawn_app(REGISTRY).await;
    let response = app
        .post_create_session(&json!({
            "servers": ["everything", "huggingface", "kb"],
            "credentials": { "huggingface": { "token": "hf_abc" }, "kb": { "api_key": "k-1" } }
        }))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("JSON");
    let id = body["session_id"].as_str().expect("id");
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(body["mcp_endpoint"], format!("/session/{id}/mcp"));
    assert_eq!(body["mcp_url"], format!("{}/session/{id}/mcp", app.address));
    assert_eq!(body["status"], "created");
    assert_eq!(body["prefix"], "always");
    assert_eq!(body["servers"], json!(["everything", "huggingface", "kb"]));
    assert_eq!(stored_sessions(&app).await, 1);
}

#[tokio::test]
async fn every_invalid_request_is_a_400_naming_the_field_and_stores_nothing() {
    let app = spawn_app(REGISTRY).await;
    let known = "known: everything, huggingface, kb";
    let mut cases: Vec<(Value, &str, String)> = vec![
        (json!([]), "body", "must be a JSON object".into()),
        (
            json!({}),
            "servers",
            "is required: a list of server names from GET /registry".into(),
        ),
        (
            json!({ "servers": "everything" }),
            "servers",
            "must be an array of server names".into(),
        ),
        (
            json!({ "servers": [] }),
            "servers",
            "must name at least one server".into(),
        ),
        (
            json!({ "servers": [7] }),
            "servers[0]",
            "must be a string".into(),
        ),
        (
            json!({ "servers": ["everything", "fooo"] }),
            "servers[1]",
            format!("unknown server \"fooo\"; {known}"),
        ),
        (
            json!({ "servers": ["everything", "everything"] }),
            "servers[1]",
            "server \"everything\" is listed twice".into(),
        ),
        (
            json!({ "servers": ["huggingface"] }),
            "credentials.huggingface",
            "is required: server \"huggingface\" needs {\"token\": \"…\"}".into(),
        ),
        (
            json!({ "servers": ["huggingface"], "credentials": { "huggingface": "hf_abc" } }),
            "credentials.huggingface",
            "must be an object like {\"token\": \"…\"}".into(),
        ),
        (
            json!({ "servers": ["huggingface"], "credentials": { "huggingface": {} } }),
            "credentials.huggingface.token",
            "is required".into(),
        ),
        (
            json!({ "servers": ["huggingface"], "credentials": { "huggingface": { "token": 5 } } }),
            "credentials.huggingface.token",
            "must be a string".into(),
        ),
        (
            json!({ "servers": ["huggingface"], "credentials": { "huggingface": { "token": "" } } }),
            "credentials.huggingface.token",
            "must not be empty".into(),
        ),
        (
            json!({ "servers": ["huggingface"], "credentials": { "huggingface": { "token": "a\r\nX-Evil: 1" } } }),
            "credentials.huggingface.token",
            "must not contain CR or LF".into(),
        ),
        (
            json!({ "servers": ["huggingface"], "credentials": { "huggingface": { "token": "a\u{7}" } } }),
            "credentials.huggingface.token",
            "must be printable ASCII (no control characters)".into(),
        ),
        (
            json!({ "servers": ["huggingface"], "credentials": { "huggingface": { "token": "t", "tokn": "t" } } }),
            "credentials.huggingface.tokn",
            "unknown field; expected token".into(),
        ),
        (
            json!({ "servers": ["kb"], "credentials": { "kb": { "token": "t" } } }),
            "credentials.kb.token",
            "unknown field; expected api_key".into(),
        ),
        (
            json!({ "servers": ["everything"], "credentials": { "everything": { "token": "t" } } }),
            "credentials.everything",
            "server \"everything\" takes no credentials".into(),
        ),
        (
            json!({ "servers": ["everything"], "credentials": { "huggingface": { "token": "t" } } }),
            "credentials.huggingface",
            "names a server that is not in servers".into(),
        ),
        (
            json!({ "servers": ["everything"], "credentials": [] }),
            "credentials",
            "must be an object keyed by server name".into(),
        ),
        (
            json!({ "servers": ["everything"], "prefix": "never" }),
            "prefix",
            "must be \"always\" or \"when_needed\"".into(),
        ),
        (
            json!({ "servers": ["everything"], "prefix": true }),
            "prefix",
            "must be \"always\" or \"when_needed\"".into(),
        ),
        (
            json!({ "servers": ["everything"], "server": ["x"] }),
            "server",
            "unknown field; expected servers, name, labels, credentials, prefix, ttl_seconds, require_token, access, owner, rate_limit, tools, prompts, tool_mode"
                .into(),
        ),
    ];
    for flag in [json!("yes"), json!(1)] {
        cases.push((
            json!({ "servers": ["everything"], "require_token": flag }),
            "require_token",
            "must be true or false".into(),
        ));
    }
    let ttl_reason = "must be a whole number of seconds from 1 to 31536000";
    for ttl in [
        json!(0),
        json!(-5),
        json!(1.5),
        json!("60"),
        json!(31_536_001),
    ] {
        cases.push((
            json!({ "servers": ["everything"], "ttl_seconds": ttl }),
            "ttl_seconds",
            ttl_reason.into(),
        ));
    }
    let rate_reason = "must be a whole number of requests a second from 1 to 1000000";
    for rate in [
        json!(0),
        json!(-1),
        json!(2.5),
        json!("10"),
        json!(1_000_001),
    ] {
        cases.push((
            json!({ "servers": ["everything"], "rate_limit": rate }),
            "rate_limit",
            rate_reason.into(),
        ));
    }
    let everything = |field: &str, value: Value| {
        let mut body = json!({ "servers": ["everything"] });
        body[field] = value;
        body
    };
    let key_rule =
        "is no label key: use 1 to 63 letters, digits and . _ - /, starting with a letter or digit";
    let value_rule = "is no label value: use 0 to 63 letters, digits and . _ - / : @";
    let many: serde_json::Map<String, Value> =
        (0..17).map(|n| (format!("k{n}"), json!("v"))).collect();
    for (body, field, reason) in [
        (
            everything("name", json!(5)),
            "name",
            "must be a string".to_owned(),
        ),
        (
            everything("name", json!("")),
            "name",
            "must not be empty or only spaces".into(),
        ),
        (
            everything("name", json!("   ")),
            "name",
            "must not be empty or only spaces".into(),
        ),
        (
            everything("name", json!("x".repeat(65))),
            "name",
            "must be at most 64 characters".into(),
        ),
        (
            everything("name", json!("a\nb")),
            "name",
            "must not hold control characters".into(),
        ),
        (
            everything("labels", json!(["team"])),
            "labels",
            "must be an object of strings: {\"team\": \"platform\"}".into(),
        ),
        (
            everything("labels", Value::Object(many)),
            "labels",
            "has 17 labels; at most 16 are allowed".into(),
        ),
        (
            everything("labels", json!({ "": "x" })),
            "labels",
            format!("key \"\" {key_rule}"),
        ),
        (
            everything("labels", json!({ "-team": "x" })),
            "labels",
            format!("key \"-team\" {key_rule}"),
        ),
        (
            everything("labels", json!({ "te am": "x" })),
            "labels",
            format!("key \"te am\" {key_rule}"),
        ),
        (
            everything("labels", json!({ "k".repeat(64): "x" })),
            "labels",
            format!("key \"{}\" {key_rule}", "k".repeat(64)),
        ),
        (
            everything("labels", json!({ "team": 5 })),
            "labels.team",
            "must be a string".into(),
        ),
        (
            everything("labels", json!({ "team": "a\"b" })),
            "labels.team",
            value_rule.into(),
        ),
        (
            everything("labels", json!({ "team": "v".repeat(64) })),
            "labels.team",
            value_rule.into(),
        ),
    ] {
        cases.push((body, field, reason));
    }
    for (body, field, reason) in cases {
        let response = app.post_create_session(&body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(
            answer,
            json!({ "error": "bad_request", "field": field, "message": format!("{field}: {reason}") }),
            "{body}"
        );
    }

    let not_json = app
        .http
        .post(format!("{}/create-session", app.address))
        .body("{\"servers\": [")
        .send()
        .await
        .expect("answer");
    assert_eq!(not_json.status(), 400);
    let answer: Value = not_json.json().await.expect("JSON");
    assert_eq!(answer["field"], "body");
    assert!(
        answer["message"]
            .as_str()
            .expect("message")
            .starts_with("body: is not valid JSON (")
    );

    let huge = app
        .http
        .post(format!("{}/create-session", app.address))
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .expect("answer");
    assert_eq!(huge.status(), 413);
    let answer: Value = huge.json().await.expect("JSON");
    assert_eq!(
        answer,
        json!({ "error": "payload_too_large", "message": "request body exceeds 65536 bytes" })
    );

    assert_eq!(
        stored_sessions(&app).await,
        0,
        "no invalid request stored anything"
    );
}

#[tokio::test]
async fn a_long_unknown_name_is_cut_in_the_error() {
    let app = spawn_app(REGISTRY).await;
    let name = "x".repeat(500);
    let answer: Value = app
        .post_create_session(&json!({ "servers": [name] }))
        .await
        .json()
        .await
        .expect("JSON");
    let message = answer["message"].as_str().expect("message");
    assert!(message.len() < 200, "{message}");
    assert!(message.contains(&format!("\"{}\"…", "x".repeat(64))));
}

#[tokio::test]
async fn a_session_is_shown_without_secrets_and_can_be_deleted() {
    let app = spawn_app(REGISTRY).await;
    let id = app
        .create_session(json!({ "servers": ["huggingface"], "credentials": { "huggingface": { "token": "hf_secret_1" } } }))
        .await;
    let url = format!("{}/session/{id}", app.address);
    let shown = app.http.get(&url).send().await.expect("answer");
    assert_eq!(shown.status(), 200);
    let text = shown.text().await.expect("body");
    assert!(!text.contains("hf_secret_1"));
    let shown: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(shown["session_id"], id);
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["prefix"], "always");
    assert_eq!(
        shown["servers"],
        json!([{
            "name": "huggingface",
            "auth": "bearer",
            "state": "not_opened",
            "reason": "no MCP session on this gateway has opened \"huggingface\" yet",
            "circuit": { "state": "closed", "consecutive_failures": 0 },
            "calls_in_progress": 0,
            "serving": "huggingface",
        }])
    );
    assert_eq!(shown["expires_at"], Value::Null);
    assert_eq!(shown["require_token"], false);
    assert_eq!(shown["mcp_sessions"], 0);

    let deleted = app.http.delete(&url).send().await.expect("answer");
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        deleted.json::<Value>().await.expect("JSON"),
        json!({ "session_id": id, "status": "deleted" })
    );
    assert_eq!(stored_sessions(&app).await, 0);

    for response in [
        app.http.get(&url).send().await,
        app.http.delete(&url).send().await,
    ] {
        let response = response.expect("answer");
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            body,
            json!({ "error": "not_found", "message": format!("no session \"{id}\"") })
        );
    }
    let mcp = app
        .http
        .post(app.mcp_url(&id))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(mcp.status(), 404);
}

#[tokio::test]
async fn the_registry_lists_servers_and_credential_fields_but_no_urls() {
    let app = spawn_app(REGISTRY).await;
    let response = app
        .http
        .get(format!("{}/registry", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(!text.contains("127.0.0.1"), "no backend URL: {text}");
    let mut body: Value = serde_json::from_str(&text).expect("JSON");
    // Which version of the file is served, and since when.
    let sha256 = body["sha256"].take();
    assert_eq!(
        sha256,
        hex::encode(sha2::Sha256::digest(REGISTRY.as_bytes())),
        "{text}"
    );
    assert!(body["loaded_at"].take().is_string(), "{text}");
    let body = Value::Object(
        body.as_object()
            .expect("an object")
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    );
    assert_eq!(
        body,
        json!({
            "tool_separator": "__",
            "servers": [
                { "name": "everything", "description": "Reference server", "transport": "streamable_http", "auth": "none", "credential_fields": [] },
                { "name": "huggingface", "description": null, "transport": "streamable_http", "auth": "bearer", "credential_fields": ["token"] },
                { "name": "kb", "description": null, "transport": "streamable_http", "auth": "api_key", "credential_fields": ["api_key"] },
            ]
        })
    );
}

#[tokio::test]
async fn health_and_unknown_routes_answer_json() {
    let app = spawn_app(REGISTRY).await;
    let health = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.expect("JSON");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_seconds"].is_u64(), "{health}");
    assert_eq!(health.as_object().map(|o| o.len()), Some(3), "{health}");
    let missing = app
        .http
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.expect("JSON"),
        json!({ "error": "not_found", "message": "no such route" })
    );
}

#[tokio::test]
async fn readyz_is_ready_until_shutdown_begins_and_then_a_503_saying_so() {
    let app = spawn_app(REGISTRY).await;
    let readyz = || async {
        let response = app
            .http
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .expect("answer");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("JSON"))
    };
    let (status, ready) = readyz().await;
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["version"], env!("CARGO_PKG_VERSION"));
    assert!(ready["uptime_seconds"].is_u64(), "{ready}");

    app.mux.begin_shutdown();
    let (status, stopping) = readyz().await;
    assert_eq!(status, 503);
    assert_eq!(stopping["status"], "unavailable");
    assert_eq!(stopping["message"], "mcp-mux is shutting down");
    assert_eq!(stopping["version"], env!("CARGO_PKG_VERSION"));
    // Liveness is another question: the process still answers.
    let health = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn create_session_beyond_the_session_limit_is_a_503_that_stores_nothing() {
    let mut options = AppOptions::new(REGISTRY);
    options.limits.max_sessions = 2;
    let app = spawn_app_with(options).await.expect("starts");
    let first = app
        .create_session(json!({ "servers": ["everything"] }))
        .await;
    app.create_session(json!({ "servers": ["everything"] }))
        .await;
    let refused = app
        .post_create_session(&json!({ "servers": ["everything"] }))
        .await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        refused.json::<Value>().await.expect("JSON"),
        json!({
            "error": "at_capacity",
            "message": "the gateway holds its maximum of 2 sessions; delete one or try again later"
        })
    );
    assert_eq!(stored_sessions(&app).await, 2);
    let deleted = app
        .http
        .delete(format!("{}/session/{first}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(deleted.status(), 200);
    app.create_session(json!({ "servers": ["everything"] }))
        .await;
}

#[tokio::test]
async fn the_session_url_ignores_forwarded_headers_and_follows_the_public_url() {
    let registry = registry_yaml(&[("alpha", "http://127.0.0.1:9/mcp", "")]);
    let app = spawn_app(&registry).await;
    let created: Value = app
        .http
        .post(format!("{}/create-session", app.address))
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "host=evil.example;proto=https")
        .json(&json!({ "servers": ["alpha"] }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let id = created["session_id"].as_str().expect("id");
    assert_eq!(
        created["mcp_url"],
        format!("{}/session/{id}/mcp", app.address),
        "any client can send forwarded headers: they are not trusted"
    );

    let mut options = AppOptions::new(registry);
    options.public_url = Some("https://mux.example.com/gateway/".into());
    let app = spawn_app_with(options).await.expect("starts");
    let created: Value = app
        .post_create_session(&json!({ "servers": ["alpha"] }))
        .await
        .json()
        .await
        .expect("JSON");
    let id = created["session_id"].as_str().expect("id");
    assert_eq!(
        created["mcp_url"],
        format!("https://mux.example.com/gateway/session/{id}/mcp")
    );
}

#[tokio::test]
async fn sessions_are_listed_in_pages_without_their_credentials() {
    let app = spawn_app(REGISTRY).await;
    let mut created = Vec::new();
    for body in [
        json!({ "servers": ["everything"] }),
        json!({ "servers": ["everything"], "require_token": true }),
        json!({ "servers": ["huggingface"], "credentials": { "huggingface": { "token": "hf_secret" } } }),
    ] {
        created.push(app.create_session(body).await);
    }
    // Newest first.
    created.reverse();
    let list = |query: String| {
        let app = &app;
        async move {
            let response = app
                .http
                .get(format!("{}/sessions{query}", app.address))
                .send()
                .await
                .expect("answer");
            let status = response.status().as_u16();
            let text = response.text().await.expect("body");
            (status, text)
        }
    };
    let (status, first) = list("?limit=2".into()).await;
    assert_eq!(status, 200);
    assert!(!first.contains("hf_secret"));
    let first: Value = serde_json::from_str(&first).expect("JSON");
    let ids = |page: &Value| -> Vec<String> {
        page["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|session| session["session_id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(ids(&first), created[..2]);
    let next_after = first["next_after"].as_str().expect("next_after");
    assert!(
        next_after.ends_with(&format!("~{}", created[1])),
        "{next_after}"
    );
    let shown = &first["sessions"][0];
    assert_eq!(
        shown["mcp_endpoint"],
        format!("/session/{}/mcp", created[0])
    );
    assert!(shown["created_at"].is_string(), "{shown}");

    let (status, rest) = list(format!(
        "?limit=2&after={}",
        url::form_urlencoded::byte_serialize(next_after.as_bytes()).collect::<String>()
    ))
    .await;
    assert_eq!(status, 200);
    let rest: Value = serde_json::from_str(&rest).expect("JSON");
    assert_eq!(ids(&rest), created[2..]);
    assert_eq!(rest["next_after"], Value::Null);
    let tokens = [
        &first["sessions"][0],
        &first["sessions"][1],
        &rest["sessions"][0],
    ]
    .iter()
    .filter(|session| session["require_token"] == true)
    .count();
    assert_eq!(tokens, 1);

    for (query, field, reason) in [
        ("?limit=0", "limit", "must be a whole number from 1 to 1000"),
        (
            "?after=x",
            "after",
            "must be the next_after of an earlier answer",
        ),
        (
            "?page=2",
            "page",
            "unknown parameter; expected limit, after, name, label, server, owner",
        ),
        ("?limit=2&limit=3", "limit", "is given twice"),
        (
            "?label=team",
            "label",
            "must be key=value, as in label=team=platform",
        ),
        (
            "?label=te%20am=x",
            "label",
            "\"te am=x\" is no label key: use 1 to 63 letters, digits and . _ - /, starting with a letter or digit",
        ),
        (
            "?label=team=a%22b",
            "label",
            "\"team=a\\\"b\" is no label value: use 0 to 63 letters, digits and . _ - / : @",
        ),
        ("?name=%01x", "name", "must not hold control characters"),
    ]
    .map(|(query, field, reason)| (query.to_owned(), field, reason.to_owned()))
    .into_iter()
    .chain([(
        format!("?{}", vec!["label=k=v"; 17].join("&")),
        "label",
        "is given 17 times; at most 16".to_owned(),
    )]) {
        let (status, body) = list(query.clone()).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("JSON"),
            json!({ "error": "bad_request", "field": field, "message": format!("{field}: {reason}") }),
            "{query}"
        );
    }
}
