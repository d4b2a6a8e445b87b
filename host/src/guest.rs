//! The Wasmtime engine, and the component it runs.

use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::error::Context;

/// The echo component, built from `guest/` by `build.rs`.
pub const ECHO_GUEST: &[u8] = include_bytes!(env!("ECHO_GUEST_WASM"));

/// The same component compiled ahead of time by `build.rs`, so that starting
/// takes milliseconds instead of a compilation.
const ECHO_GUEST_COMPILED: &[u8] = include_bytes!(env!("ECHO_GUEST_CWASM"));

/// The engine that compiles and runs guests.
pub fn engine() -> wasmtime::Result<Engine> {
    Engine::new(&crate::engine::config()).context("configure Wasmtime")
}

/// Compiles the component at `path`, or the embedded echo server if `None`.
pub fn load(engine: &Engine, path: Option<&Path>) -> wasmtime::Result<Component> {
    match path {
        None => match embedded_precompiled(engine) {
            Ok(component) => Ok(component),
            Err(e) => {
                // Built for another CPU, say: compiling is slower, not wrong.
                tracing::info!(
                    "compiling the embedded guest: its precompiled form does not load: {e}"
                );
                Component::new(engine, ECHO_GUEST).context("compile the embedded echo guest")
            }
        },
        Some(path) => Component::from_file(engine, path)
            .with_context(|| format!("load component {}", path.display())),
    }
}

/// The precompiled guest, if this engine can run it.
fn embedded_precompiled(engine: &Engine) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize` runs machine code without checking it, so its
    // input must come from Wasmtime's own `precompile_component`. These bytes
    // do: `build.rs` produced them with this very Wasmtime version and
    // engine settings (`crate::engine::config`), from the guest embedded
    // beside them, and they are compiled into this binary, out of anyone
    // else's reach. Wasmtime still checks the version and settings, and
    // refuses a mismatch with an error rather than running it.
    unsafe { Component::deserialize(engine, ECHO_GUEST_COMPILED) }
}
