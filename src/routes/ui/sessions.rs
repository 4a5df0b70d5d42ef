//! `GET /ui` (the sessions, with their backends' health),
//! `GET /ui/session/<id>` (one session and its recent audit) and
//! `POST /ui/session/<id>/delete`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::html::{circuit_badge, esc, form_token_field, health_cells, page, see_other, time};
use super::refusal::PageError;
use crate::mux::Mux;
use crate::routes::access::Access;
use crate::routes::session_id::{SessionPath, mcp_endpoint, short_id};
use crate::routes::sessions::{authorization_shown, parse_list_query};

/// Sessions on one page of the list.
const PAGE: u64 = 100;
/// Audit records on a session's page.
const AUDIT_SHOWN: u64 = 50;

/// A session's delete button; the browser asks nothing more.
fn delete_button(request: &HttpRequest, id: Uuid) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/ui/session/{id}/delete\">{}\
         <button class=\"danger\">Delete</button></form>",
        form_token_field(request)
    )
}

/// The console's first page: the stored sessions with each backend's health.
#[utoipa::path(get, path = "/ui", tag = "console", operation_id = "show_console_sessions",
    params(("after" = Option<String>, Query, description = "Where the page before ended")),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 400, description = "`after` is not from a page before", content_type = "text/html", body = String)))]
pub async fn list(request: HttpRequest, mux: web::Data<Mux>) -> Result<HttpResponse, PageError> {
    let (_, after, filter) = parse_list_query(request.query_string())?;
    let sessions = mux.list_sessions(PAGE, after, &filter).await?;
    let mut body = String::from(
        "<p><a href=\"/ui/create-session\">Create a session</a></p>\
         <table><tr><th>Session</th><th>Backends (circuit, calls in progress)</th>\
         <th>Created</th><th>Expires</th><th>Access</th><th></th></tr>\n",
    );
    for session in &sessions {
        let backends: Vec<String> = session
            .servers
            .iter()
            .map(|server| {
                let state = mux
                    .backend_health(server)
                    .map(|(circuit, calls)| {
                        format!(
                            "{} <span class=\"muted\">{calls} in progress</span>",
                            circuit_badge(&circuit)
                        )
                    })
                    .unwrap_or_else(|| "<span class=\"muted\">not in the registry</span>".into());
                format!("<code>{}</code> {state}", esc(server))
            })
            .collect();
        body.push_str(&format!(
            "<tr><td><a href=\"/ui/session/{id}\"><code>{id}</code></a></td><td>{backends}</td>\
             <td>{created}</td><td>{expires}</td><td>{token}</td><td>{delete}</td></tr>\n",
            id = session.id,
            backends = backends.join("<br>"),
            created = time(&session.created_at),
            expires = session.expires_at.as_ref().map(time).unwrap_or_default(),
            token = access_shown(session.require_token, session.owner.as_ref()),
            delete = delete_button(&request, session.id),
        ));
    }
    body.push_str("</table>\n");
    if sessions.is_empty() {
        body.push_str("<p class=\"muted\">No sessions.</p>");
    }
    if sessions.len() as u64 == PAGE
        && let Some(last) = sessions.last()
    {
        let after: String =
            url::form_urlencoded::byte_serialize(last.cursor().to_string().as_bytes()).collect();
        body.push_str(&format!(
            "<p><a href=\"/ui?after={after}\">Next page</a></p>"
        ));
    }
    Ok(page(StatusCode::OK, "Sessions", Some(&request), &body))
}

