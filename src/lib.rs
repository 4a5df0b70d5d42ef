//! mcp-mux: a per-session MCP multiplexer.
//!
//! A client creates a session naming backends from the registry and its
//! credentials for them; the session URL is itself an MCP server (Streamable
//! HTTP) that merges the backends' tools under a per-server prefix and routes
//! each call to the backend that owns it.
//!
//! Modules, with dependencies pointing down only:
//! - [`startup`]: builds the application from [`startup::Settings`].
//! - [`capacity`]: the open-file limit, raised at start and shared out
//!   between clients, backends and the gateway's own files.
//! - [`rotation`]: the `rotate-key` command, which re-seals stored credentials.
//! - [`check`]: the `registry check` command, which opens each backend once.
//! - [`remote`]: the `sessions` commands, a client of a running gateway.
//! - [`routes`]: actix-web handlers; access (tokens, Host, Origin), rate limits,
//!   parse, check, map errors to HTTP and JSON-RPC.
//! - [`mux`]: the session runtime: MCP sessions (kept in the store), fan-out,
//!   merged catalogue, routing, the audit trail.
//! - [`backend`]: one MCP client per backend session (Streamable HTTP, stdio,
//!   HTTP+SSE): auth, timeouts, retries, and what all sessions of a backend
//!   share (circuit breaker, call slots).
//! - [`oauth`]: mcp-mux as its backends' OAuth client: discovery of their
//!   authorization servers.
//! - [`registry`]: `registry.yaml`, validated once at start.
//! - [`store`]: sea-orm entities and queries; credentials sealed with AES-256-GCM.
//! - [`credentials`]: client credentials as `secrecy` types.
//! - [`embedding`]: sentence embeddings for search mode's optional
//!   semantic ranking, from a model the operator provides.
//! - [`traces`]: OpenTelemetry spans of MCP requests and backend exchanges,
//!   W3C trace context in and out, the OTLP exporter.
//! - [`logging`]: log lines: the access line's text, and lines gathered on
//!   their way to stderr.
//! - [`mcp`]: protocol only, no I/O: JSON-RPC, revisions, SSE codec, naming.

pub mod backend;
pub mod capacity;
pub mod check;
pub mod cluster;
pub mod credentials;
pub mod embedding;
pub mod grants;
pub mod identity;
pub mod logging;
pub mod mcp;
pub mod mux;
pub mod oauth;
pub mod registry;
pub mod remote;
pub mod rotation;
pub mod routes;
pub mod startup;
pub mod store;
pub mod traces;
