//! Protocol revisions mcp-mux serves, and version negotiation on `initialize`.

/// The newest revision mcp-mux speaks, to clients and to backends.
pub const LATEST: &str = "2025-11-25";
/// The first revision with URL-mode elicitation (and its `-32042`).
pub const URL_ELICITATION: &str = "2025-11-25";

/// Every revision a client may negotiate, newest first. Streamable HTTP
/// appeared in 2025-03-26, so nothing older can reach this transport.
pub const SUPPORTED: [&str; 3] = [LATEST, "2025-06-18", "2025-03-26"];

/// Whether `version` is one mcp-mux serves.
pub fn is_supported(version: &str) -> bool {
    SUPPORTED.contains(&version)
}

/// Picks the revision to answer an `initialize` with: the client's own when we
/// speak it, otherwise our latest (the client then decides whether to go on).
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|wanted| SUPPORTED.iter().copied().find(|known| *known == wanted))
        .unwrap_or(LATEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_revision_is_echoed() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2025-03-26")), "2025-03-26");
    }

    #[test]
    fn an_unknown_or_missing_revision_gets_the_latest() {
        assert_eq!(negotiate(Some("2026-07-28")), LATEST);
        assert_eq!(negotiate(Some("1999-01-01")), LATEST);
        assert_eq!(negotiate(None), LATEST);
    }
}
