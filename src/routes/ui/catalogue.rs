//! What a session's page shows of its items and its rules: its tools (each
//! with the server it comes from and the rule that renamed or described
//! it), prompts and resources, as the session's plain HTTP calls list them,
//! and the rules, tool mode and unmatched rules that `GET /session/<id>`
//! answers.

use std::collections::BTreeMap;

use serde_json::Value;

use super::html::esc;
use crate::mux::item_kind::NamedKind;
use crate::mux::{ItemRules, ListedItem, McpSession, Session, ToolMode};

/// The session's tools, prompts and resources, as tables.
pub async fn items_sections(mcp_session: &McpSession) -> String {
    let mut body = String::from("<h2>Tools</h2>\n");
    let tools = mcp_session.listed_items(NamedKind::Tool).await;
    body.push_str(&items_table(&tools, "No tools listed."));
    body.push_str("<h2>Prompts</h2>\n");
    let prompts = mcp_session.listed_items(NamedKind::Prompt).await;
    body.push_str(&items_table(&prompts, "No prompts listed."));
    body.push_str("<h2>Resources</h2>\n");
    let resources = mcp_session.resources().await;
    if resources.is_empty() {
        body.push_str("<p class=\"muted\">No resources listed.</p>\n");
    } else {
        body.push_str("<table><tr><th>URI</th><th>Name</th><th>Type</th></tr>\n");
        for resource in resources.iter() {
            let text = |key: &str| resource.get(key).and_then(Value::as_str).unwrap_or("");
            body.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                esc(text("uri")),
                esc(text("name")),
                esc(text("mimeType")),
            ));
        }
        body.push_str("</table>\n");
    }
    body
}

/// The names of the session's tools, for the form that tries one.
pub async fn tool_names(mcp_session: &McpSession) -> Vec<String> {
    mcp_session
        .listed_items(NamedKind::Tool)
        .await
        .iter()
        .filter_map(|listed| listed.item.get("name")?.as_str().map(str::to_owned))
        .collect()
}

/// Tools or prompts: the name clients use, the server and its own name,
/// the description, and the rules that changed them; a tool's input
/// schema folded away.
fn items_table(items: &[ListedItem], none: &str) -> String {
    if items.is_empty() {
        return format!("<p class=\"muted\">{none}</p>\n");
    }
    let mut table = String::from(
        "<table><tr><th>Name</th><th>Backend</th><th>Description</th><th>Changed by</th></tr>\n",
    );
    for listed in items {
        let text = |key: &str| listed.item.get(key).and_then(Value::as_str).unwrap_or("");
        let changed_by: Vec<String> = [&listed.renamed_by, &listed.described_by]
            .into_iter()
            .flatten()
            .map(|rule| format!("<code>{}</code>", esc(rule)))
            .collect();
        let schema = listed
            .item
            .get("inputSchema")
            .and_then(|schema| serde_json::to_string_pretty(schema).ok())
            .map(|schema| {
                format!(
                    "<details><summary>arguments</summary><pre>{}</pre></details>",
                    esc(&schema)
                )
            })
            .unwrap_or_default();
        table.push_str(&format!(
            "<tr><td><code>{name}</code></td><td><code>{server}</code> <span class=\"muted\">as</span> \
             <code>{original}</code></td><td>{description}{schema}</td><td>{changed_by}</td></tr>\n",
            name = esc(text("name")),
            server = esc(&listed.server),
            original = esc(&listed.original),
            description = esc(text("description")),
            changed_by = changed_by.join("<br>"),
        ));
    }
    table.push_str("</table>\n");
    table
}

/// The session's tool mode and rules, with the rules that matched nothing
/// and the renames that clashed when their backends last listed.
pub fn rules_section(session: &Session) -> String {
    let curation = &session.curation;
    let mode = match curation.rules.tool_mode {
        ToolMode::Direct => "direct <span class=\"muted\">(clients list every tool shown)</span>",
        ToolMode::Search => {
            "search <span class=\"muted\">(clients list <code>search_tools</code>, \
             <code>describe_tool</code> and <code>call_tool</code>)</span>"
        }
    };
    let mut body =
        format!("<h2>Rules</h2>\n<table><tr><th>Tool mode</th><td>{mode}</td></tr></table>\n");
    let rules: Vec<(&str, &String, &ItemRules)> = [
        ("tools", &curation.rules.tools),
        ("prompts", &curation.rules.prompts),
    ]
    .into_iter()
    .flat_map(|(field, by_server)| {
        by_server
            .iter()
            .map(move |(server, rules)| (field, server, rules))
    })
    .collect();
    if rules.is_empty() {
        body.push_str("<p class=\"muted\">No rules: every tool and prompt is shown as its backend lists it.</p>\n");
    } else {
        body.push_str(
            "<table><tr><th>Rules</th><th>Allow</th><th>Deny</th><th>Rename</th><th>Description</th></tr>\n",
        );
        for (field, server, rules) in rules {
            let patterns = |patterns: &[String]| {
                patterns
                    .iter()
                    .map(|pattern| format!("<code>{}</code>", esc(pattern)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let allow = match &rules.allow {
                Some(allow) => patterns(allow),
                None => "<span class=\"muted\">all</span>".into(),
            };
            body.push_str(&format!(
                "<tr><td><code>{field}.{server}</code></td><td>{allow}</td><td>{deny}</td>\
                 <td>{rename}</td><td>{description}</td></tr>\n",
                server = esc(server),
                deny = patterns(&rules.deny),
                rename = named(&rules.rename, "→"),
                description = named(&rules.description, ":"),
            ));
        }
        body.push_str("</table>\n");
    }
    for (title, rules) in [
        (
            "Rules that matched nothing when their backend last listed",
            curation.unmatched(),
        ),
        (
            "Renames not applied, because another item has the name",
            curation.clashing(),
        ),
    ] {
        if rules.is_empty() {
            continue;
        }
        body.push_str(&format!("<p>{title}:</p><ul>"));
        for rule in rules {
            body.push_str(&format!("<li><code>{}</code></li>", esc(&rule)));
        }
        body.push_str("</ul>\n");
    }
    body
}

/// A `rename` or `description` object, one entry a line.
fn named(entries: &BTreeMap<String, String>, between: &str) -> String {
    entries
        .iter()
        .map(|(original, text)| format!("<code>{}</code> {between} {}", esc(original), esc(text)))
        .collect::<Vec<_>>()
        .join("<br>")
}
