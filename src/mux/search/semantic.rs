//! Semantic ranking, when the operator gives a sentence model
//! (`--search-model`): each tool's text is embedded once (and kept by its
//! text, so a list rebuilt with the same tools costs nothing), a query is
//! embedded when it comes, and the tools nearest to it are fused with the
//! lexical ranking by reciprocal rank, so that either ranking can bring a
//! tool up and neither's scale drowns the other's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use super::Hit;
use crate::embedding::{ModelError, SentenceModel, cosine};

/// Reciprocal rank fusion's constant: the usual 60, under which the first
/// few places of either ranking count about alike.
const FUSION_K: f64 = 60.0;
/// Places of each ranking that take part in the fusion: read each this
/// deep.
pub const FUSED_DEPTH: usize = 50;
/// Tool texts whose embeddings are kept (about 1.5 KiB each at 384
/// dimensions): every tool of many catalogues.
const MAX_KEPT_TOOLS: usize = 50_000;
/// Queries whose embeddings are kept: agents repeat themselves.
const MAX_KEPT_QUERIES: usize = 1024;
/// Characters of a tool's description that are embedded: the model reads
/// 128 tokens at most.
const MAX_DESCRIPTION_CHARS: usize = 600;

/// The model and the embeddings it made, shared by every session.
#[derive(Debug)]
pub struct SearchModel {
    model: SentenceModel,
    tools: Mutex<HashMap<String, Arc<[f32]>>>,
    queries: Mutex<HashMap<String, Arc<[f32]>>>,
}

/// The embeddings of one list's tools, by position in the list.
#[derive(Debug)]
pub struct SemanticIndex {
    embeddings: Vec<Option<Arc<[f32]>>>,
}

/// What a tool is embedded as: its name's words (a server prefix too: it
/// says what the tool acts on), title and the start of its description.
fn tool_text(item: &Value) -> Option<String> {
    let name = item.get("name")?.as_str()?;
    let mut text: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    for key in ["title", "description"] {
        if let Some(more) = item.get(key).and_then(Value::as_str) {
            text.push_str(". ");
            text.extend(more.chars().take(MAX_DESCRIPTION_CHARS));
        }
    }
    Some(text)
}

/// Keeps `value` under `key`, forgetting everything once `max` are kept:
/// simpler than an LRU, and a full cache is rare and cheap to refill.
fn keep(cache: &Mutex<HashMap<String, Arc<[f32]>>>, key: String, value: Arc<[f32]>, max: usize) {
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= max {
        cache.clear();
    }
    cache.insert(key, value);
}

fn kept(cache: &Mutex<HashMap<String, Arc<[f32]>>>, key: &str) -> Option<Arc<[f32]>> {
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
}

impl SearchModel {
    pub fn new(model: SentenceModel) -> Self {
        SearchModel {
            model,
            tools: Mutex::default(),
            queries: Mutex::default(),
        }
    }

    /// Embeds the tools of a list, reusing what earlier lists embedded.
    /// Seconds of CPU for a thousand new tools: run it on the blocking pool.
    pub fn index(&self, items: &[Value]) -> Result<SemanticIndex, ModelError> {
        let texts: Vec<Option<String>> = items.iter().map(tool_text).collect();
        let missing: Vec<&str> = {
            let cache = self.tools.lock().unwrap_or_else(PoisonError::into_inner);
            let mut missing: Vec<&str> = texts
                .iter()
                .flatten()
                .map(String::as_str)
                .filter(|text| !cache.contains_key(*text))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        for (text, embedding) in missing.iter().zip(self.model.embed(&missing)?) {
            keep(
                &self.tools,
                (*text).to_owned(),
                embedding.into(),
                MAX_KEPT_TOOLS,
            );
        }
        Ok(SemanticIndex {
            embeddings: texts
                .iter()
                .map(|text| kept(&self.tools, text.as_deref()?))
                .collect(),
        })
    }

    /// The embedding of a query: a few milliseconds the first time.
    pub fn query(&self, query: &str) -> Result<Arc<[f32]>, ModelError> {
        if let Some(embedding) = kept(&self.queries, query) {
            return Ok(embedding);
        }
        let embedding: Arc<[f32]> = self
            .model
            .embed(&[query])?
            .into_iter()
            .next()
            .unwrap_or_default()
            .into();
        keep(
            &self.queries,
            query.to_owned(),
            embedding.clone(),
            MAX_KEPT_QUERIES,
        );
        Ok(embedding)
    }
}

impl SemanticIndex {
    /// Positions of the `limit` tools nearest `query`, nearest first.
    pub fn nearest(&self, query: &[f32], limit: usize) -> Vec<usize> {
        let mut scored: Vec<(usize, f32)> = self
            .embeddings
            .iter()
            .enumerate()
            .filter_map(|(position, embedding)| {
                Some((position, cosine(query, embedding.as_deref()?)))
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(limit);
        scored.into_iter().map(|(position, _)| position).collect()
    }
}

/// The lexical and semantic rankings fused by reciprocal rank: a tool
/// scores `1 / (60 + place)` in each ranking it is in. The best `limit`,
/// best first; ties go to the earlier tool.
pub fn fuse(lexical: &[Hit], nearest: &[usize], limit: usize) -> Vec<Hit> {
    let mut scores: HashMap<usize, f64> = HashMap::new();
    let places = lexical
        .iter()
        .take(FUSED_DEPTH)
        .map(|hit| hit.position)
        .enumerate()
        .chain(nearest.iter().take(FUSED_DEPTH).copied().enumerate());
    for (place, position) in places {
        *scores.entry(position).or_default() += 1.0 / (FUSION_K + place as f64 + 1.0);
    }
    let mut fused: Vec<Hit> = scores
        .into_iter()
        .map(|(position, score)| Hit { position, score })
        .collect();
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.position.cmp(&b.position))
    });
    fused.truncate(limit);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_lifts_what_both_rankings_place_high() {
        let lexical = [
            Hit {
                position: 3,
                score: 9.0,
            },
            Hit {
                position: 1,
                score: 5.0,
            },
        ];
        // 1 is second lexically and first semantically: it wins. 3 and 7
        // are each first or second in one ranking only.
        let fused = fuse(&lexical, &[1, 7, 3], 3);
        let positions: Vec<usize> = fused.iter().map(|hit| hit.position).collect();
        assert_eq!(positions, [1, 3, 7]);
        assert!(fused[0].score > fused[1].score);
        assert_eq!(fuse(&lexical, &[], 5).len(), 2);
        assert!(fuse(&[], &[], 5).is_empty());
    }

    #[test]
    fn a_tool_is_embedded_as_its_name_words_and_description() {
        let item = serde_json::json!({"name": "github__merge_pull_request", "description": "Merge a pull request"});
        assert_eq!(
            tool_text(&item).as_deref(),
            Some("github  merge pull request. Merge a pull request")
        );
        assert_eq!(tool_text(&serde_json::json!({"description": "x"})), None);
    }
}
