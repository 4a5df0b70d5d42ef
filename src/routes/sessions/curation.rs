//! The create-session fields that curate a session's tools and prompts:
//! `tools` and `prompts` (rules keyed by server) and `tool_mode`. Each
//! error names its field; nothing is stored unless all of it is valid.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::mcp::naming;
use crate::mux::item_kind::NamedKind;
use crate::mux::{Curation, ItemRules, PrefixMode, ToolMode};
use crate::routes::error::{ApiError, quoted};

/// Longest allow or deny pattern.
const MAX_PATTERN_LEN: usize = 128;
/// Most entries of one `allow` or `deny` list. Every name a backend lists
/// is tried against each pattern, so the list bounds the work a session's
/// listing costs (benches/rules.rs measures it).
pub const MAX_PATTERNS: usize = 100;
/// Most entries of one `rename` or `description` object.
pub const MAX_NAMED: usize = 1000;
/// Longest replacement description.
const MAX_DESCRIPTION_LEN: usize = 4096;
/// The keys of one server's rules.
const RULE_FIELDS: [&str; 4] = ["allow", "deny", "rename", "description"];

/// How the session's names are made, which a rename must respect.
pub struct Naming<'a> {
    pub servers: &'a [String],
    pub prefix: PrefixMode,
    pub separator: &'a str,
}

/// Reads `tools`, `prompts` and `tool_mode` from a create-session body.
pub fn parse_curation(
    tools: Option<Value>,
    prompts: Option<Value>,
    tool_mode: Option<Value>,
    naming: &Naming<'_>,
) -> Result<Curation, ApiError> {
    // Qualified name → the field whose rename makes it, across both kinds'
    // namespaces separately.
    let mut tools_made = HashMap::new();
    let tools = parse_kind(NamedKind::Tool, tools, naming, &mut tools_made)?;
    let prompts = parse_kind(NamedKind::Prompt, prompts, naming, &mut HashMap::new())?;
    let tool_mode = match tool_mode {
        None | Some(Value::Null) => ToolMode::default(),
        Some(Value::String(mode)) if mode == "direct" => ToolMode::Direct,
        Some(Value::String(mode)) if mode == "search" => ToolMode::Search,
        Some(_) => {
            return Err(ApiError::bad_request(
                "tool_mode",
                "must be \"direct\" or \"search\"",
            ));
        }
    };
    Ok(Curation {
        tools,
        prompts,
        tool_mode,
    })
}

fn parse_kind(
    kind: NamedKind,
    value: Option<Value>,
    naming: &Naming<'_>,
    made: &mut HashMap<String, String>,
) -> Result<BTreeMap<String, ItemRules>, ApiError> {
    let field = kind.field();
    let by_server = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(by_server)) => by_server,
        Some(_) => {
            return Err(ApiError::bad_request(
                field,
                "must be an object keyed by server name",
            ));
        }
    };
    let mut parsed = BTreeMap::new();
    for (server, rules) in by_server {
        let field = format!("{field}.{server}");
        if !naming.servers.contains(&server) {
            return Err(ApiError::bad_request(
                field,
                "names a server that is not in servers",
            ));
        }
        let Value::Object(rules) = rules else {
            return Err(ApiError::bad_request(
                field,
                format!("must be an object with {}", RULE_FIELDS.join(", ")),
            ));
        };
        let prefix = naming
            .prefix
            .prefix(&server, naming.servers.len(), naming.separator);
        let rules = parse_rules(kind, &field, rules, &prefix, made)?;
        parsed.insert(server, rules);
    }
    Ok(parsed)
}

