//! Server and tool names, as arbitrary as a registry and backends could make
//! them, through the naming functions and the catalogue that merges one
//! MCP session's tools.
//!
//! Invariants: no panic; every name clients see matches
//! `^[A-Za-z0-9_-]{1,64}$`; names are stable; no two tools share a name, and
//! a tool that could not get a name of its own is reported as a conflict,
//! never dropped silently; a name that needed no change is kept; without
//! conflicts, names do not depend on the order backends list their tools.

#![no_main]

use std::collections::{BTreeMap, HashSet};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcp_mux::mcp::naming;
use mcp_mux::mux::catalogue::{BackendItems, Catalogue};
use mcp_mux::mux::item_kind::NamedKind;
use serde_json::{Value, json};

#[derive(Arbitrary, Debug)]
struct Session {
    separator: String,
    /// Whether names get `<server><separator>` in front.
    prefixed: bool,
    prompts: bool,
    backends: Vec<Backend>,
}

#[derive(Arbitrary, Debug)]
struct Backend {
    server: String,
    tools: Vec<String>,
}

fuzz_target!(|session: Session| {
    let kind = if session.prompts {
        NamedKind::Prompt
    } else {
        NamedKind::Tool
    };
    let prefixes: Vec<String> = session
        .backends
        .iter()
        .map(|backend| {
            if session.prefixed {
                format!("{}{}", backend.server, session.separator)
            } else {
                String::new()
            }
        })
        .collect();

    for (backend, prefix) in session.backends.iter().zip(&prefixes) {
        for tool in &backend.tools {
            let name = naming::qualify(prefix, tool);
            assert!(naming::is_valid_name(&name), "qualify made {name:?}");
            assert_eq!(name, naming::qualify(prefix, tool), "qualify is not stable");
            let hashed = naming::with_hash(&name, prefix, tool);
            assert!(naming::is_valid_name(&hashed), "with_hash made {hashed:?}");
        }
    }

    let build = |reversed: bool| {
        let mut sources: Vec<BackendItems<'_>> = session
            .backends
            .iter()
            .zip(&prefixes)
            .enumerate()
            .map(|(index, (backend, prefix))| {
                let mut items: Vec<Value> = backend
                    .tools
                    .iter()
                    .map(|tool| json!({ "name": tool }))
                    .collect();
                if reversed {
                    items.reverse();
                }
                BackendItems {
                    backend: index,
                    server: &backend.server,
                    prefix: prefix.clone(),
                    items,
                    rules: None,
                }
            })
            .collect();
        if reversed {
            sources.reverse();
        }
        Catalogue::build(kind, sources)
    };
    let catalogue = build(false);

    // What each listed tool became: (backend, original) -> name.
    let mut named = BTreeMap::new();
    for item in catalogue.items.iter() {
        let name = item["name"].as_str().expect("every item has a name");
        assert!(naming::is_valid_name(name), "the catalogue made {name:?}");
        let route = catalogue.route(name).expect("every listed name routes");
        let previous = named.insert((route.backend, route.name.clone()), name.to_owned());
        assert_eq!(previous, None, "one tool listed under two names");
    }
    let names: HashSet<&String> = named.values().collect();
    assert_eq!(names.len(), named.len(), "two tools share a name");

    let mut listed = 0;
    let mut distinct = HashSet::new();
    for (index, (backend, prefix)) in session.backends.iter().zip(&prefixes).enumerate() {
        for tool in &backend.tools {
            listed += 1;
            distinct.insert((index, tool.clone()));
            let given = named.get(&(index, tool.clone()));
            let reported = catalogue
                .conflicts
                .iter()
                .any(|c| c.server == backend.server && &c.original == tool);
            assert!(
                given.is_some() || reported,
                "{tool:?} of backend {index} vanished without a conflict"
            );
            let plain = format!("{prefix}{tool}");
            if naming::is_valid_name(&plain) && catalogue.conflicts.is_empty() {
                assert_eq!(given, Some(&plain), "a valid name was changed");
            }
        }
    }
    assert_eq!(named.len() + catalogue.conflicts.len(), listed);
    assert!(named.len() <= distinct.len());

    if catalogue.conflicts.is_empty() {
        let reversed = build(true);
        assert!(reversed.conflicts.is_empty(), "conflicts depend on order");
        for (key, name) in &named {
            let route = reversed.route(name).expect("the name exists in any order");
            assert_eq!(
                (route.backend, &route.name),
                (key.0, &key.1),
                "{name} moved"
            );
        }
        assert_eq!(reversed.items.len(), catalogue.items.len());
    }
});
