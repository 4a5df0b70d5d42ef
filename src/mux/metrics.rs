//! What the gateway counts for Prometheus (`GET /metrics`): `tools/call`
//! outcomes and latency by server, HTTP requests by route, and refusals,
//! as they happen; and, read at each scrape, the process's CPU, memory and
//! open files, each backend's retries, circuit and calls in progress,
//! the sessions, MCP sessions and backend sessions, and the audit trail.
//!
//! Label values are bounded: a server is one the registry lists, a route
//! kind, status, reason, transport, outcome and error class are the
//! gateway's own words; the one label a backend sets, the tool, is cut,
//! capped and retired by `tool_calls` (a name that led to no backend
//! counts as ""); a signed-in user's subject and a session's name are
//! cut, and counted under their own label for the first
//! `MAX_CHOSEN_VALUES` values only.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::tool_calls::{ToolCalls, ToolListings};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubjectLabels {
    subject: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionNameLabels {
    name: String,
}

/// Values of a label that users choose (a subject, a session name)
/// counted under their own label; later ones count as `_other`.
const MAX_CHOSEN_VALUES: usize = 100;
/// Characters of such a value a label keeps.
const MAX_CHOSEN_CHARS: usize = 64;

/// A counter by one label whose values users choose: each value is cut,
/// and only the first `MAX_CHOSEN_VALUES` get a series of their own, so
/// that the series stay bounded whatever users send.
#[derive(Debug)]
struct CappedCounter<L: Clone + std::hash::Hash + Eq> {
    family: Family<L, Counter>,
    labelled: std::sync::atomic::AtomicUsize,
    label: fn(String) -> L,
}

impl<L: Clone + std::hash::Hash + Eq> CappedCounter<L> {
    fn new(label: fn(String) -> L) -> Self {
        CappedCounter {
            family: Family::default(),
            labelled: std::sync::atomic::AtomicUsize::new(0),
            label,
        }
    }

