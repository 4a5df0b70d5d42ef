//! `mcp-mux sessions …`: the everyday session jobs, done by a running
//! gateway over its HTTP API (`--url`, with the admin token from
//! `MCP_MUX_ADMIN_TOKEN` when the gateway has one, and a session's own
//! token from `MCP_MUX_SESSION_TOKEN` for its tools).

use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Why a command did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("cannot reach the gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the gateway answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the gateway answered {status} with a body that is not JSON")]
    NotJson { status: u16 },
    #[error("{0}")]
    Argument(String),
}

/// A running gateway's HTTP API.
pub struct Gateway {
    url: String,
    admin_token: Option<String>,
    /// For the session routes of a session that requires its token.
    session_token: Option<String>,
    http: reqwest::Client,
}

/// What `sessions create` asks for.
pub struct NewSession {
    pub servers: Vec<String>,
    /// `(server, field, value)`.
    pub credentials: Vec<(String, String, String)>,
    pub require_token: bool,
    pub ttl_seconds: Option<u64>,
    /// `tool_mode`: `direct` or `search`.
    pub tool_mode: Option<String>,
    /// Requests a second the session takes.
    pub rate_limit: Option<u32>,
    /// The `tools` rules, as create-session takes them.
    pub tools: Option<Value>,
    pub name: Option<String>,
    pub labels: Vec<(String, String)>,
}

impl Gateway {
    pub fn new(url: &str, admin_token: Option<String>) -> Self {
        Gateway {
            url: url.trim_end_matches('/').to_owned(),
            admin_token,
            session_token: None,
            http: reqwest::Client::new(),
        }
    }

    /// The same gateway, sending `token` on a session's own routes (its
    /// tools), which a session that requires its token needs.
    pub fn with_session_token(mut self, token: Option<String>) -> Self {
        self.session_token = token;
        self
    }

