//! Integration tests: the whole gateway in-process, against real rmcp
//! backends and wiremock backends that misbehave on demand.

mod helpers;

mod access;
mod audit;
mod backend_failures;
mod bounds;
mod bridge;
mod cli;
mod client_values;
mod cluster;
mod create_session;
mod curation;
mod failover;
mod faults;
mod host_sign_in;
mod hostile;
mod identity;
mod lifetimes;
mod limits;
mod mcp_endpoint;
mod metrics;
mod oauth_backend;
mod oauth_client;
mod oauth_discovery;
mod oauth_registration;
mod oauth_sessions;
mod openapi;
mod path_spellings;
mod persistence;
mod registry_reload;
mod resources;
mod rotate_key;
mod routing;
mod search_mode;
mod search_model;
mod shared_lists;
mod stateless;
mod store;
mod store_oauth;
mod streaming;
mod timeouts;
mod tools_http;
mod traces;
mod transports;
mod ui;
