//! Search mode's words: how text becomes the terms that the index holds
//! and that queries look up (split, folded, without stopwords, stemmed),
//! and the abbreviations that stand for longer words.

/// Longer runs of letters are not words (base64, hashes).
const MAX_WORD_CHARS: usize = 40;

/// Words too common in tool descriptions and requests to tell tools apart.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "being", "but", "by", "can", "could", "do", "does", "each", "either", "for", "from", "has",
    "have", "how", "i", "if", "in", "into", "is", "it", "its", "may", "me", "my", "of", "on",
    "one", "or", "other", "our", "please", "s", "should", "so", "some", "such", "than", "that",
    "the", "t", "their", "them", "then", "there", "these", "they", "this", "those", "to", "up",
    "us", "via", "was", "we", "were", "what", "when", "where", "which", "while", "who", "will",
    "with", "would", "you", "your",
];

/// Abbreviations of developer tools and the words they stand for, looked
/// up by the word as written and by its stem. Both a tool's text and a
/// query are read with them, so that "PR" meets "pull request" whichever
/// side abbreviates.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("arg", "argument"),
    ("args", "argument"),
    ("attr", "attribute"),
    ("auth", "authentication authorization"),
    ("cfg", "configuration"),
    ("ci", "continuous integration"),
    ("config", "configuration"),
    ("creds", "credential"),
    ("db", "database"),
    ("dep", "dependency"),
    ("deps", "dependency"),
    ("desc", "description"),
    ("dest", "destination"),
    ("dir", "directory"),
    ("dirs", "directory"),
    ("dm", "direct message"),
    ("doc", "documentation document"),
    ("docs", "documentation document"),
    ("dst", "destination"),
    ("env", "environment"),
    ("envs", "environment"),
    ("err", "error"),
    ("exec", "execute"),
    ("fn", "function"),
    ("func", "function"),
    ("img", "image"),
    ("info", "information"),
    ("js", "javascript"),
    ("k8s", "kubernetes"),
    ("lib", "library"),
    ("mr", "merge request"),
    ("msg", "message"),
    ("org", "organization"),
    ("orgs", "organization"),
    ("param", "parameter"),
    ("params", "parameter"),
    ("perm", "permission"),
    ("perms", "permission"),
    ("pic", "picture"),
    ("pkg", "package"),
    ("pr", "pull request"),
    ("prop", "property"),
    ("props", "property"),
    ("prs", "pull request"),
    ("regex", "regular expression"),
    ("regexp", "regular expression"),
    ("repo", "repository"),
    ("repos", "repository"),
    ("src", "source"),
    ("stats", "statistic"),
    ("tmp", "temporary"),
    ("ts", "typescript"),
    ("ui", "user interface"),
    ("url", "address link"),
    ("vm", "virtual machine"),
    ("vms", "virtual machine"),
];

/// The words an abbreviation stands for, if `word` (folded, or its stem)
/// is one.
pub(super) fn expansion(word: &str) -> Option<&'static str> {
    let find = |w: &str| {
        ABBREVIATIONS
            .binary_search_by(|(abbreviation, _)| abbreviation.cmp(&w))
            .ok()
            .and_then(|i| ABBREVIATIONS.get(i))
            .map(|(_, words)| *words)
    };
    find(word).or_else(|| find(&stem(word)))
}

/// Calls `emit` with each word of `text`: split at anything but letters,
/// at digits and at camelCase humps, lowercased and folded to ASCII where a
/// Latin letter has an accent, without stopwords, not stemmed. The plural
/// `s` of a word in capitals goes ("PRs" is "pr").
pub(super) fn for_each_word(text: &str, mut emit: impl FnMut(&str)) {
    for_each_word_and_stopword(text, |word| {
        if !is_stopword(word) {
            emit(word);
        }
    });
}

pub(super) fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

/// `for_each_word`, stopwords included: they are parts of compounds
/// ("who am I" is "whoami").
pub(super) fn for_each_word_and_stopword(text: &str, mut emit: impl FnMut(&str)) {
    let mut word = String::new();
    // Capitals since the word began, while it has no other letter.
    let mut capitals = 0usize;
    let mut only_capitals = true;
    let chars: Vec<char> = text.chars().collect();
    let mut previous: Option<char> = None;
    for (at, &c) in chars.iter().enumerate() {
        let next = chars.get(at + 1).copied();
        // An acronym's plural `s` ends the word: "PRs", not "P" + "Rs".
        let plural_s = next == Some('s')
            && chars
                .get(at + 2)
                .is_none_or(|after| !after.is_alphanumeric());
        let boundary = match previous {
            None => false,
            Some(p) => {
                !c.is_alphanumeric()
                    || p.is_ascii_digit() != c.is_ascii_digit()
                    // fooBar
                    || (p.is_lowercase() && c.is_uppercase())
                    // HTTPServer: the last capital starts the next word
                    || (p.is_uppercase()
                        && c.is_uppercase()
                        && next.is_some_and(char::is_lowercase)
                        && !plural_s)
            }
        };
        if boundary {
            finish_word(&mut word, capitals, only_capitals, &mut emit);
            capitals = 0;
            only_capitals = true;
        }
        if c.is_alphanumeric() {
            let final_s =
                c == 's' && capitals >= 2 && next.is_none_or(|after| !after.is_alphanumeric());
            if c.is_uppercase() && only_capitals {
                capitals += 1;
            } else if !final_s {
                only_capitals = false;
            }
            push_folded(&mut word, c);
            previous = Some(c);
        } else {
            previous = None;
        }
    }
    finish_word(&mut word, capitals, only_capitals, &mut emit);
}

