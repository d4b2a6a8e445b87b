//! The least a WASI 0.2 echo guest can do per request, as a yardstick for
//! the benchmark: one `poll` over the listener and every connection, then,
//! for each connection that is ready, `read`, `check-write` and `write` of
//! `GOT:` and the chunk, in place.
//!
//! No tasks, wakers, timers or limits, and no allocation per request beyond
//! the list the `read` binding returns. It is not a server: a client that stops
//! reading blocks every other client (the `write` waits in `block`), and
//! nothing is logged. Run under `echo-host --component`, which passes
//! `--listen=ADDR`; it prints `listening on ADDR` like the echo guest.

use echo_hostile::{family, finish, from_wasi, granted_address, to_wasi};
use std::net::SocketAddr;
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::{InputStream, OutputStream};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

/// Asked of every `read`, as the echo guest asks for small messages.
const READ_SIZE: u64 = 4096;

/// What every reply starts with, as in the echo guest's default.
const PREFIX: &[u8] = b"GOT:";

/// One client. Field order is drop order: children before parents.
struct Connection {
    readable: Pollable,
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
}

fn main() {
    let addr = granted_address().expect("the host passes --listen=ADDR");
    let (listener, acceptable) = listen(addr).expect("listen on the granted address");

    let mut connections: Vec<Connection> = Vec::new();
    let mut reply = PREFIX.to_vec();
    loop {
        let ready = {
            let mut list: Vec<&Pollable> = Vec::with_capacity(connections.len() + 1);
            list.extend(connections.iter().map(|c| &c.readable));
            list.push(&acceptable);
            poll(&list)
        };
        // Connections that end are removed after the pass, so that the
        // indices `poll` returned stay valid during it.
        let mut ended = Vec::new();
        for index in ready.into_iter().map(|i| i as usize) {
            let Some(connection) = connections.get(index) else { continue };
            match connection.input.read(READ_SIZE) {
                Ok(chunk) if chunk.is_empty() => {}
                Ok(chunk) => {
                    reply.truncate(PREFIX.len());
                    reply.extend_from_slice(&chunk);
                    if !write_all(&connection.output, &reply) {
                        ended.push(index);
                    }
                }
                Err(_) => ended.push(index),
            }
        }
        ended.sort_unstable_by(|a, b| b.cmp(a));
        for index in ended {
            connections.swap_remove(index);
        }
        while let Ok((socket, input, output)) = listener.accept() {
            connections.push(Connection {
                readable: input.subscribe(),
                input,
                output,
                _socket: socket,
            });
        }
    }
}

/// Writes all of `data`, blocking the component while the stream is full.
fn write_all(output: &OutputStream, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match output.check_write() {
            Ok(0) => output.subscribe().block(),
            Ok(permit) => {
                let n = data.len().min(usize::try_from(permit).unwrap_or(usize::MAX));
                if output.write(&data[..n]).is_err() {
                    return false;
                }
                data = &data[n..];
            }
            Err(_) => return false,
        }
    }
    true
}

fn listen(addr: SocketAddr) -> Result<(TcpSocket, Pollable), ErrorCode> {
    let socket = create_tcp_socket(family(addr))?;
    let ready = socket.subscribe();
    socket.start_bind(&instance_network(), to_wasi(addr))?;
    finish(&ready, || socket.finish_bind())?;
    let _ = socket.set_listen_backlog_size(1024);
    socket.start_listen()?;
    finish(&ready, || socket.finish_listen())?;
    let local = from_wasi(socket.local_address()?);
    println!("listening on {local}");
    Ok((socket, ready))
}
