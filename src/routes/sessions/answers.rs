//! What the session routes answer, as types: the handlers serialize them
//! and the OpenAPI document is made from them, so the two cannot differ.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::body::{ItemRulesShape, OwnerShape};
use crate::mux::ItemRules;
use crate::routes::client_configs::ClientConfigs;
use crate::store::{Labels, Owner};

/// The answer to a created session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCreated {
    pub session_id: Uuid,
    /// What its creator calls it, if they named it.
    #[schema(examples("nightly-ci"))]
    pub name: Option<String>,
    /// Its labels, keys in order.
    #[schema(value_type = BTreeMap<String, String>, example = json!({"team": "platform", "env": "ci"}))]
    pub labels: Labels,
    /// The session's MCP endpoint, a path on this gateway.
    #[schema(examples("/session/0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61/mcp"))]
    pub mcp_endpoint: String,
    /// The MCP endpoint's URL, on `--public-url` when set, else on the
    /// request's allowed `Host`.
    pub mcp_url: String,
    #[schema(examples("created"))]
    pub status: &'static str,
    /// `always` or `when_needed`.
    pub prefix: &'static str,
    pub servers: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub require_token: bool,
    /// Who may use the MCP endpoint: `open`, `token` or `oauth`.
    #[schema(examples("oauth"))]
    pub access: &'static str,
    /// The signed-in user it belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OwnerShape>)]
    pub owner: Option<Owner>,
    pub rate_limit: Option<u32>,
    pub client_configs: ClientConfigs,
    /// With `require_token` (`access: token`): the token the MCP endpoint requires, shown
    /// this once (the gateway keeps only its digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// Each OAuth backend's authorization: the link its user opens in a
    /// browser to connect it (with a one-time key when the session
    /// requires a token). Absent without OAuth backends.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub authorization: BTreeMap<String, AuthorizationShown>,
}

/// Where an OAuth backend's authorization stands for a session; never a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationShown {
    /// `needed` or `connected`.
    #[schema(examples("needed"))]
    pub status: &'static str,
    /// While needed: the link that asks the user, to open in a browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// While connected: when its access token expires, if the server said
    /// (mcp-mux refreshes it before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A session, never its credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionShown {
    pub session_id: Uuid,
    /// What its creator calls it, if they named it.
    #[schema(examples("nightly-ci"))]
    pub name: Option<String>,
    /// Its labels, keys in order.
    #[schema(value_type = BTreeMap<String, String>, example = json!({"team": "platform", "env": "ci"}))]
    pub labels: Labels,
    pub mcp_endpoint: String,
    /// A session that can be read is active: a deleted or expired one is gone.
    #[schema(examples("active"))]
    pub status: &'static str,
    pub prefix: &'static str,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub require_token: bool,
    /// Who may use the MCP endpoint: `open`, `token` or `oauth`.
    #[schema(examples("oauth"))]
    pub access: &'static str,
    /// The signed-in user it belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OwnerShape>)]
    pub owner: Option<Owner>,
    pub rate_limit: Option<u32>,
    pub servers: Vec<SessionServer>,
    /// Servers the session was created over that the registry no longer lists.
    pub missing_servers: Vec<String>,
    /// MCP sessions open on this session.
    pub mcp_sessions: usize,
    /// `direct` or `search`.
    pub tool_mode: &'static str,
    /// The tool rules it was created with, by server.
    #[schema(value_type = HashMap<String, ItemRulesShape>)]
    pub tools: BTreeMap<String, ItemRules>,
    /// The prompt rules it was created with, by server.
    #[schema(value_type = HashMap<String, ItemRulesShape>)]
    pub prompts: BTreeMap<String, ItemRules>,
    /// Rules that matched nothing when their backend last listed its items,
    /// by field: `tools.everything.allow[1] ("get-*")`. The session works
    /// without them.
    pub unmatched_rules: Vec<String>,
    /// Renames left out when their backend last listed its items, because
    /// the new name is one another item has: the renamed item keeps its own
    /// name. `tools.everything.rename.whoami (makes "everything__echo",
    /// which tool "echo" has; not applied)`.
    pub clashing_rules: Vec<String>,
}

/// One of a session's servers and its backend's health, shared by every
/// session that uses it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionServer {
    pub name: String,
    /// `none`, `bearer`, `api_key` or `oauth`.
    pub auth: &'static str,
    /// `ready`, `not_opened`, `needs_authorization`, `credential_refused`,
    /// `unreachable` or `circuit_open`: in this session, on this node.
    #[schema(examples("ready"))]
    pub state: &'static str,
    /// The state in words.
    pub reason: String,
    /// For an OAuth backend: where its authorization stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<AuthorizationShown>,
    /// None until a call has been made to the backend.
    pub circuit: Option<CircuitShown>,
    pub calls_in_progress: Option<usize>,
    /// The server that answered the last call made to this one: itself,
    /// or one of its `fallback` servers since a call failed over.
    #[schema(examples("everything"))]
    pub serving: String,
}

/// A backend's circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct CircuitShown {
    /// `closed`, `open` or `half_open`.
    #[schema(examples("closed"))]
    pub state: &'static str,
    pub consecutive_failures: u32,
    /// While open: milliseconds until a call may try the backend again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

/// The answer to a deleted session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDeleted {
    pub session_id: Uuid,
    #[schema(examples("deleted"))]
    pub status: &'static str,
}

/// A page of the stored sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionListed>,
    /// Give as `after` for the next page; null on the last.
    #[schema(examples("2026-12-06T06:00:00.123456Z~0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61"))]
    pub next_after: Option<String>,
}

/// A stored session, never its credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionListed {
    pub session_id: Uuid,
    /// What its creator calls it, if they named it.
    #[schema(examples("nightly-ci"))]
    pub name: Option<String>,
    /// Its labels, keys in order.
    #[schema(value_type = BTreeMap<String, String>, example = json!({"team": "platform", "env": "ci"}))]
    pub labels: Labels,
    pub mcp_endpoint: String,
    pub servers: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub require_token: bool,
    /// Who may use the MCP endpoint: `open`, `token` or `oauth`.
    #[schema(examples("oauth"))]
    pub access: &'static str,
    /// The signed-in user it belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OwnerShape>)]
    pub owner: Option<Owner>,
}

/// A page of a session's `tools/call` records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub session_id: Uuid,
    /// What its creator calls it, if they named it.
    #[schema(examples("nightly-ci"))]
    pub name: Option<String>,
    /// Its labels, keys in order.
    #[schema(value_type = BTreeMap<String, String>, example = json!({"team": "platform", "env": "ci"}))]
    pub labels: Labels,
    pub records: Vec<AuditShown>,
    /// Give as `before` for the next page; null on the last.
    pub next_before: Option<i64>,
}

/// One `tools/call` and how it ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditShown {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The first 8 characters of the MCP session's id: enough to tell MCP
    /// sessions apart, too little to use one.
    pub mcp_session: String,
    /// The server the call went to; null when the name led to none.
    pub backend: Option<String>,
    pub tool: String,
    /// `ok`, `tool_error` or `error`.
    pub outcome: String,
    /// For `error`: `timeout`, `unreachable`, …
    pub error_class: Option<String>,
    pub duration_ms: i64,
    /// The signed-in user who made the call, for a signed-in session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}
