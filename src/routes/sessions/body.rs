//! The create-session body: its fields, as the OpenAPI document shows them,
//! and the checks that read it field by field, so that every error names
//! its field and nothing is stored unless all of it is valid.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::curation::{Naming, parse_curation};
use crate::credentials::Credentials;
use crate::mcp::client_values::credential_problem;
use crate::mux::{NewSession, PrefixMode};
use crate::registry::Registry;
use crate::routes::error::{ApiError, quoted};
use crate::store::{Labels, Owner};

/// A create-session body is a list of names and a few tokens.
pub(super) const CREATE_SESSION_BODY_LIMIT: usize = 64 * 1024;
/// Longest lifetime a session may ask for with `ttl_seconds`: a year.
const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;

/// Most requests a second a session's creator may set with `rate_limit`.
const MAX_RATE_LIMIT: u64 = 1_000_000;

/// The fields a create-session body may have, in the order its unknown-field
/// error lists them.
const CREATE_SESSION_FIELDS: [&str; 13] = [
    "servers",
    "name",
    "labels",
    "credentials",
    "prefix",
    "ttl_seconds",
    "require_token",
    "access",
    "owner",
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
    // No example: utoipa would put it on the items. The route's examples
    // show whole bodies.
    #[schema(min_items = 1)]
    servers: Vec<String>,
    /// What to call the session in lists and the console: 1 to 64
    /// characters, no control characters.
    #[schema(min_length = 1, max_length = 64, examples("nightly-ci"))]
    name: Option<String>,
    /// Up to 16 labels to find the session by (`GET /sessions?label=k=v`).
    /// A key is 1 to 63 letters, digits and `. _ - /`, starting with a
    /// letter or digit; a value is 0 to 63 letters, digits and `. _ - / : @`.
    #[schema(value_type = Option<HashMap<String, String>>, example = json!({"team": "platform", "env": "ci"}))]
    labels: Option<Map<String, Value>>,
    /// Per server that needs one, its credential: `{"token": "…"}` or
    /// `{"api_key": "…"}` (`credential_fields` in `GET /registry`).
    #[schema(value_type = Option<Object>)]
    credentials: Option<Map<String, Value>>,
    /// `always` (the default) prefixes every name with its server's;
    /// `when_needed` leaves a one-server session's names as they are.
    #[schema(value_type = Option<String>, pattern = "^(always|when_needed)$")]
    prefix: Option<String>,
    /// The session's lifetime; it never expires when not given.
    #[schema(minimum = 1, maximum = 31536000)]
    ttl_seconds: Option<u64>,
    /// Whether the MCP endpoint requires the session token the answer shows
    /// once; the same as `"access": "token"`.
    require_token: Option<bool>,
    /// Who may use the MCP endpoint: `open` (whoever has the URL; the
    /// admin's default), `token` (the session token), or `oauth` (its
    /// owner's OAuth access token; a signed-in user's default).
    #[schema(value_type = Option<String>, pattern = "^(open|token|oauth)$")]
    access: Option<String>,
    /// The signed-in user the session belongs to; named by the admin only
    /// (a signed-in user's sessions are their own).
    owner: Option<OwnerShape>,
    /// Requests a second the session may make.
    #[schema(minimum = 1, maximum = 1000000)]
    rate_limit: Option<u32>,
    /// Per server, which of its tools the session shows, under what names
    /// and with what descriptions, by the backend's own names.
    #[schema(value_type = Option<HashMap<String, ItemRulesShape>>)]
    tools: Option<Value>,
    /// The same rules for prompts.
    #[schema(value_type = Option<HashMap<String, ItemRulesShape>>)]
    prompts: Option<Value>,
    /// `direct` (the default) lists every tool the rules show; `search`
    /// lists three tools that search, describe and call them.
    #[schema(value_type = Option<String>, pattern = "^(direct|search)$")]
    tool_mode: Option<String>,
}

/// A signed-in user: the issuer of their tokens and their subject there.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OwnerShape {
    /// One of the gateway's `--oauth-issuer`s.
    #[schema(examples("https://auth.example.com"))]
    issuer: String,
    /// The `sub` of the user's tokens.
    subject: String,
}

/// One server's rules for its tools (or prompts).
#[derive(ToSchema)]
#[schema(examples(
    json!({"allow": ["echo", "get-*"]}),
    json!({"deny": ["whoami"], "rename": {"add": "plus"}, "description": {"add": "Adds two integers."}})
))]
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

/// Who may use a session's MCP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAccess {
    /// Whoever has its URL.
    Open,
    /// The session token.
    Token,
    /// Its owner's OAuth access token.
    OAuth,
}

impl SessionAccess {
    pub fn name(self) -> &'static str {
        match self {
            SessionAccess::Open => "open",
            SessionAccess::Token => "token",
            SessionAccess::OAuth => "oauth",
        }
    }

    /// A stored session's: a token wins, else an owner signs in.
    pub fn of(requires_token: bool, owned: bool) -> Self {
        match (requires_token, owned) {
            (true, _) => SessionAccess::Token,
            (false, true) => SessionAccess::OAuth,
            (false, false) => SessionAccess::Open,
        }
    }
}

/// A valid create-session body.
pub(super) struct CreateSession {
    /// The session, but for its token's digest and its owner.
    pub session: NewSession,
    /// `access` (or `require_token`), when the body names it.
    pub access: Option<SessionAccess>,
    /// `owner`, when the body names one.
    pub owner: Option<Owner>,
}

/// Longest issuer or subject an `owner` may name.
const MAX_OWNER_CHARS: usize = 1024;

