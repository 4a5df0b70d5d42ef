//! `POST /create-session`, `GET /sessions`, `GET /session/<id>`,
//! `DELETE /session/<id>` and `GET /session/<id>/audit`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::access::{Access, new_session_token, token_digest};
use super::body::{read_limited, refuse_unread};
use super::client_configs::{ClientConfigs, client_configs};
use super::curation::{Naming, parse_curation};
use super::error::{ApiError, ErrorBody, quoted};
use super::rate_limit::check_create_session_rate;
use super::session_id::{SessionPath, mcp_endpoint, short_id};
use crate::credentials::{Credentials, header_value_problem};
use crate::mcp::nesting;
use crate::mux::{CircuitState, ItemRules, Mux, NewSession, PrefixMode, Session};
use crate::registry::Registry;

/// A create-session body is a list of names and a few tokens.
const CREATE_SESSION_BODY_LIMIT: usize = 64 * 1024;
/// Longest lifetime a session may ask for with `ttl_seconds`: a year.
const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;

/// Most requests a second a session's creator may set with `rate_limit`.
const MAX_RATE_LIMIT: u64 = 1_000_000;

/// The fields a create-session body may have, in the order its unknown-field
/// error lists them.
const CREATE_SESSION_FIELDS: [&str; 9] = [
    "servers",
    "credentials",
    "prefix",
    "ttl_seconds",
    "require_token",
    "rate_limit",
    "tools",
    "prompts",
    "tool_mode",
];

/// A create-session body, as the OpenAPI document shows it. The body is
/// read field by field, so that each error names its field; a test holds
/// these fields to [`CREATE_SESSION_FIELDS`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateSessionRequest {
    /// Names from `GET /registry`, each once.
    #[schema(min_items = 1, examples(json!(["everything", "demo"])))]
    servers: Vec<String>,
    /// Per server that needs one, its credential: `{"token": "…"}` or
    /// `{"api_key": "…"}` (`credential_fields` in `GET /registry`).
    #[schema(value_type = Option<Object>, examples(json!({"demo": {"token": "s3cret"}})))]
    credentials: Option<Map<String, Value>>,
    /// `always` (the default) prefixes every name with its server's;
    /// `when_needed` leaves a one-server session's names as they are.
    #[schema(value_type = Option<String>, pattern = "^(always|when_needed)$")]
    prefix: Option<String>,
    /// The session's lifetime; it never expires when not given.
    #[schema(minimum = 1, maximum = 31536000)]
    ttl_seconds: Option<u64>,
    /// Whether the MCP endpoint requires the session token the answer shows once.
    require_token: Option<bool>,
    /// Requests a second the session may make.
    #[schema(minimum = 1, maximum = 1000000)]
    rate_limit: Option<u32>,
    /// Per server, which of its tools the session shows, under what names
    /// and with what descriptions, by the backend's own names.
    #[schema(value_type = Option<HashMap<String, ItemRulesShape>>, examples(json!({
        "everything": {"allow": ["echo", "get-*"]},
        "demo": {"deny": ["whoami"], "rename": {"add": "plus"}, "description": {"add": "Adds two integers."}}
    })))]
    tools: Option<Value>,
    /// The same rules for prompts.
    #[schema(value_type = Option<HashMap<String, ItemRulesShape>>)]
    prompts: Option<Value>,
    /// `direct` (the default) lists every tool the rules show.
    #[schema(value_type = Option<String>, pattern = "^direct$")]
    tool_mode: Option<String>,
}

/// One server's rules for its tools (or prompts).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ItemRulesShape {
    /// Only the names matching one of these are shown; `*` matches any run
    /// of characters.
    allow: Option<Vec<String>>,
    /// Names matching one of these are hidden; deny wins over allow.
    deny: Option<Vec<String>>,
    /// Original name → the name shown after the server's prefix.
    rename: Option<HashMap<String, String>>,
    /// Original name → the description shown instead.
    description: Option<HashMap<String, String>>,
}