    /// The answer to `method path` with `body`, when it is a success.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RemoteError> {
        self.call_as(method, path, body, self.admin_token.as_deref())
            .await
    }

    /// [`Gateway::call`] with `token` as the bearer, if any.
    async fn call_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Value, RemoteError> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| RemoteError::Unreachable {
                url: self.url.clone(),
                reason: reason_unreached(&self.url, &error),
            })?;
        let status = response.status().as_u16();
        let answer: Value = response
            .json()
            .await
            .map_err(|_| RemoteError::NotJson { status })?;
        if !(200..300).contains(&status) {
            let message = answer["message"]
                .as_str()
                .unwrap_or("no message")
                .to_owned();
            return Err(RemoteError::Refused { status, message });
        }
        Ok(answer)
    }

    pub async fn create(&self, new: &NewSession) -> Result<Value, RemoteError> {
        let mut credentials = Map::new();
        for (server, field, value) in &new.credentials {
            let fields = credentials
                .entry(server.clone())
                .or_insert_with(|| json!({}));
            fields[field] = json!(value);
        }
        let mut body = json!({ "servers": new.servers });
        if !credentials.is_empty() {
            body["credentials"] = Value::Object(credentials);
        }
        if new.require_token {
            body["require_token"] = json!(true);
        }
        if let Some(ttl) = new.ttl_seconds {
            body["ttl_seconds"] = json!(ttl);
        }
        if let Some(mode) = &new.tool_mode {
            body["tool_mode"] = json!(mode);
        }
        if let Some(rate) = new.rate_limit {
            body["rate_limit"] = json!(rate);
        }
        if let Some(tools) = &new.tools {
            body["tools"] = tools.clone();
        }
        if let Some(name) = &new.name {
            body["name"] = json!(name);
        }
        if !new.labels.is_empty() {
            let labels: Map<String, Value> = new
                .labels
                .iter()
                .map(|(key, value)| (key.clone(), json!(value)))
                .collect();
            body["labels"] = Value::Object(labels);
        }
        self.call(reqwest::Method::POST, "/create-session", Some(&body))
            .await
    }

    /// A session's tools, after its rules.
    pub async fn tools(&self, id: Uuid) -> Result<Vec<Value>, RemoteError> {
        let mut listed = self
            .call_as(
                reqwest::Method::GET,
                &format!("/session/{id}/tools"),
                None,
                self.session_token.as_deref(),
            )
            .await?;
        Ok(match listed["tools"].take() {
            Value::Array(tools) => tools,
            _ => Vec::new(),
        })
    }

    /// Calls one tool of a session with `arguments`: the tool's result.
    pub async fn call_tool(
        &self,
        id: Uuid,
        tool: &str,
        arguments: &Value,
    ) -> Result<Value, RemoteError> {
        // The name goes into the path: only the characters tool names use.
        let tool = parse_tool_name(tool).map_err(RemoteError::Argument)?;
        self.call_as(
            reqwest::Method::POST,
            &format!("/session/{id}/tools/{tool}"),
            Some(arguments),
            self.session_token.as_deref(),
        )
        .await
    }

    /// A session's latest recorded calls, newest first.
    pub async fn audit(&self, id: Uuid, limit: u32) -> Result<Vec<Value>, RemoteError> {
        let mut page = self
            .call(
                reqwest::Method::GET,
                &format!("/session/{id}/audit?limit={limit}"),
                None,
            )
            .await?;
        Ok(match page["records"].take() {
            Value::Array(records) => records,
            _ => Vec::new(),
        })
    }

    /// Every stored session that passes `filter` (`GET /sessions`'s
    /// parameters), newest first, all pages.
    pub async fn list(&self, filter: &[(&str, String)]) -> Result<Vec<Value>, RemoteError> {
        let mut sessions = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", "1000");
            for (key, value) in filter {
                query.append_pair(key, value);
            }
            if let Some(after) = &after {
                query.append_pair("after", after);
            }
            let path = format!("/sessions?{}", query.finish());
            let mut page = self.call(reqwest::Method::GET, &path, None).await?;
            if let Value::Array(listed) = page["sessions"].take() {
                sessions.extend(listed);
            }
            match page["next_after"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => return Ok(sessions),
            }
        }
    }

    // Ids are `Uuid`s, never text: a path segment such as `../registry`
    // would otherwise reach another route of the gateway.
    pub async fn show(&self, id: Uuid) -> Result<Value, RemoteError> {
        self.call(reqwest::Method::GET, &format!("/session/{id}"), None)
            .await
    }

    pub async fn delete(&self, id: Uuid) -> Result<Value, RemoteError> {
        self.call(reqwest::Method::DELETE, &format!("/session/{id}"), None)
            .await
    }
}

/// The innermost cause of a failed request, which names what went wrong
/// (connection refused, say).
fn cause_of(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// A created session for people: its URL, its token if it has one, and the
/// client configurations to paste.
pub fn describe_created(created: &Value) -> String {
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let mut text = format!(
        "session {}\nMCP URL: {}\n",
        created["session_id"].as_str().unwrap_or_default(),
        created["mcp_url"].as_str().unwrap_or_default()
    );
    if let Some(token) = created["session_token"].as_str() {
        text.push_str(&format!("session token (shown this once): {token}\n"));
    }
    let configs = &created["client_configs"];
    for (title, key) in [
        (
            "Claude Desktop (claude_desktop_config.json)",
            "claude_desktop",
        ),
        ("Cursor (~/.cursor/mcp.json)", "cursor"),
        ("VS Code (.vscode/mcp.json)", "vscode"),
    ] {
        text.push_str(&format!("\n{title}:\n{}\n", pretty(&configs[key])));
    }
    text.push_str(&format!(
        "\nClaude Code:\n{}\n",
        configs["claude_code"].as_str().unwrap_or_default()
    ));
    text
}

/// Rows under `headers`, each column as wide as its widest cell, two
/// spaces apart; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (index, cell) in cells.enumerate() {
            if index > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if index + 1 < widths.len() {
                let pad = widths[index].saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.trim_end().to_owned()
    };
    let mut text = line(&mut headers.iter().copied());
    for row in rows {
        text.push('\n');
        text.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    text
}

fn text_of(value: &Value, missing: &str) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => missing.to_owned(),
        other => other.to_string(),
    }
}

