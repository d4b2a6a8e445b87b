//! The sandbox seen from outside: components that try what they were not
//! granted, or try to exhaust the host, are refused or stopped, and the host
//! stays well. The components are in `tests/hostile`.

mod support;

use echo_testkit::Process;
use rustix::process::Signal;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::server::{host_command, run_to_exit};
use support::{DEADLINE, Server, connect, hostile, raise_fd_limit};

/// Starts `echo-host` on `listen` running the hostile component with `actions`.
fn hostile_host(listen: &str, actions: &[&str]) -> Server {
    let actions: Vec<&str> = actions.iter().copied().chain(["serve"]).collect();
    Server::start(hostile::under_host("hostile", &["--listen", listen], &actions))
}

/// The host is well: its guest still answers on the granted address.
fn assert_alive(server: &mut Server) {
    assert!(server.is_running(), "the host died:\n{}", server.log());
    let mut client = connect(server.addr);
    client.write_all(b"hello").unwrap();
    let mut greeting = String::new();
    client.read_to_string(&mut greeting).unwrap();
    assert_eq!(greeting, "alive\n");
}

/// Nothing accepts connections at `addr`.
fn assert_nothing_listens(addr: SocketAddr) {
    let err =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect_err("something listens");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{addr}: {err}");
}

/// A port the system has just given out and taken back: free, in all likelihood.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// S1: binding a port other than the granted one is refused with access-denied.
#[test]
fn s01_binding_another_port_is_refused() {
    let other: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut server = hostile_host("127.0.0.1:0", &[&format!("bind={other}")]);
    let line = format!("bind {other}: access-denied");
    assert!(server.wait_for_line(&line, DEADLINE).is_some(), "no {line:?} in:\n{}", server.log());
    assert_nothing_listens(other);
    assert_alive(&mut server);
}

/// S2: the granted port on another address (every interface, IPv6) is refused.
#[test]
fn s02_binding_the_granted_port_elsewhere_is_refused() {
    let port = free_port();
    let mut server = hostile_host(
        &format!("127.0.0.1:{port}"),
        &[&format!("bind=0.0.0.0:{port}"), &format!("bind=[::1]:{port}")],
    );
    for refused in
        [format!("bind 0.0.0.0:{port}: access-denied"), format!("bind [::1]:{port}: access-denied")]
    {
        assert!(
            server.wait_for_line(&refused, DEADLINE).is_some(),
            "no {refused:?} in:\n{}",
            server.log()
        );
    }
    assert_nothing_listens(format!("[::1]:{port}").parse().unwrap());
    assert_alive(&mut server);
}

/// S3: connecting out, even to loopback, is refused; the target sees nothing.
#[test]
fn s03_connecting_out_is_refused() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let addr = target.local_addr().unwrap();
    let mut server = hostile_host("127.0.0.1:0", &[&format!("connect={addr}")]);
    let line = format!("connect {addr}: access-denied");
    assert!(server.wait_for_line(&line, DEADLINE).is_some(), "no {line:?} in:\n{}", server.log());
    assert_eq!(
        target.accept().unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "the target saw a connection"
    );
    assert_alive(&mut server);
}

/// S4: components importing UDP or name lookup are not linked, so never run.
#[test]
fn s04_udp_and_name_lookup_are_not_linked() {
    for (name, interface, attempt) in [
        ("udp", "wasi:sockets/udp", "udp socket:"),
        ("lookup", "wasi:sockets/ip-name-lookup", "name lookup:"),
    ] {
        let command = hostile::under_host(name, &["--listen", "127.0.0.1:0"], &[]);
        let (status, output) = run_to_exit(command);
        assert!(!status.success(), "{name} ran:\n{output}");
        assert!(
            output.contains("link the guest") && output.contains(interface),
            "{name}:\n{output}"
        );
        assert!(!output.contains(attempt), "{name} reached its import:\n{output}");
    }
}

/// The echo guest told to listen elsewhere than granted: refused, and the
/// host exits with the guest's explanation.
#[test]
fn a_refused_bind_ends_the_host_with_an_error() {
    let other = format!("127.0.0.1:{}", free_port());
    let mut command = host_command();
    command.args(["--listen", "127.0.0.1:0", "--", "--listen", &other]);
    let (status, output) = run_to_exit(command);
    assert!(!status.success());
    assert!(output.contains(&format!("cannot listen on {other}: access-denied")), "{output}");
    assert!(output.contains("denied a socket operation outside the grant"), "{output}");
}

/// A guest that traps ends the host with a non-zero status and says so.
#[test]
fn a_trap_ends_the_host_with_an_error() {
    let flags = ["--listen", "127.0.0.1:0", "--restart", "2"];
    let (status, output) = run_to_exit(hostile::under_host("hostile", &flags, &["panic"]));
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("panicking on purpose") && output.contains("UnreachableCodeReached"),
        "{output}"
    );
    // Restarted twice, then given up on.
    assert_eq!(output.matches("restarting the guest").count(), 2, "{output}");
    assert!(output.contains("the guest trapped (restart policy: 2)"), "{output}");
}

