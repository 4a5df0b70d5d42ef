//! A real MCP server on stdio (rmcp), which the integration tests run as a
//! stdio backend of mcp-mux: `cargo test` builds it as an example.

// rmcp marks sampling deprecated for the 2026 revision; 2025-11-25, which
// mcp-mux speaks to backends, still has it.
#![allow(deprecated)]

use std::io::Write as _;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CreateMessageRequestParams, ProgressNotificationParam, SamplingMessage, ServerCapabilities,
    ServerConfig, ServerRequest,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, Peer, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler,
    tool_router,
};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct TextRequest {
    text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct NameRequest {
    name: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct SizeRequest {
    bytes: usize,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct QuestionRequest {
    question: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct WaitRequest {
    ms: u64,
}

#[derive(Debug, Clone)]
struct StdioPeer {
    tool_router: ToolRouter<Self>,
}

fn internal(error: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(error.to_string(), None)
}

#[tool_router]
impl StdioPeer {
    #[tool(description = "Echo the text back")]
    fn echo(&self, Parameters(TextRequest { text }): Parameters<TextRequest>) -> String {
        format!("stdio: {text}")
    }

    #[tool(description = "The id of this server's process")]
    fn pid(&self) -> String {
        std::process::id().to_string()
    }

    #[tool(description = "The value of an environment variable, or (unset)")]
    fn env(&self, Parameters(NameRequest { name }): Parameters<NameRequest>) -> String {
        std::env::var(name).unwrap_or_else(|_| "(unset)".to_owned())
    }

    #[tool(description = "A text of the given size in bytes")]
    fn big(&self, Parameters(SizeRequest { bytes }): Parameters<SizeRequest>) -> String {
        "x".repeat(bytes)
    }

    #[tool(description = "Exit at once, without answering")]
    fn exit(&self) -> String {
        std::process::exit(3)
    }

    #[tool(description = "Announce that the tool list changed, then answer")]
    async fn announce(&self, peer: Peer<RoleServer>) -> Result<String, ErrorData> {
        peer.notify_tool_list_changed().await.map_err(internal)?;
        Ok("announced".to_owned())
    }

    #[tool(description = "Ping the client, then answer")]
    async fn ping_client(&self, peer: Peer<RoleServer>) -> Result<String, ErrorData> {
        peer.send_request(ServerRequest::PingRequest(Default::default()))
            .await
            .map_err(internal)?;
        Ok("the client answered ping".to_owned())
    }

    #[tool(description = "Report progress twice, then answer")]
    async fn progress(&self, context: RequestContext<RoleServer>) -> Result<String, ErrorData> {
        let Some(token) = context.meta.get_progress_token() else {
            return Ok("no progress token".to_owned());
        };
        for step in [1.0, 2.0] {
            context
                .peer
                .notify_progress(ProgressNotificationParam::new(token.clone(), step))
                .await
                .map_err(internal)?;
        }
        Ok("progressed".to_owned())
    }

    #[tool(description = "Ask the client's model a question")]
    async fn ask(
        &self,
        Parameters(QuestionRequest { question }): Parameters<QuestionRequest>,
        peer: Peer<RoleServer>,
    ) -> Result<String, ErrorData> {
        let request =
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(question)], 50);
        let answer = peer.create_message(request).await.map_err(internal)?;
        let answer = serde_json::to_value(&answer).unwrap_or_default();
        Ok(format!(
            "the model said: {}",
            answer["content"]["text"].as_str().unwrap_or("?")
        ))
    }

    #[tool(description = "Wait; a cancellation is noted in the file $PEER_LOG")]
    async fn wait(
        &self,
        Parameters(WaitRequest { ms }): Parameters<WaitRequest>,
        context: RequestContext<RoleServer>,
    ) -> String {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => "waited".to_owned(),
            _ = context.ct.cancelled() => {
                if let Ok(path) = std::env::var("PEER_LOG")
                    && let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(path)
                {
                    let _ = writeln!(log, "cancelled");
                }
                "cancelled".to_owned()
            }
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for StdioPeer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("The stdio test backend".to_owned())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    eprintln!("stdio peer {} starting", std::process::id());
    let peer = StdioPeer {
        tool_router: StdioPeer::tool_router(),
    };
    let service = peer.serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    // A careless server that goes on after its end of input.
    if std::env::var_os("PEER_LINGER").is_some() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    Ok(())
}
