//! The merged tool list of one MCP session and the lookup table that routes
//! each qualified name back to its backend and original name.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

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
#[derive(Debug)]
pub struct Catalogue {
    pub tools: Vec<Value>,
    routes: HashMap<String, ToolRoute>,
    pub conflicts: Vec<Conflict>,
    pub built_at: Instant,
}

/// A backend tool on its way into the catalogue.
struct Entry<'a> {
    backend: usize,
    server: &'a str,
    prefix: String,
    original: String,
    /// `prefix + original` made acceptable to hosts.
    readable: String,
    /// Whether `readable` differs from `prefix + original`.
    altered: bool,
    tool: Value,
}

impl Catalogue {
    /// Merges backend lists. Names do not depend on list order: when several
    /// tools map to one readable name, a tool whose name needed no change
    /// keeps it and every altered one gets a hash suffix. A tool still
    /// without a name of its own (a backend listing one tool twice) is left
    /// out and reported, never overwritten.
    pub fn build(sources: Vec<BackendTools<'_>>) -> Self {
        let mut conflicts = Vec::new();
        let mut seen = HashSet::new();
        let mut readable_uses: HashMap<String, usize> = HashMap::new();
        let mut entries = Vec::new();
        for source in sources {
            for tool in source.tools {
                let Some(original) = tool.get("name").and_then(Value::as_str).map(str::to_owned)
                else {
                    tracing::warn!(
                        server = source.server,
                        "backend listed a tool without a name; left out"
                    );
                    continue;
                };
                if !seen.insert((source.backend, original.clone())) {
                    tracing::warn!(server = source.server, tool = %original, "backend listed a tool twice; the copy is left out");
                    conflicts.push(Conflict {
                        server: source.server.to_owned(),
                        name: naming::qualify(&source.prefix, &original),
                        tool: original,
                    });
                    continue;
                }
                let readable = naming::qualify(&source.prefix, &original);
                let altered = readable != format!("{}{original}", source.prefix);
                *readable_uses.entry(readable.clone()).or_default() += 1;
                entries.push(Entry {
                    backend: source.backend,
                    server: source.server,
                    prefix: source.prefix.clone(),
                    original,
                    readable,
                    altered,
                    tool,
                });
            }
        }

        let mut tools = Vec::with_capacity(entries.len());
        let mut routes = HashMap::with_capacity(entries.len());
        for mut entry in entries {
            let name = if readable_uses[&entry.readable] == 1 || !entry.altered {
                entry.readable
            } else {
                naming::with_hash(&entry.readable, &entry.prefix, &entry.original)
            };
            if routes.contains_key(&name) {
                tracing::warn!(server = entry.server, tool = %entry.original, %name, "tool name conflict; tool left out");
                conflicts.push(Conflict {
                    server: entry.server.to_owned(),
                    tool: entry.original,
                    name,
                });
                continue;
            }
            let replay = if declares_idempotent(&entry.tool) {
                Replay::Safe
            } else {
                Replay::OnlyIfUnsent
            };
            if let Some(object) = entry.tool.as_object_mut() {
                object.insert("name".to_owned(), Value::String(name.clone()));
            }
            routes.insert(
                name,
                ToolRoute {
                    backend: entry.backend,
                    name: entry.original,
                    replay,
                },
            );
            tools.push(entry.tool);
        }
        Catalogue {
            tools,
            routes,
            conflicts,
            built_at: Instant::now(),
        }
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

    fn routes_by_original(catalogue: &Catalogue) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = catalogue
            .tools
            .iter()
            .map(|tool| {
                let name = tool["name"].as_str().unwrap_or("").to_owned();
                let original = catalogue
                    .route(&name)
                    .map(|r| r.name.clone())
                    .unwrap_or_default();
                (original, name)
            })
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn names_that_collide_after_mapping_both_survive_whatever_the_order() {
        let forward = Catalogue::build(vec![source(
            0,
            "a",
            vec![json!({"name": "x.y"}), json!({"name": "x_y"})],
        )]);
        let backward = Catalogue::build(vec![source(
            0,
            "a",
            vec![json!({"name": "x_y"}), json!({"name": "x.y"})],
        )]);
        let pairs = routes_by_original(&forward);
        assert_eq!(pairs, routes_by_original(&backward));
        assert_eq!(
            pairs[1],
            ("x_y".to_owned(), "a__x_y".to_owned()),
            "the unaltered name is kept"
        );
        assert_eq!(pairs[0].0, "x.y");
        assert!(pairs[0].1.starts_with("a__x_y-"), "{pairs:?}");
        assert!(forward.conflicts.is_empty());
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
