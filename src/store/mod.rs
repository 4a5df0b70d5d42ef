//! The record of sessions: sea-orm entities and queries on SQLite (default) or
//! PostgreSQL. Credentials, and the OAuth grants of backends, are sealed
//! before they reach the database.

mod audit;
pub mod crypto;
mod entity;
mod labels;
mod mcp_sessions;
mod nodes;
mod oauth;
mod session_list;

pub use audit::{AuditRecord, StoredAuditRecord};
pub use labels::Labels;
pub use mcp_sessions::McpSessionRecord;
pub use nodes::{CHANNEL, NodeRecord};
pub use oauth::{ClientRegistration, GrantHolder, PendingAuthorization, StoredGrant};
pub use session_list::{SessionCursor, SessionFilter, SessionSummary};

use chrono::{DateTime, Utc};
use migrations::{Migrator, MigratorTrait};
use sea_orm::sea_query::Expr;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectOptions, Database, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::credentials::Credentials;
use crate::mux::curation::Curation;
use crypto::{EncryptionKey, KeySource, Keyring};
use entity::{audit_record, key_check, mcp_session, oauth_grant, oauth_link, oauth_state, session};

/// The plaintext sealed in `key_check`: opening it proves a configured key is
/// the one every session was sealed with when the store was created or last
/// rotated, so that a missing key fails at start rather than on some session.
const KEY_CHECK_PLAINTEXT: &[u8] = b"mcp-mux key check v1";
const KEY_CHECK_ID: i32 = 1;

/// Connections to a SQLite database. It takes one writer at a time, so more
/// would only wait; and each holds three files in WAL mode (the database,
/// its log and its shared memory) for as long as the pool keeps it, which
/// after a burst is minutes.
const SQLITE_CONNECTIONS: u32 = 4;

/// A session as stored.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: Uuid,
    /// Backend names, in the order the client gave them.
    pub servers: Vec<String>,
    pub credentials: Credentials,
    pub created_at: DateTime<Utc>,
    pub prefix: PrefixMode,
    /// When the session ends by itself (`ttl_seconds` at create-session).
    pub expires_at: Option<DateTime<Utc>>,
    /// SHA-256 of the bearer token its MCP endpoint requires, if any: the
    /// token itself is never stored.
    pub token_digest: Option<[u8; 32]>,
    /// Requests a second its MCP endpoint takes (`rate_limit` at
    /// create-session), if its creator set one.
    pub rate_limit: Option<u32>,
    /// What it shows of its backends' tools and prompts.
    pub curation: Curation,
    /// The signed-in user it belongs to, if any.
    pub owner: Option<Owner>,
    /// What its creator calls it, if they named it.
    pub name: Option<String>,
    pub labels: Labels,
}

/// A signed-in user: the issuer of their token and its subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub issuer: String,
    pub subject: String,
}

/// The owner stored in a row's two columns, both or neither.
fn owner_of(issuer: Option<String>, subject: Option<String>) -> Option<Owner> {
    Some(Owner {
        issuer: issuer?,
        subject: subject?,
    })
}

impl SessionRecord {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
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

    /// What the names of `server`'s items start with in a session over
    /// `server_count` backends.
    pub fn prefix(self, server: &str, server_count: usize, separator: &str) -> String {
        match self {
            PrefixMode::WhenNeeded if server_count == 1 => String::new(),
            PrefixMode::Always | PrefixMode::WhenNeeded => format!("{server}{separator}"),
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

/// What [`Store::rotate_key`] did; its `Display` is the line `rotate-key` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Id of the current key, which now seals every session.
    pub key_id: String,
    /// Sessions re-sealed with the current key.
    pub resealed: u64,
    /// Sessions that were already sealed with it.
    pub already_current: u64,
    /// OAuth records (grants, pending authorizations, client
    /// registrations) re-sealed with the current key.
    pub oauth_resealed: u64,
}

impl std::fmt::Display for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "re-sealed {} sessions with key id {}; {} already current",
            self.resealed, self.key_id, self.already_current
        )?;
        if self.oauth_resealed > 0 {
            write!(f, "; re-sealed {} OAuth records", self.oauth_resealed)?;
        }
        Ok(())
    }
}

