//! What a session shows of its backends' tools and prompts: which ones,
//! under what names and with what descriptions. Its creator sets the rules
//! at create-session, keyed by server and naming the backends' own names;
//! they are stored with the session and applied where the merged lists are
//! built, so every way in (a listing, a call, the stateless revision) sees
//! the same tools.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::glob::GlobList;
use super::item_kind::NamedKind;

/// The rules for one backend's items of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRules {
    /// Only items matching one of these are shown, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Items matching one of these are hidden, whatever `allow` says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Original name → the name shown after the server's prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
    /// Original name → the description shown instead of the backend's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub description: BTreeMap<String, String>,
}

impl ItemRules {
    pub fn is_empty(&self) -> bool {
        *self == ItemRules::default()
    }

    /// The rules with their patterns compiled, as lists apply them.
    pub fn compile(&self) -> CompiledRules {
        CompiledRules {
            allow: self.allow.as_deref().map(GlobList::compile),
            deny: GlobList::compile(&self.deny),
            rules: self.clone(),
        }
    }
}

/// One backend's rules of one kind, compiled once for every list made
/// under them.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    rules: ItemRules,
    allow: Option<GlobList>,
    deny: GlobList,
}

impl CompiledRules {
    /// Whether an item of this name is shown (and so may be used).
    pub fn shows(&self, name: &str) -> bool {
        !self.deny.matches(name) && self.allow.as_ref().is_none_or(|allow| allow.matches(name))
    }

    /// The name shown for `original` after the prefix, if renamed.
    pub fn renamed(&self, original: &str) -> Option<&str> {
        self.rules.rename.get(original).map(String::as_str)
    }

    /// The description shown for `original`, if replaced.
    pub fn described(&self, original: &str) -> Option<&str> {
        self.rules.description.get(original).map(String::as_str)
    }

    /// The rules that match none of `names` (a backend's whole list), each
    /// as the field that holds it: `allow[1]`, `rename.add`, …
    pub fn unmatched(&self, names: &[&str]) -> Vec<String> {
        let mut unmatched = Vec::new();
        let allow = self.rules.allow.as_deref().unwrap_or_default();
        for (field, patterns, compiled) in [
            ("allow", allow, self.allow.as_ref()),
            ("deny", self.rules.deny.as_slice(), Some(&self.deny)),
        ] {
            let Some(compiled) = compiled else { continue };
            unmatched.extend(
                compiled
                    .unmatched(names)
                    .into_iter()
                    .filter_map(|index| Some((index, patterns.get(index)?)))
                    .map(|(index, pattern)| format!("{field}[{index}] ({pattern:?})")),
            );
        }
        let listed: HashSet<&str> = names.iter().copied().collect();
        for (field, map) in [
            ("rename", &self.rules.rename),
            ("description", &self.rules.description),
        ] {
            unmatched.extend(
                map.keys()
                    .filter(|original| !listed.contains(original.as_str()))
                    .map(|original| format!("{field}.{original}")),
            );
        }
        unmatched
    }
}

/// How a session shows its tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolMode {
    /// Every (shown) tool of every backend, listed.
    #[default]
    Direct,
    /// Three tools that search, describe and call the others.
    Search,
}

impl ToolMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolMode::Direct => "direct",
            ToolMode::Search => "search",
        }
    }
}

/// A session's rules, keyed by server name, as stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Curation {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ItemRules>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompts: BTreeMap<String, ItemRules>,
    #[serde(default)]
    pub tool_mode: ToolMode,
}

impl Curation {
    pub fn is_default(&self) -> bool {
        *self == Curation::default()
    }
}

/// What the latest list of one server showed of its rules.
#[derive(Debug, Default)]
struct Noted {
    /// Rules that matched nothing, as `allow[1] ("get-*")`.
    unmatched: Vec<String>,
    /// Renames left out because their new name is another item's.
    clashing: Vec<String>,
}

