//! Server-to-client requests between real rmcp peers: a backend tool that
//! asks the client's model (sampling) while the client waits on the call.

// rmcp marks sampling deprecated for the 2026 revision; 2025-11-25, which
// the gateway serves, still has it.
#![allow(deprecated)]

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
    CreateMessageResult, Implementation, SamplingMessage, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{
    ClientHandler, ErrorData, Peer, RoleClient, RoleServer, ServerHandler, ServiceExt, schemars,
    tool, tool_handler, tool_router,
};
use serde_json::json;

use crate::helpers::*;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AskRequest {
    question: String,
}

/// A backend whose tool asks the client's model before it answers.
#[derive(Debug, Clone)]
struct AskingServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl AskingServer {
    #[tool(description = "Ask the client's model a question")]
    async fn ask(
        &self,
        Parameters(AskRequest { question }): Parameters<AskRequest>,
        client: Peer<RoleServer>,
    ) -> Result<String, ErrorData> {
        let request =
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(question)], 50);
        let answer = client
            .create_message(request)
            .await
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        let answer = serde_json::to_value(&answer).unwrap_or_default();
        Ok(format!(
            "the model said: {}",
            answer["content"]["text"].as_str().unwrap_or("?")
        ))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AskingServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// A client with a "model": it answers sampling requests itself.
#[derive(Clone)]
struct ModelClient;

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let backend = serve_rmcp_service(
        listener,
        || AskingServer {
            tool_router: AskingServer::tool_router(),
        },
        None,
    );
    let app = spawn_app(&registry_yaml(&[("oracle", &backend.url, "")])).await;
    let session = app.create_session(json!({ "servers": ["oracle"] })).await;
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
