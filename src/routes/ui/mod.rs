//! The operators' console at `/ui`: server-rendered HTML over what the
//! management routes serve (sessions, their backends' health, the audit
//! trail, the registry), and forms to create and delete sessions. No
//! script, no secret: never a credential, a backend URL, a token digest or
//! the admin token; a new session's token is shown once, as by the API.
//!
//! Access is decided by the guard (`RouteKind::Console`); see `access.rs`.

mod create;
mod form;
mod html;
mod login;
pub mod logins;
mod registry;
mod sessions;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};

use super::error::ApiError;
use super::{RouteKind, mount};
use crate::mux::{CircuitState, MuxError};
use html::{esc, page, set_page_headers};

/// Mounts the console's pages.
pub fn configure(config: &mut web::ServiceConfig) {
    mount(config, "/ui", RouteKind::Console, |resource| {
        resource
            .route(web::get().to(sessions::list))
            .default_service(web::to(|| method_not_allowed("GET")))
    });
    mount(config, "/ui/session/{id}", RouteKind::Console, |resource| {
        resource
            .route(web::get().to(sessions::show))
            .default_service(web::to(|| method_not_allowed("GET")))
    });
    mount(
        config,
        "/ui/session/{id}/delete",
        RouteKind::Console,
        |resource| {
            resource
                .route(web::post().to(sessions::delete))
                .default_service(web::to(|| method_not_allowed("POST")))
        },
    );
    mount(
        config,
        "/ui/create-session",
        RouteKind::Console,
        |resource| {
            resource
                .route(web::get().to(create::form))
                .route(web::post().to(create::submit))
                .default_service(web::to(|| method_not_allowed("GET, POST")))
        },
    );
    mount(config, "/ui/registry", RouteKind::Console, |resource| {
        resource
            .route(web::get().to(registry::list))
            .default_service(web::to(|| method_not_allowed("GET")))
    });
    mount(config, "/ui/login", RouteKind::ConsoleLogin, |resource| {
        resource
            .route(web::get().to(login::form))
            .route(web::post().to(login::submit))
            .default_service(web::to(|| method_not_allowed("GET, POST")))
    });
    mount(config, "/ui/logout", RouteKind::ConsoleLogin, |resource| {
        resource
            .route(web::post().to(login::log_out))
            .default_service(web::to(|| method_not_allowed("POST")))
    });
    // Last: any other path under /ui is a console 404, in HTML, once the
    // caller may see the console at all.
    mount(config, "/ui/{rest:.*}", RouteKind::Console, |resource| {
        resource.default_service(web::to(|| async {
            refusal_page(&ApiError::NotFound {
                message: "no such console page".into(),
            })
        }))
    });
}

/// A refusal as a console page, with the status and headers the JSON
/// answer would have; a 401 offers the login form.
pub fn refusal_page(error: &ApiError) -> HttpResponse {
    // The JSON answer carries the status, the headers (Allow, Retry-After,
    // WWW-Authenticate) and the refusal's reason for the metrics; and logs
    // an internal error with its causes.
    let answer = error.error_response();
    let status = answer.status();
    let mut body = format!("<p class=\"error\">{}</p>", esc(&error.to_string()));
    if let ApiError::Unauthorized { .. } = error {
        body.push_str(login::FORM);
    } else {
        body.push_str(r#"<p><a href="/ui">Back to the sessions</a></p>"#);
    }
    let title = match status {
        StatusCode::UNAUTHORIZED => "Log in",
        status => status.canonical_reason().unwrap_or("Refused"),
    };
    let html = page(status, title, None, &body);
    let (_, html_body) = html.into_parts();
    let mut response = answer.set_body(BoxBody::new(html_body));
    set_page_headers(&mut response);
    response
}

async fn method_not_allowed(allow: &'static str) -> HttpResponse {
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

/// A backend's circuit and calls in progress, as table cells.
fn health_cells(health: Option<&(CircuitState, usize)>) -> String {
    let Some((circuit, calls)) = health else {
        return "<td class=\"muted\">unknown</td><td></td>".into();
    };
    let (CircuitState::Closed { failures }
    | CircuitState::HalfOpen { failures }
    | CircuitState::Open { failures, .. }) = circuit;
    let mut state = format!(
        "<span class=\"state {name}\">{name}</span>",
        name = circuit.name()
    );
    if *failures > 0 {
        state.push_str(&format!(
            " <span class=\"muted\">{failures} failed in a row</span>"
        ));
    }
    if let Some(retry_in_ms) = circuit.retry_in_ms() {
        state.push_str(&format!(
            " <span class=\"muted\">retry in {retry_in_ms} ms</span>"
        ));
    }
    format!("<td>{state}</td><td>{calls}</td>")
}
