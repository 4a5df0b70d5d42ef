//! `GET /healthz`, the liveness probe: the process is up and its database
//! answers. `GET /readyz`, the readiness probe: besides, the gateway is not
//! stopping, so a load balancer sends it new clients. The registry is
//! loaded before the gateway listens. Both carry the version and uptime.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use crate::mux::Mux;

pub async fn healthz(mux: web::Data<Mux>) -> HttpResponse {
    match mux.store_answers().await {
        Ok(()) => HttpResponse::Ok().json(with_identity(&mux, json!({ "status": "ok" }))),
        Err(error) => {
            tracing::error!(%error, "health check: database does not answer");
            unavailable(&mux, "the database does not answer")
        }
    }
}

pub async fn readyz(mux: web::Data<Mux>) -> HttpResponse {
    if mux.is_stopping() {
        return unavailable(&mux, "mcp-mux is shutting down");
    }
    match mux.store_answers().await {
        Ok(()) => HttpResponse::Ok().json(with_identity(&mux, json!({ "status": "ready" }))),
        Err(error) => {
            tracing::warn!(%error, "readiness check: database does not answer");
            unavailable(&mux, "the database does not answer")
        }
    }
}

fn unavailable(mux: &Mux, message: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(with_identity(
        mux,
        json!({ "status": "unavailable", "message": message }),
    ))
}

/// `body` with the gateway's version and whole seconds of uptime.
fn with_identity(mux: &Mux, mut body: Value) -> Value {
    body["version"] = json!(env!("CARGO_PKG_VERSION"));
    body["uptime_seconds"] = json!(mux.uptime().as_secs());
    body
}
