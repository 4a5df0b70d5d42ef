//! `GET /ui` (the sessions, with their backends' health),
//! `GET /ui/session/<id>` (one session: its backends, rules, tools,
//! prompts, resources and recent audit, with a form to try a tool) and
//! `GET|POST /ui/session/<id>/delete` (asks, then deletes).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::catalogue::{items_sections, rules_section, tool_names};
use super::form::Form;
use super::html::{
    audit_table, circuit_badge, esc, form_token_field, health_cells, labels_shown, page, see_other,
    time,
};
use super::refusal::{PageError, page_refusing};
use super::try_tool::try_form;
use crate::mux::Mux;
use crate::routes::access::Access;
use crate::routes::error::ApiError;
use crate::routes::session_id::{SessionPath, mcp_endpoint, short_id};
use crate::routes::sessions::{authorization_shown, parse_list_query};
use crate::routes::tools::plain_calls_mcp_session;
use crate::store::SessionSummary;

/// Sessions on one page of the list.
const PAGE: u64 = 100;
/// Audit records on a session's page.
const AUDIT_SHOWN: u64 = 50;

/// The field a delete form confirms with, and its value.
const CONFIRM: (&str, &str) = ("confirm", "yes");

/// A session's delete link: to the page that asks first.
fn delete_link(id: Uuid) -> String {
    format!("<a class=\"danger\" href=\"/ui/session/{id}/delete\">Delete</a>")
}

/// The console's first page: the stored sessions, newest first, with each
/// backend's health; filtered as `GET /sessions` filters (the same query,
/// read by the same function).
#[utoipa::path(get, path = "/ui", tag = "console", operation_id = "show_console_sessions",
    params(
        ("after" = Option<String>, Query, description = "Where the page before ended"),
        ("name" = Option<String>, Query, description = "Only sessions whose name contains this (ASCII case ignored)"),
        ("label" = Option<String>, Query, description = "Only sessions with this label, as `key=value`; may repeat"),
        ("server" = Option<String>, Query, description = "Only sessions over this server"),
        ("owner" = Option<String>, Query, description = "Only sessions of the signed-in user with this subject"),
        ("deleted" = Option<String>, Query, description = "A session just deleted, which the page says is"),
    ),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 400, description = "A filter, or `after`, is wrong: the page names it", content_type = "text/html", body = String)))]
pub async fn list(request: HttpRequest, mux: web::Data<Mux>) -> Result<HttpResponse, PageError> {
    let shown = ListQuery::read(request.query_string());
    let mut body = String::new();
    if let Some(deleted) = shown.deleted {
        body.push_str(&format!(
            "<p class=\"notice\">Session <code>{deleted}</code> is deleted.</p>\n"
        ));
    }
    body.push_str("<p><a href=\"/ui/create-session\">Create a session</a></p>\n");
    let (_, after, filter) = match parse_list_query(&shown.list_query()) {
        Ok(parsed) => parsed,
        Err(error) => {
            body.push_str(&format!(
                "<p class=\"error\">{}</p>\n{}",
                esc(&error.to_string()),
                filter_form(&mux, &shown)
            ));
            return Ok(page_refusing(&error, "Sessions", Some(&request), &body));
        }
    };
    body.push_str(&filter_form(&mux, &shown));
    let sessions = mux.list_sessions(PAGE, after, &filter).await?;
    body.push_str(
        "<table><tr><th>Session</th><th>Labels</th><th>Backends (circuit, calls in progress)</th>\
         <th>Created</th><th>Expires</th><th>Access</th><th></th></tr>\n",
    );
    for session in &sessions {
        body.push_str(&session_row(&mux, session));
    }
    body.push_str("</table>\n");
    if sessions.is_empty() {
        let none = if shown.filters() {
            "No session passes the filter."
        } else {
            "No sessions."
        };
        body.push_str(&format!("<p class=\"muted\">{none}</p>"));
    }
    if sessions.len() as u64 == PAGE
        && let Some(last) = sessions.last()
    {
        body.push_str(&format!(
            "<p><a href=\"/ui?{}\">Next page</a></p>",
            esc(&shown.next_page(&last.cursor().to_string()))
        ));
    }
    Ok(page(StatusCode::OK, "Sessions", Some(&request), &body))
}

/// The list's query: the filters and place `GET /sessions` takes, as the
/// filter form sends them, and the session just deleted.
#[derive(Default)]
struct ListQuery {
    /// `name`, `label` (each), `server`, `owner` and `after`, in order,
    /// but for the empty ones a form sends.
    list: Vec<(String, String)>,
    deleted: Option<Uuid>,
}

