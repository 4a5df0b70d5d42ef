//! `GET /openapi.json` against the routes the gateway really serves, the
//! answers it really gives, and Swagger UI at `/docs/`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix_web::ResponseError;
use mcp_mux::mux::MuxError;
use mcp_mux::routes::{ApiError, Route, RouteKind};
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

/// The session id of the document's examples.
const EXAMPLE_ID: &str = "0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61";

/// `pattern` with its parameters filled in.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id}", EXAMPLE_ID)
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

/// The operations of the document: method, path and the operation.
fn operations(document: &Value) -> Vec<(&str, &str, &Value)> {
    entries(&document["paths"])
        .flat_map(|(path, item)| {
            entries(item)
                .map(move |(method, operation)| (method.as_str(), path.as_str(), operation))
        })
        .collect()
}

/// The entries of a JSON object; none of anything else.
fn entries(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flatten()
}

/// The items of a JSON array; none of anything else.
fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

#[tokio::test]
async fn every_operation_has_an_operation_id_of_its_own_that_says_what_it_does() {
    let app = spawn_app(UNUSED_REGISTRY).await;
    let document = document(&app).await;
    let mut seen = BTreeMap::new();
    for (method, path, operation) in operations(&document) {
        let name = format!("{method} {path}");
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no operationId"));
        // A verb and what it acts on, in snake case: `list_sessions`, not `list`.
        let words: Vec<&str> = id.split('_').collect();
        assert!(
            words.len() >= 2
                && words
                    .iter()
                    .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase())),
            "{name}: operationId {id:?} is not a verb and an object in snake case"
        );
        if let Some(other) = seen.insert(id.to_owned(), name.clone()) {
            panic!("{name} and {other} share the operationId {id:?}");
        }
    }
    for (id, operation) in [
        ("create_session", "post /create-session"),
        ("list_sessions", "get /sessions"),
        ("delete_session", "delete /session/{id}"),
        ("list_session_tools", "get /session/{id}/tools"),
        ("call_session_tool", "post /session/{id}/tools/{name}"),
        ("send_mcp_message", "post /session/{id}/mcp"),
    ] {
        assert_eq!(seen[id], operation, "{id}");
    }
    app.stop().await;
}

/// An example the document gives, the schema it must fit, and where.
struct Example<'a> {
    at: String,
    schema: &'a Value,
    value: &'a Value,
}

/// Every example in the document: those of parameters, headers, request
/// bodies and answers, and those of schemas at any depth.
fn examples(document: &Value) -> Vec<Example<'_>> {
    // A component of another kind would hold examples this walk misses.
    for (kind, _) in entries(&document["components"]) {
        assert!(
            ["schemas", "securitySchemes"].contains(&kind.as_str()),
            "components.{kind} is not searched for examples"
        );
    }
    let mut found = Vec::new();
    for (method, path, operation) in operations(document) {
        let at = format!("{method} {path}");
        for (index, parameter) in items(&operation["parameters"]).enumerate() {
            examples_beside_a_schema(&format!("{at} parameters[{index}]"), parameter, &mut found);
        }
        for (media, content) in entries(&operation["requestBody"]["content"]) {
            examples_beside_a_schema(&format!("{at} body {media}"), content, &mut found);
        }
        for (status, response) in entries(&operation["responses"]) {
            for (media, content) in entries(&response["content"]) {
                examples_beside_a_schema(&format!("{at} {status} {media}"), content, &mut found);
            }
            for (name, header) in entries(&response["headers"]) {
                examples_beside_a_schema(
                    &format!("{at} {status} header {name}"),
                    header,
                    &mut found,
                );
            }
        }
    }
    for (name, schema) in entries(&document["components"]["schemas"]) {
        schema_examples(&format!("schema {name}"), schema, &mut found);
    }
    found
}

/// The examples of a parameter, header or media type (`example`, or named
/// `examples` with a `value` each), and those of its schema.
fn examples_beside_a_schema<'a>(at: &str, holder: &'a Value, found: &mut Vec<Example<'a>>) {
    let schema = &holder["schema"];
    if let Some(value) = holder.get("example") {
        found.push(Example {
            at: at.to_owned(),
            schema,
            value,
        });
    }
    for (name, example) in entries(&holder["examples"]) {
        found.push(Example {
            at: format!("{at} {name}"),
            schema,
            value: &example["value"],
        });
    }
    schema_examples(&format!("{at} schema"), schema, found);
}

