//! `GET /openapi.json`: the HTTP API as an OpenAPI 3.1 document, made from
//! the handlers' annotations and the types their answers serialize, so it
//! follows the code. `GET /docs/`: Swagger UI over it, from files built into
//! the binary (it works offline).
//!
//! What every route of a kind may answer before its handler runs (the
//! admin or session token, Host and Origin, shutdown) is added here from
//! [`Route::ALL`], the list the router mounts, in one place.

use std::sync::{Arc, OnceLock};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError, web};
use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::access::admin_token_missing;
use super::authorization;
use super::error::{ApiError, ErrorBody};
use super::health;
use super::mcp;
use super::metrics;
use super::registry;
use super::route::{Route, RouteKind};
use super::session_access::session_token_missing;
use super::sessions;
use super::sign_in::{self, query_token_refused};
use super::tools;
use super::ui;
use super::ui::logins::COOKIE;
use crate::mcp::jsonrpc::{INTERNAL_ERROR, INVALID_REQUEST};

const ADMIN_TOKEN: &str = "admin_token";
const SESSION_TOKEN: &str = "session_token";
const SIGN_IN: &str = "oauth_access_token";
const CONSOLE_LOGIN: &str = "console_login";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mcp-mux",
        description = "A per-session MCP multiplexer. `POST /create-session` chooses servers from the registry and stores the client's credentials for them; the answer's `mcp_url` is an MCP server (Streamable HTTP) over all of them."
    ),
    paths(
        sessions::create_session,
        sessions::list_sessions,
        sessions::get_session,
        sessions::delete_session,
        sessions::get_audit,
        tools::list,
        tools::call,
        authorization::authorize,
        authorization::callback,
        authorization::client_metadata,
        sign_in::gateway_metadata,
        sign_in::gateway_metadata_preflight,
        sign_in::session_metadata,
        sign_in::session_metadata_preflight,
        registry::list_servers,
        registry::reload,
        mcp::post,
        mcp::get,
        mcp::delete,
        health::healthz,
        health::readyz,
        metrics::metrics,
        document,
        docs_index,
        docs_file,
        ui::sessions::list,
        ui::sessions::show,
        ui::sessions::confirm_delete,
        ui::sessions::delete,
        ui::try_tool::call,
        ui::create::form,
        ui::create::submit,
        ui::registry::list,
        ui::login::form,
        ui::login::submit,
        ui::login::log_out,
    ),
    components(schemas(
        ErrorBody,
        mcp::document::Answer,
        sign_in::ResourceMetadata,
        tools::ToolArguments
    )),
    modifiers(&GuardAnswers),
    tags(
        (name = "sessions", description = "Create, list, show and delete sessions; the registry they choose from"),
        (name = "mcp", description = "A session's MCP endpoint (Streamable HTTP)"),
        (name = "tools", description = "A session's tools over plain HTTP, for scripts"),
        (name = "authorization", description = "The pages a session's user opens to connect an OAuth backend"),
        (name = "sign-in", description = "Protected Resource Metadata (RFC 9728): where hosts sign in for a session URL or the management API"),
        (name = "probes", description = "Liveness and readiness"),
        (name = "operations", description = "Metrics and this document"),
        (name = "console", description = "The operators' console, in HTML"),
    )
)]
struct ApiDoc;

/// The document, made once.
fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|error| format!(r#"{{"error":"{error}"}}"#))
    })
}

/// The API as an OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "get_openapi_document",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi_json())
}

/// Swagger UI lives under `/docs/`, where its files' relative links resolve.
#[utoipa::path(get, path = "/docs", tag = "operations", operation_id = "redirect_to_docs",
    responses((status = 308, description = "To `/docs/`", headers(("Location" = String)))))]
pub async fn docs_index() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "docs/"))
        .finish()
}

/// Swagger UI over this document: its page (an empty `file`), scripts and
/// styles.
#[utoipa::path(get, path = "/docs/{file}", tag = "operations", operation_id = "get_docs_file",
    params(("file" = String, Path, description = "A file of Swagger UI; empty for its page")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/html"),
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "image/png"),
        )),
        (status = 404, description = "No such file", body = ErrorBody,
            example = json!({"error": "not_found", "message": "no such file of Swagger UI"})),
    ))]
