//! The `tool_calls` metric and what bounds its series: a backend names its
//! tools, so a tool label is cut to `MAX_LABEL_CHARS`, at most
//! `MAX_TOOLS_PER_SERVER` tools of a server get series of their own (calls
//! to the rest count under `other`), and a tool's series are retired once
//! no kept list names it any more.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Characters a tool label keeps; a longer tool name is cut there.
pub const MAX_LABEL_CHARS: usize = 128;
/// Tools of one server with series of their own.
pub const MAX_TOOLS_PER_SERVER: usize = 100;
/// The tool label of calls to tools past `MAX_TOOLS_PER_SERVER`, or to a
/// tool no kept list names (it vanished while the call ran).
pub const OTHER_TOOL: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CallLabels {
    server: String,
    tool: String,
    outcome: &'static str,
    error_class: &'static str,
}

/// `value` cut to its first `MAX_LABEL_CHARS` characters.
pub fn cut_label(value: &str) -> &str {
    match value.char_indices().nth(MAX_LABEL_CHARS) {
        Some((at, _)) => &value[..at],
        None => value,
    }
}

/// `tools/call` requests by server, tool, outcome and error class.
#[derive(Debug, Default)]
pub struct ToolCalls {
    family: Family<CallLabels, Counter>,
    /// Held while a series is counted or retired, so that a call never
    /// counts into a series being retired and leaves it behind.
    servers: Mutex<HashMap<String, ServerTools>>,
}

/// What one server's tools have: who lists them, and which have series.
#[derive(Debug, Default)]
struct ServerTools {
    /// Kept lists (each a `ToolListings`) that listed the server.
    listings: usize,
    /// Tool labels those lists name, with how many name each.
    listed: HashMap<String, usize>,
    /// Tool labels with series: the counter of each (outcome, error
    /// class), kept so that a call counts without building labels.
    series: HashMap<String, HashMap<(&'static str, &'static str), Counter>>,
}

impl ServerTools {
    /// Tools with series of their own, `other` aside.
    fn own_series(&self) -> usize {
        self.series.len() - usize::from(self.series.contains_key(OTHER_TOOL))
    }
}

impl ToolCalls {
    pub(super) fn family(&self) -> Family<CallLabels, Counter> {
        self.family.clone()
    }

    /// One `tools/call`: `routed` is the backend and the tool's own name
    /// there, None when the name led to no backend (counted with empty
    /// server and tool, so that invented names add no series).
    pub fn record(
        &self,
        routed: Option<(&str, &str)>,
        outcome: &'static str,
        error_class: &'static str,
    ) {
        let Some((server, tool)) = routed else {
            self.family
                .get_or_create(&CallLabels {
                    server: String::new(),
                    tool: String::new(),
                    outcome,
                    error_class,
                })
                .inc();
            return;
        };
        let tool = cut_label(tool);
        // Held while counting: see `servers`.
        let mut servers = self.lock();
        // A server is one the registry lists: its entry is bounded too.
        // Looked up before it is added, so that a call allocates nothing
        // here once its server and tool have series.
        if !servers.contains_key(server) {
            servers.insert(server.to_owned(), ServerTools::default());
        }
        let Some(tools) = servers.get_mut(server) else {
            return;
        };
        let label = if tools.series.contains_key(tool)
            || (tools.listed.contains_key(tool) && tools.own_series() < MAX_TOOLS_PER_SERVER)
        {
            tool
        } else {
            OTHER_TOOL
        };
        if let Some(counter) = tools
            .series
            .get(label)
            .and_then(|kinds| kinds.get(&(outcome, error_class)))
        {
            counter.inc();
            return;
        }
        let counter = self
            .family
            .get_or_create(&CallLabels {
                server: server.to_owned(),
                tool: label.to_owned(),
                outcome,
                error_class,
            })
            .clone();
        counter.inc();
        tools
            .series
            .entry(label.to_owned())
            .or_default()
            .insert((outcome, error_class), counter);
    }

    /// A kept list now names `after` of `server`'s tools where it named
    /// `before` (None: it had not listed the server); tools no list names
    /// any more are retired.
    fn relist(&self, server: &str, before: Option<&HashSet<String>>, after: &HashSet<String>) {
        let mut servers = self.lock();
        let tools = servers.entry(server.to_owned()).or_default();
        let empty = HashSet::new();
        let before = match before {
            Some(before) => before,
            None => {
                tools.listings += 1;
                &empty
            }
        };
        for tool in after.difference(before) {
            *tools.listed.entry(tool.clone()).or_default() += 1;
        }
        for tool in before.difference(after) {
            self.unlist(server, tools, tool);
        }
    }

