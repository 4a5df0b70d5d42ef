//! Search mode: the tool index (BM25 over the merged tool list's names,
//! descriptions, parameters and their allowed values, with queries widened
//! by abbreviations, compounds and a thesaurus), built once per catalogue;
//! what a session learns from the tools its client chose (`learning`);
//! with a sentence model, the ranking by meaning fused with it
//! (`semantic`); and the definitions and answers of the three tools a
//! session in search mode lists.

mod answers;
pub mod learning;
mod semantic;
mod terms;
mod thesaurus;

pub use answers::{
    CALL_TOOL, DEFAULT_LIMIT, DESCRIBE_TOOL, Detail, MAX_LIMIT, SEARCH_TOOLS, search_mode_tools,
    search_result, tool_summary,
};

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use serde_json::Value;

pub use semantic::{FUSED_DEPTH, SearchModel, SemanticIndex, fuse};
use terms::{expansion, for_each_term, for_each_word_and_stopword, is_stopword, stem};

/// BM25's saturation of repeated terms.
const K1: f64 = 1.2;
/// BM25's normalisation by document length.
const B: f64 = 0.75;

/// How much one occurrence of a word counts, by where it occurs. A word of
/// a tool's name counts from `NAME_WEIGHT` (when every name has it, like a
/// server's prefix or "get") to `NAME_WEIGHT + RARE_NAME_WEIGHT` (when one
/// name alone has it): a rare name word says what a tool does, a common one
/// does not tell tools apart.
const NAME_WEIGHT: f32 = 1.0;
const RARE_NAME_WEIGHT: f32 = 1.0;
const DESCRIPTION_WEIGHT: f32 = 1.0;
const PARAMETER_NAME_WEIGHT: f32 = 1.0;
const PARAMETER_DESCRIPTION_WEIGHT: f32 = 1.0;
/// A parameter's allowed values ("APPROVE", "resolved").
const PARAMETER_VALUE_WEIGHT: f32 = 1.0;

/// How much a query word's stand-ins count against the word itself: the
/// halves of a compound ("stacktrace" → "stack trace"), and a synonym.
const SPLIT_WEIGHT: f64 = 0.9;
const SYNONYM_WEIGHT: f64 = 0.3;

/// Text read from one field; a tool is matched on what it is, which its
/// first paragraphs say, and the cap bounds the work a hostile backend can
/// cause.
const MAX_FIELD_BYTES: usize = 16 * 1024;
/// Parameters read from one input schema.
const MAX_PARAMETERS: usize = 256;
/// Allowed values read from one parameter.
const MAX_PARAMETER_VALUES: usize = 64;
/// Words read from one query.
const MAX_QUERY_WORDS: usize = 32;
/// The shortest half of a compound that is split.
const MIN_COMPOUND_PART: usize = 3;

/// One tool that matches a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index of the tool in the items the index was built from.
    pub position: usize,
    pub score: f64,
}

/// One document's weighted frequency of one term.
#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: u32,
    frequency: f32,
}

/// An inverted index over a catalogue's tools. Build it when the list
/// changes; searching it allocates only scores per tool and the hits.
#[derive(Debug, Default)]
pub struct ToolIndex {
    term_ids: HashMap<Box<str>, u32>,
    /// By term id: the documents that hold the term, in document order.
    postings: Vec<Vec<Posting>>,
    /// By document: its weighted length.
    lengths: Vec<f32>,
    /// By document: its index in the items (items without a name have none).
    positions: Vec<usize>,
    /// Documents by their tool's name.
    docs: HashMap<Box<str>, u32>,
    average_length: f64,
}

/// One word of a query and what may stand for it: each alternative is a
/// set of terms whose scores add up, scaled by its weight; a tool scores
/// the word by its best alternative.
struct QueryWord {
    alternatives: Vec<(Vec<u32>, f64)>,
}

