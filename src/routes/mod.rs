//! actix-web handlers: parse the request, check it, call the mux, and map
//! every outcome to an HTTP status and a JSON (or JSON-RPC) body.
//!
//! Access is decided by the route that serves a request, never by its path
//! as spelled: each resource is wrapped in [`guard`] with its [`RouteKind`],
//! so every spelling the router matches (percent-encoded letters, say) meets
//! the same checks as the plain one.

pub mod access;
mod authorization;
mod body;
mod client_configs;
pub mod error;
mod headers;
mod health;
mod mcp;
mod metrics;
mod openapi;
pub mod rate_limit;
mod registry;
mod route;
mod secrets;
mod session_access;
mod session_id;
mod sessions;
pub mod sign_in;
mod throttle;
mod tools;
mod traced;
mod ui;

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Resource, ResponseError, web};

pub use body::BodyTimeout;
pub use error::ApiError;
pub use metrics::metrics;
pub use route::{Route, RouteKind};

use access::Access;
use error::RefusalReason;

use crate::logging::ACCESS_LINE_TARGET;

/// Its handlers, one per method of [`Route::allow`].
fn handlers(route: Route, resource: Resource) -> Resource {
    match route {
        Route::Mcp => resource
            .route(web::post().to(mcp::post))
            .route(web::get().to(mcp::get))
            .route(web::delete().to(mcp::delete)),
        Route::Healthz => resource.route(web::get().to(health::healthz)),
        Route::Readyz => resource.route(web::get().to(health::readyz)),
        Route::OpenApi => resource.route(web::get().to(openapi::document)),
        Route::Docs => resource.route(web::get().to(openapi::docs_index)),
        // The file name may hold slashes (Swagger UI's own paths).
        Route::DocsFile => resource.route(web::get().to(openapi::docs_file)),
        Route::Metrics => resource.route(web::get().to(metrics::metrics)),
        Route::Registry => resource.route(web::get().to(registry::list_servers)),
        Route::RegistryReload => resource.route(web::post().to(registry::reload)),
        Route::CreateSession => resource.route(web::post().to(sessions::create_session)),
        Route::Sessions => resource.route(web::get().to(sessions::list_sessions)),
        Route::Session => resource
            .route(web::get().to(sessions::get_session))
            .route(web::delete().to(sessions::delete_session)),
        Route::Audit => resource.route(web::get().to(sessions::get_audit)),
        Route::Tools => resource.route(web::get().to(tools::list)),
        Route::Tool => resource.route(web::post().to(tools::call)),
        Route::Authorize => resource.route(web::get().to(authorization::authorize)),
        Route::OAuthCallback => resource.route(web::get().to(authorization::callback)),
        Route::ClientMetadata => resource.route(web::get().to(authorization::client_metadata)),
        Route::ResourceMetadata => resource
            .route(web::get().to(sign_in::gateway_metadata))
            .route(
                web::method(actix_web::http::Method::OPTIONS)
                    .to(sign_in::gateway_metadata_preflight),
            ),
        Route::SessionResourceMetadata => resource
            .route(web::get().to(sign_in::session_metadata))
            .route(
                web::method(actix_web::http::Method::OPTIONS)
                    .to(sign_in::session_metadata_preflight),
            ),
        Route::Console => resource.route(web::get().to(ui::sessions::list)),
        Route::ConsoleSession => resource.route(web::get().to(ui::sessions::show)),
        Route::ConsoleDeleteSession => resource
            .route(web::get().to(ui::sessions::confirm_delete))
            .route(web::post().to(ui::sessions::delete)),
        Route::ConsoleCallTool => resource.route(web::post().to(ui::try_tool::call)),
        Route::ConsoleCreateSession => resource
            .route(web::get().to(ui::create::form))
            .route(web::post().to(ui::create::submit)),
        Route::ConsoleRegistry => resource.route(web::get().to(ui::registry::list)),
        Route::ConsoleLogin => resource
            .route(web::get().to(ui::login::form))
            .route(web::post().to(ui::login::submit)),
        Route::ConsoleLogout => resource.route(web::post().to(ui::login::log_out)),
        Route::ConsoleOther => resource,
    }
}

/// Mounts every route of [`Route::ALL`]; any path none serves is a 404.
pub fn configure(config: &mut web::ServiceConfig) {
    for route in Route::ALL {
        mount(config, route);
    }
    config.default_service(web::to(not_found));
}

