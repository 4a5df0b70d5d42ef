//! Refusals on the console: HTML pages with the status and headers that
//! the JSON routes give the same error.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use super::html::{esc, login_form, page, set_page_headers};
use crate::mux::MuxError;
use crate::routes::error::ApiError;

/// A refusal as a console page, with the status and headers the JSON
/// answer would have; a 401 offers the login form.
pub fn refusal_page(error: &ApiError) -> HttpResponse {
    let mut body = format!("<p class=\"error\">{}</p>", esc(&error.to_string()));
    if let ApiError::Unauthorized { .. } = error {
        body.push_str(&login_form());
    } else {
        body.push_str(r#"<p><a href="/ui">Back to the sessions</a></p>"#);
    }
    let title = match error.status_code() {
        StatusCode::UNAUTHORIZED => "Log in",
        status => status.canonical_reason().unwrap_or("Refused"),
    };
    page_refusing(error, title, None, &body)
}

/// A page of `body` (which shows the refusal) with the status and headers
/// that the JSON answer to `error` would have: a form shown again with
/// what is wrong with it, say. `viewer` as for [`page`].
pub fn page_refusing(
    error: &ApiError,
    title: &str,
    viewer: Option<&HttpRequest>,
    body: &str,
) -> HttpResponse {
    // The JSON answer carries the status, the headers (Allow, Retry-After,
    // WWW-Authenticate) and the refusal's reason for the metrics; and logs
    // an internal error with its causes.
    let answer = error.error_response();
    let html = page(answer.status(), title, viewer, body);
    let (_, html_body) = html.into_parts();
    let mut response = answer.set_body(BoxBody::new(html_body));
    set_page_headers(&mut response);
    response
}

pub async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    refusal_page(&ApiError::MethodNotAllowed { allow })
}

/// An error of a console handler, answered as a page.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PageError(#[from] ApiError);

impl From<MuxError> for PageError {
    fn from(error: MuxError) -> Self {
        PageError(error.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        refusal_page(&self.0)
    }
}

/// Any other path under `/ui`.
pub async fn not_found() -> HttpResponse {
    refusal_page(&ApiError::NotFound {
        message: "no such console page".into(),
    })
}
