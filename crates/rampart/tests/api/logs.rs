//! Captures every log line of the test binary (all levels of Rampart's targets), so tests
//! can assert that no secret ever reaches a log.

use std::{
    io::Write,
    sync::{Mutex, OnceLock},
};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter, prelude::*};

static BUFFER: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

fn buffer() -> &'static Mutex<Vec<u8>> {
    BUFFER.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        buffer().lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        Capture
    }
}

/// Install the capturing subscriber once for the whole binary.
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::registry()
            .with(EnvFilter::new(
                "debug,hyper=info,h2=info,rustls=info,reqwest=info",
            ))
            .with(tracing_subscriber::fmt::layer().json().with_writer(Capture))
            .try_init();
    });
}

/// Everything logged so far.
pub fn captured() -> String {
    String::from_utf8_lossy(&buffer().lock().unwrap()).into_owned()
}
