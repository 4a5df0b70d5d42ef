//! Every value a client controls that mcp-mux sends on to a backend, checked
//! here once before any request is built from it: W3C trace context (dropped
//! when malformed, never refused), credentials that become a header, and
//! resource URIs. Tool and prompt names are looked up, never sent as sent;
//! the rest of `params` (arguments, other `_meta` keys) travels as escaped
//! JSON and needs no check.

use serde_json::{Map, Value};

/// The W3C trace context keys: HTTP headers, and `params._meta` keys.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Longest credential mcp-mux puts in a header.
pub const MAX_CREDENTIAL_BYTES: usize = 8192;
/// Longest resource URI a client may send.
pub const MAX_URI_BYTES: usize = 64 * 1024;

/// W3C Trace Context level 1: at most 32 list members in `tracestate`.
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// A `tracestate` key or value is at most 256 characters.
const MAX_TRACESTATE_PART: usize = 256;
/// In a multi-tenant key, the tenant id is at most 241 characters and the
/// system id at most 14.
const MAX_TENANT_ID: usize = 241;
const MAX_SYSTEM_ID: usize = 14;

/// A client's trace context whose parts are both well-formed, to pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext<'a> {
    pub traceparent: &'a str,
    /// `None` when the client sent none, or one that is malformed.
    pub tracestate: Option<&'a str>,
}

impl<'a> TraceContext<'a> {
    /// The trace context a client sent, as W3C Trace Context says to take
    /// it: a malformed `traceparent` voids the whole context (its
    /// `tracestate` is not even read), and a malformed `tracestate` is
    /// dropped whole while the `traceparent` stays.
    pub fn parse(traceparent: Option<&'a str>, tracestate: Option<&'a str>) -> Option<Self> {
        let traceparent = traceparent.filter(|value| is_valid_traceparent(value))?;
        Some(TraceContext {
            traceparent,
            tracestate: tracestate.filter(|value| is_valid_tracestate(value)),
        })
    }
}

/// `version-traceid-parentid-flags` in lowercase hex, neither id all zeros,
/// version `ff` never. A later version than `00` may carry more fields
/// after a `-`, which must be lowercase hex too.
pub fn is_valid_traceparent(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() < 55 {
        return false;
    }
    let field = |range: std::ops::Range<usize>| &bytes[range];
    let version = field(0..2);
    let trace_id = field(3..35);
    let parent_id = field(36..52);
    let flags = field(53..55);
    let dashes = [2, 35, 52].iter().all(|&at| bytes[at] == b'-');
    let fields_are_hex = [version, trace_id, parent_id, flags]
        .iter()
        .all(|field| field.iter().all(is_lower_hex));
    if !dashes || !fields_are_hex || version == b"ff" {
        return false;
    }
    if trace_id.iter().all(|&b| b == b'0') || parent_id.iter().all(|&b| b == b'0') {
        return false;
    }
    match (version, &bytes[55..]) {
        (_, []) => true,
        // Version 00 is exactly 55 characters.
        (b"00", _) => false,
        (_, [b'-', rest @ ..]) => rest.iter().all(|&b| b == b'-' || is_lower_hex(&b)),
        _ => false,
    }
}

/// A comma-separated list of at most 32 `key=value` members (empty members
/// and spaces or tabs around members allowed), each key once.
pub fn is_valid_tracestate(value: &str) -> bool {
    let mut keys: Vec<&str> = Vec::new();
    for member in value.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let Some((key, member_value)) = member.split_once('=') else {
            return false;
        };
        if keys.len() == MAX_TRACESTATE_MEMBERS
            || keys.contains(&key)
            || !is_valid_tracestate_key(key)
            || !is_valid_tracestate_value(member_value)
        {
            return false;
        }
        keys.push(key);
    }
    true
}