fn parse_rules(
    kind: NamedKind,
    field: &str,
    mut rules: Map<String, Value>,
    prefix: &str,
    made: &mut HashMap<String, String>,
) -> Result<ItemRules, ApiError> {
    if let Some(unknown) = rules
        .keys()
        .find(|key| !RULE_FIELDS.contains(&key.as_str()))
    {
        return Err(ApiError::bad_request(
            format!("{field}.{unknown}"),
            format!("unknown field; expected {}", RULE_FIELDS.join(", ")),
        ));
    }
    let allow = match rules.remove("allow") {
        None | Some(Value::Null) => None,
        Some(value) => Some(patterns(&format!("{field}.allow"), value)?),
    };
    let deny = match rules.remove("deny") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => patterns(&format!("{field}.deny"), value)?,
    };
    let rename = texts(&format!("{field}.rename"), rules.remove("rename"))?;
    for (original, name) in &rename {
        let field = format!("{field}.rename.{original}");
        let qualified = format!("{prefix}{name}");
        if !naming::is_valid_name(&qualified) {
            return Err(ApiError::bad_request(
                field,
                format!(
                    "makes the {} name {}, which is not 1 to {} of A-Z a-z 0-9 _ -",
                    kind.noun(),
                    quoted(&qualified),
                    naming::MAX_NAME_LEN
                ),
            ));
        }
        if let Some(other) = made.insert(qualified.clone(), field.clone()) {
            return Err(ApiError::bad_request(
                field,
                format!("makes {}, which {other} makes too", quoted(&qualified)),
            ));
        }
    }
    let description = texts(&format!("{field}.description"), rules.remove("description"))?;
    if let Some((original, _)) = description
        .iter()
        .find(|(_, text)| text.chars().count() > MAX_DESCRIPTION_LEN)
    {
        return Err(ApiError::bad_request(
            format!("{field}.description.{original}"),
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    let rules = ItemRules {
        allow,
        deny,
        rename,
        description,
    };
    refuse_hiding_renames(kind, field, &rules, prefix)?;
    Ok(rules)
}

/// Refuses a rename onto the name of an item the same rules show under its
/// own name, which would hide that item: the backend's list is not known
/// until it is listed, but a name the rules give (a plain `allow` entry, a
/// `description` key) is one the creator expects it to hold. A clash found
/// only when listing is reported then instead (see `catalogue`).
fn refuse_hiding_renames(
    kind: NamedKind,
    field: &str,
    rules: &ItemRules,
    prefix: &str,
) -> Result<(), ApiError> {
    if rules.rename.is_empty() {
        return Ok(());
    }
    let compiled = rules.compile();
    let allowed = rules
        .allow
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, pattern)| !pattern.contains('*'))
        .map(|(index, name)| (name.as_str(), format!("{field}.allow[{index}]")));
    let described = rules
        .description
        .keys()
        .map(|name| (name.as_str(), format!("{field}.description.{name}")));
    let mut named: HashMap<&str, String> = HashMap::new();
    for (name, where_named) in allowed.chain(described) {
        named.entry(name).or_insert(where_named);
    }
    for (original, new) in &rules.rename {
        if new == original || !compiled.shows(original) || rules.rename.contains_key(new) {
            continue;
        }
        if let Some(where_named) = named.get(new.as_str())
            && compiled.shows(new)
        {
            return Err(ApiError::bad_request(
                format!("{field}.rename.{original}"),
                format!(
                    "makes {}, which {} {} has (named in {where_named})",
                    quoted(&format!("{prefix}{new}")),
                    kind.noun(),
                    quoted(new)
                ),
            ));
        }
    }
    Ok(())
}

/// An `allow` or `deny` list: names or `*` patterns.
fn patterns(field: &str, value: Value) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = value else {
        return Err(ApiError::bad_request(
            field,
            "must be an array of names or * patterns",
        ));
    };
    if items.len() > MAX_PATTERNS {
        return Err(ApiError::bad_request(
            field,
            format!(
                "holds {} patterns; at most {MAX_PATTERNS} are allowed",
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(pattern)
                if !pattern.is_empty() && pattern.chars().count() <= MAX_PATTERN_LEN =>
            {
                Ok(pattern)
            }
            _ => Err(ApiError::bad_request(
                format!("{field}[{index}]"),
                format!("must be a name or * pattern of 1 to {MAX_PATTERN_LEN} characters"),
            )),
        })
        .collect()
}

/// A `rename` or `description` object: original name → text.
fn texts(field: &str, value: Option<Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let entries = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            return Err(ApiError::bad_request(
                field,
                "must be an object keyed by the backend's own names",
            ));
        }
    };
    if entries.len() > MAX_NAMED {
        return Err(ApiError::bad_request(
            field,
            format!(
                "holds {} names; at most {MAX_NAMED} are allowed",
                entries.len()
            ),
        ));
    }
    entries
        .into_iter()
        .map(|(original, text)| match text {
            Value::String(text) if !text.is_empty() => Ok((original, text)),
            _ => Err(ApiError::bad_request(
                format!("{field}.{original}"),
                "must be a non-empty string",
            )),
        })
        .collect()
}
