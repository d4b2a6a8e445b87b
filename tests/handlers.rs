//! Handler components: the shipped ones and a Python one, run on their own
//! (`--handler`) and composed with the server (`echo-host compose`), over
//! TCP; and hostile ones, which fail without taking the server down.

mod support;

use echo_testkit::Process;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::observe::{get, metrics_addr, sample};
use support::server::{ECHO_HOST, host_command};
use support::{DEADLINE, Server, connect, read_to_end};

/// `echo-host compose --handler HANDLER -o target/handler-tests/NAME.wasm`.
fn compose(handler: &str, name: &str) -> PathBuf {
    let dir = echo_testkit::workspace_root().join("target/handler-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.wasm"));
    let mut command = std::process::Command::new(ECHO_HOST);
    command.args(["compose", "--handler", handler, "-o"]).arg(&out);
    let (status, log) = Process::run_to_exit(command, DEADLINE);
    assert!(status.success(), "compose {handler}: {status}\n{log}");
    out
}

/// The two ways of running `handler` with `args`: on its own, and composed
/// into the server (run as a component).
fn both_ways(handler: &str, name: &str, args: &[&str]) -> [Server; 2] {
    let alone = Server::host(&[&["--handler", handler], args].concat());
    let composed = compose(handler, name);
    let composed = composed.to_str().unwrap();
    // The composed server takes its settings as the echo guest does.
    let mut flags = vec!["--component", composed, "--"];
    flags.extend(args);
    [alone, Server::host(&flags)]
}

/// Sends `message`, ends the sending side, and reads everything back.
fn exchange(server: &Server, message: &[u8]) -> Vec<u8> {
    let mut client = connect(server.addr);
    client.write_all(message).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    read_to_end(&mut client)
}

/// Sends `message` and reads until `expected.len()` bytes came back.
fn ask(client: &mut TcpStream, message: &[u8], expected: &[u8]) {
    client.write_all(message).unwrap();
    let mut got = vec![0; expected.len()];
    client.read_exact(&mut got).unwrap_or_else(|e| panic!("reply to {message:?}: {e}"));
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected));
}

/// H1: each shipped handler answers as it says, run either way.
#[test]
fn h01_shipped_handlers_answer_alone_and_composed() {
    for server in both_ways("uppercase", "uppercase", &[]) {
        assert_eq!(exchange(&server, b"Hello, world 1\n"), b"HELLO, WORLD 1\n");
    }
    for server in both_ways("lines", "lines", &[]) {
        let mut client = connect(server.addr);
        client.write_all(b"one\ntw").unwrap();
        ask(&mut client, b"o\n", b"1: one\n2: two\n");
        // A partial line waits for the rest, and the end flushes it.
        client.write_all(b"thr").unwrap();
        client.write_all(b"ee").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&mut client), b"3: three");
    }
    for server in both_ways("prefix", "prefix", &["--prefix", "P:"]) {
        assert_eq!(exchange(&server, b"abc"), b"P:abc");
    }
    for server in both_ways("ratelimit", "ratelimit", &["--set", "rate=100000"]) {
        assert_eq!(exchange(&server, b"as it is"), b"as it is");
    }
}

/// H2: `read-after` paces a client by back-pressure, and every byte comes
/// back once, in order. 2,000 bytes in chunks of 200, at 1,000 bytes a
/// second past a burst of 1,000: the server waits out 1,000 bytes of debt
/// before reading on, less the last chunk's 200, whose wait comes after its
/// reply.
#[test]
fn h02_ratelimit_paces_by_back_pressure() {
    let server =
        Server::host(&["--handler", "ratelimit", "--set", "rate=1000", "--set", "burst=1000"]);
    let mut client = connect(server.addr);
    let data: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let started = Instant::now();
    for piece in data.chunks(200) {
        ask(&mut client, piece, piece);
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(780), "2,000 bytes took {took:?}");
}

