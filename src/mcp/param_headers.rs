//! `Mcp-Param-*` headers (revision 2026-07-28): a tool's `inputSchema` may
//! mark parameters with `x-mcp-header`, and clients then mirror their values
//! into HTTP headers, so that a proxy can route on them without reading the
//! body. A server that reads the body checks each header against it.

use serde_json::{Map, Value};

use super::stateless::{Refused, decode_header_value};

/// One parameter a tool mirrors into a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// `Mcp-Param-<name>`, as the schema spells the name.
    pub header: String,
    /// The path of `properties` keys that leads to the parameter.
    pub path: Vec<String>,
}

/// A header of the request, as the caller found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent<'a> {
    Absent,
    /// Not visible ASCII, or sent more than once.
    Invalid,
    Value(&'a str),
}

/// The parameters a tool's `inputSchema` mirrors into headers, or why the
/// tool's definition is invalid, which makes clients leave the tool out.
/// An `x-mcp-header` is valid on a string, integer or boolean parameter
/// reached from the root through `properties` keys alone, with a name that
/// is an HTTP token, unique regardless of case.
pub fn declared(input_schema: &Value) -> Result<Vec<ParamHeader>, String> {
    let mut found = Vec::new();
    visit(input_schema, Some(&mut Vec::new()), "", &mut found)?;
    let mut seen = std::collections::HashSet::new();
    for param in &found {
        if !seen.insert(param.header.to_ascii_lowercase()) {
            return Err(format!(
                "x-mcp-header names the header {} on more than one parameter",
                param.header
            ));
        }
    }
    Ok(found)
}

/// Keywords whose values are data, not schemas: an `x-mcp-header` key in
/// them annotates nothing.
const DATA_KEYWORDS: [&str; 4] = ["enum", "const", "default", "examples"];

/// Looks for `x-mcp-header` in `node` and everything under it. `path` is
/// the chain of `properties` keys that reaches `node` statically, or None
/// when `node` lies under another keyword; `at` is where it lies, as a JSON
/// pointer, for the reason a definition is refused.
fn visit(
    node: &Value,
    path: Option<&mut Vec<String>>,
    at: &str,
    found: &mut Vec<ParamHeader>,
) -> Result<(), String> {
    match node {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                visit(item, None, &format!("{at}/{index}"), found)?;
            }
            Ok(())
        }
        Value::Object(schema) => {
            let mut path = path;
            if let Some(name) = schema.get("x-mcp-header") {
                let chain = match path.as_deref() {
                    Some(chain) if !chain.is_empty() => chain,
                    _ => {
                        return Err(format!(
                            "x-mcp-header at \"{at}\" is not on a parameter reached through \"properties\" alone"
                        ));
                    }
                };
                found.push(annotated(schema, name, chain)?);
            }
            for (key, value) in schema {
                if DATA_KEYWORDS.contains(&key.as_str()) || key == "x-mcp-header" {
                    continue;
                }
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (key.as_str(), value, path.as_deref_mut()) {
                    ("properties", Value::Object(properties), Some(chain)) => {
                        for (name, property) in properties {
                            chain.push(name.clone());
                            let under =
                                format!("{here}/{}", name.replace('~', "~0").replace('/', "~1"));
                            let outcome = visit(property, Some(chain), &under, found);
                            chain.pop();
                            outcome?;
                        }
                    }
                    _ => visit(value, None, &here, found)?,
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The parameter `schema` (at `chain`) mirrors into the header `name`.
fn annotated(
    schema: &Map<String, Value>,
    name: &Value,
    chain: &[String],
) -> Result<ParamHeader, String> {
    let parameter = chain.join(".");
    let name = name
        .as_str()
        .filter(|name| !name.is_empty() && name.bytes().all(is_token_byte))
        .ok_or_else(|| {
            format!("x-mcp-header of \"{parameter}\" must be a non-empty HTTP token, not {name}")
        })?;
    // A nullable parameter ("type": ["string", "null"]) is one of these too.
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|kind| *kind != "null")
            .collect(),
        _ => Vec::new(),
    };
    match types.as_slice() {
        ["string" | "integer" | "boolean"] => Ok(ParamHeader {
            header: format!("Mcp-Param-{name}"),
            path: chain.to_vec(),
        }),
        _ => Err(format!(
            "x-mcp-header of \"{parameter}\" needs a parameter of type string, integer or boolean"
        )),
    }
}

/// RFC 9110's `tchar`.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Checks the `Mcp-Param-*` headers of a call of a tool that declares
/// `params` against its `arguments`: each argument present (and not null)
/// needs its header, equal to it once decoded; a header needs its argument.
/// `header` looks a header up by its lower-case name.
pub fn check<'h>(
    params: &[ParamHeader],
    arguments: Option<&Value>,
    header: impl Fn(&str) -> Sent<'h>,
) -> Result<(), Refused> {
    for param in params {
        let argument = arguments
            .and_then(|arguments| {
                param
                    .path
                    .iter()
                    .try_fold(arguments, |value, key| value.get(key))
            })
            .filter(|value| !value.is_null());
        let parameter = param.path.join(".");
        let name = &param.header;
        let sent = match header(&name.to_ascii_lowercase()) {
            Sent::Absent => None,
            Sent::Invalid => {
                return Err(mismatch(format!(
                    "the {name} header must be sent once, in visible ASCII (other values as =?base64?…?=)"
                )));
            }
            Sent::Value(sent) => Some(
                decode_header_value(sent)
                    .map_err(|refused| mismatch(format!("{name}: {}", reason_of(refused))))?,
            ),
        };
        match (sent, argument) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(mismatch(format!(
                    "the {name} header is missing: the argument \"{parameter}\" is in the body"
                )));
            }
            (Some(_), None) => {
                return Err(mismatch(format!(
                    "the {name} header is sent, but the argument \"{parameter}\" is not in the body"
                )));
            }
            (Some(sent), Some(argument)) if !matches(&sent, argument) => {
                return Err(mismatch(format!(
                    "{name} header value '{sent}' does not match body value {argument}"
                )));
            }
            (Some(_), Some(_)) => {}
        }
    }
    Ok(())
}