/// Checks a create-session body against the registry: every error names the
/// field and the reason, and nothing is stored unless all of it is valid.
pub(super) fn parse_create_session(
    value: Value,
    registry: &Registry,
) -> Result<CreateSession, ApiError> {
    let Value::Object(mut body) = value else {
        return Err(ApiError::bad_request("body", "must be a JSON object"));
    };
    let servers = parse_servers(body.remove("servers"), registry)?;
    let name = body.remove("name").map(parse_name).transpose()?.flatten();
    let labels = match body.remove("labels") {
        None | Some(Value::Null) => Labels::new(),
        Some(value) => parse_labels(value)?,
    };
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
    let access = match body.remove("access") {
        None | Some(Value::Null) => None,
        Some(value) => Some(match value.as_str() {
            Some("open") => SessionAccess::Open,
            Some("token") => SessionAccess::Token,
            Some("oauth") => SessionAccess::OAuth,
            _ => {
                return Err(ApiError::bad_request(
                    "access",
                    "must be \"open\", \"token\" or \"oauth\"",
                ));
            }
        }),
    };
    let access = match (access, require_token) {
        (access, false) => access,
        (None | Some(SessionAccess::Token), true) => Some(SessionAccess::Token),
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "access",
                "conflicts with \"require_token\": true; give one of them",
            ));
        }
    };
    let owner = match body.remove("owner") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_owner(value)?),
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
            owner: None,
            name,
            labels,
        },
        access,
        owner,
    })
}

/// Longest session name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 64;
/// Most labels a session has.
pub(crate) const MAX_LABELS: usize = 16;
/// Longest label key or value, in characters.
pub(crate) const MAX_LABEL_CHARS: usize = 63;

/// `name`: 1 to 64 characters, no control characters, not only spaces;
/// null names nothing.
fn parse_name(value: Value) -> Result<Option<String>, ApiError> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(text) => text,
        _ => return Err(ApiError::bad_request("name", "must be a string")),
    };
    check_name(&text)?;
    Ok(Some(text))
}

/// Why `text` is no session name, if it is not one; also checks the
/// `name` filter of the sessions list.
pub(crate) fn check_name(text: &str) -> Result<(), ApiError> {
    let problem = if text.trim().is_empty() {
        Some("must not be empty or only spaces".to_owned())
    } else if text.chars().count() > MAX_NAME_CHARS {
        Some(format!("must be at most {MAX_NAME_CHARS} characters"))
    } else if text.chars().any(char::is_control) {
        Some("must not hold control characters".to_owned())
    } else {
        None
    };
    problem.map_or(Ok(()), |reason| Err(ApiError::bad_request("name", reason)))
}

/// `labels`: an object of at most 16 string values.
fn parse_labels(value: Value) -> Result<Labels, ApiError> {
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request(
            "labels",
            "must be an object of strings: {\"team\": \"platform\"}",
        ));
    };
    if map.len() > MAX_LABELS {
        return Err(ApiError::bad_request(
            "labels",
            format!("has {} labels; at most {MAX_LABELS} are allowed", map.len()),
        ));
    }
    let mut labels = Labels::new();
    for (key, value) in map {
        check_label_key(&key).map_err(|reason| {
            ApiError::bad_request("labels", format!("key {} {reason}", quoted(&key)))
        })?;
        let Value::String(value) = value else {
            return Err(ApiError::bad_request(
                format!("labels.{key}"),
                "must be a string",
            ));
        };
        check_label_value(&value)
            .map_err(|reason| ApiError::bad_request(format!("labels.{key}"), reason))?;
        labels.insert(key, value);
    }
    Ok(labels)
}

/// Why `key` is no label key, if it is not one.
pub(crate) fn check_label_key(key: &str) -> Result<(), String> {
    let starts_well = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !starts_well
        || key.chars().count() > MAX_LABEL_CHARS
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
    {
        return Err(format!(
            "is no label key: use 1 to {MAX_LABEL_CHARS} letters, digits and . _ - /, starting with a letter or digit"
        ));
    }
    Ok(())
}

/// Why `value` is no label value, if it is not one.
pub(crate) fn check_label_value(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_LABEL_CHARS
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
    {
        return Err(format!(
            "is no label value: use 0 to {MAX_LABEL_CHARS} letters, digits and . _ - / : @"
        ));
    }
    Ok(())
}

/// `owner`: `{"issuer": "…", "subject": "…"}`, both non-empty.
fn parse_owner(value: Value) -> Result<Owner, ApiError> {
    let Value::Object(mut fields) = value else {
        return Err(ApiError::bad_request(
            "owner",
            "must be an object: {\"issuer\": \"…\", \"subject\": \"…\"}",
        ));
    };
    let mut text = |name: &str| match fields.remove(name) {
        Some(Value::String(text))
            if !text.is_empty() && text.chars().count() <= MAX_OWNER_CHARS =>
        {
            Ok(text)
        }
        _ => Err(ApiError::bad_request(
            format!("owner.{name}"),
            format!("is required: a string of 1 to {MAX_OWNER_CHARS} characters"),
        )),
    };
    let owner = Owner {
        issuer: text("issuer")?,
        subject: text("subject")?,
    };
    if let Some(field) = fields.keys().next() {
        return Err(ApiError::bad_request(
            format!("owner.{field}"),
            "unknown field; expected issuer, subject",
        ));
    }
    Ok(owner)
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
        if let Some(problem) = credential_problem(secret) {
            return Err(ApiError::bad_request(secret_field, problem));
        }
        credentials.insert(name.to_owned(), SecretString::from(secret.clone()));
    }
    Ok(credentials)
}