/// The answer to a created session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCreated {
    pub(super) session_id: Uuid,
    /// The session's MCP endpoint, a path on this gateway.
    #[schema(examples("/session/0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61/mcp"))]
    mcp_endpoint: String,
    /// The MCP endpoint's URL, on `--public-url` when set, else on the
    /// request's allowed `Host`.
    pub(super) mcp_url: String,
    #[schema(examples("created"))]
    status: &'static str,
    /// `always` or `when_needed`.
    prefix: &'static str,
    servers: Vec<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    require_token: bool,
    rate_limit: Option<u32>,
    pub(super) client_configs: ClientConfigs,
    /// With `require_token`: the token the MCP endpoint requires, shown
    /// this once (the gateway keeps only its digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) session_token: Option<String>,
}

/// A session, never its credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionShown {
    session_id: Uuid,
    mcp_endpoint: String,
    /// A session that can be read is active: a deleted or expired one is gone.
    #[schema(examples("active"))]
    status: &'static str,
    prefix: &'static str,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    require_token: bool,
    rate_limit: Option<u32>,
    servers: Vec<SessionServer>,
    /// Servers the session was created over that the registry no longer lists.
    missing_servers: Vec<String>,
    /// MCP sessions open on this session.
    mcp_sessions: usize,
    /// `direct` or `search`.
    tool_mode: &'static str,
    /// The tool rules it was created with, by server.
    #[schema(value_type = HashMap<String, ItemRulesShape>)]
    tools: BTreeMap<String, ItemRules>,
    /// The prompt rules it was created with, by server.
    #[schema(value_type = HashMap<String, ItemRulesShape>)]
    prompts: BTreeMap<String, ItemRules>,
    /// Rules that matched nothing when their backend last listed its items,
    /// by field: `tools.everything.allow[1] ("get-*")`. The session works
    /// without them.
    unmatched_rules: Vec<String>,
}

/// One of a session's servers and its backend's health, shared by every
/// session that uses it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionServer {
    name: String,
    /// `none`, `bearer` or `api_key`.
    auth: &'static str,
    /// None until a call has been made to the backend.
    circuit: Option<CircuitShown>,
    calls_in_progress: Option<usize>,
    /// The server that answered the last call made to this one: itself,
    /// or one of its `fallback` servers since a call failed over.
    #[schema(examples("everything"))]
    serving: String,
}

/// A backend's circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct CircuitShown {
    /// `closed`, `open` or `half_open`.
    #[schema(examples("closed"))]
    state: &'static str,
    consecutive_failures: u32,
    /// While open: milliseconds until a call may try the backend again.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_in_ms: Option<u64>,
}

/// The answer to a deleted session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDeleted {
    session_id: Uuid,
    #[schema(examples("deleted"))]
    status: &'static str,
}

/// A page of the stored sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionListed>,
    /// Give as `after` for the next page; null on the last.
    next_after: Option<Uuid>,
}

/// A stored session, never its credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionListed {
    session_id: Uuid,
    mcp_endpoint: String,
    servers: Vec<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    require_token: bool,
}

/// A page of a session's `tools/call` records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    session_id: Uuid,
    records: Vec<AuditShown>,
    /// Give as `before` for the next page; null on the last.
    next_before: Option<i64>,
}

/// One `tools/call` and how it ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditShown {
    id: i64,
    at: DateTime<Utc>,
    /// The first 8 characters of the MCP session's id: enough to tell MCP
    /// sessions apart, too little to use one.
    mcp_session: String,
    /// The server the call went to; null when the name led to none.
    backend: Option<String>,
    tool: String,
    /// `ok`, `tool_error` or `error`.
    outcome: String,
    /// For `error`: `timeout`, `unreachable`, …
    error_class: Option<String>,
    duration_ms: i64,
}

/// `GET /sessions`'s query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SessionsQuery {
    /// Most sessions in the answer.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
    /// `next_after` of the page before.
    after: Option<Uuid>,
}

