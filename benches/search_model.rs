//! What a sentence model (`--search-model`) costs search mode: its load
//! (time, resident memory), embedding a catalogue (time per 1,000 tools),
//! embedding a query, and a hybrid search at 10,000 tools. The model comes
//! from `MCP_MUX_TEST_SEARCH_MODEL` (`scripts/search-eval/model.sh`).
//!
//! The model's crates are built optimised in every profile, so
//! `cargo bench --profile dev --bench search_model` measures it without a
//! release build of the whole gateway. It prints numbers and never asserts
//! them.

use std::time::Instant;

use mcp_mux::embedding::SentenceModel;
use mcp_mux::mux::search::{FUSED_DEPTH, SearchModel, ToolIndex, fuse};

#[path = "../tests/search/generated.rs"]
mod generated;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Resident memory of this process, in MiB.
fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() -> Result<()> {
    let Some(dir) = std::env::var_os("MCP_MUX_TEST_SEARCH_MODEL") else {
        println!(
            "set MCP_MUX_TEST_SEARCH_MODEL=$(bash scripts/search-eval/model.sh) to measure the search model"
        );
        return Ok(());
    };
    let before = resident_mib();
    let started = Instant::now();
    let model = SearchModel::new(SentenceModel::load(std::path::Path::new(&dir))?);
    println!(
        "model load: {:.2} s, resident memory +{:.0} MiB",
        started.elapsed().as_secs_f64(),
        resident_mib() - before
    );

    // Distinct texts: each copy's names carry its own prefix.
    let tools = generated::many(2);
    let before = resident_mib();
    let started = Instant::now();
    let semantic = model.index(&tools)?;
    println!(
        "embedding 1,000 tools: {:.1} s, resident memory +{:.1} MiB",
        started.elapsed().as_secs_f64(),
        resident_mib() - before
    );
    let started = Instant::now();
    model.index(&tools)?;
    println!(
        "the same list again (kept embeddings): {:.1} ms",
        1000.0 * started.elapsed().as_secs_f64()
    );

    let queries = [
        "open a pull request",
        "what's failing in CI",
        "stop a customer's paid plan",
        "will it rain tomorrow",
        "give the issue to alice",
    ];
    let started = Instant::now();
    for query in queries {
        model.query(query)?;
    }
    println!(
        "embedding a query: {:.1} ms",
        1000.0 * started.elapsed().as_secs_f64() / queries.len() as f64
    );

    let many = generated::many(20);
    let index = ToolIndex::build(&many);
    // Embeddings of 10,000 tools would take minutes; the ranking's cost
    // is a dot product a tool, which the 1,000 measure times ten.
    let embedding = model.query(queries[0])?;
    let started = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        let nearest = semantic.nearest(&embedding, FUSED_DEPTH);
        let lexical = index.search(queries[0], FUSED_DEPTH);
        std::hint::black_box(fuse(&lexical, &nearest, 5));
    }
    println!(
        "a hybrid search (kept query embedding): {:.2} ms over 1,000 embedded tools with the lexical index of 10,000",
        1000.0 * started.elapsed().as_secs_f64() / f64::from(rounds)
    );
    Ok(())
}
