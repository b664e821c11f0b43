//! Password hashing and verification: Argon2id PHC strings, computed off the async runtime
//! in a bounded pool, with legacy bcrypt hashes verified and upgraded.
//!
//! ```text
//! let hasher = PasswordHasher::new(params, cores, 4 * cores, Duration::from_secs(2));
//! let stored = hasher.hash(&new_password).await?; // "$argon2id$v=19$m=19456,t=2,p=1$…"
//! match hasher.verify(&presented, account.map(|a| a.hash.as_str())).await? {
//!     Verified::Yes { rehash: Some(upgraded) } => { /* store `upgraded`, then log in */ }
//!     Verified::Yes { rehash: None } => { /* log in */ }
//!     Verified::No => { /* 401 invalid_credentials */ }
//! }
//! ```
//!
//! At most `workers` hashes run at once, each on one of `workers` dedicated hashing threads
//! that keep their Argon2 memory between jobs; at most `queue` callers wait for a worker,
//! each for at most `queue_deadline`. Any caller beyond that gets
//! [`HashError::Busy`] at once, which the HTTP layer answers with 503 and `Retry-After`: a
//! login flood is shed instead of stalling every other route.
//!
//! # Security
//! - Unknown accounts (`stored == None`) and unusable stored hashes cost one Argon2id verify
//!   with the current parameters against a fixed hash, so the answer's timing does not
//!   reveal whether the account exists. The fixed hash is computed on first use, so that
//!   first call alone costs two hashes.
//! - bcrypt hashes (`$2a$`, `$2b$`, `$2y$`) are verified (bcrypt ≥ 0.19.2: older versions
//!   panic on non-ASCII hash input, RUSTSEC-2026-0199) and answered with a rehash. bcrypt
//!   uses only the first 72 bytes of a password. Their verify time follows their own cost,
//!   so it can tell a legacy account apart, never an unknown one.
//! - Hash comparisons are constant-time inside the `argon2` and `bcrypt` crates; this module
//!   never compares hashes itself.
//! - A stored hash is never logged. Stored parameters above [`HashParams::MAX_MEMORY_KIB`],
//!   [`HashParams::MAX_ITERATIONS`], [`HashParams::MAX_PARALLELISM`] or bcrypt cost
//!   [`MAX_BCRYPT_COST`] are treated as unusable, so one odd row cannot pin a worker for
//!   minutes or exhaust memory.
//! - A job keeps its worker until it finishes even when its caller goes away, so abandoned
//!   requests cannot push more than `workers` hashes onto the CPU.
//! - Memory is bounded by the workers: each hashing thread owns one block buffer of the
//!   current Argon2 memory size, allocated once and reused for every job (a stored hash with
//!   a larger memory cost grows it for that job only). Allocating a fresh 19 MiB buffer per
//!   job on tokio's growing blocking pool let the allocator keep one per thread: 64
//!   concurrent logins took the server to 856 MiB.

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use argon2::{
    Algorithm, Params, PasswordHash, Version,
    password_hash::phc::{Output, ParamsString, Salt},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

use crate::domain::password::Password;

mod threads;

use threads::{Job, Scratch, argon2_into, spawn_hash_threads};

/// Highest bcrypt cost accepted in a stored hash (cost 16 is about 4 s of CPU; imported
/// Node.js hashes use 10 to 12).
pub const MAX_BCRYPT_COST: u32 = 16;

/// What the fixed hash for unknown accounts is a hash of. Its value does not matter: a match
/// against it is still answered [`Verified::No`].
const DUMMY_PASSWORD: &[u8] = b"rampart: no account has this password hash";

/// Argon2id cost parameters. Never weaker than API.md's minimum (m=19456 KiB, t=2, p=1),
/// which is also the [`Default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl HashParams {
    /// Least memory per hash, in KiB (19 MiB, OWASP's Argon2id minimum).
    pub const MIN_MEMORY_KIB: u32 = 19_456;
    /// Fewest passes over memory.
    pub const MIN_ITERATIONS: u32 = 2;
    /// Fewest lanes.
    pub const MIN_PARALLELISM: u32 = 1;
    /// Most memory per hash, in KiB (1 GiB): beyond that a server runs out of memory first.
    pub const MAX_MEMORY_KIB: u32 = 1 << 20;
    /// Most passes over memory.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Most lanes.
    pub const MAX_PARALLELISM: u32 = 64;

    /// Parameters for new hashes, refusing any weaker than the minimum or absurdly large.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, String> {
        let mut problems = Vec::new();
        if memory_kib < Self::MIN_MEMORY_KIB {
            problems.push(format!(
                "memory must be at least {} KiB",
                Self::MIN_MEMORY_KIB
            ));
        }
        if iterations < Self::MIN_ITERATIONS {
            problems.push(format!(
                "iterations must be at least {}",
                Self::MIN_ITERATIONS
            ));
        }
        if parallelism < Self::MIN_PARALLELISM {
            problems.push(format!(
                "parallelism must be at least {}",
                Self::MIN_PARALLELISM
            ));
        }
        if memory_kib > Self::MAX_MEMORY_KIB {
            problems.push(format!(
                "memory must be at most {} KiB",
                Self::MAX_MEMORY_KIB
            ));
        }
        if iterations > Self::MAX_ITERATIONS {
            problems.push(format!(
                "iterations must be at most {}",
                Self::MAX_ITERATIONS
            ));
        }
        if parallelism > Self::MAX_PARALLELISM {
            problems.push(format!(
                "parallelism must be at most {}",
                Self::MAX_PARALLELISM
            ));
        }
        if problems.is_empty() {
            let params = Self {
                memory_kib,
                iterations,
                parallelism,
            };
            params
                .argon2_params()
                .map_err(|e| format!("invalid Argon2 parameters: {e}"))?;
            Ok(params)
        } else {
            Err(format!("password hashing: {}", problems.join("; ")))
        }
    }

    /// Memory per hash, in KiB (Argon2 `m`).
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Passes over memory (Argon2 `t`).
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Lanes (Argon2 `p`).
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    fn argon2_params(&self) -> Result<Params, argon2::Error> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
    }

    /// Whether a stored Argon2 hash used parameters weaker than these, or another variant,
    /// version or a shorter output than new hashes get.
    fn is_weaker(&self, hash: &PasswordHash, stored: &Params) -> bool {
        hash.algorithm != argon2::ARGON2ID_IDENT
            || hash.version != Some(Version::V0x13.into())
            || stored.m_cost() < self.memory_kib
            || stored.t_cost() < self.iterations
            || stored.p_cost() < self.parallelism
            || hash
                .hash
                .as_ref()
                .is_none_or(|out| out.len() < Params::DEFAULT_OUTPUT_LEN)
    }

    /// Whether a stored hash's parameters are within what a worker may be asked to compute.
    fn allows(stored: &Params) -> bool {
        stored.m_cost() <= Self::MAX_MEMORY_KIB
            && stored.t_cost() <= Self::MAX_ITERATIONS
            && stored.p_cost() <= Self::MAX_PARALLELISM
    }
}