/// The filters of the form; `label` is the one that may repeat.
const FILTERS: [&str; 4] = ["name", "label", "server", "owner"];

impl ListQuery {
    fn read(query: &str) -> Self {
        let mut read = ListQuery::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if key == "deleted" {
                read.deleted = Uuid::try_parse(&value).ok();
            } else if !value.is_empty() {
                // An empty `label` is no filter, as an empty `name` is none.
                read.list.push((key.into_owned(), value.into_owned()));
            }
        }
        read
    }

    /// The query `GET /sessions` would take.
    fn list_query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.list)
            .finish()
    }

    /// The query of the page after `cursor`: the same filters.
    fn next_page(&self, cursor: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.list.iter().filter(|(key, _)| key != "after"))
            .append_pair("after", cursor)
            .finish()
    }

    /// The first value of filter `key`, as typed.
    fn get(&self, key: &str) -> &str {
        self.list
            .iter()
            .find(|(name, _)| name == key)
            .map_or("", |(_, value)| value.as_str())
    }

    fn filters(&self) -> bool {
        self.list
            .iter()
            .any(|(key, _)| FILTERS.contains(&key.as_str()))
    }
}

/// The form that filters the list: a GET, so it needs no form token.
fn filter_form(mux: &Mux, shown: &ListQuery) -> String {
    let server = shown.get("server");
    let mut servers = String::from("<option value=\"\">any</option>");
    for registered in mux.registry().servers() {
        let selected = if registered.name == server {
            " selected"
        } else {
            ""
        };
        servers.push_str(&format!(
            "<option value=\"{name}\"{selected}>{name}</option>",
            name = esc(&registered.name)
        ));
    }
    format!(
        "<form class=\"filter\" method=\"get\" action=\"/ui\">\
         <label>Name contains <input type=\"text\" name=\"name\" value=\"{name}\"></label> \
         <label>Label <input type=\"text\" name=\"label\" placeholder=\"key=value\" value=\"{label}\"></label> \
         <label>Backend <select name=\"server\">{servers}</select></label> \
         <label>Owner <input type=\"text\" name=\"owner\" placeholder=\"subject\" value=\"{owner}\"></label> \
         <button>Filter</button>{clear}</form>\n",
        name = esc(shown.get("name")),
        label = esc(shown.get("label")),
        owner = esc(shown.get("owner")),
        clear = if shown.filters() {
            " <a href=\"/ui\">Show all</a>"
        } else {
            ""
        },
    )
}

/// One session of the list.
fn session_row(mux: &Mux, session: &SessionSummary) -> String {
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
    let name = session
        .name
        .as_deref()
        .map(|name| format!("<strong>{}</strong><br>", esc(name)))
        .unwrap_or_default();
    format!(
        "<tr><td>{name}<a href=\"/ui/session/{id}\"><code>{id}</code></a></td><td>{labels}</td>\
         <td>{backends}</td><td>{created}</td><td>{expires}</td><td>{token}</td><td>{delete}</td></tr>\n",
        id = session.id,
        labels = labels_shown(&session.labels),
        backends = backends.join("<br>"),
        created = time(&session.created_at),
        expires = session.expires_at.as_ref().map(time).unwrap_or_default(),
        token = access_shown(session.require_token, session.owner.as_ref()),
        delete = delete_link(session.id),
    )
}

