//! The merged lists of named items (tools, prompts) of one session, and
//! the lookup tables that route each qualified name back to its backend and
//! original name.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::curation::CompiledRules;
use super::item_kind::NamedKind;
use super::search::{SearchModel, SemanticIndex, ToolIndex};
use crate::backend::{BackendError, Replay};
use crate::mcp::naming;
use crate::mcp::param_headers::{self, ParamHeader};

/// Whether using `item` of `kind` may be sent again when it is unknown if
/// the backend acted: a tool only when it says so; getting a prompt always.
fn replay_of(kind: NamedKind, item: &Value) -> Replay {
    match kind {
        NamedKind::Tool if declares_idempotent(item) => Replay::Safe,
        NamedKind::Tool => Replay::OnlyIfUnsent,
        NamedKind::Prompt => Replay::Safe,
    }
}

/// Where a qualified name leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Index of the backend in the MCP session's backend list.
    pub backend: usize,
    /// The item's name on its backend.
    pub name: String,
    /// Whether using the item may be sent again after an ambiguous failure.
    pub replay: Replay,
    /// The parameters a tool mirrors into `Mcp-Param-*` headers, if any.
    pub param_headers: Option<Arc<[ParamHeader]>>,
}

/// Two backend items that could not both be given a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub server: String,
    pub original: String,
    pub name: String,
}

/// A rename left out because its new name is the name another item of
/// the list keeps: the renamed item keeps its own name instead, so that no
/// rule hides an item by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameClash {
    pub server: String,
    /// The renamed item's name on its backend.
    pub original: String,
    /// The qualified name the rename makes.
    pub name: String,
    /// The backend name of the item that keeps `name`.
    pub holder: String,
}

impl RenameClash {
    /// The clash as the rule that was left out and why:
    /// `rename.whoami (makes "py__echo", which tool "echo" has; not applied)`.
    pub fn describe(&self, kind: NamedKind) -> String {
        format!(
            "rename.{} (makes {:?}, which {} {:?} has; not applied)",
            self.original,
            self.name,
            kind.noun(),
            self.holder
        )
    }
}

/// One backend's items of one kind, as listed by the backend.
pub struct BackendItems<'a> {
    pub backend: usize,
    pub server: &'a str,
    /// `<server><separator>`, or empty when names are not prefixed.
    pub prefix: String,
    pub items: Vec<Value>,
    /// What the session shows of them, if its creator set rules.
    pub rules: Option<&'a CompiledRules>,
}

/// The merged list clients see, and the table that routes calls.
#[derive(Debug)]
pub struct Catalogue {
    pub items: Arc<Vec<Value>>,
    routes: HashMap<String, Route>,
    pub conflicts: Vec<Conflict>,
    pub rename_clashes: Vec<RenameClash>,
    pub built_at: Instant,
    /// When it stops being fresh, whatever backends announce.
    pub expires_at: Instant,
    /// The changes backends had announced when its listing started (see
    /// `Catalogues`).
    pub changes_seen: u64,
    /// Backends (by index) whose list failed, and why: a name of theirs is
    /// answered with that failure (busy, say), not as an unknown name.
    pub left_out: Vec<(usize, BackendError)>,
    /// The search index over its items, built on the first search (with
    /// the list, in search mode) or taken from the list before when the
    /// items are the same: once per list, never per query.
    index: OnceLock<Arc<ToolIndex>>,
    /// The embeddings of its tools, once a sentence model made them.
    semantic: OnceLock<Arc<SemanticIndex>>,
    /// Set when their making has started.
    semantic_started: AtomicBool,
    /// Set when their making has ended, made or not, and told to waiters.
    semantic_done: AtomicBool,
    semantic_ended: Notify,
}

/// A backend item on its way into the catalogue.
struct Entry<'a> {
    backend: usize,
    server: &'a str,
    prefix: String,
    original: String,
    /// `prefix + original` made acceptable to hosts, or the new name.
    readable: String,
    /// Whether `readable` is a rule's new name.
    renamed: bool,
    /// Whether `readable` differs from `prefix + original`.
    altered: bool,
    item: Value,
    param_headers: Option<Arc<[ParamHeader]>>,
}

