//! A real MCP server on stdio (rmcp) with the 500 generated tools of
//! `tests/search/generated.rs`, for measuring search mode against a large
//! backend: `cargo run --example many_tools`. A call answers with a short
//! text naming the tool and its arguments.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::model::{CallToolResponse, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

// The bench and the tests also use `many`, for larger catalogues.
#[allow(dead_code)]
#[path = "../search/generated.rs"]
mod generated;

#[derive(Clone)]
struct ManyTools {
    tools: Arc<Vec<Tool>>,
}

impl ServerHandler for ManyTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("500 generated tools across 20 domains".to_owned())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.tools.iter().any(|tool| tool.name == request.name) {
            let message = format!("unknown tool {}", request.name);
            return Err(ErrorData::invalid_params(message, None));
        }
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let text = format!("{} done with {arguments}", request.name);
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tools = generated::tools()
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<Vec<Tool>, _>>()?;
    let server = ManyTools {
        tools: Arc::new(tools),
    };
    server
        .serve(rmcp::transport::stdio())
        .await?
        .waiting()
        .await?;
    Ok(())
}
