//! What a session's tool rules cost. Prints the time one `*` pattern built
//! to backtrack takes on names of growing length (it grows with the name,
//! not with the ways to place the `*`s), and the time to merge a backend's
//! 10,000 long-named tools under the most deny patterns create-session
//! accepts, and under the 1,300 it now refuses.
//!
//! Run with `cargo bench --bench rules`. It prints numbers and never
//! asserts them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mcp_mux::mux::catalogue::{BackendItems, Catalogue};
use mcp_mux::mux::curation::ItemRules;
use mcp_mux::mux::glob::Glob;
use mcp_mux::mux::item_kind::NamedKind;
use serde_json::{Value, json};

/// Runs timed per measurement; the median is printed.
const RUNS: usize = 7;
const TOOLS: usize = 10_000;

fn median(mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn main() {
    let profile = if cfg!(debug_assertions) {
        "unoptimized (debug assertions on): times are not meaningful"
    } else {
        "optimized (bench/release)"
    };
    println!("mcp-mux tool rules: {profile}");

    // Sixty `*a` and a `b` that never comes: a backtracking matcher tries
    // every placement of the sixty runs, C(n, 60) of them.
    let glob = Glob::parse(&format!("{}*b*", "*a".repeat(60)));
    println!("  one pattern of sixty `*a` then `*b*`, on a name of n `a`s:");
    for n in [1_000, 10_000, 100_000, 1_000_000] {
        let name = "a".repeat(n);
        let time = median(|| {
            black_box(glob.matches(black_box(&name)));
        });
        println!(
            "    n = {n:>9}: {:>10.1} µs  ({:.2} ns a character)",
            time.as_secs_f64() * 1e6,
            time.as_secs_f64() * 1e9 / n as f64
        );
    }

    let tools: Vec<Value> = (0..TOOLS)
        .map(|n| json!({ "name": format!("{}Q{n}", "L".repeat(40)), "inputSchema": { "type": "object" } }))
        .collect();
    let names: Vec<String> = tools
        .iter()
        .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    println!("  merging {TOOLS} tools of 42 to 45 characters under deny patterns:");
    for (label, count, pattern) in [
        ("twelve `*L`, then `*Z<n>*` (matches none)", 100, "*Z"),
        ("twelve `*L`, then `*Q<n>` (the red team's)", 100, "*Q"),
        ("twelve `*L`, then `*Q<n>`, now refused", 1_300, "*Q"),
    ] {
        let deny: Vec<String> = (0..count)
            .map(|n| {
                let tail = if pattern == "*Z" { "*" } else { "" };
                format!("{}{pattern}{n}{tail}", "*L".repeat(12))
            })
            .collect();
        let rules = ItemRules {
            deny,
            ..ItemRules::default()
        }
        .compile();
        let time = median(|| {
            // What a listing does: note the rules that matched nothing, then
            // merge under the rules.
            black_box(rules.unmatched(&names));
            let source = BackendItems {
                backend: 0,
                server: "big",
                prefix: "big__".into(),
                items: tools.clone(),
                rules: Some(&rules),
            };
            black_box(Catalogue::build(NamedKind::Tool, vec![source]));
        });
        println!(
            "    {count:>5} × {label}: {:>8.1} ms",
            time.as_secs_f64() * 1e3
        );
    }
}
