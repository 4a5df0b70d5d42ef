//! The merged lists of a session's tools and prompts, kept for every MCP
//! session open on it: a hundred clients of one session list the backends
//! once, not a hundred times. A list is kept until a backend announces a
//! change (on any of those MCP sessions), or until it is older than its
//! time to live: the shortest `ttlMs` a backend gave, within the gateway's
//! own bound. One listing runs at a time per kind; requests that arrive
//! meanwhile wait for it and share its result.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::catalogue::Catalogue;
use super::item_kind::NamedKind;
use super::tool_calls::ToolListings;

/// One kind's merged list, and the count of changes announced, so that a
/// change during a listing leaves the result not fresh.
#[derive(Default)]
struct Kept {
    catalogue: std::sync::RwLock<Option<Arc<Catalogue>>>,
    changes: AtomicU64,
    /// Held while a listing runs.
    listing: tokio::sync::Mutex<()>,
}

/// The merged lists of one session, shared with its MCP sessions' backend
/// slots, which mark them stale.
#[derive(Default)]
pub struct Catalogues {
    tools: Kept,
    prompts: Kept,
    /// The tools its listings named, for the metrics: a tool's series live
    /// as long as some kept list names it.
    tool_listings: Option<ToolListings>,
}

/// A listing about to run: what it must know of the kept list.
pub(crate) struct Listing<'a> {
    kept: &'a Kept,
    /// The changes counted when it started: a change after that leaves its
    /// result stale.
    pub changes: u64,
    _running: tokio::sync::MutexGuard<'a, ()>,
}

impl Catalogues {
    /// Lists that note the tools they name in `tool_listings`.
    pub(crate) fn noting_tools_in(tool_listings: ToolListings) -> Self {
        Catalogues {
            tool_listings: Some(tool_listings),
            ..Catalogues::default()
        }
    }

    /// A listing of the tools of `server` named `names` (the backend's own).
    pub(crate) fn note_tools<'a>(&self, server: &str, names: impl IntoIterator<Item = &'a str>) {
        if let Some(tool_listings) = &self.tool_listings {
            tool_listings.note(server, names);
        }
    }

    fn of(&self, kind: NamedKind) -> &Kept {
        match kind {
            NamedKind::Tool => &self.tools,
            NamedKind::Prompt => &self.prompts,
        }
    }

    /// A backend announced a change: the next use of the list lists again.
    pub(crate) fn mark_stale(&self, kind: NamedKind) {
        self.of(kind).changes.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn mark_all_stale(&self) {
        self.mark_stale(NamedKind::Tool);
        self.mark_stale(NamedKind::Prompt);
    }

    /// The list kept last, fresh or not.
    pub(crate) fn latest(&self, kind: NamedKind) -> Option<Arc<Catalogue>> {
        self.of(kind)
            .catalogue
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The kept list, unless there is none, a change was announced since
    /// it was listed, or it has outlived its time to live.
    pub(crate) fn fresh(&self, kind: NamedKind) -> Option<Arc<Catalogue>> {
        let kept = self.of(kind);
        let catalogue = self.latest(kind)?;
        let unchanged = catalogue.changes_seen == kept.changes.load(Ordering::Acquire);
        (unchanged && catalogue.expires_at > Instant::now()).then_some(catalogue)
    }

    /// Waits for the listing of `kind` running now, if any. Returns the list
    /// it made when that is newer than `older_than` (a list the caller
    /// found wanting) and still fresh; otherwise the right to list, which
    /// others wait for.
    pub(crate) async fn listing(
        &self,
        kind: NamedKind,
        older_than: Option<Instant>,
    ) -> Result<Arc<Catalogue>, Listing<'_>> {
        let kept = self.of(kind);
        let running = kept.listing.lock().await;
        if let Some(catalogue) = self.fresh(kind)
            && older_than.is_none_or(|at| catalogue.built_at > at)
        {
            return Ok(catalogue);
        }
        Err(Listing {
            kept,
            changes: kept.changes.load(Ordering::Acquire),
            _running: running,
        })
    }

    /// The changes announced of `kind` so far.
    #[cfg(test)]
    pub(crate) fn changes(&self, kind: NamedKind) -> u64 {
        self.of(kind).changes.load(Ordering::Acquire)
    }
}

impl Listing<'_> {
    /// Keeps the list this listing made, for everyone.
    pub(crate) fn keep(self, catalogue: Arc<Catalogue>) {
        *self
            .kept
            .catalogue
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(catalogue);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn built(changes_seen: u64, lives: Duration) -> Arc<Catalogue> {
        let mut catalogue = Catalogue::build(NamedKind::Tool, Vec::new());
        catalogue.changes_seen = changes_seen;
        catalogue.expires_at = Instant::now() + lives;
        Arc::new(catalogue)
    }

    #[tokio::test]
    async fn a_kept_list_serves_until_its_own_kind_changes_or_it_expires() {
        let catalogues = Catalogues::default();
        assert!(catalogues.fresh(NamedKind::Tool).is_none());
        let listing = catalogues
            .listing(NamedKind::Tool, None)
            .await
            .expect_err("nothing kept: the caller lists");
        let tools = built(listing.changes, Duration::from_secs(60));
        listing.keep(tools.clone());
        let found = catalogues.fresh(NamedKind::Tool).expect("fresh");
        assert!(Arc::ptr_eq(&found, &tools));

        catalogues.mark_stale(NamedKind::Prompt);
        assert!(catalogues.fresh(NamedKind::Tool).is_some());
        catalogues.mark_stale(NamedKind::Tool);
        assert!(catalogues.fresh(NamedKind::Tool).is_none());
    }

    #[tokio::test]
    async fn a_change_during_a_listing_leaves_its_result_stale() {
        let catalogues = Catalogues::default();
        let listing = catalogues
            .listing(NamedKind::Tool, None)
            .await
            .expect_err("the caller lists");
        let changes = listing.changes;
        catalogues.mark_stale(NamedKind::Tool);
        listing.keep(built(changes, Duration::from_secs(60)));
        assert!(catalogues.fresh(NamedKind::Tool).is_none());
    }

    #[tokio::test]
    async fn an_expired_list_is_listed_again() {
        let catalogues = Catalogues::default();
        let listing = catalogues
            .listing(NamedKind::Tool, None)
            .await
            .expect_err("the caller lists");
        let changes = listing.changes;
        listing.keep(built(changes, Duration::ZERO));
        assert!(catalogues.fresh(NamedKind::Tool).is_none());
    }

    #[tokio::test]
    async fn callers_that_waited_share_the_list_made_meanwhile() {
        let catalogues = Arc::new(Catalogues::default());
        let listing = catalogues
            .listing(NamedKind::Tool, None)
            .await
            .expect_err("the first caller lists");
        let waiting = tokio::spawn({
            let catalogues = catalogues.clone();
            async move { catalogues.listing(NamedKind::Tool, None).await.ok() }
        });
        tokio::task::yield_now().await;
        let tools = built(listing.changes, Duration::from_secs(60));
        listing.keep(tools.clone());
        let shared = waiting
            .await
            .expect("task")
            .expect("the list made meanwhile");
        assert!(Arc::ptr_eq(&shared, &tools));
        // A caller that found that very list wanting lists again.
        assert!(
            catalogues
                .listing(NamedKind::Tool, Some(tools.built_at))
                .await
                .is_err()
        );
    }
}