/// The status of every session the store returns; deleting removes the row.

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
    #[error(
        "the database was written with key id {key_id}, but the encryption key from \
         {source_name} has id {current_id} and MCP_MUX_PREVIOUS_KEYS holds no key with that id"
    )]
    KeyNotConfigured {
        key_id: String,
        current_id: String,
        source_name: KeySource,
    },
    #[error("the key check record does not open with key id {key_id}: the database was altered")]
    KeyCheckUnreadable { key_id: String },
    #[error("stored session {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: &'static str },
    #[error(
        "stored session {id} was sealed with key id {key_id}, which is neither the current key \
         nor in MCP_MUX_PREVIOUS_KEYS"
    )]
    SessionKeyNotConfigured { id: String, key_id: String },
}

impl StoreError {
    /// Whether the database did not answer, which passes: unlike a store
    /// that answers with something mcp-mux cannot use.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. } | StoreError::Database { .. } => true,
            StoreError::UnsupportedUrl { .. }
            | StoreError::Migrate { .. }
            | StoreError::WrongKey { .. }
            | StoreError::KeyNotConfigured { .. }
            | StoreError::KeyCheckUnreadable { .. }
            | StoreError::Corrupt { .. }
            | StoreError::SessionKeyNotConfigured { .. } => false,
        }
    }
}

/// Handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    keys: std::sync::Arc<Keyring>,
    /// The SQL of the audit INSERTs, built at the first batch.
    audit_inserts: std::sync::Arc<std::sync::OnceLock<Vec<String>>>,
}

