//! `GET /metrics`: the gateway's metrics for Prometheus, behind the admin
//! token when one is set.

use actix_web::{HttpResponse, web};

use super::error::ApiError;
use crate::mux::Mux;

/// The gateway's metrics, in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "get_metrics",
    responses((status = 200, description = "The metrics",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
pub async fn metrics(mux: web::Data<Mux>) -> Result<HttpResponse, ApiError> {
    let text = mux.metrics_text().await?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text))
}
