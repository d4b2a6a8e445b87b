//! The echo server under `echo-host`, over real TCP on loopback.

mod support;

use std::io::Write;
use support::scenarios;
use support::server::{host_command, run_to_exit};
use support::{Server, connect, read_replies, round_trip};

/// The tutorial's session: `Hello` gets `GOT:Hello`, `World` gets `GOT:World`.
#[test]
fn answers_the_tutorial_session() {
    scenarios::nc_session(&Server::host(&[]));
}

/// 250 clients connected at once, interleaved, each get exactly their own replies.
#[test]
fn serves_many_clients_at_once() {
    scenarios::many_clients(&Server::host(&[]), b"GOT:", 250, 5);
}

/// 16 MiB of binary data (NULs, 0xFF, the prefix itself) is echoed exactly once.
#[test]
fn echoes_a_large_binary_payload() {
    scenarios::binary_payload(&Server::host(&[]), b"GOT:", 16 << 20);
}

/// After the client's FIN, every reply arrives and then a clean end of stream.
#[test]
fn half_close_delivers_everything_then_eof() {
    scenarios::half_close(&Server::host(&[]), b"GOT:");
}

/// A client that writes 32 MiB without reading stalls well short of it,
/// the server's memory stays flat, and once it reads, nothing is lost.
#[test]
fn non_reading_client_is_held_back_without_buffering() {
    let server = Server::host(&[]);
    let total = 32 << 20;
    let seen = scenarios::non_reading_client(&server, b"GOT:", total);
    assert!(
        seen.written_before_stall < total / 2,
        "the server kept reading: {} of {total} bytes written before the stall",
        seen.written_before_stall
    );
    assert!(seen.rss_growth_kib < 8 * 1024, "server memory grew by {} KiB", seen.rss_growth_kib);
}

/// Clients resetting their connections, even mid-write, do not disturb a probe.
#[test]
fn resets_do_not_disturb_other_clients() {
    let mut server = Server::host(&[]);
    scenarios::resets_do_not_disturb_others(&server, b"GOT:", 50);
    assert!(server.is_running());
}

/// An empty prefix makes a plain RFC 862 echo.
#[test]
fn empty_prefix_is_a_plain_echo() {
    let server = Server::host(&["--prefix", ""]);
    let mut client = connect(server.addr);
    client.write_all(b"GOT:\0plain\n").unwrap();
    assert_eq!(read_replies(&mut client, b"", b"GOT:\0plain\n"), b"GOT:\0plain\n");
    scenarios::binary_payload(&server, b"", 1 << 20);
}

/// Another prefix is used as given.
#[test]
fn custom_prefix_is_used() {
    let server = Server::host(&["--prefix", "echo> "]);
    let mut client = connect(server.addr);
    round_trip(&mut client, b"echo> ", b"hi\n");
}

/// The server listens on IPv6 loopback too.
#[test]
fn serves_ipv6() {
    let mut command = host_command();
    command.args(["--listen", "[::1]:0"]);
    let server = Server::start(command);
    assert!(server.addr.is_ipv6());
    let mut client = connect(server.addr);
    round_trip(&mut client, b"GOT:", b"over IPv6\n");
}

/// A port already in use ends the host with an error that says so.
#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut command = host_command();
    command.args(["--listen", &taken.local_addr().unwrap().to_string()]);
    let (status, output) = run_to_exit(command);
    assert!(!status.success());
    // The host binds the service address itself, before any guest starts.
    assert!(output.contains("cannot listen on") && output.contains("in use"), "{output}");
    assert!(!output.contains("starting the guest"), "{output}");
}

/// The host takes the service's settings from the environment too.
#[test]
fn settings_come_from_the_environment() {
    let mut command = host_command();
    command.env("ECHO_PREFIX", "env> ").args(["--listen", "127.0.0.1:0"]);
    let server = Server::start(command);
    round_trip(&mut connect(server.addr), b"env> ", b"from the environment\n");
    let mut command = host_command();
    command.env("ECHO_MAX_CONNECTIONS", "0");
    let (status, output) = run_to_exit(command);
    assert!(!status.success() && output.contains("--max-connections"), "{output}");
}

/// Bad flags and values, the guest's included, are refused before anything
/// runs, with a message naming what was wrong.
#[test]
fn bad_flags_are_refused() {
    for (args, named) in [
        (&["--listen", "localhost"][..], "--listen"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--idle-timeout", "soon"], "--idle-timeout"),
        (&["--max-memory", "0"], "--max-memory"),
        (&["--", "--max-connections", "0"], "--max-connections"),
        (&["--component", "/nonexistent.wasm"], "/nonexistent.wasm"),
    ] {
        let mut command = host_command();
        command.args(args);
        let (status, output) = run_to_exit(command);
        assert!(!status.success(), "{args:?} was accepted");
        assert!(output.contains(named), "{args:?}: {output}");
        assert!(!output.contains("starting the guest"), "{args:?} started a guest: {output}");
    }
}
