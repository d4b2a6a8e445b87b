//! A listening TCP socket.

use super::address;
use super::error::from_code;
use super::stream::TcpStream;
use crate::runtime::readiness;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use wasip2::io::poll::Pollable;
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

/// How many connections the kernel may queue before they are accepted.
///
/// Large enough for a thousand clients connecting at once; Wasmtime's default
/// (128) makes such a burst see refused or retried connections. The kernel
/// caps it at `net.core.somaxconn`.
pub const BACKLOG: u64 = 1024;

/// A socket listening for TCP connections.
pub struct TcpListener {
    // Field order is drop order: the pollable is a child of the socket, and
    // WASI requires children to be dropped first.
    /// Ready when binding or listening has finished, and then whenever a
    /// connection is waiting to be accepted.
    ready: Rc<Pollable>,
    socket: TcpSocket,
    local_addr: SocketAddr,
}

impl TcpListener {
    /// Binds `addr` and listens on it.
    pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        let network = instance_network();
        let socket = create_tcp_socket(address::family(&addr)).map_err(from_code)?;
        let ready = Rc::new(socket.subscribe());

        socket.start_bind(&network, address::to_wasi(addr)).map_err(from_code)?;
        finish(&ready, || socket.finish_bind()).await?;
        // Only a hint to the host: a refusal is not worth failing over.
        let _ = socket.set_listen_backlog_size(BACKLOG);
        socket.start_listen().map_err(from_code)?;
        finish(&ready, || socket.finish_listen()).await?;

        let local_addr = address::from_wasi(socket.local_address().map_err(from_code)?);
        Ok(TcpListener { ready, socket, local_addr })
    }

    /// The address actually bound: with port 0, the port the system chose.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<TcpStream> {
        loop {
            match self.socket.accept() {
                // A client that reset its connection while it waited in the
                // backlog is still accepted, but has no peer address any
                // more: it is gone, which says nothing about the listener.
                Ok((socket, input, output)) => {
                    return TcpStream::new(socket, input, output).map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            format!("client gone: {e}"),
                        )
                    });
                }
                Err(ErrorCode::WouldBlock) => readiness(&self.ready).await,
                Err(code) => return Err(from_code(code)),
            }
        }
    }
}

/// Completes a WASI two-phase operation (`start-*` then `finish-*`), parking
/// while `finish` says `would-block`.
async fn finish(
    ready: &Rc<Pollable>,
    mut finish: impl FnMut() -> Result<(), ErrorCode>,
) -> io::Result<()> {
    loop {
        match finish() {
            Err(ErrorCode::WouldBlock) => readiness(ready).await,
            result => return result.map_err(from_code),
        }
    }
}