impl Default for HashParams {
    /// m=19456 KiB, t=2, p=1.
    fn default() -> Self {
        Self {
            memory_kib: Self::MIN_MEMORY_KIB,
            iterations: Self::MIN_ITERATIONS,
            parallelism: Self::MIN_PARALLELISM,
        }
    }
}

/// The outcome of [`PasswordHasher::verify`].
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password, unknown account or unusable stored hash.
    No,
    /// The password matches.
    Yes {
        /// A fresh Argon2id PHC string with the current parameters, to store in place of
        /// the old hash when that was bcrypt or weaker than current.
        rehash: Option<String>,
    },
}

/// Why a password could not be hashed or verified.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full (or the wait passed its deadline): answer
    /// 503 with `Retry-After`. The delay is the queue deadline rounded up to whole seconds,
    /// at least 1.
    #[error("password hashing is busy; retry in {retry_after_secs} s")]
    Busy {
        /// Seconds after which a retry may find a free worker.
        retry_after_secs: u64,
    },
    /// The hashing job failed (random number generator, memory, a panicked task).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Hashes and verifies passwords in a bounded pool. `Clone` is cheap: clones share the pool.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: HashParams,
    /// The Argon2 parameters of new hashes.
    argon2: Params,
    /// Jobs for the hashing threads; one runs on each permit of `workers`.
    jobs: Mutex<mpsc::Sender<Job>>,
    /// One permit per worker.
    workers: Arc<Semaphore>,
    /// How many workers there are.
    worker_count: usize,
    /// Callers currently waiting for a permit.
    waiting: AtomicUsize,
    queue: usize,
    queue_deadline: Duration,
    /// The fixed hash that unknown accounts are verified against.
    dummy: OnceLock<PasswordHash>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("params", &self.params)
            .field("worker_count", &self.worker_count)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

/// A stored hash, sorted out before any worker is taken.
enum Target {
    /// No usable hash: verify against the fixed hash for equal timing.
    Dummy,
    Argon2 {
        hash: Box<PasswordHash>,
        weaker: bool,
    },
    Bcrypt(String),
}

