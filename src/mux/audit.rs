//! The audit trail of `tools/call`: each call is recorded (session, MCP
//! session, backend, tool, outcome, duration, error class, never arguments
//! or results) through a bounded queue that a background task writes to the
//! store in batches, so that a call never waits on the database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::Utc;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::error::CallError;
use super::metrics::Metrics;
use super::payload::Payload;
use crate::store::{AuditRecord, Store};

/// Records waiting to be written before new ones are dropped (and counted
/// in the log): an audit trail must not take the gateway down with it. It
/// holds several gathering windows at the fastest call rates measured.
const QUEUE: usize = 50_000;
/// Most records written in one statement.
const BATCH: usize = 1024;
/// How long the writer lets records gather after the first one before it
/// writes them: the database sees a few statements a second at any call
/// rate, instead of nearly one per call.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);
/// Characters of a tool name the trail keeps; a longer name is cut, with a
/// hash of the whole name.
const MAX_TOOL_NAME_CHARS: usize = 128;

pub struct AuditTrail {
    sender: mpsc::Sender<AuditRecord>,
    /// Held by the writer while it runs, and by `flush` after it stopped.
    receiver: tokio::sync::Mutex<mpsc::Receiver<AuditRecord>>,
    written: AtomicU64,
    dropped: AtomicU64,
    /// Records queued so far.
    queued: AtomicU64,
    /// Records the writer has handled so far, written or not: what
    /// [`AuditTrail::settled`] waits on.
    handled: tokio::sync::watch::Sender<u64>,
}

impl Default for AuditTrail {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        AuditTrail {
            sender,
            receiver: tokio::sync::Mutex::new(receiver),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            handled: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl AuditTrail {
    /// Queues a record; never waits.
    pub fn record(&self, record: AuditRecord) {
        if self.sender.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("the audit queue is full; a tools/call record was dropped");
        } else {
            self.queued.fetch_add(1, Ordering::Release);
        }
    }

    /// Waits until the writer has handled every record queued before the
    /// call: then a record of a call that has finished can be read back.
    pub async fn settled(&self) {
        let queued = self.queued.load(Ordering::Acquire);
        let mut handled = self.handled.subscribe();
        // The sender lives as long as the trail: waiting cannot fail.
        let _ = handled.wait_for(|handled| *handled >= queued).await;
    }

    /// Writes queued records to `store` for as long as the future is
    /// polled. The first record after a quiet spell wakes the writer, which
    /// then sleeps `GATHER` while the rest queue up: a record sent while it
    /// sleeps wakes nothing, so the call path never crosses to the writer's
    /// thread. Then everything queued is written, `BATCH` per statement.
    pub async fn write_to(&self, store: &Store) {
        let mut receiver = self.receiver.lock().await;
        let mut batch = Vec::with_capacity(BATCH);
        while receiver.recv_many(&mut batch, BATCH).await > 0 {
            tokio::time::sleep(GATHER).await;
            write_queued(&mut receiver, &mut batch, store, self).await;
        }
    }

