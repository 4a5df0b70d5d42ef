//! mcp-mux's own pagination of merged lists. A merged list longer than one
//! page is kept as a snapshot, and an opaque cursor names the snapshot and
//! the offset, so a client paging through never loses or repeats an item
//! even if the backends' lists change meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::error::CallError;
use super::item_kind::Listing;
use crate::mcp::request::Method;

/// Items per page of a merged list.
pub const PAGE_SIZE: usize = 500;
/// Snapshots kept per MCP session; a cursor into an older one has expired.
const KEPT_SNAPSHOTS: usize = 8;

struct Snapshot {
    id: u64,
    method: Method,
    items: Arc<Vec<Value>>,
}

/// The snapshots of one MCP session's paged lists.
#[derive(Default)]
pub struct Pager {
    next_id: AtomicU64,
    snapshots: Mutex<VecDeque<Snapshot>>,
}

impl Pager {
    /// The first page of a freshly merged list.
    pub fn first_page(&self, listing: Listing, items: Arc<Vec<Value>>) -> Value {
        if items.len() <= PAGE_SIZE {
            return page(listing, &items, None);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let first = page(listing, &items[..PAGE_SIZE], Some(encode(id, PAGE_SIZE)));
        let mut snapshots = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if snapshots.len() == KEPT_SNAPSHOTS {
            snapshots.pop_front();
        }
        snapshots.push_back(Snapshot {
            id,
            method: listing.method,
            items,
        });
        first
    }

    /// The page a cursor from an earlier page of the same list names.
    pub fn next_page(&self, listing: Listing, cursor: &str) -> Result<Value, CallError> {
        let invalid = || CallError::InvalidParams {
            reason: format!(
                "invalid or expired cursor for {}; list again without one",
                listing.method
            ),
        };
        let (id, offset) = decode(cursor).ok_or_else(invalid)?;
        let snapshots = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let snapshot = snapshots
            .iter()
            .find(|s| s.id == id && s.method == listing.method)
            .ok_or_else(invalid)?;
        if offset == 0 || offset >= snapshot.items.len() {
            return Err(invalid());
        }
        let end = (offset + PAGE_SIZE).min(snapshot.items.len());
        let next = (end < snapshot.items.len()).then(|| encode(id, end));
        Ok(page(listing, &snapshot.items[offset..end], next))
    }
}

fn page(listing: Listing, items: &[Value], next_cursor: Option<String>) -> Value {
    let mut result = Map::new();
    result.insert(listing.key.to_owned(), Value::Array(items.to_vec()));
    if let Some(cursor) = next_cursor {
        result.insert("nextCursor".to_owned(), Value::String(cursor));
    }
    Value::Object(result)
}

fn encode(id: u64, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{id}.{offset}"))
}

fn decode(cursor: &str) -> Option<(u64, usize)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (id, offset) = text.split_once('.')?;
    Some((id.parse().ok()?, offset.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::item_kind::RESOURCES;
    use serde_json::json;

    fn items(count: usize) -> Arc<Vec<Value>> {
        Arc::new(
            (0..count)
                .map(|i| json!({ "uri": format!("x://{i}") }))
                .collect(),
        )
    }

    #[test]
    fn a_short_list_is_one_page_without_a_cursor() {
        let pager = Pager::default();
        let first = pager.first_page(RESOURCES, items(3));
        assert_eq!(first["resources"].as_array().map(Vec::len), Some(3));
        assert!(first.get("nextCursor").is_none());
    }

    #[test]
    fn a_long_list_is_paged_to_the_end_without_loss() {
        let pager = Pager::default();
        let mut page = pager.first_page(RESOURCES, items(2 * PAGE_SIZE + 7));
        let mut seen = Vec::new();
        loop {
            seen.extend(page["resources"].as_array().expect("items").iter().cloned());
            let Some(cursor) = page["nextCursor"].as_str().map(str::to_owned) else {
                break;
            };
            page = pager.next_page(RESOURCES, &cursor).expect("valid cursor");
        }
        assert_eq!(seen, *items(2 * PAGE_SIZE + 7));
    }

    #[test]
    fn foreign_or_forged_cursors_are_refused() {
        let pager = Pager::default();
        let first = pager.first_page(RESOURCES, items(PAGE_SIZE + 1));
        let cursor = first["nextCursor"].as_str().expect("cursor");
        let templates = crate::mux::item_kind::RESOURCE_TEMPLATES;
        for (listing, cursor) in [
            (templates, cursor.to_owned()),
            (RESOURCES, "not base64!".to_owned()),
            (RESOURCES, encode(99, PAGE_SIZE)),
            (RESOURCES, encode(0, 10 * PAGE_SIZE)),
            (RESOURCES, encode(0, 0)),
        ] {
            assert!(pager.next_page(listing, &cursor).is_err(), "{cursor}");
        }
    }
}