/// The examples of a schema (`examples`, or the older `example`) and of
/// every schema within it.
fn schema_examples<'a>(at: &str, schema: &'a Value, found: &mut Vec<Example<'a>>) {
    for value in items(&schema["examples"]).chain(schema.get("example")) {
        found.push(Example {
            at: at.to_owned(),
            schema,
            value,
        });
    }
    for key in [
        "properties",
        "patternProperties",
        "$defs",
        "dependentSchemas",
    ] {
        for (name, inner) in entries(&schema[key]) {
            schema_examples(&format!("{at}.{key}.{name}"), inner, found);
        }
    }
    for key in ["allOf", "anyOf", "oneOf", "prefixItems"] {
        for (index, inner) in items(&schema[key]).enumerate() {
            schema_examples(&format!("{at}.{key}[{index}]"), inner, found);
        }
    }
    for key in [
        "items",
        "additionalProperties",
        "propertyNames",
        "contains",
        "not",
        "if",
        "then",
        "else",
        "unevaluatedItems",
        "unevaluatedProperties",
    ] {
        if schema[key].is_object() {
            schema_examples(&format!("{at}.{key}"), &schema[key], found);
        }
    }
}

/// Why `value` does not fit `schema`, if it does not: `schema` is checked
/// as JSON Schema 2020-12 (OpenAPI 3.1's), formats included, with the
/// document's components beside it so that its `$ref`s resolve.
fn misfits(document: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let root = json!({ "components": document["components"], "allOf": [schema] });
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|error| panic!("{schema} is not a schema: {error}"));
    validator
        .iter_errors(value)
        .map(|error| format!("{error} (at {:?})", error.instance_path().as_str()))
        .collect()
}

