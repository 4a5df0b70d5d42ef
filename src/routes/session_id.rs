//! The session id in a path: parsed once per request, and kept as the
//! client wrote it for the message that names no session.

use std::sync::Arc;

use uuid::Uuid;

use super::error::{ApiError, quoted};
use crate::mux::{Mux, Session};

/// A session id from a path.
#[derive(Debug, Clone, Copy)]
pub struct SessionPath<'a> {
    pub id: Uuid,
    written: &'a str,
}

impl<'a> SessionPath<'a> {
    /// Anything but a UUID names no session.
    pub fn parse(written: &'a str) -> Result<Self, ApiError> {
        match Uuid::try_parse(written) {
            Ok(id) => Ok(SessionPath { id, written }),
            Err(_) => Err(no_session(written)),
        }
    }

    /// The 404 for a path naming no session.
    pub fn not_found(&self) -> ApiError {
        no_session(self.written)
    }

    /// The session the path names, or its 404.
    pub async fn session(&self, mux: &Mux) -> Result<Arc<Session>, ApiError> {
        mux.session(self.id).await?.ok_or_else(|| self.not_found())
    }
}

fn no_session(written: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("no session {}", quoted(written)),
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
