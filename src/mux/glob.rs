//! The `*` patterns of a session's rules, compiled once when the session is
//! loaded: a match never backtracks and takes time linear in the name and
//! the pattern, however many `*`s a client writes.

use std::collections::HashMap;

use memchr::memmem::Finder;

/// One pattern, split at its `*`s: where `*` stands for any run of
/// characters (none included) and every other character for itself.
#[derive(Debug, Clone)]
pub struct Glob {
    /// What the name starts with (the whole name when there is no `*`).
    first: String,
    /// What lies between the `*`s, in order, each searcher built once;
    /// empty runs (`**`) dropped.
    middle: Vec<Finder<'static>>,
    /// What the name ends with, after the last `*`; none without a `*`.
    last: Option<String>,
}

impl Glob {
    pub fn parse(pattern: &str) -> Glob {
        let mut parts = pattern.split('*');
        let first = parts.next().unwrap_or_default().to_owned();
        let mut rest: Vec<String> = parts.map(str::to_owned).collect();
        let last = rest.pop();
        let middle = rest
            .iter()
            .filter(|part| !part.is_empty())
            .map(|part| Finder::new(part.as_bytes()).into_owned())
            .collect();
        Glob {
            first,
            middle,
            last,
        }
    }

    /// Whether the pattern has no `*`: it then matches one name only.
    pub fn is_literal(&self) -> bool {
        self.last.is_none()
    }

    /// Whether `name` matches. The fixed ends are checked first, then each
    /// run between `*`s is found at its leftmost place after the one before:
    /// taking the leftmost place never loses a match, since it leaves the
    /// most room for what follows, so nothing is ever tried twice. Each
    /// search is linear in its text and needle at worst (memchr's `memmem`
    /// falls back on the two-way algorithm), and the runs are searched in
    /// disjoint, consecutive parts of the name: the whole match costs
    /// O(name + pattern).
    pub fn matches(&self, name: &str) -> bool {
        let Some(last) = &self.last else {
            return name == self.first;
        };
        if name.len() < self.first.len() + last.len()
            || !name.starts_with(&self.first)
            || !name.ends_with(last.as_str())
        {
            return false;
        }
        // Searched as bytes: a run found in UTF-8 text starts and ends on
        // character boundaries, as the runs are whole UTF-8 strings.
        let mut rest = &name.as_bytes()[self.first.len()..name.len() - last.len()];
        for part in &self.middle {
            match part.find(rest) {
                Some(at) => rest = &rest[at + part.needle().len()..],
                None => return false,
            }
        }
        true
    }
}

/// An `allow` or `deny` list, compiled: its plain names looked up at once,
/// its patterns tried one by one.
#[derive(Debug, Clone, Default)]
pub struct GlobList {
    /// Plain name → its places in the list.
    names: HashMap<String, Vec<usize>>,
    /// Patterns with a `*`, with their places in the list.
    patterns: Vec<(usize, Glob)>,
}

impl GlobList {
    pub fn compile(patterns: &[String]) -> GlobList {
        let mut list = GlobList::default();
        for (index, pattern) in patterns.iter().enumerate() {
            let glob = Glob::parse(pattern);
            if glob.is_literal() {
                list.names.entry(glob.first).or_default().push(index);
            } else {
                list.patterns.push((index, glob));
            }
        }
        list
    }

    /// Whether any entry of the list matches `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.names.contains_key(name) || self.patterns.iter().any(|(_, glob)| glob.matches(name))
    }

    /// The places of the entries that match none of `names`, in order.
    pub fn unmatched(&self, names: &[&str]) -> Vec<usize> {
        let mut unmatched: Vec<usize> = self
            .patterns
            .iter()
            .filter(|(_, glob)| !names.iter().any(|name| glob.matches(name)))
            .map(|(index, _)| *index)
            .collect();
        if !self.names.is_empty() {
            let listed: std::collections::HashSet<&str> = names.iter().copied().collect();
            unmatched.extend(
                self.names
                    .iter()
                    .filter(|(name, _)| !listed.contains(name.as_str()))
                    .flat_map(|(_, indexes)| indexes.iter().copied()),
            );
        }
        unmatched.sort_unstable();
        unmatched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_matches(pattern: &str, name: &str) -> bool {
        Glob::parse(pattern).matches(name)
    }

    #[test]
    fn a_star_stands_for_any_run_of_characters() {
        for (pattern, name, matches) in [
            ("echo", "echo", true),
            ("echo", "echoes", false),
            ("get-*", "get-sum", true),
            ("get-*", "get-", true),
            ("get-*", "set-sum", false),
            ("*", "anything", true),
            ("*", "", true),
            ("*-sum", "get-sum", true),
            ("*-sum", "get-sums", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXcYb", false),
            ("ab*ba", "aba", false),
            ("ab*ba", "abba", true),
            ("a**", "a", true),
            ("*a*a*", "aa", true),
            ("*a*a*", "a", false),
            ("*ab*ab", "abab", true),
            ("*ab*ab", "aab", false),
            ("é*ü", "éxü", true),
            ("*ü*", "aüb", true),
        ] {
            assert_eq!(glob_matches(pattern, name), matches, "{pattern} on {name}");
        }
    }

    /// The shape that makes a backtracking matcher try every way to place
    /// the runs: many `*a` and a tail that never comes. Matched here in one
    /// pass; a backtracking matcher would need on the order of
    /// C(100000, 60) steps and never finish.
    #[test]
    fn patterns_built_to_backtrack_are_matched_in_one_pass() {
        let name = "a".repeat(100_000);
        let mut pattern = "*a".repeat(60);
        for (tail, matches) in [("*b*", false), ("*b", false), ("*", true), ("*a", true)] {
            pattern.truncate(120);
            pattern.push_str(tail);
            assert_eq!(glob_matches(&pattern, &name), matches, "{tail}");
        }
        let almost = format!("{}b", "a".repeat(59));
        assert!(glob_matches(&format!("{}*b", "*a".repeat(59)), &almost));
        assert!(!glob_matches(&format!("{}*b", "*a".repeat(60)), &almost));
    }

    #[test]
    fn a_list_reports_the_entries_that_matched_nothing_in_order() {
        let list = GlobList::compile(&[
            "get-*".into(),
            "echo".into(),
            "gone".into(),
            "none-*".into(),
            "gone".into(),
        ]);
        assert!(list.matches("echo"));
        assert!(list.matches("get-sum"));
        assert!(!list.matches("add"));
        assert_eq!(list.unmatched(&["echo", "get-sum"]), [2, 3, 4]);
        assert!(!GlobList::default().matches("echo"));
    }
}
