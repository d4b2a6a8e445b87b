//! The echo guest (`guest/`) and the handlers in `handlers/`, built for
//! `wasm32-wasip2` by this crate's build script, for `echo-host` to embed.
//!
//! A crate of its own, whose only dependency is its build script's
//! composer, so that the guest's build starts early, beside the compilation
//! of Wasmtime, rather than after it.

/// The echo guest component: the server core composed with the `prefix`
/// handler, a `wasi:cli/run` command on its own.
pub const ECHO_GUEST: &[u8] = include_bytes!(env!("ECHO_GUEST_WASM"));

/// Where the echo guest was written: the same `.wasm` runs under the stock
/// `wasmtime run`.
pub const ECHO_GUEST_PATH: &str = env!("ECHO_GUEST_WASM");

/// The server core alone, which imports its handler.
pub const SERVER_CORE: &[u8] = include_bytes!(env!("ECHO_SERVER_CORE_WASM"));

/// Where the server core was built.
pub const ECHO_SERVER_CORE_PATH: &str = env!("ECHO_SERVER_CORE_WASM");

/// A handler that ships with the host.
#[derive(Debug, Clone, Copy)]
pub struct Handler {
    /// Its name, as `--handler` takes it.
    pub name: &'static str,
    /// Where it was built.
    pub path: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

macro_rules! handler {
    ($name:literal, $env:literal) => {
        Handler { name: $name, path: env!($env), bytes: include_bytes!(env!($env)) }
    };
}

/// The handlers in `handlers/`, the default first.
pub const HANDLERS: [Handler; 4] = [
    handler!("prefix", "ECHO_HANDLER_PREFIX"),
    handler!("uppercase", "ECHO_HANDLER_UPPERCASE"),
    handler!("lines", "ECHO_HANDLER_LINES"),
    handler!("ratelimit", "ECHO_HANDLER_RATELIMIT"),
];