/// Sessions as a table, one a line.
pub fn sessions_table(sessions: &[Value]) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|session| {
            let servers: Vec<&str> = session["servers"]
                .as_array()
                .map(|servers| servers.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let labels: Vec<String> = session["labels"]
                .as_object()
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(key, value)| format!("{key}={}", text_of(value, "")))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                text_of(&session["session_id"], "-"),
                text_of(&session["name"], "-"),
                if labels.is_empty() {
                    "-".to_owned()
                } else {
                    labels.join(",")
                },
                text_of(&session["created_at"], "-"),
                text_of(&session["expires_at"], "-"),
                if session["require_token"] == true {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
                servers.join(", "),
            ]
        })
        .collect();
    table(
        &[
            "session", "name", "labels", "created", "expires", "token", "servers",
        ],
        &rows,
    )
}

/// A session's tools as a table: the name that calls each, and the first
/// line of its description.
pub fn tools_table(tools: &[Value]) -> String {
    let rows: Vec<Vec<String>> = tools
        .iter()
        .map(|tool| {
            let description = tool["description"].as_str().unwrap_or_default();
            vec![
                text_of(&tool["name"], "-"),
                description.lines().next().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    table(&["tool", "description"], &rows)
}

/// Recorded calls as a table, newest first.
pub fn audit_table(records: &[Value]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| {
            vec![
                text_of(&record["at"], "-"),
                text_of(&record["tool"], "-"),
                text_of(&record["backend"], "-"),
                text_of(&record["outcome"], "-"),
                text_of(&record["error_class"], "-"),
                format!("{} ms", text_of(&record["duration_ms"], "?")),
            ]
        })
        .collect();
    table(&["at", "tool", "server", "outcome", "error", "took"], &rows)
}

/// A `--url`: the gateway's base URL, http or https, with a host and no
/// path, query or fragment.
pub fn parse_gateway_url(text: &str) -> Result<String, String> {
    let Ok(url) = url::Url::parse(text) else {
        return Err(if text.contains("://") {
            format!("{text:?} is not a URL")
        } else {
            format!(
                "{text:?} has no scheme: give http://{text} (or https:// for a gateway behind TLS)"
            )
        });
    };
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!(
            "{text:?} is not an http or https URL with a host (such as http://127.0.0.1:8000)"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?} has a path: give the gateway's base URL alone, such as {}://{}",
            url.scheme(),
            &url[url::Position::BeforeHost..url::Position::AfterPort]
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// Why the gateway could not be reached, with a hint when https met a
/// gateway that speaks plain HTTP.
fn reason_unreached(url: &str, error: &reqwest::Error) -> String {
    let cause = cause_of(error);
    let tls_failed = error.is_connect() && {
        let lower = cause.to_ascii_lowercase();
        [
            "tls",
            "ssl",
            "corrupt message",
            "invalidcontenttype",
            "wrong version",
        ]
        .iter()
        .any(|sign| lower.contains(sign))
    };
    if url.starts_with("https://") && tls_failed {
        format!(
            "{cause} (the gateway may speak plain HTTP: try {})",
            url.replacen("https://", "http://", 1)
        )
    } else {
        cause
    }
}

/// A `--credential` value: `server.field=value`.
pub fn parse_credential(text: &str) -> Result<(String, String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected server.field=value".to_owned())?;
    let (server, field) = key
        .split_once('.')
        .filter(|(server, field)| !server.is_empty() && !field.is_empty())
        .ok_or_else(|| "expected server.field=value".to_owned())?;
    Ok((server.to_owned(), field.to_owned(), value.to_owned()))
}

/// A tool name given on the command line: the characters qualified tool
/// names are made of, nothing that could change the path it goes into.
pub fn parse_tool_name(text: &str) -> Result<&str, String> {
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_-.".contains(&byte));
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "{text:?} is not a tool name: tool names use A-Z a-z 0-9 _ - . (as `sessions tools` lists them)"
        ))
    }
}

