//! The operators' console at `/ui`: server-rendered HTML over what the
//! management routes serve (sessions, their backends' health, the audit
//! trail, the registry, a session's tools and rules), and forms to create
//! and delete sessions and to try a tool. No script, no secret: never a credential, a backend URL, a token digest or
//! the admin token; a new session's token is shown once, as by the API.
//!
//! Access is decided by the guard (`RouteKind::Console`, in `routes`, where
//! the pages are mounted); see `access.rs`. The guard also reads and checks
//! every form (`form.rs`, `form_token.rs`).

pub mod catalogue;
pub mod create;
pub mod form;
pub mod form_token;
pub(super) mod html;
pub mod login;
pub mod logins;
pub mod refusal;
pub mod registry;
pub mod sessions;
pub mod try_tool;
