//! The Wasmtime configuration, shared by the host and its build script: the
//! build script compiles the embedded guest ahead of time with it, and
//! compiled code only loads into an engine configured the same way.

/// The engine settings guests run with: epoch interruption, for the
/// [`watchdog`](crate::watchdog); Wasmtime's defaults otherwise.
pub fn config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config
}
