//! How the service learns that it should stop: the end of stdin.
//!
//! WASI 0.2 has no signals. A host that wants a graceful shutdown gives the
//! guest a stdin that stays open, and closes it to say "stop" (`echo-host`
//! does this on SIGINT and SIGTERM). Under a stock `wasmtime run`, the same
//! works from a shell: `wasmtime run ... --shutdown-on-eof < fifo`.
//!
//! Stdin is only watched when asked (`--shutdown-on-eof`): a stdin that is a
//! closed terminal or `/dev/null` would otherwise stop the server at once.

use crate::runtime::{Signal, readiness};
use std::rc::Rc;
use wasip2::cli::stdin::get_stdin;
use wasip2::io::streams::StreamError;

/// Sets `shutdown` once stdin reaches its end; input before that is ignored.
pub async fn on_stdin_eof(shutdown: Signal) {
    let stdin = get_stdin();
    let ready = Rc::new(stdin.subscribe());
    loop {
        readiness(&ready).await;
        match stdin.read(4096) {
            Ok(_) => continue,
            Err(StreamError::Closed | StreamError::LastOperationFailed(_)) => break,
        }
    }
    // The pollable is a child of the stream: it goes first.
    drop(ready);
    drop(stdin);
    shutdown.set();
}