impl PasswordHasher {
    /// A pool running at most `workers` (at least 1) hashes at once, where at most `queue`
    /// callers wait for a worker, each at most `queue_deadline`. Size `workers` to the CPU
    /// cores given to hashing; `queue` and `queue_deadline` bound how long a login may
    /// wait before it is shed with [`HashError::Busy`].
    pub fn new(params: HashParams, workers: usize, queue: usize, queue_deadline: Duration) -> Self {
        // `HashParams::new` already checked these with the same call; the fallback, the API
        // minimum, is never weaker than the policy.
        let argon2_params = params.argon2_params().unwrap_or(Params::DEFAULT);
        let workers = workers.clamp(1, Semaphore::MAX_PERMITS);
        let jobs = spawn_hash_threads(workers, argon2_params.block_count());
        Self {
            inner: Arc::new(Inner {
                params,
                argon2: argon2_params,
                jobs: Mutex::new(jobs),
                workers: Arc::new(Semaphore::new(workers)),
                worker_count: workers,
                waiting: AtomicUsize::new(0),
                queue,
                queue_deadline,
                dummy: OnceLock::new(),
            }),
        }
    }

    /// The parameters new hashes get.
    pub fn params(&self) -> HashParams {
        self.inner.params
    }

    /// Hash jobs running now (for metrics and tests).
    pub fn running(&self) -> usize {
        self.inner
            .worker_count
            .saturating_sub(self.inner.workers.available_permits())
    }

    /// Callers waiting for a worker now (for metrics).
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Hash `password` as an Argon2id PHC string with a random 16-byte salt from the OS.
    /// Any length is hashed: pass passwords that went through [`Password::parse_new`].
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let secret = SecretString::from(password.expose());
        let inner = Arc::clone(&self.inner);
        self.run(move |scratch| inner.hash_blocking(secret.expose_secret().as_bytes(), scratch))
            .await
    }

    /// Check `password` against the `stored` hash of the account, `None` when there is no
    /// such account.
    ///
    /// Unknown accounts and unusable stored hashes (logged at `warn`, without the hash) cost
    /// a dummy Argon2id verify and answer [`Verified::No`]. A password that is not
    /// [plausible](Password::is_plausible) answers [`Verified::No`] at once: no account can
    /// have it. A match on a bcrypt hash, or on an Argon2 hash weaker than the current
    /// parameters, carries a rehash to store.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        if !password.is_plausible() {
            return Ok(Verified::No);
        }
        let target = match stored {
            None => Target::Dummy,
            Some(stored) => self.inner.classify(stored),
        };
        let secret = SecretString::from(password.expose());
        let inner = Arc::clone(&self.inner);
        self.run(move |scratch| {
            inner.verify_blocking(secret.expose_secret().as_bytes(), target, scratch)
        })
        .await
    }

    /// Run `job` on a hashing thread once a worker is free.
    async fn run<T, F>(&self, job: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Scratch) -> Result<T, HashError> + Send + 'static,
    {
        let permit = self.acquire().await?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |scratch| {
            // The worker stays taken until the job ends, even if the caller has gone; it is
            // given back before the answer, so the caller may take it again at once.
            let outcome = job(scratch);
            drop(permit);
            let _ = answer.send(outcome);
        });
        let sent = match self.inner.jobs.lock() {
            Ok(jobs) => jobs.send(job).is_ok(),
            Err(_) => false,
        };
        if !sent {
            return Err(closed());
        }
        answered.await.map_err(|_| {
            HashError::Internal(anyhow::anyhow!(
                "password hashing job ended without an answer"
            ))
        })?
    }

    /// Take a worker: at once if one is free, else after a wait in the bounded queue.
    async fn acquire(&self) -> Result<OwnedSemaphorePermit, HashError> {
        let inner = &self.inner;
        match Arc::clone(&inner.workers).try_acquire_owned() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(closed()),
            Err(TryAcquireError::NoPermits) => {}
        }
        let Some(_place) = QueuePlace::take(&inner.waiting, inner.queue) else {
            return Err(self.busy());
        };
        let waited = std::time::Instant::now();
        let outcome = tokio::time::timeout(
            inner.queue_deadline,
            Arc::clone(&inner.workers).acquire_owned(),
        )
        .await;
        crate::metrics::record_hash_wait(waited.elapsed());
        match outcome {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(closed()),
            Err(_elapsed) => Err(self.busy()),
        }
    }

    fn busy(&self) -> HashError {
        crate::metrics::record_hash_rejected();
        let deadline = self.inner.queue_deadline;
        let secs = deadline.as_secs() + u64::from(deadline.subsec_nanos() > 0);
        HashError::Busy {
            retry_after_secs: secs.max(1),
        }
    }
}

fn closed() -> HashError {
    HashError::Internal(anyhow::anyhow!("password hashing pool closed"))
}