/// `simple-key` or `tenant-id@system-id`.
fn is_valid_tracestate_key(key: &str) -> bool {
    let key_char = |b: &u8| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
    };
    let part = |part: &[u8], max: usize, first_may_be_digit: bool| match part.split_first() {
        Some((first, rest)) => {
            part.len() <= max
                && (first.is_ascii_lowercase() || first_may_be_digit && first.is_ascii_digit())
                && rest.iter().all(key_char)
        }
        None => false,
    };
    match key.split_once('@') {
        None => part(key.as_bytes(), MAX_TRACESTATE_PART, false),
        Some((tenant, system)) => {
            part(tenant.as_bytes(), MAX_TENANT_ID, true)
                && part(system.as_bytes(), MAX_SYSTEM_ID, false)
        }
    }
}

/// 1 to 256 printable ASCII characters but `,` and `=`, not ending in a
/// space.
fn is_valid_tracestate_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let allowed = |b: &u8| matches!(b, 0x20..=0x7e) && *b != b',' && *b != b'=';
    !bytes.is_empty()
        && bytes.len() <= MAX_TRACESTATE_PART
        && bytes.iter().all(allowed)
        && bytes.last() != Some(&b' ')
}

fn is_lower_hex(b: &u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(b)
}

/// Takes a malformed `traceparent` or `tracestate` out of a message's
/// `params._meta`, so that what stays there may be passed on as it is: a
/// malformed `traceparent` takes its `tracestate` with it.
pub fn drop_malformed_trace_context(params: &mut Map<String, Value>) {
    let Some(Value::Object(meta)) = params.get_mut("_meta") else {
        return;
    };
    let text = |key| meta.get(key).and_then(Value::as_str);
    let kept = TraceContext::parse(text(TRACEPARENT), text(TRACESTATE));
    let (keep_parent, keep_state) = match kept {
        Some(context) => (true, context.tracestate.is_some()),
        None => (false, false),
    };
    if !keep_parent {
        meta.remove(TRACEPARENT);
    }
    if !keep_state {
        meta.remove(TRACESTATE);
    }
}

/// Why a credential cannot be sent in an HTTP header (or a stdio backend's
/// environment), if it cannot.
pub fn credential_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > MAX_CREDENTIAL_BYTES {
        Some("must be at most 8192 bytes")
    } else if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        Some("must not contain CR or LF")
    } else if value.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()) {
        Some("must be printable ASCII (no control characters)")
    } else if value.trim() != value {
        Some("must not start or end with whitespace")
    } else {
        None
    }
}

