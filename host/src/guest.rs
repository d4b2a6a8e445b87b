//! The Wasmtime engine, and the components it runs.
//!
//! Compiled code is kept on disk by Wasmtime's own cache, keyed by the
//! component's bytes, the Wasmtime version and the engine's settings: the
//! first start compiles the embedded guest (about a second), later starts
//! load it in milliseconds, and so does a `--component` given again. The
//! cache holds machine code that is run without further checks, so its
//! folder must be writable only by the user running the host, as Wasmtime's
//! default (under the user's own cache folder) is.

use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmtime::component::Component;
use wasmtime::error::Context;
use wasmtime::{Cache, CacheConfig, Engine};

pub use echo_guest_wasm::ECHO_GUEST;

/// Where compiled code is kept between starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCache {
    /// Wasmtime's default folder, under the user's cache folder.
    Default,
    /// This folder.
    At(PathBuf),
    /// Nowhere: compile at every start.
    Off,
}

/// The engine that compiles and runs guests: epoch interruption for the
/// [`watchdog`](crate::watchdog), compiled code kept in `cache`, Wasmtime's
/// defaults otherwise.
///
/// A cache that cannot be used (a read-only file system, no home folder) is
/// no reason not to serve: the host says so and compiles at every start.
pub fn engine(cache: &CodeCache) -> wasmtime::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    let settings = match cache {
        CodeCache::Off => None,
        CodeCache::Default => Some(CacheConfig::new()),
        CodeCache::At(folder) => Some(CacheConfig::new().with_directory(folder).clone()),
    };
    if let Some(settings) = settings {
        match Cache::new(settings) {
            Ok(cache) => {
                tracing::debug!(folder = %cache.directory().display(), "compiled code is cached");
                config.cache(Some(cache));
            }
            Err(e) => tracing::warn!("compiling at every start: the code cache is unusable: {e:#}"),
        }
    }
    Engine::new(&config).context("configure Wasmtime")
}

/// Compiles the component at `path`, or the embedded echo server if `None`,
/// unless the engine's cache has it already.
pub fn load(engine: &Engine, path: Option<&Path>) -> wasmtime::Result<Component> {
    let started = Instant::now();
    let component = match path {
        None => Component::new(engine, ECHO_GUEST).context("compile the embedded echo guest")?,
        Some(path) => Component::from_file(engine, path)
            .with_context(|| format!("load component {}", path.display()))?,
    };
    tracing::debug!(took = ?started.elapsed(), "the guest is compiled");
    Ok(component)
}