impl Catalogue {
    /// Merges backend lists. Names do not depend on list order: when several
    /// tools map to one readable name, a tool whose name needed no change
    /// keeps it and every altered one gets a hash suffix. A tool still
    /// without a name of its own (a backend listing one tool twice) is left
    /// out and reported, never overwritten. A rename whose new name another
    /// item keeps is left out and reported (see [`RenameClash`]).
    pub fn build(kind: NamedKind, sources: Vec<BackendItems<'_>>) -> Self {
        let mut conflicts = Vec::new();
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        for source in sources {
            for mut item in source.items {
                let Some(original) = item.get("name").and_then(Value::as_str).map(str::to_owned)
                else {
                    tracing::warn!(
                        server = source.server,
                        kind = kind.noun(),
                        "backend listed an item without a name; left out"
                    );
                    continue;
                };
                let rules = source.rules;
                if rules.is_some_and(|rules| !rules.shows(&original)) {
                    continue;
                }
                // A tool whose definition clients must refuse is left out.
                let param_headers = match kind {
                    NamedKind::Tool => match item.get("inputSchema").map(param_headers::declared) {
                        Some(Err(reason)) => {
                            tracing::warn!(server = source.server, name = %original, %reason, "backend listed a tool with an invalid x-mcp-header; left out");
                            continue;
                        }
                        Some(Ok(declared)) if !declared.is_empty() => Some(Arc::from(declared)),
                        _ => None,
                    },
                    NamedKind::Prompt => None,
                };
                if !seen.insert((source.backend, original.clone())) {
                    tracing::warn!(server = source.server, kind = kind.noun(), name = %original, "backend listed an item twice; the copy is left out");
                    conflicts.push(Conflict {
                        server: source.server.to_owned(),
                        name: naming::qualify(&source.prefix, &original),
                        original,
                    });
                    continue;
                }
                // A new name was checked against the naming rules when the
                // session was created.
                let (readable, altered, renamed) =
                    match rules.and_then(|rules| rules.renamed(&original)) {
                        Some(renamed) => (format!("{}{renamed}", source.prefix), false, true),
                        None => {
                            let (readable, altered) = own_name(&source.prefix, &original);
                            (readable, altered, false)
                        }
                    };
                if let (Some(text), Some(object)) = (
                    rules.and_then(|rules| rules.described(&original)),
                    item.as_object_mut(),
                ) {
                    object.insert("description".to_owned(), Value::String(text.to_owned()));
                }
                entries.push(Entry {
                    backend: source.backend,
                    server: source.server,
                    prefix: source.prefix.clone(),
                    original,
                    readable,
                    renamed,
                    altered,
                    item,
                    param_headers,
                });
            }
        }
        let rename_clashes = undo_clashing_renames(kind, &mut entries);
        let mut readable_uses: HashMap<String, usize> = HashMap::new();
        for entry in &entries {
            *readable_uses.entry(entry.readable.clone()).or_default() += 1;
        }

        let mut items = Vec::with_capacity(entries.len());
        let mut routes = HashMap::with_capacity(entries.len());
        for mut entry in entries {
            let name = if readable_uses[&entry.readable] == 1 || !entry.altered {
                entry.readable
            } else {
                naming::with_hash(&entry.readable, &entry.prefix, &entry.original)
            };
            if routes.contains_key(&name) {
                tracing::warn!(server = entry.server, kind = kind.noun(), original = %entry.original, %name, "name conflict; item left out");
                conflicts.push(Conflict {
                    server: entry.server.to_owned(),
                    original: entry.original,
                    name,
                });
                continue;
            }
            let replay = replay_of(kind, &entry.item);
            if let Some(object) = entry.item.as_object_mut() {
                object.insert("name".to_owned(), Value::String(name.clone()));
            }
            routes.insert(
                name,
                Route {
                    backend: entry.backend,
                    name: entry.original,
                    replay,
                    param_headers: entry.param_headers,
                },
            );
            items.push(entry.item);
        }
        let built_at = Instant::now();
        Catalogue {
            items: Arc::new(items),
            routes,
            conflicts,
            rename_clashes,
            built_at,
            // Fresh for no time, unless its listing says otherwise.
            expires_at: built_at,
            changes_seen: 0,
            left_out: Vec::new(),
            index: OnceLock::new(),
            semantic: OnceLock::new(),
            semantic_started: AtomicBool::new(false),
            semantic_done: AtomicBool::new(false),
            semantic_ended: Notify::new(),
        }
    }

