//! `GET /healthz`, the liveness probe: the process is up and its database
//! answers. `GET /readyz`, the readiness probe: besides, the gateway is not
//! stopping, so a load balancer sends it new clients. The registry is
//! loaded before the gateway listens. Both carry the version and uptime.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::mux::Mux;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (`/healthz`) or `ready` (`/readyz`) with 200, `unavailable`
    /// with 503.
    #[schema(examples("ok"))]
    status: HealthStatus,
    /// Why it is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    /// The gateway's version.
    version: &'static str,
    /// Whole seconds since the gateway started.
    uptime_seconds: u64,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum HealthStatus {
    Ok,
    Ready,
    Unavailable,
}

/// Liveness: the process is up and its database answers.
#[utoipa::path(get, path = "/healthz", tag = "probes", operation_id = "check_liveness",
    responses(
        (status = 200, description = "Alive", body = Health),
        (status = 503, description = "The database does not answer", body = Health,
            example = json!({"status": "unavailable", "message": "the database does not answer",
                "version": env!("CARGO_PKG_VERSION"), "uptime_seconds": 3600})),
    ))]
pub async fn healthz(mux: web::Data<Mux>) -> HttpResponse {
    match mux.store_answers().await {
        Ok(()) => HttpResponse::Ok().json(health(&mux, HealthStatus::Ok, None)),
        Err(error) => {
            tracing::error!(%error, "health check: database does not answer");
            unavailable(&mux, "the database does not answer")
        }
    }
}

/// Readiness: the database answers, and no stop was asked for.
#[utoipa::path(get, path = "/readyz", tag = "probes", operation_id = "check_readiness",
    responses(
        (status = 200, description = "Ready for new clients", body = Health),
        (status = 503, description = "Draining or stopping, or the database does not answer", body = Health,
            example = json!({"status": "unavailable", "message": "mcp-mux is draining before it stops: it serves requests, but takes no new clients",
                "version": env!("CARGO_PKG_VERSION"), "uptime_seconds": 3600})),
    ))]
pub async fn readyz(mux: web::Data<Mux>) -> HttpResponse {
    if mux.is_stopping() {
        return unavailable(&mux, "mcp-mux is shutting down");
    }
    if mux.is_draining() {
        return unavailable(
            &mux,
            "mcp-mux is draining before it stops: it serves requests, but takes no new clients",
        );
    }
    match mux.store_answers().await {
        Ok(()) => HttpResponse::Ok().json(health(&mux, HealthStatus::Ready, None)),
        Err(error) => {
            tracing::warn!(%error, "readiness check: database does not answer");
            unavailable(&mux, "the database does not answer")
        }
    }
}

fn unavailable(mux: &Mux, message: &'static str) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(health(mux, HealthStatus::Unavailable, Some(message)))
}

/// A probe's answer with the gateway's version and whole seconds of uptime.
fn health(mux: &Mux, status: HealthStatus, message: Option<&'static str>) -> Health {
    Health {
        status,
        message,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: mux.uptime().as_secs(),
    }
}
