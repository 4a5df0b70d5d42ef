//! AES-256-GCM sealing of credentials at rest, and where the keys come from:
//! the current key from `MCP_MUX_ENCRYPTION_KEY` (base64 of 32 bytes) or a 0600
//! key file, and older keys that may still open records from `MCP_MUX_PREVIOUS_KEYS`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
/// File name of the generated key inside the data directory.
pub const KEY_FILE_NAME: &str = "encryption.key";
/// Hashed before the key into its id, so that the id is useless as the
/// digest of the key for any other purpose.
const KEY_ID_LABEL: &[u8] = b"mcp-mux key id v1\0";

/// A key that seals credentials. Its `Debug` shows only its id and where it
/// came from.
pub struct EncryptionKey {
    cipher: Aes256Gcm,
    id: String,
    source: KeySource,
}

/// Where a key was read from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
    /// The entry of `MCP_MUX_PREVIOUS_KEYS` at `position`, counted from 1.
    Previous {
        position: usize,
    },
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Environment => f.write_str("MCP_MUX_ENCRYPTION_KEY"),
            KeySource::File(path) => write!(f, "key file {}", path.display()),
            KeySource::Previous { position } => {
                write!(f, "entry {position} of MCP_MUX_PREVIOUS_KEYS")
            }
        }
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{source_name} must be the base64 encoding of exactly 32 bytes")]
    Malformed { source_name: KeySource },
    #[error("cannot read or create {path}: {error}")]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is readable by other users (mode {mode:o}); make it 0600")]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "{path} does not exist: set MCP_MUX_ENCRYPTION_KEY, or --data-dir to the gateway's data directory"
    )]
    Missing { path: PathBuf },
}

/// A sealed value could not be opened: wrong key, or tampered data.
#[derive(Debug, thiserror::Error)]
#[error("sealed data cannot be opened with this key")]
pub struct OpenError;

impl EncryptionKey {
    /// Decodes a base64 key given in the environment.
    pub fn from_base64(encoded: &str, source: KeySource) -> Result<Self, KeyError> {
        let bytes = SecretBox::new(Box::new(BASE64.decode(encoded.trim()).map_err(|_| {
            KeyError::Malformed {
                source_name: source.clone(),
            }
        })?));
        if bytes.expose_secret().len() != 32 {
            return Err(KeyError::Malformed {
                source_name: source,
            });
        }
        Ok(Self::from_key(
            Key::<Aes256Gcm>::from_slice(bytes.expose_secret()),
            source,
        ))
    }

    fn from_key(key: &Key<Aes256Gcm>, source: KeySource) -> Self {
        let digest = Sha256::new()
            .chain_update(KEY_ID_LABEL)
            .chain_update(key)
            .finalize();
        EncryptionKey {
            cipher: Aes256Gcm::new(key),
            id: hex::encode(&digest[..8]),
            source,
        }
    }

