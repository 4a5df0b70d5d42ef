//! The store's OAuth records on SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` names a server: single-use authorization states,
//! grants refreshed by one claimant at a time, sealed client registrations.

use chrono::{Duration, Utc};
use mcp_mux::store::{ClientRegistration, PendingAuthorization, Store, StoredGrant};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::helpers::{TEST_KEY, contains, database_bytes};
use crate::store::{OTHER_KEY, databases, key, keys};

fn grant(session_id: Uuid, access: &str, refresh: &str) -> StoredGrant {
    StoredGrant {
        holder: session_id.to_string(),
        server: "github".into(),
        issuer: "https://auth.example".into(),
        access_token: SecretString::from(access.to_owned()),
        refresh_token: Some(SecretString::from(refresh.to_owned())),
        expires_at: Some(Utc::now() + Duration::minutes(5)),
        scopes: vec!["repo".into()],
        version: 1,
        redirect_uri: "https://mux.example/oauth/callback".into(),
    }
}

#[tokio::test]
async fn an_authorization_state_is_taken_once_and_not_after_it_expires() {
    for database in databases().await {
        let store = Store::connect(&database.url, key(TEST_KEY))
            .await
            .expect("store");
        let session_id = Uuid::new_v4();
        let now = Utc::now();
        let pending = |verifier: &str, expires_at| PendingAuthorization {
            session_id,
            server: "github".into(),
            issuer: "https://auth.example".into(),
            verifier: SecretString::from(verifier.to_owned()),
            expires_at,
            redirect_uri: "https://mux.example/oauth/callback".into(),
        };
        let state = SecretString::from("state-one-secret".to_owned());
        store
            .insert_authorization_state(
                &state,
                &pending("verifier-one-secret", now + Duration::minutes(10)),
            )
            .await
            .expect("kept");
        let expired = SecretString::from("state-two-secret".to_owned());
        store
            .insert_authorization_state(
                &expired,
                &pending("verifier-two", now - Duration::seconds(1)),
            )
            .await
            .expect("kept");
        if let Some(file) = database.sqlite_file() {
            let bytes = database_bytes(&file);
            for secret in ["state-one-secret", "verifier-one-secret"] {
                assert!(!contains(&bytes, secret), "{secret} is stored in the clear");
            }
        }

        let taken = store
            .take_authorization_state("state-one-secret", now)
            .await
            .expect("read")
            .expect("taken");
        assert_eq!(
            (
                taken.session_id,
                taken.server.as_str(),
                taken.issuer.as_str()
            ),
            (session_id, "github", "https://auth.example")
        );
        assert_eq!(taken.verifier.expose_secret(), "verifier-one-secret");
        assert!(
            store
                .take_authorization_state("state-one-secret", now)
                .await
                .expect("read")
                .is_none(),
            "single-use"
        );
        assert!(
            store
                .take_authorization_state("state-two-secret", now)
                .await
                .expect("read")
                .is_none(),
            "expired"
        );
        assert!(
            store
                .take_authorization_state("never-issued", now)
                .await
                .expect("read")
                .is_none()
        );
        assert_eq!(
            store
                .purge_expired_authorization_states(now)
                .await
                .expect("purged"),
            0,
            "the expired one went when asked for"
        );
        database.drop_database().await;
    }
}

