//! Server-to-client requests between real rmcp peers: a backend tool that
//! asks the client's model (sampling) while the client waits on the call,
//! for a legacy client (a request on the answer stream) and a stateless one
//! (an `InputRequiredResult`, then a retry).

// rmcp marks sampling deprecated for the 2026 revision; 2025-11-25, which
// the gateway serves, still has it.
#![allow(deprecated)]

use rmcp::model::ProtocolVersion;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
    CreateMessageResult, Implementation, SamplingMessage,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::json;

use crate::helpers::*;

/// A client with a "model": it answers sampling requests itself.
#[derive(Clone)]
pub struct ModelClient;

impl ClientHandler for ModelClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_sampling().build(),
            Implementation::new("model-client", "1"),
        )
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let asked = serde_json::to_value(&params.messages).unwrap_or_default();
        let question = asked[0]["content"]["text"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(format!("42, to \"{question}\"")),
            "test-model".into(),
        ))
    }
}

#[tokio::test]
async fn a_backend_asks_the_clients_model_through_the_gateway_during_a_call() {
    let (app, _backend, session) = session_over_rmcp("oracle", AskingServer::new).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(app.mcp_url(&session)),
    );
    let client = ModelClient
        .serve(transport)
        .await
        .expect("rmcp client connects");
    let arguments = json!({ "question": "the answer?" })
        .as_object()
        .cloned()
        .expect("object");
    let result = client
        .call_tool(CallToolRequestParams::new("oracle__ask").with_arguments(arguments))
        .await
        .expect("tools/call");
    let result = serde_json::to_value(&result).expect("serializable");
    assert_eq!(
        result["content"][0]["text"],
        "the model said: 42, to \"the answer?\""
    );
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn a_backend_asks_a_stateless_clients_model_through_input_required_rounds() {
    let (app, _backend, session) = session_over_rmcp("oracle", AskingServer::new).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(app.mcp_url(&session)),
    );
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = ModelClient
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .expect("a stateless rmcp client connects");
    for question in ["first?", "second?"] {
        let arguments = json!({ "question": question }).as_object().cloned();
        let mut call = CallToolRequestParams::new("oracle__ask");
        call.arguments = arguments;
        let result = client.call_tool(call).await.expect("tools/call");
        let result = serde_json::to_value(&result).expect("serializable");
        assert_eq!(
            result["content"][0]["text"],
            format!("the model said: 42, to \"{question}\"")
        );
    }
    client.cancel().await.expect("client closes");
}
