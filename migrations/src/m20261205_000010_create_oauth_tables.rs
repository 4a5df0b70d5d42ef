//! What mcp-mux keeps as its backends' OAuth client: authorization requests
//! waiting for their callback, the grants they yield, and the client
//! registrations made with each authorization server. Secrets are sealed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OauthStates::Table)
                    .if_not_exists()
                    // Hex SHA-256 of the `state`: the state itself is not kept.
                    .col(string_len(OauthStates::StateDigest, 64).primary_key())
                    .col(string_len(OauthStates::SessionId, 36))
                    .col(string_len(OauthStates::Server, 64))
                    .col(text(OauthStates::Issuer))
                    // The sealed PKCE verifier.
                    .col(text(OauthStates::Verifier))
                    .col(string_len(OauthStates::KeyId, 16))
                    .col(timestamp_with_time_zone(OauthStates::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("oauth_states_session_id")
                    .table(OauthStates::Table)
                    .col(OauthStates::SessionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthGrants::Table)
                    .if_not_exists()
                    .col(string_len(OauthGrants::SessionId, 36))
                    .col(string_len(OauthGrants::Server, 64))
                    .col(text(OauthGrants::Issuer))
                    // The sealed access and refresh tokens.
                    .col(text(OauthGrants::Tokens))
                    .col(string_len(OauthGrants::KeyId, 16))
                    .col(timestamp_with_time_zone_null(OauthGrants::ExpiresAt))
                    // JSON array of the scopes granted.
                    .col(text(OauthGrants::Scopes))
                    // Counts refreshes: a refresh is stored only over the
                    // version it started from.
                    .col(big_integer(OauthGrants::Version))
                    // Set while one node refreshes the grant.
                    .col(timestamp_with_time_zone_null(OauthGrants::RefreshingUntil))
                    .col(timestamp_with_time_zone(OauthGrants::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(OauthGrants::SessionId)
                            .col(OauthGrants::Server),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthClients::Table)
                    .if_not_exists()
                    // Hex SHA-256 of the issuer and the redirect URI the
                    // client was registered with.
                    .col(string_len(OauthClients::Id, 64).primary_key())
                    .col(text(OauthClients::Issuer))
                    .col(text(OauthClients::RedirectUri))
                    .col(text(OauthClients::ClientId))
                    // The sealed client secret, if the server issued one.
                    .col(text_null(OauthClients::ClientSecret))
                    .col(string_len(OauthClients::KeyId, 16))
                    .col(timestamp_with_time_zone(OauthClients::RegisteredAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OauthStates::Table.into_iden(),
            OauthGrants::Table.into_iden(),
            OauthClients::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    StateDigest,
    SessionId,
    Server,
    Issuer,
    Verifier,
    KeyId,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum OauthGrants {
    Table,
    SessionId,
    Server,
    Issuer,
    Tokens,
    KeyId,
    ExpiresAt,
    Scopes,
    Version,
    RefreshingUntil,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OauthClients {
    Table,
    Id,
    Issuer,
    RedirectUri,
    ClientId,
    ClientSecret,
    KeyId,
    RegisteredAt,
}
