//! The Wasmtime engine, and the component it runs.

use std::path::Path;
use wasmtime::component::Component;
use wasmtime::error::Context;
use wasmtime::{Config, Engine};

/// The echo component, built from `guest/` by `build.rs`.
pub const ECHO_GUEST: &[u8] = include_bytes!(env!("ECHO_GUEST_WASM"));

/// The engine that compiles and runs guests, with epoch interruption for
/// the [`watchdog`](crate::watchdog).
pub fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    Engine::new(&config).context("configure Wasmtime")
}

/// Compiles the component at `path`, or the embedded echo server if `None`.
pub fn load(engine: &Engine, path: Option<&Path>) -> wasmtime::Result<Component> {
    match path {
        None => Component::new(engine, ECHO_GUEST).context("compile the embedded echo guest"),
        Some(path) => Component::from_file(engine, path)
            .with_context(|| format!("load component {}", path.display())),
    }
}