impl ToolIndex {
    /// Indexes MCP tool objects; items without a string `name` are skipped.
    pub fn build(items: &[Value]) -> ToolIndex {
        // A first pass counts the names each name word is in.
        let mut name_terms: Vec<Vec<String>> = Vec::with_capacity(items.len());
        let mut names_with: HashMap<String, u32> = HashMap::new();
        for item in items {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                name_terms.push(Vec::new());
                continue;
            };
            let mut terms = Vec::new();
            for_each_term(capped(name), |term| terms.push(term));
            let mut distinct = terms.clone();
            distinct.sort_unstable();
            distinct.dedup();
            for term in distinct {
                *names_with.entry(term).or_default() += 1;
            }
            name_terms.push(terms);
        }
        let named = names_with.values().copied().max().map_or(0, |_| {
            items
                .iter()
                .filter(|item| item.get("name").is_some_and(Value::is_string))
                .count()
        });
        let name_weight = |term: &str| -> f32 {
            let with = names_with.get(term).copied().unwrap_or(1).max(1) as f32;
            let rarity = if named <= 1 {
                1.0
            } else {
                ((named as f32 / with).ln() / (named as f32).ln()).clamp(0.0, 1.0)
            };
            NAME_WEIGHT + RARE_NAME_WEIGHT * rarity
        };

