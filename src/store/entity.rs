//! sea-orm entities for the tables in `migrations/`.

pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// JSON array of backend names.
        pub servers: String,
        /// Sealed credentials (see `store::crypto`): ciphertext, never plaintext.
        pub credentials: String,
        pub status: String,
        pub created_at: DateTimeUtc,
        /// `always` or `when_needed` (see `PrefixMode`).
        pub prefix: String,
        /// When the session ends by itself, if its creator set `ttl_seconds`.
        pub expires_at: Option<DateTimeUtc>,
        /// Hex SHA-256 of the token its MCP endpoint requires, if any.
        pub token_digest: Option<String>,
        /// Id of the key that sealed `credentials` (see `EncryptionKey::id`);
        /// NULL only in rows an older gateway wrote.
        pub key_id: Option<String>,
        /// Requests a second its MCP endpoint takes, if its creator set one.
        pub rate_limit: Option<i64>,
        /// JSON of what the session shows of its backends' tools and
        /// prompts (`mux::Curation`); NULL shows everything.
        pub curation: Option<String>,
        /// The signed-in user it belongs to, if any: their token's issuer
        /// and subject.
        pub owner_issuer: Option<String>,
        pub owner_subject: Option<String>,
        /// What its creator calls it, if they named it.
        pub name: Option<String>,
        /// JSON object of its labels, keys in order; NULL when it has none.
        pub labels: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod mcp_session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mcp_sessions")]
    pub struct Model {
        /// The client's `Mcp-Session-Id`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub session_id: String,
        pub protocol_version: String,
        /// JSON object: the client capabilities its backends are told of.
        pub client_capabilities: String,
        pub created_at: DateTimeUtc,
        pub last_seen_at: DateTimeUtc,
        /// The node that holds it in memory, if one said so.
        pub node_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_record {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_records")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub session_id: String,
        pub mcp_session_id: String,
        pub backend: Option<String>,
        pub tool: String,
        pub outcome: String,
        pub error_class: Option<String>,
        pub duration_ms: i64,
        pub at: DateTimeUtc,
        /// The signed-in user who made the call, if any.
        pub subject: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod key_check {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "key_check")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub sealed: String,
        /// Id of the key that sealed `sealed`; NULL only before the first
        /// start that knew key ids.
        pub key_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_state {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_states")]
    pub struct Model {
        /// Hex SHA-256 of the `state`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub state_digest: String,
        pub session_id: String,
        pub server: String,
        pub issuer: String,
        /// The sealed PKCE verifier.
        pub verifier: String,
        pub key_id: String,
        pub expires_at: DateTimeUtc,
        /// The callback the request named, which redeeming the code names again.
        pub redirect_uri: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_grant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_grants")]
    pub struct Model {
        /// Whose grant it is: a session's id, or a signed-in user's key
        /// (see `store::GrantHolder`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub holder: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub server: String,
        pub issuer: String,
        /// The sealed access and refresh tokens (JSON).
        pub tokens: String,
        pub key_id: String,
        pub expires_at: Option<DateTimeUtc>,
        /// JSON array of the scopes granted.
        pub scopes: String,
        pub version: i64,
        pub refreshing_until: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
        /// The callback it was granted to: with the issuer, it names the
        /// registered client that refreshes it.
        pub redirect_uri: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_link {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_links")]
    pub struct Model {
        /// Hex SHA-256 of the link's one-time key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key_digest: String,
        pub session_id: String,
        pub server: String,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_client {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_clients")]
    pub struct Model {
        /// Hex SHA-256 of the issuer and the redirect URI.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub issuer: String,
        pub redirect_uri: String,
        pub client_id: String,
        /// The sealed client secret, if the server issued one.
        pub client_secret: Option<String>,
        pub key_id: String,
        pub registered_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod node {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "nodes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub started_at: DateTimeUtc,
        pub heartbeat_at: DateTimeUtc,
        /// Where the other nodes reach it, if it said.
        pub url: Option<String>,
        /// What the other nodes show it when they pass it a request (random,
        /// for the node's lifetime).
        pub secret: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
