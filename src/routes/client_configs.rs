//! Ready-to-paste client configurations for a new session, in the create-
//! session answer: the session URL, and its token's header when it has one.
//! The token itself stays out of the files people commit where the client
//! allows: Cursor reads it from the environment, VS Code asks for it once
//! (as a password) and keeps it in its secret storage.

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
    /// For VS Code's `mcp.json`: with `inputs` when the session needs its
    /// token, which VS Code asks for.
    #[schema(value_type = Object)]
    pub vscode: Value,
    /// The environment variable Cursor's entry reads the session token
    /// from, when the session needs one: `export NAME="<session_token>"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// A `claude mcp add` command for Claude Code.
    pub claude_code: String,
}

/// The configurations for a session at `url`, named `name` in the client,
/// whose MCP endpoint requires `token`, if any.
pub fn client_configs(name: &str, url: &str, token: Option<&str>) -> ClientConfigs {
    let authorization = token.map(|token| format!("Bearer {token}"));
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
    let mut vscode_file = json!({});
    let token_env = token.map(|_| token_variable(name));
    if let Some(variable) = &token_env {
        cursor["headers"] = json!({ "Authorization": format!("Bearer ${{env:{variable}}}") });
        let input = format!("{name}-token");
        vscode["headers"] = json!({ "Authorization": format!("Bearer ${{input:{input}}}") });
        vscode_file["inputs"] = json!([{
            "type": "promptString",
            "id": input,
            "description": format!("The session token of {name} (mmx_…)"),
            "password": true,
        }]);
    }
    vscode_file["servers"] = json!({ name: vscode });
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
        vscode: vscode_file,
        token_env,
        claude_code,
    }
}

/// The environment variable that holds the token of the session named
/// `name` in the client: `mcp-mux-0b7c` → `MCP_MUX_0B7C_TOKEN`.
fn token_variable(name: &str) -> String {
    let word: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{word}_TOKEN")
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
        // Cursor and VS Code get the token from outside the file.
        assert_eq!(configs["token_env"], "M_TOKEN");
        assert_eq!(
            configs["cursor"]["mcpServers"]["m"]["headers"],
            json!({ "Authorization": "Bearer ${env:M_TOKEN}" })
        );
        assert_eq!(
            configs["vscode"],
            json!({
                "inputs": [{
                    "type": "promptString", "id": "m-token",
                    "description": "The session token of m (mmx_…)", "password": true,
                }],
                "servers": { "m": {
                    "type": "http", "url": URL,
                    "headers": { "Authorization": "Bearer ${input:m-token}" },
                } },
            })
        );
        assert!(!configs["cursor"].to_string().contains("mmx_abc"));
        assert!(!configs["vscode"].to_string().contains("mmx_abc"));
        assert_eq!(token_variable("mcp-mux-0b7c"), "MCP_MUX_0B7C_TOKEN");
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