/// H3: a handler refused at start, with a message that names it and why:
/// one that imports more than the contract and WASI, one that is no
/// component, one that refuses its settings, and a name that is not a
/// shipped handler.
#[test]
fn h03_bad_handlers_are_refused_at_start() {
    let core = Path::new(echo_guest_wasm::ECHO_SERVER_CORE_PATH);
    let not_a_component = echo_testkit::workspace_root().join("README.md");
    for (handler, args, says) in [
        (core, &[][..], "neither the contract nor WASI 0.2"),
        (&not_a_component, &[], "README.md"),
        (
            Path::new("uppercase"),
            &["--set", "loud=yes"],
            "refuses its settings: unknown setting \"loud\"",
        ),
        (Path::new("nosuch"), &[], "--handler"),
    ] {
        let mut command = host_command();
        command.args(["--listen", "127.0.0.1:0", "--handler"]).arg(handler).args(args);
        let (status, log) = Process::run_to_exit(command, DEADLINE);
        assert!(!status.success(), "{handler:?} was not refused:\n{log}");
        assert!(log.contains(says), "{handler:?}: no {says:?} in:\n{log}");
        assert!(!log.contains("listening on"), "{handler:?} started:\n{log}");
    }
}

/// H4: a handler that traps, loops forever, allocates without end or
/// answers with 100 MiB fails alone: its connection ends as the policy
/// says, the log names the handler and what happened, and a connection
/// opened before goes on being served by a fresh instance. One that reads
/// a file finds nothing there.
#[test]
fn h04_hostile_handlers_fail_alone() {
    let hostile = echo_testkit::handlers::hostile(true);
    let hostile = hostile.to_str().unwrap();
    let server = Server::host(&[
        "--handler",
        hostile,
        "--handler-fuel",
        "500000000",
        "--handler-memory",
        "200",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut bystander = connect(server.addr);
    ask(&mut bystander, b"before", b"H:before");
    for (cue, says) in [
        ("trap", "trapped"),
        ("spin", "ran out of fuel (500000000 for a call, --handler-fuel)"),
        ("hoard", "after reaching its memory cap (200 MiB, --handler-memory)"),
        ("huge", "reply of 104857600 bytes is over the 1048576 allowed"),
    ] {
        let mut victim = connect(server.addr);
        ask(&mut victim, b"hello", b"H:hello");
        victim.write_all(cue.as_bytes()).unwrap();
        assert_eq!(read_to_end(&mut victim), b"", "{cue}: the connection was not ended");
        let line = server.wait_for_line(says, DEADLINE);
        let line = line.unwrap_or_else(|| panic!("{cue}: no {says:?} in:\n{}", server.log()));
        assert!(line.contains(hostile), "{cue}: the handler is not named: {line}");
        ask(
            &mut bystander,
            cue.as_bytes().get(..1).unwrap(),
            &[b"H:", &cue.as_bytes()[..1]].concat(),
        );
    }
    ask(&mut bystander, b"file", b"no file: ");
    let log = server.log();
    assert!(log.contains("linked with nothing behind it"), "{log}");
    assert!(log.contains("wasi:filesystem/preopens"), "{log}");
    assert!(server.count_lines("the guest trapped") == 0, "the server trapped:\n{log}");
    // Counted by kind; a fresh instance after each failure but the last
    // reply's, which left the instance well.
    let figures = get(metrics_addr(&server), "/metrics").1;
    let failures = |kind: &str| sample(&figures, "echo_handler_failures_total", &[kind]);
    assert_eq!(failures("kind=\"UnreachableCodeReached\""), 1.0, "{figures}");
    assert_eq!(failures("kind=\"out_of_fuel\""), 1.0, "{figures}");
    assert_eq!(failures("kind=\"memory\""), 1.0, "{figures}");
    assert_eq!(failures("kind=\"reply_too_long\""), 1.0, "{figures}");
    assert_eq!(sample(&figures, "echo_handler_instances_total", &[]), 4.0, "{figures}");
}

/// H5: composed, the handler is part of the server: its trap is the
/// server's, which the host restarts; and what it imports, the server
/// imports, which the host refuses beyond the echo server's world.
#[test]
fn h05_a_composed_handler_is_the_server() {
    let with_file = echo_testkit::handlers::hostile(true);
    let composed = compose(with_file.to_str().unwrap(), "hostile-file");
    let mut command = host_command();
    command.args(["--listen", "127.0.0.1:0", "--component"]).arg(&composed);
    let (status, log) = Process::run_to_exit(command, DEADLINE);
    assert!(!status.success() && log.contains("wasi:filesystem"), "{status}\n{log}");

    let hostile = echo_testkit::handlers::hostile(false);
    let composed = compose(hostile.to_str().unwrap(), "hostile");
    let server = Server::host(&["--component", composed.to_str().unwrap()]);
    let mut bystander = connect(server.addr);
    ask(&mut bystander, b"x", b"H:x");
    let mut victim = connect(server.addr);
    victim.write_all(b"trap").unwrap();
    assert!(server.wait_for_line("the guest trapped", DEADLINE).is_some(), "{}", server.log());
    // The whole server went: the bystander's connection too.
    assert_eq!(read_to_end(&mut bystander), b"");
    let restarted = support::eventually(|| {
        let mut client = TcpStream::connect(server.addr).map_err(|e| e.to_string())?;
        client.set_read_timeout(Some(DEADLINE)).unwrap();
        client.write_all(b"y").map_err(|e| e.to_string())?;
        let mut got = [0; 3];
        client.read_exact(&mut got).map_err(|e| e.to_string())?;
        Ok(got)
    });
    assert_eq!(&restarted, b"H:y");
}

/// H6: a handler written in Python (componentize-py) runs on its own, its
/// runtime's WASI linked with nothing behind it, and composed, built with
/// its WASI stubbed out.
#[test]
fn h06_a_python_handler_runs_alone_and_composed() {
    let alone = echo_testkit::handlers::python(false);
    let server = Server::host(&["--handler", alone.to_str().unwrap()]);
    let mut client = connect(server.addr);
    ask(&mut client, b"hello", b"PY:hello");
    client.write_all(b"quit\n").unwrap();
    assert_eq!(read_to_end(&mut client), b"bye\n");
    let log = server.log();
    assert!(log.contains("linked with nothing behind it"), "{log}");

    let stub = echo_testkit::handlers::python(true);
    let composed = compose(stub.to_str().unwrap(), "python");
    let server = Server::host(&["--component", composed.to_str().unwrap(), "--", "--prefix", ">>"]);
    assert_eq!(exchange(&server, b"hi"), b">>hi");
}

/// H7: fuel is for each call: a connection's many calls, each well within
/// it, never add up to a failure.
#[test]
fn h07_fuel_is_for_each_call() {
    let server = Server::host(&["--handler", "prefix", "--handler-fuel", "200000"]);
    let mut client = connect(server.addr);
    for round in 0..2000 {
        let message = format!("{round}\n");
        ask(&mut client, message.as_bytes(), format!("GOT:{message}").as_bytes());
    }
    assert_eq!(server.count_lines("ran out of fuel"), 0, "{}", server.log());
}

/// H8: an instance whose memory nears its cap is replaced between calls,
/// before a call fails: a handler that keeps 1 MiB a call serves on for
/// good within 32 MiB.
#[test]
fn h08_a_leaking_handler_is_replaced_before_it_fails() {
    let hostile = echo_testkit::handlers::hostile(false);
    let server = Server::host(&[
        "--handler",
        hostile.to_str().unwrap(),
        "--handler-memory",
        "32",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut client = connect(server.addr);
    for _ in 0..100 {
        ask(&mut client, b"leak", b"leaked");
    }
    let log = server.log();
    assert!(log.contains("a fresh instance takes over"), "{log}");
    assert!(!log.contains("trapped") && !log.contains("failed"), "{log}");
    let figures = get(metrics_addr(&server), "/metrics").1;
    assert!(sample(&figures, "echo_handler_recycled_total", &[]) >= 3.0, "{figures}");
    assert_eq!(sample(&figures, "echo_handler_failures_total", &[]), 0.0, "{figures}");
}
