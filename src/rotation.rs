//! The `rotate-key` command: seals every stored credential again with the
//! current key, so that the previous keys can be dropped.

use std::path::PathBuf;

use secrecy::SecretString;

use crate::startup::sqlite_url;
use crate::store::crypto::{KeyError, KeyFile, Keyring};
use crate::store::{Rotation, Store, StoreError};

/// Sessions re-sealed per transaction: small enough not to hold a gateway's
/// writes back for long.
pub const BATCH: u64 = 100;

/// What `rotate-key` works on; the keys come from the environment.
pub struct RotationSettings {
    /// `None`: the SQLite database in `data_dir`, which must exist.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// `MCP_MUX_ENCRYPTION_KEY`; `None`: the key file in `data_dir`.
    pub encryption_key: Option<SecretString>,
    /// `MCP_MUX_PREVIOUS_KEYS`.
    pub previous_keys: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("encryption key: {0}")]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Re-seals every session with the current key and records it in the key
/// check. A database or key file that does not exist is an error, never
/// created: the command works on a gateway's existing data.
pub async fn rotate_key(settings: RotationSettings) -> Result<Rotation, RotationError> {
    let keys = Keyring::load(
        settings.encryption_key.as_ref(),
        settings.previous_keys.as_ref(),
        &settings.data_dir,
        KeyFile::MustExist,
    )?;
    let url = settings
        .database_url
        .unwrap_or_else(|| sqlite_url(&settings.data_dir, "rw"));
    let store = Store::connect(&url, keys).await?;
    Ok(store.rotate_key(BATCH).await?)
}
