//! The revocation check every authenticated request makes: is the account active and the
//! session family of its token live? Asked of the database, the truth every instance
//! shares, on every request, synchronously: a request is answered only after a read that
//! **started after the request arrived**, so a logout, a password change or a deactivation
//! committed by any instance is seen by the very next request on every instance (API.md §4).
//!
//! The reads are batched ([`crate::store::batch`]): the checks that arrive while a read is
//! running wait for the next read, which looks up all of their families at once (one
//! statement by primary key, see [`crate::store::users::auth_statuses`]); requests carrying
//! the same token share one row. No answer is ever reused for a check that arrived after
//! the read began.
//!
//! ```text
//! let status = state.revocation.status(claims.sid).await?; // Option<AuthStatus>
//! ```
//!
//! # Security
//!
//! A failing read fails every check of its batch (the request gets a 500, never access).
//! If the batch readers are gone (the runtime is shutting down) a check reads alone.

use anyhow::Context as _;
use uuid::Uuid;

use crate::store::{
    Db,
    batch::{BatchRead, Batched},
    users::{AUTH_STATUS_BATCH_SIZES, AuthStatus},
};

/// One statement reads the families of every check waiting for it.
struct StatusRead;

impl BatchRead for StatusRead {
    type Ask = Uuid;
    type Answer = Option<AuthStatus>;
    type Read = Vec<(Uuid, AuthStatus)>;
    const MAX_ASKS: usize = AUTH_STATUS_BATCH_SIZES[AUTH_STATUS_BATCH_SIZES.len() - 1];
    const READERS: usize = 2;

    async fn read(&self, db: &Db, families: &[Uuid]) -> Result<Self::Read, sqlx::Error> {
        let mut distinct = Vec::with_capacity(families.len());
        for family in families {
            if !distinct.contains(family) {
                distinct.push(*family);
            }
        }
        crate::store::users::auth_statuses(db, &distinct).await
    }

    fn answer(found: &Self::Read, family: &Uuid) -> Option<AuthStatus> {
        found
            .iter()
            .find(|(id, _)| id == family)
            .map(|(_, status)| status.clone())
    }
}

/// The batched revocation check of one server instance. Cheap to share; its readers start
/// with the first check (inside the runtime) and end when it is dropped.
#[derive(Debug)]
pub struct RevocationChecks(Batched<StatusRead>);

impl RevocationChecks {
    /// Checks against `db`.
    pub fn new(db: Db) -> Self {
        Self(Batched::new(db, StatusRead))
    }

    /// The account and the state of session family `family`, as the database holds them
    /// now: read after this call began. `None` when there is no such family.
    pub async fn status(&self, family: Uuid) -> anyhow::Result<Option<AuthStatus>> {
        self.0
            .ask(family)
            .await
            .map_err(anyhow::Error::new)
            .context("database")
    }
}