    /// Reads the key file in `data_dir`, creating it with a fresh random key
    /// (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(KEY_FILE_NAME);
        let file_error = |error| KeyError::File {
            path: path.clone(),
            error,
        };
        match std::fs::read_to_string(&path) {
            Ok(encoded) => {
                check_private(&path)?;
                Self::from_base64(&encoded, KeySource::File(path.clone()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(file_error)?;
                let key = Aes256Gcm::generate_key(OsRng);
                let encoded = SecretBox::new(Box::new(BASE64.encode(key)));
                write_private(&path, encoded.expose_secret().as_bytes()).map_err(file_error)?;
                Ok(Self::from_key(&key, KeySource::File(path)))
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// Reads the key file in `data_dir`, which must exist: for commands that
    /// work on a gateway's existing data.
    pub fn load(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(KEY_FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(encoded) => {
                check_private(&path)?;
                Self::from_base64(&encoded, KeySource::File(path))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(KeyError::Missing { path })
            }
            Err(error) => Err(KeyError::File { path, error }),
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Names the key without revealing it: the first 8 bytes, in hex, of
    /// SHA-256 over a fixed label and the key. Stored beside each sealed value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts `plaintext`, bound to `context` (the record's id) so a sealed
    /// value copied to another record does not open. Returns base64(nonce ‖ ciphertext).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption only fails for plaintexts beyond 64 GiB.
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        BASE64.encode(out)
    }

    /// Opens what [`EncryptionKey::seal`] produced with the same `context`.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<SecretBox<Vec<u8>>, OpenError> {
        let bytes = BASE64.decode(sealed).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map(|plain| SecretBox::new(Box::new(plain)))
            .map_err(|_| OpenError)
    }
}

/// Whether a missing key file is created (a gateway's first start) or an error
/// (commands that work on existing data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFile {
    CreateIfMissing,
    MustExist,
}

/// The keys in use: the current one seals, any of them opens.
#[derive(Debug)]
pub struct Keyring {
    current: EncryptionKey,
    /// Older keys, without the current one and without repeats.
    previous: Vec<EncryptionKey>,
}

impl From<EncryptionKey> for Keyring {
    fn from(current: EncryptionKey) -> Self {
        Keyring::new(current, Vec::new())
    }
}

impl Keyring {
    pub fn new(current: EncryptionKey, previous: Vec<EncryptionKey>) -> Self {
        let mut keyring = Keyring {
            current,
            previous: Vec::with_capacity(previous.len()),
        };
        for key in previous {
            if keyring.find(key.id()).is_none() {
                keyring.previous.push(key);
            }
        }
        keyring
    }

    /// The current key from `MCP_MUX_ENCRYPTION_KEY` (`current`) or else the
    /// key file in `data_dir`, and the older keys of `MCP_MUX_PREVIOUS_KEYS`
    /// (`previous`, comma-separated base64).
    pub fn load(
        current: Option<&SecretString>,
        previous: Option<&SecretString>,
        data_dir: &Path,
        key_file: KeyFile,
    ) -> Result<Self, KeyError> {
        let current = match (current, key_file) {
            (Some(encoded), _) => {
                EncryptionKey::from_base64(encoded.expose_secret(), KeySource::Environment)?
            }
            (None, KeyFile::CreateIfMissing) => EncryptionKey::load_or_create(data_dir)?,
            (None, KeyFile::MustExist) => EncryptionKey::load(data_dir)?,
        };
        let mut keys = Vec::new();
        if let Some(list) = previous {
            // Empty entries (a trailing comma) are skipped; positions count them
            // so that an error points at the entry as written.
            for (index, encoded) in list.expose_secret().split(',').enumerate() {
                if !encoded.trim().is_empty() {
                    keys.push(EncryptionKey::from_base64(
                        encoded,
                        KeySource::Previous {
                            position: index + 1,
                        },
                    )?);
                }
            }
        }
        Ok(Keyring::new(current, keys))
    }

    /// The key new records are sealed with.
    pub fn current(&self) -> &EncryptionKey {
        &self.current
    }

    /// The configured key with id `id`, if any.
    pub fn find(&self, id: &str) -> Option<&EncryptionKey> {
        self.keys().find(|key| key.id() == id)
    }

    /// Every configured key, the current one first.
    pub fn keys(&self) -> impl Iterator<Item = &EncryptionKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|error| KeyError::File {
            path: path.to_owned(),
            error,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = EncryptionKey::from_base64(KEY_A, KeySource::Environment).expect("valid key");
        let sealed = key.seal(b"hf_token", b"session-1");
        assert!(!sealed.contains("hf_token"));
        assert_eq!(
            key.open(&sealed, b"session-1")
                .expect("opens")
                .expose_secret(),
            b"hf_token"
        );
        assert!(key.open(&sealed, b"session-2").is_err());
        let other = EncryptionKey::from_base64(&BASE64.encode([9u8; 32]), KeySource::Environment)
            .expect("valid key");
        assert!(other.open(&sealed, b"session-1").is_err());
        assert!(key.open("bm9wZQ==", b"session-1").is_err());
    }

    #[test]
    fn a_malformed_key_is_refused() {
        let error =
            EncryptionKey::from_base64("c2hvcnQ=", KeySource::Environment).expect_err("short");
        assert_eq!(
            error.to_string(),
            "MCP_MUX_ENCRYPTION_KEY must be the base64 encoding of exactly 32 bytes"
        );
    }

    const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    #[test]
    fn a_key_id_is_stable_and_does_not_reveal_the_key() {
        let a = EncryptionKey::from_base64(KEY_A, KeySource::Environment).expect("valid key");
        let b = EncryptionKey::from_base64(KEY_B, KeySource::Environment).expect("valid key");
        // Stored beside every sealed value: it must never change for a key.
        assert_eq!(a.id(), "3a537210cd9ae4ec");
        assert_eq!(b.id(), "cc68210862f76214");
        let raw = BASE64.decode(KEY_A).expect("base64");
        assert!(!a.id().contains(&hex::encode(&raw[..8])));
        assert_eq!(
            format!("{a:?}"),
            "EncryptionKey { id: \"3a537210cd9ae4ec\", source: Environment, .. }"
        );
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn previous_keys_open_what_they_sealed_and_the_current_key_seals() {
        let dir = tempfile::tempdir().expect("temp dir");
        let keyring = Keyring::load(
            Some(&secret(KEY_B)),
            Some(&secret(&format!(" {KEY_A} ,,{KEY_B},"))),
            dir.path(),
            KeyFile::MustExist,
        )
        .expect("valid keys");
        assert_eq!(keyring.current().id(), "cc68210862f76214");
        let ids: Vec<&str> = keyring.keys().map(EncryptionKey::id).collect();
        assert_eq!(ids, ["cc68210862f76214", "3a537210cd9ae4ec"], "no repeats");
        let old = EncryptionKey::from_base64(KEY_A, KeySource::Environment).expect("valid key");
        let sealed = old.seal(b"hf_token", b"s");
        let opener = keyring.find(old.id()).expect("configured");
        assert_eq!(
            opener.open(&sealed, b"s").expect("opens").expose_secret(),
            b"hf_token"
        );
        assert_eq!(
            opener.source(),
            &KeySource::Previous { position: 1 },
            "the position counts entries as written"
        );
        assert!(keyring.find("0000000000000000").is_none());
        assert!(!format!("{keyring:?}").contains(KEY_A));
    }

    #[test]
    fn a_malformed_previous_key_is_refused_by_its_position() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = Keyring::load(
            Some(&secret(KEY_B)),
            Some(&secret(&format!("{KEY_A},c2hvcnQ="))),
            dir.path(),
            KeyFile::MustExist,
        )
        .expect_err("malformed");
        assert_eq!(
            error.to_string(),
            "entry 2 of MCP_MUX_PREVIOUS_KEYS must be the base64 encoding of exactly 32 bytes"
        );
    }

    #[test]
    fn a_command_on_existing_data_does_not_create_a_key_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error =
            Keyring::load(None, None, dir.path(), KeyFile::MustExist).expect_err("no key file");
        let path = dir.path().join(KEY_FILE_NAME);
        assert_eq!(
            error.to_string(),
            format!(
                "{} does not exist: set MCP_MUX_ENCRYPTION_KEY, or --data-dir to the gateway's data directory",
                path.display()
            )
        );
        assert!(!path.exists());
        let created =
            Keyring::load(None, None, dir.path(), KeyFile::CreateIfMissing).expect("created");
        let read = Keyring::load(None, Some(&secret(KEY_A)), dir.path(), KeyFile::MustExist)
            .expect("read");
        assert_eq!(read.current().id(), created.current().id());
        assert_eq!(read.current().source(), &KeySource::File(path));
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let first = EncryptionKey::load_or_create(dir.path()).expect("created");
        let path = dir.path().join(KEY_FILE_NAME);
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = first.seal(b"x", b"c");
        let second = EncryptionKey::load_or_create(dir.path()).expect("reused");
        assert_eq!(
            second
                .open(&sealed, b"c")
                .expect("same key")
                .expose_secret(),
            b"x"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            EncryptionKey::load_or_create(dir.path()),
            Err(KeyError::Permissions { .. })
        ));
    }
}
