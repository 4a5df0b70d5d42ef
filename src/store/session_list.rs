//! The sessions list: newest first, a page at a time, filtered by name,
//! labels, backend or owner, in the database so that a page is the same
//! whichever gateway answers it.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entity::session;
use super::labels::{Labels, labels_of};
use super::{Owner, Store, StoreError, owner_of};

/// A stored session as a list shows it: never its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: Uuid,
    pub servers: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub require_token: bool,
    pub owner: Option<Owner>,
    pub name: Option<String>,
    pub labels: Labels,
}

impl SessionSummary {
    /// Where the next page starts: after this session.
    pub fn cursor(&self) -> SessionCursor {
        SessionCursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// Which sessions a list shows; every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Only this user's (a signed-in caller's own, or the admin's choice).
    pub owner: Option<Owner>,
    /// Only sessions of an owner with this subject, under any issuer.
    pub owner_subject: Option<String>,
    /// Only sessions whose name contains this, ignoring ASCII case.
    pub name: Option<String>,
    /// Only sessions with each of these labels.
    pub labels: Vec<(String, String)>,
    /// Only sessions over this backend.
    pub server: Option<String>,
}

/// A place in the list, newest first: the creation time and id of the last
/// session of a page. Shown to clients as one opaque word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCursor {
    created_at: DateTime<Utc>,
    id: Uuid,
}

impl std::fmt::Display for SessionCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The time to the nanosecond the database gave it, so that the
        // session it names compares equal to itself.
        write!(
            f,
            "{}~{}",
            self.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            self.id
        )
    }
}

impl std::str::FromStr for SessionCursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (at, id) = text.split_once('~').ok_or(())?;
        Ok(SessionCursor {
            created_at: DateTime::parse_from_rfc3339(at)
                .map_err(|_| ())?
                .with_timezone(&Utc),
            id: Uuid::try_parse(id).map_err(|_| ())?,
        })
    }
}

/// A condition that `column`'s text contains `needle`, letter case and
/// all. `LIKE` would ignore ASCII case on SQLite alone and take `%` and `_`
/// as wildcards; a position function is exact on both databases.
fn contains(backend: DbBackend, column: impl Into<SimpleExpr>, needle: &str) -> SimpleExpr {
    let position = match backend {
        DbBackend::Postgres => "strpos",
        _ => "instr",
    };
    Expr::expr(
        Func::cust(Alias::new(position))
            .arg(column.into())
            .arg(needle),
    )
    .gt(0)
}

impl SessionFilter {
    fn condition(&self, backend: DbBackend) -> Condition {
        let mut condition = Condition::all();
        if let Some(owner) = &self.owner {
            condition = condition
                .add(session::Column::OwnerIssuer.eq(owner.issuer.as_str()))
                .add(session::Column::OwnerSubject.eq(owner.subject.as_str()));
        }
        if let Some(subject) = &self.owner_subject {
            condition = condition.add(session::Column::OwnerSubject.eq(subject.as_str()));
        }
        if let Some(name) = &self.name {
            // SQLite's LOWER folds ASCII letters only: so does the filter.
            condition = condition.add(contains(
                backend,
                Func::lower(Expr::col(session::Column::Name)),
                &name.to_ascii_lowercase(),
            ));
        }
        for (key, value) in &self.labels {
            // Keys and values hold no quote or backslash, so every quote
            // in the stored JSON delimits a string and this text occurs
            // only as this key with this value.
            let pair = serde_json::to_string(&BTreeMap::from([(key, value)])).unwrap_or_default();
            let pair = pair.trim_start_matches('{').trim_end_matches('}');
            condition = condition.add(contains(backend, Expr::col(session::Column::Labels), pair));
        }
        if let Some(server) = &self.server {
            let quoted = serde_json::to_string(server).unwrap_or_default();
            condition = condition.add(contains(
                backend,
                Expr::col(session::Column::Servers),
                &quoted,
            ));
        }
        condition
    }
}

impl Store {
    /// Up to `limit` sessions that pass `filter`, newest first, after
    /// `after` when given (for paging).
    pub async fn list_sessions(
        &self,
        limit: u64,
        after: Option<SessionCursor>,
        filter: &SessionFilter,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let mut query =
            session::Entity::find().filter(filter.condition(self.db.get_database_backend()));
        if let Some(after) = after {
            let id = after.id.to_string();
            query = query.filter(
                Condition::any()
                    .add(session::Column::CreatedAt.lt(after.created_at))
                    .add(
                        Condition::all()
                            .add(session::Column::CreatedAt.eq(after.created_at))
                            .add(session::Column::Id.lt(id)),
                    ),
            );
        }
        let rows = query
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(summary_of).collect()
    }
}

fn summary_of(row: session::Model) -> Result<SessionSummary, StoreError> {
    let corrupt = |reason| StoreError::Corrupt {
        id: row.id.clone(),
        reason,
    };
    Ok(SessionSummary {
        id: Uuid::try_parse(&row.id).map_err(|_| corrupt("id is not a UUID"))?,
        servers: serde_json::from_str(&row.servers)
            .map_err(|_| corrupt("servers is not a JSON list"))?,
        created_at: row.created_at,
        expires_at: row.expires_at,
        require_token: row.token_digest.is_some(),
        labels: labels_of(row.labels.as_deref())
            .map_err(|_| corrupt("labels is not a JSON object of strings"))?,
        name: row.name,
        owner: owner_of(row.owner_issuer, row.owner_subject),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written() {
        let cursor = SessionCursor {
            created_at: DateTime::parse_from_rfc3339("2026-12-06T06:00:00.123456789Z")
                .expect("an RFC 3339 time")
                .with_timezone(&Utc),
            id: Uuid::new_v4(),
        };
        assert_eq!(cursor.to_string().parse::<SessionCursor>(), Ok(cursor));
        assert_eq!("nonsense".parse::<SessionCursor>(), Err(()));
        assert_eq!("2026-12-06T06:00:00Z~x".parse::<SessionCursor>(), Err(()));
    }
}
