//! The requests about items: merged lists and their pages, and the use of
//! a tool, prompt or resource, routed to the backend that owns it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Map, Value, json};

use super::slot::{BackendSlot, Listed};
use super::{ClientCall, McpSession};
use crate::backend::{BackendError, Replay, Reply};
use crate::mcp::naming;
use crate::mcp::param_headers::ParamHeader;
use crate::mcp::request::{ByName, ByUri, Completion, CompletionTarget, Method};
use crate::mux::audit::AuditedCall;
use crate::mux::catalogue::{BackendItems, Catalogue, Route};
use crate::mux::curation::{SessionCuration, ToolMode};
use crate::mux::error::CallError;
use crate::mux::item_kind::{Listing, NamedKind, RESOURCE_TEMPLATES, RESOURCES};
use crate::mux::payload::{Payload, passed_on};

impl McpSession {
    /// A page of a merged list: the first, freshly merged, or the one
    /// `cursor` names.
    pub(super) async fn list(
        &self,
        method: Method,
        cursor: Option<String>,
    ) -> Result<Payload, CallError> {
        let listing = match method {
            Method::ToolsList => NamedKind::Tool.listing(),
            Method::PromptsList => NamedKind::Prompt.listing(),
            Method::ResourceTemplatesList => RESOURCE_TEMPLATES,
            _ => RESOURCES,
        };
        if let Some(cursor) = cursor {
            return Ok(Payload::Json(self.pager.next_page(listing, &cursor)?));
        }
        let items = match method {
            Method::ToolsList => self.current_catalogue(NamedKind::Tool).await.items.clone(),
            Method::PromptsList => self
                .current_catalogue(NamedKind::Prompt)
                .await
                .items
                .clone(),
            Method::ResourceTemplatesList => self.merged_resources(listing, "uriTemplate").await,
            _ => self.merged_resources(listing, "uri").await,
        };
        Ok(Payload::Json(self.pager.first_page(listing, items)))
    }

    /// `tools/call` or `prompts/get`: routed to the owning backend under the
    /// item's own name; the backend's result is passed back as it came.
    pub(super) async fn use_item(
        &self,
        kind: NamedKind,
        item: ByName,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        let ByName { name, mut params } = item;
        let audited = match (kind, &self.audit) {
            (NamedKind::Tool, Some(context)) => Some(AuditedCall::start(context, &self.id, &name)),
            _ => None,
        };
        let (routed, outcome) = match self.route_named(kind, name).await {
            Ok(route) => {
                params.insert("name".into(), Value::String(route.name.clone()));
                // The slot that answered: the backend's or a fallback's.
                let (answered, outcome) = self
                    .send_failing_over(
                        route.backend,
                        kind.use_method().as_str(),
                        params,
                        route.replay,
                        call,
                    )
                    .await;
                (Some((answered, route.name)), outcome.and_then(passed_on))
            }
            Err(error) => (None, Err(error)),
        };
        if let Some(audited) = audited {
            let routed = routed
                .as_ref()
                .map(|(slot, tool)| (slot.name(), tool.as_str()));
            audited.finish(routed, &outcome);
        }
        outcome
    }

    /// Where a qualified name leads, listing the backends again if the name
    /// is unknown and the list is old enough.
    async fn route_named(&self, kind: NamedKind, name: String) -> Result<Route, CallError> {
        let mut catalogue = self.current_catalogue(kind).await;
        if let Some(route) = catalogue.route(&name) {
            return Ok(route.clone());
        }
        if catalogue.built_at.elapsed() >= self.timings.miss_refresh_interval {
            catalogue = self.refresh_catalogue(kind, Some(catalogue.built_at)).await;
            if let Some(route) = catalogue.route(&name) {
                return Ok(route.clone());
            }
        }
        Err(self.missing(kind, name, &catalogue))
    }

    /// Why a name leads nowhere: its backend (by prefix, or the only one)
    /// is unavailable right now, or its list failed (it is busy, say), or
    /// else no backend has it.
    fn missing(&self, kind: NamedKind, name: String, catalogue: &Catalogue) -> CallError {
        for slot in &self.backends {
            if !(slot.prefix.is_empty() || name.starts_with(&slot.prefix)) {
                continue;
            }
            if let Err(unavailable) = slot.availability(self.timings.recheck_interval) {
                return unavailable.into();
            }
            if let Some(error) = catalogue.left_out(slot.index) {
                return CallError::Backend(error.clone());
            }
        }
        CallError::Unknown { kind, name }
    }

