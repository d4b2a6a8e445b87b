//! Tries each action given as an argument and prints the outcome:
//!
//! - `bind=ADDR`: bind and listen on ADDR;
//! - `connect=ADDR`: connect out to ADDR;
//! - `panic`: panic, which traps the component;
//! - `serve`: listen on the granted address, print `listening on ADDR`, and
//!   greet each client with `alive` (so the test can see the host is well).

use echo_hostile::{actions, family, finish, granted_address, outcome, to_wasi};
use std::net::SocketAddr;
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

fn main() {
    for action in actions() {
        let (verb, addr) = action.split_once('=').unwrap_or((action.as_str(), ""));
        match verb {
            "bind" => {
                let addr: SocketAddr = addr.parse().expect("bind=ADDR");
                println!("bind {addr}: {}", outcome(&listen(addr)));
            }
            "connect" => {
                let addr: SocketAddr = addr.parse().expect("connect=ADDR");
                println!("connect {addr}: {}", outcome(&connect(addr)));
            }
            "panic" => panic!("panicking on purpose"),
            "serve" => serve(),
            other => panic!("unknown action {other:?}"),
        }
    }
}

fn listen(addr: SocketAddr) -> Result<TcpSocket, ErrorCode> {
    let socket = create_tcp_socket(family(addr))?;
    let ready = socket.subscribe();
    socket.start_bind(&instance_network(), to_wasi(addr))?;
    finish(&ready, || socket.finish_bind())?;
    socket.start_listen()?;
    finish(&ready, || socket.finish_listen())?;
    drop(ready);
    Ok(socket)
}

fn connect(addr: SocketAddr) -> Result<(), ErrorCode> {
    let socket = create_tcp_socket(family(addr))?;
    let ready = socket.subscribe();
    socket.start_connect(&instance_network(), to_wasi(addr))?;
    let (input, output) = finish(&ready, || socket.finish_connect())?;
    drop((input, output, ready));
    Ok(())
}

fn serve() {
    let addr = granted_address().expect("the host passes --listen");
    let socket = listen(addr).expect("listen on the granted address");
    let ready = socket.subscribe();
    let local = socket.local_address().expect("local address");
    let local = match local {
        wasip2::sockets::network::IpSocketAddress::Ipv4(a) => {
            let (b0, b1, b2, b3) = a.address;
            format!("{b0}.{b1}.{b2}.{b3}:{}", a.port)
        }
        wasip2::sockets::network::IpSocketAddress::Ipv6(a) => format!("[::1]:{}", a.port),
    };
    println!("listening on {local}");
    loop {
        let (client, input, output) = finish(&ready, || socket.accept()).expect("accept");
        let _ = output.blocking_write_and_flush(b"alive\n");
        drop((input, output, client));
    }
}
