//! Workers: several guests, each on a thread of its own, accepting from the
//! listeners the host bound once. Each worker is its own fault domain; the
//! limits are the whole server's, shared out; one grace period drains all.

mod support;

use rustix::process::Signal;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use support::server::run_to_exit;
use support::{DEADLINE, Server, connect, hostile, read_to_end, round_trip, scenarios};

const PREFIX: &[u8] = b"GOT:";

/// `echo-host` with `flags` and `--workers N`, once every worker's guest
/// has said it listens.
fn workers(n: usize, flags: &[&str]) -> Server {
    let n_text = n.to_string();
    let args: Vec<&str> =
        ["--workers", n_text.as_str()].into_iter().chain(flags.iter().copied()).collect();
    let server = Server::host(&args);
    assert!(server.wait_for_lines("listening on", n, DEADLINE).is_some(), "{}", server.log());
    server
}

/// The hostile `serve` component under `--workers N`: it greets each client
/// with `alive`, serves one client at a time, and traps when one sends
/// `panic`.
fn hostile_workers(n: usize) -> Server {
    let n_text = n.to_string();
    let flags = ["--listen", "127.0.0.1:0", "--workers", n_text.as_str()];
    let server = Server::start(hostile::under_host("hostile", &flags, &["serve"]));
    assert!(server.wait_for_lines("listening on", n, DEADLINE).is_some(), "{}", server.log());
    server
}

/// A client of the hostile `serve` component, once greeted.
fn greeted(addr: SocketAddr) -> TcpStream {
    let mut client = connect(addr);
    let mut greeting = [0; 6];
    client.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"alive\n");
    client
}

/// The CPU time of each worker thread of `server`, by name.
fn worker_cpu(server: &Server) -> Vec<(String, Duration)> {
    let mut threads: Vec<_> = echo_testkit::procfs::threads(server.pid())
        .into_iter()
        .filter(|(name, _)| name.starts_with("worker-"))
        .collect();
    threads.sort();
    threads
}

