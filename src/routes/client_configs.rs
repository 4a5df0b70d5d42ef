//! Ready-to-paste client configurations for a new session, in the create-
//! session answer: the session URL, and its token's header when it has one.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// A session's entry for each client, ready to paste.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientConfigs {
    /// For `claude_desktop_config.json`: the session through mcp-remote.
    #[schema(value_type = Object)]
    pub claude_desktop: Value,
    /// For Cursor's `mcp.json`.
    #[schema(value_type = Object)]
    pub cursor: Value,
    /// For VS Code's `mcp.json`.
    #[schema(value_type = Object)]
    pub vscode: Value,
    /// A `claude mcp add` command for Claude Code.
    pub claude_code: String,
}

/// The configurations for a session at `url`, named `name` in the client,
/// whose MCP endpoint requires `token`, if any.
pub fn client_configs(name: &str, url: &str, token: Option<&str>) -> ClientConfigs {
    let authorization = token.map(|token| format!("Bearer {token}"));
    let headers = authorization
        .as_ref()
        .map(|value| json!({ "Authorization": value }));
    // mcp-remote bridges stdio-only hosts. Its header value comes from the
    // environment: a space inside an argument breaks on some platforms.
    let mut remote_args = vec![json!("-y"), json!("mcp-remote"), json!(url)];
    let mut remote = json!({ "command": "npx" });
    if let Some(value) = &authorization {
        remote_args.extend([json!("--header"), json!("Authorization:${MCP_MUX_AUTH}")]);
        remote["env"] = json!({ "MCP_MUX_AUTH": value });
    }
    remote["args"] = Value::Array(remote_args);
    let mut cursor = json!({ "url": url });
    let mut vscode = json!({ "type": "http", "url": url });
    if let Some(headers) = &headers {
        cursor["headers"] = headers.clone();
        vscode["headers"] = headers.clone();
    }
    let mut claude_code = format!(
        "claude mcp add --transport http {} {}",
        shell_quoted(name),
        shell_quoted(url)
    );
    if let Some(value) = &authorization {
        claude_code.push_str(" --header ");
        claude_code.push_str(&shell_quoted(&format!("Authorization: {value}")));
    }
    ClientConfigs {
        claude_desktop: json!({ "mcpServers": { name: remote } }),
        cursor: json!({ "mcpServers": { name: cursor } }),
        vscode: json!({ "servers": { name: vscode } }),
        claude_code,
    }
}

/// `text` as one POSIX shell word.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:8000/session/0b7c/mcp";

    #[test]
    fn without_a_token_the_configs_carry_the_url_alone() {
        assert_eq!(
            serde_json::to_value(client_configs("mcp-mux-0b7c", URL, None)).expect("JSON"),
            json!({
                "claude_desktop": { "mcpServers": { "mcp-mux-0b7c": {
                    "command": "npx", "args": ["-y", "mcp-remote", URL],
                } } },
                "cursor": { "mcpServers": { "mcp-mux-0b7c": { "url": URL } } },
                "vscode": { "servers": { "mcp-mux-0b7c": { "type": "http", "url": URL } } },
                "claude_code": format!("claude mcp add --transport http 'mcp-mux-0b7c' '{URL}'"),
            })
        );
    }

    #[test]
    fn with_a_token_each_config_sends_it_as_a_bearer_header() {
        let configs =
            serde_json::to_value(client_configs("m", URL, Some("mmx_abc"))).expect("JSON");
        assert_eq!(
            configs["claude_desktop"]["mcpServers"]["m"],
            json!({
                "command": "npx",
                "args": ["-y", "mcp-remote", URL, "--header", "Authorization:${MCP_MUX_AUTH}"],
                "env": { "MCP_MUX_AUTH": "Bearer mmx_abc" },
            })
        );
        for path in ["/cursor/mcpServers/m/headers", "/vscode/servers/m/headers"] {
            assert_eq!(
                configs.pointer(path),
                Some(&json!({ "Authorization": "Bearer mmx_abc" })),
                "{path}"
            );
        }
        assert_eq!(
            configs["claude_code"],
            format!(
                "claude mcp add --transport http 'm' '{URL}' --header 'Authorization: Bearer mmx_abc'"
            )
        );
    }

    #[test]
    fn a_quote_in_a_url_cannot_end_the_shell_word() {
        assert_eq!(shell_quoted("a'b"), r"'a'\''b'");
    }
}