    /// Records written to the store, and records dropped, so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// Writes what is still queued, once the writer has stopped (at
    /// shutdown).
    pub async fn flush(&self, store: &Store) {
        let mut receiver = self.receiver.lock().await;
        let mut batch = Vec::with_capacity(BATCH);
        write_queued(&mut receiver, &mut batch, store, self).await;
    }
}

/// Writes `batch` and every record queued behind it, `BATCH` per
/// statement, without waiting for more.
async fn write_queued(
    receiver: &mut mpsc::Receiver<AuditRecord>,
    batch: &mut Vec<AuditRecord>,
    store: &Store,
    trail: &AuditTrail,
) {
    loop {
        while batch.len() < BATCH
            && let Ok(record) = receiver.try_recv()
        {
            batch.push(record);
        }
        let full = batch.len() == BATCH;
        write(store, batch, trail).await;
        if !full {
            return;
        }
    }
}

async fn write(store: &Store, batch: &mut Vec<AuditRecord>, trail: &AuditTrail) {
    let records = batch.len() as u64;
    match store.insert_audit_records(batch).await {
        Ok(()) => {
            trail.written.fetch_add(records, Ordering::Relaxed);
        }
        Err(error) => {
            tracing::error!(%error, records, "could not write audit records")
        }
    }
    batch.clear();
    trail.handled.send_modify(|handled| *handled += records);
}

/// Where an MCP session's calls are recorded, and under which session.
#[derive(Clone)]
pub struct AuditContext {
    pub trail: std::sync::Arc<AuditTrail>,
    pub metrics: std::sync::Arc<Metrics>,
    pub session_id: Uuid,
    /// The signed-in user whose session it is: every call is theirs.
    pub subject: Option<std::sync::Arc<str>>,
    /// The metrics series that count the session's calls by its user's
    /// subject and by its name, when it has them.
    pub counted_under: Vec<Counter>,
}

/// One call being timed.
pub struct AuditedCall<'a> {
    context: &'a AuditContext,
    mcp_session_id: &'a str,
    tool: String,
    started: Instant,
}

impl<'a> AuditedCall<'a> {
    pub fn start(context: &'a AuditContext, mcp_session_id: &'a str, tool: &str) -> Self {
        AuditedCall {
            context,
            mcp_session_id,
            tool: bounded_tool_name(tool),
            started: Instant::now(),
        }
    }

    /// Records how the call ended: `routed` is the backend and the tool's
    /// own name there, None when the name led to no backend.
    pub fn finish(self, routed: Option<(&str, &str)>, outcome: &Result<Payload, CallError>) {
        let (outcome, error_class) = classify(outcome);
        let elapsed = self.started.elapsed();
        self.context
            .metrics
            .record_call(routed, outcome, error_class, elapsed);
        for counter in &self.context.counted_under {
            counter.inc();
        }
        let backend = routed.map(|(server, _)| server);
        self.context.trail.record(AuditRecord {
            session_id: self.context.session_id,
            mcp_session_id: self.mcp_session_id.to_owned(),
            backend: backend.map(str::to_owned),
            tool: self.tool,
            outcome,
            error_class,
            duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            at: Utc::now(),
            subject: self.context.subject.clone(),
        });
    }
}

/// A tool name as the audit trail keeps and shows it: a client may call any
/// name, so control characters are escaped and a name longer than 128
/// characters is cut, with a hash of the whole name that still tells long
/// names apart. Neither the database nor an audit answer grows with a name.
fn bounded_tool_name(name: &str) -> String {
    use sha2::{Digest, Sha256};
    // The usual name, kept as it is: only a long one or one with a control
    // character is rebuilt below, character by character.
    if name.len() <= MAX_TOOL_NAME_CHARS && !name.chars().any(char::is_control) {
        return name.to_owned();
    }
    let mut kept = String::new();
    let mut chars = 0;
    let mut cut = false;
    for c in name.chars() {
        let escaped: String = if c.is_control() {
            c.escape_debug().collect()
        } else {
            c.to_string()
        };
        chars += escaped.chars().count();
        if chars > MAX_TOOL_NAME_CHARS {
            cut = true;
            break;
        }
        kept.push_str(&escaped);
    }
    if cut {
        let digest = Sha256::digest(name.as_bytes());
        kept.push_str(&format!("…#{}", hex::encode(&digest[..8])));
    }
    kept
}

/// The outcome of a call and, for a failure, its class.
fn classify(outcome: &Result<Payload, CallError>) -> (&'static str, Option<&'static str>) {
    let error = match outcome {
        Ok(payload) if reports_tool_error(payload) => return ("tool_error", None),
        Ok(_) => return ("ok", None),
        Err(error) => error,
    };
    let class = match error {
        CallError::MethodNotFound { .. } | CallError::UnknownResource { .. } => "invalid_request",
        CallError::InvalidParams { .. } => "invalid_params",
        CallError::Unknown { .. } => "unknown_tool",
        CallError::BackendUnavailable(_) => "unavailable",
        CallError::Backend(backend) => backend.class(),
        CallError::Interrupted => "interrupted",
        CallError::UrlElicitationRequired { .. } => "needs_authorization",
        CallError::Relayed { .. } => "backend_error",
    };
    ("error", Some(class))
}