/// Mounts one route's handlers behind the guard of its kind; any other
/// method gets a 405 naming the ones it answers.
fn mount(config: &mut web::ServiceConfig, route: Route) {
    let allow = route.allow();
    let resource = handlers(route, web::resource(route.router_pattern()));
    let resource = match route.kind() {
        _ if route == Route::ConsoleOther => {
            resource.default_service(web::to(ui::refusal::not_found))
        }
        RouteKind::Mcp => resource.default_service(web::to(move || mcp::method_not_allowed(allow))),
        RouteKind::Console | RouteKind::ConsoleLogin | RouteKind::Authorization => {
            resource.default_service(web::to(move || ui::refusal::method_not_allowed(allow)))
        }
        RouteKind::Public
        | RouteKind::Metadata
        | RouteKind::Management
        | RouteKind::SessionTools => {
            resource.default_service(web::to(move || method_not_allowed(allow)))
        }
    };
    config.service(resource.wrap(from_fn(move |request, next| guard(route, request, next))));
}

/// The checks every matched route passes before its handler runs, all
/// before its body is read: not while the gateway stops (503 with
/// `Retry-After`: requests already running finish, new ones come back
/// after the restart; the probes still answer), Host and Origin, the admin
/// token on management routes, the admin token or a console login on the
/// console, and a session's token on its routes. Then a console form is
/// read and its form token checked. Every answer gets the safe headers.
async fn guard(
    route: Route,
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    request.extensions_mut().insert(route);
    let answered = match admit(route, &request).await {
        Ok(()) => match ui::form::read_console_form(route, request).await {
            Ok(request) => next.call(request).await?,
            Err(refused) => refused,
        },
        Err(error) => {
            let response = match route.kind() {
                RouteKind::Mcp => mcp::refusal_response(error),
                RouteKind::Console | RouteKind::ConsoleLogin | RouteKind::Authorization => {
                    ui::refusal::refusal_page(&error)
                }
                RouteKind::Public
                | RouteKind::Metadata
                | RouteKind::Management
                | RouteKind::SessionTools => error.error_response(),
            };
            refuse_before_body(request, response)
        }
    };
    let status = answered.status();
    if (status.is_client_error() || status.is_server_error())
        && let Some(mux) = answered.request().app_data::<web::Data<crate::mux::Mux>>()
    {
        let reason = answered
            .response()
            .extensions()
            .get::<RefusalReason>()
            .map_or("other", |reason| reason.0);
        mux.metrics()
            .record_refusal(route.kind().name(), status.as_u16(), reason);
    }
    Ok(answered)
}

/// Whether the request may reach its route's handler; see [`guard`].
async fn admit(route: Route, request: &ServiceRequest) -> Result<(), ApiError> {
    let mux = request.app_data::<web::Data<crate::mux::Mux>>();
    // The probes answer while the gateway stops: /readyz says it is
    // stopping, /healthz that the process still lives.
    if !matches!(route.kind(), RouteKind::Public | RouteKind::Metadata)
        && mux.is_some_and(|mux| mux.is_stopping())
    {
        return Err(ApiError::ShuttingDown);
    }
    let Some(access) = request.app_data::<web::Data<Access>>() else {
        return Ok(());
    };
    if route.kind() == RouteKind::Metadata {
        return access.check_host(request.request());
    }
    access.check_host_and_origin(request.request())?;
    sign_in::refuse_query_token(request.request())?;
    match route.kind() {
        RouteKind::Management => {
            let caller = sign_in::check_management(access, request.request(), route).await?;
            request.extensions_mut().insert(caller);
            Ok(())
        }
        RouteKind::Console => {
            let (caller, form_check) = access.check_console(request.request())?;
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(form_check);
            Ok(())
        }
        RouteKind::ConsoleLogin => {
            access.check_console_form(request.request())?;
            let form_check =
                access.login_form_check(request.request(), route == Route::ConsoleLogout);
            request.extensions_mut().insert(form_check);
            Ok(())
        }
        RouteKind::Mcp | RouteKind::SessionTools => match (mux, request.match_info().get("id")) {
            (Some(mux), Some(id)) => {
                session_access::check_session_access_first(request.request(), id, mux).await
            }
            _ => Ok(()),
        },
        RouteKind::Public | RouteKind::Metadata | RouteKind::Authorization => Ok(()),
    }
}

/// A refusal answered before the request's body was read: when one is on
/// its way, the connection closes after the answer rather than wait for a
/// body that may never end.
fn refuse_before_body(request: ServiceRequest, response: HttpResponse) -> ServiceResponse<BoxBody> {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    if has_body {
        let (request, payload) = request.into_parts();
        ServiceResponse::new(request, body::refuse_unread(response, payload))
    } else {
        request.into_response(response)
    }
}

/// Any path no route serves: 404, once Host and Origin pass.
async fn not_found(request: HttpRequest) -> HttpResponse {
    if let Some(access) = request.app_data::<web::Data<Access>>()
        && let Err(refused) = access.check_host_and_origin(&request)
    {
        return refused.error_response();
    }
    ApiError::NotFound {
        message: "no such route".into(),
    }
    .error_response()
}

async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    ApiError::MethodNotAllowed { allow }.error_response()
}