impl Store {
    /// Connects, applies pending migrations and checks that `keys` hold the
    /// key the database was created with or last rotated to.
    pub async fn connect(database_url: &str, keys: impl Into<Keyring>) -> Result<Self, StoreError> {
        let shown_url = without_password(database_url);
        let scheme = database_url.split(':').next().unwrap_or_default();
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            return Err(StoreError::UnsupportedUrl { url: shown_url });
        }
        let mut options = ConnectOptions::new(database_url.to_owned());
        options
            .max_connections(if scheme == "sqlite" {
                SQLITE_CONNECTIONS
            } else {
                16
            })
            .sqlx_logging(false)
            // Write-ahead logging: readers never wait on the writer, and a
            // commit is one append. `NORMAL` syncs at checkpoints rather
            // than at each commit, which in WAL mode still survives a crash
            // of the process; only a power loss may drop the last commits.
            .map_sqlx_sqlite_opts(|options| {
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
            });
        // Stores opened at once in one process (tests, tools) open and
        // migrate one after the other: a connection switching to WAL while
        // another migrates would find the file locked.
        static MIGRATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _migrating = if scheme == "sqlite" {
            Some(MIGRATING.lock().await)
        } else {
            None
        };
        let db = Database::connect(options)
            .await
            .map_err(|error| StoreError::Connect {
                // Drivers repeat the whole URL, password included, in their errors.
                reason: error.to_string().replace(database_url, &shown_url),
                url: shown_url.clone(),
            })?;
        if scheme == "sqlite" {
            Migrator::up(&db, None)
                .await
                .map_err(|source| StoreError::Migrate { source })?;
        } else {
            migrate_one_node_at_a_time(database_url, &shown_url).await?;
        }
        let store = Store {
            db,
            keys: std::sync::Arc::new(keys.into()),
            audit_inserts: Default::default(),
        };
        store.verify_key().await?;
        Ok(store)
    }

    async fn verify_key(&self) -> Result<(), StoreError> {
        let current = self.keys.current();
        let row = match key_check::Entity::find_by_id(KEY_CHECK_ID)
            .one(&self.db)
            .await?
        {
            Some(row) => row,
            None => {
                let row = key_check::ActiveModel {
                    id: Set(KEY_CHECK_ID),
                    sealed: Set(seal_key_check(current)),
                    key_id: Set(Some(current.id().to_owned())),
                };
                // Another node starting at once may have written its own:
                // the first written is the one every node must open.
                key_check::Entity::insert(row)
                    .on_conflict(
                        sea_orm::sea_query::OnConflict::column(key_check::Column::Id)
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_without_returning(&self.db)
                    .await?;
                key_check::Entity::find_by_id(KEY_CHECK_ID)
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt {
                        id: "key check".into(),
                        reason: "missing after it was written",
                    })?
            }
        };
        match row.key_id {
            Some(key_id) => match self.keys.find(&key_id) {
                Some(key) if opens_key_check(key, &row.sealed) => Ok(()),
                Some(_) => Err(StoreError::KeyCheckUnreadable { key_id }),
                None => Err(StoreError::KeyNotConfigured {
                    key_id,
                    current_id: current.id().to_owned(),
                    source_name: current.source().clone(),
                }),
            },
            None => {
                let key = self
                    .keys
                    .keys()
                    .find(|key| opens_key_check(key, &row.sealed))
                    .ok_or_else(|| StoreError::WrongKey {
                        source_name: current.source().clone(),
                    })?;
                self.name_the_key_of_old_rows(key).await
            }
        }
    }

    /// Records `key` as the sealer of every row written before key ids
    /// existed: it opens key_check, and back then one key sealed everything.
    async fn name_the_key_of_old_rows(&self, key: &EncryptionKey) -> Result<(), StoreError> {
        let transaction = self.db.begin().await?;
        session::Entity::update_many()
            .col_expr(session::Column::KeyId, Expr::value(key.id()))
            .filter(session::Column::KeyId.is_null())
            .exec(&transaction)
            .await?;
        key_check::Entity::update_many()
            .col_expr(key_check::Column::KeyId, Expr::value(key.id()))
            .filter(key_check::Column::Id.eq(KEY_CHECK_ID))
            .filter(key_check::Column::KeyId.is_null())
            .exec(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }

    pub async fn insert_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let id = record.id.to_string();
        let key = self.keys.current();
        let row = session::ActiveModel {
            credentials: Set(key.seal(&record.credentials.to_plaintext(), id.as_bytes())),
            key_id: Set(Some(key.id().to_owned())),
            id: Set(id),
            servers: Set(serde_json::to_string(&record.servers).unwrap_or_default()),
            prefix: Set(record.prefix.as_str().to_owned()),
            created_at: Set(record.created_at),
            expires_at: Set(record.expires_at),
            token_digest: Set(record.token_digest.map(hex::encode)),
            // Never read: a stored session is active, a deleted one has no
            // row. Still written, for gateways of earlier versions sharing
            // the database, which require the column.
            status: Set("active".to_owned()),
            rate_limit: Set(record.rate_limit.map(i64::from)),
            curation: Set((!record.curation.is_default())
                .then(|| serde_json::to_string(&record.curation).unwrap_or_default())),
            owner_issuer: Set(record.owner.as_ref().map(|owner| owner.issuer.clone())),
            owner_subject: Set(record.owner.as_ref().map(|owner| owner.subject.clone())),
            name: Set(record.name.clone()),
            labels: Set(labels::labels_column(&record.labels)),
        };
        session::Entity::insert(row).exec(&self.db).await?;
        Ok(())
    }

    /// The backends of each stored session of `owner`.
    pub async fn servers_of_owner(&self, owner: &Owner) -> Result<Vec<Vec<String>>, StoreError> {
        let rows = session::Entity::find()
            .filter(session::Column::OwnerIssuer.eq(owner.issuer.as_str()))
            .filter(session::Column::OwnerSubject.eq(owner.subject.as_str()))
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                serde_json::from_str(&row.servers).map_err(|_| StoreError::Corrupt {
                    id: row.id.clone(),
                    reason: "servers is not a JSON list",
                })
            })
            .collect()
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
        let plaintext = self.open_credentials(&row)?;
        let credentials = Credentials::from_plaintext(plaintext.expose_secret())
            .map_err(|_| corrupt("credentials are not in the stored format"))?;
        Ok(Some(SessionRecord {
            id,
            servers,
            credentials,
            prefix: PrefixMode::parse(&row.prefix)
                .ok_or_else(|| corrupt("prefix is not always or when_needed"))?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            token_digest: match &row.token_digest {
                None => None,
                Some(text) => {
                    let mut digest = [0; 32];
                    hex::decode_to_slice(text, &mut digest)
                        .map_err(|_| corrupt("token_digest is not 64 hex digits"))?;
                    Some(digest)
                }
            },
            rate_limit: match row.rate_limit {
                None => None,
                Some(n) => Some(
                    u32::try_from(n)
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| corrupt("rate_limit is not a positive 32-bit number"))?,
                ),
            },
            curation: match &row.curation {
                None => Curation::default(),
                Some(text) => serde_json::from_str(text)
                    .map_err(|_| corrupt("curation is not the stored rules' JSON"))?,
            },
            owner: owner_of(row.owner_issuer.clone(), row.owner_subject.clone()),
            labels: labels::labels_of(row.labels.as_deref())
                .map_err(|_| corrupt("labels is not a JSON object of strings"))?,
            name: row.name.clone(),
        }))
    }

    /// Seals every session again with the current key, opening each with
    /// the configured key that sealed it, `batch` sessions per transaction,
    /// and every OAuth record; then makes the key check name the current
    /// key, so that the previous keys are no longer needed.
    ///
    /// Safe to run again, and while gateways that hold both keys serve: a
    /// row's sealed value and key id change in one statement, so a reader sees
    /// the old pair or the new one. The update applies only if the row still
    /// holds what was read, so a session deleted meanwhile stays deleted.
    pub async fn rotate_key(&self, batch: u64) -> Result<Rotation, StoreError> {
        let current = self.keys.current();
        let already_current = session::Entity::find()
            .filter(session::Column::KeyId.eq(current.id()))
            .count(&self.db)
            .await?;
        let mut resealed = 0;
        loop {
            // Rows re-sealed drop out of this query, so it starts over each
            // time and also finds rows that a gateway still sealing with an
            // old key wrote meanwhile. Read outside the transaction: SQLite
            // cannot turn a reading transaction into a writing one once
            // another connection has written.
            let rows = session::Entity::find()
                .filter(
                    Condition::any()
                        .add(session::Column::KeyId.is_null())
                        .add(session::Column::KeyId.ne(current.id())),
                )
                .order_by_asc(session::Column::Id)
                .limit(batch.max(1))
                .all(&self.db)
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut updates = Vec::with_capacity(rows.len());
            for row in &rows {
                let plaintext = self.open_credentials(row)?;
                updates.push(current.seal(plaintext.expose_secret(), row.id.as_bytes()));
            }
            let transaction = self.db.begin().await?;
            for (row, sealed) in rows.iter().zip(updates) {
                let result = session::Entity::update_many()
                    .col_expr(session::Column::Credentials, Expr::value(sealed))
                    .col_expr(session::Column::KeyId, Expr::value(current.id()))
                    .filter(session::Column::Id.eq(row.id.as_str()))
                    .filter(session::Column::Credentials.eq(row.credentials.as_str()))
                    .exec(&transaction)
                    .await?;
                resealed += result.rows_affected;
            }
            transaction.commit().await?;
        }
        let oauth_resealed = self.reseal_oauth_records().await?;
        key_check::Entity::update_many()
            .col_expr(
                key_check::Column::Sealed,
                Expr::value(seal_key_check(current)),
            )
            .col_expr(key_check::Column::KeyId, Expr::value(current.id()))
            .filter(key_check::Column::Id.eq(KEY_CHECK_ID))
            .exec(&self.db)
            .await?;
        Ok(Rotation {
            key_id: current.id().to_owned(),
            resealed,
            already_current,
            oauth_resealed,
        })
    }

    /// Opens a row's credentials with the key that sealed them; a row that
    /// names no key is opened by whichever configured key opens it.
    fn open_credentials(
        &self,
        row: &session::Model,
    ) -> Result<secrecy::SecretBox<Vec<u8>>, StoreError> {
        let context = row.id.as_bytes();
        let corrupt = |reason| StoreError::Corrupt {
            id: row.id.clone(),
            reason,
        };
        match &row.key_id {
            Some(key_id) => self
                .keys
                .find(key_id)
                .ok_or_else(|| StoreError::SessionKeyNotConfigured {
                    id: row.id.clone(),
                    key_id: key_id.clone(),
                })?
                .open(&row.credentials, context)
                .map_err(|_| corrupt("credentials do not open with the key that sealed them")),
            None => self
                .keys
                .keys()
                .find_map(|key| key.open(&row.credentials, context).ok())
                .ok_or_else(|| corrupt("credentials do not open with any configured key")),
        }
    }

    /// Deletes a session, credentials and the OAuth grants it holds itself
    /// included (not its owner's), and its MCP sessions; false when there
    /// was none.
    pub async fn delete_session(&self, id: Uuid) -> Result<bool, StoreError> {
        let id = id.to_string();
        let transaction = self.db.begin().await?;
        mcp_session::Entity::delete_many()
            .filter(mcp_session::Column::SessionId.eq(id.as_str()))
            .exec(&transaction)
            .await?;
        audit_record::Entity::delete_many()
            .filter(audit_record::Column::SessionId.eq(id.as_str()))
            .exec(&transaction)
            .await?;
        oauth_grant::Entity::delete_many()
            .filter(oauth_grant::Column::Holder.eq(id.as_str()))
            .exec(&transaction)
            .await?;
        oauth_state::Entity::delete_many()
            .filter(oauth_state::Column::SessionId.eq(id.as_str()))
            .exec(&transaction)
            .await?;
        oauth_link::Entity::delete_many()
            .filter(oauth_link::Column::SessionId.eq(id.as_str()))
            .exec(&transaction)
            .await?;
        let result = session::Entity::delete_by_id(id).exec(&transaction).await?;
        transaction.commit().await?;
        Ok(result.rows_affected > 0)
    }

    pub async fn count_sessions(&self) -> Result<u64, StoreError> {
        Ok(session::Entity::find().count(&self.db).await?)
    }

    /// Ids of sessions whose expiry time has passed.
    pub async fn expired_sessions(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::ExpiresAt.lte(now))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect())
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