/// Runs the hostile component's `action` under `echo-host` with `flags`, to
/// its end, and returns its exit status and output.
fn hostile_run(action: &str, flags: &[&str]) -> (std::process::ExitStatus, String) {
    let flags: Vec<&str> = ["--listen", "127.0.0.1:0", "--restart", "never"]
        .into_iter()
        .chain(flags.iter().copied())
        .collect();
    run_to_exit(hostile::under_host("hostile", &flags, &[action]))
}

/// Starts the hostile component's `action` under `echo-host` with `flags`,
/// waiting until it says `ready_line`, the line it prints as it starts.
fn hostile_start(action: &str, flags: &[&str], ready_line: &str) -> Process {
    let flags: Vec<&str> =
        ["--listen", "127.0.0.1:0"].into_iter().chain(flags.iter().copied()).collect();
    // The action never ends, so it never listens: wait for its own line.
    let mut guest = Process::spawn(hostile::under_host("hostile", &flags, &[action]));
    assert!(guest.wait_for_line(ready_line, DEADLINE).is_some(), "{}", guest.log());
    assert!(guest.is_running(), "{}", guest.log());
    guest
}

/// S5: `loop {}` is interrupted at the CPU limit, and said to be.
#[test]
fn s05_a_spinning_guest_is_interrupted() {
    let start = Instant::now();
    let (status, output) = hostile_run("spin", &["--cpu-limit", "500ms"]);
    assert!(!status.success());
    assert!(
        output.contains("interrupted: the guest ran for 500ms without returning to the host"),
        "{output}"
    );
    // Not before the limit; the upper bound says only that it fired, with
    // room for a loaded machine (the limit counts ticks of running).
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(15), "took {took:?}");
}

/// S5, S6: while a guest spins, or polls without pause, the host still
/// answers a signal within the grace period.
#[test]
fn s05_s06_the_host_stays_responsive() {
    for (action, line) in [("spin", "spinning"), ("poll-spin", "polling without pause")] {
        let mut guest =
            hostile_start(action, &["--cpu-limit", "60s", "--grace-period", "1s"], line);
        let start = Instant::now();
        guest.signal(Signal::TERM);
        let status = guest.wait_exit(DEADLINE).expect("the host did not exit");
        assert!(status.success(), "{action}: {status:?}\n{}", guest.log());
        // A host that did not answer would be stopped by the CPU limit, after
        // 60 s; one that answers exits after the grace period of 1 s. The
        // bound tells the two apart with room for a loaded machine.
        let took = start.elapsed();
        assert!(took < Duration::from_secs(15), "{action}: exit took {took:?}");
        assert!(guest.log().contains("grace period over"), "{action}: {}", guest.log());
    }
}

/// S7: a memory bomb fails at the cap; the host's own memory stays bounded.
#[test]
fn s07_memory_bomb_stops_at_the_cap() {
    let (status, output) = hostile_run("alloc", &["--max-memory", "64"]);
    assert!(!status.success());
    assert!(
        output.contains("memory allocation") && output.contains("the guest trapped"),
        "{output}"
    );
}

/// S8: unbounded recursion overflows the guest's stack, not the host's.
#[test]
fn s08_unbounded_recursion_traps() {
    let (status, output) = hostile_run("recurse", &[]);
    assert!(!status.success());
    assert!(output.contains("StackOverflow") || output.contains("stack overflow"), "{output}");
}

/// S9: creating sockets or pollables without end stops at the table cap,
/// long before the host runs out of descriptors.
#[test]
fn s09_resource_floods_stop_at_the_table_cap() {
    for action in ["sockets", "pollables"] {
        let (status, output) = hostile_run(action, &["--max-connections", "100"]);
        assert!(!status.success(), "{action}");
        assert!(output.contains("resource table has no free keys"), "{action}: {output}");
    }
}

/// S10: writing past `check-write`, or handing over 64 MiB at once, traps
/// without the host copying it.
#[test]
fn s10_oversized_writes_trap() {
    let flags = ["--listen", "127.0.0.1:0", "--restart", "never"];
    let mut server = Server::start(hostile::under_host("hostile", &flags, &["overwrite"]));
    let _client = connect(server.addr);
    server.wait_exit(DEADLINE).expect("the host did not exit");
    assert!(server.log().contains("not permitted to write"), "{}", server.log());
    assert!(!server.log().contains("the host took it"), "{}", server.log());

    let (status, output) = hostile_run("huge-write", &[]);
    assert!(!status.success());
    assert!(output.contains("fuel allocated for hostcalls has been exhausted"), "{output}");
}

/// S11: `poll` on an empty list traps, and the report says so.
#[test]
fn s11_empty_poll_traps_clearly() {
    let (status, output) = hostile_run("empty-poll", &[]);
    assert!(!status.success());
    assert!(output.contains("empty poll list"), "{output}");
}

