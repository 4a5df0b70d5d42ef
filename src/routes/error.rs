//! Errors of the management API, as JSON bodies that name the field and the reason.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::mux::MuxError;
use crate::store::StoreError;

/// An error answered by a management route.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {reason}")]
    BadRequest { field: String, reason: String },
    #[error("{message}")]
    NotFound { message: String },
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    #[error("internal error; see the gateway log")]
    Internal(#[source] StoreError),
}

impl ApiError {
    pub fn bad_request(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<MuxError> for ApiError {
    fn from(error: MuxError) -> Self {
        match error {
            MuxError::Store(store) => match store {
                StoreError::Connect(_) | StoreError::Database(_) => ApiError::Unavailable(store),
                StoreError::Migrate(_)
                | StoreError::WrongKey { .. }
                | StoreError::Corrupt { .. } => ApiError::Internal(store),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::BadRequest { field, reason } => {
                json!({ "error": "bad_request", "field": field, "message": format!("{field}: {reason}") })
            }
            ApiError::NotFound { message } => json!({ "error": "not_found", "message": message }),
            ApiError::PayloadTooLarge { .. } => {
                json!({ "error": "payload_too_large", "message": self.to_string() })
            }
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => {
                tracing::error!(error = %cause, cause = ?std::error::Error::source(cause), "request failed");
                json!({ "error": if matches!(self, ApiError::Unavailable(_)) { "unavailable" } else { "internal" }, "message": self.to_string() })
            }
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}
