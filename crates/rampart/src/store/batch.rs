//! Batched reads: the reads that arrive while one is running wait for the next, which
//! answers all of them with one statement. Under load that turns one database round trip
//! per request — on SQLite a hop to the driver's worker thread and back, on PostgreSQL a
//! network round trip — into one per batch, **without caching anything**: a read is
//! answered only by a statement that started after the read was asked for, so whatever any
//! instance committed before the ask is seen (the revocation check and the catalog's stock
//! read rely on this).
//!
//! ```text
//! let reads = Batched::new(db, MyRead);     // MyRead: BatchRead
//! let answer = reads.ask(key).await?;        // read after this call began
//! ```
//!
//! A failing statement fails every read of its batch. If the batch readers are gone (the
//! runtime is shutting down) a read runs alone.

use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, mpsc, oneshot};

use super::Db;

/// What one batch reads and how each ask's answer is cut from it.
pub trait BatchRead: Send + Sync + 'static {
    /// What one caller asks for.
    type Ask: Send + 'static;
    /// What one caller gets.
    type Answer: Send + 'static;
    /// The outcome of one statement, for every ask of its batch.
    type Read: Send;
    /// How many asks one statement answers at most.
    const MAX_ASKS: usize;
    /// How many statements may run at once.
    const READERS: usize;

    /// Read what every ask of `asks` needs (1 to [`BatchRead::MAX_ASKS`] of them).
    fn read(
        &self,
        db: &Db,
        asks: &[Self::Ask],
    ) -> impl Future<Output = Result<Self::Read, sqlx::Error>> + Send;

    /// The answer to `ask` from `read`.
    fn answer(read: &Self::Read, ask: &Self::Ask) -> Self::Answer;
}

type Reply<R> = Result<<R as BatchRead>::Answer, Arc<sqlx::Error>>;

struct Pending<R: BatchRead> {
    ask: R::Ask,
    reply: oneshot::Sender<Reply<R>>,
}

/// Batched reads of `R` from one database. Cheap to share behind an `Arc`; its readers
/// start with the first ask (inside the runtime) and end when it is dropped.
pub struct Batched<R: BatchRead> {
    db: Db,
    read: Arc<R>,
    queue: OnceLock<mpsc::Sender<Pending<R>>>,
}

impl<R: BatchRead> std::fmt::Debug for Batched<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batched")
            .field("read", &std::any::type_name::<R>())
            .finish_non_exhaustive()
    }
}

impl<R: BatchRead> Batched<R> {
    /// Reads of `read` from `db`.
    pub fn new(db: Db, read: R) -> Self {
        Self {
            db,
            read: Arc::new(read),
            queue: OnceLock::new(),
        }
    }

    fn queue(&self) -> &mpsc::Sender<Pending<R>> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * R::MAX_ASKS);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..R::READERS {
                tokio::spawn(read_batches(self.db.clone(), self.read.clone(), rx.clone()));
            }
            tx
        })
    }

    /// The answer to `ask`, from a statement that started after this call began.
    pub async fn ask(&self, ask: R::Ask) -> Result<R::Answer, Arc<sqlx::Error>> {
        let (reply, answer) = oneshot::channel();
        let ask = match self.queue().send(Pending { ask, reply }).await {
            Ok(()) => match answer.await {
                Ok(answer) => return answer,
                // The reader is gone with the ask: nothing to retry with.
                Err(_) => return Err(Arc::new(sqlx::Error::PoolClosed)),
            },
            Err(mpsc::error::SendError(pending)) => pending.ask,
        };
        let read = self.read.read(&self.db, std::slice::from_ref(&ask)).await?;
        Ok(R::answer(&read, &ask))
    }
}

