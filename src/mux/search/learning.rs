//! What a session learns from its client's choices: when `call_tool`
//! follows `search_tools`, the tool called is remembered for the query's
//! terms, and lifts that tool for like queries in the same session. Bounded
//! (`MAX_CHOICES` choices of at most `MAX_TERMS` terms per session, the
//! least recent forgotten first) and kept in the store, so that it
//! survives a restart.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;

use super::terms::for_each_term;
use crate::store::{SearchChoice, Store};

/// Choices a session remembers.
pub const MAX_CHOICES: usize = 64;
/// Terms of a query a choice keeps.
pub const MAX_TERMS: usize = 16;
/// How alike (shared terms over all terms) a query must be to a remembered
/// one for its choice to lift.
const MIN_LIKENESS: f64 = 0.5;
/// Tools one query lifts at most.
const MAX_LIFTS: usize = 5;
/// How long after a search a call still counts as its choice.
const CHOICE_WINDOW: Duration = Duration::from_secs(600);

/// One remembered choice.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    /// The query's distinct terms, sorted.
    terms: Vec<Box<str>>,
    tool: String,
    uses: u32,
}

/// A session's remembered choices, least recent first.
#[derive(Debug, Default)]
pub struct Choices {
    choices: Vec<Choice>,
}

impl Choices {
    /// Remembers that `tool` was chosen after searching `query`, and
    /// returns the choice as the store keeps it.
    pub fn learn(&mut self, query: &str, tool: &str) -> Option<SearchChoice> {
        let terms = query_terms(query);
        if terms.is_empty() {
            return None;
        }
        self.add(terms, tool, 1)
    }

    fn add(&mut self, terms: Vec<Box<str>>, tool: &str, uses: u32) -> Option<SearchChoice> {
        let mut choice = match self
            .choices
            .iter()
            .position(|c| c.terms == terms && c.tool == tool)
        {
            Some(known) => {
                let mut choice = self.choices.remove(known);
                choice.uses = choice.uses.saturating_add(uses);
                choice
            }
            None => Choice {
                terms,
                tool: tool.to_owned(),
                uses,
            },
        };
        choice.terms.truncate(MAX_TERMS);
        let stored = SearchChoice {
            words: choice.terms.join(" "),
            tool: choice.tool.clone(),
            uses: choice.uses,
        };
        self.choices.push(choice);
        if self.choices.len() > MAX_CHOICES {
            self.choices.remove(0);
        }
        Some(stored)
    }

    /// The tools to lift for `query`, each with how alike its query was
    /// (1 for the same terms), most alike first.
    pub fn lifts(&self, query: &str) -> Vec<(String, f64)> {
        let terms = query_terms(query);
        let mut lifts: Vec<(String, f64)> = Vec::new();
        for choice in &self.choices {
            let shared = choice
                .terms
                .iter()
                .filter(|term| terms.binary_search(term).is_ok())
                .count();
            let all = terms.len() + choice.terms.len() - shared;
            let likeness = if all == 0 {
                0.0
            } else {
                shared as f64 / all as f64
            };
            if likeness < MIN_LIKENESS {
                continue;
            }
            match lifts.iter_mut().find(|(tool, _)| *tool == choice.tool) {
                Some((_, best)) => *best = best.max(likeness),
                None => lifts.push((choice.tool.clone(), likeness)),
            }
        }
        lifts.sort_by(|a, b| b.1.total_cmp(&a.1));
        lifts.truncate(MAX_LIFTS);
        lifts
    }

    /// Choices remembered.
    pub fn len(&self) -> usize {
        self.choices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.choices.is_empty()
    }
}

/// A query's distinct terms, sorted, at most `MAX_TERMS`.
fn query_terms(query: &str) -> Vec<Box<str>> {
    let mut terms: Vec<Box<str>> = Vec::new();
    for_each_term(query, |term| {
        if terms.len() < 4 * MAX_TERMS {
            terms.push(term.into());
        }
    });
    terms.sort_unstable();
    terms.dedup();
    terms.truncate(MAX_TERMS);
    terms
}

