//! `mcp-mux sessions …`: the everyday session jobs, done by a running
//! gateway over its HTTP API (`--url`, with the admin token from
//! `MCP_MUX_ADMIN_TOKEN` when the gateway has one).

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
}

/// A running gateway's HTTP API.
pub struct Gateway {
    url: String,
    admin_token: Option<String>,
    http: reqwest::Client,
}

/// What `sessions create` asks for.
pub struct NewSession {
    pub servers: Vec<String>,
    /// `(server, field, value)`.
    pub credentials: Vec<(String, String, String)>,
    pub require_token: bool,
    pub ttl_seconds: Option<u64>,
}

impl Gateway {
    pub fn new(url: &str, admin_token: Option<String>) -> Self {
        Gateway {
            url: url.trim_end_matches('/').to_owned(),
            admin_token,
            http: reqwest::Client::new(),
        }
    }

    /// The answer to `method path` with `body`, when it is a success.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RemoteError> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = &self.admin_token {
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
                reason: cause_of(&error),
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
        self.call(reqwest::Method::POST, "/create-session", Some(&body))
            .await
    }

    /// Every stored session, all pages.
    pub async fn list(&self) -> Result<Vec<Value>, RemoteError> {
        let mut sessions = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(after) => format!("/sessions?limit=1000&after={after}"),
                None => "/sessions?limit=1000".to_owned(),
            };
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

/// Sessions as a table, one a line.
pub fn sessions_table(sessions: &[Value]) -> String {
    let mut text = format!(
        "{:<36}  {:<25}  {:<25}  {:<5}  servers",
        "session", "created", "expires", "token"
    );
    for session in sessions {
        let servers: Vec<&str> = session["servers"]
            .as_array()
            .map(|servers| servers.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        text.push_str(&format!(
            "\n{:<36}  {:<25}  {:<25}  {:<5}  {}",
            session["session_id"].as_str().unwrap_or_default(),
            session["created_at"].as_str().unwrap_or_default(),
            session["expires_at"].as_str().unwrap_or("-"),
            if session["require_token"] == true {
                "yes"
            } else {
                "no"
            },
            servers.join(", ")
        ));
    }
    text
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