/// S12: a guest blocked in `poll` forever does not hold the host past the
/// grace period.
#[test]
fn s12_blocked_guest_does_not_hold_shutdown() {
    let mut guest = hostile_start("block", &["--grace-period", "1s"], "blocking");
    let start = Instant::now();
    guest.signal(Signal::TERM);
    let status = guest.wait_exit(DEADLINE).expect("the host did not exit");
    assert!(status.success(), "{status:?}");
    // Not before the grace period; the upper bound says only that it ended,
    // with room for a loaded machine.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "exit took {took:?}"
    );
}

/// S13: `poll`'s edge cases: a pollable dropped while ready, a handle the
/// table reuses (a ready stream's, then a clock's), the same pollable twice
/// in a list, and one ready among 10,001 parked: each answers with exactly
/// the ready positions.
#[test]
fn s13_poll_edge_cases() {
    let (status, output) = hostile_run("poll-cases", &[]);
    assert!(status.success(), "{output}");
    let lines = [
        "dropped while ready: [1]",
        "reused handle: [1]",
        "stream pollable ready: true",
        "reused stream handle: [1]",
        "twice: [0, 2]",
        "one of 10001: [7777]",
    ];
    for line in lines {
        assert!(output.contains(line), "no {line:?} in:\n{output}");
    }
}

/// S14: among 2,000 connections, `poll` reports the one that has data, and
/// only it; a pollable dropped while ready and made again is ready again.
#[test]
fn s14_poll_finds_the_one_ready_stream_among_thousands() {
    raise_fd_limit();
    let count = 2000;
    let flags = ["--listen", "127.0.0.1:0"];
    let command = hostile::under_host("hostile", &flags, &[&format!("poll-streams={count}")]);
    let server = Server::start(command);
    let mut clients: Vec<TcpStream> = (0..count).map(|_| connect(server.addr)).collect();
    assert!(server.wait_for_line(&format!("accepted {count}"), DEADLINE).is_some());
    for (round, index) in [1234, 77].into_iter().enumerate() {
        clients[index].write_all(b"hi").unwrap();
        let said = format!("client {index} said \"hi\"");
        assert!(server.wait_for_line(&said, DEADLINE).is_some(), "{}", server.log());
        assert_eq!(server.count_lines("ready: "), round + 1, "{}", server.log());
        assert!(server.log().contains(&format!("ready: [{index}]")), "{}", server.log());
    }
    assert!(server.log().contains("ready again: [1234]"), "{}", server.log());
}

/// S15: a guest that drops a connection in the middle of a write its client
/// does not read goes on at once: the next client is greeted.
#[test]
fn s15_a_stalled_connection_is_dropped_without_waiting() {
    let flags = ["--listen", "127.0.0.1:0"];
    let server = Server::start(hostile::under_host("hostile", &flags, &["stall-drop"]));
    let staller = connect(server.addr);
    assert!(server.wait_for_line("dropped", DEADLINE).is_some(), "{}", server.log());
    let mut next = connect(server.addr);
    let mut greeting = String::new();
    next.read_to_string(&mut greeting).unwrap();
    assert_eq!(greeting, "alive\n");
    drop(staller);
}

/// S16: `--allow-connect` lets the guest connect to the networks it names,
/// and to no other.
#[test]
fn s16_allowed_connections_go_through() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = target.local_addr().unwrap();
    let other = format!("127.0.0.2:{}", addr.port());
    let flags = ["--listen", "127.0.0.1:0", "--allow-connect", "127.0.0.1", "--restart", "never"];
    let actions = [format!("connect={addr}"), format!("connect={other}")];
    let command = hostile::under_host("hostile", &flags, &[&actions[0], &actions[1]]);
    let (_, output) = run_to_exit(command);
    assert!(output.contains(&format!("connect {addr}: ok")), "{output}");
    assert!(output.contains(&format!("connect {other}: access-denied")), "{output}");
    target.set_nonblocking(true).unwrap();
    assert!(target.accept().is_ok(), "the target saw no connection");
}

/// S17: `--allow-peers` serves the networks it names; other clients are
/// reset as they are accepted, and the guest never sees them.
#[test]
fn s17_peers_outside_the_grant_are_reset() {
    let server = Server::host(&["--allow-peers", "127.0.0.2/32"]);
    // The kernel completes the handshake before the host sees the client,
    // so the reset may come as soon as the connect (before it returns), or
    // at the first read.
    let outsider = TcpStream::connect_timeout(&server.addr, DEADLINE).and_then(|mut outsider| {
        outsider.set_read_timeout(Some(DEADLINE))?;
        let _ = outsider.write_all(b"let me in\n");
        let mut buf = [0; 64];
        outsider.read(&mut buf).map(|n| buf[..n].to_vec())
    });
    match outsider {
        Ok(said) if said.is_empty() => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        Ok(said) => panic!("an outsider was answered: {said:?}"),
    }
    let insider = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    insider.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    insider.connect(&server.addr.into()).unwrap();
    let mut insider: TcpStream = insider.into();
    insider.set_read_timeout(Some(DEADLINE)).unwrap();
    support::round_trip(&mut insider, b"GOT:", b"from inside\n");
    assert!(!server.log().contains("Connection from 127.0.0.1:"), "{}", server.log());
}
