//! `GET|POST /ui/create-session`: the form, and the new session with its
//! client configurations and token (shown this once). The form becomes the
//! JSON body of `POST /create-session` and takes the same checks; a refusal
//! shows the form again, with what was chosen but never a credential.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::form::Form;
use super::html::{esc, form_token_field, labels_shown, page};
use super::refusal::PageError;
use crate::mux::Mux;
use crate::registry::Registry;
use crate::routes::access::Access;
use crate::routes::error::ApiError;
use crate::routes::sessions::{self, SessionCreated};

/// What the form had, to show it again: never a credential.
#[derive(Default)]
struct Chosen {
    servers: Vec<String>,
    require_token: bool,
    /// Every text field but a credential, by name, as typed.
    texts: BTreeMap<String, String>,
}

impl Chosen {
    /// What was typed into field `name`, escaped for an attribute or a
    /// text area.
    fn text(&self, name: &str) -> String {
        esc(self.texts.get(name).map_or("", String::as_str)).to_string()
    }
}

/// The prefix of a credential field's name: `credential.<server>`.
const CREDENTIAL: &str = "credential.";
/// The prefix of a tool rule field's name: `tools.<server>.<rule>`.
const TOOL_RULES: &str = "tools.";
/// A server's tool rules on the form: the field, its label, and whether it
/// takes one entry a line (`rename`, `description`) or a list of patterns.
const RULE_FIELDS: [(&str, &str, bool); 4] = [
    (
        "allow",
        "Show only the tools matching (names or * patterns, comma-separated; empty: all)",
        false,
    ),
    (
        "deny",
        "Hide the tools matching (wins over the above)",
        false,
    ),
    (
        "rename",
        "Rename: one <code>tool=new-name</code> a line",
        true,
    ),
    (
        "description",
        "Describe: one <code>tool=description</code> a line",
        true,
    ),
];

/// The form that creates a session.
#[utoipa::path(get, path = "/ui/create-session", tag = "console", operation_id = "show_create_session_form",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
pub async fn form(request: HttpRequest, mux: web::Data<Mux>) -> HttpResponse {
    form_page(&request, &mux, &Chosen::default(), None, StatusCode::OK)
}

/// Creates a session from the form, and shows its client configurations
/// and its token, once.
#[utoipa::path(post, path = "/ui/create-session", tag = "console", operation_id = "create_session_from_console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 201, description = "Created", content_type = "text/html", body = String),
        (status = 400, description = "The form again, with the field that is wrong", content_type = "text/html", body = String)))]
pub async fn submit(
    request: HttpRequest,
    form: Form,
    mux: web::Data<Mux>,
    access: web::Data<Access>,
) -> Result<HttpResponse, PageError> {
    let (body, chosen) = create_session_body(&form, &mux.registry());
    let created = match sessions::create(&request, body, &mux, &access).await {
        Ok(created) => created,
        Err(error @ ApiError::BadRequest { .. }) => {
            return Ok(form_page(
                &request,
                &mux,
                &chosen,
                Some(&error),
                StatusCode::BAD_REQUEST,
            ));
        }
        Err(error) => return Err(error.into()),
    };
    Ok(created_page(&request, &created))
}

