//! The MCP headers as actix's header names: a header looked up by a `&str`
//! has its name parsed anew, on every request.

use actix_web::http::header::HeaderName;

use crate::mcp::{PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER};

pub(super) const SESSION_ID: HeaderName = HeaderName::from_static(SESSION_ID_HEADER);
pub(super) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static(PROTOCOL_VERSION_HEADER);
