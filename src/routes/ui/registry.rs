//! `GET /ui/registry`: the servers clients may choose and each backend's
//! health. What `GET /registry` shows and no more: never a URL, of a stdio
//! server only its command's name.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::html::{esc, health_cells, page};
use crate::mux::Mux;
use crate::registry::Endpoint;

/// The registry's servers with each backend's health.
#[utoipa::path(get, path = "/ui/registry", tag = "console", operation_id = "show_console_registry",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
pub async fn list(request: HttpRequest, mux: web::Data<Mux>) -> HttpResponse {
    let registry = mux.registry();
    let mut body = format!(
        "<p>Tool names: <code>&lt;server&gt;{}&lt;tool&gt;</code></p>\
         <table><tr><th>Server</th><th>Description</th><th>Transport</th><th>Auth</th>\
         <th>Credential field</th><th>Circuit</th><th>Calls in progress</th></tr>\n",
        esc(&registry.tool_separator)
    );
    for server in registry.servers() {
        let transport = match &server.endpoint {
            Endpoint::Stdio(command) => format!(
                "{} <code>{}</code>",
                server.endpoint.transport_name(),
                esc(command.name())
            ),
            endpoint => endpoint.transport_name().to_owned(),
        };
        body.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{transport}</td><td>{}</td><td>{}</td>{}</tr>\n",
            esc(&server.name),
            esc(server.description.as_deref().unwrap_or("")),
            server.auth.type_name(),
            server.auth.credential_field().unwrap_or(""),
            health_cells(mux.backend_health(&server.name).as_ref()),
        ));
    }
    body.push_str("</table>\n");
    page(StatusCode::OK, "Registry", Some(&request), &body)
}