/// A session's rules, compiled, together with what the latest lists showed
/// of them: the rules that matched nothing and the renames that clashed,
/// which `GET /session/<id>` reports.
#[derive(Debug, Default)]
pub struct SessionCuration {
    pub rules: Curation,
    /// By (kind's field, server).
    compiled: BTreeMap<(&'static str, String), CompiledRules>,
    noted: Mutex<BTreeMap<(&'static str, String), Noted>>,
}

impl SessionCuration {
    pub fn new(rules: Curation) -> Self {
        let compiled = [NamedKind::Tool, NamedKind::Prompt]
            .into_iter()
            .flat_map(|kind| {
                let by_server = match kind {
                    NamedKind::Tool => &rules.tools,
                    NamedKind::Prompt => &rules.prompts,
                };
                by_server
                    .iter()
                    .map(move |(server, rules)| ((kind.field(), server.clone()), rules.compile()))
            })
            .collect();
        SessionCuration {
            rules,
            compiled,
            noted: Mutex::default(),
        }
    }

    /// The compiled rules for `server`'s items of `kind`, if it has any.
    pub fn compiled(&self, kind: NamedKind, server: &str) -> Option<&CompiledRules> {
        self.compiled.get(&(kind.field(), server.to_owned()))
    }

    fn note(&self, kind: NamedKind, server: &str, update: impl FnOnce(&mut Noted)) {
        let mut noted = self.noted.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (kind.field(), server.to_owned());
        let entry = noted.entry(key.clone()).or_default();
        update(entry);
        if entry.unmatched.is_empty() && entry.clashing.is_empty() {
            noted.remove(&key);
        }
    }

    /// Notes which of `server`'s rules of `kind` matched none of the names
    /// its latest list held.
    pub fn note_listed(&self, kind: NamedKind, server: &str, names: &[&str]) {
        let Some(rules) = self.compiled(kind, server) else {
            return;
        };
        let unmatched = rules.unmatched(names);
        self.note(kind, server, |noted| noted.unmatched = unmatched);
    }

    /// Notes the renames of `server`'s items of `kind` that its latest
    /// list left out, because the new name was another item's: each as
    /// `rename.<original> (<why>)`.
    pub fn note_clashes(&self, kind: NamedKind, server: &str, clashing: Vec<String>) {
        if self.compiled(kind, server).is_none() {
            return;
        }
        self.note(kind, server, |noted| noted.clashing = clashing);
    }

    /// Every rule that matched nothing when last listed, as a field path:
    /// `tools.everything.allow[0] ("get-*")`.
    pub fn unmatched(&self) -> Vec<String> {
        self.noted_paths(|noted| &noted.unmatched)
    }

    /// Every rename left out when last listed because its new name was
    /// another item's, as a field path and why:
    /// `tools.everything.rename.whoami (makes "everything__echo", …)`.
    pub fn clashing(&self) -> Vec<String> {
        self.noted_paths(|noted| &noted.clashing)
    }

    fn noted_paths(&self, rules_of: impl Fn(&Noted) -> &Vec<String>) -> Vec<String> {
        let noted = self.noted.lock().unwrap_or_else(PoisonError::into_inner);
        noted
            .iter()
            .flat_map(|((kind, server), noted)| {
                rules_of(noted)
                    .iter()
                    .map(move |rule| format!("{kind}.{server}.{rule}"))
            })
            .collect()
    }
}

/// Shared by a session and the MCP sessions open on it.
pub type SharedCuration = Arc<SessionCuration>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_over_allow() {
        let rules = ItemRules {
            allow: Some(vec!["get-*".into(), "echo".into()]),
            deny: vec!["get-env".into()],
            ..ItemRules::default()
        }
        .compile();
        assert!(rules.shows("echo"));
        assert!(rules.shows("get-sum"));
        assert!(!rules.shows("get-env"));
        assert!(!rules.shows("add"));
        assert!(ItemRules::default().compile().shows("add"));
    }

    #[test]
    fn rules_that_match_nothing_are_named_by_their_field() {
        let rules = ItemRules {
            allow: Some(vec!["get-*".into(), "nothing-*".into()]),
            deny: vec!["gone".into()],
            rename: BTreeMap::from([("echo".into(), "say".into()), ("old".into(), "new".into())]),
            description: BTreeMap::from([("missing".into(), "text".into())]),
        }
        .compile();
        assert_eq!(
            rules.unmatched(&["echo", "get-sum"]),
            [
                "allow[1] (\"nothing-*\")",
                "deny[0] (\"gone\")",
                "rename.old",
                "description.missing"
            ]
        );
    }

    #[test]
    fn a_session_reports_the_latest_list_of_each_server() {
        let curation = SessionCuration::new(Curation {
            tools: BTreeMap::from([(
                "py".to_owned(),
                ItemRules {
                    deny: vec!["whoami".into()],
                    ..ItemRules::default()
                },
            )]),
            ..Curation::default()
        });
        curation.note_listed(NamedKind::Tool, "py", &["add"]);
        curation.note_listed(NamedKind::Tool, "other", &[]);
        assert_eq!(curation.unmatched(), ["tools.py.deny[0] (\"whoami\")"]);
        curation.note_clashes(
            NamedKind::Tool,
            "py",
            vec!["rename.add (makes \"py__echo\", which tool \"echo\" has; not applied)".into()],
        );
        curation.note_clashes(NamedKind::Tool, "other", vec!["rename.x (why)".into()]);
        assert_eq!(
            curation.clashing(),
            ["tools.py.rename.add (makes \"py__echo\", which tool \"echo\" has; not applied)"]
        );
        curation.note_listed(NamedKind::Tool, "py", &["add", "whoami"]);
        assert!(curation.unmatched().is_empty());
        assert_eq!(
            curation.clashing().len(),
            1,
            "a clash stays until listed again"
        );
        curation.note_clashes(NamedKind::Tool, "py", Vec::new());
        assert!(curation.clashing().is_empty());
    }

    #[test]
    fn stored_rules_read_back_the_same() {
        let curation = Curation {
            tools: BTreeMap::from([(
                "py".to_owned(),
                ItemRules {
                    allow: Some(vec!["*".into()]),
                    rename: BTreeMap::from([("add".into(), "plus".into())]),
                    ..ItemRules::default()
                },
            )]),
            tool_mode: ToolMode::Search,
            ..Curation::default()
        };
        let text = serde_json::to_string(&curation).expect("JSON");
        assert_eq!(
            text,
            r#"{"tools":{"py":{"allow":["*"],"rename":{"add":"plus"}}},"tool_mode":"search"}"#
        );
        assert_eq!(
            serde_json::from_str::<Curation>(&text).expect("read back"),
            curation
        );
        assert_eq!(
            serde_json::from_str::<Curation>("{}").expect("empty"),
            Curation::default()
        );
    }
}