/// The JSON body of `POST /create-session` that the form stands for:
/// `servers` (checkboxes), `credential.<server>` (filled in ones only,
/// under the field name the server's auth takes), `require_token` (a
/// checkbox), `name`, `labels` (one `key=value` a line), `ttl_seconds` and
/// `rate_limit` (empty for none), `tool_mode`, and `tools.<server>.<rule>`
/// (empty for none). Any other field is passed on, to be refused by name.
/// Nothing is checked here: the create-session checks name whatever is
/// wrong.
fn create_session_body(form: &Form, registry: &Registry) -> (Value, Chosen) {
    let mut chosen = Chosen::default();
    let mut body = Map::new();
    let mut credentials = Map::new();
    let mut tools = Map::new();
    for (name, value) in form.fields() {
        if !name.starts_with(CREDENTIAL) && name != "servers" {
            chosen.texts.insert(name.to_owned(), value.to_owned());
        }
        if name == "servers" {
            chosen.servers.push(value.to_owned());
        } else if let Some(server) = name.strip_prefix(CREDENTIAL) {
            if !value.is_empty() {
                let field = registry
                    .server(server)
                    .and_then(|server| server.auth.credential_field());
                // A server without one still gets an entry: the check then
                // says what is wrong with it.
                let credential = match field {
                    Some(field) => json!({ field: value }),
                    None => json!({}),
                };
                credentials.insert(server.to_owned(), credential);
            }
        } else if name == "require_token" {
            chosen.require_token = true;
            body.insert(name.to_owned(), Value::Bool(true));
        } else if name == "name" {
            if !value.trim().is_empty() {
                body.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        } else if name == "labels" {
            if !value.trim().is_empty() {
                body.insert(name.to_owned(), named_lines(value));
            }
        } else if name == "ttl_seconds" || name == "rate_limit" {
            if !value.trim().is_empty() {
                // A number when it is one; otherwise the text, for the
                // create-session check to refuse with its own message.
                let number = value
                    .trim()
                    .parse::<u64>()
                    .map_or_else(|_| Value::String(value.to_owned()), Value::from);
                body.insert(name.to_owned(), number);
            }
        } else if let Some((server, rule)) = name
            .strip_prefix(TOOL_RULES)
            .and_then(|rest| rest.split_once('.'))
        {
            if !value.trim().is_empty() {
                let rules = tools
                    .entry(server.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(rules) = rules {
                    rules.insert(rule.to_owned(), rule_value(rule, value));
                }
            }
        } else {
            body.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    }
    body.insert("servers".into(), json!(chosen.servers));
    if !credentials.is_empty() {
        body.insert("credentials".into(), Value::Object(credentials));
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Object(tools));
    }
    (Value::Object(body), chosen)
}

/// A tool rule as create-session takes it: `allow` and `deny` a list of
/// the patterns separated by commas or lines, `rename` and `description`
/// an object of `name=text` lines (a line without `=` is a name without a
/// text, which the check refuses by name); any other rule the text as it
/// is, for the check to refuse.
fn rule_value(rule: &str, text: &str) -> Value {
    match rule {
        "allow" | "deny" => Value::Array(
            text.split([',', '\n'])
                .map(str::trim)
                .filter(|pattern| !pattern.is_empty())
                .map(|pattern| Value::String(pattern.to_owned()))
                .collect(),
        ),
        "rename" | "description" => named_lines(text),
        _ => Value::String(text.to_owned()),
    }
}

/// `name=text` lines as an object; a line without `=` is a name with an
/// empty text.
fn named_lines(text: &str) -> Value {
    Value::Object(
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, text) = line.split_once('=').unwrap_or((line, ""));
                (
                    name.trim().to_owned(),
                    Value::String(text.trim().to_owned()),
                )
            })
            .collect(),
    )
}

/// The form, filled in with what was chosen, and the refusal if any.
fn form_page(
    request: &HttpRequest,
    mux: &Mux,
    chosen: &Chosen,
    error: Option<&ApiError>,
    status: StatusCode,
) -> HttpResponse {
    let mut body = String::new();
    if let Some(error) = error {
        body.push_str(&format!(
            "<p class=\"error\">{}</p>",
            esc(&error.to_string())
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/ui/create-session\">{}\n\
         <fieldset><legend>Session</legend>\n\
         <label>Name (optional) <input type=\"text\" name=\"name\" size=\"40\" value=\"{name}\"></label>\n\
         <label>Labels: one <code>key=value</code> a line<br>\
         <textarea name=\"labels\" rows=\"2\" cols=\"40\" spellcheck=\"false\">{labels}</textarea></label>\n\
         </fieldset>\n\
         <fieldset><legend>Backends</legend>\n",
        form_token_field(request),
        name = chosen.text("name"),
        labels = chosen.text("labels"),
    ));
    for server in mux.registry().servers() {
        let checked = if chosen.servers.contains(&server.name) {
            " checked"
        } else {
            ""
        };
        body.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"servers\" value=\"{name}\"{checked}> \
             <code>{name}</code> <span class=\"muted\">{description}</span></label>\n",
            name = esc(&server.name),
            description = esc(server.description.as_deref().unwrap_or("")),
        ));
        if let Some(field) = server.auth.credential_field() {
            // Never filled in again: a credential is not sent back.
            body.push_str(&format!(
                "<label class=\"indent\">{field} for <code>{name}</code> \
                 <input type=\"password\" name=\"{CREDENTIAL}{name}\" autocomplete=\"off\"></label>\n",
                name = esc(&server.name),
            ));
        }
        body.push_str(&tool_rule_fields(&server.name, chosen));
    }
    body.push_str(&format!(
        "</fieldset>\n<fieldset><legend>Options</legend>\n\
         <label><input type=\"checkbox\" name=\"require_token\"{checked}> \
         Require a session token on the MCP endpoint</label>\n\
         <label>Lifetime in seconds (empty: until deleted) \
         <input type=\"number\" name=\"ttl_seconds\" min=\"1\" value=\"{ttl}\"></label>\n\
         <label>Rate limit in requests a second (empty: the gateway&#39;s) \
         <input type=\"number\" name=\"rate_limit\" min=\"1\" value=\"{rate}\"></label>\n\
         <label>Tool mode <select name=\"tool_mode\">\
         <option value=\"direct\"{direct}>direct: clients list every tool shown</option>\
         <option value=\"search\"{search}>search: clients list search_tools, describe_tool and call_tool</option>\
         </select></label>\n\
         </fieldset>\n<button>Create the session</button>\n</form>",
        checked = if chosen.require_token { " checked" } else { "" },
        ttl = chosen.text("ttl_seconds"),
        rate = chosen.text("rate_limit"),
        direct = if chosen.texts.get("tool_mode").is_some_and(|mode| mode == "search") { "" } else { " selected" },
        search = if chosen.texts.get("tool_mode").is_some_and(|mode| mode == "search") { " selected" } else { "" },
    ));
    page(status, "New session", Some(request), &body)
}