        let mut index = ToolIndex::default();
        let mut frequencies: HashMap<String, f32> = HashMap::new();
        for ((position, item), name_terms) in items.iter().enumerate().zip(name_terms) {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            let Ok(doc) = u32::try_from(index.positions.len()) else {
                break;
            };
            frequencies.clear();
            let mut length = 0.0;
            for term in name_terms {
                let weight = name_weight(&term);
                *frequencies.entry(term).or_default() += weight;
                length += weight;
            }
            let mut add = |text: &str, weight: f32| {
                for_each_term(capped(text), |term| {
                    *frequencies.entry(term).or_default() += weight;
                    length += weight;
                });
            };
            for key in ["title", "description"] {
                if let Some(text) = item.get(key).and_then(Value::as_str) {
                    add(text, DESCRIPTION_WEIGHT);
                }
            }
            if let Some(title) = item.pointer("/annotations/title").and_then(Value::as_str) {
                add(title, DESCRIPTION_WEIGHT);
            }
            let parameters = item
                .pointer("/inputSchema/properties")
                .and_then(Value::as_object);
            for (parameter, schema) in parameters.into_iter().flatten().take(MAX_PARAMETERS) {
                add(parameter, PARAMETER_NAME_WEIGHT);
                if let Some(text) = schema.get("description").and_then(Value::as_str) {
                    add(text, PARAMETER_DESCRIPTION_WEIGHT);
                }
                for value in allowed_values(schema) {
                    add(value, PARAMETER_VALUE_WEIGHT);
                }
            }
            for (term, frequency) in frequencies.drain() {
                let next = index.postings.len();
                let id = *index
                    .term_ids
                    .entry(term.into_boxed_str())
                    .or_insert_with(|| {
                        // Terms are fewer than u32::MAX: each needs a byte of input.
                        u32::try_from(next).unwrap_or(u32::MAX)
                    });
                if id as usize == index.postings.len() {
                    index.postings.push(Vec::new());
                }
                if let Some(list) = index.postings.get_mut(id as usize) {
                    list.push(Posting { doc, frequency });
                }
            }
            index.docs.entry(name.into()).or_insert(doc);
            index.lengths.push(length);
            index.positions.push(position);
        }
        let total: f64 = index.lengths.iter().map(|&l| f64::from(l)).sum();
        index.average_length = if index.lengths.is_empty() {
            0.0
        } else {
            total / index.lengths.len() as f64
        };
        index.postings.shrink_to_fit();
        index
    }

    /// Tools indexed.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The `limit` best matches for `query`, best first; ties go to the
    /// earlier item. A query with no known word (nor any stand-in for one)
    /// matches nothing.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        self.search_lifted(query, limit, &[])
    }

    /// `search`, with tools lifted by name: each `(name, strength)` adds
    /// `strength` times the best score the query reached to that tool's
    /// (strength 1 puts it level with the best match).
    pub fn search_lifted(&self, query: &str, limit: usize, lifts: &[(&str, f64)]) -> Vec<Hit> {
        if limit == 0 || self.positions.is_empty() {
            return Vec::new();
        }
        let words = self.query_words(query);
        let mut scores = self.scores(&words);
        let best = scores.iter().copied().fold(0.0, f64::max);
        for &(name, strength) in lifts {
            if let Some(score) = self
                .docs
                .get(name)
                .and_then(|&doc| scores.get_mut(doc as usize))
                && strength > 0.0
            {
                // A lifted tool the query did not match at all still shows.
                *score += strength * if best > 0.0 { best } else { 1.0 };
            }
        }
        self.best(&scores, limit)
    }

    fn term(&self, term: &str) -> Option<u32> {
        self.term_ids.get(term).copied()
    }

    /// The query's words with their stand-ins, limited to terms the index
    /// holds.
    fn query_words(&self, query: &str) -> Vec<QueryWord> {
        // All the query's words make compounds; those but stopwords count.
        let mut all_words: Vec<String> = Vec::new();
        for_each_word_and_stopword(capped(query), |word| {
            if all_words.len() < MAX_QUERY_WORDS {
                all_words.push(word.to_owned());
            }
        });
        let words: Vec<&String> = all_words.iter().filter(|w| !is_stopword(w)).collect();
        // The query's own terms: a synonym that is one of them adds nothing.
        let own: Vec<u32> = words.iter().filter_map(|w| self.term(&stem(w))).collect();
        let mut query_words = Vec::with_capacity(words.len() + 1);
        for word in &words {
            let stemmed = stem(word);
            let mut alternatives: Vec<(Vec<u32>, f64)> = Vec::new();
            let known = self.term(&stemmed);
            if let Some(id) = known {
                alternatives.push((vec![id], 1.0));
            }
            if let Some(expanded) = expansion(word) {
                let ids = self.phrase(expanded.split(' '));
                if !ids.is_empty() {
                    alternatives.push((ids, 1.0));
                }
            }
            if known.is_none()
                && let Some(halves) = self.split_compound(word)
            {
                alternatives.push((halves, SPLIT_WEIGHT));
            }
            for synonym in thesaurus::synonyms(&stemmed) {
                let ids: Vec<u32> = synonym.iter().filter_map(|t| self.term(t)).collect();
                if ids.len() == synonym.len() && !ids.iter().all(|id| own.contains(id)) {
                    alternatives.push((ids, SYNONYM_WEIGHT));
                }
            }
            if !alternatives.is_empty() {
                query_words.push(QueryWord { alternatives });
            }
        }
        // "stack trace" meets "stacktrace", "who am I" meets "whoami".
        for size in [2, 3] {
            for run in all_words.windows(size) {
                if run.iter().all(|word| is_stopword(word)) {
                    continue;
                }
                if let Some(id) = self.term(&stem(&run.concat())) {
                    query_words.push(QueryWord {
                        alternatives: vec![(vec![id], 1.0)],
                    });
                }
            }
        }
        query_words
    }

    /// The known terms of a phrase's words, when the index knows them all.
    fn phrase<'a>(&self, words: impl Iterator<Item = &'a str>) -> Vec<u32> {
        let mut ids = Vec::new();
        for word in words {
            match self.term(&stem(word)) {
                Some(id) => ids.push(id),
                None => return Vec::new(),
            }
        }
        ids
    }

    /// A word the index does not know, as two words it knows
    /// ("stacktrace" → "stack", "trace"), preferring the longest first half.
    fn split_compound(&self, word: &str) -> Option<Vec<u32>> {
        if !word.is_ascii() || word.len() < 2 * MIN_COMPOUND_PART {
            return None;
        }
        (MIN_COMPOUND_PART..=word.len() - MIN_COMPOUND_PART)
            .rev()
            .find_map(|at| {
                let (first, second) = word.split_at(at);
                let ids = self.phrase([first, second].into_iter());
                (!ids.is_empty()).then_some(ids)
            })
    }

    /// Each document's score for the query's words.
    fn scores(&self, words: &[QueryWord]) -> Vec<f64> {
        let count = self.positions.len();
        let documents = count as f64;
        let mut total = vec![0.0f64; count];
        let mut word_best = vec![0.0f64; count];
        let mut alternative = vec![0.0f64; count];
        let (mut touched_best, mut touched) = (Vec::new(), Vec::new());
        for word in words {
            for (terms, weight) in &word.alternatives {
                for &id in terms {
                    let Some(postings) = self.postings.get(id as usize) else {
                        continue;
                    };
                    let matching = postings.len() as f64;
                    let idf = (1.0 + (documents - matching + 0.5) / (matching + 0.5)).ln();
                    for posting in postings {
                        let doc = posting.doc as usize;
                        let (Some(score), Some(&length)) =
                            (alternative.get_mut(doc), self.lengths.get(doc))
                        else {
                            continue;
                        };
                        let frequency = f64::from(posting.frequency);
                        let norm = 1.0 - B + B * f64::from(length) / self.average_length;
                        if *score == 0.0 {
                            touched.push(doc);
                        }
                        *score += idf * frequency * (K1 + 1.0) / (frequency + K1 * norm);
                    }
                }
                for doc in touched.drain(..) {
                    let (Some(score), Some(best)) =
                        (alternative.get_mut(doc), word_best.get_mut(doc))
                    else {
                        continue;
                    };
                    let weighted = std::mem::take(score) * weight;
                    if weighted > *best {
                        if *best == 0.0 {
                            touched_best.push(doc);
                        }
                        *best = weighted;
                    }
                }
            }
            for doc in touched_best.drain(..) {
                if let (Some(best), Some(sum)) = (word_best.get_mut(doc), total.get_mut(doc)) {
                    *sum += std::mem::take(best);
                }
            }
        }
        total
    }

    /// The `limit` best-scored documents as hits, best first.
    fn best(&self, scores: &[f64], limit: usize) -> Vec<Hit> {
        // The best `limit` in a heap whose top is the worst kept.
        let mut best: BinaryHeap<Reverse<Ranked>> =
            BinaryHeap::with_capacity(limit.min(scores.len()) + 1);
        for (doc, &score) in scores.iter().enumerate() {
            if score <= 0.0 {
                continue;
            }
            let Some(&position) = self.positions.get(doc) else {
                continue;
            };
            best.push(Reverse(Ranked(Hit { position, score })));
            if best.len() > limit {
                best.pop();
            }
        }
        let mut hits: Vec<Hit> = best.into_iter().map(|Reverse(Ranked(hit))| hit).collect();
        hits.sort_by_key(|hit| Reverse(Ranked(*hit)));
        hits
    }
}

