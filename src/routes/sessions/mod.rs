//! `POST /create-session`, `GET /sessions`, `GET /session/<id>`,
//! `DELETE /session/<id>` and `GET /session/<id>/audit`. Their answers are
//! in `answers`, the create-session body's checks in `body` and its tool
//! rules in `curation`.

mod answers;
mod body;
mod curation;

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::Value;
use utoipa::IntoParams;

pub use answers::SessionCreated;
use answers::{
    AuditPage, AuditShown, AuthorizationShown, CircuitShown, SessionDeleted, SessionList,
    SessionListed, SessionServer, SessionShown,
};
use body::{
    CREATE_SESSION_BODY_LIMIT, CreateSession, CreateSessionRequest, SessionAccess,
    parse_create_session,
};

use super::access::{Access, new_session_token, token_digest};
use super::body::{read_limited, refuse_unread};
use super::client_configs::client_configs;
use super::error::{ApiError, ErrorBody, quoted};
use super::rate_limit::check_create_session_rate;
use super::session_id::{SessionPath, mcp_endpoint, short_id};
use super::sign_in::{Caller, caller};
use crate::grants::Grants;
use crate::mcp::nesting;
use crate::mux::{Authorization, CircuitState, Mux, MuxError, Session};
use crate::store::{Owner, SessionCursor, SessionFilter};

/// `GET /sessions`'s query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SessionsQuery {
    /// Most sessions in the answer.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
    /// `next_after` of the page before.
    after: Option<String>,
    /// Only sessions whose name contains this (ASCII case ignored).
    name: Option<String>,
    /// Only sessions with this label, as `key=value`; may be given up to
    /// 16 times, and every one must hold.
    #[param(example = "team=platform")]
    label: Option<String>,
    /// Only sessions over this server.
    server: Option<String>,
    /// Only sessions of the signed-in user with this subject.
    owner: Option<String>,
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

/// Creates a session over servers of the registry, with the client's
/// credentials for them.
///
/// The examples use servers of the shipped `registry.yaml`.
#[utoipa::path(post, path = "/create-session", tag = "sessions", operation_id = "create_session",
    request_body(content = CreateSessionRequest, content_type = "application/json",
        examples(
            ("basic" = (summary = "The reference server, which mcp-mux runs itself",
                value = json!({"servers": ["everything"]}))),
            ("with_a_credential" = (summary = "Also the demo server, with its bearer token (start scripts/demo_backend.py first)",
                value = json!({"servers": ["everything", "demo"], "credentials": {"demo": {"token": "s3cret"}}}))),
            ("curated" = (summary = "Two of its tools, for an hour, behind a session token",
                value = json!({"servers": ["everything"], "tools": {"everything": {"allow": ["echo", "get-sum"]}},
                    "ttl_seconds": 3600, "require_token": true}))),
        )),
    responses(
        (status = 201, description = "Created", body = SessionCreated),
        (status = 400, description = "A field is wrong: `field` names it", body = ErrorBody,
            example = json!({"error": "bad_request", "field": "servers[0]",
                "message": "servers[0]: unknown server \"fooo\"; known: aws-knowledge, demo, everything, huggingface, langchain-docs"})),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody,
            example = json!({"error": "request_timeout", "message": "the request body did not arrive within 10 s"})),
        (status = 413, description = "The body exceeds 64 KiB", body = ErrorBody,
            example = json!({"error": "payload_too_large", "message": "request body exceeds 65536 bytes"})),
        (status = 429, description = "Over `--create-session-rate`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"error": "too_many_requests", "message": "too many sessions created from this address; retry after 6 s"})),
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
                payload.into_inner(),
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
        access: chosen,
        owner,
    } = parse_create_session(value, &mux.registry())?;
    let (session_access, owner) = access_and_owner(&caller(request), access, chosen, owner)?;
    check_create_session_rate(request)?;
    let token = (session_access == SessionAccess::Token).then(new_session_token);
    session.token_digest = token.as_deref().map(token_digest);
    session.owner = owner;
    let session = mux.create_session(session).await?;
    tracing::info!(session = %short_id(session.id), servers = session.servers.len(), access = session_access.name(), "session created");
    let endpoint = mcp_endpoint(session.id);
    let url = access.public_url(request, &endpoint);
    // A signed-in session's hosts sign in by themselves: no header.
    let client_configs = client_configs(
        &format!("mcp-mux-{}", short_id(session.id)),
        &url,
        token.as_deref(),
    );
    let mut authorization = BTreeMap::new();
    for server in session.servers.iter().filter(|s| s.auth.oauth().is_some()) {
        // A signed-in user's grant serves each of their sessions at once.
        let held = mux
            .grants()
            .status(&session.grant_holder(), &server.name)
            .await
            .map_err(|error| ApiError::from(MuxError::Store(error)))?;
        let state = match held {
            Some(expires_at) => Authorization::Connected { expires_at },
            None => Authorization::Needed { scope: None },
        };
        let shown =
            authorization_shown(request, access, mux, &session, &server.name, &state).await?;
        authorization.insert(server.name.clone(), shown);
    }
    Ok(SessionCreated {
        authorization,
        session_id: session.id,
        name: session.name.clone(),
        labels: session.labels.clone(),
        mcp_endpoint: endpoint,
        mcp_url: url,
        status: "created",
        prefix: session.prefix.as_str(),
        servers: session.servers.iter().map(|s| s.name.clone()).collect(),
        created_at: session.created_at,
        expires_at: session.expires_at,
        require_token: token.is_some(),
        access: session_access.name(),
        owner: session.owner.clone(),
        rate_limit: session.rate_limit,
        client_configs,
        // Shown this once: the store keeps only its digest.
        session_token: token,
    })
}