#[tokio::test]
async fn of_many_claims_on_one_grant_exactly_one_refreshes_and_it_stores_over_its_version() {
    for database in databases().await {
        let store = Store::connect(&database.url, key(TEST_KEY))
            .await
            .expect("store");
        let session_id = Uuid::new_v4();
        let holder = session_id.to_string();
        store
            .save_grant(&grant(
                session_id,
                "access-one-secret",
                "refresh-one-secret",
            ))
            .await
            .expect("saved");
        let now = Utc::now();
        let until = now + Duration::seconds(30);

        let claims = futures_util::future::join_all(
            (0..10).map(|_| store.claim_refresh(&holder, "github", 1, now, until)),
        )
        .await;
        let won = claims
            .into_iter()
            .filter(|claim| *claim.as_ref().expect("claimed"))
            .count();
        assert_eq!(won, 1, "one claimant");

        let mut refreshed = grant(session_id, "access-two-secret", "refresh-two-secret");
        refreshed.version = 1;
        assert!(store.complete_refresh(&refreshed, 1).await.expect("stored"));
        let stored = store
            .grant(&session_id.to_string(), "github")
            .await
            .expect("read")
            .expect("there");
        assert_eq!(stored.version, 2);
        assert_eq!(stored.access_token.expose_secret(), "access-two-secret");
        assert_eq!(
            stored
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            Some("refresh-two-secret".into())
        );
        // A refresh that began from the old version stores nothing.
        assert!(
            !store
                .complete_refresh(&grant(session_id, "stale", "stale"), 1)
                .await
                .expect("ran")
        );
        assert!(
            !store
                .claim_refresh(&session_id.to_string(), "github", 1, now, until)
                .await
                .expect("ran")
        );

        // A failed refresh releases its claim; a claim whose node died lapses.
        assert!(
            store
                .claim_refresh(&session_id.to_string(), "github", 2, now, until)
                .await
                .expect("ran")
        );
        assert!(
            !store
                .claim_refresh(&session_id.to_string(), "github", 2, now, until)
                .await
                .expect("ran")
        );
        store
            .release_refresh(&session_id.to_string(), "github", 2)
            .await
            .expect("released");
        assert!(
            store
                .claim_refresh(
                    &session_id.to_string(),
                    "github",
                    2,
                    now,
                    now + Duration::seconds(1)
                )
                .await
                .expect("ran")
        );
        assert!(
            store
                .claim_refresh(
                    &session_id.to_string(),
                    "github",
                    2,
                    now + Duration::seconds(2),
                    until
                )
                .await
                .expect("ran"),
            "lapsed"
        );

        if let Some(file) = database.sqlite_file() {
            let bytes = database_bytes(&file);
            for secret in [
                "access-one-secret",
                "refresh-one-secret",
                "access-two-secret",
                "refresh-two-secret",
            ] {
                assert!(!contains(&bytes, secret), "{secret} is stored in the clear");
            }
        }
        let debug = format!("{stored:?}");
        assert!(!debug.contains("secret"), "{debug}");

        let taken = store
            .take_grants(&session_id.to_string(), None)
            .await
            .expect("taken");
        assert_eq!(taken.len(), 1);
        assert!(
            store
                .grant(&session_id.to_string(), "github")
                .await
                .expect("read")
                .is_none()
        );

        // Deleting the session deletes its grant.
        store
            .save_grant(&grant(session_id, "a", "r"))
            .await
            .expect("saved");
        store.delete_session(session_id).await.expect("deleted");
        assert!(
            store
                .grant(&session_id.to_string(), "github")
                .await
                .expect("read")
                .is_none()
        );
        database.drop_database().await;
    }
}

#[tokio::test]
async fn a_client_registration_is_kept_per_issuer_and_redirect_uri_with_its_secret_sealed() {
    for database in databases().await {
        let store = Store::connect(&database.url, key(TEST_KEY))
            .await
            .expect("store");
        let registration = ClientRegistration {
            issuer: "https://auth.example".into(),
            redirect_uri: "https://mux.example/oauth/callback".into(),
            client_id: "client-1".into(),
            client_secret: Some(SecretString::from("client-secret-one".to_owned())),
        };
        store
            .save_client_registration(&registration)
            .await
            .expect("saved");
        let found = store
            .client_registration("https://auth.example", "https://mux.example/oauth/callback")
            .await
            .expect("read")
            .expect("there");
        assert_eq!(found.client_id, "client-1");
        assert_eq!(
            found
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            Some("client-secret-one".into())
        );
        assert!(
            store
                .client_registration(
                    "https://auth.example",
                    "https://other.example/oauth/callback"
                )
                .await
                .expect("read")
                .is_none()
        );
        assert!(!format!("{found:?}").contains("client-secret-one"));
        if let Some(file) = database.sqlite_file() {
            assert!(!contains(&database_bytes(&file), "client-secret-one"));
        }
        store
            .forget_client_registration(
                "https://auth.example",
                "https://mux.example/oauth/callback",
            )
            .await
            .expect("forgotten");
        assert!(
            store
                .client_registration("https://auth.example", "https://mux.example/oauth/callback")
                .await
                .expect("read")
                .is_none()
        );
        database.drop_database().await;
    }
}

