//! Search mode's tool index: BM25 over the merged tool list's names,
//! descriptions and parameter names, built once per catalogue, and the
//! definitions of the three tools a session in search mode lists.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use serde_json::{Map, Value, json};

/// BM25's saturation of repeated terms.
const K1: f64 = 1.2;
/// BM25's normalisation by document length.
const B: f64 = 0.75;

/// How much one occurrence of a word counts, by where it occurs: a tool's
/// name says what it does more surely than its prose does. Measured on
/// tests/search (67 queries): names at 2 and the rest at 1 found as many
/// tools in the top 5 as all at 1, with a name match ranked first; names at
/// 3 or 5, or parameter descriptions at 0.5 or left out, ranked worse.
const NAME_WEIGHT: f32 = 2.0;
const DESCRIPTION_WEIGHT: f32 = 1.0;
const PARAMETER_NAME_WEIGHT: f32 = 1.0;
const PARAMETER_DESCRIPTION_WEIGHT: f32 = 1.0;

/// Text read from one field; a tool is matched on what it is, which its
/// first paragraphs say, and the cap bounds the work a hostile backend can
/// cause.
const MAX_FIELD_BYTES: usize = 16 * 1024;
/// Parameters read from one input schema.
const MAX_PARAMETERS: usize = 256;
/// Longer runs of letters are not words (base64, hashes).
const MAX_WORD_CHARS: usize = 40;
/// Terms read from one query.
const MAX_QUERY_TERMS: usize = 64;

/// Words too common in tool descriptions and requests to tell tools apart.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "being", "but", "by", "can", "could", "do", "does", "each", "either", "for", "from", "has",
    "have", "how", "i", "if", "in", "into", "is", "it", "its", "may", "me", "my", "of", "on",
    "one", "or", "other", "our", "please", "s", "should", "so", "some", "such", "than", "that",
    "the", "t", "their", "them", "then", "there", "these", "they", "this", "those", "to", "up",
    "us", "via", "was", "we", "were", "what", "when", "where", "which", "while", "who", "will",
    "with", "would", "you", "your",
];

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
/// changes; searching it allocates only a score per tool and the hits.
#[derive(Debug, Default)]
pub struct ToolIndex {
    term_ids: HashMap<Box<str>, u32>,
    /// By term id: the documents that hold the term, in document order.
    postings: Vec<Vec<Posting>>,
    /// By document: its weighted length.
    lengths: Vec<f32>,
    /// By document: its index in the items (items without a name have none).
    positions: Vec<usize>,
    average_length: f64,
}

