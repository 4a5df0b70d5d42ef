//! Qualified names: `<server><separator><tool>`, restricted to what real hosts
//! accept (`^[A-Za-z0-9_-]{1,64}$`) and kept unique by a short stable hash.

/// The longest name hosts accept.
pub const MAX_NAME_LEN: usize = 64;

/// Length of the `-xxxxxxxx` suffix a shortened or disambiguated name gets.
const HASH_SUFFIX_LEN: usize = 9;

/// Whether `c` may appear in a name hosts accept.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `name` is a name every host accepts.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.chars().all(is_name_char)
}

/// The readable qualified name of a backend's item: characters hosts reject
/// become `_`, and a name past 64 characters is cut and ends with a hash of
/// the original so that two long names stay apart. `prefix` is
/// `<server><separator>` (or empty); the registry admits only accepted
/// characters there, and any other would be mapped too.
pub fn qualify(prefix: &str, original: &str) -> String {
    let name: String = prefix
        .chars()
        .chain(original.chars())
        .map(accepted)
        .collect();
    if name.len() <= MAX_NAME_LEN && !name.is_empty() {
        return name;
    }
    with_hash(&name, prefix, original)
}

/// `name` cut to fit and suffixed with a hash of `prefix` + `original`: the
/// fallback when the readable name is too long or is already taken.
pub fn with_hash(name: &str, prefix: &str, original: &str) -> String {
    let hash = short_hash(&format!("{prefix}\u{0}{original}"));
    // Cut by characters, mapped like `qualify` maps them: a name from
    // `qualify` is ASCII already, and no other may split a character.
    let kept: String = name
        .chars()
        .map(accepted)
        .take(MAX_NAME_LEN - HASH_SUFFIX_LEN)
        .collect();
    format!("{kept}-{hash:08x}")
}

/// `c`, or `_` when hosts reject it.
fn accepted(c: char) -> char {
    if is_name_char(c) { c } else { '_' }
}

/// The URI a client sees for a backend's resource URI (or URI template):
/// `<server>+<uri>`, e.g. `kb+file:///readme.md`. It stays readable, keeps
/// two backends' equal URIs apart, and routes a URI a client expanded from
/// a template back to the backend that owns the template.
pub fn qualify_uri(server: &str, uri: &str) -> String {
    format!("{server}+{uri}")
}

/// Splits a URI made by [`qualify_uri`] into the server name and the
/// backend's own URI; `None` when it has no server part.
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    let (server, original) = uri.split_once('+')?;
    let is_server_name = !server.is_empty()
        && server
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (is_server_name && !original.is_empty()).then_some((server, original))
}

/// FNV-1a, 32 bits: stable across builds and platforms, unlike std's hasher,
/// so a tool keeps its name from one session to the next.
fn short_hash(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_prefixed_and_kept() {
        assert_eq!(qualify("everything__", "echo"), "everything__echo");
    }

    #[test]
    fn rejected_characters_become_underscores() {
        let name = qualify("kb__", "search.docs/v2 (beta)");
        assert_eq!(name, "kb__search_docs_v2__beta_");
        assert!(is_valid_name(&name));
    }

    #[test]
    fn a_long_name_is_cut_with_a_stable_hash_and_stays_unique() {
        let long_a = "a".repeat(80);
        let long_b = format!("{}b", "a".repeat(79));
        let a = qualify("server__", &long_a);
        let b = qualify("server__", &long_b);
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert!(is_valid_name(&a) && is_valid_name(&b));
        assert_ne!(a, b);
        assert_eq!(a, qualify("server__", &long_a), "the hash is stable");
    }

    #[test]
    fn non_ascii_names_are_accepted_after_mapping() {
        let name = qualify("s__", "überprüfen");
        assert_eq!(name, "s___berpr_fen");
        assert!(is_valid_name(&name));
    }

    #[test]
    fn resource_uris_get_the_server_in_front_and_split_back_exactly() {
        for uri in [
            "file:///readme.md",
            "git+ssh://host/repo",
            "test://static/resource/{id}",
            "a+b",
        ] {
            let qualified = qualify_uri("kb-2", uri);
            assert_eq!(split_uri(&qualified), Some(("kb-2", uri)), "{uri}");
        }
        assert_eq!(split_uri("file:///readme.md"), None);
        assert_eq!(split_uri("+file:///x"), None);
        assert_eq!(
            split_uri("Kb+file:///x"),
            None,
            "server names are lowercase"
        );
        assert_eq!(split_uri("kb+"), None);
    }

    #[test]
    fn a_prefix_with_rejected_characters_still_gives_a_valid_name() {
        // The fuzzer's input: a server name and separator the registry refuses.
        assert_eq!(qualify("Bad_Name.", "x"), "Bad_Name_x");
        let long_prefix = "sérveur".repeat(10);
        let name = qualify(&long_prefix, "tool");
        assert!(is_valid_name(&name), "{name}");
        assert_eq!(name.len(), MAX_NAME_LEN);
        let hashed = with_hash("überprüfen-überprüfen", "s__", "überprüfen");
        assert!(is_valid_name(&hashed), "{hashed}");
    }

    #[test]
    fn an_empty_original_without_prefix_still_gets_a_valid_name() {
        assert!(is_valid_name(&qualify("", "")));
    }
}
