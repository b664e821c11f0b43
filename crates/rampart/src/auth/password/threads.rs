//! The hashing threads: a fixed set of `workers` threads, each owning one Argon2 block
//! buffer that it reuses for every job, so hashing memory stays at workers × the Argon2
//! memory cost however many logins arrive (a fresh 19 MiB buffer per job on tokio's
//! growing blocking pool let the allocator keep one per thread).

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, mpsc},
};

use argon2::{Algorithm, Argon2, Block, Params, Version};

/// A hashing job: runs on a hashing thread with that thread's memory.
pub(super) type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

/// A hashing thread's Argon2 memory, kept between jobs.
pub(super) struct Scratch {
    blocks: Vec<Block>,
    /// The size the current parameters need; a larger job shrinks back to it afterwards.
    usual: usize,
}

impl Scratch {
    fn new(usual: usize) -> Self {
        Self {
            blocks: Vec::new(),
            usual,
        }
    }

    /// The first `count` blocks, growing the buffer when a job needs more than it has.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }

    /// After a job: give back what a costlier stored hash needed beyond the usual size.
    fn settle(&mut self) {
        if self.blocks.len() > self.usual {
            self.blocks.truncate(self.usual);
            self.blocks.shrink_to_fit();
        }
    }
}

/// Start `count` hashing threads that take jobs from one queue until every sender is gone.
pub(super) fn spawn_hash_threads(count: usize, usual_blocks: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for n in 0..count {
        let rx = Arc::clone(&rx);
        let spawned = std::thread::Builder::new()
            .name(format!("password-hash-{n}"))
            .spawn(move || {
                let mut scratch = Scratch::new(usual_blocks);
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // A panicking job drops its answer channel (the caller gets an internal
                    // error) and its permit; the thread and its memory carry on.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut scratch)));
                    scratch.settle();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password hashing thread");
        }
    }
    tx
}

/// Argon2 of `password` and `salt` into `out`, in the thread's reused memory.
pub(super) fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    scratch: &mut Scratch,
) -> Result<(), argon2::Error> {
    let blocks = scratch.blocks(params.block_count());
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, out, blocks)
}
