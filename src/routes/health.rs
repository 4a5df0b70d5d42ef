//! `GET /healthz`: the process is up and its database answers.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::mux::Mux;

pub async fn healthz(mux: web::Data<Mux>) -> HttpResponse {
    match mux.store_answers().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok" })),
        Err(error) => {
            tracing::error!(%error, "health check: database does not answer");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "message": "the database does not answer" }))
        }
    }
}