impl ToolIndex {
    /// Indexes MCP tool objects; items without a string `name` are skipped.
    pub fn build(items: &[Value]) -> ToolIndex {
        let mut index = ToolIndex::default();
        let mut frequencies: HashMap<String, f32> = HashMap::new();
        for (position, item) in items.iter().enumerate() {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            let Ok(doc) = u32::try_from(index.positions.len()) else {
                break;
            };
            frequencies.clear();
            let mut length = 0.0;
            let mut add = |text: &str, weight: f32| {
                for_each_term(capped(text), |term| {
                    *frequencies.entry(term).or_default() += weight;
                    length += weight;
                });
            };
            add(name, NAME_WEIGHT);
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
    /// earlier item. A query with no known word matches nothing.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let mut terms: Vec<u32> = Vec::new();
        for_each_term(capped(query), |term| {
            if let Some(&id) = self.term_ids.get(term.as_str())
                && !terms.contains(&id)
                && terms.len() < MAX_QUERY_TERMS
            {
                terms.push(id);
            }
        });
        if terms.is_empty() || limit == 0 {
            return Vec::new();
        }
        let documents = self.positions.len() as f64;
        let mut scores = vec![0.0f64; self.positions.len()];
        for id in terms {
            let Some(postings) = self.postings.get(id as usize) else {
                continue;
            };
            let matching = postings.len() as f64;
            let idf = (1.0 + (documents - matching + 0.5) / (matching + 0.5)).ln();
            for posting in postings {
                let doc = posting.doc as usize;
                let (Some(score), Some(&length)) = (scores.get_mut(doc), self.lengths.get(doc))
                else {
                    continue;
                };
                let frequency = f64::from(posting.frequency);
                let norm = 1.0 - B + B * f64::from(length) / self.average_length;
                *score += idf * frequency * (K1 + 1.0) / (frequency + K1 * norm);
            }
        }
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

/// Calls `emit` with each indexed term of `text`: words split at anything
/// but letters, at digits and at camelCase humps, lowercased and folded to
/// ASCII where a Latin letter has an accent, without stopwords, stemmed.
fn for_each_term(text: &str, mut emit: impl FnMut(String)) {
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    let mut previous: Option<char> = None;
    while let Some(c) = chars.next() {
        let boundary = match previous {
            None => false,
            Some(p) => {
                !c.is_alphanumeric()
                    || p.is_ascii_digit() != c.is_ascii_digit()
                    // fooBar
                    || (p.is_lowercase() && c.is_uppercase())
                    // HTTPServer: the last capital starts the next word
                    || (p.is_uppercase()
                        && c.is_uppercase()
                        && chars.peek().is_some_and(|n| n.is_lowercase()))
            }
        };
        if boundary {
            finish_word(&mut word, &mut emit);
        }
        if c.is_alphanumeric() {
            push_folded(&mut word, c);
            previous = Some(c);
        } else {
            previous = None;
        }
    }
    finish_word(&mut word, &mut emit);
}

fn finish_word(word: &mut String, emit: &mut impl FnMut(String)) {
    if word.is_empty() {
        return;
    }
    if word.chars().count() <= MAX_WORD_CHARS && !STOPWORDS.contains(&word.as_str()) {
        emit(stem(word));
    }
    word.clear();
}

/// Appends `c` lowercased, with the accents of Latin letters dropped.
fn push_folded(word: &mut String, c: char) {
    for lower in c.to_lowercase() {
        let folded = match lower {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
            'æ' => "ae",
            'ç' | 'č' | 'ć' => "c",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' => "e",
            'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
            'œ' => "oe",
            'ß' => "ss",
            'š' | 'ś' => "s",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
            'ý' | 'ÿ' => "y",
            'ž' | 'ź' | 'ż' => "z",
            other => {
                word.push(other);
                continue;
            }
        };
        word.push_str(folded);
    }
}

/// A light English stemmer: plurals, -ing and -ed, then a final e, so that
/// "files", "file", "filed" and "filing" meet ("fil"). Unlike Porter's it
/// leaves derivations (-ation, -ment, -er) alone: in tool names they often
/// mean something else than their root.
fn stem(word: &str) -> String {
    let mut stem = word.to_owned();
    if !stem.is_ascii() || stem.len() <= 3 {
        return stem;
    }
    if let Some(root) = stem.strip_suffix("ies") {
        stem = format!("{root}y");
    } else if let Some(root) = stem.strip_suffix("ied") {
        stem = format!("{root}y");
    } else if stem.ends_with("sses")
        || stem.ends_with("xes")
        || stem.ends_with("ches")
        || stem.ends_with("shes")
    {
        stem.truncate(stem.len() - 2);
    } else if stem.ends_with('s')
        && !stem.ends_with("ss")
        && !stem.ends_with("us")
        && !stem.ends_with("is")
    {
        stem.pop();
    } else if let Some(root) = stem.strip_suffix("ing") {
        if root.len() >= 3 && has_vowel(root) {
            stem = undouble(root);
        }
    } else if let Some(root) = stem.strip_suffix("ed")
        && root.len() >= 2
        && has_vowel(root)
        && !stem.ends_with("eed")
    {
        stem = undouble(root);
    }
    if stem.len() >= 3 && stem.ends_with('e') {
        stem.pop();
    }
    stem
}

fn has_vowel(text: &str) -> bool {
    text.contains(['a', 'e', 'i', 'o', 'u', 'y'])
}

/// "runn" → "run", "logg" → "log"; "call" and "pass" keep their pair.
fn undouble(root: &str) -> String {
    let bytes = root.as_bytes();
    match bytes {
        [.., a, b] if a == b && !matches!(a, b'l' | b's' | b'z' | b'e' | b'o') => {
            root[..root.len() - 1].to_owned()
        }
        _ => root.to_owned(),
    }
}

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

/// The tools a session in search mode lists instead of its backends' tools.
pub fn search_mode_tools() -> Vec<Value> {
    vec![
        json!({
            "name": SEARCH_TOOLS,
            "title": "Search tools",
            "description": "Find the tools that can do a task, among all the tools of this session. \
                Describe the task in plain words (\"create a calendar event\", \"list open tickets\"). \
                Returns the best matches, best first, each with its name, description and input \
                schema; call one with call_tool.",
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

/// What `search_tools` tells about one tool: its name, description and
/// input schema (the rest of its definition is for hosts, not models).
pub fn tool_summary(item: &Value) -> Value {
    let mut summary = Map::new();
    for key in ["name", "description", "inputSchema"] {
        if let Some(value) = item.get(key) {
            summary.insert(key.to_owned(), value.clone());
        }
    }
    Value::Object(summary)
}

/// The result of `search_tools`: the hits' summaries as JSON text, which
/// every client shows to its model.
pub fn search_result(items: &[Value], hits: &[Hit]) -> Value {
    let tools: Vec<Value> = hits
        .iter()
        .filter_map(|hit| items.get(hit.position))
        .map(tool_summary)
        .collect();
    let text = Value::Object(Map::from_iter([("tools".to_owned(), Value::Array(tools))]));
    json!({ "content": [{ "type": "text", "text": text.to_string() }] })
}

#[cfg(test)]
mod tests {
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

    fn terms(text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        for_each_term(text, |term| terms.push(term));
        terms
    }

    fn names<'a>(items: &'a [Value], hits: &[Hit]) -> Vec<&'a str> {
        hits.iter()
            .map(|hit| items[hit.position]["name"].as_str().expect("a name"))
            .collect()
    }

    #[test]
    fn words_are_split_at_separators_digits_and_camel_case_humps() {
        assert_eq!(
            terms("everything__get-tiny_image.v2/HTTPServer parseJSONBody"),
            [
                "everyth", "get", "tiny", "imag", "v", "2", "http", "server", "pars", "json",
                "body"
            ]
        );
    }

    #[test]
    fn words_are_lowercased_folded_and_stemmed_without_stopwords() {
        assert_eq!(terms("The Café's Queries"), ["caf", "query"]);
        assert_eq!(
            terms("files filed filing file"),
            ["fil", "fil", "fil", "fil"]
        );
        assert_eq!(terms("running runs run"), ["run", "run", "run"]);
        assert_eq!(
            terms("branches messages addresses"),
            ["branch", "messag", "address"]
        );
        assert_eq!(
            terms("status analysis string"),
            ["status", "analysis", "string"]
        );
        assert_eq!(terms("日本語 текст"), ["日本語", "текст"]);
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
        assert_eq!(tools[1]["inputSchema"]["required"], json!(["name"]));
        assert_eq!(
            tools[2]["inputSchema"]["properties"]["arguments"]["type"],
            "object"
        );
    }

    #[test]
    fn a_search_result_gives_each_hits_name_description_and_schema() {
        let mut item = tool("a__echo", "Echo the text back", &["text"]);
        item["annotations"] = json!({ "readOnlyHint": true });
        let items = [item];
        let hits = ToolIndex::build(&items).search("echo", 5);
        let result = search_result(&items, &hits);
        let text: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().expect("text"))
                .expect("JSON");
        assert_eq!(text["tools"][0]["name"], "a__echo");
        assert_eq!(
            text["tools"][0]["inputSchema"]["properties"]["text"]["type"],
            "string"
        );
        assert!(text["tools"][0].get("annotations").is_none());
    }
}
