//! What a client asks of an MCP session. Each method name is spelled here
//! once, and each request is parsed once, where it arrives, into what its
//! method needs to be routed. Arguments and the rest of the params stay the
//! JSON the client sent: mcp-mux passes them on untouched.

use serde_json::{Map, Value};

use super::client_values;

/// A request method a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Initialize,
    Ping,
    ToolsList,
    ToolsCall,
    PromptsList,
    PromptsGet,
    ResourcesList,
    ResourceTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    CompletionComplete,
    LoggingSetLevel,
    /// Revision 2026-07-28 only.
    ServerDiscover,
    /// Revision 2026-07-28 only.
    SubscriptionsListen,
}

impl Method {
    const ALL: [Method; 15] = [
        Method::Initialize,
        Method::Ping,
        Method::ToolsList,
        Method::ToolsCall,
        Method::PromptsList,
        Method::PromptsGet,
        Method::ResourcesList,
        Method::ResourceTemplatesList,
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
        Method::CompletionComplete,
        Method::LoggingSetLevel,
        Method::ServerDiscover,
        Method::SubscriptionsListen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::ResourcesList => "resources/list",
            Method::ResourceTemplatesList => "resources/templates/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::CompletionComplete => "completion/complete",
            Method::LoggingSetLevel => "logging/setLevel",
            Method::ServerDiscover => "server/discover",
            Method::SubscriptionsListen => "subscriptions/listen",
        }
    }

    /// The method named `name`, if mcp-mux serves it at some revision.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|method| method.as_str() == name)
    }

    /// Requests routed to one backend, which may send notifications
    /// (progress, log messages) and requests (sampling, elicitation)
    /// before its answer.
    pub fn is_routed_to_one_backend(self) -> bool {
        matches!(
            self,
            Method::ToolsCall
                | Method::PromptsGet
                | Method::ResourcesRead
                | Method::CompletionComplete
        )
    }

    /// Requests that may need the client's input at revision 2026-07-28,
    /// and so may be parked and taken up again.
    pub fn may_need_input(self) -> bool {
        matches!(
            self,
            Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead
        )
    }

    /// Whether revision 2026-07-28 serves it (statelessly).
    pub fn is_served_statelessly(self) -> bool {
        matches!(
            self,
            Method::ServerDiscover
                | Method::SubscriptionsListen
                | Method::ToolsList
                | Method::ToolsCall
                | Method::PromptsList
                | Method::PromptsGet
                | Method::ResourcesList
                | Method::ResourceTemplatesList
                | Method::ResourcesRead
                | Method::CompletionComplete
        )
    }

    /// Whether its results carry caching hints at revision 2026-07-28.
    pub fn is_cacheable(self) -> bool {
        matches!(
            self,
            Method::ServerDiscover
                | Method::ToolsList
                | Method::PromptsList
                | Method::ResourcesList
                | Method::ResourceTemplatesList
                | Method::ResourcesRead
        )
    }

    /// The params member that names what the request is about, which the
    /// `Mcp-Name` header mirrors at revision 2026-07-28.
    pub fn named_by(self) -> Option<&'static str> {
        match self {
            Method::ToolsCall | Method::PromptsGet => Some("name"),
            Method::ResourcesRead => Some("uri"),
            _ => None,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client request, its params checked for what routing it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientRequest {
    Initialize {
        params: Option<Value>,
    },
    Ping,
    /// `tools/list`, `prompts/list`, `resources/list` or
    /// `resources/templates/list`: a first page, or the page `cursor` names.
    List {
        method: Method,
        cursor: Option<String>,
    },
    CallTool(ByName),
    GetPrompt(ByName),
    ReadResource(ByUri),
    Subscribe(ByUri),
    Unsubscribe(ByUri),
    Complete(Completion),
    /// `logging/setLevel`; `level` is a string.
    SetLogLevel {
        params: Map<String, Value>,
    },
    ServerDiscover,
    SubscriptionsListen {
        params: Map<String, Value>,
    },
}

/// A request about a tool or prompt, by the name the client knows it by.
#[derive(Debug, Clone, PartialEq)]
pub struct ByName {
    pub name: String,
    /// All the params, `name` included.
    pub params: Map<String, Value>,
}

/// A request about a resource, by the URI the client knows it by.
#[derive(Debug, Clone, PartialEq)]
pub struct ByUri {
    pub uri: String,
    /// All the params, `uri` included.
    pub params: Map<String, Value>,
}

/// `completion/complete`: what is completed, and the rest of its params.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub target: CompletionTarget,
    /// The `ref` object, as the client sent it.
    pub reference: Map<String, Value>,
    /// The params but for `ref`.
    pub params: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CompletionTarget {
    /// A prompt's argument, by the prompt's name.
    Prompt { name: String },
    /// A resource template's variable, by the template's URI.
    Resource { uri: String },
}

/// A client notification mcp-mux acts on; any other needs nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientNotification {
    /// The client gave up on a request: the backend running it hears.
    Cancelled {
        request_id: Value,
        reason: Option<Value>,
    },
    /// The client's roots changed: every backend hears.
    RootsListChanged,
    Other,
}