#[tokio::test]
async fn rotating_the_key_re_seals_every_oauth_record() {
    for database in databases().await {
        let store = Store::connect(&database.url, key(TEST_KEY))
            .await
            .expect("store");
        let session_id = Uuid::new_v4();
        store
            .save_grant(&grant(session_id, "access-secret", "refresh-secret"))
            .await
            .expect("saved");
        let state = SecretString::from("state-secret".to_owned());
        let expires_at = Utc::now() + Duration::minutes(10);
        store
            .insert_authorization_state(
                &state,
                &PendingAuthorization {
                    session_id,
                    server: "github".into(),
                    issuer: "https://auth.example".into(),
                    verifier: SecretString::from("verifier-secret".to_owned()),
                    expires_at,
                    redirect_uri: "https://mux.example/oauth/callback".into(),
                },
            )
            .await
            .expect("kept");
        let registration = |secret: Option<&str>, redirect: &str| ClientRegistration {
            issuer: "https://auth.example".into(),
            redirect_uri: redirect.into(),
            client_id: "client-1".into(),
            client_secret: secret.map(|s| SecretString::from(s.to_owned())),
        };
        store
            .save_client_registration(&registration(Some("client-secret"), "https://a/cb"))
            .await
            .expect("saved");
        store
            .save_client_registration(&registration(None, "https://b/cb"))
            .await
            .expect("saved");
        drop(store);

        let store = Store::connect(&database.url, keys(OTHER_KEY, &[TEST_KEY]))
            .await
            .expect("store");
        let rotation = store.rotate_key(10).await.expect("rotated");
        assert_eq!(rotation.oauth_resealed, 4, "{}", database.url);
        assert!(
            rotation
                .to_string()
                .ends_with("; re-sealed 4 OAuth records"),
            "{rotation}"
        );
        assert_eq!(store.rotate_key(10).await.expect("again").oauth_resealed, 0);
        drop(store);

        // The new key alone opens them all.
        let store = Store::connect(&database.url, key(OTHER_KEY))
            .await
            .expect("store");
        let stored = store
            .grant(&session_id.to_string(), "github")
            .await
            .expect("read")
            .expect("there");
        assert_eq!(stored.access_token.expose_secret(), "access-secret");
        let taken = store
            .take_authorization_state("state-secret", Utc::now())
            .await
            .expect("read")
            .expect("taken");
        assert_eq!(taken.verifier.expose_secret(), "verifier-secret");
        let found = store
            .client_registration("https://auth.example", "https://a/cb")
            .await
            .expect("read")
            .expect("there");
        assert_eq!(
            found.client_secret.map(|s| s.expose_secret().to_owned()),
            Some("client-secret".into())
        );
        database.drop_database().await;
    }
}

#[tokio::test]
async fn an_authorization_link_opens_once_for_its_session_and_server_until_it_expires() {
    for database in databases().await {
        let store = Store::connect(&database.url, key(TEST_KEY))
            .await
            .expect("store");
        let session_id = Uuid::new_v4();
        let now = Utc::now();
        let key_one = SecretString::from("link-key-one".to_owned());
        let expired = SecretString::from("link-key-two".to_owned());
        store
            .insert_authorization_link(&key_one, session_id, "github", now + Duration::hours(1))
            .await
            .expect("kept");
        store
            .insert_authorization_link(&expired, session_id, "github", now - Duration::seconds(1))
            .await
            .expect("kept");
        if let Some(file) = database.sqlite_file() {
            assert!(!contains(&database_bytes(&file), "link-key-one"));
        }
        let take = |key: &'static str, session: Uuid, server: &'static str| {
            let store = store.clone();
            async move {
                store
                    .take_authorization_link(key, session, server, Utc::now())
                    .await
                    .expect("store answers")
            }
        };
        assert!(
            !take("link-key-one", Uuid::new_v4(), "github").await,
            "another session"
        );
        assert!(
            !take("link-key-one", session_id, "linear").await,
            "another server"
        );
        assert!(take("link-key-one", session_id, "github").await);
        assert!(
            !take("link-key-one", session_id, "github").await,
            "used once"
        );
        assert!(!take("link-key-two", session_id, "github").await, "expired");
        assert_eq!(
            store
                .purge_expired_authorization_states(Utc::now())
                .await
                .expect("purged"),
            1
        );
    }
}
