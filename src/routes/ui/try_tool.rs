//! `POST /ui/session/<id>/call`: the session page's "try it" form. It
//! calls one of the session's tools with JSON arguments the way a plain
//! HTTP call does (`routes::tools`: the session's rules, rate limit,
//! retries and audit), and shows the result and the call's audit record.
//! The console's own login stands in for the session's token.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use uuid::Uuid;

use super::catalogue::tool_names;
use super::form::Form;
use super::html::{audit_table, esc, form_token_field, page};
use super::refusal::{PageError, page_refusing};
use crate::mux::{McpSession, Mux};
use crate::routes::error::ApiError;
use crate::routes::rate_limit::charge_session_rate;
use crate::routes::session_id::{SessionPath, short_id};
use crate::routes::tools::{arguments, call_tool, plain_calls_mcp_session};
use crate::store::StoredAuditRecord;

/// How long the result waits for the call's audit record to be written:
/// the trail writes every tenth of a second or so.
const AUDIT_WAIT: Duration = Duration::from_secs(3);
/// Records read back to find the call's.
const AUDIT_LOOKED_AT: u64 = 20;

/// The "try it" form of a session's page, filled in with `tool` and
/// `arguments`; `tools` are the names it offers.
pub fn try_form(
    request: &HttpRequest,
    session: Uuid,
    tools: &[String],
    tool: &str,
    arguments: &str,
) -> String {
    let mut options = String::new();
    for name in tools {
        let selected = if name == tool { " selected" } else { "" };
        options.push_str(&format!(
            "<option value=\"{name}\"{selected}>{name}</option>",
            name = esc(name)
        ));
    }
    // A name the list no longer holds stays chosen, to be refused by name.
    if !tool.is_empty() && !tools.iter().any(|name| name == tool) {
        options.push_str(&format!(
            "<option value=\"{name}\" selected>{name}</option>",
            name = esc(tool)
        ));
    }
    format!(
        "<form method=\"post\" action=\"/ui/session/{session}/call\">{token}\n\
         <label>Tool <select name=\"tool\">{options}</select></label>\n\
         <label>Arguments (a JSON object) \
         <textarea name=\"arguments\" rows=\"5\" cols=\"70\" spellcheck=\"false\">{arguments}</textarea></label>\n\
         <button>Call the tool</button>\n</form>\n",
        token = form_token_field(request),
        arguments = esc(arguments),
    )
}

/// Calls a tool of the session with the form's arguments, and shows the
/// result (or the refusal) with the call's audit record.
#[utoipa::path(post, path = "/ui/session/{id}/call", tag = "console", operation_id = "try_tool_from_console",
    params(("id" = String, Path, description = "The session's id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`tool`: a qualified tool name; `arguments`: a JSON object (empty: none)"),
    responses(
        (status = 200, description = "The tool's result and the call's audit record", content_type = "text/html", body = String),
        (status = 400, description = "The arguments are no JSON object, or the tool refused them", content_type = "text/html", body = String),
        (status = 404, description = "No such session, or no such tool", content_type = "text/html", body = String),
        (status = 429, description = "Over the session's `rate_limit`", content_type = "text/html", body = String),
        (status = 502, description = "The backend failed or answered an error", content_type = "text/html", body = String)))]
