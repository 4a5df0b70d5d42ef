//! `GET /registry`: the servers a client may choose and the credential each
//! needs. Never a URL (an operator may put a secret in one) nor a secret: of
//! a stdio server only the command's name, never its arguments or environment.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::error::ApiError;
use crate::mux::Mux;
use crate::registry::Endpoint;

pub async fn list_servers(mux: web::Data<Mux>) -> Result<HttpResponse, ApiError> {
    let registry = mux.registry();
    let servers: Vec<_> = registry
        .servers()
        .map(|server| {
            let mut listed = json!({
                "name": server.name,
                "description": server.description,
                "transport": server.endpoint.transport_name(),
                "auth": server.auth.type_name(),
                "credential_fields": server.auth.credential_field().into_iter().collect::<Vec<_>>(),
            });
            if let Endpoint::Stdio(command) = &server.endpoint {
                listed["command"] = command.name().into();
            }
            listed
        })
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({ "tool_separator": registry.tool_separator, "servers": servers })))
}
