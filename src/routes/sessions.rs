//! `POST /create-session`, `GET /sessions`, `GET /session/<id>`,
//! `DELETE /session/<id>` and `GET /session/<id>/audit`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::access::{Access, new_session_token, token_digest};
use super::body::{read_limited, refuse_unread};
use super::client_configs::client_configs;
use super::error::{ApiError, quoted};
use super::rate_limit::check_create_session_rate;
use super::session_id::{SessionPath, mcp_endpoint, short_id};
use crate::credentials::{Credentials, header_value_problem};
use crate::mcp::nesting;
use crate::mux::{CircuitState, Mux, NewSession, PrefixMode, Session};
use crate::registry::Registry;

/// A create-session body is a list of names and a few tokens.
const CREATE_SESSION_BODY_LIMIT: usize = 64 * 1024;
/// Longest lifetime a session may ask for with `ttl_seconds`: a year.
const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;

/// Most requests a second a session's creator may set with `rate_limit`.
const MAX_RATE_LIMIT: u64 = 1_000_000;

/// A valid create-session body.
struct CreateSession {
    /// The session, but for its token's digest.
    session: NewSession,
    /// Whether the MCP endpoint requires a bearer token.
    require_token: bool,
}

pub async fn create_session(
    request: HttpRequest,
    mut payload: web::Payload,
    mux: web::Data<Mux>,
    access: web::Data<Access>,
) -> Result<HttpResponse, ApiError> {
    let body = match read_limited(&request, &mut payload, CREATE_SESSION_BODY_LIMIT).await {
        Ok(body) => body,
        Err(error) => {
            return Ok(refuse_unread(
                ApiError::from(error).error_response(),
                payload,
            ));
        }
    };
    if nesting::exceeds_depth(&body, nesting::MAX_DEPTH) {
        return Err(ApiError::bad_request(
            "body",
            format!(
                "nests arrays and objects deeper than {} levels",
                nesting::MAX_DEPTH
            ),
        ));
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request("body", format!("is not valid JSON ({error})")))?;
    let created = create(&request, value, &mux, &access).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Checks a create-session body, creates the session and answers what
/// `POST /create-session` answers: its URLs, client configurations, and
/// its token, shown this once. The console's form comes here too.
pub(super) async fn create(
    request: &HttpRequest,
    value: Value,
    mux: &Mux,
    access: &Access,
) -> Result<Value, ApiError> {
    let CreateSession {
        mut session,
        require_token,
    } = parse_create_session(value, mux.registry())?;
    check_create_session_rate(request)?;
    let token = require_token.then(new_session_token);
    session.token_digest = token.as_deref().map(token_digest);
    let session = mux.create_session(session).await?;
    tracing::info!(session = %short_id(session.id), servers = session.servers.len(), "session created");
    let endpoint = mcp_endpoint(session.id);
    let url = access.public_url(request, &endpoint);
    let mut created = json!({
        "session_id": session.id,
        "mcp_endpoint": endpoint,
        "mcp_url": url,
        "status": "created",
        "prefix": session.prefix.as_str(),
        "servers": session.servers.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "require_token": token.is_some(),
        "rate_limit": session.rate_limit,
    });
    created["client_configs"] = client_configs(
        &format!("mcp-mux-{}", short_id(session.id)),
        &url,
        token.as_deref(),
    );
    // Shown this once: the store keeps only its digest.
    if let Some(token) = token {
        created["session_token"] = Value::String(token);
    }
    Ok(created)
}

pub async fn get_session(
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    let path = SessionPath::parse(&path)?;
    let session = mux
        .session(path.id)
        .await?
        .ok_or_else(|| path.not_found())?;
    Ok(HttpResponse::Ok().json(describe(&session, &mux)))
}

pub async fn delete_session(
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    let path = SessionPath::parse(&path)?;
    let id = path.id;
    if !mux.delete_session(id).await? {
        return Err(path.not_found());
    }
    tracing::info!(session = %short_id(id), "session deleted");
    Ok(HttpResponse::Ok().json(json!({ "session_id": id, "status": "deleted" })))
}

/// Most sessions one list answer carries.
const MAX_SESSION_PAGE: u64 = 1000;

/// `GET /sessions?limit=N&after=ID`: the stored sessions in id order, never
/// their credentials; `next_after` continues the list.
pub async fn list_sessions(
    query: web::Query<HashMap<String, String>>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    check_parameters(&query, &["limit", "after"])?;
    let limit = page_limit(&query, MAX_SESSION_PAGE)?;
    let after = match query.get("after") {
        None => None,
        Some(text) => Some(Uuid::try_parse(text).map_err(|_| {
            ApiError::bad_request("after", "must be a session id from an earlier answer")
        })?),
    };
    let sessions = mux.list_sessions(limit, after).await?;
    let next_after = (sessions.len() as u64 == limit)
        .then(|| sessions.last().map(|session| session.id))
        .flatten();
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|session| {
            json!({
                "session_id": session.id,
                "mcp_endpoint": mcp_endpoint(session.id),
                "servers": session.servers,
                "created_at": session.created_at,
                "expires_at": session.expires_at,
                "require_token": session.require_token,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions, "next_after": next_after })))
}