/// The string values a parameter's schema allows: its `enum`, its items'
/// `enum`, and the `const` or `enum` of its `anyOf`/`oneOf` branches.
fn allowed_values(schema: &Value) -> impl Iterator<Item = &str> {
    let own = schema.get("enum");
    let items = schema.pointer("/items/enum");
    let branches = ["anyOf", "oneOf"]
        .into_iter()
        .filter_map(|key| schema.get(key).and_then(Value::as_array))
        .flatten()
        .flat_map(|branch| {
            branch.get("const").into_iter().chain(
                branch
                    .get("enum")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
        });
    own.into_iter()
        .chain(items)
        .filter_map(Value::as_array)
        .flatten()
        .chain(branches)
        .filter_map(Value::as_str)
        .take(MAX_PARAMETER_VALUES)
}

/// A hit ordered by rank: higher score, then earlier position, is greater.
struct Ranked(Hit);

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .score
            .total_cmp(&other.0.score)
            .then_with(|| other.0.position.cmp(&self.0.position))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// At most `MAX_FIELD_BYTES` of `text`, cut at a character boundary.
fn capped(text: &str) -> &str {
    if text.len() <= MAX_FIELD_BYTES {
        return text;
    }
    let mut end = MAX_FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn tool(name: &str, description: &str, parameters: &[&str]) -> Value {
        let properties: Map<String, Value> = parameters
            .iter()
            .map(|p| ((*p).to_owned(), json!({ "type": "string" })))
            .collect();
        json!({
            "name": name,
            "description": description,
            "inputSchema": { "type": "object", "properties": properties }
        })
    }

    fn names<'a>(items: &'a [Value], hits: &[Hit]) -> Vec<&'a str> {
        hits.iter()
            .map(|hit| items[hit.position]["name"].as_str().expect("a name"))
            .collect()
    }

    #[test]
    fn an_exact_name_match_beats_a_mention_in_a_description() {
        let items = [
            tool("a__notes", "Send the weather report as an email", &[]),
            tool("a__send_email", "Deliver a message", &["to", "body"]),
        ];
        let hits = ToolIndex::build(&items).search("send email", 5);
        assert_eq!(names(&items, &hits), ["a__send_email", "a__notes"]);
    }

    #[test]
    fn parameter_names_count() {
        let items = [
            tool("a__create", "Create a record", &["title"]),
            tool(
                "a__forecast",
                "Weather forecast",
                &["latitude", "longitude"],
            ),
        ];
        let hits = ToolIndex::build(&items).search("latitude", 5);
        assert_eq!(names(&items, &hits), ["a__forecast"]);
    }

    #[test]
    fn stemming_matches_other_forms_of_a_word() {
        let items = [
            tool("a__list_invoices", "Lists the invoices", &[]),
            tool("a__echo", "Echoes back the input", &[]),
        ];
        let index = ToolIndex::build(&items);
        assert_eq!(
            names(&items, &index.search("invoice listing", 5)),
            ["a__list_invoices"]
        );
        assert_eq!(names(&items, &index.search("echoed", 5)), ["a__echo"]);
    }

    #[test]
    fn allowed_values_of_parameters_are_indexed() {
        let mut review = tool("a__create_review", "Review a change", &[]);
        review["inputSchema"]["properties"]["event"] =
            json!({ "type": "string", "enum": ["APPROVE", "REQUEST_CHANGES", "COMMENT"] });
        let mut close = tool("a__update", "Change a record", &[]);
        close["inputSchema"]["properties"]["state"] =
            json!({ "anyOf": [{ "const": "open" }, { "const": "closed" }] });
        let items = [review, close, tool("a__list", "List records", &[])];
        let index = ToolIndex::build(&items);
        assert_eq!(
            names(&items, &index.search("approve", 5))[0],
            "a__create_review"
        );
        assert_eq!(names(&items, &index.search("closed", 5)), ["a__update"]);
    }

    #[test]
    fn compounds_meet_their_parts_both_ways() {
        let items = [
            tool("a__events", "Events with their stack traces", &[]),
            tool("a__whoami", "The signed-in account", &[]),
            tool("a__other", "Something else", &[]),
        ];
        let index = ToolIndex::build(&items);
        assert_eq!(names(&items, &index.search("stacktrace", 5)), ["a__events"]);
        assert_eq!(names(&items, &index.search("who am i", 5)), ["a__whoami"]);
    }

    #[test]
    fn abbreviations_and_acronym_plurals_meet_their_long_form() {
        let items = [
            tool("a__list_pull_requests", "List the pull requests", &[]),
            tool("a__get_repository", "One repository", &[]),
            tool("a__list_issues", "List the issues", &[]),
        ];
        let index = ToolIndex::build(&items);
        assert_eq!(
            names(&items, &index.search("open PRs", 5))[0],
            "a__list_pull_requests"
        );
        assert_eq!(
            names(&items, &index.search("repo", 5)),
            ["a__get_repository"]
        );
    }

    #[test]
    fn synonyms_find_a_tool_that_shares_no_word_with_the_query() {
        let items = [
            tool("a__merge_pull_request", "Merge a pull request", &[]),
            tool("a__delete_branch", "Remove a branch", &[]),
        ];
        let index = ToolIndex::build(&items);
        assert_eq!(
            names(&items, &index.search("land it", 5)),
            ["a__merge_pull_request"]
        );
        assert_eq!(
            names(&items, &index.search("erase the branch", 5))[0],
            "a__delete_branch"
        );
    }

    #[test]
    fn a_name_word_that_every_name_has_counts_less_than_a_rare_one() {
        // "read" is in every name; "file" only in one, and only there.
        let items = [
            tool("a__read_notes", "Reads a note from a file on disk", &[]),
            tool("a__read_mail", "Reads a message", &[]),
            tool("a__read_file", "Opens it", &[]),
        ];
        let hits = ToolIndex::build(&items).search("read file", 5);
        assert_eq!(names(&items, &hits)[0], "a__read_file");
    }

    #[test]
    fn a_lift_raises_a_tool_for_a_query_and_shows_one_it_did_not_match() {
        let items = [
            tool("a__send_email", "Send an email", &[]),
            tool("a__send_sms", "Send a text message", &[]),
        ];
        let index = ToolIndex::build(&items);
        let lifted = index.search_lifted("send", 5, &[("a__send_sms", 1.0)]);
        assert_eq!(names(&items, &lifted), ["a__send_sms", "a__send_email"]);
        let unmatched = index.search_lifted("zebra", 5, &[("a__send_email", 0.5), ("nope", 1.0)]);
        assert_eq!(names(&items, &unmatched), ["a__send_email"]);
    }

    #[test]
    fn the_limit_is_honoured() {
        let items: Vec<Value> = (0..20)
            .map(|i| tool(&format!("a__report_{i}"), "Make a report", &[]))
            .collect();
        let index = ToolIndex::build(&items);
        assert_eq!(index.search("report", 3).len(), 3);
        assert_eq!(index.search("report", 0).len(), 0);
        assert_eq!(index.search("report", usize::MAX).len(), 20);
    }

    #[test]
    fn equal_scores_are_ranked_by_position() {
        let items: Vec<Value> = (0..10)
            .map(|i| tool(&format!("a__same{i}"), "Same text", &[]))
            .collect();
        let hits = ToolIndex::build(&items).search("same text", 4);
        let positions: Vec<usize> = hits.iter().map(|hit| hit.position).collect();
        assert_eq!(positions, [0, 1, 2, 3]);
    }

    #[test]
    fn unknown_words_stopwords_and_empty_queries_match_nothing() {
        let items = [tool("a__echo", "Echo the text back", &["text"])];
        let index = ToolIndex::build(&items);
        for query in ["", "   \t\n", "zebra", "the of and", "__--//"] {
            assert!(index.search(query, 5).is_empty(), "{query:?}");
        }
    }

    #[test]
    fn items_without_a_name_are_skipped_and_positions_still_point_into_the_items() {
        let items = [
            json!({ "description": "Echo without a name" }),
            json!({ "name": 7, "description": "Echo with a number for a name" }),
            tool("a__echo", "Echo the text back", &[]),
        ];
        let index = ToolIndex::build(&items);
        assert_eq!(index.len(), 1);
        assert_eq!(index.search("echo", 5)[0].position, 2);
    }

    #[test]
    fn odd_input_does_not_panic() {
        let huge = "word ".repeat(200_000) + "needle";
        let items = [
            json!({ "name": "a__big", "description": huge }),
            json!({ "name": "a__odd", "description": 5, "inputSchema": { "properties": [1, 2] } }),
            json!({ "name": "a__odd2", "inputSchema": { "properties": { "x": "not a schema" } } }),
            json!({ "name": "a__é✓🙂", "description": "ünïcödé ǅ ΣΑΣ İ" }),
            json!({ "name": "", "description": null }),
            json!("not an object"),
            json!(null),
        ];
        let index = ToolIndex::build(&items);
        assert!(index.search("needle", 5).is_empty(), "past the cap");
        assert_eq!(index.search("word", 5)[0].position, 0);
        assert_eq!(index.search("unicode", 5)[0].position, 3);
        assert!(!index.search("ΣΑΣ", 5).is_empty());
        let long_query = "é".repeat(100_000);
        assert!(index.search(&long_query, 5).is_empty());
        assert!(ToolIndex::build(&[]).search("word", 5).is_empty());
    }
}