    /// `resources/list` or `resources/templates/list`, merged: every URI (or
    /// URI template) becomes `<server>+<uri>`, so equal URIs of two backends
    /// stay apart and any URI a client expands from a template routes back.
    async fn merged_resources(&self, listing: Listing, uri_key: &str) -> Arc<Vec<Value>> {
        let mut merged = Vec::new();
        for (slot, items) in self.list_everywhere(listing).await {
            merged.extend(items.into_iter().map(|mut item| {
                if let Some(Value::String(uri)) = item.get_mut(uri_key) {
                    *uri = slot.qualify_uri(uri);
                }
                item
            }));
        }
        Arc::new(merged)
    }

    /// The backend that owns a URI a client sent (its index), and the
    /// backend's own URI. A URI without a server part (one a tool result
    /// linked to, say) goes to the only backend offering resources, if there
    /// is just one.
    pub(super) fn resolve_uri(&self, uri: &str) -> Result<(usize, String), CallError> {
        // A session that does not prefix its one backend passes URIs through.
        if let [only] = self.backends.as_slice()
            && only.prefix.is_empty()
        {
            return Ok((0, uri.to_owned()));
        }
        if let Some((server, original)) = naming::split_uri(uri)
            && let Some(index) = self.backends.iter().position(|slot| slot.name() == server)
        {
            return Ok((index, original.to_owned()));
        }
        let mut offering =
            (0..self.backends.len()).filter(|&index| self.backends[index].declares("resources"));
        match (offering.next(), offering.next()) {
            (Some(only), None) => Ok((only, uri.to_owned())),
            _ => Err(CallError::UnknownResource {
                uri: uri.to_owned(),
            }),
        }
    }

    /// Routes a request about a resource to the backend that owns it;
    /// returns that backend's index and its answer.
    async fn send_by_uri(
        &self,
        method: Method,
        resource: ByUri,
        call: &ClientCall<'_>,
    ) -> Result<(usize, Reply), CallError> {
        let ByUri { uri, mut params } = resource;
        let (index, original) = self.resolve_uri(&uri)?;
        params.insert("uri".into(), Value::String(original));
        let reply = self
            .send_to_backend(index, method.as_str(), params, Replay::Safe, call)
            .await?;
        Ok((index, reply))
    }

    pub(super) async fn route_by_uri(
        &self,
        method: Method,
        resource: ByUri,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        passed_on(self.send_by_uri(method, resource, call).await?.1)
    }

    /// `resources/read`, routed by URI; the URIs in the contents are given
    /// the server part again, so they match what `resources/list` showed.
    pub(super) async fn read_resource(
        &self,
        resource: ByUri,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        let (index, reply) = self
            .send_by_uri(Method::ResourcesRead, resource, call)
            .await?;
        let slot = &self.backends[index];
        let raw = match reply {
            Reply::Result(raw) => raw,
            Reply::Error(error) => return Err(CallError::Relayed { error }),
        };
        let mut result: Value = serde_json::from_str(raw.get())
            .map_err(|_| slot.protocol("resources/read result is not JSON"))?;
        if let Some(Value::Array(contents)) = result.get_mut("contents") {
            for content in contents {
                if let Some(Value::String(uri)) = content.get_mut("uri") {
                    *uri = slot.qualify_uri(uri);
                }
            }
        }
        Ok(Payload::Json(result))
    }

    /// `completion/complete`, routed by its reference: a prompt's qualified
    /// name or a resource template's qualified URI.
    pub(super) async fn complete(
        &self,
        completion: Completion,
        call: &ClientCall<'_>,
    ) -> Result<Payload, CallError> {
        let Completion {
            target,
            mut reference,
            mut params,
        } = completion;
        let index = match target {
            CompletionTarget::Prompt { name } => {
                let route = self.route_named(NamedKind::Prompt, name).await?;
                reference.insert("name".into(), Value::String(route.name));
                route.backend
            }
            CompletionTarget::Resource { uri } => {
                let (index, original) = self.resolve_uri(&uri)?;
                reference.insert("uri".into(), Value::String(original));
                index
            }
        };
        params.insert("ref".into(), Value::Object(reference));
        passed_on(
            self.send_to_backend(
                index,
                Method::CompletionComplete.as_str(),
                params,
                Replay::Safe,
                call,
            )
            .await?,
        )
    }

    /// `logging/setLevel`, told to every available backend that logs; the
    /// messages they send come back as `notifications/message`.
    pub(super) async fn set_log_level(
        &self,
        params: Map<String, Value>,
    ) -> Result<Payload, CallError> {
        let params = Value::Object(params);
        let method = Method::LoggingSetLevel.as_str();
        let logging = self.backends.iter().filter(|slot| {
            slot.availability(self.timings.recheck_interval).is_ok() && slot.declares("logging")
        });
        let outcomes = join_all(logging.map(|slot| async {
            (
                slot.name(),
                slot.session
                    .request(method, Some(&params), Replay::Safe)
                    .await,
            )
        }))
        .await;
        for (server, outcome) in outcomes {
            match outcome {
                Ok(Reply::Result(_)) => {}
                Ok(Reply::Error(error)) => {
                    tracing::debug!(server, message = %error.message, "backend refused logging/setLevel")
                }
                Err(error) => {
                    tracing::warn!(server, %error, "logging/setLevel did not reach the backend")
                }
            }
        }
        Ok(Payload::Json(json!({})))
    }