/// Who may use a new session, and whom it belongs to, from what the body
/// asks and who asks: a signed-in user's sessions are their own and need
/// their sign-in (or a session token); the admin's are open unless the
/// body says otherwise, and one the admin gives an owner signs its owner
/// in.
fn access_and_owner(
    caller: &Caller,
    gateway: &Access,
    chosen: Option<SessionAccess>,
    owner: Option<Owner>,
) -> Result<(SessionAccess, Option<Owner>), ApiError> {
    match caller {
        Caller::User(_) => {
            if owner.is_some() {
                return Err(ApiError::bad_request(
                    "owner",
                    "only the admin token may name an owner: a signed-in user's sessions are their own",
                ));
            }
            match chosen.unwrap_or(SessionAccess::OAuth) {
                SessionAccess::Open => Err(ApiError::bad_request(
                    "access",
                    "a signed-in user's session is not open: use \"oauth\" or \"token\"",
                )),
                access => Ok((access, caller.owner())),
            }
        }
        Caller::Admin => {
            let access = chosen.unwrap_or(if owner.is_some() {
                SessionAccess::OAuth
            } else {
                SessionAccess::Open
            });
            match (access, &owner) {
                (SessionAccess::Open, Some(_)) => Err(ApiError::bad_request(
                    "access",
                    "a session with an owner is not open: use \"oauth\" or \"token\"",
                )),
                (SessionAccess::OAuth, None) => Err(ApiError::bad_request(
                    "owner",
                    "is required with \"access\": \"oauth\" and the admin token: the issuer and subject of the user the session belongs to",
                )),
                (_, Some(owner)) => match gateway.sign_in() {
                    None => Err(ApiError::bad_request(
                        if access == SessionAccess::OAuth {
                            "access"
                        } else {
                            "owner"
                        },
                        "needs an OAuth issuer: start mcp-mux with --oauth-issuer",
                    )),
                    Some(sign_in) if !sign_in.trusts(&owner.issuer) => Err(ApiError::bad_request(
                        "owner.issuer",
                        format!(
                            "is not an issuer this gateway trusts; it trusts {}",
                            sign_in.issuers().join(", ")
                        ),
                    )),
                    Some(_) => Ok((access, Some(owner.clone()))),
                },
                (access, None) => Ok((access, None)),
            }
        }
    }
}

/// A session: its servers with each backend's health, its expiry and its
/// open MCP sessions; never a secret.
#[utoipa::path(get, path = "/session/{id}", tag = "sessions", operation_id = "get_session",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session", body = SessionShown),
        (status = 404, description = "No such session", body = ErrorBody,
            example = json!({"error": "not_found", "message": "no session \"0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61\""})),
    ))]
pub async fn get_session(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
    access: web::Data<Access>,
) -> Result<HttpResponse, ApiError> {
    let path = SessionPath::parse(&path)?;
    let session = mux
        .session(path.id)
        .await?
        .filter(|session| caller(&request).may_use(session.owner.as_ref()))
        .ok_or_else(|| path.not_found())?;
    Ok(HttpResponse::Ok().json(describe(&request, &access, &session, &mux).await?))
}

