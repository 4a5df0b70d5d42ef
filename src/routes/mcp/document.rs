//! The MCP endpoint's messages as the OpenAPI document shows them. The
//! endpoint reads and writes them without these types (a request is parsed
//! once into `mcp::request`, an answer written straight to bytes), so the
//! end-to-end fuzzing holds the live answers to these shapes.

use serde_json::Value;
use utoipa::ToSchema;

use crate::mcp::jsonrpc::ErrorObject;

/// A JSON-RPC 2.0 message from the client: a request (`id` and `method`),
/// a notification (`method` alone) or a response to a request the gateway
/// passed on from a backend (`id` with `result` or `error`). One message
/// per POST: batches are refused.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClientMessage {
    #[schema(examples("2.0"))]
    jsonrpc: String,
    /// A string or a number; absent in a notification.
    #[schema(examples(1))]
    id: Option<Value>,
    /// `initialize`, `tools/list`, `tools/call`, `notifications/initialized`, …
    #[schema(examples("ping"))]
    method: Option<String>,
    #[schema(value_type = Option<Object>)]
    params: Option<Value>,
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
    error: Option<ErrorObject>,
}

/// The answer to a request: its `result`, or a JSON-RPC `error`. A refusal
/// (a status other than 200) carries an `error`, with a null `id` when the
/// request's id could not be read.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Answer {
    #[schema(examples("2.0"))]
    jsonrpc: String,
    /// The request's id, or null.
    id: Value,
    #[schema(value_type = Option<Object>)]
    result: Option<Value>,
    error: Option<ErrorObject>,
}