    /// The session's tools, after its rules: every one, not a page.
    pub async fn tools(&self) -> Arc<Vec<Value>> {
        self.current_catalogue(NamedKind::Tool).await.items.clone()
    }

    /// The session's tools or prompts, after its rules: each with the
    /// server it comes from, its name there, and the rules that renamed or
    /// described it. What the console shows; clients see the items alone.
    pub async fn listed_items(&self, kind: NamedKind) -> Vec<ListedItem> {
        let catalogue = self.current_catalogue(kind).await;
        catalogue
            .items
            .iter()
            .filter_map(|item| {
                let name = item.get("name").and_then(Value::as_str)?;
                let route = catalogue.route(name)?;
                let server = self.backends.get(route.backend)?.name();
                let rules = self.curation.compiled(kind, server);
                let field = |rule: &str| format!("{}.{server}.{rule}.{}", kind.field(), route.name);
                // A rename whose new name another item kept was not applied.
                let clashed = catalogue
                    .rename_clashes
                    .iter()
                    .any(|clash| clash.server == server && clash.original == route.name);
                let renamed_by = rules
                    .and_then(|rules| rules.renamed(&route.name))
                    .filter(|_| !clashed)
                    .map(|_| field("rename"));
                let described_by = rules
                    .and_then(|rules| rules.described(&route.name))
                    .map(|_| field("description"));
                Some(ListedItem {
                    item: item.clone(),
                    server: server.to_owned(),
                    original: route.name.clone(),
                    renamed_by,
                    described_by,
                })
            })
            .collect()
    }

    /// The session's resources, merged under their `<server>+<uri>` URIs:
    /// every one, not a page.
    pub async fn resources(&self) -> Arc<Vec<Value>> {
        self.merged_resources(RESOURCES, "uri").await
    }

    /// The parameters a call of tool `name` mirrors into `Mcp-Param-*`
    /// headers, as its listed `inputSchema` declares them: None for a tool
    /// that declares none, or that the list does not hold.
    pub async fn param_headers(&self, name: &str) -> Option<Arc<[ParamHeader]>> {
        self.current_catalogue(NamedKind::Tool)
            .await
            .route(name)?
            .param_headers
            .clone()
    }

    /// The session's merged list of `kind`: the kept one while it is fresh.
    pub(super) async fn current_catalogue(&self, kind: NamedKind) -> Arc<Catalogue> {
        match self.catalogues.fresh(kind) {
            Some(catalogue) => catalogue,
            None => self.refresh_catalogue(kind, None).await,
        }
    }

    /// One list from every available backend at once, each within twice its
    /// call timeout. A backend that is unavailable or fails to list is left
    /// out, and logged.
    pub(super) async fn list_everywhere(
        &self,
        listing: Listing,
    ) -> Vec<(&Arc<BackendSlot>, Vec<Value>)> {
        self.list_everywhere_noting_failures(listing)
            .await
            .0
            .into_iter()
            .map(|(slot, listed)| (slot, listed.items))
            .collect()
    }

    /// [`Self::list_everywhere`], with the backends whose exchange failed
    /// and why.
    async fn list_everywhere_noting_failures(
        &self,
        listing: Listing,
    ) -> (Vec<(&Arc<BackendSlot>, Listed)>, Vec<(usize, BackendError)>) {
        let lists =
            join_all((0..self.backends.len()).map(|index| self.list_failing_over(index, listing)))
                .await;
        let mut listed = Vec::new();
        let mut failed = Vec::new();
        for (slot, list) in self.backends.iter().zip(lists) {
            match list {
                Ok(items) => listed.push((slot, items)),
                Err(error) => {
                    tracing::warn!(server = slot.name(), method = listing.method.as_str(), %error, "backend left out of the list");
                    if let CallError::Backend(error) = error {
                        failed.push((slot.index, error));
                    }
                }
            }
        }
        (listed, failed)
    }

    /// One backend session's list, within twice its call timeout.
    pub(super) async fn list_within_deadline(
        &self,
        slot: &Arc<BackendSlot>,
        listing: Listing,
    ) -> Result<Listed, CallError> {
        slot.availability(self.timings.recheck_interval)?;
        let deadline = slot.session.server().timeout * 2;
        match tokio::time::timeout(deadline, slot.list(listing)).await {
            Ok(listed) => listed,
            Err(_) => Err(CallError::Backend(BackendError::Timeout {
                server: slot.name().to_owned(),
                timeout: deadline,
            })),
        }
    }

