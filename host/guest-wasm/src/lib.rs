//! The echo guest (`guest/`), built for `wasm32-wasip2` by this crate's build
//! script, for `echo-host` to embed.
//!
//! A crate of its own, without dependencies, so that the guest's build
//! starts at once, beside the compilation of Wasmtime, rather than after it.

/// The echo guest component.
pub const ECHO_GUEST: &[u8] = include_bytes!(env!("ECHO_GUEST_WASM"));

/// Where the component was built: the same `.wasm` runs under the stock
/// `wasmtime run`.
pub const ECHO_GUEST_PATH: &str = env!("ECHO_GUEST_WASM");