/// Whether a decoded header value mirrors `argument`: a string as it is,
/// a boolean as `true` or `false`, a number as a number (`42.0` is 42).
fn matches(sent: &str, argument: &Value) -> bool {
    match argument {
        Value::String(text) => sent == text,
        Value::Bool(flag) => sent == if *flag { "true" } else { "false" },
        Value::Number(number) => sent
            .parse::<f64>()
            .ok()
            .zip(number.as_f64())
            .is_some_and(|(sent, number)| sent == number),
        _ => false,
    }
}

fn mismatch(reason: String) -> Refused {
    Refused::HeaderMismatch { reason }
}

fn reason_of(refused: Refused) -> String {
    match refused {
        Refused::HeaderMismatch { reason } | Refused::InvalidMeta { reason } => reason,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn region_tool() -> Value {
        json!({
            "type": "object",
            "properties": {
                "region": { "type": "string", "x-mcp-header": "Region" },
                "limits": { "type": "object", "properties": {
                    "rows": { "type": ["integer", "null"], "x-mcp-header": "Rows" },
                    "dry": { "type": "boolean", "x-mcp-header": "Dry-Run" },
                } },
                "query": { "type": "string" },
            },
        })
    }

    #[test]
    fn declarations_are_read_from_parameters_reached_through_properties() {
        let params = declared(&region_tool()).expect("valid");
        let mut found: Vec<(&str, String)> = params
            .iter()
            .map(|param| (param.header.as_str(), param.path.join(".")))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("Mcp-Param-Dry-Run", "limits.dry".to_owned()),
                ("Mcp-Param-Region", "region".to_owned()),
                ("Mcp-Param-Rows", "limits.rows".to_owned()),
            ]
        );
        assert_eq!(declared(&json!({ "type": "object" })), Ok(Vec::new()));
        // Data that happens to hold the key annotates nothing.
        let data = json!({ "properties": { "a": { "type": "object", "default": { "x-mcp-header": "A" } } } });
        assert_eq!(declared(&data), Ok(Vec::new()));
    }

    #[test]
    fn invalid_declarations_say_why() {
        let refused = |schema: Value| declared(&schema).expect_err("invalid");
        assert_eq!(
            refused(json!({ "properties": { "a": { "type": "number", "x-mcp-header": "A" } } })),
            "x-mcp-header of \"a\" needs a parameter of type string, integer or boolean"
        );
        assert_eq!(
            refused(json!({ "properties": { "a": { "type": "string", "x-mcp-header": "A B" } } })),
            "x-mcp-header of \"a\" must be a non-empty HTTP token, not \"A B\""
        );
        assert_eq!(
            refused(json!({ "properties": { "a": { "type": "string", "x-mcp-header": "" } } })),
            "x-mcp-header of \"a\" must be a non-empty HTTP token, not \"\""
        );
        assert_eq!(
            refused(json!({ "properties": {
                "a": { "type": "string", "x-mcp-header": "Key" },
                "b": { "type": "string", "x-mcp-header": "KEY" },
            } })),
            "x-mcp-header names the header Mcp-Param-KEY on more than one parameter"
        );
        assert_eq!(
            refused(json!({ "properties": { "list": { "type": "array",
                "items": { "type": "string", "x-mcp-header": "Item" } } } })),
            "x-mcp-header at \"/properties/list/items\" is not on a parameter reached through \"properties\" alone"
        );
        assert_eq!(
            refused(
                json!({ "anyOf": [{ "properties": { "a": { "type": "string", "x-mcp-header": "A" } } }] })
            ),
            "x-mcp-header at \"/anyOf/0/properties/a\" is not on a parameter reached through \"properties\" alone"
        );
        assert_eq!(
            refused(json!({ "type": "object", "x-mcp-header": "Root" })),
            "x-mcp-header at \"\" is not on a parameter reached through \"properties\" alone"
        );
    }

    fn headers<'a>(sent: &'a [(&'a str, Sent<'a>)]) -> impl Fn(&str) -> Sent<'a> + 'a {
        move |name| {
            sent.iter()
                .find(|(header, _)| *header == name)
                .map_or(Sent::Absent, |(_, value)| *value)
        }
    }

    #[test]
    fn headers_must_mirror_the_arguments() {
        let params = declared(&region_tool()).expect("valid");
        let checked = |arguments: Value, sent: &[(&str, Sent)]| {
            check(&params, Some(&arguments), headers(sent)).map_err(|refused| refused.to_string())
        };
        let full = json!({ "region": "us-west1", "limits": { "rows": 42, "dry": true } });
        let all = [
            ("mcp-param-region", Sent::Value("us-west1")),
            ("mcp-param-rows", Sent::Value("42.0")),
            ("mcp-param-dry-run", Sent::Value("true")),
        ];
        assert_eq!(checked(full.clone(), &all), Ok(()));
        // Base64 is decoded; a value without the whole sentinel is literal.
        assert_eq!(
            checked(
                json!({ "region": "Hello" }),
                &[("mcp-param-region", Sent::Value("=?base64?SGVsbG8=?="))]
            ),
            Ok(())
        );
        assert_eq!(
            checked(
                json!({ "region": "=?base64?SGVsbG8=" }),
                &[("mcp-param-region", Sent::Value("=?base64?SGVsbG8="))]
            ),
            Ok(())
        );
        // Absent and null arguments take no header.
        assert_eq!(checked(json!({ "limits": { "rows": null } }), &[]), Ok(()));
        assert_eq!(check(&params, None, headers(&[])), Ok(()));

        assert_eq!(
            checked(json!({ "region": "eu" }), &[]),
            Err("header mismatch: the Mcp-Param-Region header is missing: the argument \"region\" is in the body".into())
        );
        assert_eq!(
            checked(json!({}), &[("mcp-param-region", Sent::Value("eu"))]),
            Err("header mismatch: the Mcp-Param-Region header is sent, but the argument \"region\" is not in the body".into())
        );
        assert_eq!(
            checked(json!({ "region": "eu" }), &[("mcp-param-region", Sent::Value("us"))]),
            Err("header mismatch: Mcp-Param-Region header value 'us' does not match body value \"eu\"".into())
        );
        assert_eq!(
            checked(
                json!({ "limits": { "dry": false } }),
                &[("mcp-param-dry-run", Sent::Value("False"))]
            ),
            Err("header mismatch: Mcp-Param-Dry-Run header value 'False' does not match body value false".into())
        );
        assert_eq!(
            checked(
                json!({ "limits": { "rows": 7 } }),
                &[("mcp-param-rows", Sent::Value("seven"))]
            ),
            Err(
                "header mismatch: Mcp-Param-Rows header value 'seven' does not match body value 7"
                    .into()
            )
        );
        assert_eq!(
            checked(json!({ "region": "Hello" }), &[("mcp-param-region", Sent::Value("=?base64?SGVsbG8?="))]),
            Err("header mismatch: Mcp-Param-Region: header value '=?base64?SGVsbG8?=' is not valid base64 UTF-8".into())
        );
        assert_eq!(
            checked(json!({ "region": "Hello" }), &[("mcp-param-region", Sent::Invalid)]),
            Err("header mismatch: the Mcp-Param-Region header must be sent once, in visible ASCII (other values as =?base64?…?=)".into())
        );
    }
}
