//! The three tools a session in search mode lists, and what `search_tools`
//! and `describe_tool` answer: by default a hit is its name, title, one
//! line of description and score; the input schema comes on request.

use serde_json::{Map, Value, json};

use super::Hit;

/// Name of the tool that searches the session's tools.
pub const SEARCH_TOOLS: &str = "search_tools";
/// Name of the tool that shows one tool's description and input schema.
pub const DESCRIBE_TOOL: &str = "describe_tool";
/// Name of the tool that calls one tool by its qualified name.
pub const CALL_TOOL: &str = "call_tool";
/// Hits `search_tools` returns when the client gives no `limit`.
pub const DEFAULT_LIMIT: usize = 5;
/// The most hits `search_tools` returns.
pub const MAX_LIMIT: usize = 50;
/// Characters of a compact hit's description: about one line, enough to
/// choose between the hits; `describe_tool` has the rest.
const MAX_LINE_CHARS: usize = 160;

/// How much `search_tools` tells of each hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Name, title, one line of description, score.
    #[default]
    Compact,
    /// Name, title, whole description, input schema, score.
    Full,
}

impl Detail {
    /// The values `detail` takes, as the refusal of another one names them.
    pub const VALUES: &str = "\"compact\" or \"full\"";

    /// The detail a `detail` argument names.
    pub fn parse(value: &str) -> Option<Detail> {
        match value {
            "compact" => Some(Detail::Compact),
            "full" => Some(Detail::Full),
            _ => None,
        }
    }
}

/// The tools a session in search mode lists instead of its backends' tools.
pub fn search_mode_tools() -> Vec<Value> {
    vec![
        json!({
            "name": SEARCH_TOOLS,
            "title": "Search tools",
            "description": "Find the tools that can do a task, among all the tools of this session. \
                Describe the task in plain words (\"create a calendar event\", \"list open tickets\"). \
                Returns the best matches, best first, each with its name, title, one line of \
                description and a score; describe_tool gives one's input schema (or ask for \
                detail \"full\"). Call one with call_tool.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The task, in a few words"
                    },
                    "limit": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                        "description": "How many tools to return"
                    },
                    "detail": {
                        "type": "string",
                        "enum": ["compact", "full"],
                        "default": "compact",
                        "description": "\"full\" adds each tool's whole description and input schema"
                    }
                },
                "required": ["query"]
            },
            "annotations": { "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false }
        }),
        json!({
            "name": DESCRIBE_TOOL,
            "title": "Describe a tool",
            "description": "The description and input schema of one tool, by the name search_tools \
                gave for it.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "The tool's name, as search_tools gave it" }
                },
                "required": ["name"]
            },
            "annotations": { "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false }
        }),
        json!({
            "name": CALL_TOOL,
            "title": "Call a tool",
            "description": "Call one tool by the name search_tools gave for it, with arguments that \
                match its input schema. Returns the tool's own result.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "The tool's name, as search_tools gave it" },
                    "arguments": { "type": "object", "description": "The tool's arguments" }
                },
                "required": ["name"]
            }
        }),
    ]
}

/// What `describe_tool` tells about one tool: its name, title, description
/// and input schema (the rest of its definition is for hosts, not models).
pub fn tool_summary(item: &Value) -> Value {
    let mut summary = Map::new();
    if let Some(name) = item.get("name") {
        summary.insert("name".to_owned(), name.clone());
    }
    if let Some(title) = title(item) {
        summary.insert("title".to_owned(), title.clone());
    }
    for key in ["description", "inputSchema"] {
        if let Some(value) = item.get(key) {
            summary.insert(key.to_owned(), value.clone());
        }
    }
    Value::Object(summary)
}

/// One hit as `search_tools` tells it.
fn hit_summary(item: &Value, score: f64, detail: Detail) -> Value {
    let mut summary = match detail {
        Detail::Full => tool_summary(item),
        Detail::Compact => {
            let mut summary = Map::new();
            if let Some(name) = item.get("name") {
                summary.insert("name".to_owned(), name.clone());
            }
            if let Some(title) = title(item) {
                summary.insert("title".to_owned(), title.clone());
            }
            if let Some(line) = item
                .get("description")
                .and_then(Value::as_str)
                .map(one_line)
                .filter(|line| !line.is_empty())
            {
                summary.insert("description".to_owned(), Value::String(line));
            }
            Value::Object(summary)
        }
    };
    // Two decimals tell hits apart; more would cost tokens for nothing.
    summary["score"] = json!((score * 100.0).round() / 100.0);
    summary
}