    /// Why backend `index` is missing from the list, if its list failed.
    pub fn left_out(&self, index: usize) -> Option<&BackendError> {
        self.left_out
            .iter()
            .find(|(left_out, _)| *left_out == index)
            .map(|(_, error)| error)
    }

    /// The search index over its items.
    pub fn index(&self) -> &ToolIndex {
        self.index
            .get_or_init(|| Arc::new(ToolIndex::build(&self.items)))
    }

    /// Takes the search indexes of `previous` when it holds the same items,
    /// so that a list refreshed unchanged is not indexed again: a search
    /// over 10,000 tools must not pay 0.1 s each time the list expires.
    pub fn adopt_indexes(&self, previous: &Catalogue) {
        let indexed = previous.index.get().is_some() || previous.semantic.get().is_some();
        // Compared only when there is something to take: a long list costs.
        if !indexed || self.items != previous.items {
            return;
        }
        if let Some(index) = previous.index.get() {
            let _ = self.index.set(index.clone());
        }
        if let Some(semantic) = previous.semantic.get() {
            let _ = self.semantic.set(semantic.clone());
            self.semantic_started.store(true, Ordering::Release);
            self.semantic_done.store(true, Ordering::Release);
        }
    }

    /// The embeddings of its tools, once `model` has made them. The first
    /// call starts that on the blocking pool (seconds for a thousand new
    /// tools); searches rank by words alone until it is done.
    pub fn semantic_index(self: &Arc<Self>, model: &Arc<SearchModel>) -> Option<&SemanticIndex> {
        if let Some(index) = self.semantic.get() {
            return Some(index.as_ref());
        }
        if !self.semantic_started.swap(true, Ordering::AcqRel) {
            let catalogue = self.clone();
            let model = model.clone();
            tokio::task::spawn_blocking(move || {
                match model.index(&catalogue.items) {
                    Ok(index) => {
                        let _ = catalogue.semantic.set(Arc::new(index));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "search mode ranks this list by its words alone")
                    }
                }
                catalogue.semantic_done.store(true, Ordering::Release);
                catalogue.semantic_ended.notify_waiters();
            });
        }
        None
    }

    /// Starts making the embeddings of its tools, if not yet started, and
    /// waits for them at most `wait`: a search that comes while they are
    /// being made ranks by meaning once they are, not by words alone.
    pub async fn await_semantic_index(self: &Arc<Self>, model: &Arc<SearchModel>, wait: Duration) {
        let ended = self.semantic_ended.notified();
        tokio::pin!(ended);
        // Registered before the check, so that an end in between is heard.
        ended.as_mut().enable();
        if self.semantic_index(model).is_none() && !self.semantic_done.load(Ordering::Acquire) {
            let _ = tokio::time::timeout(wait, ended).await;
        }
    }

    /// The item of a qualified name, if the list holds it.
    pub fn item(&self, name: &str) -> Option<&Value> {
        self.items
            .iter()
            .find(|item| item.get("name").and_then(Value::as_str) == Some(name))
    }

    /// The route of a qualified name, if the list holds it.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }
}

/// An item's qualified name when no rule renames it, and whether it had to
/// be altered to suit hosts.
fn own_name(prefix: &str, original: &str) -> (String, bool) {
    let readable = naming::qualify(prefix, original);
    let altered = readable != format!("{prefix}{original}");
    (readable, altered)
}

