//! How deeply a JSON text nests, measured before it is parsed: a body of a
//! few kilobytes of `[[[[…` must cost a scan, not a deep recursion.

/// Deepest nesting of arrays and objects a client message may have. Real
/// MCP messages stay well within it; tool arguments rarely pass 10.
pub const MAX_DEPTH: usize = 64;

/// Whether `json` nests arrays and objects deeper than `max`. Brackets
/// inside strings do not count. The text need not be valid JSON: invalid
/// text is left to the parser.
pub fn exceeds_depth(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_but_not_brackets_in_strings() {
        assert!(!exceeds_depth(br#"{"a":[{"b":1}]}"#, 3));
        assert!(exceeds_depth(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!exceeds_depth(br#"{"a":"[[[[[[\"[[[["}"#, 1));
        assert!(!exceeds_depth(br#"{"a":"\\"}"#, 1));
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(exceeds_depth(deep.as_bytes(), MAX_DEPTH));
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(!exceeds_depth(ok.as_bytes(), MAX_DEPTH));
    }
}