/// A list's `limit`: 1 to `max`, 100 when not given.
fn page_limit(query: &HashMap<String, String>, max: u64) -> Result<u64, ApiError> {
    match query.get("limit") {
        None => Ok(100),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|limit| (1..=max).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request("limit", format!("must be a whole number from 1 to {max}"))
            }),
    }
}

/// Refuses a query parameter that is not one of `known`.
fn check_parameters(query: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|key| !known.contains(&key.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(
            unknown.as_str(),
            format!("unknown parameter; expected {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Most audit records one answer carries.
const MAX_AUDIT_PAGE: u64 = 1000;

/// `GET /session/<id>/audit?limit=N&before=ID`: the session's `tools/call`
/// records, newest first; `next_before` continues the list.
pub async fn get_audit(
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    let path = SessionPath::parse(&path)?;
    check_parameters(&query, &["limit", "before"])?;
    let limit = page_limit(&query, MAX_AUDIT_PAGE)?;
    let before = match query.get("before") {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            ApiError::bad_request("before", "must be a record id from an earlier answer")
        })?),
    };
    let session = mux
        .session(path.id)
        .await?
        .ok_or_else(|| path.not_found())?;
    let records = mux.audit_records(&session, limit, before).await?;
    let next_before = (records.len() as u64 == limit)
        .then(|| records.last().map(|record| record.id))
        .flatten();
    let records: Vec<Value> = records
        .iter()
        .map(|record| {
            json!({
                "id": record.id,
                "at": record.at,
                // Enough to tell MCP sessions apart, too little to use one.
                "mcp_session": record.mcp_session_id.get(..8).unwrap_or_default(),
                "backend": record.backend,
                "tool": record.tool,
                "outcome": record.outcome,
                "error_class": record.error_class,
                "duration_ms": record.duration_ms,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "session_id": session.id,
        "records": records,
        "next_before": next_before,
    })))
}

fn describe(session: &Session, mux: &Mux) -> Value {
    json!({
        "session_id": session.id,
        "mcp_endpoint": mcp_endpoint(session.id),
        // A session that can be read is active: a deleted or expired one is gone.
        "status": "active",
        "prefix": session.prefix.as_str(),
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "require_token": session.token_digest.is_some(),
        "rate_limit": session.rate_limit,
        "servers": session.servers.iter().map(|server| (server, mux.backend_health(&server.name))).map(|(server, health)| json!({
            "name": server.name,
            "auth": server.auth.type_name(),
            "circuit": health.as_ref().map(|(circuit, _)| describe_circuit(circuit)),
            "calls_in_progress": health.as_ref().map(|(_, calls)| calls),
        })).collect::<Vec<_>>(),
        "missing_servers": session.missing_servers,
        "mcp_sessions": session.mcp_session_count(),
    })
}

/// A backend's circuit breaker, shared by every session that uses it.
fn describe_circuit(state: &CircuitState) -> Value {
    let (CircuitState::Closed { failures }
    | CircuitState::HalfOpen { failures }
    | CircuitState::Open { failures, .. }) = state;
    let mut shown = json!({ "state": state.name(), "consecutive_failures": failures });
    if let Some(retry_in_ms) = state.retry_in_ms() {
        shown["retry_in_ms"] = json!(retry_in_ms);
    }
    shown
}

/// Checks a create-session body against the registry: every error names the
/// field and the reason, and nothing is stored unless all of it is valid.
fn parse_create_session(value: Value, registry: &Registry) -> Result<CreateSession, ApiError> {
    let Value::Object(mut body) = value else {
        return Err(ApiError::bad_request("body", "must be a JSON object"));
    };
    let servers = parse_servers(body.remove("servers"), registry)?;
    let credentials = match body.remove("credentials") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ApiError::bad_request(
                "credentials",
                "must be an object keyed by server name",
            ));
        }
    };
    let prefix = match body.remove("prefix") {
        None | Some(Value::Null) => PrefixMode::default(),
        Some(value) => value.as_str().and_then(PrefixMode::parse).ok_or_else(|| {
            ApiError::bad_request("prefix", "must be \"always\" or \"when_needed\"")
        })?,
    };
    let ttl = match body.remove("ttl_seconds") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(seconds @ 1..=MAX_TTL_SECONDS) => Some(Duration::from_secs(seconds)),
            _ => {
                return Err(ApiError::bad_request(
                    "ttl_seconds",
                    format!("must be a whole number of seconds from 1 to {MAX_TTL_SECONDS}"),
                ));
            }
        },
    };
    let require_token = match body.remove("require_token") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(required)) => required,
        Some(_) => {
            return Err(ApiError::bad_request(
                "require_token",
                "must be true or false",
            ));
        }
    };
    let rate_limit = match body.remove("rate_limit") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(n @ 1..=MAX_RATE_LIMIT) => u32::try_from(n).ok(),
            _ => {
                return Err(ApiError::bad_request(
                    "rate_limit",
                    format!(
                        "must be a whole number of requests a second from 1 to {MAX_RATE_LIMIT}"
                    ),
                ));
            }
        },
    };
    if let Some(field) = body.keys().next() {
        return Err(ApiError::bad_request(
            field.as_str(),
            "unknown field; expected servers, credentials, prefix, ttl_seconds, require_token, rate_limit",
        ));
    }
    let credentials = parse_credentials(credentials, &servers, registry)?;
    Ok(CreateSession {
        session: NewSession {
            servers,
            credentials,
            prefix,
            ttl,
            token_digest: None,
            rate_limit,
        },
        require_token,
    })
}

