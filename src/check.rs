//! `mcp-mux registry check`: reads and validates the registry without a
//! gateway, then opens each backend once (`initialize`, then `tools/list`)
//! and reports what answered. No session exists here, so a backend that
//! requires a credential is reached without one: its 401 says it answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::{Value, json};

use crate::backend::connections::ConnectionBudget;
use crate::backend::http_client::HttpClients;
use crate::backend::limits::BackendLimits;
use crate::backend::{Attempts, BackendError, BackendSession, Replay, Reply};
use crate::mcp::request::Method;
use crate::registry::{Registry, RegistryError, ServerConfig};

/// Most pages of `tools/list` followed per backend.
const MAX_PAGES: usize = 100;

/// How one backend answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendCheck {
    pub server: String,
    pub transport: &'static str,
    /// It answered `initialize` (or refused it for want of a credential).
    pub reachable: bool,
    /// The revision it chose.
    pub revision: Option<String>,
    pub tools: Option<usize>,
    pub millis: u64,
    /// Why it is not reachable, or what it said instead of its tools.
    pub problem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// Every backend of the registry at `path`, checked at once.
pub async fn check_registry(path: &Path) -> Result<Vec<BackendCheck>, CheckError> {
    let registry = Registry::load(path)?;
    let http = HttpClients::for_backends(1, 1).map_err(CheckError::HttpClient)?;
    let connections = Arc::new(ConnectionBudget::new(64));
    let checks = registry
        .servers()
        .map(|server| check_backend(server.clone(), http.clone(), connections.clone()));
    Ok(join_all(checks).await)
}

async fn check_backend(
    server: Arc<ServerConfig>,
    http: HttpClients,
    connections: Arc<ConnectionBudget>,
) -> BackendCheck {
    let started = Instant::now();
    let session = BackendSession::new(
        server.clone(),
        Arc::new(BackendLimits::new(&server, connections)),
        None,
        http,
        None,
        json!({}),
    );
    let mut check = BackendCheck {
        server: server.name.clone(),
        transport: server.endpoint.transport_name(),
        reachable: false,
        revision: None,
        tools: None,
        millis: 0,
        problem: None,
    };
    match session.initialize(Attempts::Once).await {
        Ok(initialized) => {
            check.reachable = true;
            check.revision = Some(initialized.protocol_version);
            match count_tools(&session).await {
                Ok(tools) => check.tools = Some(tools),
                Err(problem) => check.problem = Some(problem),
            }
        }
        Err(BackendError::Unauthorized { status, .. }) => {
            check.reachable = true;
            check.problem = Some(format!(
                "answered HTTP {status} without a credential; sessions bring theirs"
            ));
        }
        Err(error) => check.problem = Some(error.to_string()),
    }
    session.close().await;
    check.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    check
}

/// The tools the backend lists, following its pages.
async fn count_tools(session: &BackendSession) -> Result<usize, String> {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|cursor| json!({ "cursor": cursor }));
        let raw = match session
            .request(Method::ToolsList.as_str(), params.as_ref(), Replay::Safe)
            .await
        {
            Ok(Reply::Result(raw)) => raw,
            Ok(Reply::Error(error)) => return Err(format!("tools/list: {}", error.message)),
            Err(error) => return Err(error.to_string()),
        };
        let page: Value =
            serde_json::from_str(raw.get()).map_err(|_| "tools/list result is not JSON")?;
        count += page["tools"].as_array().map_or(0, Vec::len);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(count),
        }
    }
    Ok(count)
}

/// The checks as a table, one backend a line.
pub fn table(checks: &[BackendCheck]) -> String {
    let header = [
        "server",
        "transport",
        "reachable",
        "revision",
        "tools",
        "time",
        "problem",
    ];
    let rows: Vec<[String; 7]> = checks
        .iter()
        .map(|check| {
            [
                check.server.clone(),
                check.transport.to_owned(),
                if check.reachable { "yes" } else { "no" }.to_owned(),
                check.revision.clone().unwrap_or_else(|| "-".into()),
                check
                    .tools
                    .map_or_else(|| "-".into(), |tools| tools.to_string()),
                format!("{} ms", check.millis),
                check.problem.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut text = line(header.to_vec());
    for row in &rows {
        text.push('\n');
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// Whether every backend answered.
pub fn all_reachable(checks: &[BackendCheck]) -> bool {
    checks.iter().all(|check| check.reachable)
}