impl ClientNotification {
    pub const CANCELLED: &str = "notifications/cancelled";
    pub const ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";

    pub fn parse(method: &str, params: Option<&Value>) -> ClientNotification {
        match method {
            Self::CANCELLED => match params.and_then(|p| p.get("requestId")) {
                Some(request_id) => ClientNotification::Cancelled {
                    request_id: request_id.clone(),
                    reason: params.and_then(|p| p.get("reason")).cloned(),
                },
                None => ClientNotification::Other,
            },
            Self::ROOTS_LIST_CHANGED => ClientNotification::RootsListChanged,
            _ => ClientNotification::Other,
        }
    }
}

/// Why a request cannot be served as sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("method not found: {method}")]
    MethodNotFound { method: String },
    #[error("invalid params: {reason}")]
    InvalidParams { reason: String },
}

fn invalid(reason: impl Into<String>) -> RequestError {
    RequestError::InvalidParams {
        reason: reason.into(),
    }
}

impl ClientRequest {
    /// Parses a request `method` with its `params` (an object or nothing,
    /// as the envelope parser left them).
    pub fn parse(method: &str, params: Option<Value>) -> Result<ClientRequest, RequestError> {
        let Some(known) = Method::parse(method) else {
            return Err(RequestError::MethodNotFound {
                method: method.to_owned(),
            });
        };
        ClientRequest::of(known, params)
    }

    /// Parses the params of a request whose method is known.
    pub fn of(method: Method, params: Option<Value>) -> Result<ClientRequest, RequestError> {
        Ok(match method {
            Method::Initialize => ClientRequest::Initialize { params },
            Method::Ping => ClientRequest::Ping,
            Method::ToolsList
            | Method::PromptsList
            | Method::ResourcesList
            | Method::ResourceTemplatesList => ClientRequest::List {
                method,
                cursor: cursor(params.as_ref())?,
            },
            Method::ToolsCall => ClientRequest::CallTool(by_name(method, params)?),
            Method::PromptsGet => ClientRequest::GetPrompt(by_name(method, params)?),
            Method::ResourcesRead => ClientRequest::ReadResource(by_uri(method, params)?),
            Method::ResourcesSubscribe => ClientRequest::Subscribe(by_uri(method, params)?),
            Method::ResourcesUnsubscribe => ClientRequest::Unsubscribe(by_uri(method, params)?),
            Method::CompletionComplete => ClientRequest::Complete(completion(params)?),
            Method::LoggingSetLevel => {
                let Some(Value::Object(params)) = params else {
                    return Err(invalid("logging/setLevel needs params with a \"level\""));
                };
                if !params.get("level").is_some_and(Value::is_string) {
                    return Err(invalid("\"level\" must be a string"));
                }
                ClientRequest::SetLogLevel { params }
            }
            Method::ServerDiscover => ClientRequest::ServerDiscover,
            Method::SubscriptionsListen => ClientRequest::SubscriptionsListen {
                params: match params {
                    Some(Value::Object(params)) => params,
                    _ => Map::new(),
                },
            },
        })
    }

