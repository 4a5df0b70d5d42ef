//! What a client request answers when it succeeds.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::CallError;
use crate::backend::Reply;

/// A backend's answer, passed to the client as it came.
pub(super) fn passed_on(reply: Reply) -> Result<Payload, CallError> {
    match reply {
        Reply::Result(raw) => Ok(Payload::Raw(raw)),
        Reply::Error(error) => Err(CallError::Relayed { error }),
    }
}

/// A successful answer: either a value mcp-mux built or a backend's result,
/// passed on as the bytes it sent.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Json(Value),
    Raw(Box<RawValue>),
}

impl Payload {
    /// A `tools/call` result saying the tool failed, in words a model can
    /// show its user.
    pub fn tool_error(text: &str) -> Self {
        Payload::Json(serde_json::json!({
            "content": [{ "type": "text", "text": text }],
            "isError": true,
        }))
    }
}
