//! The service's defaults, in one place.
//!
//! The host compiles this same file into its flags, so that `echo-host` with
//! no arguments and a stock `wasmtime run` of the guest behave alike.

/// Where the service listens: every IPv4 interface, port 25000, as the
/// tutorial server this project grew from.
pub const LISTEN: &str = "0.0.0.0:25000";

/// What each reply starts with. An empty prefix makes a plain RFC 862 echo.
pub const PREFIX: &str = "GOT:";
