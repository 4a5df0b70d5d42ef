//! What search mode saves and costs, on the catalogue of tests/search: the
//! reference server's 13 tools and the 500 generated tools (`everything__`
//! and `big__`). Prints the size of the tool list a client reads in each
//! mode, in bytes and in o200k_base tokens (tiktoken's encoding of the GPT-4o
//! and later models; the `tiktoken-rs` crate embeds it), the size of a
//! `search_tools` answer, and the time to build the index and to search it.
//! Then the held-out evaluation on five real servers' tool lists
//! (tests/search/evaluation.rs): hit@1, hit@5 and MRR per mode beside a
//! word-count baseline, and the size of the answers there.
//!
//! Run with `cargo bench --bench search`. It prints numbers and never
//! asserts them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mcp_mux::mux::search::{DEFAULT_LIMIT, Detail, ToolIndex, search_mode_tools, search_result};
use serde_json::{Value, json};

#[path = "../tests/search/evaluation.rs"]
mod evaluation;
#[path = "../tests/search/generated.rs"]
mod generated;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Builds timed per catalogue; the median is printed.
const BUILDS: usize = 15;
/// Passes over the labelled queries per catalogue.
const QUERY_PASSES: usize = 20;

fn main() -> Result<()> {
    let profile = if cfg!(debug_assertions) {
        "unoptimized (debug assertions on): times are not meaningful"
    } else {
        "optimized (bench/release)"
    };
    let bpe = tiktoken_rs::o200k_base()?;
    let tokens = |value: &Value| bpe.encode_ordinary(&value.to_string()).len();
    let bytes = |value: &Value| value.to_string().len();

    let everything: Value =
        serde_json::from_str(include_str!("../tests/search/everything_tools.json"))?;
    let mut items = everything["tools"].as_array().cloned().unwrap_or_default();
    items.extend(generated::tools().into_iter().map(|mut tool| {
        let name = format!("big__{}", tool["name"].as_str().unwrap_or_default());
        tool["name"] = Value::String(name);
        tool
    }));
    let queries: Vec<Value> = serde_json::from_str(include_str!("../tests/search/queries.json"))?;
    let queries: Vec<&str> = queries.iter().filter_map(|q| q["query"].as_str()).collect();

    println!(
        "mcp-mux search mode: {profile}; {} tools, {} queries",
        items.len(),
        queries.len()
    );
    println!("sizes as compact JSON; tokens in o200k_base");
    let direct = json!({ "tools": items });
    let search = json!({ "tools": search_mode_tools() });
    println!(
        "  tools/list, direct mode (all tools):      {:>8} bytes {:>7} tokens",
        bytes(&direct),
        tokens(&direct)
    );
    println!(
        "  tools/list, search mode (three tools):    {:>8} bytes {:>7} tokens",
        bytes(&search),
        tokens(&search)
    );
    let index = ToolIndex::build(&items);
    print_answer_sizes(&items, &index, &queries, &tokens);

    let tools = evaluation::merged_tools();
    let eval_queries = evaluation::queries();
    println!(
        "held-out evaluation: {} queries over {} tools of",
        eval_queries.len(),
        tools.len()
    );
    for catalogue in evaluation::catalogues() {
        println!(
            "  {} ({} tools, {})",
            catalogue.server,
            catalogue.tools.len(),
            catalogue.source
        );
    }
    println!(
        "{}",
        evaluation::evaluate(&tools, &eval_queries, |_, _| {}).table()
    );
    let eval_index = ToolIndex::build(&tools);
    let texts: Vec<&str> = eval_queries.iter().map(|q| q.query.as_str()).collect();
    print_answer_sizes(&tools, &eval_index, &texts, &tokens);

    println!("index ({BUILDS} builds, median; {QUERY_PASSES} passes over the queries, mean)");
    for (label, catalogue) in [("513", items.clone()), ("10,000", generated::many(20))] {
        let mut builds: Vec<Duration> = (0..BUILDS)
            .map(|_| {
                let start = Instant::now();
                black_box(ToolIndex::build(black_box(&catalogue)));
                start.elapsed()
            })
            .collect();
        let index = ToolIndex::build(&catalogue);
        let all_queries: Vec<&str> = queries.iter().chain(&texts).copied().collect();
        let mut slowest = Duration::ZERO;
        let start = Instant::now();
        for _ in 0..QUERY_PASSES {
            for query in &all_queries {
                let one = Instant::now();
                black_box(index.search(black_box(query), DEFAULT_LIMIT));
                slowest = slowest.max(one.elapsed());
            }
        }
        let per_query = start.elapsed() / (QUERY_PASSES * all_queries.len()) as u32;
        println!(
            "  {label:>6} tools: build {:>9.2?}, search {:>9.2?} per query (slowest {:.2?})",
            median(&mut builds),
            per_query,
            slowest
        );
    }
    Ok(())
}

/// The median and largest `search_tools` answer (limit 5) over `queries`,
/// compact and full.
fn print_answer_sizes(
    items: &[Value],
    index: &ToolIndex,
    queries: &[&str],
    tokens: &dyn Fn(&Value) -> usize,
) {
    for detail in [Detail::Compact, Detail::Full] {
        let answers: Vec<Value> = queries
            .iter()
            .map(|query| search_result(items, &index.search(query, DEFAULT_LIMIT), detail))
            .collect();
        let mut answer_bytes: Vec<usize> = answers.iter().map(|a| a.to_string().len()).collect();
        let mut answer_tokens: Vec<usize> = answers.iter().map(tokens).collect();
        println!(
            "  search_tools answer (limit {DEFAULT_LIMIT}, {detail:?}), median: {:>6} bytes {:>5} tokens (largest {} bytes, {} tokens)",
            median(&mut answer_bytes),
            median(&mut answer_tokens),
            answer_bytes.iter().max().unwrap_or(&0),
            answer_tokens.iter().max().unwrap_or(&0),
        );
    }
}

fn median<T: Ord + Copy + Default>(values: &mut [T]) -> T {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}
