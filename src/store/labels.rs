//! A session's labels as the sessions table keeps them: a JSON object with
//! its keys in order, NULL when there are none.

use std::collections::BTreeMap;

/// A session's labels: keys and values of a bounded character set (see
/// `routes::sessions::body`), keys in order.
pub type Labels = BTreeMap<String, String>;

/// A row's labels column.
pub(super) fn labels_of(text: Option<&str>) -> Result<Labels, serde_json::Error> {
    text.map_or(Ok(Labels::new()), serde_json::from_str)
}

/// The labels column of `labels`.
pub(super) fn labels_column(labels: &Labels) -> Option<String> {
    (!labels.is_empty()).then(|| serde_json::to_string(labels).unwrap_or_default())
}
