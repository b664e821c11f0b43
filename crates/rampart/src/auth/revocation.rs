//! The revocation check every authenticated request makes: is the account active and the
//! session family of its token live? Asked of the database, the truth every instance
//! shares, on every request, synchronously: a request is answered only after a read that
//! **started after the request arrived**, so a logout, a password change or a deactivation
//! committed by any instance is seen by the very next request on every instance (API.md §4).
//!
//! The reads are batched: the checks that arrive while a read is running wait for the next
//! read, which looks up all of their families at once (one statement by primary key, see
//! [`store::users::auth_statuses`]); requests carrying the same token share one row. Under
//! load that turns one database round trip per request — on SQLite a hop to the driver's
//! worker thread and back, on PostgreSQL a network round trip — into one per batch,
//! without caching anything: no answer is ever reused for a check that arrived after the
//! read began.
//!
//! ```text
//! let status = state.revocation.status(claims.sid).await?; // Option<AuthStatus>
//! ```
//!
//! # Security
//!
//! A failing read fails every check of its batch (the request gets a 500, never access).
//! If the batch readers are gone (the runtime is shutting down) a check reads directly.

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;

use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::store::{
    self, Db,
    users::{AUTH_STATUS_BATCH_SIZES, AuthStatus},
};

/// How many checks one read answers at most.
const MAX_BATCH: usize = AUTH_STATUS_BATCH_SIZES[AUTH_STATUS_BATCH_SIZES.len() - 1];
/// How many reads may run at once.
const READERS: usize = 2;
/// How many checks may wait for a read before a request waits to queue.
const QUEUE: usize = 4 * MAX_BATCH;

type Answer = Result<Option<AuthStatus>, Arc<sqlx::Error>>;

struct Check {
    family: Uuid,
    reply: oneshot::Sender<Answer>,
}

/// The batched revocation check of one server instance. Cheap to share; its readers start
/// with the first check (inside the runtime) and end when it is dropped.
pub struct RevocationChecks {
    db: Db,
    queue: OnceLock<mpsc::Sender<Check>>,
}

impl std::fmt::Debug for RevocationChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationChecks").finish_non_exhaustive()
    }
}

impl RevocationChecks {
    /// Checks against `db`.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            queue: OnceLock::new(),
        }
    }

    fn queue(&self) -> &mpsc::Sender<Check> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..READERS {
                tokio::spawn(read_batches(self.db.clone(), rx.clone()));
            }
            tx
        })
    }

    /// The account and the state of session family `family`, as the database holds them
    /// now: read after this call began. `None` when there is no such family.
    pub async fn status(&self, family: Uuid) -> anyhow::Result<Option<AuthStatus>> {
        let (reply, answer) = oneshot::channel();
        if self.queue().send(Check { family, reply }).await.is_ok()
            && let Ok(answer) = answer.await
        {
            return answer.map_err(|e| anyhow::Error::new(e).context("database"));
        }
        let found = store::users::auth_statuses(&self.db, &[family])
            .await
            .context("database")?;
        Ok(found.into_iter().next().map(|(_, status)| status))
    }
}

/// One reader: take every waiting check (up to [`MAX_BATCH`]), read their families in one
/// statement, answer each, repeat until the sender is dropped.
async fn read_batches(db: Db, queue: Arc<Mutex<mpsc::Receiver<Check>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut families = Vec::with_capacity(MAX_BATCH);
    loop {
        let taken = queue.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if taken == 0 {
            return;
        }
        families.clear();
        for check in &batch {
            if !families.contains(&check.family) {
                families.push(check.family);
            }
        }
        match store::users::auth_statuses(&db, &families).await {
            Ok(found) => {
                for check in batch.drain(..) {
                    let status = found
                        .iter()
                        .find(|(family, _)| *family == check.family)
                        .map(|(_, status)| status.clone());
                    // The request may have gone meanwhile: nobody to tell.
                    let _ = check.reply.send(Ok(status));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for check in batch.drain(..) {
                    let _ = check.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