fn seal_key_check(key: &EncryptionKey) -> String {
    key.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_ID.to_string().as_bytes())
}

fn opens_key_check(key: &EncryptionKey, sealed: &str) -> bool {
    key.open(sealed, KEY_CHECK_ID.to_string().as_bytes())
        .is_ok_and(|plain| plain.expose_secret() == KEY_CHECK_PLAINTEXT)
}

/// The PostgreSQL advisory lock a node holds while it migrates ("mcp-mux").
const MIGRATION_LOCK: i64 = 0x006d_6370_2d6d_7578;

/// Applies pending migrations to a PostgreSQL database under an advisory
/// lock: nodes that start at once would otherwise create the same tables
/// together, and all but one fail. Those after the first find nothing left
/// to do.
async fn migrate_one_node_at_a_time(database_url: &str, shown_url: &str) -> Result<(), StoreError> {
    use sea_orm::ConnectionTrait;
    // One connection: an advisory lock belongs to the session that took it.
    let mut options = ConnectOptions::new(database_url.to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|error| StoreError::Connect {
            // Drivers repeat the whole URL, password included, in their errors.
            reason: error.to_string().replace(database_url, shown_url),
            url: shown_url.to_owned(),
        })?;
    let migrate = |source| StoreError::Migrate { source };
    db.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await
        .map_err(migrate)?;
    let migrated = Migrator::up(&db, None).await;
    let unlocked = db
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await;
    // Closing the connection would release the lock anyway.
    let _ = db.close().await;
    migrated.map_err(migrate)?;
    unlocked.map(|_| ()).map_err(migrate)
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
