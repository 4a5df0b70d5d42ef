//! Search mode's thesaurus: groups of words that mean the same, from
//! WordNet and a list of developer-tool terms (`thesaurus.txt`, written by
//! `scripts/search/thesaurus.py`), read once into a map from a word's stem
//! to the stems of its synonyms.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::terms::stem;

/// The words of one synonym: one stem, or a phrase's stems ("pull request").
pub(super) type Synonym = Box<[Box<str>]>;

/// Synonyms kept per word: common words sit in many groups, and more
/// synonyms than this add noise rather than recall.
const MAX_SYNONYMS: usize = 24;

static THESAURUS: LazyLock<HashMap<Box<str>, Vec<Synonym>>> =
    LazyLock::new(|| parse(include_str!("thesaurus.txt")));

/// The synonyms of the word whose stem is `stem`, nearest first (the
/// developer terms come first in the file, then WordNet's groups).
pub(super) fn synonyms(stem: &str) -> &'static [Synonym] {
    THESAURUS.get(stem).map_or(&[], Vec::as_slice)
}

fn parse(text: &str) -> HashMap<Box<str>, Vec<Synonym>> {
    let mut thesaurus: HashMap<Box<str>, Vec<Synonym>> = HashMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let group: Vec<Synonym> = line
            .split_whitespace()
            .map(|entry| entry.split('_').map(|word| stem(word).into()).collect())
            .collect();
        for (i, entry) in group.iter().enumerate() {
            // A phrase is found by its words, not as a key.
            let [key] = &entry[..] else { continue };
            let known = thesaurus.entry(key.clone()).or_default();
            for (j, other) in group.iter().enumerate() {
                if i != j && other != entry && !known.contains(other) && known.len() < MAX_SYNONYMS
                {
                    known.push(other.clone());
                }
            }
        }
    }
    thesaurus
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(stem: &str) -> Vec<String> {
        synonyms(stem).iter().map(|s| s.join(" ")).collect()
    }

    #[test]
    fn developer_terms_and_dictionary_words_have_their_synonyms() {
        assert!(words("merg").contains(&"land".to_owned()));
        assert!(words("pr").contains(&"pull request".to_owned()));
        assert!(words("delet").contains(&"remov".to_owned()));
        assert!(words("zzzz").is_empty());
    }

    #[test]
    fn a_word_is_never_its_own_synonym_and_the_lists_are_bounded() {
        for (word, synonyms) in THESAURUS.iter() {
            assert!(synonyms.len() <= MAX_SYNONYMS, "{word}");
            assert!(
                !synonyms.iter().any(|s| s.len() == 1 && s[0] == *word),
                "{word}"
            );
        }
    }
}
