//! The echo server as a user would write it on `wstd`, the async runtime
//! for WASI 0.2 components, instead of writing a scheduler: a task per
//! connection that reads a chunk and writes `GOT:` and the chunk back.
//!
//! The benchmark's peer guest, never shipped: no timeouts, limits or
//! graceful shutdown. It takes `--listen ADDR` (or `--listen=ADDR`, as
//! `echo-host --component` passes it) and prints `listening on ADDR` like
//! the echo guest, so it runs under `echo-host` and the stock CLI alike.

use std::io::ErrorKind;
use wstd::io::{self, AsyncRead, AsyncWrite};
use wstd::iter::AsyncIterator;
use wstd::net::{TcpListener, TcpStream};

/// Asked of every read: enough for the benchmark's messages.
const READ_SIZE: usize = 4096;

/// What every reply starts with, as in the echo guest's default.
const PREFIX: &[u8] = b"GOT:";

#[wstd::main]
async fn main() -> io::Result<()> {
    let addr = listen_address().unwrap_or_else(|| "127.0.0.1:25000".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let mut incoming = listener.incoming();
    while let Some(accepted) = incoming.next().await {
        match accepted {
            Ok(stream) => wstd::runtime::spawn(echo(stream)).detach(),
            // The listener's pollable may be ready with nothing left to
            // accept (another accept took it), as WASI allows.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("accept: {e}"),
        }
    }
    Ok(())
}

/// Echoes each chunk of `stream` with the prefix until the client finishes.
async fn echo(mut stream: TcpStream) {
    let mut chunk = vec![0; READ_SIZE];
    let mut reply = Vec::with_capacity(PREFIX.len() + READ_SIZE);
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                reply.clear();
                reply.extend_from_slice(PREFIX);
                reply.extend_from_slice(&chunk[..n]);
                if stream.write_all(&reply).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The address after `--listen`, in either form.
fn listen_address() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if let Some(addr) = arg.strip_prefix("--listen=") {
            return Some(addr.to_owned());
        }
        if arg == "--listen" {
            return args.next();
        }
    }
    None
}