/// W1: two workers share a load of many connections, opened while the
/// load runs: each worker's thread does a fair part of the work.
///
/// (All 32 opened at once from one thread would, on a 2-core machine, often
/// all go to the worker that is running: it empties the one queue before
/// the other worker's thread gets a core. README, "Workers".)
#[test]
fn w01_two_workers_share_the_load() {
    let server = workers(2, &[]);
    let before = worker_cpu(&server);
    assert_eq!(before.len(), 2, "{before:?}");
    let until = Instant::now() + Duration::from_secs(2);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut streams: Vec<TcpStream> = Vec::new();
                let mut opened = Instant::now();
                while Instant::now() < until {
                    if streams.is_empty()
                        || streams.len() < 8 && opened.elapsed() >= Duration::from_millis(20)
                    {
                        streams.push(connect(addr));
                        opened = Instant::now();
                    }
                    for stream in &mut streams {
                        round_trip(stream, PREFIX, b"share\n");
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let after = worker_cpu(&server);
    let used: Vec<Duration> = after.iter().zip(&before).map(|(a, b)| a.1 - b.1).collect();
    let total: Duration = used.iter().sum();
    for (thread, used) in after.iter().zip(&used) {
        assert!(*used >= total / 10, "{} did {used:?} of {total:?}: {after:?}", thread.0);
    }
}

/// W2: a guest that traps takes down its own worker only: the other
/// worker's open connection is still served, and the port keeps accepting
/// while the trapped guest restarts.
#[test]
fn w02_a_trap_in_one_worker_leaves_the_others_serving() {
    let mut server = hostile_workers(2);
    // The hostile guest serves one client at a time: with the first client
    // open, the second is the other worker's.
    let mut first = greeted(server.addr);
    let mut second = greeted(server.addr);
    first.write_all(b"panic").unwrap();
    let trapped = server.wait_for_line("the guest trapped", DEADLINE).expect("no trap");
    assert!(trapped.contains("worker="), "the log does not name the worker: {trapped}");
    // The other worker's client is still being served: it reads what the
    // client sends, and closes the connection as the guest does (a
    // connection dropped unread would be reset instead).
    second.write_all(b"hello").unwrap();
    assert_eq!(read_to_end(&mut second), b"", "{}", server.log());
    // And the port takes new clients, whichever worker answers.
    drop(greeted(server.addr));
    // The trapped worker alone starts again; the host goes on.
    let restarted = server.wait_for_lines("listening on", 3, DEADLINE);
    assert!(restarted.is_some(), "the trapped worker did not start again: {}", server.log());
    assert!(server.is_running(), "{}", server.log());
    // The host's log (stderr) and the guests' (stdout) are read apart, so
    // the restart's line may come after its guest's.
    let started = server.wait_for_lines("starting the guest listen=", 3, DEADLINE);
    assert!(started.is_some(), "{}", server.log());
    assert_eq!(server.count_lines("the guest trapped"), 1, "{}", server.log());
    assert_eq!(server.count_lines("starting the guest listen="), 3, "{}", server.log());
}

/// W3: across repeated traps and restarts, the port never refuses a
/// connection: clients wait in the backlog of the listener the host keeps,
/// with one worker and with two.
#[test]
fn w03_no_connection_is_refused_across_restarts() {
    for n in [1, 2] {
        let server = hostile_workers(n);
        let stop = Arc::new(AtomicBool::new(false));
        let prober = {
            let (addr, stop) = (server.addr, stop.clone());
            thread::spawn(move || {
                let (mut accepted, mut refused) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match TcpStream::connect_timeout(&addr, DEADLINE) {
                        Ok(_) => accepted += 1,
                        Err(e) => refused.push(e),
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                (accepted, refused)
            })
        };
        for traps in 1..=4 {
            greeted(server.addr).write_all(b"panic").unwrap();
            let trapped = server.wait_for_lines("the guest trapped", traps, DEADLINE);
            assert!(trapped.is_some(), "{n} workers, trap {traps}: {}", server.log());
        }
        // The last restart too: a client is greeted again.
        drop(greeted(server.addr));
        stop.store(true, Ordering::Relaxed);
        let (accepted, refused) = prober.join().unwrap();
        assert!(refused.is_empty(), "{n} workers: {refused:?}\n{}", server.log());
        assert!(accepted > 50, "{n} workers: only {accepted} probes");
    }
}

/// W4: `--max-connections` is the whole server's: with two workers and a
/// cap of two, two clients are served and a third waits until one leaves.
#[test]
fn w04_the_connection_cap_is_for_all_workers() {
    let server = workers(2, &["--max-connections", "2"]);
    scenarios::connection_cap(&server, PREFIX, 2);
}

/// W5: `--max-memory` is the whole server's: each of two workers may grow
/// to half of it.
#[test]
fn w05_the_memory_cap_is_for_all_workers() {
    let command =
        hostile::under_host("hostile", &["--workers", "2", "--max-memory", "64"], &["memory"]);
    let (status, output) = run_to_exit(command);
    assert!(status.success(), "{status:?}\n{output}");
    let grown: Vec<u64> = output
        .lines()
        .filter_map(|line| line.strip_prefix("allocated ")?.strip_suffix(" MiB")?.parse().ok())
        .collect();
    assert_eq!(grown.len(), 2, "{output}");
    for mib in grown {
        assert!((16..32).contains(&mib), "a worker grew to {mib} MiB of a 32 MiB share");
    }
}

/// W6: SIGTERM with connections open on every worker: each finishes what it
/// owes and ends cleanly, within the one grace period, and the host exits 0.
#[test]
fn w06_sigterm_drains_every_worker() {
    // A cap of one each puts one client on each worker.
    let mut server = workers(2, &["--max-connections", "2"]);
    let mut clients: Vec<TcpStream> = (0..2).map(|_| connect(server.addr)).collect();
    for client in &mut clients {
        round_trip(client, PREFIX, b"before the signal\n");
    }
    server.signal(Signal::TERM);
    for client in &mut clients {
        assert_eq!(read_to_end(client), b"", "an open connection did not end cleanly");
    }
    let status = server.wait_exit(DEADLINE).expect("the host did not exit");
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert_eq!(server.count_lines("shut down"), 2, "{}", server.log());
    assert!(!server.log().contains("grace period over"), "{}", server.log());
}

/// W7: dual-stack: `--listen` given twice, an IPv4 and an IPv6 address,
/// port 0, takes clients of both families on one port the system picked,
/// every worker accepting from both.
#[test]
fn w07_dual_stack_with_two_addresses() {
    // The harness gives `--listen 127.0.0.1:0`; this adds the other.
    let server = workers(2, &["--listen", "[::1]:0"]);
    let lines = server.wait_for_lines("listening on", 4, DEADLINE).expect("four listeners");
    let mut addrs: Vec<SocketAddr> = lines
        .iter()
        .filter_map(|line| line.split("listening on ").nth(1)?.trim().parse().ok())
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 2, "{lines:?}");
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6(), "{addrs:?}");
    assert_eq!(addrs[0].port(), addrs[1].port(), "one port for both families: {addrs:?}");
    for addr in addrs {
        let mut client = connect(addr);
        round_trip(&mut client, PREFIX, format!("over {addr}\n").as_bytes());
    }
}
