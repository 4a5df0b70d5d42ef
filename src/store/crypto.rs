//! AES-256-GCM sealing of credentials at rest, and where the key comes from:
//! `MCP_MUX_ENCRYPTION_KEY` (base64 of 32 bytes) or a 0600 key file.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretBox};

const NONCE_LEN: usize = 12;
/// File name of the generated key inside the data directory.
pub const KEY_FILE_NAME: &str = "encryption.key";

/// The key that seals credentials. Its `Debug` shows only where it came from.
pub struct EncryptionKey {
    cipher: Aes256Gcm,
    source: KeySource,
}

/// Where the key was read from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Environment => f.write_str("MCP_MUX_ENCRYPTION_KEY"),
            KeySource::File(path) => write!(f, "key file {}", path.display()),
        }
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
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
        let key = Key::<Aes256Gcm>::from_slice(bytes.expose_secret());
        Ok(EncryptionKey {
            cipher: Aes256Gcm::new(key),
            source,
        })
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
                Ok(EncryptionKey {
                    cipher: Aes256Gcm::new(&key),
                    source: KeySource::File(path),
                })
            }
            Err(error) => Err(file_error(error)),
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.source
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
