//! `GET /healthz`: the process is up and its database answers.

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use super::origin::check_origin;
use crate::mux::Mux;

pub async fn healthz(request: HttpRequest, mux: web::Data<Mux>) -> HttpResponse {
    if let Err(refused) = check_origin(&request) {
        return refused.error_response();
    }
    match mux.store().ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok" })),
        Err(error) => {
            tracing::error!(%error, "health check: database does not answer");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "message": "the database does not answer" }))
        }
    }
}
