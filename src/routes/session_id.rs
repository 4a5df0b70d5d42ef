//! The session id in a path: parsed once per request, and kept as the
//! client wrote it for the message that names no session.

use uuid::Uuid;

use super::error::{ApiError, quoted};

/// A session id from a path.
#[derive(Debug, Clone, Copy)]
pub struct SessionPath<'a> {
    pub id: Uuid,
    written: &'a str,
}

impl<'a> SessionPath<'a> {
    /// Anything but a UUID names no session.
    pub fn parse(written: &'a str) -> Result<Self, ApiError> {
        let path = |id| SessionPath { id, written };
        Uuid::try_parse(written)
            .map(path)
            .map_err(|_| path(Uuid::nil()).not_found())
    }

    /// The 404 for a path naming no session.
    pub fn not_found(&self) -> ApiError {
        ApiError::NotFound {
            message: format!("no session {}", quoted(self.written)),
        }
    }
}

/// A session id shortened for logs: enough to correlate, too little to use.
pub fn short_id(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// The MCP endpoint of session `id`.
pub fn mcp_endpoint(id: Uuid) -> String {
    format!("/session/{id}/mcp")
}