/// Gives every renamed entry whose new name an entry keeps under its own
/// name its own name back, and reports it. An entry given its own name
/// back may in turn take the new name of another rename (`a`→`b` undone
/// while `c`→`a`), so the names kept are followed until none is new: each
/// entry is undone at most once.
fn undo_clashing_renames(kind: NamedKind, entries: &mut [Entry<'_>]) -> Vec<RenameClash> {
    let mut renamed: HashMap<String, Vec<usize>> = HashMap::new();
    let mut kept: HashMap<String, usize> = HashMap::new();
    for (at, entry) in entries.iter().enumerate() {
        if entry.renamed {
            renamed.entry(entry.readable.clone()).or_default().push(at);
        } else {
            kept.entry(entry.readable.clone()).or_insert(at);
        }
    }
    let mut clashes = Vec::new();
    if renamed.is_empty() {
        return clashes;
    }
    let mut names: Vec<String> = kept.keys().cloned().collect();
    while let Some(name) = names.pop() {
        let (Some(undone), Some(&holder)) = (renamed.remove(&name), kept.get(&name)) else {
            continue;
        };
        let holder = entries[holder].original.clone();
        for at in undone {
            let entry = &mut entries[at];
            tracing::warn!(server = entry.server, kind = kind.noun(), original = %entry.original, %name, "a rename makes a name another item has; the item keeps its own");
            clashes.push(RenameClash {
                server: entry.server.to_owned(),
                original: entry.original.clone(),
                name: name.clone(),
                holder: holder.clone(),
            });
            let (readable, altered) = own_name(&entry.prefix, &entry.original);
            entry.readable = readable.clone();
            entry.altered = altered;
            entry.renamed = false;
            if !kept.contains_key(&readable) {
                kept.insert(readable.clone(), at);
                names.push(readable);
            }
        }
    }
    clashes.sort_by(|a, b| (&a.server, &a.original).cmp(&(&b.server, &b.original)));
    clashes
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
    use crate::mux::curation::ItemRules;
    use serde_json::json;

    fn source<'a>(backend: usize, server: &'a str, items: Vec<Value>) -> BackendItems<'a> {
        BackendItems {
            backend,
            server,
            prefix: format!("{server}__"),
            items,
            rules: None,
        }
    }

    #[test]
    fn a_list_refreshed_unchanged_keeps_its_search_index_and_a_changed_one_does_not() {
        let tools = |description: &str| {
            vec![source(
                0,
                "a",
                vec![json!({"name": "merge", "description": description})],
            )]
        };
        let first = Catalogue::build(NamedKind::Tool, tools("Merge a pull request"));
        let index = first.index() as *const ToolIndex;
        let unchanged = Catalogue::build(NamedKind::Tool, tools("Merge a pull request"));
        unchanged.adopt_indexes(&first);
        assert!(
            std::ptr::eq(unchanged.index(), index),
            "the index is shared"
        );
        let changed = Catalogue::build(NamedKind::Tool, tools("Land a pull request"));
        changed.adopt_indexes(&first);
        assert!(!std::ptr::eq(changed.index(), index), "a new index");
        assert_eq!(changed.index().search("land", 1).len(), 1);
    }

    #[test]
    fn a_tool_mirroring_parameters_into_headers_routes_them_and_an_invalid_one_is_left_out() {
        let region = json!({ "type": "string", "x-mcp-header": "Region" });
        let catalogue = Catalogue::build(
            NamedKind::Tool,
            vec![source(
                0,
                "a",
                vec![
                    json!({"name": "query", "inputSchema": {"type": "object", "properties": {"region": region}}}),
                    json!({"name": "bad", "inputSchema": {"type": "object", "properties": {"n": {"type": "number", "x-mcp-header": "N"}}}}),
                ],
            )],
        );
        let names: Vec<_> = catalogue.items.iter().map(|t| t["name"].clone()).collect();
        assert_eq!(names, [json!("a__query")]);
        let headers = catalogue
            .route("a__query")
            .and_then(|route| route.param_headers.clone())
            .expect("declared");
        assert_eq!(headers[0].header, "Mcp-Param-Region");
        assert_eq!(headers[0].path, ["region"]);
        assert_eq!(catalogue.route("a__bad"), None);
    }

    #[test]
    fn tools_are_prefixed_and_routed_to_their_backend() {
        let catalogue = Catalogue::build(
            NamedKind::Tool,
            vec![
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
            ],
        );
        let names: Vec<_> = catalogue
            .items
            .iter()
            .map(|t| t["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(names, ["a__echo", "b__echo"]);
        assert_eq!(catalogue.items[0]["inputSchema"], json!({"type": "object"}));
        assert_eq!(
            catalogue.route("b__echo"),
            Some(&Route {
                backend: 1,
                name: "echo".into(),
                replay: Replay::Safe,
                param_headers: None,
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
            .items
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
        let forward = Catalogue::build(
            NamedKind::Tool,
            vec![source(
                0,
                "a",
                vec![json!({"name": "x.y"}), json!({"name": "x_y"})],
            )],
        );
        let backward = Catalogue::build(
            NamedKind::Tool,
            vec![source(
                0,
                "a",
                vec![json!({"name": "x_y"}), json!({"name": "x.y"})],
            )],
        );
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
    fn a_session_shows_its_tools_under_its_rules() {
        let rules = ItemRules {
            allow: Some(vec!["get-*".into(), "add".into(), "whoami".into()]),
            deny: vec!["whoami".into()],
            rename: std::collections::BTreeMap::from([("add".into(), "plus".into())]),
            description: std::collections::BTreeMap::from([(
                "add".into(),
                "Adds two integers.".into(),
            )]),
        }
        .compile();
        let mut py = source(
            0,
            "py",
            vec![
                json!({"name": "add", "description": "adds"}),
                json!({"name": "whoami"}),
                json!({"name": "get-sum"}),
                json!({"name": "echo"}),
            ],
        );
        py.rules = Some(&rules);
        let catalogue = Catalogue::build(NamedKind::Tool, vec![py]);
        let names: Vec<_> = catalogue
            .items
            .iter()
            .map(|t| t["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(names, ["py__plus", "py__get-sum"]);
        assert_eq!(catalogue.items[0]["description"], "Adds two integers.");
        assert_eq!(
            catalogue.route("py__plus").map(|route| route.name.as_str()),
            Some("add")
        );
        for hidden in ["py__add", "py__whoami", "py__echo"] {
            assert_eq!(catalogue.route(hidden), None, "{hidden}");
        }
    }

    /// Routes by shown name → backend name, and the clashes reported.
    fn renamed_under(
        rename: &[(&str, &str)],
        tools: &[&str],
    ) -> (Vec<(String, String)>, Vec<String>) {
        let rules = ItemRules {
            rename: rename
                .iter()
                .map(|(from, to)| ((*from).to_owned(), (*to).to_owned()))
                .collect(),
            ..ItemRules::default()
        }
        .compile();
        let mut py = source(
            0,
            "py",
            tools.iter().map(|name| json!({ "name": name })).collect(),
        );
        py.rules = Some(&rules);
        let catalogue = Catalogue::build(NamedKind::Tool, vec![py]);
        let mut routes: Vec<_> = routes_by_original(&catalogue)
            .into_iter()
            .map(|(original, name)| (name, original))
            .collect();
        routes.sort();
        let clashes = catalogue
            .rename_clashes
            .iter()
            .map(|clash| clash.describe(NamedKind::Tool))
            .collect();
        assert!(catalogue.conflicts.is_empty(), "{:?}", catalogue.conflicts);
        (routes, clashes)
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn a_rename_onto_a_name_another_tool_keeps_is_left_out_whatever_the_order() {
        for tools in [["whoami", "echo"], ["echo", "whoami"]] {
            let (routes, clashes) = renamed_under(&[("whoami", "echo")], &tools);
            assert_eq!(
                routes,
                pairs(&[("py__echo", "echo"), ("py__whoami", "whoami")])
            );
            assert_eq!(
                clashes,
                ["rename.whoami (makes \"py__echo\", which tool \"echo\" has; not applied)"]
            );
        }
    }

    #[test]
    fn a_rename_undone_frees_no_name_and_takes_none() {
        // `a` keeps its name since `b` is taken, so `c` cannot have `a`.
        let (routes, clashes) = renamed_under(&[("a", "b"), ("c", "a")], &["a", "b", "c", "d"]);
        assert_eq!(
            routes,
            pairs(&[
                ("py__a", "a"),
                ("py__b", "b"),
                ("py__c", "c"),
                ("py__d", "d")
            ])
        );
        assert_eq!(
            clashes,
            [
                "rename.a (makes \"py__b\", which tool \"b\" has; not applied)",
                "rename.c (makes \"py__a\", which tool \"a\" has; not applied)",
            ]
        );
        // A rename onto a name that a rename frees is fine.
        let (routes, clashes) = renamed_under(&[("a", "b"), ("b", "c")], &["a", "b"]);
        assert_eq!(routes, pairs(&[("py__b", "a"), ("py__c", "b")]));
        assert!(clashes.is_empty());
    }

    #[test]
    fn a_tool_listed_twice_is_reported_not_overwritten() {
        let catalogue = Catalogue::build(
            NamedKind::Tool,
            vec![source(
                0,
                "a",
                vec![
                    json!({"name": "t", "description": "first"}),
                    json!({"name": "t"}),
                    json!({"name": "t"}),
                ],
            )],
        );
        assert_eq!(catalogue.items[0]["description"], "first");
        assert_eq!(catalogue.items.len(), 1);
        assert_eq!(catalogue.conflicts.len(), 2);
        assert_eq!(catalogue.conflicts[0].original, "t");
    }
}