    /// A kept list that named `listed` of `server`'s tools is gone. Once
    /// no list names the server, all its tool series go, `other` too.
    fn forget(&self, server: &str, listed: &HashSet<String>) {
        let mut servers = self.lock();
        let Some(tools) = servers.get_mut(server) else {
            return;
        };
        for tool in listed {
            self.unlist(server, tools, tool);
        }
        tools.listings = tools.listings.saturating_sub(1);
        if tools.listings == 0 {
            let labels: Vec<String> = tools.series.keys().cloned().collect();
            for label in labels {
                self.retire(server, tools, &label);
            }
            servers.remove(server);
        }
    }

    fn unlist(&self, server: &str, tools: &mut ServerTools, tool: &str) {
        let Some(count) = tools.listed.get_mut(tool) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            tools.listed.remove(tool);
            if tool != OTHER_TOOL {
                self.retire(server, tools, tool);
            }
        }
    }

    fn retire(&self, server: &str, tools: &mut ServerTools, label: &str) {
        let Some(outcomes) = tools.series.remove(label) else {
            return;
        };
        for (outcome, error_class) in outcomes.into_keys() {
            self.family.remove(&CallLabels {
                server: server.to_owned(),
                tool: label.to_owned(),
                outcome,
                error_class,
            });
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, ServerTools>> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The tools one kept list names, per server, for as long as it is kept:
/// dropping it forgets them.
#[derive(Debug)]
pub struct ToolListings {
    calls: Arc<ToolCalls>,
    listed: Mutex<HashMap<String, HashSet<String>>>,
}

impl ToolListings {
    pub fn new(calls: Arc<ToolCalls>) -> Self {
        ToolListings {
            calls,
            listed: Mutex::default(),
        }
    }

    /// `server` listed `names` (the backend's own names) this time.
    pub fn note<'a>(&self, server: &str, names: impl IntoIterator<Item = &'a str>) {
        let after: HashSet<String> = names
            .into_iter()
            .map(|name| cut_label(name).to_owned())
            .collect();
        let mut listed = self.lock();
        self.calls.relist(server, listed.get(server), &after);
        listed.insert(server.to_owned(), after);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.listed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ToolListings {
    fn drop(&mut self) {
        for (server, listed) in self.lock().drain() {
            self.calls.forget(&server, &listed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each series as `server/tool/outcome`.
    fn series(calls: &ToolCalls) -> Vec<String> {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("calls", "calls", calls.family());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        let mut found: Vec<String> = text
            .lines()
            .filter(|line| line.starts_with("calls_total{"))
            .map(|line| {
                let value = |key: &str| {
                    let start = line.find(&format!("{key}=\"")).expect("label") + key.len() + 2;
                    let end = start + line[start..].find('"').expect("closing quote");
                    line[start..end].to_owned()
                };
                format!("{}/{}/{}", value("server"), value("tool"), value("outcome"))
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn a_label_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_LABEL_CHARS + 5);
        assert_eq!(cut_label(&long), "é".repeat(MAX_LABEL_CHARS));
        assert_eq!(cut_label("short"), "short");
        let exact = "x".repeat(MAX_LABEL_CHARS);
        assert_eq!(cut_label(&exact), exact);
    }

    #[test]
    fn tools_past_the_cap_or_not_listed_count_as_other_and_vanished_ones_are_retired() {
        let calls = Arc::new(ToolCalls::default());
        let listings = ToolListings::new(calls.clone());
        let names: Vec<String> = (0..MAX_TOOLS_PER_SERVER + 3)
            .map(|n| format!("t{n}"))
            .collect();
        listings.note("a", names.iter().map(String::as_str));
        for name in &names {
            calls.record(Some(("a", name)), "ok", "");
        }
        calls.record(Some(("a", "never-listed")), "error", "timeout");
        let counted = series(&calls);
        assert_eq!(counted.len(), MAX_TOOLS_PER_SERVER + 2, "{counted:?}");
        assert!(counted.contains(&"a/other/ok".to_owned()));
        assert!(counted.contains(&"a/other/error".to_owned()));

        // t0 is no longer listed: its series goes, and its slot is free.
        listings.note("a", names[1..].iter().map(String::as_str));
        assert!(!series(&calls).contains(&"a/t0/ok".to_owned()));
        calls.record(Some(("a", &names[MAX_TOOLS_PER_SERVER])), "ok", "");
        assert!(series(&calls).contains(&format!("a/t{MAX_TOOLS_PER_SERVER}/ok")));

        // Another list still names t1 when this one is gone.
        let other = ToolListings::new(calls.clone());
        other.note("a", ["t1"]);
        drop(listings);
        assert_eq!(series(&calls), ["a/other/error", "a/other/ok", "a/t1/ok"]);
        drop(other);
        assert!(series(&calls).is_empty());
    }

    #[test]
    fn unrouted_calls_keep_one_series_per_outcome() {
        let calls = ToolCalls::default();
        for _ in 0..3 {
            calls.record(None, "error", "unknown_tool");
        }
        assert_eq!(series(&calls), ["//error"]);
    }
}
