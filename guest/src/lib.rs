//! A TCP server as a WASI 0.2 component, on a scheduler of its own, whose
//! protocol is a handler component it imports (`wit/handler/handler.wit`).
//!
//! Composed with the default handler (`handlers/prefix`), every chunk a
//! client sends comes back prefixed with `GOT:`, on port 25000 unless
//! configured otherwise. The crate reads in layers, each knowing only the
//! one below it:
//!
//! - [`runtime`]: tasks, wakers, and the reactor that parks tasks on
//!   `wasi:io/poll` pollables and wakes them after one `poll` over all of them.
//!   It knows pollables, not sockets.
//! - [`net`]: `wasi:sockets` TCP wrapped as a listener and a stream whose
//!   operations await readiness instead of blocking.
//! - [`session`]: a connection's life under a handler: the handler's
//!   verdicts carried out over a [`Connection`](session::Connection) trait,
//!   within the server's promises (one reply in flight, replies bounded). It
//!   knows neither sockets, pollables nor components, so it is tested
//!   natively.
//! - [`server`]: the accept loop, one task per connection, their limits
//!   (connection cap, idle, stall and half-close timeouts), graceful
//!   shutdown, and the log lines; [`shutdown`] says when to shut down.
//! - [`config`]: the command line, defined with the host in `echo-settings`,
//!   as the server's configuration.
//!
//! The component is the `server-core` world of `wit/world.wit`: it exports
//! `wasi:cli/run` and imports `echo:handler/handler`. Composed with a
//! handler it is an `echo-server`, which runs under this project's host and
//! under a stock `wasmtime run`.

// An application, not a library: its documentation is built with
// `--document-private-items`, and links to private items are meant.
#![allow(rustdoc::private_intra_doc_links, reason = "documented with private items")]

pub mod config;
pub mod net;
pub mod runtime;
pub mod server;
pub mod session;
pub mod shutdown;

// The `wasi:cli/run` export. Left out of test builds, which are commands
// with a `main` of their own, and of native builds, which cannot export it.
#[cfg(all(target_arch = "wasm32", not(test)))]
mod component;
