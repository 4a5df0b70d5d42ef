//! Sentence embeddings for search mode's semantic ranking: a BERT-family
//! sentence model (all-MiniLM-L6-v2, bge-small, …) that the operator
//! provides as files (`--search-model DIR`: `config.json`,
//! `tokenizer.json`, `model.safetensors`, and sentence-transformers'
//! `1_Pooling/config.json` when the model pools its first token), run in
//! process on the CPU. Nothing is downloaded. Embeddings are unit length,
//! so that a dot product is their cosine.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// Tokens of a text the model reads; the rest is cut. A tool's name and
/// first sentences say what it does, and the cost grows with the square.
const MAX_TOKENS: usize = 128;
/// Texts embedded in one forward pass.
const BATCH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("search model: cannot read {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("search model: {} is not a usable {what}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("search model: embedding failed: {0}")]
    Inference(String),
}

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    /// The mean of the text's tokens (sentence-transformers' default).
    Mean,
    /// The first token's (`[CLS]`), as bge models are trained.
    First,
}

pub struct SentenceModel {
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    dimensions: usize,
}

impl std::fmt::Debug for SentenceModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceModel")
            .field("pooling", &self.pooling)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

fn read(path: PathBuf) -> Result<(Vec<u8>, PathBuf), ModelError> {
    match std::fs::read(&path) {
        Ok(bytes) => Ok((bytes, path)),
        Err(error) => Err(ModelError::Unreadable {
            path,
            reason: error.to_string(),
        }),
    }
}

impl SentenceModel {
    /// Loads the model in `dir`; every missing or malformed file is an
    /// error naming it.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let invalid = |path: &Path, what, reason: String| ModelError::Invalid {
            path: path.to_owned(),
            what,
            reason,
        };
        let (bytes, path) = read(dir.join("config.json"))?;
        let config: Config = serde_json::from_slice(&bytes)
            .map_err(|error| invalid(&path, "BERT configuration", error.to_string()))?;
        let dimensions = config.hidden_size;
        let pooling = match read(dir.join("1_Pooling").join("config.json")) {
            Err(_) => Pooling::Mean,
            Ok((bytes, path)) => {
                let pooling: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|error| invalid(&path, "pooling configuration", error.to_string()))?;
                if pooling.get("pooling_mode_cls_token") == Some(&serde_json::Value::Bool(true)) {
                    Pooling::First
                } else {
                    Pooling::Mean
                }
            }
        };
        let path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&path)
            .map_err(|error| invalid(&path, "tokenizer", error.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|error| invalid(&path, "tokenizer", error.to_string()))?;
        let (weights, path) = read(dir.join("model.safetensors"))?;
        let model = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .and_then(|weights| BertModel::load(weights, &config))
            .map_err(|error| invalid(&path, "BERT model", error.to_string()))?;
        Ok(SentenceModel {
            model,
            tokenizer,
            pooling,
            dimensions,
        })
    }

    /// Length of each embedding.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// One unit-length embedding per text, in order. CPU work of a few
    /// milliseconds a text: call it off the async workers.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut embeddings = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            embeddings.extend(
                self.embed_batch(batch)
                    .map_err(|error| ModelError::Inference(error.to_string()))?,
            );
        }
        Ok(embeddings)
    }

    fn embed_batch(
        &self,
        texts: &[&str],
    ) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error + Send + Sync>> {
        let device = Device::Cpu;
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true)?;
        let rows = |row: fn(&tokenizers::Encoding) -> &[u32]| {
            encodings
                .iter()
                .map(|encoding| Tensor::new(row(encoding), &device))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|rows| Tensor::stack(&rows, 0))
        };
        let ids = rows(tokenizers::Encoding::get_ids)?;
        let mask = rows(tokenizers::Encoding::get_attention_mask)?;
        let tokens = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        let pooled = match self.pooling {
            Pooling::First => tokens.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                tokens
                    .broadcast_mul(&mask)?
                    .sum(1)?
                    .broadcast_div(&mask.sum(1)?)?
            }
        };
        let length = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
        Ok(pooled.broadcast_div(&length)?.to_vec2()?)
    }
}

/// The cosine of two unit-length embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_a_model_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = SentenceModel::load(dir.path()).expect_err("no model");
        assert_eq!(
            error.to_string(),
            format!(
                "search model: cannot read {}: No such file or directory (os error 2)",
                dir.path().join("config.json").display()
            )
        );
        std::fs::write(dir.path().join("config.json"), "{}").expect("written");
        let error = SentenceModel::load(dir.path()).expect_err("no model");
        assert!(
            error.to_string().starts_with(&format!(
                "search model: {} is not a usable BERT configuration: ",
                dir.path().join("config.json").display()
            )),
            "{error}"
        );
    }
}