fn finish_word(
    word: &mut String,
    capitals: usize,
    only_capitals: bool,
    emit: &mut impl FnMut(&str),
) {
    if word.is_empty() {
        return;
    }
    // "PRs", "IDs", "VMs": an acronym's plural
    if only_capitals && capitals >= 2 && word.len() == capitals + 1 && word.ends_with('s') {
        word.pop();
    }
    if word.chars().count() <= MAX_WORD_CHARS {
        emit(word);
    }
    word.clear();
}

/// Calls `emit` with each indexed term of `text`: its words, stemmed, and
/// after an abbreviation the stems of the words it stands for.
pub(super) fn for_each_term(text: &str, mut emit: impl FnMut(String)) {
    for_each_word(text, |word| {
        emit(stem(word));
        if let Some(words) = expansion(word) {
            for word in words.split(' ') {
                emit(stem(word));
            }
        }
    });
}

/// Appends `c` lowercased, with the accents of Latin letters dropped.
fn push_folded(word: &mut String, c: char) {
    for lower in c.to_lowercase() {
        let folded = match lower {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
            'æ' => "ae",
            'ç' | 'č' | 'ć' => "c",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' => "e",
            'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
            'œ' => "oe",
            'ß' => "ss",
            'š' | 'ś' => "s",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
            'ý' | 'ÿ' => "y",
            'ž' | 'ź' | 'ż' => "z",
            other => {
                word.push(other);
                continue;
            }
        };
        word.push_str(folded);
    }
}

/// A light English stemmer: plurals, -ing and -ed, then a final e, so that
/// "files", "file", "filed" and "filing" meet ("fil"). Unlike Porter's it
/// leaves derivations (-ation, -ment, -er) alone: in tool names they often
/// mean something else than their root.
pub(super) fn stem(word: &str) -> String {
    let mut stem = word.to_owned();
    if !stem.is_ascii() || stem.len() <= 3 {
        return stem;
    }
    if let Some(root) = stem.strip_suffix("ies") {
        stem = format!("{root}y");
    } else if let Some(root) = stem.strip_suffix("ied") {
        stem = format!("{root}y");
    } else if stem.ends_with("sses")
        || stem.ends_with("xes")
        || stem.ends_with("ches")
        || stem.ends_with("shes")
    {
        stem.truncate(stem.len() - 2);
    } else if stem.ends_with('s')
        && !stem.ends_with("ss")
        && !stem.ends_with("us")
        && !stem.ends_with("is")
    {
        stem.pop();
    } else if let Some(root) = stem.strip_suffix("ing") {
        if root.len() >= 3 && has_vowel(root) {
            stem = undouble(root);
        }
    } else if let Some(root) = stem.strip_suffix("ed")
        && root.len() >= 2
        && has_vowel(root)
        && !stem.ends_with("eed")
    {
        stem = undouble(root);
    }
    if stem.len() >= 3 && stem.ends_with('e') {
        stem.pop();
    }
    stem
}

fn has_vowel(text: &str) -> bool {
    text.contains(['a', 'e', 'i', 'o', 'u', 'y'])
}

/// "runn" → "run", "logg" → "log"; "call" and "pass" keep their pair.
fn undouble(root: &str) -> String {
    let bytes = root.as_bytes();
    match bytes {
        [.., a, b] if a == b && !matches!(a, b'l' | b's' | b'z' | b'e' | b'o') => {
            root[..root.len() - 1].to_owned()
        }
        _ => root.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        for_each_term(text, |term| terms.push(term));
        terms
    }

    #[test]
    fn words_are_split_at_separators_digits_and_camel_case_humps() {
        assert_eq!(
            terms("everything__get-tiny_image.v2/HTTPServer parseJSONBody"),
            [
                "everyth", "get", "tiny", "imag", "v", "2", "http", "server", "pars", "json",
                "body"
            ]
        );
    }

    #[test]
    fn words_are_lowercased_folded_and_stemmed_without_stopwords() {
        assert_eq!(terms("The Café's Queries"), ["caf", "query"]);
        assert_eq!(
            terms("files filed filing file"),
            ["fil", "fil", "fil", "fil"]
        );
        assert_eq!(terms("running runs run"), ["run", "run", "run"]);
        assert_eq!(
            terms("branches messages addresses"),
            ["branch", "messag", "address"]
        );
        assert_eq!(
            terms("status analysis string"),
            ["status", "analysis", "string"]
        );
        assert_eq!(terms("日本語 текст"), ["日本語", "текст"]);
    }

    #[test]
    fn an_acronyms_plural_loses_its_s_and_abbreviations_bring_their_words() {
        assert_eq!(terms("PRs"), ["pr", "pull", "request"]);
        assert_eq!(
            terms("list VMs and IDs"),
            ["list", "vm", "virtual", "machin", "id"]
        );
        assert_eq!(terms("the repos"), ["repo", "repository"]);
        assert_eq!(terms("DNS OS Status"), ["dns", "os", "status"]);
        assert_eq!(terms("HTTPServers"), ["http", "server"]);
    }

    #[test]
    fn the_abbreviations_are_sorted_for_their_binary_search() {
        assert!(ABBREVIATIONS.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert_eq!(
            expansion("Repo".to_lowercase().as_str()),
            Some("repository")
        );
        assert_eq!(expansion("merge"), None);
    }
}