pub async fn docs_file(file: web::Path<String>) -> HttpResponse {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    // Relative to the page, so it holds behind a proxy's path prefix too.
    let config =
        CONFIG.get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from("../openapi.json")));
    match utoipa_swagger_ui::serve(&file, Arc::clone(config)) {
        Ok(Some(file)) => HttpResponse::Ok()
            .content_type(file.content_type)
            .body(file.bytes.into_owned()),
        Ok(None) => ApiError::NotFound {
            message: "no such file of Swagger UI".into(),
        }
        .error_response(),
        // Only its settings script is made at run time.
        Err(error) => {
            tracing::error!(%error, "Swagger UI could not be served");
            HttpResponse::InternalServerError().json(ErrorBody::internal())
        }
    }
}

/// Adds the two token schemes, and to each route what its guard may answer
/// before the handler runs.
struct GuardAnswers;

impl Modify for GuardAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_TOKEN,
            bearer("The gateway's admin token (`MCP_MUX_ADMIN_TOKEN`), when it has one: without one, management routes are open to loopback clients"),
        );
        components.add_security_scheme(
            CONSOLE_LOGIN,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE,
                "A console login, set by `POST /ui/login`",
            ))),
        );
        components.add_security_scheme(
            SESSION_TOKEN,
            bearer("A session's token, shown once when it was created with `require_token`"),
        );
        components.add_security_scheme(
            SIGN_IN,
            bearer("An OAuth access token from one of the gateway's `--oauth-issuer`s: for a session created with `\"access\": \"oauth\"`, its owner's, issued for the session URL; on the management routes a user may call, one issued for the gateway with `--oauth-sessions-scope`"),
        );
        for route in Route::ALL {
            let Some(item) = openapi.paths.paths.get_mut(route.pattern()) else {
                continue;
            };
            for operation in operations(item) {
                guard_answers(route.kind(), operation);
            }
        }
    }
}

fn bearer(description: &str) -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(description))
            .build(),
    )
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.put.as_mut(),
        item.patch.as_mut(),
        item.options.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// How a route of `kind` answers a refusal with `body`, as the example its
/// documentation shows: JSON-RPC on the MCP endpoint, the body itself on
/// the other JSON routes, and no example of a page.
fn refusal_example(kind: RouteKind, status: StatusCode, body: ErrorBody) -> Option<Value> {
    match kind {
        // As `mcp::answer::Refusal` makes them.
        RouteKind::Mcp => Some(json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {
                "code": if status.is_server_error() { INTERNAL_ERROR } else { INVALID_REQUEST },
                "message": body.message,
            },
        })),
        RouteKind::Public
        | RouteKind::Metadata
        | RouteKind::Management
        | RouteKind::SessionTools => serde_json::to_value(body).ok(),
        RouteKind::Console | RouteKind::ConsoleLogin | RouteKind::Authorization => None,
    }
}

