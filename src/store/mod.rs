//! The record of sessions: sea-orm entities and queries on SQLite (default) or
//! PostgreSQL. Credentials are sealed before they reach the database.

pub mod crypto;
mod entity;

use chrono::{DateTime, Utc};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{ActiveValue::Set, ConnectOptions, Database, DatabaseConnection, DbErr, EntityTrait};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::credentials::Credentials;
use crypto::{EncryptionKey, KeySource};
use entity::{key_check, session};

/// The plaintext sealed in `key_check`: opening it proves the key is the one
/// the store was created with.
const KEY_CHECK_PLAINTEXT: &[u8] = b"mcp-mux key check v1";
const KEY_CHECK_ID: i32 = 1;

/// A session as stored.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: Uuid,
    /// Backend names, in the order the client gave them.
    pub servers: Vec<String>,
    pub credentials: Credentials,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub prefix: PrefixMode,
}

/// Whether a session's tool, prompt and resource names carry their
/// backend's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrefixMode {
    /// Always `<server>__<tool>` and `<server>+<uri>`.
    #[default]
    Always,
    /// Only when the session has more than one backend: a session over one
    /// backend is then a transparent proxy.
    WhenNeeded,
}

impl PrefixMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PrefixMode::Always => "always",
            PrefixMode::WhenNeeded => "when_needed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "always" => Some(PrefixMode::Always),
            "when_needed" => Some(PrefixMode::WhenNeeded),
            _ => None,
        }
    }
}

/// The status of every session the store returns; deleting removes the row.
pub const STATUS_ACTIVE: &str = "active";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {url}: use sqlite://path?mode=rwc or postgres://…")]
    UnsupportedUrl { url: String },
    /// `reason` is the driver's message with the URL's password removed.
    #[error("cannot open the database {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot apply database migrations: {source}")]
    Migrate { source: DbErr },
    #[error("database error: {source}")]
    Database {
        #[from]
        source: DbErr,
    },
    #[error(
        "the encryption key from {source_name} is not the key this database was written with; \
         start with the original key"
    )]
    WrongKey { source_name: KeySource },
    #[error("stored session {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: &'static str },
}

/// Handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    key: std::sync::Arc<EncryptionKey>,
}

impl Store {
    /// Connects, applies pending migrations and checks that `key` is the one
    /// the database was created with.
    pub async fn connect(database_url: &str, key: EncryptionKey) -> Result<Self, StoreError> {
        let shown_url = without_password(database_url);
        let scheme = database_url.split(':').next().unwrap_or_default();
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            return Err(StoreError::UnsupportedUrl { url: shown_url });
        }
        let mut options = ConnectOptions::new(database_url.to_owned());
        options.max_connections(16).sqlx_logging(false);
        let db = Database::connect(options)
            .await
            .map_err(|error| StoreError::Connect {
                // Drivers repeat the whole URL, password included, in their errors.
                reason: error.to_string().replace(database_url, &shown_url),
                url: shown_url.clone(),
            })?;
        Migrator::up(&db, None)
            .await
            .map_err(|source| StoreError::Migrate { source })?;
        let store = Store {
            db,
            key: std::sync::Arc::new(key),
        };
        store.verify_key().await?;
        Ok(store)
    }

    async fn verify_key(&self) -> Result<(), StoreError> {
        let context = KEY_CHECK_ID.to_string();
        match key_check::Entity::find_by_id(KEY_CHECK_ID)
            .one(&self.db)
            .await?
        {
            Some(row) => match self.key.open(&row.sealed, context.as_bytes()) {
                Ok(plain) if plain.expose_secret() == KEY_CHECK_PLAINTEXT => Ok(()),
                _ => Err(StoreError::WrongKey {
                    source_name: self.key.source().clone(),
                }),
            },
            None => {
                let row = key_check::ActiveModel {
                    id: Set(KEY_CHECK_ID),
                    sealed: Set(self.key.seal(KEY_CHECK_PLAINTEXT, context.as_bytes())),
                };
                key_check::Entity::insert(row).exec(&self.db).await?;
                Ok(())
            }
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }

    pub async fn insert_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let id = record.id.to_string();
        let row = session::ActiveModel {
            credentials: Set(self
                .key
                .seal(&record.credentials.to_plaintext(), id.as_bytes())),
            id: Set(id),
            servers: Set(serde_json::to_string(&record.servers).unwrap_or_default()),
            status: Set(record.status.clone()),
            prefix: Set(record.prefix.as_str().to_owned()),
            created_at: Set(record.created_at),
        };
        session::Entity::insert(row).exec(&self.db).await?;
        Ok(())
    }

    pub async fn find_session(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
        let Some(row) = session::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let corrupt = |reason| StoreError::Corrupt {
            id: row.id.clone(),
            reason,
        };
        let servers: Vec<String> = serde_json::from_str(&row.servers)
            .map_err(|_| corrupt("servers is not a JSON list"))?;
        let plaintext = self
            .key
            .open(&row.credentials, row.id.as_bytes())
            .map_err(|_| corrupt("credentials do not open with the current key"))?;
        let credentials = Credentials::from_plaintext(plaintext.expose_secret())
            .map_err(|_| corrupt("credentials are not in the stored format"))?;
        Ok(Some(SessionRecord {
            id,
            servers,
            credentials,
            status: row.status,
            prefix: PrefixMode::parse(&row.prefix)
                .ok_or_else(|| corrupt("prefix is not always or when_needed"))?,
            created_at: row.created_at,
        }))
    }

    /// Deletes a session, credentials included; false when there was none.
    pub async fn delete_session(&self, id: Uuid) -> Result<bool, StoreError> {
        let result = session::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// The database kind, for start-up logs.
    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            sea_orm::DatabaseBackend::Postgres => "postgres",
            _ => "other",
        }
    }
}

/// `url` with any password replaced, for messages and logs.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_shown_url() {
        assert_eq!(
            without_password("postgres://mux:S3CRET@db:5432/mux"),
            "postgres://mux:***@db:5432/mux"
        );
        assert_eq!(
            without_password("sqlite://data/mcp-mux.db?mode=rwc"),
            "sqlite://data/mcp-mux.db?mode=rwc"
        );
        assert_eq!(
            without_password("not a url with S3CRET"),
            "(unparsable URL)"
        );
    }

    #[tokio::test]
    async fn an_unsupported_database_url_is_refused_without_its_password() {
        let key = EncryptionKey::from_base64(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            KeySource::Environment,
        )
        .expect("valid key");
        let error = Store::connect("mysql://admin:S3CRETPW@db.internal/mux", key)
            .await
            .expect_err("refused");
        assert_eq!(
            error.to_string(),
            "unsupported database URL mysql://admin:***@db.internal/mux: use sqlite://path?mode=rwc or postgres://…"
        );
    }
}