/// A server's tool rule fields, folded away unless one was filled in.
fn tool_rule_fields(server: &str, chosen: &Chosen) -> String {
    let field = |rule: &str| format!("{TOOL_RULES}{server}.{rule}");
    let filled = RULE_FIELDS.iter().any(|(rule, _, _)| {
        chosen
            .texts
            .get(&field(rule))
            .is_some_and(|text| !text.trim().is_empty())
    });
    let mut fields = format!(
        "<details class=\"indent\"{open}><summary>Tool rules for <code>{server}</code></summary>\n",
        open = if filled { " open" } else { "" },
        server = esc(server),
    );
    for (rule, label, by_line) in RULE_FIELDS {
        let name = esc(&field(rule)).to_string();
        let typed = chosen.text(&field(rule));
        if by_line {
            fields.push_str(&format!(
                "<label>{label}<br><textarea name=\"{name}\" rows=\"2\" cols=\"60\" spellcheck=\"false\">{typed}</textarea></label>\n"
            ));
        } else {
            fields.push_str(&format!(
                "<label>{label}<br><input type=\"text\" name=\"{name}\" size=\"60\" value=\"{typed}\"></label>\n"
            ));
        }
    }
    fields.push_str("</details>\n");
    fields
}

/// The new session, as `POST /create-session` answered it.
fn created_page(request: &HttpRequest, created: &SessionCreated) -> HttpResponse {
    let id = created.session_id.to_string();
    let mut body = format!(
        "<table><tr><th>Session</th><td><a href=\"/ui/session/{id}\"><code>{id}</code></a></td></tr>\
         <tr><th>Name</th><td>{name}</td></tr>\
         <tr><th>Labels</th><td>{labels}</td></tr>\
         <tr><th>MCP URL</th><td><code>{url}</code></td></tr></table>\n",
        id = esc(&id),
        name = esc(created.name.as_deref().unwrap_or("")),
        labels = labels_shown(&created.labels),
        url = esc(&created.mcp_url),
    );
    if let Some(token) = &created.session_token {
        body.push_str(&format!(
            "<p class=\"notice\">The session token is shown this once: the gateway keeps only its digest.</p>\
             <table><tr><th>Session token</th><td><code>{}</code></td></tr></table>\n",
            esc(token)
        ));
    }
    body.push_str("<h2>Client configurations</h2>\n");
    let configs = &created.client_configs;
    let pretty = |config: &Value| serde_json::to_string_pretty(config).unwrap_or_default();
    for (title, shown) in [
        (
            "Claude Desktop (through mcp-remote)",
            pretty(&configs.claude_desktop),
        ),
        ("Cursor", pretty(&configs.cursor)),
        ("VS Code", pretty(&configs.vscode)),
        ("Claude Code", configs.claude_code.clone()),
    ] {
        body.push_str(&format!("<h3>{title}</h3><pre>{}</pre>\n", esc(&shown)));
    }
    page(StatusCode::CREATED, "Session created", Some(request), &body)
}
