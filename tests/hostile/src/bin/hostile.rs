//! Tries each action given as an argument, in order, and prints what
//! happened. The actions:
//!
//! - `bind=ADDR`: bind and listen on ADDR;
//! - `connect=ADDR`: connect out to ADDR;
//! - `panic`: panic, which traps the component;
//! - `spin`: loop forever without calling the host;
//! - `poll-spin`: call `poll` forever on a pollable that is always ready;
//! - `alloc`: allocate memory until it runs out;
//! - `recurse`: recurse until the stack overflows;
//! - `sockets`, `pollables`: create resources forever, never dropping them;
//! - `overwrite`: accept a client on the granted address (after printing
//!   `listening on ADDR`) and write to it more than `check-write` permits;
//! - `huge-write`: hand the host 64 MiB in one call;
//! - `empty-poll`: call `poll` with an empty list;
//! - `block`: wait forever in `poll`;
//! - `calls`: time a million calls each of two cheap host functions (for
//!   the per-call cost quoted in BENCHMARKS.md);
//! - `serve`: listen on the granted address, print `listening on ADDR`, and
//!   greet each client with `alive`; a client that sends `panic` makes the
//!   component trap.

use echo_hostile::{actions, family, finish, granted_address, outcome, to_wasi};
use std::hint::black_box;
use std::net::SocketAddr;
use wasip2::clocks::monotonic_clock::subscribe_duration;
use wasip2::io::poll::poll;
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily};
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
            "spin" => {
                println!("spinning");
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "poll-spin" => {
                println!("polling without pause");
                let ready = subscribe_duration(0);
                loop {
                    black_box(poll(&[&ready]));
                }
            }
            "alloc" => {
                println!("allocating");
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recurse" => {
                println!("recursing");
                println!("{}", recurse(black_box(1)));
            }
            "sockets" => {
                println!("creating sockets");
                let mut hoard = Vec::new();
                loop {
                    hoard.push(create_tcp_socket(IpAddressFamily::Ipv4).expect("create a socket"));
                }
            }
            "pollables" => {
                println!("creating pollables");
                let mut hoard = Vec::new();
                loop {
                    hoard.push(subscribe_duration(3_600_000_000_000));
                }
            }
            "overwrite" => {
                let (socket, ready) = listen_on_grant();
                let (client, input, output) = finish(&ready, || socket.accept()).expect("accept");
                let permit = output.check_write().expect("check-write") as usize;
                println!("writing {} bytes where {permit} are permitted", permit + 1);
                let result = output.write(&vec![b'x'; permit + 1]);
                println!("the host took it: {result:?}");
                drop((input, output, client, ready));
            }
            "huge-write" => {
                println!("handing over 64 MiB");
                let stdout = wasip2::cli::stdout::get_stdout();
                let _ = stdout.write(&vec![b'x'; 64 << 20]);
            }
            "empty-poll" => {
                println!("polling nothing");
                poll(&[]);
            }
            "block" => {
                println!("blocking");
                subscribe_duration(u64::MAX).block();
            }
            "calls" => {
                use wasip2::clocks::monotonic_clock::now;
                const N: u64 = 1_000_000;
                let stdout = wasip2::cli::stdout::get_stdout();
                let start = now();
                for _ in 0..N {
                    black_box(now());
                }
                let clock = (now() - start) / N;
                let start = now();
                for _ in 0..N {
                    let _ = black_box(stdout.check_write());
                }
                let check_write = (now() - start) / N;
                println!(
                    "ns per call: monotonic-clock.now {clock}, output-stream.check-write {check_write}"
                );
            }
            "serve" => serve(),
            other => panic!("unknown action {other:?}"),
        }
    }
}

#[allow(unconditional_recursion, reason = "recursing without end is the point")]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 16]);
    recurse(depth + 1) + frame[3]
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

/// Listens on the granted address and says where, as the echo guest does.
fn listen_on_grant() -> (TcpSocket, wasip2::io::poll::Pollable) {
    let addr = granted_address().expect("the host passes --listen");
    let socket = listen(addr).expect("listen on the granted address");
    let ready = socket.subscribe();
    let local = echo_hostile::from_wasi(socket.local_address().expect("local address"));
    println!("listening on {local}");
    (socket, ready)
}

fn serve() {
    let (socket, ready) = listen_on_grant();
    loop {
        let (client, input, output) = finish(&ready, || socket.accept()).expect("accept");
        let _ = output.blocking_write_and_flush(b"alive\n");
        let said = input.blocking_read(16).unwrap_or_default();
        if said.starts_with(b"panic") {
            panic!("a client asked for a panic");
        }
        drop((input, output, client));
    }
}