    pub fn method(&self) -> Method {
        match self {
            ClientRequest::Initialize { .. } => Method::Initialize,
            ClientRequest::Ping => Method::Ping,
            ClientRequest::List { method, .. } => *method,
            ClientRequest::CallTool(_) => Method::ToolsCall,
            ClientRequest::GetPrompt(_) => Method::PromptsGet,
            ClientRequest::ReadResource(_) => Method::ResourcesRead,
            ClientRequest::Subscribe(_) => Method::ResourcesSubscribe,
            ClientRequest::Unsubscribe(_) => Method::ResourcesUnsubscribe,
            ClientRequest::Complete(_) => Method::CompletionComplete,
            ClientRequest::SetLogLevel { .. } => Method::LoggingSetLevel,
            ClientRequest::ServerDiscover => Method::ServerDiscover,
            ClientRequest::SubscriptionsListen { .. } => Method::SubscriptionsListen,
        }
    }
}

/// The `cursor` of a list request, if it asks for a later page.
fn cursor(params: Option<&Value>) -> Result<Option<String>, RequestError> {
    match params.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(cursor)) => Ok(Some(cursor.clone())),
        Some(_) => Err(invalid("\"cursor\" must be a string")),
    }
}

/// The URI in params member `field`, refused when [`client_values`] says
/// it cannot go on to a backend. Names need no such check: they are looked
/// up, and a backend gets its own name for what they name.
fn uri_checked(field: &str, uri: &str) -> Result<(), RequestError> {
    match client_values::uri_problem(uri) {
        Some(problem) => Err(invalid(format!("\"{field}\" {problem}"))),
        None => Ok(()),
    }
}

fn by_name(method: Method, params: Option<Value>) -> Result<ByName, RequestError> {
    let Some(Value::Object(params)) = params else {
        return Err(invalid(format!("{method} needs params with a \"name\"")));
    };
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err(invalid("\"name\" must be a string"));
    };
    Ok(ByName {
        name: name.to_owned(),
        params,
    })
}

fn by_uri(method: Method, params: Option<Value>) -> Result<ByUri, RequestError> {
    let Some(Value::Object(params)) = params else {
        return Err(invalid(format!("{method} needs params with a \"uri\"")));
    };
    let Some(uri) = params.get("uri").and_then(Value::as_str) else {
        return Err(invalid("\"uri\" must be a string"));
    };
    uri_checked("uri", uri)?;
    Ok(ByUri {
        uri: uri.to_owned(),
        params,
    })
}