/// The tool's `title`, or its annotations' one.
fn title(item: &Value) -> Option<&Value> {
    item.get("title")
        .filter(|t| t.is_string())
        .or_else(|| item.pointer("/annotations/title").filter(|t| t.is_string()))
}

/// The first sentence of a description's first line, whitespace folded,
/// cut at a word to at most `MAX_LINE_CHARS` characters.
fn one_line(description: &str) -> String {
    let first = description
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let mut line = String::new();
    for word in first.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        // A sentence ends at a full stop after a word, not inside "e.g.".
        if word.len() > 3
            && let Some(stem) = word.strip_suffix('.')
            && !stem.contains('.')
        {
            break;
        }
        if line.chars().count() > MAX_LINE_CHARS {
            break;
        }
    }
    if line.chars().count() <= MAX_LINE_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_LINE_CHARS - 1).collect();
    if let Some(space) = cut.rfind(' ') {
        cut.truncate(space);
    }
    cut.push('…');
    cut
}

/// The result of `search_tools`: the hits' summaries as JSON text, which
/// every client shows to its model.
pub fn search_result(items: &[Value], hits: &[Hit], detail: Detail) -> Value {
    let tools: Vec<Value> = hits
        .iter()
        .filter_map(|hit| Some(hit_summary(items.get(hit.position)?, hit.score, detail)))
        .collect();
    let text = Value::Object(Map::from_iter([("tools".to_owned(), Value::Array(tools))]));
    json!({ "content": [{ "type": "text", "text": text.to_string() }] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(result: &Value) -> Value {
        serde_json::from_str(result["content"][0]["text"].as_str().expect("text")).expect("JSON")
    }

    fn echo() -> Value {
        json!({
            "name": "a__echo",
            "title": "Echo",
            "description": "Echo the text back. Useful for tests.\n\nMore words here.",
            "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } },
            "annotations": { "readOnlyHint": true }
        })
    }

    #[test]
    fn the_search_mode_tools_are_named_and_take_their_arguments() {
        let tools = search_mode_tools();
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(names, [SEARCH_TOOLS, DESCRIBE_TOOL, CALL_TOOL]);
        assert_eq!(tools[0]["inputSchema"]["required"], json!(["query"]));
        assert_eq!(
            tools[0]["inputSchema"]["properties"]["limit"]["maximum"],
            json!(50)
        );
        assert_eq!(
            tools[0]["inputSchema"]["properties"]["detail"]["enum"],
            json!(["compact", "full"])
        );
        assert_eq!(tools[1]["inputSchema"]["required"], json!(["name"]));
        assert_eq!(
            tools[2]["inputSchema"]["properties"]["arguments"]["type"],
            "object"
        );
    }

    #[test]
    fn a_compact_hit_is_its_name_title_first_sentence_and_score() {
        let items = [echo()];
        let hits = [Hit {
            position: 0,
            score: 4.56789,
        }];
        let found = text(&search_result(&items, &hits, Detail::Compact));
        assert_eq!(
            found,
            json!({ "tools": [{
                "name": "a__echo", "title": "Echo",
                "description": "Echo the text back.", "score": 4.57
            }] })
        );
    }

    #[test]
    fn a_full_hit_adds_the_whole_description_and_input_schema() {
        let items = [echo()];
        let hits = [Hit {
            position: 0,
            score: 1.0,
        }];
        let found = text(&search_result(&items, &hits, Detail::Full));
        let hit = &found["tools"][0];
        assert_eq!(hit["description"], items[0]["description"]);
        assert_eq!(hit["inputSchema"]["properties"]["text"]["type"], "string");
        assert_eq!(hit["score"], 1.0);
        assert!(hit.get("annotations").is_none());
        assert_eq!(tool_summary(&items[0])["title"], "Echo");
    }

    #[test]
    fn one_line_is_a_first_sentence_cut_at_a_word() {
        assert_eq!(one_line("Merge a pull request"), "Merge a pull request");
        assert_eq!(
            one_line("  Find teams in Sentry.\n\nUse this tool when: - x"),
            "Find teams in Sentry."
        );
        assert_eq!(
            one_line("Notion | Retrieve a user\nError Responses: 400: 400"),
            "Notion | Retrieve a user"
        );
        assert_eq!(one_line("Use e.g. this one. Then"), "Use e.g. this one.");
        let long = "word ".repeat(100);
        let line = one_line(&long);
        assert!(line.chars().count() <= MAX_LINE_CHARS, "{line}");
        assert!(line.ends_with("word…"), "{line}");
        assert_eq!(one_line(""), "");
    }
}
