//! `rampart`: see `rampart --help`.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    rampart::cli::run(rampart::cli::Cli::parse())
}
