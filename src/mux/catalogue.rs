//! The merged tool list of one MCP session and the lookup table that routes
//! each qualified name back to its backend and original name.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::backend::Replay;
use crate::mcp::naming;

/// Where a qualified tool name leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRoute {
    /// Index of the backend in the MCP session's backend list.
    pub backend: usize,
    /// The tool's name on its backend.
    pub name: String,
    /// Whether the tool declares that a second run is harmless.
    pub replay: Replay,
}

/// Two backend tools that could not both be given a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub server: String,
    pub tool: String,
    pub name: String,
}

/// One backend's tools, as listed by the backend.
pub struct BackendTools<'a> {
    pub backend: usize,
    pub server: &'a str,
    /// `<server><separator>`, or empty when names are not prefixed.
    pub prefix: String,
    pub tools: Vec<Value>,
}

/// The merged list clients see, and the table that routes calls.
#[derive(Debug, Default)]
pub struct Catalogue {
    pub tools: Vec<Value>,
    routes: HashMap<String, ToolRoute>,
    pub conflicts: Vec<Conflict>,
}

impl Catalogue {
    /// Merges backend lists in the order given. A name already taken by
    /// another tool gets a hash suffix; a tool whose name stays taken even
    /// then (a backend listing one tool twice) is left out and reported,
    /// never overwritten.
    pub fn build(sources: Vec<BackendTools<'_>>) -> Self {
        let mut catalogue = Catalogue::default();
        for source in sources {
            for mut tool in source.tools {
                let Some(original) = tool.get("name").and_then(Value::as_str).map(str::to_owned)
                else {
                    tracing::warn!(
                        server = source.server,
                        "backend listed a tool without a name; left out"
                    );
                    continue;
                };
                let readable = naming::qualify(&source.prefix, &original);
                let name = match catalogue.routes.get(&readable) {
                    None => readable,
                    // The same tool listed twice by one backend.
                    Some(route) if route.backend == source.backend && route.name == original => {
                        readable
                    }
                    Some(_) => naming::with_hash(&readable, &source.prefix, &original),
                };
                if catalogue.routes.contains_key(&name) {
                    tracing::warn!(server = source.server, tool = %original, %name, "tool name conflict; tool left out");
                    catalogue.conflicts.push(Conflict {
                        server: source.server.to_owned(),
                        tool: original,
                        name,
                    });
                    continue;
                }
                let replay = if declares_idempotent(&tool) {
                    Replay::Safe
                } else {
                    Replay::OnlyIfUnsent
                };
                if let Some(object) = tool.as_object_mut() {
                    object.insert("name".to_owned(), Value::String(name.clone()));
                }
                catalogue.routes.insert(
                    name,
                    ToolRoute {
                        backend: source.backend,
                        name: original,
                        replay,
                    },
                );
                catalogue.tools.push(tool);
            }
        }
        catalogue
    }

    /// The route of a qualified name, if the list holds it.
    pub fn route(&self, name: &str) -> Option<&ToolRoute> {
        self.routes.get(name)
    }
}

/// `readOnlyHint` or `idempotentHint`: the tool says a repeated call is harmless.
fn declares_idempotent(tool: &Value) -> bool {
    let annotations = tool.get("annotations").and_then(Value::as_object);
    let hint = |key: &str| {
        annotations
            .and_then(|a: &Map<String, Value>| a.get(key))
            .and_then(Value::as_bool)
            == Some(true)
    };
    hint("readOnlyHint") || hint("idempotentHint")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source<'a>(backend: usize, server: &'a str, tools: Vec<Value>) -> BackendTools<'a> {
        BackendTools {
            backend,
            server,
            prefix: format!("{server}__"),
            tools,
        }
    }

    #[test]
    fn tools_are_prefixed_and_routed_to_their_backend() {
        let catalogue = Catalogue::build(vec![
            source(
                0,
                "a",
                vec![json!({"name": "echo", "inputSchema": {"type": "object"}})],
            ),
            source(
                1,
                "b",
                vec![json!({"name": "echo", "annotations": {"readOnlyHint": true}})],
            ),
        ]);
        let names: Vec<_> = catalogue
            .tools
            .iter()
            .map(|t| t["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(names, ["a__echo", "b__echo"]);
        assert_eq!(catalogue.tools[0]["inputSchema"], json!({"type": "object"}));
        assert_eq!(
            catalogue.route("b__echo"),
            Some(&ToolRoute {
                backend: 1,
                name: "echo".into(),
                replay: Replay::Safe
            })
        );
        assert_eq!(
            catalogue.route("a__echo").map(|r| r.replay),
            Some(Replay::OnlyIfUnsent)
        );
        assert_eq!(catalogue.route("echo"), None);
    }

    #[test]
    fn names_that_collide_after_mapping_both_survive() {
        let catalogue = Catalogue::build(vec![source(
            0,
            "a",
            vec![json!({"name": "x.y"}), json!({"name": "x_y"})],
        )]);
        let names: Vec<_> = catalogue
            .tools
            .iter()
            .map(|t| t["name"].as_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(names[0], "a__x_y");
        assert!(names[1].starts_with("a__x_y-"), "{names:?}");
        assert_eq!(
            catalogue.route(&names[0]).map(|r| r.name.as_str()),
            Some("x.y")
        );
        assert_eq!(
            catalogue.route(&names[1]).map(|r| r.name.as_str()),
            Some("x_y")
        );
        assert!(catalogue.conflicts.is_empty());
    }

    #[test]
    fn a_tool_listed_twice_is_reported_not_overwritten() {
        let catalogue = Catalogue::build(vec![source(
            0,
            "a",
            vec![
                json!({"name": "t", "description": "first"}),
                json!({"name": "t"}),
                json!({"name": "t"}),
            ],
        )]);
        assert_eq!(catalogue.tools[0]["description"], "first");
        assert_eq!(catalogue.tools.len(), 1);
        assert_eq!(catalogue.conflicts.len(), 2);
        assert_eq!(catalogue.conflicts[0].tool, "t");
    }
}