pub async fn call(
    request: HttpRequest,
    path: web::Path<String>,
    form: Form,
    mux: web::Data<Mux>,
) -> Result<HttpResponse, PageError> {
    let path = SessionPath::parse(&path)?;
    let session = path.session(&mux).await?;
    let tried = Tried {
        session: session.id,
        tool: form.get("tool").unwrap_or_default().trim().to_owned(),
        arguments: form.get("arguments").unwrap_or_default().to_owned(),
    };
    let mcp_session = plain_calls_mcp_session(&mux, &session).await?;
    // Checked before the call: a refused form changes nothing, and uses
    // none of the session's rate.
    let checked = if tried.tool.is_empty() {
        Err(ApiError::bad_request(
            "tool",
            "is required: the name of one of the session's tools",
        ))
    } else {
        arguments("arguments", tried.arguments.as_bytes())
            .and_then(|arguments| charge_session_rate(&request, &session, 1).map(|()| arguments))
    };
    let arguments = match checked {
        Ok(arguments) => arguments,
        Err(error) => return Ok(tried.page(&request, &mcp_session, Err(&error), None).await),
    };
    let started = Utc::now();
    let outcome = call_tool(
        &request,
        &mux,
        &mcp_session,
        &session.id.to_string(),
        tried.tool.clone(),
        arguments,
    )
    .await;
    tracing::info!(session = %short_id(session.id), "tool called from the console");
    let record = if mux.audit_settled(AUDIT_WAIT).await {
        let records = mux.audit_records(&session, AUDIT_LOOKED_AT, None).await?;
        call_record(records, &mcp_session.id, &tried.tool, started)
    } else {
        None
    };
    let result = outcome.map(|payload| {
        serde_json::to_value(&payload)
            .and_then(|value| serde_json::to_string_pretty(&value))
            .unwrap_or_default()
    });
    let result = match &result {
        Ok(text) => Ok(text.as_str()),
        Err(error) => Err(error),
    };
    Ok(tried
        .page(&request, &mcp_session, result, Some(record))
        .await)
}

/// The audit record of the call that `mcp_session_id` made to `tool` after
/// `started`: the newest such (records come newest first). A tool name the
/// trail had to cut matches by its MCP session and time alone.
fn call_record(
    records: Vec<StoredAuditRecord>,
    mcp_session_id: &str,
    tool: &str,
    started: chrono::DateTime<Utc>,
) -> Option<StoredAuditRecord> {
    // The store may keep times to the second.
    let since = started - chrono::Duration::seconds(1);
    let mut candidates = records
        .into_iter()
        .filter(|record| record.mcp_session_id == mcp_session_id && record.at >= since);
    let first = candidates.next()?;
    if first.tool == tool {
        return Some(first);
    }
    Some(
        candidates
            .find(|record| record.tool == tool)
            .unwrap_or(first),
    )
}

/// What the form sent.
struct Tried {
    session: Uuid,
    tool: String,
    arguments: String,
}

impl Tried {
    /// The answer: the result or the refusal, the call's audit record
    /// (`None` when the call was not made; `Some(None)` when its record is
    /// not written yet), and the form again.
    async fn page(
        &self,
        request: &HttpRequest,
        mcp_session: &McpSession,
        result: Result<&str, &ApiError>,
        record: Option<Option<StoredAuditRecord>>,
    ) -> HttpResponse {
        let mut body = format!(
            "<p><a href=\"/ui/session/{id}\">Back to the session</a></p>\n\
             <table><tr><th>Tool</th><td><code>{tool}</code></td></tr></table>\n",
            id = self.session,
            tool = esc(&self.tool),
        );
        match result {
            Ok(result) => body.push_str(&format!(
                "<h2>Result</h2>\n<pre class=\"result\">{}</pre>\n",
                esc(result)
            )),
            Err(error) => body.push_str(&format!(
                "<p class=\"error\">{}</p>\n",
                esc(&error.to_string())
            )),
        }
        match record {
            None => {}
            Some(Some(record)) => {
                body.push_str("<h2>Audit record</h2>\n");
                body.push_str(&audit_table(std::slice::from_ref(&record)));
            }
            Some(None) => body.push_str(
                "<h2>Audit record</h2>\n<p class=\"muted\">Not written yet: \
                 the session's page lists it shortly.</p>\n",
            ),
        }
        let tools: Vec<String> = tool_names(mcp_session).await;
        body.push_str("<h2>Try again</h2>\n");
        body.push_str(&try_form(
            request,
            self.session,
            &tools,
            &self.tool,
            &self.arguments,
        ));
        let title = format!("Tool call on session {}", short_id(self.session));
        match result {
            Ok(_) => page(StatusCode::OK, &title, Some(request), &body),
            Err(error) => page_refusing(error, &title, Some(request), &body),
        }
    }
}
