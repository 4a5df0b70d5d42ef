//! The `mcp-mux` binary as an operator starts it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

#[tokio::test]
async fn log_format_json_writes_one_json_object_a_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = dir.path().join("registry.yaml");
    std::fs::write(
        &registry,
        registry_yaml(&[("a", "http://127.0.0.1:9/mcp", "")]),
    )
    .expect("registry written");
    let mut gateway = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-mux"))
        .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
        .arg("--registry")
        .arg(&registry)
        .arg("--data-dir")
        .arg(dir.path())
        .env_clear()
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mcp-mux runs");
    let mut lines = BufReader::new(gateway.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("stderr reads") {
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("not one JSON object: {line}"));
            let listening = event["message"] == "mcp-mux listening";
            seen.push(event);
            if listening {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(listening, Ok(true), "{seen:?}");
    let last = seen.last().expect("a line");
    assert_eq!(last["level"], "INFO");
    assert!(
        last["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{last}"
    );
    assert!(last["timestamp"].is_string(), "{last}");
}
