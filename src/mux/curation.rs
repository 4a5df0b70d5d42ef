//! What a session shows of its backends' tools and prompts: which ones,
//! under what names and with what descriptions. Its creator sets the rules
//! at create-session, keyed by server and naming the backends' own names;
//! they are stored with the session and applied where the merged lists are
//! built, so every way in (a listing, a call, the stateless revision) sees
//! the same tools.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

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
    /// Whether an item of this name is shown (and so may be used).
    pub fn shows(&self, name: &str) -> bool {
        !self.deny.iter().any(|pattern| glob_matches(pattern, name))
            && self
                .allow
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|pattern| glob_matches(pattern, name)))
    }

    /// The name shown for `original` after the prefix, if renamed.
    pub fn renamed(&self, original: &str) -> Option<&str> {
        self.rename.get(original).map(String::as_str)
    }

    /// The description shown for `original`, if replaced.
    pub fn described(&self, original: &str) -> Option<&str> {
        self.description.get(original).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        *self == ItemRules::default()
    }

    /// The rules that match none of `names` (a backend's whole list), each
    /// as the field that holds it: `allow[1]`, `rename.add`, …
    pub fn unmatched(&self, names: &[&str]) -> Vec<String> {
        let matches_none = |pattern: &str| !names.iter().any(|name| glob_matches(pattern, name));
        let lists = [
            ("allow", self.allow.as_deref().unwrap_or_default()),
            ("deny", &self.deny),
        ];
        let mut unmatched: Vec<String> = lists
            .into_iter()
            .flat_map(|(field, patterns)| {
                patterns
                    .iter()
                    .enumerate()
                    .filter(|(_, pattern)| matches_none(pattern))
                    .map(move |(index, pattern)| format!("{field}[{index}] ({pattern:?})"))
            })
            .collect();
        for (field, map) in [("rename", &self.rename), ("description", &self.description)] {
            unmatched.extend(
                map.keys()
                    .filter(|original| !names.contains(&original.as_str()))
                    .map(|original| format!("{field}.{original}")),
            );
        }
        unmatched
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (none included) and every other character for itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
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

    /// The rules for `server`'s items of `kind`, if it has any.
    pub fn rules(&self, kind: NamedKind, server: &str) -> Option<&ItemRules> {
        match kind {
            NamedKind::Tool => self.tools.get(server),
            NamedKind::Prompt => self.prompts.get(server),
        }
    }
}

/// A session's rules together with what the latest lists showed of them:
/// the rules that matched nothing, which `GET /session/<id>` reports.
#[derive(Debug, Default)]
pub struct SessionCuration {
    pub rules: Curation,
    unmatched: Mutex<BTreeMap<(&'static str, String), Vec<String>>>,
}

impl SessionCuration {
    pub fn new(rules: Curation) -> Self {
        SessionCuration {
            rules,
            unmatched: Mutex::default(),
        }
    }

    /// Notes which of `server`'s rules of `kind` matched none of the names
    /// its latest list held.
    pub fn note_listed(&self, kind: NamedKind, server: &str, names: &[&str]) {
        let Some(rules) = self.rules.rules(kind, server) else {
            return;
        };
        let unmatched = rules.unmatched(names);
        let mut noted = self
            .unmatched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (kind.field(), server.to_owned());
        if unmatched.is_empty() {
            noted.remove(&key);
        } else {
            noted.insert(key, unmatched);
        }
    }

    /// Every rule that matched nothing when last listed, as a field path:
    /// `tools.everything.allow[0] ("get-*")`.
    pub fn unmatched(&self) -> Vec<String> {
        let noted = self
            .unmatched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        noted
            .iter()
            .flat_map(|((kind, server), rules)| {
                rules
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
    fn a_star_stands_for_any_run_of_characters() {
        for (pattern, name, matches) in [
            ("echo", "echo", true),
            ("echo", "echoes", false),
            ("get-*", "get-sum", true),
            ("get-*", "get-", true),
            ("get-*", "set-sum", false),
            ("*", "anything", true),
            ("*-sum", "get-sum", true),
            ("*-sum", "get-sums", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("ab*ba", "aba", false),
            ("a**", "a", true),
        ] {
            assert_eq!(glob_matches(pattern, name), matches, "{pattern} on {name}");
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let rules = ItemRules {
            allow: Some(vec!["get-*".into(), "echo".into()]),
            deny: vec!["get-env".into()],
            ..ItemRules::default()
        };
        assert!(rules.shows("echo"));
        assert!(rules.shows("get-sum"));
        assert!(!rules.shows("get-env"));
        assert!(!rules.shows("add"));
        assert!(ItemRules::default().shows("add"));
    }

    #[test]
    fn rules_that_match_nothing_are_named_by_their_field() {
        let rules = ItemRules {
            allow: Some(vec!["get-*".into(), "nothing-*".into()]),
            deny: vec!["gone".into()],
            rename: BTreeMap::from([("echo".into(), "say".into()), ("old".into(), "new".into())]),
            description: BTreeMap::from([("missing".into(), "text".into())]),
        };
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
        curation.note_listed(NamedKind::Tool, "py", &["add", "whoami"]);
        assert!(curation.unmatched().is_empty());
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