/// A place in the wait queue, given back on drop, including when the waiting caller is
/// cancelled.
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(waiting: &'a AtomicUsize, queue: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < queue).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Inner {
    fn classify(&self, stored: &str) -> Target {
        match self.try_classify(stored) {
            Ok(target) => target,
            Err(reason) => {
                tracing::warn!(reason, "unusable stored password hash: answered No");
                Target::Dummy
            }
        }
    }

    fn try_classify(&self, stored: &str) -> Result<Target, &'static str> {
        if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|prefix| stored.starts_with(prefix))
        {
            let parts: bcrypt::HashParts = stored.parse().map_err(|_| "malformed bcrypt hash")?;
            if !(4..=MAX_BCRYPT_COST).contains(&parts.get_cost()) {
                return Err("bcrypt cost out of range");
            }
            return Ok(Target::Bcrypt(stored.to_owned()));
        }
        if !stored.starts_with("$argon2") {
            return Err("unknown hash scheme");
        }
        let hash = PasswordHash::new(stored).map_err(|_| "malformed Argon2 hash")?;
        Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| "unknown Argon2 variant")?;
        if let Some(version) = hash.version {
            Version::try_from(version).map_err(|_| "unknown Argon2 version")?;
        }
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err("Argon2 hash without salt or output");
        }
        let params = Params::try_from(&hash).map_err(|_| "invalid Argon2 parameters")?;
        if !HashParams::allows(&params) {
            return Err("Argon2 parameters too costly to verify");
        }
        let weaker = self.params.is_weaker(&hash, &params);
        Ok(Target::Argon2 {
            hash: Box::new(hash),
            weaker,
        })
    }

    /// A new Argon2id PHC string of `password` with the current parameters and a random
    /// 16-byte salt.
    fn hash_blocking(&self, password: &[u8], scratch: &mut Scratch) -> Result<String, HashError> {
        let failed = |e: &dyn std::fmt::Display| {
            HashError::Internal(anyhow::anyhow!("Argon2id hashing failed: {e}"))
        };
        let salt = argon2::password_hash::try_generate_salt().map_err(|e| failed(&e))?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon2_into(
            Algorithm::Argon2id,
            Version::V0x13,
            &self.argon2,
            password,
            &salt,
            &mut out,
            scratch,
        )
        .map_err(|e| failed(&e))?;
        let hash = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.argon2).map_err(|e| failed(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` hashes to `hash`'s output with `hash`'s own algorithm, version,
    /// parameters and salt (a constant-time comparison of the outputs).
    fn matches(
        password: &[u8],
        hash: &PasswordHash,
        scratch: &mut Scratch,
    ) -> Result<bool, argon2::password_hash::Error> {
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return Ok(false);
        };
        let algorithm = Algorithm::try_from(hash.algorithm.as_str())?;
        let version = hash
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(argon2::password_hash::Error::from)?
            .unwrap_or_default();
        let params = Params::try_from(hash)?;
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let out = buffer
            .get_mut(..expected.len())
            .ok_or(argon2::password_hash::Error::OutputSize)?;
        argon2_into(algorithm, version, &params, password, salt, out, scratch)?;
        let computed = Output::new(out)?;
        Ok(computed == *expected)
    }

    fn dummy_hash(&self, scratch: &mut Scratch) -> Result<&PasswordHash, HashError> {
        if let Some(hash) = self.dummy.get() {
            return Ok(hash);
        }
        let hash = self.hash_blocking(DUMMY_PASSWORD, scratch)?;
        let hash = PasswordHash::new(&hash)
            .map_err(|e| HashError::Internal(anyhow::anyhow!("Argon2id dummy hash: {e}")))?;
        Ok(self.dummy.get_or_init(|| hash))
    }

    fn verify_blocking(
        &self,
        password: &[u8],
        target: Target,
        scratch: &mut Scratch,
    ) -> Result<Verified, HashError> {
        match target {
            Target::Dummy => {
                let dummy = self.dummy_hash(scratch)?;
                // Only the time it takes matters; the answer is "no" whatever it says.
                std::hint::black_box(Self::matches(password, dummy, scratch).is_ok());
                Ok(Verified::No)
            }
            Target::Argon2 { hash, weaker } => match Self::matches(password, &hash, scratch) {
                Ok(true) => Ok(Verified::Yes {
                    rehash: weaker
                        .then(|| self.hash_blocking(password, scratch))
                        .transpose()?,
                }),
                Ok(false) => Ok(Verified::No),
                Err(e) => {
                    tracing::warn!(error = %e, "unusable stored Argon2 hash: answered No");
                    Ok(Verified::No)
                }
            },
            Target::Bcrypt(stored) => match bcrypt::verify(password, &stored) {
                Ok(true) => Ok(Verified::Yes {
                    rehash: Some(self.hash_blocking(password, scratch)?),
                }),
                Ok(false) => Ok(Verified::No),
                Err(e) => {
                    tracing::warn!(error = %e, "unusable stored bcrypt hash: answered No");
                    Ok(Verified::No)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
