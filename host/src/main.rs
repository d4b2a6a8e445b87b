//! `echo-host`: serve the echo component.
//!
//! ```text
//! cargo run --release              # listens on 0.0.0.0:25000
//! nc localhost 25000               # Hello -> GOT:Hello
//! ```

use clap::Parser;
use echo_host::Config;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Every host call allocates a little (buffers, futures); mimalloc makes
/// that cheaper than the system allocator does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match echo_host::run(Config::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("echo-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}
