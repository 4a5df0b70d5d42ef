//! The held-out evaluation of search mode: five real MCP servers' tool
//! lists (`eval/catalogues/`, captured by `scripts/search-eval/capture.py`)
//! and agent-style queries labelled with their tools before any ranking ran
//! on them (`eval/queries.json`). Ranks them per mode and scores hit@1,
//! hit@5 and MRR (the reciprocal rank of the first relevant tool within
//! the first ten). The search tests assert relative facts on it, and the
//! search bench prints it.

#![allow(dead_code, reason = "the test and the bench each use a part")]

use std::collections::HashSet;

use mcp_mux::mux::search::ToolIndex;
use mcp_mux::mux::search::learning::Choices;
use serde_json::Value;

/// A labelled query.
#[derive(serde::Deserialize)]
pub struct Query {
    pub query: String,
    pub relevant: Vec<String>,
}

/// One catalogue's source and its tools.
pub struct Catalogue {
    pub server: String,
    pub source: String,
    pub tools: Vec<Value>,
}

pub fn catalogues() -> Vec<Catalogue> {
    [
        include_str!("eval/catalogues/github.json"),
        include_str!("eval/catalogues/sentry.json"),
        include_str!("eval/catalogues/notion.json"),
        include_str!("eval/catalogues/playwright.json"),
        include_str!("eval/catalogues/filesystem.json"),
    ]
    .into_iter()
    .map(|text| {
        let mut captured: Value = serde_json::from_str(text).expect("a catalogue is JSON");
        Catalogue {
            server: captured["server"].as_str().unwrap_or_default().to_owned(),
            source: captured["source"].as_str().unwrap_or_default().to_owned(),
            tools: captured["tools"]
                .as_array_mut()
                .map(std::mem::take)
                .unwrap_or_default(),
        }
    })
    .collect()
}

/// The merged list a session over all five servers would show.
pub fn merged_tools() -> Vec<Value> {
    catalogues().into_iter().flat_map(|c| c.tools).collect()
}

/// The held-out queries.
pub fn queries() -> Vec<Query> {
    serde_json::from_str(include_str!("eval/queries.json")).expect("queries.json is a query list")
}

/// What a ranking scored over the queries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Score {
    pub queries: usize,
    pub hits_at_1: usize,
    pub hits_at_5: usize,
    pub reciprocal_ranks: f64,
}

impl Score {
    pub fn hit_at_1(&self) -> f64 {
        self.hits_at_1 as f64 / self.queries.max(1) as f64
    }

    pub fn hit_at_5(&self) -> f64 {
        self.hits_at_5 as f64 / self.queries.max(1) as f64
    }

    pub fn mrr(&self) -> f64 {
        self.reciprocal_ranks / self.queries.max(1) as f64
    }

    /// Adds one query whose ranking (tool names, best first) is `ranked`.
    pub fn add(&mut self, query: &Query, ranked: &[&str]) {
        self.queries += 1;
        let rank = ranked
            .iter()
            .take(10)
            .position(|name| query.relevant.iter().any(|r| r == name));
        self.hits_at_1 += usize::from(rank == Some(0));
        self.hits_at_5 += usize::from(rank.is_some_and(|rank| rank < 5));
        self.reciprocal_ranks += rank.map_or(0.0, |rank| 1.0 / (rank + 1) as f64);
    }

    /// A row of the evaluation table.
    pub fn row(&self, mode: &str) -> String {
        format!(
            "| {mode} | {:.1} % | {:.1} % | {:.2} |",
            100.0 * self.hit_at_1(),
            100.0 * self.hit_at_5(),
            self.mrr()
        )
    }
}

/// The baseline: a tool scores the number of distinct query words (runs
/// of letters and digits, lowercased) found among the words of its name,
/// description and parameter names; ties go to the earlier tool.
pub fn word_count_ranking<'a>(tools: &'a [Value], query: &str) -> Vec<&'a str> {
    let words = |text: &str| -> HashSet<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let query = words(query);
    let mut scored: Vec<(usize, usize, &str)> = tools
        .iter()
        .enumerate()
        .filter_map(|(position, tool)| {
            let name = tool["name"].as_str()?;
            let mut text = format!("{name} {}", tool["description"].as_str().unwrap_or(""));
            for parameter in tool["inputSchema"]["properties"]
                .as_object()
                .into_iter()
                .flat_map(|p| p.keys())
            {
                text.push(' ');
                text.push_str(parameter);
            }
            let count = words(&text).intersection(&query).count();
            (count > 0).then_some((count, position, name))
        })
        .collect();
    scored.sort_by_key(|&(count, position, _)| (std::cmp::Reverse(count), position));
    scored.into_iter().map(|(_, _, name)| name).collect()
}

/// The evaluation's scores, per mode.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// The index alone.
    pub lexical: Score,
    /// The index in a session that had first chosen the right tool for
    /// every other query (leave one out): what learning adds, or costs,
    /// when the queries before were about other tasks.
    pub learned: Score,
    /// The baseline.
    pub word_count: Score,
}

impl Evaluation {
    /// The table of scores, in Markdown.
    pub fn table(&self) -> String {
        [
            "| mode | hit@1 | hit@5 | MRR |".to_owned(),
            "|---|---|---|---|".to_owned(),
            self.lexical.row("lexical"),
            self.learned.row("lexical, after learning"),
            self.word_count.row("word count (baseline)"),
        ]
        .join("\n")
    }
}

/// Ranks every query over `tools` in each mode; `miss` hears of each query
/// the index did not answer with a relevant tool in its first five.
pub fn evaluate(
    tools: &[Value],
    queries: &[Query],
    mut miss: impl FnMut(&Query, &[&str]),
) -> Evaluation {
    let index = ToolIndex::build(tools);
    let mut evaluation = Evaluation::default();
    let name = |position: usize| tools[position]["name"].as_str().unwrap_or_default();
    for query in queries {
        let ranked: Vec<&str> = index
            .search(&query.query, 10)
            .iter()
            .map(|hit| name(hit.position))
            .collect();
        if !ranked
            .iter()
            .take(5)
            .any(|name| query.relevant.iter().any(|r| r == name))
        {
            miss(query, &ranked);
        }
        evaluation.lexical.add(query, &ranked);
        let mut choices = Choices::default();
        for other in queries.iter().filter(|other| other.query != query.query) {
            if let Some(tool) = other.relevant.first() {
                choices.learn(&other.query, tool);
            }
        }
        let lifts = choices.lifts(&query.query);
        let lifts: Vec<(&str, f64)> = lifts.iter().map(|(t, by)| (t.as_str(), *by)).collect();
        let learned: Vec<&str> = index
            .search_lifted(&query.query, 10, &lifts)
            .iter()
            .map(|hit| name(hit.position))
            .collect();
        evaluation.learned.add(query, &learned);
        evaluation
            .word_count
            .add(query, &word_count_ranking(tools, &query.query));
    }
    evaluation
}