/// Why a resource URI a client sent cannot go on to a backend, if it
/// cannot. URIs (RFC 3986) never hold control characters; an IRI's
/// non-ASCII ones pass.
pub fn uri_problem(value: &str) -> Option<String> {
    if value.len() > MAX_URI_BYTES {
        Some(format!("must be at most {MAX_URI_BYTES} bytes"))
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters (CR, LF, NUL, …)".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";

    #[test]
    fn a_well_formed_traceparent_is_taken() {
        assert!(is_valid_traceparent(PARENT));
        assert!(is_valid_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00"
        ));
        // A later version may add fields.
        assert!(is_valid_traceparent(&format!("cc{}-0a", &PARENT[2..])));
        assert!(is_valid_traceparent(&format!("cc{}", &PARENT[2..])));
    }

    #[test]
    fn a_malformed_traceparent_is_refused() {
        let refused = [
            "".to_owned(),
            format!("{PARENT}\n"),
            format!("{PARENT}\r"),
            format!("\n{PARENT}"),
            format!(" {PARENT}"),
            PARENT.replace("0af7", "0AF7"),
            PARENT.replace("-01", "-0\n"),
            PARENT.replace('-', "_"),
            format!("{PARENT}-00"),
            format!("ff{}", &PARENT[2..]),
            format!("cc{}x", &PARENT[2..]),
            format!("cc{}-0\0", &PARENT[2..]),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319-c00f067aa0ba902b7-01".to_owned(),
            "00-+af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01".to_owned(),
            PARENT.replace("00f0", "00fé"),
            format!("{PARENT}{}", "0".repeat(1 << 20)),
        ];
        for value in refused {
            assert!(!is_valid_traceparent(&value), "{value:?}");
        }
    }

    #[test]
    fn a_well_formed_tracestate_is_taken() {
        for value in [
            "vendor=1",
            "a=b,c=d",
            " a=b , ,\tc=d\t",
            "",
            "tenant@system=x y",
            "0tenant@sys=v",
            "a-b*c/d_e=!~",
        ] {
            assert!(is_valid_tracestate(value), "{value:?}");
        }
        let most: Vec<String> = (0..32).map(|n| format!("k{n}=v")).collect();
        assert!(is_valid_tracestate(&most.join(",")));
        let longest = format!("{}={}", "k".repeat(256), "v".repeat(256));
        assert!(is_valid_tracestate(&longest));
    }

    #[test]
    fn a_malformed_tracestate_is_refused() {
        let too_many: Vec<String> = (0..33).map(|n| format!("k{n}=v")).collect();
        let refused = [
            "a=b\nc".to_owned(),
            "a=b\rc".to_owned(),
            "a=b\0c".to_owned(),
            "a=bé".to_owned(),
            format!("a={}", "b".repeat(1 << 20)),
            format!("a={}", "b".repeat(257)),
            format!("{}=b", "k".repeat(257)),
            too_many.join(","),
            "a".to_owned(),
            "a=".to_owned(),
            "a b=c".to_owned(),
            "A=b".to_owned(),
            "0a=b".to_owned(),
            "a=b,a=c".to_owned(),
            "t@abcdefghijklmno=v".to_owned(),
            "t@=v".to_owned(),
            "@s=v".to_owned(),
            "a=b=c".to_owned(),
        ];
        for value in refused {
            assert!(!is_valid_tracestate(&value), "{value:?}");
        }
    }

    #[test]
    fn a_malformed_tracestate_is_dropped_and_the_traceparent_kept() {
        assert_eq!(
            TraceContext::parse(Some(PARENT), Some("a=b\nc")),
            Some(TraceContext {
                traceparent: PARENT,
                tracestate: None
            })
        );
        assert_eq!(
            TraceContext::parse(Some(PARENT), Some("a=b")),
            Some(TraceContext {
                traceparent: PARENT,
                tracestate: Some("a=b")
            })
        );
        assert_eq!(TraceContext::parse(Some("00-x"), Some("a=b")), None);
        assert_eq!(TraceContext::parse(None, Some("a=b")), None);
    }

    #[test]
    fn only_malformed_trace_context_leaves_meta() {
        let cleaned = |meta: Value| {
            let mut params = json!({ "name": "x", "_meta": meta });
            let object = params.as_object_mut().expect("an object");
            drop_malformed_trace_context(object);
            params["_meta"].clone()
        };
        assert_eq!(
            cleaned(json!({ "traceparent": PARENT, "tracestate": "a=b\nc", "k": "\n" })),
            json!({ "traceparent": PARENT, "k": "\n" })
        );
        assert_eq!(
            cleaned(json!({ "traceparent": "00-x\n", "tracestate": "a=b" })),
            json!({})
        );
        assert_eq!(cleaned(json!({ "tracestate": "a=b" })), json!({}));
        assert_eq!(
            cleaned(json!({ "traceparent": PARENT, "tracestate": "a=b" })),
            json!({ "traceparent": PARENT, "tracestate": "a=b" })
        );
        assert_eq!(cleaned(json!({ "traceparent": 7 })), json!({}));
    }

    #[test]
    fn header_splitting_credentials_are_refused() {
        assert_eq!(
            credential_problem("a\r\nX-Evil: 1"),
            Some("must not contain CR or LF")
        );
        assert_eq!(
            credential_problem("a\0b"),
            Some("must be printable ASCII (no control characters)")
        );
        assert_eq!(credential_problem(""), Some("must not be empty"));
        assert_eq!(
            credential_problem(" t"),
            Some("must not start or end with whitespace")
        );
        assert_eq!(credential_problem("hf_abc.DEF-123"), None);
    }

    #[test]
    fn uris_with_control_characters_or_too_long_are_refused() {
        let control = Some("must not contain control characters (CR, LF, NUL, …)".to_owned());
        for bad in ["a\rb", "a\nb", "a\0b", "a\u{7f}b"] {
            assert_eq!(uri_problem(bad), control);
        }
        assert_eq!(uri_problem("file:///é"), None);
        assert_eq!(
            uri_problem(&"a".repeat(65537)),
            Some("must be at most 65536 bytes".to_owned())
        );
    }
}