/// A session's learning: its choices, read from the store at its first
/// search, and the search a next call would be the choice of.
#[derive(Default)]
pub struct Learning {
    /// Where the choices are kept, if anywhere.
    store: Option<(Uuid, Store)>,
    loaded: tokio::sync::OnceCell<()>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    choices: Choices,
    /// The last search's query, and when it ran.
    last_search: Option<(String, Instant)>,
}

impl Learning {
    /// The learning of session `session`, kept in `store`.
    pub fn new(session: Uuid, store: Store) -> Learning {
        Learning {
            store: Some((session, store)),
            ..Learning::default()
        }
    }

    /// Notes a search of `query` and answers the tools it lifts.
    pub async fn searched(&self, query: &str) -> Vec<(String, f64)> {
        self.load().await;
        let mut state = self.lock();
        state.last_search = Some((query.to_owned(), Instant::now()));
        state.choices.lifts(query)
    }

    /// Notes that the client called `tool`: the choice of the last search,
    /// if one ran in the last `CHOICE_WINDOW` and no call took it yet.
    pub async fn called(&self, tool: &str) {
        let stored = {
            let mut state = self.lock();
            let Some((query, at)) = state.last_search.take() else {
                return;
            };
            if at.elapsed() > CHOICE_WINDOW {
                return;
            }
            state.choices.learn(&query, tool)
        };
        if let (Some(choice), Some((session, store))) = (stored, &self.store)
            && let Err(error) = store
                .record_search_choice(*session, &choice, MAX_CHOICES as u64, Utc::now())
                .await
        {
            // Learning is a help, not a duty: the call stands.
            tracing::warn!(error = %error, "a search choice could not be stored");
        }
    }

    async fn load(&self) {
        let Some((session, store)) = &self.store else {
            return;
        };
        self.loaded
            .get_or_init(|| async {
                match store.search_choices(*session).await {
                    Ok(stored) => {
                        let mut state = self.lock();
                        let learned = std::mem::take(&mut state.choices.choices);
                        for choice in stored {
                            let terms = choice.words.split(' ').map(Box::from).collect();
                            state.choices.add(terms, &choice.tool, choice.uses);
                        }
                        // Learned before the load: newer than the stored.
                        for choice in learned {
                            state.choices.add(choice.terms, &choice.tool, choice.uses);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "search choices could not be read");
                    }
                }
            })
            .await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_lifts_its_tool_for_like_queries_only() {
        let mut choices = Choices::default();
        choices.learn("land the PR", "git__merge_pull_request");
        assert_eq!(
            choices.lifts("land the PR"),
            [("git__merge_pull_request".to_owned(), 1.0)]
        );
        let like = choices.lifts("land this PR now");
        assert_eq!(like.len(), 1);
        assert!(like[0].1 > 0.3 && like[0].1 < 1.0, "{like:?}");
        assert!(choices.lifts("weather in Paris").is_empty());
        assert!(choices.learn("the of", "x").is_none(), "no terms");
    }

    #[test]
    fn choices_are_bounded_and_the_least_recent_goes_first() {
        let mut choices = Choices::default();
        for i in 0..MAX_CHOICES + 10 {
            choices.learn(&format!("task{i}"), &format!("tool{i}"));
        }
        assert_eq!(choices.len(), MAX_CHOICES);
        let forgotten = choices.lifts("task0");
        assert!(
            !forgotten.iter().any(|(tool, _)| tool == "tool0"),
            "{forgotten:?}"
        );
        assert_eq!(choices.lifts("task70")[0].0, "tool70");
        // Choosing again counts a use and makes it the most recent.
        let again = choices.learn("task10", "tool10").expect("terms");
        assert_eq!(again.uses, 2);
        choices.learn("fresh", "tool");
        assert_eq!(choices.lifts("task10")[0].0, "tool10");
        let long = (0..100)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let stored = choices.learn(&long, "tool").expect("terms");
        assert_eq!(stored.words.split(' ').count(), MAX_TERMS);
    }

    #[tokio::test]
    async fn a_call_after_a_search_is_its_choice_and_only_the_first() {
        let learning = Learning::default();
        learning.called("a__echo").await;
        assert!(learning.searched("repeat my text").await.is_empty());
        learning.called("a__echo").await;
        learning.called("a__other").await;
        assert_eq!(
            learning.searched("repeat my text").await,
            [("a__echo".to_owned(), 1.0)]
        );
    }
}
