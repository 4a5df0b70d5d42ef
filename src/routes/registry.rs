//! `GET /registry`: the servers a client may choose and the credential each
//! needs. Never a URL (an operator may put a secret in one) nor a secret: of
//! a stdio server only the command's name, never its arguments or environment.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

use super::error::{ApiError, ErrorBody};
use crate::mux::Mux;
use crate::registry::Endpoint;

/// The servers a session may be created over.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistryListing {
    /// Joins a server's name and a tool's in a session: `everything__echo`.
    tool_separator: String,
    servers: Vec<ListedServer>,
    /// When the registry served was read from its file.
    #[serde(skip_serializing_if = "Option::is_none")]
    loaded_at: Option<DateTime<Utc>>,
    /// SHA-256 of the file's bytes when it was read, as hex: which version
    /// of `registry.yaml` is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

/// What a reload of the registry changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistryReloaded {
    /// Servers sessions may choose from now on.
    added: Vec<String>,
    /// Servers whose settings apply from their next backend session.
    changed: Vec<String>,
    /// Servers whose sessions' backend sessions no longer open.
    removed: Vec<String>,
    loaded_at: Option<DateTime<Utc>>,
    sha256: Option<String>,
}

/// Reads `registry.yaml` again and serves it, if it is valid whole (as
/// SIGHUP does); a file that is not keeps the registry served.
#[utoipa::path(post, path = "/registry/reload", tag = "sessions", operation_id = "reload_registry",
    responses(
        (status = 200, description = "The registry was reloaded", body = RegistryReloaded),
        (status = 422, description = "The file is not valid; the registry served stays", body = ErrorBody,
            example = json!({"error": "registry_invalid",
                "message": "registry registry.yaml: servers.demo.url: must be an http or https URL with a host; the registry served is unchanged"})),
    ))]
pub async fn reload(mux: web::Data<Mux>) -> Result<HttpResponse, ApiError> {
    let reloaded = mux
        .reload_registry()
        .map_err(|error| ApiError::RegistryInvalid {
            message: error.to_string(),
        })?;
    let (loaded_at, sha256) = reloaded
        .version
        .map(|version| (version.loaded_at, version.sha256))
        .unzip();
    Ok(HttpResponse::Ok().json(RegistryReloaded {
        added: reloaded.added,
        changed: reloaded.changed,
        removed: reloaded.removed,
        loaded_at,
        sha256,
    }))
}

/// A server of the registry, as clients may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedServer {
    name: String,
    description: Option<String>,
    /// `streamable_http`, `sse` or `stdio`.
    #[schema(examples("streamable_http"))]
    transport: &'static str,
    /// `none`, `bearer` or `api_key`.
    #[schema(examples("bearer"))]
    auth: &'static str,
    /// The fields its entry in create-session's `credentials` takes.
    credential_fields: Vec<&'static str>,
    /// A stdio server's command name, never its arguments or environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    /// The servers its calls fail over to, in order; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fallback: Vec<ListedFallback>,
}

/// A fallback of a server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedFallback {
    name: String,
    /// Whether a session over the server needs a credential for the
    /// fallback too, under the fallback's name: it takes its credential in
    /// another way than the server, so it cannot be sent the server's.
    own_credential: bool,
}

/// The servers a client may choose, and the credential each needs.
#[utoipa::path(get, path = "/registry", tag = "sessions", operation_id = "list_servers",
    responses((status = 200, description = "The registry's servers", body = RegistryListing)))]
pub async fn list_servers(mux: web::Data<Mux>) -> Result<HttpResponse, ApiError> {
    let registry = mux.registry();
    let servers = registry
        .servers()
        .map(|server| ListedServer {
            name: server.name.clone(),
            description: server.description.clone(),
            transport: server.endpoint.transport_name(),
            auth: server.auth.type_name(),
            credential_fields: server.auth.credential_field().into_iter().collect(),
            command: match &server.endpoint {
                Endpoint::Stdio(command) => Some(command.name().to_owned()),
                _ => None,
            },
            fallback: server
                .fallback
                .iter()
                .filter_map(|name| registry.server(name))
                .map(|fallback| ListedFallback {
                    name: fallback.name.clone(),
                    own_credential: fallback.needs_own_credential_as_fallback_of(server),
                })
                .collect(),
        })
        .collect();
    let (loaded_at, sha256) = mux
        .registry_version()
        .map(|version| (version.loaded_at, version.sha256))
        .unzip();
    Ok(HttpResponse::Ok().json(RegistryListing {
        loaded_at,
        sha256,
        tool_separator: registry.tool_separator.clone(),
        servers,
    }))
}