    /// The series of `value`: resolved once per session, so that a call
    /// only increments it.
    fn counter(&self, value: &str) -> Counter {
        let labels = (self.label)(value.chars().take(MAX_CHOSEN_CHARS).collect());
        if let Some(counter) = self.family.get(&labels) {
            return counter.clone();
        }
        let labelled = self
            .labelled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            < MAX_CHOSEN_VALUES;
        let labels = if labelled {
            labels
        } else {
            (self.label)("_other".into())
        };
        self.family.get_or_create(&labels).clone()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    route: &'static str,
    status: u16,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

type DurationFamily = Family<ServerLabels, Histogram, fn() -> Histogram>;

/// A metric with a value per backend: name, help, type, and how to read it.
type PerBackend = (
    &'static str,
    &'static str,
    MetricType,
    fn(&BackendState) -> u64,
);

/// The metrics kept as events happen.
#[derive(Debug)]
pub struct Metrics {
    tool_calls: Arc<ToolCalls>,
    call_duration: DurationFamily,
    refusals: Family<RefusalLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    signed_in_calls: CappedCounter<SubjectLabels>,
    named_session_calls: CappedCounter<SessionNameLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        // 1 ms to about 33 s, doubling.
        fn buckets() -> Histogram {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        }
        // A request the gateway answers itself takes well under a
        // millisecond: 100 µs to about 3 s, doubling.
        fn request_buckets() -> Histogram {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        }
        Metrics {
            tool_calls: Arc::default(),
            call_duration: Family::new_with_constructor(buckets),
            refusals: Family::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(request_buckets),
            signed_in_calls: CappedCounter::new(|subject| SubjectLabels { subject }),
            named_session_calls: CappedCounter::new(|name| SessionNameLabels { name }),
        }
    }
}

/// A backend's state at a scrape.
pub struct BackendState {
    pub server: String,
    pub retries: u64,
    /// 0 closed, 1 half-open, 2 open.
    pub circuit: u8,
    pub calls_in_progress: usize,
}

/// What a scrape reads from the gateway's state.
pub struct Snapshot {
    pub backends: Vec<BackendState>,
    pub sessions_stored: u64,
    pub mcp_sessions_live: u64,
    /// Open backend sessions by transport name.
    pub backend_sessions_open: Vec<(&'static str, u64)>,
    /// The backends of the sessions loaded here, by state (`ready`, …).
    pub session_backends: Vec<(&'static str, u64)>,
    pub audit_written: u64,
    pub audit_dropped: u64,
}

impl Metrics {
    /// One `tools/call`: `server` and `tool` when the name led to a
    /// backend, the outcome and error class the audit trail gives it.
    pub fn record_call(
        &self,
        routed: Option<(&str, &str)>,
        outcome: &'static str,
        error_class: Option<&'static str>,
        elapsed: Duration,
    ) {
        self.tool_calls
            .record(routed, outcome, error_class.unwrap_or_default());
        if let Some((server, _)) = routed {
            self.call_duration
                .get_or_create(&ServerLabels {
                    server: server.to_owned(),
                })
                .observe(elapsed.as_secs_f64());
        }
    }

    /// What counts the `tools/call`s of a signed-in user's session, by
    /// their subject.
    pub fn signed_in_calls(&self, subject: &str) -> Counter {
        self.signed_in_calls.counter(subject)
    }

    /// What counts the `tools/call`s of a named session, by its name.
    pub fn named_session_calls(&self, name: &str) -> Counter {
        self.named_session_calls.counter(name)
    }

    /// What a kept list of tools notes its backends' tools in, so that
    /// the series of a tool no list names any more are retired.
    pub fn tool_listings(&self) -> ToolListings {
        ToolListings::new(self.tool_calls.clone())
    }

    /// A request answered with an error status, by the kind of route and
    /// the reason (an error kind of a bounded set).
    pub fn record_refusal(&self, route: &'static str, status: u16, reason: &'static str) {
        self.refusals
            .get_or_create(&RefusalLabels {
                route,
                status,
                reason,
            })
            .inc();
    }

    /// One HTTP request answered: its route's pattern (`-` when it
    /// matched none), method, status and how long the answer took to
    /// start.
    pub fn record_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels { route, method })
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of these metrics and of `snapshot`,
    /// with the process's own (CPU, memory, open files) unprefixed, as
    /// Prometheus names them everywhere.
    pub fn encode(&self, snapshot: Snapshot) -> String {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessMetrics));
        let registry = root.sub_registry_with_prefix("mcp_mux");
        registry.register(
            "build_info",
            "the running build: always 1, with its version as a label",
            build_info(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route pattern, method and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "time to answer HTTP requests (to the start of a streamed answer), by route pattern and method",
            self.request_duration.clone(),
        );
        registry.register(
            "tool_calls",
            "tools/call requests by server, tool, outcome and error class",
            self.tool_calls.family(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "tools/call latency by server, for calls that reached a backend",
            self.call_duration.clone(),
        );
        registry.register(
            "refusals",
            "requests answered with an HTTP error status, by route kind, status and reason",
            self.refusals.clone(),
        );
        registry.register(
            "signed_in_tool_calls",
            "tools/call requests of signed-in users' sessions, by subject (the first 100 subjects; later ones as _other)",
            self.signed_in_calls.family.clone(),
        );
        registry.register(
            "named_session_tool_calls",
            "tools/call requests of named sessions, by name (the first 100 names; later ones as _other)",
            self.named_session_calls.family.clone(),
        );
        registry.register_collector(Box::new(snapshot));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &root);
        text
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn build_info() -> Family<BuildLabels, prometheus_client::metrics::gauge::Gauge> {
    let family = Family::<BuildLabels, prometheus_client::metrics::gauge::Gauge>::default();
    family
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    family
}

/// The process's CPU time, resident memory and open files, read from
/// `/proc` at each scrape (left out where there is no `/proc`).
#[derive(Debug)]
struct ProcessMetrics;

/// What `/proc/self` says at a scrape.
#[derive(Debug, Default, PartialEq)]
struct ProcessSample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    open_fds: Option<u64>,
}

impl ProcessSample {
    fn read() -> Self {
        ProcessSample {
            cpu_seconds: std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|stat| cpu_seconds(&stat)),
            resident_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|status| resident_bytes(&status)),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
        }
    }
}

/// User and system CPU seconds from `/proc/self/stat`: fields 14 and 15,
/// counted after the command name (which may hold spaces, within
/// parentheses), in clock ticks of 1/100 s (the kernel's `USER_HZ`, fixed
/// for this interface on every architecture Linux runs on).
fn cpu_seconds(stat: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / USER_HZ)
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