/// An OAuth backend's authorization as answers show it: while needed, the
/// link (with a new one-time key when the session requires a token).
pub(crate) async fn authorization_shown(
    request: &HttpRequest,
    access: &Access,
    mux: &Mux,
    session: &Session,
    server: &str,
    authorization: &Authorization,
) -> Result<AuthorizationShown, ApiError> {
    Ok(match authorization {
        Authorization::Needed { scope } => {
            let keyed = session.token_digest.is_some() || session.owner.is_some();
            let key = match keyed {
                true => Some(
                    mux.grants()
                        .issue_link_key(session.id, server)
                        .await
                        .map_err(|error| ApiError::from(MuxError::Store(error)))?,
                ),
                false => None,
            };
            let path = Grants::link_path(session.id, server, key.as_deref(), scope.as_deref());
            AuthorizationShown {
                status: "needed",
                url: Some(access.public_url(request, &path)),
                expires_at: None,
            }
        }
        Authorization::Connected { expires_at } => AuthorizationShown {
            status: "connected",
            url: None,
            expires_at: *expires_at,
        },
    })
}

/// Deletes a session and its credentials; its MCP sessions end.
#[utoipa::path(delete, path = "/session/{id}", tag = "sessions", operation_id = "delete_session",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "Deleted", body = SessionDeleted),
        (status = 404, description = "No such session", body = ErrorBody,
            example = json!({"error": "not_found", "message": "no session \"0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61\""})),
    ))]
pub async fn delete_session(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    let path = SessionPath::parse(&path)?;
    let id = path.id;
    let caller = caller(&request);
    if let Caller::User(_) = caller {
        // Another user's session is as unknown to the caller as none.
        let owned = mux.session(id).await?;
        if !owned.is_some_and(|session| caller.may_use(session.owner.as_ref())) {
            return Err(path.not_found());
        }
    }
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
/// The parameters `GET /sessions` takes.
const LIST_PARAMETERS: [&str; 6] = ["limit", "after", "name", "label", "server", "owner"];
/// Most `label` conditions one list asks for: each a session may hold.
const MAX_LABEL_FILTERS: usize = body::MAX_LABELS;

/// `GET /sessions?limit=N&after=CURSOR&name=…&label=k=v&server=…&owner=…`:
/// the stored sessions, newest first, never their credentials;
/// `next_after` continues the list.
#[utoipa::path(get, path = "/sessions", tag = "sessions", operation_id = "list_sessions", params(SessionsQuery),
    responses(
        (status = 200, description = "A page of sessions", body = SessionList),
        (status = 400, description = "A parameter is wrong: `field` names it", body = ErrorBody,
            example = json!({"error": "bad_request", "field": "label", "message": "label: must be key=value, as in label=team=platform"})),
    ))]
pub async fn list_sessions(
    request: HttpRequest,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after, filter) = parse_list_query(request.query_string())?;
    let filter = SessionFilter {
        // A signed-in user sees their own sessions only.
        owner: caller(&request).owner(),
        ..filter
    };
    let sessions = mux.list_sessions(limit, after, &filter).await?;
    let next_after = (sessions.len() as u64 == limit)
        .then(|| sessions.last().map(|session| session.cursor().to_string()))
        .flatten();
    let sessions = sessions
        .into_iter()
        .map(|session| SessionListed {
            session_id: session.id,
            name: session.name,
            labels: session.labels,
            mcp_endpoint: mcp_endpoint(session.id),
            servers: session.servers,
            created_at: session.created_at,
            expires_at: session.expires_at,
            require_token: session.require_token,
            access: SessionAccess::of(session.require_token, session.owner.is_some()).name(),
            owner: session.owner,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList {
        sessions,
        next_after,
    }))
}

