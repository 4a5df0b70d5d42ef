//! `GET|POST /ui/login` and `POST /ui/logout`: a browser cannot send the
//! admin token as a header, so it types it once and gets a console login
//! in a cookie (see `logins.rs`).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::form::Form;
use super::html::{login_form, page, see_other};
use super::logins::{clear_cookie, set_cookie};
use super::refusal::refusal_page;
use crate::routes::access::Access;

/// The login form; to `/ui` when the gateway has no admin token.
#[utoipa::path(get, path = "/ui/login", tag = "console", operation_id = "show_login_form",
    responses((status = 200, description = "The page", content_type = "text/html", body = String), (status = 303, description = "No login needed: to `/ui`", headers(("Location" = String)))))]
pub async fn form(access: web::Data<Access>) -> HttpResponse {
    if !access.needs_login() {
        return see_other("/ui");
    }
    page(
        StatusCode::OK,
        "Log in",
        None,
        &format!(
            "<p>The console needs the gateway's admin token (<code>MCP_MUX_ADMIN_TOKEN</code>).</p>{}",
            login_form()
        ),
    )
}

/// Logs in with the admin token: a console cookie, then `/ui`.
#[utoipa::path(post, path = "/ui/login", tag = "console", operation_id = "log_in_to_console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Logged in: to `/ui`", headers(("Location" = String), ("Set-Cookie" = String)))))]
pub async fn submit(request: HttpRequest, form: Form, access: web::Data<Access>) -> HttpResponse {
    match access.log_in_to_console(&request, form.get("token").unwrap_or_default()) {
        Ok(Some(token)) => {
            let mut response = see_other("/ui");
            if let Ok(value) = header::HeaderValue::from_str(&set_cookie(&token, access.is_https()))
            {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(None) => see_other("/ui"),
        Err(error) => refusal_page(&error),
    }
}

/// Ends the console login, then shows the login form.
#[utoipa::path(post, path = "/ui/logout", tag = "console", operation_id = "log_out_of_console",
    responses((status = 303, description = "To `/ui/login`", headers(("Location" = String), ("Set-Cookie" = String)))))]
pub async fn log_out(request: HttpRequest, access: web::Data<Access>) -> HttpResponse {
    access.log_out_of_console(&request);
    let mut response = see_other("/ui/login");
    if let Ok(value) = header::HeaderValue::from_str(&clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