    /// Lists the items of `kind` of every available backend and rebuilds
    /// the routing table, for every MCP session of the session: unless a
    /// listing running meanwhile made one newer than `older_than` (the
    /// list the caller found wanting), which it then shares.
    pub(super) async fn refresh_catalogue(
        &self,
        kind: NamedKind,
        older_than: Option<Instant>,
    ) -> Arc<Catalogue> {
        let listing = match self.catalogues.listing(kind, older_than).await {
            Ok(made_meanwhile) => return made_meanwhile,
            Err(listing) => listing,
        };
        let (listed, left_out) = self.list_everywhere_noting_failures(kind.listing()).await;
        // Kept no longer than the gateway's bound or any backend's `ttlMs`,
        // and not at all while a backend is missing from it.
        let mut lives = self.list_ttl();
        if !left_out.is_empty() {
            lives = Duration::ZERO;
        }
        let lists: Vec<ListedItems> = listed
            .into_iter()
            .map(|(slot, listed)| {
                if let Some(ttl) = listed.ttl {
                    lives = lives.min(ttl);
                }
                if kind == NamedKind::Tool {
                    let names: Vec<&str> = listed
                        .items
                        .iter()
                        .filter_map(|item| item.get("name").and_then(Value::as_str))
                        .collect();
                    // Its fallbacks too: a call they answer counts under
                    // their name, with the tool names this list gave.
                    let fallbacks = self.fallbacks.iter().filter(|f| f.of == slot.index);
                    for server in
                        std::iter::once(slot.name()).chain(fallbacks.map(|f| f.slot.name()))
                    {
                        self.catalogues.note_tools(server, names.iter().copied());
                    }
                }
                ListedItems {
                    backend: slot.index,
                    server: slot.name().to_owned(),
                    prefix: slot.prefix.clone(),
                    items: listed.items,
                }
            })
            .collect();
        // Rules over a long list cost CPU: merged on the blocking pool, so
        // that this worker's other requests (and `/healthz`) never wait.
        // So is a search-mode session's index, unless the list is unchanged.
        let curation = self.curation.clone();
        let previous = self.catalogues.latest(kind);
        let searched = kind == NamedKind::Tool && curation.rules.tool_mode == ToolMode::Search;
        let merged = tokio::task::spawn_blocking(move || {
            let catalogue = merge(kind, &curation, lists);
            if let Some(previous) = previous {
                catalogue.adopt_indexes(&previous);
            }
            if searched {
                catalogue.index();
            }
            catalogue
        })
        .await;
        let mut catalogue = merged.unwrap_or_else(|error| {
            tracing::error!(%error, kind = kind.noun(), "merging the lists failed");
            lives = Duration::ZERO;
            Catalogue::build(kind, Vec::new())
        });
        catalogue.left_out = left_out;
        catalogue.changes_seen = listing.changes;
        catalogue.expires_at = catalogue.built_at + lives;
        let catalogue = Arc::new(catalogue);
        listing.keep(catalogue.clone());
        catalogue
    }
}

/// A tool or prompt as a session shows it, and where it comes from.
#[derive(Debug, Clone)]
pub struct ListedItem {
    /// The item as clients see it, under its qualified name.
    pub item: Value,
    /// The server whose backend lists it.
    pub server: String,
    /// Its name on that backend.
    pub original: String,
    /// The rule that gave it its name, as a field path:
    /// `tools.<server>.rename.<original>`.
    pub renamed_by: Option<String>,
    /// The rule that gave it its description:
    /// `tools.<server>.description.<original>`.
    pub described_by: Option<String>,
}

/// One backend's list, owned, on its way to the blocking pool.
struct ListedItems {
    backend: usize,
    server: String,
    prefix: String,
    items: Vec<Value>,
}

/// Merges backend lists under the session's rules, and notes what the
/// rules matched: the rules that matched nothing, the renames that clashed.
fn merge(kind: NamedKind, curation: &SessionCuration, lists: Vec<ListedItems>) -> Catalogue {
    for list in &lists {
        let names: Vec<&str> = list
            .items
            .iter()
            .filter_map(|item| item.get("name").and_then(Value::as_str))
            .collect();
        curation.note_listed(kind, &list.server, &names);
    }
    let servers: Vec<String> = lists.iter().map(|list| list.server.clone()).collect();
    let sources = lists
        .into_iter()
        .zip(&servers)
        .map(|(list, server)| BackendItems {
            backend: list.backend,
            server,
            prefix: list.prefix,
            items: list.items,
            rules: curation.compiled(kind, server),
        })
        .collect();
    let catalogue = Catalogue::build(kind, sources);
    for server in &servers {
        let clashing = catalogue
            .rename_clashes
            .iter()
            .filter(|clash| &clash.server == server)
            .map(|clash| clash.describe(kind))
            .collect();
        curation.note_clashes(kind, server, clashing);
    }
    catalogue
}