/// The page size, the place and the filter a sessions list asks for: each
/// parameter once but `label`, which may repeat (every one must hold).
/// The console's list reads its query here too.
pub(crate) fn parse_list_query(
    query: &str,
) -> Result<(u64, Option<SessionCursor>, SessionFilter), ApiError> {
    let mut single = HashMap::new();
    let mut filter = SessionFilter::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !LIST_PARAMETERS.contains(&key.as_ref()) {
            return Err(ApiError::bad_request(
                key.as_ref(),
                format!("unknown parameter; expected {}", LIST_PARAMETERS.join(", ")),
            ));
        }
        if key == "label" {
            filter.labels.push(parse_label_filter(&value)?);
            continue;
        }
        if single
            .insert(key.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(ApiError::bad_request(key.as_ref(), "is given twice"));
        }
    }
    if filter.labels.len() > MAX_LABEL_FILTERS {
        return Err(ApiError::bad_request(
            "label",
            format!(
                "is given {} times; at most {MAX_LABEL_FILTERS}",
                filter.labels.len()
            ),
        ));
    }
    let limit = page_limit(&single, MAX_SESSION_PAGE)?;
    let after = match single.remove("after") {
        None => None,
        Some(text) => Some(text.parse::<SessionCursor>().map_err(|()| {
            ApiError::bad_request("after", "must be the next_after of an earlier answer")
        })?),
    };
    // Empty filters filter nothing: an HTML form sends its empty fields.
    let given = |value: Option<String>| value.filter(|value| !value.is_empty());
    if let Some(name) = given(single.remove("name")) {
        body::check_name(&name)?;
        filter.name = Some(name);
    }
    filter.server = given(single.remove("server"));
    filter.owner_subject = given(single.remove("owner"));
    Ok((limit, after, filter))
}

/// A `label` filter: `key=value`, as a label is set.
fn parse_label_filter(text: &str) -> Result<(String, String), ApiError> {
    let (key, value) = text.split_once('=').ok_or_else(|| {
        ApiError::bad_request("label", "must be key=value, as in label=team=platform")
    })?;
    body::check_label_key(key)
        .and_then(|()| body::check_label_value(value))
        .map_err(|reason| ApiError::bad_request("label", format!("{} {reason}", quoted(text))))?;
    Ok((key.to_owned(), value.to_owned()))
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
#[utoipa::path(get, path = "/session/{id}/audit", tag = "sessions", operation_id = "get_session_audit",
    params(("id" = String, Path, description = "The session's id"), AuditQuery),
    responses(
        (status = 200, description = "A page of records", body = AuditPage),
        (status = 400, description = "A parameter is wrong: `field` names it", body = ErrorBody,
            example = json!({"error": "bad_request", "field": "before", "message": "before: must be a record id from an earlier answer"})),
        (status = 404, description = "No such session", body = ErrorBody,
            example = json!({"error": "not_found", "message": "no session \"0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61\""})),
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
    let session = path.session(&mux).await?;
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
            subject: record.subject,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage {
        session_id: session.id,
        name: session.name.clone(),
        labels: session.labels.clone(),
        records,
        next_before,
    }))
}

async fn describe(
    request: &HttpRequest,
    access: &Access,
    session: &Session,
    mux: &Mux,
) -> Result<SessionShown, ApiError> {
    let states = mux.backend_states(session).await?;
    let mut servers = Vec::with_capacity(states.len());
    for ((index, server), status) in session.servers.iter().enumerate().zip(states) {
        let health = mux.backend_health(&server.name);
        let authorization = match &status.authorization {
            Some(authorization) => Some(
                authorization_shown(request, access, mux, session, &server.name, authorization)
                    .await?,
            ),
            None => None,
        };
        servers.push(SessionServer {
            serving: session.serving(index).unwrap_or(&server.name).to_owned(),
            name: server.name.clone(),
            auth: server.auth.type_name(),
            state: status.state.as_str(),
            reason: status.reason,
            authorization,
            circuit: health
                .as_ref()
                .map(|(circuit, _)| describe_circuit(circuit)),
            calls_in_progress: health.map(|(_, calls)| calls),
        });
    }
    Ok(SessionShown {
        session_id: session.id,
        name: session.name.clone(),
        labels: session.labels.clone(),
        mcp_endpoint: mcp_endpoint(session.id),
        status: "active",
        prefix: session.prefix.as_str(),
        created_at: session.created_at,
        expires_at: session.expires_at,
        require_token: session.token_digest.is_some(),
        access: SessionAccess::of(session.token_digest.is_some(), session.owner.is_some()).name(),
        owner: session.owner.clone(),
        rate_limit: session.rate_limit,
        servers,
        missing_servers: session.missing_servers.clone(),
        mcp_sessions: session.mcp_session_count(),
        tool_mode: session.curation.rules.tool_mode.as_str(),
        tools: session.curation.rules.tools.clone(),
        prompts: session.curation.rules.prompts.clone(),
        unmatched_rules: session.curation.unmatched(),
        clashing_rules: session.curation.clashing(),
    })
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