/// A session's page: its backends, expiry, rules, MCP sessions, tools,
/// prompts, resources and recent calls, and a form to try a tool.
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
    let session = path.session(&mux).await?;
    // The tools as the session's plain HTTP calls list them, on the MCP
    // session that "try it" calls on; listed first, so that the backends'
    // states below are those of this listing.
    let mcp_session = plain_calls_mcp_session(&mux, &session).await?;
    let items = items_sections(&mcp_session).await;
    let tools: Vec<String> = tool_names(&mcp_session).await;
    let mut body = format!(
        "<table>\
         <tr><th>Session</th><td><code>{id}</code></td></tr>\
         <tr><th>Name</th><td>{name}</td></tr>\
         <tr><th>Labels</th><td>{labels}</td></tr>\
         <tr><th>MCP endpoint</th><td><code>{endpoint}</code></td></tr>\
         <tr><th>Created</th><td>{created}</td></tr>\
         <tr><th>Expires</th><td>{expires}</td></tr>\
         <tr><th>Access</th><td>{token}</td></tr>\
         <tr><th>Rate limit</th><td>{rate}</td></tr>\
         <tr><th>Tool mode</th><td>{tool_mode}</td></tr>\
         <tr><th>Tool names</th><td>prefixed {prefix}</td></tr>\
         <tr><th>MCP sessions open here</th><td>{mcp_sessions}</td></tr>\
         </table>{delete}\n\
         <h2>Backends</h2>\
         <table><tr><th>Backend</th><th>Auth</th><th>State</th><th>Circuit</th><th>Calls in progress (all sessions)</th></tr>\n",
        id = session.id,
        name = session
            .name
            .as_deref()
            .map(esc)
            .map(|name| name.to_string())
            .unwrap_or_default(),
        labels = labels_shown(&session.labels),
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
        tool_mode = session.curation.rules.tool_mode.as_str(),
        prefix = esc(session.prefix.as_str()),
        mcp_sessions = session.mcp_session_count(),
        delete = delete_link(session.id),
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
    body.push_str("</table>\n");
    body.push_str(&rules_section(&session));
    body.push_str("<h2>Try a tool</h2>\n");
    if tools.is_empty() {
        body.push_str("<p class=\"muted\">No tools to try.</p>\n");
    } else {
        body.push_str(&try_form(&request, session.id, &tools, "", "{}"));
    }
    body.push_str(&items);
    body.push_str("<h2>Recent tool calls</h2>\n");
    let records = mux.audit_records(&session, AUDIT_SHOWN, None).await?;
    if records.is_empty() {
        body.push_str("<p class=\"muted\">No tool calls recorded yet.</p>");
    } else {
        body.push_str(&audit_table(&records));
    }
    Ok(page(
        StatusCode::OK,
        &format!("Session {}", short_id(session.id)),
        Some(&request),
        &body,
    ))
}

/// The page that asks before a session is deleted.
#[utoipa::path(get, path = "/ui/session/{id}/delete", tag = "console", operation_id = "confirm_console_delete",
    params(("id" = String, Path, description = "The session's id")),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 404, description = "No such session", content_type = "text/html", body = String)))]
pub async fn confirm_delete(
    request: HttpRequest,
    path: web::Path<String>,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, PageError> {
    let path = SessionPath::parse(&path)?;
    let session = path.session(&mux).await?;
    Ok(page(
        StatusCode::OK,
        &format!("Delete session {}", short_id(session.id)),
        Some(&request),
        &confirm_form(&request, session.id),
    ))
}

/// What the delete page asks, with its form.
fn confirm_form(request: &HttpRequest, id: Uuid) -> String {
    let (field, value) = CONFIRM;
    format!(
        "<p>Delete session <code>{id}</code>? Its MCP sessions end, its credentials are \
         erased, and its URL stops working.</p>\
         <form class=\"inline\" method=\"post\" action=\"/ui/session/{id}/delete\">{token}\
         <input type=\"hidden\" name=\"{field}\" value=\"{value}\">\
         <button class=\"danger\">Delete the session</button></form> \
         <a href=\"/ui/session/{id}\">Keep it</a>\n",
        token = form_token_field(request),
    )
}

/// Deletes a session once its delete page confirmed it, then shows the
/// sessions, saying so.
#[utoipa::path(post, path = "/ui/session/{id}/delete", tag = "console", operation_id = "delete_session_from_console",
    params(("id" = String, Path, description = "The session's id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`confirm=yes`, as the delete page sends it"),
    responses((status = 303, description = "Deleted: to `/ui?deleted=<id>`", headers(("Location" = String))),
        (status = 400, description = "Not confirmed: the delete page again", content_type = "text/html", body = String),
        (status = 404, description = "No such session", content_type = "text/html", body = String)))]
pub async fn delete(
    request: HttpRequest,
    path: web::Path<String>,
    form: Form,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, PageError> {
    let path = SessionPath::parse(&path)?;
    path.session(&mux).await?;
    let (field, value) = CONFIRM;
    if form.get(field) != Some(value) {
        let refused = ApiError::bad_request(
            field,
            format!("must be \"{value}\" to delete the session: confirm on this page"),
        );
        let body = format!(
            "<p class=\"error\">{}</p>\n{}",
            esc(&refused.to_string()),
            confirm_form(&request, path.id)
        );
        return Ok(page_refusing(
            &refused,
            &format!("Delete session {}", short_id(path.id)),
            Some(&request),
            &body,
        ));
    }
    if !mux.delete_session(path.id).await? {
        return Err(path.not_found().into());
    }
    tracing::info!(session = %short_id(path.id), "session deleted from the console");
    Ok(see_other(&format!("/ui?deleted={}", path.id)))
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