fn completion(params: Option<Value>) -> Result<Completion, RequestError> {
    let Some(Value::Object(mut params)) = params else {
        return Err(invalid("completion/complete needs params with a \"ref\""));
    };
    let Some(Value::Object(reference)) = params.remove("ref") else {
        return Err(invalid("\"ref\" must be an object"));
    };
    let text = |key: &str| {
        reference
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let target = match (
        reference.get("type").and_then(Value::as_str),
        text("name"),
        text("uri"),
    ) {
        (Some("ref/prompt"), Some(name), _) => CompletionTarget::Prompt { name },
        (Some("ref/resource"), _, Some(uri)) => {
            uri_checked("ref.uri", &uri)?;
            CompletionTarget::Resource { uri }
        }
        _ => {
            return Err(invalid(
                "\"ref\" must be {\"type\": \"ref/prompt\", \"name\"} or {\"type\": \"ref/resource\", \"uri\"}",
            ));
        }
    };
    Ok(Completion {
        target,
        reference,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_method_is_found_by_its_own_name_and_no_other() {
        for method in Method::ALL {
            assert_eq!(Method::parse(method.as_str()), Some(method));
        }
        assert_eq!(Method::parse("tools/Call"), None);
        assert_eq!(Method::parse(""), None);
    }

    #[test]
    fn unknown_methods_are_method_not_found() {
        assert_eq!(
            ClientRequest::parse("tools/delete", None),
            Err(RequestError::MethodNotFound {
                method: "tools/delete".into()
            })
        );
    }

    #[test]
    fn named_requests_keep_their_params_whole() {
        let params =
            json!({"name": "a__echo", "arguments": {"n": 1}, "_meta": {"progressToken": 7}});
        let Ok(ClientRequest::CallTool(call)) =
            ClientRequest::parse("tools/call", Some(params.clone()))
        else {
            panic!("a tools/call");
        };
        assert_eq!(call.name, "a__echo");
        assert_eq!(Value::Object(call.params), params);
    }

    #[test]
    fn params_that_cannot_be_routed_are_invalid_params_naming_the_member() {
        let cases = [
            (
                "tools/call",
                None,
                "tools/call needs params with a \"name\"",
            ),
            (
                "prompts/get",
                Some(json!({"name": 3})),
                "\"name\" must be a string",
            ),
            (
                "resources/read",
                None,
                "resources/read needs params with a \"uri\"",
            ),
            (
                "resources/subscribe",
                Some(json!({})),
                "\"uri\" must be a string",
            ),
            (
                "tools/list",
                Some(json!({"cursor": 1})),
                "\"cursor\" must be a string",
            ),
            (
                "completion/complete",
                None,
                "completion/complete needs params with a \"ref\"",
            ),
            (
                "completion/complete",
                Some(json!({"ref": "p"})),
                "\"ref\" must be an object",
            ),
            (
                "completion/complete",
                Some(json!({"ref": {"type": "ref/prompt"}})),
                "\"ref\" must be {\"type\": \"ref/prompt\", \"name\"} or {\"type\": \"ref/resource\", \"uri\"}",
            ),
            (
                "logging/setLevel",
                None,
                "logging/setLevel needs params with a \"level\"",
            ),
            (
                "logging/setLevel",
                Some(json!({"level": 1})),
                "\"level\" must be a string",
            ),
        ];
        for (method, params, reason) in cases {
            assert_eq!(
                ClientRequest::parse(method, params),
                Err(RequestError::InvalidParams {
                    reason: reason.into()
                }),
                "{method}"
            );
        }
    }

    #[test]
    fn a_completion_separates_its_reference_from_the_other_params() {
        let params = json!({"ref": {"type": "ref/resource", "uri": "a+file:///{x}"}, "argument": {"name": "x", "value": "1"}});
        let Ok(ClientRequest::Complete(completion)) =
            ClientRequest::parse("completion/complete", Some(params))
        else {
            panic!("a completion");
        };
        assert_eq!(
            completion.target,
            CompletionTarget::Resource {
                uri: "a+file:///{x}".into()
            }
        );
        assert_eq!(
            Value::Object(completion.params),
            json!({"argument": {"name": "x", "value": "1"}})
        );
        assert_eq!(completion.reference["type"], "ref/resource");
    }

    #[test]
    fn notifications_are_known_by_method_and_a_cancellation_by_its_request() {
        assert_eq!(
            ClientNotification::parse(
                "notifications/cancelled",
                Some(&json!({"requestId": 4, "reason": "late"}))
            ),
            ClientNotification::Cancelled {
                request_id: json!(4),
                reason: Some(json!("late"))
            }
        );
        assert_eq!(
            ClientNotification::parse("notifications/cancelled", Some(&json!({}))),
            ClientNotification::Other
        );
        assert_eq!(
            ClientNotification::parse("notifications/roots/list_changed", None),
            ClientNotification::RootsListChanged
        );
        assert_eq!(
            ClientNotification::parse("notifications/initialized", None),
            ClientNotification::Other
        );
    }

    #[test]
    fn a_null_cursor_asks_for_the_first_page() {
        assert_eq!(
            ClientRequest::parse("prompts/list", Some(json!({"cursor": null}))),
            Ok(ClientRequest::List {
                method: Method::PromptsList,
                cursor: None
            })
        );
    }
}