#[tokio::test]
async fn every_example_in_the_document_fits_its_schema() {
    let app = spawn_app(UNUSED_REGISTRY).await;
    let document = document(&app).await;
    let examples = examples(&document);
    let wrong: Vec<String> = examples
        .iter()
        .filter_map(|example| {
            let misfits = misfits(&document, example.schema, example.value);
            (!misfits.is_empty()).then(|| {
                format!(
                    "{}: {} does not fit: {}",
                    example.at,
                    example.value,
                    misfits.join("; ")
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The walk finds the examples of each place that has them.
    let places: BTreeSet<&str> = examples.iter().map(|example| example.at.as_str()).collect();
    for place in [
        "post /create-session body application/json basic",
        "post /create-session body application/json with_a_credential",
        "post /session/{id}/tools/{name} body application/json",
        "post /session/{id}/tools/{name} parameters[1]",
        "get /session/{id} 404 application/json",
        "get /session/{id}/mcp 405 application/json",
        "schema ItemRulesShape",
        "schema SessionCreated.properties.status",
    ] {
        assert!(places.contains(place), "no example at {place}");
    }
    // A check that catches a misfit, through a `$ref`.
    let error_body = json!({ "$ref": "#/components/schemas/ErrorBody" });
    assert!(!misfits(&document, &error_body, &json!({ "error": "not_found" })).is_empty());
    app.stop().await;
}

/// The status each kind of refusal is answered with, as `ApiError` gives it.
fn status_of_each_kind() -> BTreeMap<&'static str, u16> {
    [
        ApiError::bad_request("field", "is wrong"),
        ApiError::NotFound {
            message: String::new(),
        },
        ApiError::Unauthorized {
            challenge: "Bearer".into(),
            message: "".into(),
        },
        ApiError::InsufficientScope {
            challenge: String::new(),
            message: String::new(),
        },
        ApiError::IssuerUnavailable {
            message: String::new(),
        },
        ApiError::Forbidden { reason: "" },
        ApiError::MethodNotAllowed { allow: "GET" },
        ApiError::PayloadTooLarge { limit: 1 },
        ApiError::RequestTimeout {
            timeout: Duration::from_secs(1),
        },
        ApiError::Unavailable {
            source: MuxError::SessionEnded,
        },
        ApiError::Internal {
            source: MuxError::SessionEnded,
        },
        ApiError::ShuttingDown,
        ApiError::AtCapacity {
            message: String::new(),
        },
        ApiError::ConnectionShare {
            message: String::new(),
        },
        ApiError::TooManyRequests {
            retry_after: 1,
            what: "",
        },
    ]
    .iter()
    .map(|error| (error.kind(), error.status_code().as_u16()))
    .collect()
}

#[tokio::test]
async fn every_json_refusal_has_an_example_of_its_own_kind() {
    let app = spawn_app(UNUSED_REGISTRY).await;
    let document = document(&app).await;
    let status_of = status_of_each_kind();
    for (method, path, operation) in operations(&document) {
        // Each refusal of an operation shows its own example.
        let mut shown = BTreeMap::new();
        for (status, response) in entries(&operation["responses"]) {
            let Some(content) = response["content"].get("application/json") else {
                continue;
            };
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let at = format!("{method} {path} {status}");
            let example = content
                .get("example")
                .unwrap_or_else(|| panic!("{at} has no example"));
            if let Some(other) = shown.insert(example.to_string(), status) {
                panic!("{at} shows the example of its {other}: {example}");
            }
            // An error body's kind is one answered with this status.
            if let Some(kind) = example["error"].as_str()
                && let Some(wanted) = status_of.get(kind)
            {
                assert_eq!(wanted.to_string(), *status, "{at}: {example}");
            }
        }
    }
    app.stop().await;
}

/// The example of `method path`'s answer `status`.
fn documented(document: &Value, method: &str, path: &str, status: u16) -> Value {
    document["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["example"]
        .clone()
}

#[tokio::test]
async fn the_documented_refusals_are_the_answers_the_gateway_gives() {
    const ADMIN_TOKEN: &str = "an-admin-token-of-thirty-two-chars";
    let mut options = AppOptions::new(UNUSED_REGISTRY);
    options.admin_token = Some(ADMIN_TOKEN.into());
    let app = spawn_app_with(options).await.expect("gateway starts");
    let document = document(&app).await;
    let session = app
        .http
        .post(format!("{}/create-session", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "servers": ["alpha"], "require_token": true }))
        .send()
        .await
        .expect("answer");
    assert_eq!(session.status(), 201);
    let session: Value = session.json().await.expect("JSON");
    let (id, token) = (&session["session_id"], &session["session_token"]);
    let (id, token) = (id.as_str().expect("id"), token.as_str().expect("token"));

    let admin = |request: reqwest::RequestBuilder| request.bearer_auth(ADMIN_TOKEN);
    let session_token = |request: reqwest::RequestBuilder| request.bearer_auth(token);
    let none = |request: reqwest::RequestBuilder| request;
    let url = |path: &str| format!("{}{path}", app.address);
    let asked: Vec<(&str, &str, String, reqwest::RequestBuilder)> = vec![
        (
            "get",
            "/registry",
            url("/registry"),
            app.http.get(url("/registry")),
        ),
        (
            "get",
            "/registry",
            url("/registry?access_token=x"),
            admin(app.http.get(url("/registry?access_token=x"))),
        ),
        (
            "get",
            "/registry",
            url("/registry"),
            admin(
                app.http
                    .get(url("/registry"))
                    .header("origin", "https://elsewhere.example"),
            ),
        ),
        (
            "get",
            "/sessions",
            url("/sessions?label=team"),
            admin(app.http.get(url("/sessions?label=team"))),
        ),
        (
            "get",
            "/session/{id}",
            url(&format!("/session/{EXAMPLE_ID}")),
            admin(app.http.get(url(&format!("/session/{EXAMPLE_ID}")))),
        ),
        (
            "delete",
            "/session/{id}",
            url(&format!("/session/{EXAMPLE_ID}")),
            admin(app.http.delete(url(&format!("/session/{EXAMPLE_ID}")))),
        ),
        (
            "get",
            "/session/{id}/tools",
            url(&format!("/session/{id}/tools")),
            none(app.http.get(url(&format!("/session/{id}/tools")))),
        ),
        (
            "post",
            "/session/{id}/mcp",
            url(&format!("/session/{id}/mcp")),
            none(
                app.http
                    .post(url(&format!("/session/{id}/mcp")))
                    .json(&json!({})),
            ),
        ),
        (
            "get",
            "/session/{id}/mcp",
            url(&format!("/session/{id}/mcp")),
            session_token(app.http.get(url(&format!("/session/{id}/mcp")))),
        ),
        (
            "get",
            "/session/{id}/mcp",
            url(&format!("/session/{id}/mcp")),
            session_token(
                app.http
                    .get(url(&format!("/session/{id}/mcp")))
                    .header("mcp-session-id", "ended"),
            ),
        ),
        (
            "delete",
            "/session/{id}/mcp",
            url(&format!("/session/{id}/mcp")),
            session_token(app.http.delete(url(&format!("/session/{id}/mcp")))),
        ),
        (
            "get",
            "/docs/{file}",
            url("/docs/nothing.js"),
            app.http.get(url("/docs/nothing.js")),
        ),
        (
            "get",
            "/.well-known/oauth-protected-resource",
            url("/.well-known/oauth-protected-resource"),
            app.http.get(url("/.well-known/oauth-protected-resource")),
        ),
        (
            "get",
            "/oauth/client-metadata.json",
            url("/oauth/client-metadata.json"),
            app.http.get(url("/oauth/client-metadata.json")),
        ),
    ];
    for (method, path, url, request) in asked {
        let response = request.send().await.expect("answer");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(
            answer,
            documented(&document, method, path, status),
            "{method} {url} answered {status}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_create_session_examples_create_sessions_on_the_shipped_registry() {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/registry.yaml"))
        .expect("registry.yaml");
    let app = spawn_app(&shipped).await;
    let document = document(&app).await;
    let examples = &document["paths"]["/create-session"]["post"]["requestBody"]["content"]["application/json"]
        ["examples"];
    // Swagger UI fills the body in with the first.
    let names: Vec<&String> = entries(examples).map(|(name, _)| name).collect();
    assert_eq!(names.first().map(|name| name.as_str()), Some("basic"));
    for (name, example) in entries(examples) {
        let response = app.post_create_session(&example["value"]).await;
        let status = response.status();
        let body = response.text().await.expect("body");
        assert_eq!(status, 201, "the example {name:?}: {body}");
    }
    app.stop().await;
}