/// A session's page: its backends, expiry, MCP sessions and recent calls.
#[utoipa::path(get, path = "/ui/session/{id}", tag = "console", operation_id = "show_console_session",
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 404, description = "No such session", content_type = "text/html", body = String)))]
pub async fn show(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
    access: web::Data<Access>,
) -> Result<HttpResponse, PageError> {
    let path = SessionPath::parse(&path)?;
    let session = mux
        .session(path.id)
        .await?
        .ok_or_else(|| path.not_found())?;
    let mut body = format!(
        "<table>\
         <tr><th>Session</th><td><code>{id}</code></td></tr>\
         <tr><th>MCP endpoint</th><td><code>{endpoint}</code></td></tr>\
         <tr><th>Created</th><td>{created}</td></tr>\
         <tr><th>Expires</th><td>{expires}</td></tr>\
         <tr><th>Access</th><td>{token}</td></tr>\
         <tr><th>Rate limit</th><td>{rate}</td></tr>\
         <tr><th>Tool names</th><td>prefixed {prefix}</td></tr>\
         <tr><th>MCP sessions open here</th><td>{mcp_sessions}</td></tr>\
         </table>{delete}\n\
         <h2>Backends</h2>\
         <table><tr><th>Backend</th><th>Auth</th><th>State</th><th>Circuit</th><th>Calls in progress (all sessions)</th></tr>\n",
        id = session.id,
        endpoint = mcp_endpoint(session.id),
        created = time(&session.created_at),
        expires = session
            .expires_at
            .as_ref()
            .map_or_else(|| "never".into(), time),
        token = access_shown(session.token_digest.is_some(), session.owner.as_ref()),
        rate = session
            .rate_limit
            .map_or_else(|| "none".into(), |n| format!("{n} requests a second")),
        prefix = esc(session.prefix.as_str()),
        mcp_sessions = session.mcp_session_count(),
        delete = delete_button(&request, session.id),
    );
    let states = mux.backend_states(&session).await?;
    for (server, status) in session.servers.iter().zip(states) {
        let authorization = match &status.authorization {
            Some(authorization) => {
                let shown = authorization_shown(
                    &request,
                    &access,
                    &mux,
                    &session,
                    &server.name,
                    authorization,
                )
                .await
                .map_err(PageError::from)?;
                match (shown.url, shown.expires_at) {
                    (Some(url), _) => format!(
                        "<br><a href=\"{}\">authorization link</a> (send it to the session's user)",
                        esc(&url)
                    ),
                    (None, Some(expires_at)) => {
                        format!("<br>connected; token expires {}", time(&expires_at))
                    }
                    (None, None) => "<br>connected".to_owned(),
                }
            }
            None => String::new(),
        };
        body.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td><span class=\"state\">{}</span> \
             <span class=\"muted\">{}</span>{authorization}</td>{}</tr>\n",
            esc(&server.name),
            server.auth.type_name(),
            status.state.as_str(),
            esc(&status.reason),
            health_cells(mux.backend_health(&server.name).as_ref()),
        ));
    }
    for missing in &session.missing_servers {
        body.push_str(&format!(
            "<tr><td><code>{}</code></td><td colspan=\"4\" class=\"muted\">no longer in the registry</td></tr>\n",
            esc(missing)
        ));
    }
    body.push_str("</table>\n<h2>Recent tool calls</h2>\n");
    let records = mux.audit_records(&session, AUDIT_SHOWN, None).await?;
    if records.is_empty() {
        body.push_str("<p class=\"muted\">No tool calls recorded yet.</p>");
    } else {
        body.push_str(
            "<table><tr><th>At</th><th>MCP session</th><th>User</th><th>Backend</th><th>Tool</th>\
             <th>Outcome</th><th>Error</th><th>ms</th></tr>\n",
        );
        for record in &records {
            body.push_str(&format!(
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>\n",
                time(&record.at),
                // Enough to tell MCP sessions apart, too little to use one.
                esc(record.mcp_session_id.get(..8).unwrap_or_default()),
                esc(record.subject.as_deref().unwrap_or("")),
                esc(record.backend.as_deref().unwrap_or("")),
                esc(&record.tool),
                esc(&record.outcome),
                esc(record.error_class.as_deref().unwrap_or("")),
                record.duration_ms,
            ));
        }
        body.push_str("</table>\n");
    }
    Ok(page(
        StatusCode::OK,
        &format!("Session {}", short_id(session.id)),
        Some(&request),
        &body,
    ))
}

/// Deletes a session, then shows the sessions.
#[utoipa::path(post, path = "/ui/session/{id}/delete", tag = "console", operation_id = "delete_session_from_console",
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 303, description = "Deleted: to `/ui`", headers(("Location" = String))),
        (status = 404, description = "No such session", content_type = "text/html", body = String)))]
pub async fn delete(
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, PageError> {
    let path = SessionPath::parse(&path)?;
    if !mux.delete_session(path.id).await? {
        return Err(path.not_found().into());
    }
    tracing::info!(session = %short_id(path.id), "session deleted from the console");
    Ok(see_other("/ui"))
}

/// Who may use a session, as its pages say: its session token, its
/// owner's sign-in (naming them), or anyone with its URL.
fn access_shown(requires_token: bool, owner: Option<&crate::store::Owner>) -> String {
    let owner = owner.map(|owner| {
        format!(
            "<code>{}</code> <span class=\"muted\">at {}</span>",
            esc(&owner.subject),
            esc(&owner.issuer)
        )
    });
    match (requires_token, owner) {
        (true, None) => "session token".into(),
        (true, Some(owner)) => format!("session token; owned by {owner}"),
        (false, Some(owner)) => format!("signed in as {owner}"),
        (false, None) => "open".into(),
    }
}
