//! `echo-host`: serve the echo component.
//!
//! ```text
//! cargo run --release              # listens on 0.0.0.0:25000
//! nc localhost 25000               # Hello -> GOT:Hello
//! ```

use clap::Parser;
use echo_host::Config;
use echo_host::config::{Command, LogFormat};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Every host call allocates a little (buffers, futures); mimalloc makes
/// that cheaper than the system allocator does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    // `RUST_LOG`: a level (`debug`), or levels by target
    // (`info,echo_host=debug`); `info` by default.
    let filter = match std::env::var("RUST_LOG") {
        Err(_) => Targets::new().with_default(LevelFilter::INFO),
        Ok(text) => match text.parse::<Targets>() {
            Ok(filter) => filter,
            Err(e) => {
                eprintln!("echo-host: RUST_LOG={text:?}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = match config.log_format {
        // Colours only for a terminal, and not even then under `NO_COLOR`.
        LogFormat::Text => log
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .boxed(),
        // The event's fields at the top level, beside its span's.
        LogFormat::Json => log.json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry().with(log).with(filter).init();
    if let Some(Command::Compose(compose)) = &config.command {
        return match echo_host::compose(compose) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("echo-host compose: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let (launch, policy) = match config.plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("echo-host: the echo guest would refuse the arguments after `--`:");
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    match echo_host::run(&launch, policy) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("echo-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}
