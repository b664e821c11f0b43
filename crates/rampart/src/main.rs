//! `rampart`: see `rampart --help`.

use clap::Parser as _;

/// mimalloc rather than glibc's malloc: about a tenth of a request's instructions were
/// glibc's malloc and free (bench/README.md, "Layer costs"). Built with its arenas
/// committed on demand (`.cargo/config.toml`), so an idle server stays small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rampart::cli::run(rampart::cli::Cli::parse())
}