/// What the guard of `kind` may answer, and the token it takes.
fn guard_answers(kind: RouteKind, operation: &mut Operation) {
    // The MCP endpoint refuses with JSON-RPC errors, the console with
    // pages, the others with JSON.
    let (content_type, body) = match kind {
        RouteKind::Mcp => ("application/json", Ref::from_schema_name("Answer").into()),
        RouteKind::Public
        | RouteKind::Metadata
        | RouteKind::Management
        | RouteKind::SessionTools => (
            "application/json",
            Ref::from_schema_name("ErrorBody").into(),
        ),
        RouteKind::Console | RouteKind::ConsoleLogin | RouteKind::Authorization => (
            "text/html",
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .into(),
        ),
    };
    let body: utoipa::openapi::RefOr<utoipa::openapi::Schema> = body;
    let mut add = |status: StatusCode,
                   description: &str,
                   header: Option<(&str, &str)>,
                   refusal: Option<ErrorBody>| {
        let mut response = ResponseBuilder::new().description(description).content(
            content_type,
            ContentBuilder::new()
                .schema(Some(body.clone()))
                .example(refusal.and_then(|refusal| refusal_example(kind, status, refusal)))
                .build(),
        );
        if let Some((name, description)) = header {
            response = response.header(
                name,
                HeaderBuilder::new().description(Some(description)).build(),
            );
        }
        operation
            .responses
            .responses
            .entry(status.as_str().to_owned())
            .or_insert_with(|| response.build().into());
    };
    let forbidden = match kind {
        RouteKind::Console | RouteKind::ConsoleLogin => {
            "The `Host` or `Origin` is not allowed; or a form is not from the console's own origin, or lacks its form token"
        }
        RouteKind::Metadata => "The `Host` is not allowed",
        RouteKind::Public | RouteKind::Authorization => "The `Host` or `Origin` is not allowed",
        RouteKind::Management | RouteKind::Mcp | RouteKind::SessionTools => {
            "The `Host` or `Origin` is not allowed; or a signed-in caller's token lacks scopes (`insufficient_scope`, with `WWW-Authenticate` naming them)"
        }
    };
    let host_or_origin = match kind {
        RouteKind::Metadata => "Host not allowed",
        _ => "Origin not allowed",
    };
    add(
        StatusCode::FORBIDDEN,
        forbidden,
        None,
        Some(
            ApiError::Forbidden {
                reason: host_or_origin,
            }
            .body(),
        ),
    );
    if !matches!(kind, RouteKind::Metadata) {
        add(
            StatusCode::BAD_REQUEST,
            "A token in the query string (`access_token`): tokens go in `Authorization` only",
            None,
            Some(query_token_refused().body()),
        );
    }
    if matches!(
        kind,
        RouteKind::Management | RouteKind::Console | RouteKind::ConsoleLogin
    ) {
        add(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong admin tokens from this address: no token of it is looked at until the wait is over",
            Some(("Retry-After", "Seconds to wait")),
            Some(
                ApiError::TooManyRequests {
                    retry_after: 30,
                    what: "wrong admin tokens from this address",
                }
                .body(),
            ),
        );
    }
    let token_missing = match kind {
        RouteKind::Public
        | RouteKind::Metadata
        | RouteKind::ConsoleLogin
        | RouteKind::Authorization => None,
        RouteKind::Management => Some((
            "The admin token (or a signed-in user's token, where one is taken) is missing or wrong",
            Some(admin_token_missing()),
        )),
        // A page: no example.
        RouteKind::Console => Some((
            "No admin token and no console login, when the gateway has an admin token",
            None,
        )),
        RouteKind::Mcp | RouteKind::SessionTools => Some((
            "The session requires its token, or its owner's OAuth access token (then `WWW-Authenticate` names its `resource_metadata`), and it is missing or wrong",
            Some(session_token_missing()),
        )),
    };
    if let Some((description, refusal)) = token_missing {
        add(
            StatusCode::UNAUTHORIZED,
            description,
            Some(("WWW-Authenticate", "Which token is wanted")),
            refusal.map(|refusal| refusal.body()),
        );
    }
    if !matches!(kind, RouteKind::Public | RouteKind::Metadata) {
        add(
            StatusCode::SERVICE_UNAVAILABLE,
            "The gateway is stopping, full, or its database does not answer",
            Some(("Retry-After", "Seconds to wait")),
            Some(ApiError::ShuttingDown.body()),
        );
        add(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error; the gateway log has its cause",
            None,
            Some(ErrorBody::internal()),
        );
    }
    let token = |name: &str| SecurityRequirement::new(name, Vec::<String>::new());
    operation.security = match kind {
        RouteKind::Public
        | RouteKind::Metadata
        | RouteKind::ConsoleLogin
        | RouteKind::Authorization => None,
        RouteKind::Management => Some(vec![token(ADMIN_TOKEN), token(SIGN_IN)]),
        RouteKind::Console => Some(vec![token(ADMIN_TOKEN), token(CONSOLE_LOGIN)]),
        // Only a session created with `require_token` takes one.
        RouteKind::Mcp | RouteKind::SessionTools => Some(vec![
            SecurityRequirement::default(),
            token(SESSION_TOKEN),
            token(SIGN_IN),
        ]),
    };
}
