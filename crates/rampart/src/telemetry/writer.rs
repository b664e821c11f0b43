//! The access log's writer thread: lines are appended to one shared buffer, and a thread
//! writes the buffer out in batches, at most [`BATCH_DELAY`] after its first line.
//!
//! Why not `tracing-appender`'s non-blocking writer (used before): it sends each line over a
//! channel, and its thread, woken for nearly every line, spins and `sched_yield`s on the
//! empty channel before parking again. `strace -c -f` on a server under `wrk` (`/health`,
//! 16 connections) counted 0.66 `write(2)` and 0.45 `sched_yield(2)` per request, plus the
//! futex wake-ups on the request's own thread, on the core the server runs on. Here a
//! request takes an uncontended lock and copies its line; only the first line after the
//! thread went to sleep wakes it, and one `write(2)` carries every line of a batch.
//!
//! **Promptness:** a line is written at most [`BATCH_DELAY`] (plus the time of the write)
//! after it was pushed. **Overload:** the buffer holds `capacity` bytes; a line that does not
//! fit is dropped and counted ([`BatchWriter::dropped`]), so a request never waits for a
//! slow stdout. **Shutdown:** dropping the [`WriterGuard`] writes out everything pushed
//! before, then stops the thread.

use std::{
    io::{self, Write},
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// How long the thread waits, after the first line of a batch, for more to join it.
pub const BATCH_DELAY: Duration = Duration::from_millis(10);

/// A handle that pushes lines to the writer thread; clones share it.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
    delay: Duration,
    dropped: AtomicUsize,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// The thread waits for a first line and must be woken by the next push.
    sleeping: bool,
    closed: bool,
}

