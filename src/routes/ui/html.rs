//! The console's HTML: the one escaping helper, the page frame (navigation,
//! style) and the headers every page carries. Pages are written by hand;
//! every value that did not come from this file goes through [`esc`].

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

pub use super::form::form_token_field;
use super::form_token::FormToken;
use crate::mux::CircuitState;
use crate::routes::access::ConsoleCaller;
use crate::store::{Labels, StoredAuditRecord};

/// A value escaped for HTML text and for a double- or single-quoted
/// attribute.
pub struct Escaped<'a>(&'a str);

/// Escapes `text` where it is formatted: `format!("<td>{}</td>", esc(name))`.
pub fn esc(text: &str) -> Escaped<'_> {
    Escaped(text)
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
header { background: #1d2330; color: #fff; padding: .6rem 1.5rem; display: flex; gap: 1.5rem; align-items: center; }
header a { color: #cfd8ff; text-decoration: none; }
header strong { margin-right: 1rem; }
header form { margin-left: auto; }
main { padding: 1.2rem 1.5rem; max-width: 72rem; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; background: #fff; width: 100%; margin-bottom: 1rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e1e4ea; vertical-align: top; }
th { background: #eef0f4; font-weight: 600; }
code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
pre { background: #fff; border: 1px solid #e1e4ea; padding: .6rem; overflow-x: auto; }
.state { padding: .05rem .4rem; border-radius: .3rem; font-size: 12px; white-space: nowrap; }
.closed { background: #d8f3dc; } .half_open { background: #fff3bf; } .open { background: #ffd6d6; }
.error { background: #ffe3e3; border: 1px solid #f5a3a3; padding: .6rem .8rem; }
.notice { background: #fff3bf; border: 1px solid #e9c46a; padding: .6rem .8rem; }
.muted { color: #6b7280; }
form.inline { display: inline; }
button { font: inherit; padding: .25rem .8rem; cursor: pointer; }
button.danger { color: #a61b1b; }
label { display: block; margin: .3rem 0; }
.indent { margin-left: 1.6rem; }
form.filter { background: #fff; border: 1px solid #e1e4ea; padding: .4rem .6rem; margin-bottom: 1rem; }
form.filter label { display: inline-block; margin-right: .8rem; }
details { margin: .3rem 0; }
textarea { font-family: ui-monospace, monospace; font-size: 13px; }
a.danger { color: #a61b1b; }
fieldset { background: #fff; border: 1px solid #e1e4ea; margin-bottom: 1rem; }
input[type=text], input[type=password], input[type=number] { font: inherit; padding: .2rem .4rem; }
";

/// A whole page: `body` is HTML already escaped where it needs to be.
/// `viewer` is the request the guard let in (None on the login and refusal
/// pages, which get no navigation); a logged-in browser gets a log-out
/// button.
pub fn page(
    status: StatusCode,
    title: &str,
    viewer: Option<&HttpRequest>,
    body: &str,
) -> HttpResponse {
    let who = viewer.map(caller);
    let logout = match viewer {
        Some(request) if who == Some(ConsoleCaller::Login) => format!(
            r#"<form method="post" action="/ui/logout">{}<button>Log out</button></form>"#,
            form_token_field(request)
        ),
        _ => String::new(),
    };
    let nav = if who.is_some() {
        r#"<a href="/ui">Sessions</a><a href="/ui/create-session">New session</a><a href="/ui/registry">Registry</a>"#
    } else {
        ""
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · mcp-mux</title><style>{STYLE}</style></head>\
         <body><header><strong>mcp-mux console</strong>{nav}{logout}</header>\
         <main><h1>{title}</h1>\n{body}\n</main></body></html>\n",
        title = esc(title),
    );
    let mut response = HttpResponse::build(status).body(html);
    set_page_headers(&mut response);
    response
}

/// What every console answer carries besides the safe headers every
/// answer gets (`routes::headers`: never cached, never framed, nosniff,
/// `same-origin` referrers): HTML, no script at all, forms posting only to
/// the console itself.
pub fn set_page_headers(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
}

/// A `303 See Other` to a console page: the answer to a form that changed
/// something, so that reloading the next page does not send it again.
pub fn see_other(location: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish();
    set_page_headers(&mut response);
    response
}

/// Who the guard let in, for the navigation.
pub fn caller(request: &HttpRequest) -> ConsoleCaller {
    request
        .extensions()
        .get::<ConsoleCaller>()
        .copied()
        .unwrap_or(ConsoleCaller::Open)
}

/// A time for a table cell, to the second.
pub fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The login form; on the login page and on every 401 page. It carries
/// the form token of forms shown without a login.
pub fn login_form() -> String {
    format!(
        r#"<form method="post" action="/ui/login">{}
<label>Admin token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button>Log in</button>
</form>"#,
        FormToken::process().hidden_field()
    )
}

/// A circuit's state, coloured.
pub fn circuit_badge(circuit: &CircuitState) -> String {
    format!(
        "<span class=\"state {name}\">{name}</span>",
        name = circuit.name()
    )
}

/// A backend's circuit and calls in progress, as table cells.
pub fn health_cells(health: Option<&(CircuitState, usize)>) -> String {
    let Some((circuit, calls)) = health else {
        return "<td class=\"muted\">unknown</td><td></td>".into();
    };
    let (CircuitState::Closed { failures }
    | CircuitState::HalfOpen { failures }
    | CircuitState::Open { failures, .. }) = circuit;
    let mut state = circuit_badge(circuit);
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

/// Audit records as a table.
pub fn audit_table(records: &[StoredAuditRecord]) -> String {
    let mut table = String::from(
        "<table><tr><th>At</th><th>MCP session</th><th>User</th><th>Backend</th><th>Tool</th>\
         <th>Outcome</th><th>Error</th><th>ms</th></tr>\n",
    );
    for record in records {
        table.push_str(&format!(
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
    table.push_str("</table>\n");
    table
}

/// A session's labels, each `key=value`.
pub(super) fn labels_shown(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(key, value)| format!("<code>{}={}</code>", esc(key), esc(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            esc(r#"<a href="x" onclick='y'>&amp;</a>"#).to_string(),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(esc("plain – ünïcode").to_string(), "plain – ünïcode");
    }
}
