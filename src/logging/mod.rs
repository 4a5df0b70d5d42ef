//! Log lines: written in tracing-subscriber's formats, the access line of
//! every request more cheaply in the same words (`text.rs`), and gathered
//! on their way to stderr (`gathered.rs`).

pub mod gathered;
pub mod text;

/// The target of the access line every request writes (`routes`); the
/// text format writes lines of this target with an `elapsed_ms` itself.
pub const ACCESS_LINE_TARGET: &str = "mcp_mux::routes";