/// Stops the writer thread when dropped, after writing out every pushed line.
#[must_use = "dropping the guard stops the writer thread"]
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// Start the thread `name`, writing batches to `out`; `capacity` bytes may wait.
    pub fn spawn(
        name: &str,
        out: impl Write + Send + 'static,
        capacity: usize,
        delay: Duration,
    ) -> io::Result<(Self, WriterGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            capacity,
            delay,
            dropped: AtomicUsize::new(0),
        });
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn({
            let shared = Arc::clone(&shared);
            move || run(&shared, out)
        })?;
        let guard = WriterGuard {
            shared: Arc::clone(&shared),
            thread: Some(thread),
        };
        Ok((Self { shared }, guard))
    }

    /// Queue `line` (whole lines, newline included); `false` when it was dropped because
    /// the buffer is full.
    pub fn push(&self, line: &[u8]) -> bool {
        let mut state = self.shared.lock();
        if state.pending.len() + line.len() > self.shared.capacity {
            drop(state);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        state.pending.extend_from_slice(line);
        if state.sleeping {
            state.sleeping = false;
            drop(state);
            self.shared.wake.notify_one();
        }
        true
    }

    /// Lines dropped so far because the buffer was full.
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only bytes behind: keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn run(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.pending.is_empty() && !state.closed {
            state.sleeping = true;
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if state.pending.is_empty() {
            return; // closed, and everything written
        }
        // Let the batch fill; a close ends the wait at once.
        if !state.closed {
            state = shared
                .wake
                .wait_timeout_while(state, shared.delay, |s| !s.closed)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut state.pending, &mut batch);
        drop(state);
        // stdout gone (a closed pipe) loses the lines; there is nowhere to report it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What `tracing-subscriber`'s formatters write through: each event arrives as one whole
/// line in one `write_all`, which becomes one push.
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = &'a BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Write for &BatchWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A dropped line is counted, not an error: the formatter must not retry it.
        let _ = self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// An output that reports each write on a channel, and can hold its writes until told.
    struct Output {
        writes: mpsc::Sender<Vec<u8>>,
        entered: Option<mpsc::Sender<()>>,
        release: Option<mpsc::Receiver<()>>,
    }

    impl Write for Output {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(entered) = self.entered.take() {
                let _ = entered.send(());
            }
            if let Some(release) = self.release.take() {
                let _ = release.recv();
            }
            let _ = self.writes.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn free_output() -> (Output, mpsc::Receiver<Vec<u8>>) {
        let (writes, rx) = mpsc::channel();
        let out = Output {
            writes,
            entered: None,
            release: None,
        };
        (out, rx)
    }

    /// An output whose first write says it started (`entered`) and then waits for
    /// `release`.
    #[allow(clippy::type_complexity)]
    fn held_output() -> (
        Output,
        mpsc::Receiver<Vec<u8>>,
        mpsc::Receiver<()>,
        mpsc::Sender<()>,
    ) {
        let (writes, written) = mpsc::channel();
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let out = Output {
            writes,
            entered: Some(entered_tx),
            release: Some(release_rx),
        };
        (out, written, entered, release)
    }

    #[test]
    fn a_line_is_written_while_the_writer_runs_and_everything_at_close() {
        let (out, writes) = free_output();
        let (writer, guard) = BatchWriter::spawn("test-log", out, 1 << 20, BATCH_DELAY).unwrap();
        assert!(writer.push(b"one\n"));
        // Written without closing: within the delay, here bounded generously.
        let first = writes.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(first, b"one\n");
        for i in 0..1000 {
            assert!(writer.push(format!("line {i}\n").as_bytes()));
        }
        drop(guard);
        let rest: Vec<u8> = writes.try_iter().flatten().collect();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(rest).unwrap(), expected);
        assert_eq!(writer.dropped(), 0);
    }

    #[test]
    fn lines_pushed_during_a_write_leave_together_in_the_next_one() {
        let (out, written, entered, release) = held_output();
        let (writer, guard) = BatchWriter::spawn("test-log", out, 1 << 20, BATCH_DELAY).unwrap();
        assert!(writer.push(b"first\n"));
        entered.recv_timeout(Duration::from_secs(10)).unwrap(); // the thread is in write(2)
        for i in 0..500 {
            assert!(writer.push(format!("{i}\n").as_bytes()));
        }
        release.send(()).unwrap();
        drop(guard);
        let batches: Vec<Vec<u8>> = written.try_iter().collect();
        assert_eq!(batches.len(), 2, "500 lines in one write after the first");
        assert_eq!(batches[0], b"first\n");
        let expected: String = (0..500).map(|i| format!("{i}\n")).collect();
        assert_eq!(String::from_utf8(batches[1].clone()).unwrap(), expected);
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines_and_never_blocks_the_pusher() {
        let (out, written, entered, release) = held_output();
        // Room for ten 10-byte lines while the output is stuck.
        let (writer, guard) = BatchWriter::spawn("test-log", out, 100, BATCH_DELAY).unwrap();
        assert!(writer.push(b"stuck-000\n"));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        let kept = (0..25)
            .filter(|i| writer.push(format!("line-{i:04}\n").as_bytes()))
            .count();
        assert_eq!(kept, 10);
        assert_eq!(writer.dropped(), 15);
        release.send(()).unwrap();
        drop(guard);
        let all: Vec<u8> = written.try_iter().flatten().collect();
        let expected: String = std::iter::once("stuck-000\n".to_owned())
            .chain((0..10).map(|i| format!("line-{i:04}\n")))
            .collect();
        assert_eq!(String::from_utf8(all).unwrap(), expected);
    }

    #[test]
    fn a_formatters_event_arrives_as_one_line() {
        use tracing_subscriber::prelude::*;
        let (out, writes) = free_output();
        let (writer, guard) = BatchWriter::spawn("test-log", out, 1 << 20, BATCH_DELAY).unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(route = "/health", "request");
        });
        drop(guard);
        let all: Vec<u8> = writes.try_iter().flatten().collect();
        let line = String::from_utf8(all).unwrap();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["fields"]["route"], "/health");
    }
}
