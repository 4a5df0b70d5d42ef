//! Credentials a client gives for its backends, held as `secrecy` types from
//! the moment they are parsed to the header that carries them.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// One session's credentials: backend name → the secret for that backend's
/// credential field (`token` for bearer, `api_key` for api_key).
#[derive(Clone, Default)]
pub struct Credentials(BTreeMap<String, SecretString>);

impl Credentials {
    pub fn insert(&mut self, server: String, secret: SecretString) {
        self.0.insert(server, secret);
    }

    pub fn get(&self, server: &str) -> Option<&SecretString> {
        self.0.get(server)
    }

    /// The plaintext form that the store encrypts: never logged, never sent.
    pub fn to_plaintext(&self) -> Vec<u8> {
        let exposed: BTreeMap<&str, &str> = self
            .0
            .iter()
            .map(|(server, secret)| (server.as_str(), secret.expose_secret()))
            .collect();
        serde_json::to_vec(&StoredCredentials(exposed)).unwrap_or_default()
    }

    /// Reads what [`Credentials::to_plaintext`] wrote.
    pub fn from_plaintext(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let stored: StoredCredentials<String> = serde_json::from_slice(bytes)?;
        Ok(Credentials(
            stored
                .0
                .into_iter()
                .map(|(server, secret)| (server, SecretString::from(secret)))
                .collect(),
        ))
    }
}

#[derive(Serialize, Deserialize)]
struct StoredCredentials<S: Ord>(BTreeMap<S, S>);

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|server| (server, "[REDACTED]")))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let mut credentials = Credentials::default();
        credentials.insert("hf".into(), SecretString::from("hf_secret_value"));
        let printed = format!("{credentials:?}");
        assert_eq!(printed, r#"{"hf": "[REDACTED]"}"#);
    }

    #[test]
    fn plaintext_round_trips() {
        let mut credentials = Credentials::default();
        credentials.insert("kb".into(), SecretString::from("k-1"));
        let back = Credentials::from_plaintext(&credentials.to_plaintext()).expect("round trip");
        assert_eq!(
            back.get("kb").map(|s| s.expose_secret().to_owned()),
            Some("k-1".into())
        );
    }
}