/// One reader: take every waiting ask (up to [`BatchRead::MAX_ASKS`]), read for all of
/// them in one statement, answer each, repeat until the sender is dropped.
async fn read_batches<R: BatchRead>(
    db: Db,
    read: Arc<R>,
    queue: Arc<Mutex<mpsc::Receiver<Pending<R>>>>,
) {
    let mut batch = Vec::with_capacity(R::MAX_ASKS);
    let mut asks = Vec::with_capacity(R::MAX_ASKS);
    let mut replies = Vec::with_capacity(R::MAX_ASKS);
    loop {
        let taken = queue.lock().await.recv_many(&mut batch, R::MAX_ASKS).await;
        if taken == 0 {
            return;
        }
        for pending in batch.drain(..) {
            asks.push(pending.ask);
            replies.push(pending.reply);
        }
        match read.read(&db, &asks).await {
            Ok(done) => {
                for (ask, reply) in asks.drain(..).zip(replies.drain(..)) {
                    // The request may have gone meanwhile: nobody to tell.
                    let _ = reply.send(Ok(R::answer(&done, &ask)));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                asks.clear();
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// Answers each ask with itself and the number of the statement that read it. Each
    /// statement reports how many asks it holds, then waits for a permit of `gate`.
    struct Gated {
        reads: AtomicUsize,
        gate: Semaphore,
        started: mpsc::UnboundedSender<usize>,
        fail: bool,
    }

    impl BatchRead for Gated {
        type Ask = u32;
        type Answer = (u32, usize);
        type Read = usize;
        const MAX_ASKS: usize = 8;
        const READERS: usize = 1;

        async fn read(&self, _: &Db, asks: &[u32]) -> Result<usize, sqlx::Error> {
            let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
            self.started.send(asks.len()).unwrap();
            self.gate.acquire().await.unwrap().forget();
            if self.fail {
                return Err(sqlx::Error::PoolTimedOut);
            }
            Ok(n)
        }

        fn answer(read: &usize, ask: &u32) -> (u32, usize) {
            (*ask, *read)
        }
    }

    async fn gated(fail: bool) -> (Arc<Batched<Gated>>, mpsc::UnboundedReceiver<usize>) {
        let f = crate::commerce::testing::fixture().await;
        let (started, reports) = mpsc::unbounded_channel();
        let read = Gated {
            reads: AtomicUsize::new(0),
            gate: Semaphore::new(0),
            started,
            fail,
        };
        (Arc::new(Batched::new(f.db, read)), reports)
    }

    /// Wait until `n` asks are queued behind the running statement.
    async fn queued(reads: &Batched<Gated>, n: usize) {
        let queue = reads.queue();
        while queue.max_capacity() - queue.capacity() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn asks_made_while_a_statement_runs_share_the_next_one_never_the_running_one() {
        let (reads, mut started) = gated(false).await;
        let first = tokio::spawn({
            let reads = reads.clone();
            async move { reads.ask(1).await.unwrap() }
        });
        assert_eq!(
            started.recv().await,
            Some(1),
            "the first statement reads one ask"
        );
        let later: Vec<_> = (2..=5)
            .map(|k| {
                let reads = reads.clone();
                tokio::spawn(async move { reads.ask(k).await.unwrap() })
            })
            .collect();
        queued(&reads, 4).await;
        reads.read.gate.add_permits(1);
        assert_eq!(first.await.unwrap(), (1, 1));
        assert_eq!(
            started.recv().await,
            Some(4),
            "one statement for the four waiting"
        );
        reads.read.gate.add_permits(1);
        for (k, ask) in (2..=5).zip(later) {
            assert_eq!(
                ask.await.unwrap(),
                (k, 2),
                "answered by the statement after the ask"
            );
        }
        assert_eq!(reads.read.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failing_statement_fails_every_ask_of_its_batch() {
        let (reads, mut started) = gated(true).await;
        let first = tokio::spawn({
            let reads = reads.clone();
            async move { reads.ask(1).await }
        });
        assert_eq!(started.recv().await, Some(1));
        let later: Vec<_> = (2..=4)
            .map(|k| {
                let reads = reads.clone();
                tokio::spawn(async move { reads.ask(k).await })
            })
            .collect();
        queued(&reads, 3).await;
        reads.read.gate.add_permits(2);
        assert!(first.await.unwrap().is_err());
        assert_eq!(started.recv().await, Some(3));
        for ask in later {
            let e = ask
                .await
                .unwrap()
                .expect_err("no answer from a failed statement");
            assert!(matches!(*e, sqlx::Error::PoolTimedOut), "{e}");
        }
    }
}
