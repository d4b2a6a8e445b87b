//! What the whole-system tests and the benchmark share.
//!
//! - [`deploy`]: a host's `--metrics` address, and HAProxy in front of
//!   hosts on the shipped configuration;
//! - [`process`]: a server started as a child process, its output collected
//!   line by line, the address it announces, killed when dropped;
//! - [`procfs`]: what `/proc` says about a process: CPU time, memory, open
//!   descriptors;
//! - [`raise_fd_limit`], for clients that hold thousands of connections;
//! - [`wasm`]: components of this workspace built for `wasm32-wasip2` on
//!   first use;
//! - [`stock_wasmtime`]: the stock `wasmtime` CLI.

pub mod deploy;
pub mod handlers;
pub mod process;
pub mod procfs;
pub mod wasm;

pub use process::Process;

use std::path::{Path, PathBuf};

/// The workspace's root folder.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit/ is in the workspace")
}

/// Raises this process's open-file limit to its hard limit, and returns the
/// limit now in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The stock `wasmtime` CLI: `$WASMTIME`, else `wasmtime` on the `PATH`
/// (the README's test command, and `source scripts/stock-wasmtime.sh`, put
/// it there).
pub fn stock_wasmtime() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WASMTIME") {
        return Some(path.into());
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join("wasmtime")).find(|p| p.is_file())
}
