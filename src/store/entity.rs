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