/// `GET /session/<id>/audit`'s query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AuditQuery {
    /// Most records in the answer.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
    /// `next_before` of the page before.
    before: Option<i64>,
}

/// A valid create-session body.
struct CreateSession {
    /// The session, but for its token's digest.
    session: NewSession,
    /// Whether the MCP endpoint requires a bearer token.
    require_token: bool,
}

/// Creates a session over servers of the registry, with the client's
/// credentials for them.
#[utoipa::path(post, path = "/create-session", tag = "sessions",
    request_body(content = CreateSessionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = SessionCreated),
        (status = 400, description = "A field is wrong: `field` names it", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "The body exceeds 64 KiB", body = ErrorBody),
        (status = 429, description = "Over `--create-session-rate`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
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
) -> Result<SessionCreated, ApiError> {
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
    let client_configs = client_configs(
        &format!("mcp-mux-{}", short_id(session.id)),
        &url,
        token.as_deref(),
    );
    Ok(SessionCreated {
        session_id: session.id,
        mcp_endpoint: endpoint,
        mcp_url: url,
        status: "created",
        prefix: session.prefix.as_str(),
        servers: session.servers.iter().map(|s| s.name.clone()).collect(),
        created_at: session.created_at,
        expires_at: session.expires_at,
        require_token: token.is_some(),
        rate_limit: session.rate_limit,
        client_configs,
        // Shown this once: the store keeps only its digest.
        session_token: token,
    })
}

/// A session: its servers with each backend's health, its expiry and its
/// open MCP sessions; never a secret.
#[utoipa::path(get, path = "/session/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session", body = SessionShown),
        (status = 404, description = "No such session", body = ErrorBody),
    ))]
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

/// Deletes a session and its credentials; its MCP sessions end.
#[utoipa::path(delete, path = "/session/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "Deleted", body = SessionDeleted),
        (status = 404, description = "No such session", body = ErrorBody),
    ))]
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
    Ok(HttpResponse::Ok().json(SessionDeleted {
        session_id: id,
        status: "deleted",
    }))
}

/// Most sessions one list answer carries.
const MAX_SESSION_PAGE: u64 = 1000;

/// `GET /sessions?limit=N&after=ID`: the stored sessions in id order, never
/// their credentials; `next_after` continues the list.
#[utoipa::path(get, path = "/sessions", tag = "sessions", params(SessionsQuery),
    responses(
        (status = 200, description = "A page of sessions", body = SessionList),
        (status = 400, description = "A parameter is wrong: `field` names it", body = ErrorBody),
    ))]
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
    let sessions = sessions
        .into_iter()
        .map(|session| SessionListed {
            session_id: session.id,
            mcp_endpoint: mcp_endpoint(session.id),
            servers: session.servers,
            created_at: session.created_at,
            expires_at: session.expires_at,
            require_token: session.require_token,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList {
        sessions,
        next_after,
    }))
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
#[utoipa::path(get, path = "/session/{id}/audit", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"), AuditQuery),
    responses(
        (status = 200, description = "A page of records", body = AuditPage),
        (status = 400, description = "A parameter is wrong: `field` names it", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
    ))]
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
    let records = records
        .into_iter()
        .map(|record| AuditShown {
            id: record.id,
            at: record.at,
            mcp_session: record
                .mcp_session_id
                .get(..8)
                .unwrap_or_default()
                .to_owned(),
            backend: record.backend,
            tool: record.tool,
            outcome: record.outcome,
            error_class: record.error_class,
            duration_ms: record.duration_ms,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage {
        session_id: session.id,
        records,
        next_before,
    }))
}

