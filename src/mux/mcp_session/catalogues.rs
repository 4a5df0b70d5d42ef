//! The merged lists of an MCP session's tools and prompts: kept between
//! requests, and listed again once a backend announces that its list
//! changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::mux::catalogue::{Catalogue, NamedKind};

/// One kind's merged list, and whether a backend announced a change since
/// it was built.
#[derive(Default)]
struct Kept {
    catalogue: tokio::sync::RwLock<Option<Arc<Catalogue>>>,
    stale: AtomicBool,
}

/// The merged lists of one MCP session, shared with its backend slots,
/// which mark them stale.
#[derive(Default)]
pub(super) struct Catalogues {
    tools: Kept,
    prompts: Kept,
}

impl Catalogues {
    fn of(&self, kind: NamedKind) -> &Kept {
        match kind {
            NamedKind::Tool => &self.tools,
            NamedKind::Prompt => &self.prompts,
        }
    }

    /// A backend announced a change: the next use of the list lists again.
    pub(super) fn mark_stale(&self, kind: NamedKind) {
        self.of(kind).stale.store(true, Ordering::Release);
    }

    pub(super) fn mark_all_stale(&self) {
        self.mark_stale(NamedKind::Tool);
        self.mark_stale(NamedKind::Prompt);
    }

    /// The kept list, unless there is none or a change was announced since
    /// it was built.
    pub(super) async fn fresh(&self, kind: NamedKind) -> Option<Arc<Catalogue>> {
        let kept = self.of(kind);
        if kept.stale.swap(false, Ordering::AcqRel) {
            return None;
        }
        kept.catalogue.read().await.clone()
    }

    /// Keeps a list just built.
    pub(super) async fn keep(&self, kind: NamedKind, catalogue: Arc<Catalogue>) {
        *self.of(kind).catalogue.write().await = Some(catalogue);
    }

    #[cfg(test)]
    pub(super) fn is_stale(&self, kind: NamedKind) -> bool {
        self.of(kind).stale.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kept_list_serves_until_its_own_kind_is_marked_stale() {
        let catalogues = Catalogues::default();
        assert!(catalogues.fresh(NamedKind::Tool).await.is_none());
        let tools = Arc::new(Catalogue::build(NamedKind::Tool, Vec::new()));
        let prompts = Arc::new(Catalogue::build(NamedKind::Prompt, Vec::new()));
        catalogues.keep(NamedKind::Tool, tools.clone()).await;
        catalogues.keep(NamedKind::Prompt, prompts.clone()).await;
        let kept = |found: Option<Arc<Catalogue>>, expected: &Arc<Catalogue>| {
            found.is_some_and(|found| Arc::ptr_eq(&found, expected))
        };
        assert!(kept(catalogues.fresh(NamedKind::Tool).await, &tools));

        catalogues.mark_stale(NamedKind::Tool);
        assert!(catalogues.fresh(NamedKind::Tool).await.is_none());
        assert!(kept(catalogues.fresh(NamedKind::Prompt).await, &prompts));

        catalogues.mark_all_stale();
        assert!(catalogues.fresh(NamedKind::Prompt).await.is_none());
        assert!(catalogues.fresh(NamedKind::Tool).await.is_none());
    }
}