/// Whether each answered request gets an access line at info level (on by
/// default); off, only refused and failed ones do.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog(pub bool);

/// Gives every answer the safe headers (headers.rs), counts it by route,
/// method and status with its latency, and writes its access line: the
/// method, the route that served it, the session it named (its id cut to 8
/// characters), the signed-in subject, status, latency and trace id: never
/// the path as sent, headers or bodies (they carry credentials and whole
/// ids). Refused and failed requests are logged at info level always;
/// answered ones at info while the access log is on, else at debug.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let mut response = next.call(request).await?;
    let elapsed = started.elapsed();
    // Every answer, whichever route, refusal or fallback made it.
    headers::add_safe_headers(response.headers_mut());
    let status = response.status().as_u16();
    let served = response.request();
    let route = served.extensions().get::<Route>().copied();
    let pattern = route.map_or("-", Route::pattern);
    if let Some(mux) = served.app_data::<web::Data<crate::mux::Mux>>() {
        mux.metrics()
            .record_request(pattern, method_label(&method), status, elapsed);
    }
    let access_log = served
        .app_data::<web::Data<AccessLog>>()
        .is_none_or(|access_log| access_log.0);
    let level_on = if status >= 400 || access_log {
        tracing::enabled!(tracing::Level::INFO)
    } else {
        tracing::enabled!(tracing::Level::DEBUG)
    };
    if !level_on {
        return Ok(response);
    }
    let session = route
        .and_then(|_| served.match_info().get("id"))
        .map(short_segment);
    let elapsed_ms = milliseconds(elapsed);
    let subject = sign_in::signed_in_identity(served).map(|identity| identity.subject.clone());
    let extensions = served.extensions();
    let trace_id = extensions
        .get::<traced::TracedAs>()
        .map(|traced| traced.trace_id.as_str());
    // The route, the cut session id and the trace id are the gateway's own
    // words or already escaped: shown as they are, not escaped character by
    // character again. The subject, a user's, stays escaped.
    let session = session.as_deref().map(tracing::field::display);
    let trace_id = trace_id.map(tracing::field::display);
    if status >= 400 || access_log {
        tracing::info!(target: ACCESS_LINE_TARGET, %method, route = %pattern, session, subject, status, %elapsed_ms, trace_id, "request");
    } else {
        tracing::debug!(target: ACCESS_LINE_TARGET, %method, route = %pattern, session, subject, status, %elapsed_ms, trace_id, "request");
    }
    drop(extensions);
    Ok(response)
}

/// `elapsed` in milliseconds to two decimals, as `{:.2}` writes it, with
/// integers: a float's exact formatting costs more than the rest of the
/// field.
fn milliseconds(elapsed: std::time::Duration) -> String {
    let hundredths = (elapsed.as_micros() + 5) / 10;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// A request method as a metric label: one of a few words, whatever a
/// client sends.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The first 8 characters of a path segment, escaped: enough to correlate
/// log lines, too little to use a session id.
fn short_segment(segment: &str) -> String {
    // Session ids, the usual segment, need no escaping: cut them as bytes.
    let head = &segment.as_bytes()[..segment.len().min(8)];
    if head
        .iter()
        .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
    {
        let mut cut = String::with_capacity(head.len() + '…'.len_utf8());
        cut.push_str(&segment[..head.len()]);
        if segment.len() > head.len() {
            cut.push('…');
        }
        return cut;
    }
    let cut: String = segment.chars().take(8).collect();
    let cut = cut.escape_debug().to_string();
    if segment.chars().nth(8).is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::{milliseconds, short_segment};

    #[test]
    fn latency_is_written_in_milliseconds_to_two_decimals_as_a_float_would_be() {
        for nanos in [
            0,
            999,
            9_999,
            1_234_567,
            999_999,
            4_996_000,
            60_017_400,
            12_345_678_901,
        ] {
            let elapsed = std::time::Duration::from_nanos(nanos);
            assert_eq!(
                milliseconds(elapsed),
                format!("{:.2}", elapsed.as_secs_f64() * 1000.0),
                "{nanos} ns"
            );
        }
    }

    #[test]
    fn session_ids_are_cut_to_8_characters_in_the_log() {
        assert_eq!(
            short_segment("0b7c2f8e-8f1b-4c3e-9a55-2f4a4f8e7d61"),
            "0b7c2f8e…"
        );
        assert_eq!(short_segment("abc"), "abc");
        assert_eq!(short_segment("0b7c2f8e"), "0b7c2f8e");
        assert_eq!(short_segment("a\nb"), "a\\nb");
        assert_eq!(short_segment("0b7c2f8\n-more"), "0b7c2f8\\n…");
        assert_eq!(short_segment("é0b7c2f8e"), "é0b7c2f8…");
    }
}