/// Whether a `tools/call` result says the tool failed (`isError: true`).
fn reports_tool_error(payload: &Payload) -> bool {
    #[derive(Deserialize)]
    struct ToolResult {
        #[serde(default, rename = "isError")]
        is_error: bool,
    }
    match payload {
        Payload::Json(value) => {
            value.get("isError").and_then(serde_json::Value::as_bool) == Some(true)
        }
        // Parsed only when the key is there at all: on the tools/call path,
        // a large result costs a byte scan, not a second parse.
        Payload::Raw(raw) => {
            raw.get().contains("\"isError\"")
                && serde_json::from_str::<ToolResult>(raw.get()).is_ok_and(|r| r.is_error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn raw(text: &str) -> Payload {
        Payload::Raw(RawValue::from_string(text.to_owned()).expect("JSON"))
    }

    #[test]
    fn a_tool_name_is_kept_escaped_and_cut_with_a_hash_of_the_whole() {
        assert_eq!(bounded_tool_name("alpha__echo"), "alpha__echo");
        assert_eq!(bounded_tool_name("a\nb\u{7}"), "a\\nb\\u{7}");
        let long = "x".repeat(4 * 1024 * 1024);
        let kept = bounded_tool_name(&long);
        assert!(kept.starts_with(&"x".repeat(128)), "{kept}");
        assert_eq!(kept.chars().count(), 128 + 2 + 16);
        let other = format!("{}y", "x".repeat(200));
        assert_ne!(bounded_tool_name(&other), kept, "the hash tells them apart");
        assert_eq!(bounded_tool_name(&"é".repeat(128)), "é".repeat(128));
    }

    #[tokio::test]
    async fn records_arriving_faster_than_batches_are_all_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = crate::store::crypto::EncryptionKey::from_base64(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            crate::store::crypto::KeySource::Environment,
        )
        .expect("valid key");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let store = std::sync::Arc::new(Store::connect(&url, key).await.expect("store opens"));
        let trail = std::sync::Arc::new(AuditTrail::default());
        let writer = tokio::spawn({
            let (trail, store) = (trail.clone(), store.clone());
            async move { trail.write_to(&store).await }
        });
        let session_id = Uuid::new_v4();
        // More than a batch, in more than one gathering window.
        let total = 2 * BATCH + 100;
        for n in 0..total {
            trail.record(AuditRecord {
                session_id,
                mcp_session_id: "m".into(),
                backend: Some("a".into()),
                tool: format!("a__t{n}"),
                outcome: "ok",
                error_class: None,
                duration_ms: 1,
                at: Utc::now(),
                subject: None,
            });
            if n == BATCH {
                tokio::time::sleep(GATHER * 2).await;
            }
        }
        let mut written = 0;
        for _ in 0..100 {
            written = store
                .audit_records(session_id, 10_000, None)
                .await
                .expect("read")
                .len();
            if written == total {
                break;
            }
            tokio::time::sleep(GATHER).await;
        }
        writer.abort();
        assert_eq!(written, total);
    }

    #[test]
    fn only_is_error_true_at_the_top_counts_as_a_tool_error() {
        assert!(reports_tool_error(&raw(r#"{"content":[],"isError":true}"#)));
        assert!(!reports_tool_error(&raw(
            r#"{"content":[],"isError":false}"#
        )));
        assert!(!reports_tool_error(&raw(
            r#"{"content":[{"type":"text","text":"\"isError\":true"}]}"#
        )));
        assert!(!reports_tool_error(&raw(r#"{"content":[]}"#)));
        assert!(reports_tool_error(&Payload::Json(
            serde_json::json!({ "isError": true })
        )));
    }
}