impl Collector for ProcessMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = ProcessSample::read();
        if let Some(seconds) = sample.cpu_seconds {
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "user and system CPU time the process used",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(seconds).encode(metric)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "resident memory of the process",
                sample.resident_bytes,
            ),
            (
                "process_open_fds",
                "file descriptors the process has open",
                sample.open_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                ConstGauge::new(value as i64).encode(metric)?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let per_backend: [PerBackend; 3] = [
            (
                "backend_retries",
                "retries of backend exchanges, by server",
                MetricType::Counter,
                |backend| backend.retries,
            ),
            (
                "circuit_state",
                "circuit breaker by server: 0 closed, 1 half-open, 2 open",
                MetricType::Gauge,
                |backend| u64::from(backend.circuit),
            ),
            (
                "calls_in_progress",
                "calls in progress on this gateway, by server",
                MetricType::Gauge,
                |backend| backend.calls_in_progress as u64,
            ),
        ];
        for (name, help, kind, value) in per_backend {
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for backend in &self.backends {
                let labels = ServerLabels {
                    server: backend.server.clone(),
                };
                let family = metric.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(value(backend)).encode(family)?,
                    _ => ConstGauge::new(value(backend) as i64).encode(family)?,
                }
            }
        }
        let gauges = [
            (
                "sessions_stored",
                "sessions in the store",
                self.sessions_stored,
            ),
            (
                "mcp_sessions_live",
                "MCP sessions open on this gateway",
                self.mcp_sessions_live,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value as i64).encode(metric)?;
        }
        let mut open = encoder.encode_descriptor(
            "backend_sessions_open",
            "backend sessions open on this gateway, by transport",
            None,
            MetricType::Gauge,
        )?;
        for (transport, count) in &self.backend_sessions_open {
            let labels = TransportLabels { transport };
            ConstGauge::new(*count as i64).encode(open.encode_family(&labels)?)?;
        }
        let mut states = encoder.encode_descriptor(
            "session_backends",
            "backends of the sessions loaded on this gateway, by state",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in &self.session_backends {
            let labels = StateLabels { state };
            ConstGauge::new(*count as i64).encode(states.encode_family(&labels)?)?;
        }
        let counters = [
            (
                "audit_records_written",
                "audit records written to the store",
                self.audit_written,
            ),
            (
                "audit_records_dropped",
                "audit records dropped because the queue was full",
                self.audit_dropped,
            ),
        ];
        for (name, help, value) in counters {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_figures_are_read_from_proc() {
        // A command name with spaces and parentheses does not shift fields.
        let stat = "4242 (mcp mux (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0";
        assert_eq!(cpu_seconds(stat), Some(3.25));
        assert_eq!(cpu_seconds("garbage"), None);
        let status = "Name:\tmcp-mux\nVmPeak:\t  9000 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(resident_bytes(status), Some(20480 * 1024));
        assert_eq!(resident_bytes("Name: x\n"), None);
        if cfg!(target_os = "linux") {
            let sample = ProcessSample::read();
            assert!(sample.cpu_seconds.is_some() && sample.resident_bytes.is_some());
            assert!(sample.open_fds.is_some_and(|open| open > 0));
        }
    }

    #[test]
    fn a_value_users_choose_gets_a_series_of_its_own_for_the_first_hundred_only() {
        let counted = CappedCounter::new(|name| SessionNameLabels { name });
        let long = "n".repeat(80);
        counted.counter(&long).inc();
        // The same value, cut, is the same series.
        counted.counter(&"n".repeat(70)).inc();
        for n in 1..MAX_CHOSEN_VALUES {
            counted.counter(&format!("s{n}")).inc();
        }
        counted.counter("late").inc();
        counted.counter("later").inc();
        let count = |name: &str| {
            counted
                .family
                .get(&SessionNameLabels { name: name.into() })
                .map(|counter| counter.get())
        };
        assert_eq!(count(&"n".repeat(MAX_CHOSEN_CHARS)), Some(2));
        assert_eq!(count("s99"), Some(1));
        assert_eq!(count("late"), None);
        assert_eq!(count("_other"), Some(2));
    }
}