fn parse_servers(value: Option<Value>, registry: &Registry) -> Result<Vec<String>, ApiError> {
    let items = match value {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(
                "servers",
                "is required: a list of server names from GET /registry",
            ));
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::bad_request(
                "servers",
                "must be an array of server names",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "servers",
            "must name at least one server",
        ));
    }
    let mut seen = HashSet::new();
    let mut servers = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let field = format!("servers[{index}]");
        let Value::String(name) = item else {
            return Err(ApiError::bad_request(field, "must be a string"));
        };
        if registry.server(&name).is_none() {
            return Err(ApiError::bad_request(
                field,
                format!(
                    "unknown server {}; known: {}",
                    quoted(&name),
                    registry.server_names()
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(ApiError::bad_request(
                field,
                format!("server {} is listed twice", quoted(&name)),
            ));
        }
        servers.push(name);
    }
    Ok(servers)
}

fn parse_credentials(
    mut given: Map<String, Value>,
    servers: &[String],
    registry: &Registry,
) -> Result<Credentials, ApiError> {
    if let Some(stray) = given.keys().find(|name| !servers.contains(name)) {
        return Err(ApiError::bad_request(
            format!("credentials.{stray}"),
            "names a server that is not in servers",
        ));
    }
    let mut credentials = Credentials::default();
    for name in servers {
        let Some(server) = registry.server(name) else {
            continue;
        };
        let field = format!("credentials.{name}");
        let Some(credential_field) = server.auth.credential_field() else {
            if given.contains_key(name) {
                return Err(ApiError::bad_request(
                    field,
                    format!("server {name:?} takes no credentials"),
                ));
            }
            continue;
        };
        let object = match given.remove(name) {
            None | Some(Value::Null) => {
                return Err(ApiError::bad_request(
                    field,
                    format!("is required: server {name:?} needs {{\"{credential_field}\": \"…\"}}"),
                ));
            }
            Some(Value::Object(object)) => object,
            Some(_) => {
                return Err(ApiError::bad_request(
                    field,
                    format!("must be an object like {{\"{credential_field}\": \"…\"}}"),
                ));
            }
        };
        for key in object.keys() {
            if key != credential_field {
                return Err(ApiError::bad_request(
                    format!("{field}.{key}"),
                    format!("unknown field; expected {credential_field}"),
                ));
            }
        }
        let secret_field = format!("{field}.{credential_field}");
        let secret = match object.get(credential_field) {
            None | Some(Value::Null) => {
                return Err(ApiError::bad_request(secret_field, "is required"));
            }
            Some(Value::String(secret)) => secret,
            Some(_) => return Err(ApiError::bad_request(secret_field, "must be a string")),
        };
        if let Some(problem) = header_value_problem(secret) {
            return Err(ApiError::bad_request(secret_field, problem));
        }
        credentials.insert(name.clone(), SecretString::from(secret.clone()));
    }
    Ok(credentials)
}
