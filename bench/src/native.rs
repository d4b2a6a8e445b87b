//! The native baseline: a single-threaded mio echo server with the guest's
//! semantics, so that the comparison measures WebAssembly and WASI, not a
//! different protocol.
//!
//! Like the guest it reads at most 64 KiB at a time, answers each chunk with
//! one write of `prefix + chunk`, and reads nothing more from a connection
//! until that reply is written.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

const LISTENER: Token = Token(usize::MAX);

/// The largest chunk read at once, as in the guest.
const MAX_CHUNK: usize = 64 * 1024;

struct Connection {
    stream: TcpStream,
    /// The unwritten rest of the last reply.
    pending: Vec<u8>,
}

/// Serves until an error stops the listener. Prints `listening on ADDR`.
pub fn serve(listen: SocketAddr, prefix: &[u8]) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut listener = TcpListener::bind(listen)?;
    println!("listening on {}", listener.local_addr()?);
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut connections: Vec<Option<Connection>> = Vec::new();
    let mut free = Vec::new();
    let mut buf = vec![0; prefix.len() + MAX_CHUNK];
    buf[..prefix.len()].copy_from_slice(prefix);
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let key = free.pop().unwrap_or(connections.len());
                            // Both interests once, edge-triggered: no
                            // re-registration system call per request.
                            let interest = Interest::READABLE | Interest::WRITABLE;
                            poll.registry().register(&mut stream, Token(key), interest)?;
                            let connection = Some(Connection { stream, pending: Vec::new() });
                            if key == connections.len() {
                                connections.push(connection);
                            } else {
                                connections[key] = connection;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(connection) = connections.get_mut(key).and_then(Option::as_mut) else {
                continue;
            };
            if !serve_connection(connection, &mut buf, prefix.len()) {
                let mut connection = connections[key].take().unwrap();
                let _ = poll.registry().deregister(&mut connection.stream);
                free.push(key);
            }
        }
    }
}

/// Makes what progress the connection allows; false once it is to be closed.
fn serve_connection(conn: &mut Connection, buf: &mut [u8], prefix: usize) -> bool {
    loop {
        if !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        // Edge-triggered: read until the socket says it has nothing more.
        match conn.stream.read(&mut buf[prefix..]) {
            Ok(0) => return false,
            Ok(n) => match conn.stream.write(&buf[..prefix + n]) {
                Ok(written) if written == prefix + n => {}
                Ok(written) => conn.pending.extend_from_slice(&buf[written..prefix + n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.pending.extend_from_slice(&buf[..prefix + n]);
                }
                Err(_) => return false,
            },
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}