fn describe(session: &Session, mux: &Mux) -> SessionShown {
    SessionShown {
        session_id: session.id,
        mcp_endpoint: mcp_endpoint(session.id),
        status: "active",
        prefix: session.prefix.as_str(),
        created_at: session.created_at,
        expires_at: session.expires_at,
        require_token: session.token_digest.is_some(),
        rate_limit: session.rate_limit,
        servers: session
            .servers
            .iter()
            .enumerate()
            .map(|(index, server)| {
                let health = mux.backend_health(&server.name);
                SessionServer {
                    serving: session.serving(index).unwrap_or(&server.name).to_owned(),
                    name: server.name.clone(),
                    auth: server.auth.type_name(),
                    circuit: health
                        .as_ref()
                        .map(|(circuit, _)| describe_circuit(circuit)),
                    calls_in_progress: health.map(|(_, calls)| calls),
                }
            })
            .collect(),
        missing_servers: session.missing_servers.clone(),
        mcp_sessions: session.mcp_session_count(),
        tool_mode: session.curation.rules.tool_mode.as_str(),
        tools: session.curation.rules.tools.clone(),
        prompts: session.curation.rules.prompts.clone(),
        unmatched_rules: session.curation.unmatched(),
    }
}

/// A backend's circuit breaker, shared by every session that uses it.
fn describe_circuit(state: &CircuitState) -> CircuitShown {
    let (CircuitState::Closed { failures }
    | CircuitState::HalfOpen { failures }
    | CircuitState::Open { failures, .. }) = state;
    CircuitShown {
        state: state.name(),
        consecutive_failures: *failures,
        retry_in_ms: state.retry_in_ms(),
    }
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
    let tools = body.remove("tools");
    let prompts = body.remove("prompts");
    let tool_mode = body.remove("tool_mode");
    if let Some(field) = body.keys().next() {
        return Err(ApiError::bad_request(
            field.as_str(),
            format!(
                "unknown field; expected {}",
                CREATE_SESSION_FIELDS.join(", ")
            ),
        ));
    }
    let credentials = parse_credentials(credentials, &servers, registry)?;
    let curation = parse_curation(
        tools,
        prompts,
        tool_mode,
        &Naming {
            servers: &servers,
            prefix,
            separator: &registry.tool_separator,
        },
    )?;
    Ok(CreateSession {
        session: NewSession {
            servers,
            credentials,
            prefix,
            ttl,
            token_digest: None,
            rate_limit,
            curation,
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

/// The credentials of a session over `servers`: one for each chosen server
/// that takes one, and one for each of their fallbacks that takes its
/// credential in another way than its primary (a fallback that takes it the
/// same way is sent the primary's).
fn parse_credentials(
    mut given: Map<String, Value>,
    servers: &[String],
    registry: &Registry,
) -> Result<Credentials, ApiError> {
    // Each server a credential is for, and the primary it stands in for.
    let mut holders: Vec<(&str, Option<&str>)> =
        servers.iter().map(|name| (name.as_str(), None)).collect();
    for name in servers {
        let Some(server) = registry.server(name) else {
            continue;
        };
        for fallback in &server.fallback {
            if let Some(config) = registry.server(fallback)
                && config.needs_own_credential_as_fallback_of(server)
                && !holders.iter().any(|(held, _)| held == fallback)
            {
                holders.push((fallback.as_str(), Some(name.as_str())));
            }
        }
    }
    if let Some(stray) = given
        .keys()
        .find(|name| !holders.iter().any(|(held, _)| held == name))
    {
        return Err(ApiError::bad_request(
            format!("credentials.{stray}"),
            "names a server that is not in servers",
        ));
    }
    let mut credentials = Credentials::default();
    for (name, primary) in holders {
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
                let why = match primary {
                    None => format!("server {name:?}"),
                    Some(primary) => format!(
                        "server {name:?}, the fallback of {primary:?}, takes its credential in another way and"
                    ),
                };
                return Err(ApiError::bad_request(
                    field,
                    format!("is required: {why} needs {{\"{credential_field}\": \"…\"}}"),
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
        credentials.insert(name.to_owned(), SecretString::from(secret.clone()));
    }
    Ok(credentials)
}
