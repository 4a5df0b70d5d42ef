//! actix-web handlers: parse the request, check it, call the mux, and map
//! every outcome to an HTTP status and a JSON (or JSON-RPC) body.

pub mod access;
mod body;
pub mod error;
mod health;
mod mcp;
pub mod rate_limit;
mod registry;
mod sessions;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};

pub use error::ApiError;

/// Mounts every route.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/healthz")
                .route(web::get().to(health::healthz))
                .default_service(web::to(|| method_not_allowed("GET"))),
        )
        .service(
            web::resource("/registry")
                .route(web::get().to(registry::list_servers))
                .default_service(web::to(|| method_not_allowed("GET"))),
        )
        .service(
            web::resource("/create-session")
                .route(web::post().to(sessions::create_session))
                .default_service(web::to(|| method_not_allowed("POST"))),
        )
        .service(
            web::resource("/session/{id}")
                .route(web::get().to(sessions::get_session))
                .route(web::delete().to(sessions::delete_session))
                .default_service(web::to(|| method_not_allowed("GET, DELETE"))),
        )
        .service(
            web::resource("/session/{id}/audit")
                .route(web::get().to(sessions::get_audit))
                .default_service(web::to(|| method_not_allowed("GET"))),
        )
        .service(
            web::resource("/session/{id}/mcp")
                .route(web::post().to(mcp::post))
                .route(web::get().to(mcp::get))
                .route(web::delete().to(mcp::delete))
                .default_service(web::to(mcp::method_not_allowed)),
        )
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    ApiError::NotFound {
        message: "no such route".into(),
    }
    .error_response()
}

async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    ApiError::MethodNotAllowed { allow }.error_response()
}

/// Refuses requests that arrive once shutdown has begun, with a `503` and
/// `Retry-After`: requests already running finish, new ones go elsewhere or
/// come back after the restart.
pub async fn refuse_while_stopping(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let stopping = request
        .app_data::<web::Data<crate::mux::Mux>>()
        .is_some_and(|mux| *mux.stopping().borrow());
    if !stopping {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let response = if request.path().ends_with("/mcp") {
        mcp::refusal_response(ApiError::ShuttingDown)
    } else {
        ApiError::ShuttingDown.error_response()
    };
    Ok(request.into_response(response))
}

/// Logs each request's method, path, status and latency: never headers or
/// bodies (they carry credentials), and session ids only shortened.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = redact_path(request.path());
    let response = next.call(request).await?;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = %format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    Ok(response)
}

/// `/session/<id>/mcp` with the id cut to its first 8 characters.
fn redact_path(path: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut after_session = false;
    for segment in path.split('/') {
        if after_session && segment.len() > 8 {
            let cut = segment
                .char_indices()
                .nth(8)
                .map_or(segment.len(), |(i, _)| i);
            parts.push(format!("{}…", &segment[..cut]));
        } else {
            parts.push(segment.to_owned());
        }
        after_session = segment == "session";
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::redact_path;

    #[test]
    fn session_ids_are_shortened_in_logged_paths() {
        assert_eq!(
            redact_path("/session/0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61/mcp"),
            "/session/0b7c2f8e…/mcp"
        );
        assert_eq!(redact_path("/create-session"), "/create-session");
    }
}
