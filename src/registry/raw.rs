//! The shape of `registry.yaml` as serde reads it: every key optional, unknown
//! keys refused. Nothing here is checked beyond types; `validate` does that.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::Deserialize;
use serde::de::{self, Deserializer, EnumAccess, VariantAccess, Visitor};

use super::model::Transport;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    #[serde(default)]
    pub tool_separator: Option<String>,
    #[serde(default)]
    pub servers: BTreeMap<String, RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    #[serde(default)]
    pub transport: Option<Transport>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub auth: Option<RawAuth>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub max_timeout_ms: Option<u64>,
    #[serde(default)]
    pub max_concurrent_calls: Option<usize>,
    #[serde(default)]
    pub max_concurrent_calls_per_session: Option<usize>,
    #[serde(default)]
    pub retry: Option<RawRetry>,
    #[serde(default)]
    pub circuit_breaker: Option<RawBreaker>,
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    #[serde(default)]
    pub open_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub(super) enum RawAuth {
    None,
    Bearer {
        #[serde(default)]
        env: Option<String>,
    },
    ApiKey {
        #[serde(default)]
        header: Option<String>,
        #[serde(default)]
        env: Option<String>,
    },
    Oauth(RawOAuth),
}

/// `auth: { type: oauth }`: mcp-mux is the backend's OAuth client.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub authorize_params: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub resource: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    #[serde(default)]
    pub initial_interval_ms: Option<u64>,
    #[serde(default)]
    pub max_interval_ms: Option<u64>,
    #[serde(default)]
    pub max_elapsed_ms: Option<u64>,
}

/// The names an unknown `transport` is told to choose from.
static TRANSPORT_NAMES: LazyLock<[&str; Transport::ALL.len()]> =
    LazyLock::new(|| Transport::ALL.map(Transport::name));

// Read as a unit-variant enum, as `#[derive(Deserialize)]` would, so that a
// YAML tag (`!stdio`) is accepted and mistakes get serde's messages; written
// by hand only so that the names come from `Transport::name`.
impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum("Transport", &TRANSPORT_NAMES[..], TransportVisitor)
    }
}

struct TransportVisitor;

impl<'de> Visitor<'de> for TransportVisitor {
    type Value = Transport;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("enum Transport")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Transport, A::Error> {
        let (name, variant): (String, _) = data.variant()?;
        let transport = Transport::ALL
            .into_iter()
            .find(|transport| transport.name() == name)
            .ok_or_else(|| de::Error::unknown_variant(&name, &TRANSPORT_NAMES[..]))?;
        variant.unit_variant()?;
        Ok(transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::error_of;

    #[test]
    fn unknown_keys_and_auth_types_are_refused() {
        assert!(
            error_of("servers:\n  a:\n    url: http://a/mcp\n    urll: x\n")
                .contains("unknown field")
        );
        assert!(
            error_of("servers:\n  a:\n    url: http://a/mcp\n    auth: { type: saml }\n")
                .contains("unknown variant")
        );
        assert!(
            error_of("servers:\n  a:\n    transport: websocket\n    url: http://a/mcp\n")
                .contains("unknown variant")
        );
    }

    #[test]
    fn each_transport_is_read_by_its_name_or_its_tag() {
        for transport in Transport::ALL {
            let name = serde_yaml::Value::String(transport.name().to_owned());
            assert_eq!(
                serde_yaml::from_value::<Transport>(name).ok(),
                Some(transport)
            );
            let tagged = serde_yaml::from_str(&format!("!{transport}")).expect("YAML");
            assert_eq!(
                serde_yaml::from_value::<Transport>(tagged).ok(),
                Some(transport)
            );
        }
    }

    #[test]
    fn an_unknown_transport_is_refused_listing_the_known_ones() {
        assert_eq!(
            error_of("servers:\n  a:\n    transport: streamable-http\n    url: http://a/mcp\n"),
            "registry registry.yaml is not valid: unknown variant `streamable-http`, \
             expected one of `streamable_http`, `sse`, `stdio`"
        );
        assert_eq!(
            error_of("servers:\n  a:\n    transport: !stdio x\n    command: x\n"),
            "registry registry.yaml is not valid: invalid type: string \"x\", expected unit"
        );
    }
}
