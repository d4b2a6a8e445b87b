//! Tries each action given as an argument, in order, and prints what
//! happened. The actions:
//!
//! - `bind=ADDR`: bind and listen on ADDR;
//! - `connect=ADDR`: connect out to ADDR;
//! - `panic`: panic, which traps the component;
//! - `spin`: loop forever without calling the host;
//! - `poll-spin`: call `poll` forever on a pollable that is always ready;
//! - `alloc`: allocate memory until it runs out;
//! - `memory`: allocate whole MiBs until one is refused, and print how many;
//! - `recurse`: recurse until the stack overflows;
//! - `sockets`, `pollables`: create resources forever, never dropping them;
//! - `overwrite`: accept a client on the granted address (after printing
//!   `listening on ADDR`) and write to it more than `check-write` permits;
//! - `huge-write`: hand the host 64 MiB in one call;
//! - `empty-poll`: call `poll` with an empty list;
//! - `block`: wait forever in `poll`;
//! - `calls`: time a million calls each of two cheap host functions, and
//!   `poll` over one ready pollable and over 10,001 with one ready (for the
//!   per-call costs quoted in BENCHMARKS.md);
//! - `poll-cases`: `poll`'s edge cases on clock pollables, one line each:
//!   a pollable dropped while ready, a handle the table reuses (after a
//!   clock's, and after a ready stream's), the same pollable twice in one
//!   list, thousands parked with one ready;
//! - `poll-streams=N`: listen (after printing `listening on ADDR`), accept N
//!   clients, and then, in a loop, poll all their input streams and print
//!   `ready: [indices]`; the first time, drop the ready pollables and poll
//!   again before reading (`ready again: [...]`), then read what they sent;
//! - `stall-drop`: accept a client and write to it until `check-write`
//!   permits nothing (`stalled`), drop its streams and socket without a
//!   shutdown, then greet the next client with `alive`;
//! - `serve`: listen on the granted address, print `listening on ADDR`, and
//!   greet each client with `alive`; a client that sends `panic` makes the
//!   component trap.

use echo_hostile::{actions, family, finish, granted_address, outcome, to_wasi};
use std::hint::black_box;
use std::net::SocketAddr;
use wasip2::clocks::monotonic_clock::subscribe_duration;
use wasip2::io::poll::{Pollable, poll};
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
            "memory" => {
                // Whole MiBs, until the host's cap refuses one more.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut mib = Vec::new();
                    if mib.try_reserve_exact(1 << 20).is_err() {
                        break;
                    }
                    hoard.push(black_box(mib));
                }
                println!("allocated {} MiB", hoard.len());
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
                // One ready pollable, alone and at the end of 10,000 parked
                // ones, as a server's last-parked connection is.
                let ready = subscribe_duration(0);
                let start = now();
                for _ in 0..N {
                    black_box(poll(&[&ready]));
                }
                let one = (now() - start) / N;
                let parked: Vec<Pollable> = (0..10_000).map(|_| far()).collect();
                let list: Vec<&Pollable> = parked.iter().chain([&ready]).collect();
                const M: u64 = 1_000;
                let start = now();
                for _ in 0..M {
                    black_box(poll(&list));
                }
                let many = (now() - start) / M;
                println!("ns per poll: 1 ready {one}, 10001 with 1 ready {many}");
            }
            "poll-cases" => poll_cases(),
            "poll-streams" => poll_streams(addr.parse().expect("poll-streams=N")),
            "stall-drop" => stall_drop(),
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

/// A pollable that will not be ready for an hour.
fn far() -> Pollable {
    subscribe_duration(3_600_000_000_000)
}

fn poll_cases() {
    // Ready, then dropped: the others are polled as if it had never been.
    let dropped = subscribe_duration(0);
    assert!(dropped.ready());
    drop(dropped);
    let (waiting, ready) = (far(), subscribe_duration(0));
    println!("dropped while ready: {:?}", poll(&[&waiting, &ready]));
    // The table reuses the dropped pollables' handles: a new pollable there
    // knows nothing of the old one's readiness.
    drop((waiting, ready));
    let (reused, ready) = (far(), subscribe_duration(0));
    println!("reused handle: {:?}", poll(&[&reused, &ready]));
    // A handle that was a ready stream's pollable, reused for a clock's: the
    // clock's own deadline counts, not the stream's readiness.
    let stdin = wasip2::cli::stdin::get_stdin();
    let flagged = stdin.subscribe();
    println!("stream pollable ready: {}", flagged.ready());
    drop(flagged);
    let reused_stream = far();
    println!("reused stream handle: {:?}", poll(&[&reused_stream, &ready]));
    drop((reused_stream, stdin));
    // The same pollable twice: both positions.
    println!("twice: {:?}", poll(&[&ready, &reused, &ready]));
    // Thousands parked, one ready: that one alone.
    let mut parked: Vec<Pollable> = (0..10_000).map(|_| far()).collect();
    parked.insert(7_777, subscribe_duration(0));
    let list: Vec<&Pollable> = parked.iter().collect();
    println!("one of 10001: {:?}", poll(&list));
}

fn poll_streams(count: usize) {
    let (socket, ready) = listen_on_grant();
    let clients: Vec<_> =
        (0..count).map(|_| finish(&ready, || socket.accept()).expect("accept")).collect();
    println!("accepted {count}");
    let mut pollables: Vec<Pollable> =
        clients.iter().map(|(_, input, _)| input.subscribe()).collect();
    let mut first = true;
    loop {
        let list: Vec<&Pollable> = pollables.iter().collect();
        let ready = poll(&list);
        println!("ready: {ready:?}");
        if first {
            // Dropped while ready, and made again: still ready.
            for &index in &ready {
                pollables[index as usize] = clients[index as usize].1.subscribe();
            }
            let list: Vec<&Pollable> = pollables.iter().collect();
            println!("ready again: {:?}", poll(&list));
            first = false;
        }
        for &index in &ready {
            let said = clients[index as usize].1.read(64).unwrap_or_default();
            println!("client {index} said {:?}", String::from_utf8_lossy(&said));
        }
    }
}

fn stall_drop() {
    let (socket, ready) = listen_on_grant();
    let (client, input, output) = finish(&ready, || socket.accept()).expect("accept");
    let chunk = vec![b's'; 64 * 1024];
    loop {
        match output.check_write() {
            Ok(0) => break,
            Ok(permit) => {
                output.write(&chunk[..(permit as usize).min(chunk.len())]).expect("write")
            }
            Err(e) => panic!("check-write: {e:?}"),
        }
    }
    println!("stalled");
    // Dropped mid-write, without a shutdown: this must not wait for the
    // client to read.
    drop((input, output, client));
    println!("dropped");
    let (next, input, output) = finish(&ready, || socket.accept()).expect("accept");
    let _ = output.blocking_write_and_flush(b"alive\n");
    drop((input, output, next));
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
