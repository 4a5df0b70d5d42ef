//! `GET /openapi.json` against the routes the gateway really serves, the
//! answers it really gives, and Swagger UI at `/docs/`.

use std::collections::BTreeSet;

use mcp_mux::routes::{Route, RouteKind};
use serde_json::{Value, json};

use crate::helpers::*;

/// A registry whose one backend these tests never reach.
const UNUSED_REGISTRY: &str = "servers:\n  alpha:\n    url: http://127.0.0.1:9/mcp\n";

async fn document(app: &TestApp) -> Value {
    let response = app
        .http
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("JSON")
}

/// `pattern` with its parameters filled in.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id}", "0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61")
        .replace("{file}", "index.html")
        .replace("{rest}", "no/such/page")
        .replace("{name}", "alpha__echo")
}

#[tokio::test]
async fn every_route_the_gateway_serves_is_in_the_document_and_no_other() {
    let app = spawn_app(UNUSED_REGISTRY).await;
    let document = document(&app).await;
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| (path.clone(), method.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = Route::ALL
        .iter()
        .flat_map(|route| {
            route
                .methods()
                .map(|method| (route.pattern().to_owned(), method.to_owned()))
        })
        .collect();
    assert_eq!(documented, served);

    // The list is what the router mounts: each route answers its methods
    // with its own handler, and any other method with a 405 naming them.
    for route in Route::ALL {
        let url = format!("{}{}", app.address, concrete(route.pattern()));
        for method in route.methods() {
            let response = app
                .http
                .request(method.parse().expect("method"), &url)
                .header("origin", &app.address)
                .send()
                .await
                .expect("answer");
            let status = response.status();
            let body = response.text().await.expect("body");
            assert_ne!(status, 405, "{method} {url}: {body}");
            assert!(!body.contains("no such route"), "{method} {url}: {body}");
        }
        let response = app
            .http
            .put(&url)
            .header("origin", &app.address)
            .send()
            .await
            .expect("answer");
        if route.allow().is_empty() {
            // The console's catch-all answers no method of its own.
            assert_eq!(response.status(), 404, "PUT {url}");
            continue;
        }
        assert_eq!(response.status(), 405, "PUT {url}");
        assert_eq!(response.headers()["allow"], route.allow(), "PUT {url}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_token_each_route_takes() {
    let app = spawn_app(UNUSED_REGISTRY).await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemes = &document["components"]["securitySchemes"];
    for name in ["admin_token", "session_token", "oauth_access_token"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    for route in Route::ALL {
        for method in route.methods() {
            let operation = &document["paths"][route.pattern()][method.to_lowercase()];
            let (security, refusals): (Value, &[&str]) = match route.kind() {
                RouteKind::Public | RouteKind::Metadata => (Value::Null, &["403"]),
                RouteKind::Management => (
                    json!([{ "admin_token": [] }, { "oauth_access_token": [] }]),
                    &["400", "401", "403", "500", "503"],
                ),
                RouteKind::Mcp | RouteKind::SessionTools => (
                    json!([{}, { "session_token": [] }, { "oauth_access_token": [] }]),
                    &["400", "401", "403", "500", "503"],
                ),
                RouteKind::Console => (
                    json!([{ "admin_token": [] }, { "console_login": [] }]),
                    &["401", "403", "500", "503"],
                ),
                RouteKind::ConsoleLogin | RouteKind::Authorization => {
                    (Value::Null, &["403", "500", "503"])
                }
            };
            let name = format!("{method} {}", route.pattern());
            assert_eq!(operation["security"], security, "{name}");
            for status in refusals {
                assert!(
                    operation["responses"][status].is_object(),
                    "{name} documents no {status}"
                );
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_documented_create_session_fields_are_the_ones_it_takes() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let document = document(&app).await;
    let documented: BTreeSet<&str> =
        document["components"]["schemas"]["CreateSessionRequest"]["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
    let response = app
        .post_create_session(&json!({ "servers": ["alpha"], "colour": "red" }))
        .await;
    assert_eq!(response.status(), 400);
    let refused: Value = response.json().await.expect("JSON");
    let message = refused["message"].as_str().expect("message");
    let taken: BTreeSet<&str> = message
        .strip_prefix("colour: unknown field; expected ")
        .expect("the unknown-field message")
        .split(", ")
        .collect();
    assert_eq!(documented, taken);
    app.stop().await;
}

/// Checks that `value` has every field `schema` requires and none it does
/// not name, through `$ref`s, arrays and nested objects.
fn assert_fits(document: &Value, schema: &Value, value: &Value, at: &str) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return assert_fits(
            document,
            &document["components"]["schemas"][name],
            value,
            at,
        );
    }
    for alternative in ["oneOf", "anyOf"] {
        if let Some(options) = schema[alternative].as_array() {
            if value.is_null() {
                return;
            }
            let option = options
                .iter()
                .find(|option| option["type"] != "null")
                .expect("a non-null alternative");
            return assert_fits(document, option, value, at);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("{at}: {value} is not an object"));
        for key in object.keys() {
            assert!(properties.contains_key(key), "{at}.{key} is not documented");
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().expect("name");
            assert!(
                object.contains_key(key),
                "{at}.{key} is required but absent"
            );
        }
        for (key, field) in object {
            assert_fits(document, &properties[key], field, &format!("{at}.{key}"));
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            assert_fits(document, items, item, &format!("{at}[{index}]"));
        }
    }
}

/// The schema of the answer `status` to `method path` with JSON.
fn answer_schema<'a>(document: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    &document["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"]
}

#[tokio::test]
async fn the_answers_carry_the_documented_fields() {
    let backend = spawn_rmcp_backend("alpha", None).await;
    let app = spawn_app(&registry_yaml(&[("alpha", &backend.url, "")])).await;
    let document = document(&app).await;
    let check = |method: &str, path: &str, status: u16, value: &Value| {
        let schema = answer_schema(&document, method, path, status);
        assert!(schema.is_object(), "{method} {path} documents no {status}");
        assert_fits(
            &document,
            schema,
            value,
            &format!("{method} {path} {status}"),
        );
    };

    let response = app
        .post_create_session(
            &json!({ "servers": ["alpha"], "require_token": true, "ttl_seconds": 600 }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("JSON");
    check("post", "/create-session", 201, &created);
    let id = created["session_id"].as_str().expect("id").to_owned();
    let token = created["session_token"].as_str().expect("token").to_owned();

    let mut mcp = RawMcp::new(app.mcp_url(&id));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    mcp.http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client");
    mcp.initialize("2025-11-25").await;
    mcp.call_tool("alpha__echo", json!({ "text": "hi" })).await;

    let get = |path: String| {
        let http = app.http.clone();
        let url = format!("{}{path}", app.address);
        async move {
            let response = http.get(url).send().await.expect("answer");
            (
                response.status().as_u16(),
                response.json::<Value>().await.expect("JSON"),
            )
        }
    };
    let (status, shown) = get(format!("/session/{id}")).await;
    check("get", "/session/{id}", status, &shown);
    assert_eq!(status, 200);
    let (status, listed) = get("/sessions".into()).await;
    assert_eq!(status, 200);
    check("get", "/sessions", status, &listed);
    let audit = eventually(|| {
        let get = get(format!("/session/{id}/audit"));
        async move {
            let (_, audit) = get.await;
            audit["records"]
                .as_array()
                .is_some_and(|records| !records.is_empty())
        }
    })
    .await;
    assert!(audit, "the call was audited");
    let (status, audit) = get(format!("/session/{id}/audit")).await;
    check("get", "/session/{id}/audit", status, &audit);
    let (status, registry) = get("/registry".into()).await;
    check("get", "/registry", status, &registry);
    let (status, health) = get("/healthz".into()).await;
    check("get", "/healthz", status, &health);
    let (status, ready) = get("/readyz".into()).await;
    check("get", "/readyz", status, &ready);
    let (status, refused) = get("/sessions?limit=0".into()).await;
    assert_eq!(status, 400);
    check("get", "/sessions", status, &refused);
    let (status, unknown) = get("/session/0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61".into()).await;
    assert_eq!(status, 404);
    check("get", "/session/{id}", status, &unknown);

    let response = mcp
        .post(&json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/list" }))
        .await;
    assert_eq!(response.status(), 200);
    let answer = read_message(response).await;
    check("post", "/session/{id}/mcp", 200, &answer);
    let refused = app
        .http
        .post(app.mcp_url(&id))
        .header("authorization", format!("Bearer {token}"))
        .body("{")
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 400);
    check(
        "post",
        "/session/{id}/mcp",
        400,
        &refused.json().await.expect("JSON"),
    );

    let deleted = app
        .http
        .delete(format!("{}/session/{id}", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(deleted.status(), 200);
    check(
        "delete",
        "/session/{id}",
        200,
        &deleted.json().await.expect("JSON"),
    );
    app.stop().await;
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app(UNUSED_REGISTRY).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = http
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "docs/");

    let page = http
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html");
    assert!(page.text().await.expect("text").contains("swagger-ui"));
    let settings = http
        .get(format!("{}/docs/swagger-initializer.js", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(settings.status(), 200);
    assert!(
        settings
            .text()
            .await
            .expect("text")
            .contains(r#""url": "../openapi.json""#)
    );

    let missing = http
        .get(format!("{}/docs/nothing.js", app.address))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.expect("JSON"),
        json!({ "error": "not_found", "message": "no such file of Swagger UI" })
    );
    app.stop().await;
}