/// A label, as `--label key=value` gives it; the gateway checks the
/// characters.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

/// A session id given on the command line: a UUID, nothing else.
pub fn parse_session_id(text: &str) -> Result<Uuid, String> {
    Uuid::try_parse(text).map_err(|_| {
        "a session id is a UUID, such as 0b7c5e2a-4f0d-4c55-9a57-3b1f0e0c9d21".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_a_key_and_a_value() {
        assert_eq!(
            parse_label("team=platform"),
            Ok(("team".to_owned(), "platform".to_owned()))
        );
        assert_eq!(parse_label("env="), Ok(("env".to_owned(), String::new())));
        assert_eq!(
            parse_label("team"),
            Err("\"team\" is not key=value".to_owned())
        );
        assert_eq!(parse_label("=x"), Err("\"=x\" is not key=value".to_owned()));
    }

    #[test]
    fn a_session_id_is_a_uuid_and_nothing_else() {
        let id = "0b7c5e2a-4f0d-4c55-9a57-3b1f0e0c9d21";
        assert_eq!(
            parse_session_id(id).map(|id| id.to_string()),
            Ok(id.to_owned())
        );
        for bad in [
            "",
            "x/../0b7c5e2a-4f0d-4c55-9a57-3b1f0e0c9d21",
            "../registry",
            "0b7c5e2a-4f0d-4c55-9a57-3b1f0e0c9d21/mcp",
            "0b7c5e2a-4f0d-4c55-9a57-3b1f0e0c9d21?x=1",
            "%2e%2e",
        ] {
            assert_eq!(
                parse_session_id(bad),
                Err("a session id is a UUID, such as 0b7c5e2a-4f0d-4c55-9a57-3b1f0e0c9d21".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_gateway_url_is_a_base_url_with_its_scheme() {
        assert_eq!(
            parse_gateway_url("http://127.0.0.1:8000/"),
            Ok("http://127.0.0.1:8000".into())
        );
        assert_eq!(
            parse_gateway_url("https://mux.example.com"),
            Ok("https://mux.example.com".into())
        );
        assert_eq!(
            parse_gateway_url("127.0.0.1:8000"),
            Err("\"127.0.0.1:8000\" has no scheme: give http://127.0.0.1:8000 (or https:// for a gateway behind TLS)".into())
        );
        assert_eq!(
            parse_gateway_url("http://127.0.0.1:8000/session/x/mcp"),
            Err("\"http://127.0.0.1:8000/session/x/mcp\" has a path: give the gateway's base URL alone, such as http://127.0.0.1:8000".into())
        );
        assert_eq!(
            parse_gateway_url("ftp://host"),
            Err("\"ftp://host\" is not an http or https URL with a host (such as http://127.0.0.1:8000)".into())
        );
    }

    #[test]
    fn a_tool_name_cannot_change_the_path() {
        assert_eq!(parse_tool_name("everything__echo"), Ok("everything__echo"));
        for bad in ["", "../registry", "a/b", "a?b", "é"] {
            assert!(parse_tool_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![
            vec!["a".to_owned(), "long value".to_owned(), "x".to_owned()],
            vec!["longer".to_owned(), "v".to_owned(), "".to_owned()],
        ];
        assert_eq!(
            table(&["one", "two", "three"], &rows),
            "one     two         three\na       long value  x\nlonger  v"
        );
    }

    #[test]
    fn a_credential_is_a_server_a_field_and_a_value() {
        assert_eq!(
            parse_credential("demo.token=a=b.c"),
            Ok(("demo".into(), "token".into(), "a=b.c".into()))
        );
        for bad in ["demo.token", "demotoken=x", ".token=x", "demo.=x"] {
            assert_eq!(
                parse_credential(bad),
                Err("expected server.field=value".into()),
                "{bad}"
            );
        }
    }
}
