//! The same guest under the stock `wasmtime run -S inherit-network`: the core
//! of the echo suite, unchanged.

mod support;

use support::server::stock_command_with;
use support::{Server, connect, round_trip, scenarios};

/// The tutorial's session under the stock CLI.
#[test]
fn answers_the_tutorial_session() {
    scenarios::nc_session(&Server::stock(&[]));
}

/// 200 clients at once under the stock CLI.
#[test]
fn serves_many_clients_at_once() {
    scenarios::many_clients(&Server::stock(&[]), b"GOT:", 200, 3);
}

/// 16 MiB of binary data under the stock CLI.
#[test]
fn echoes_a_large_binary_payload() {
    scenarios::binary_payload(&Server::stock(&[]), b"GOT:", 16 << 20);
}

/// Half-close under the stock CLI.
#[test]
fn half_close_delivers_everything_then_eof() {
    scenarios::half_close(&Server::stock(&[]), b"GOT:");
}

/// Arguments reach the guest: an empty prefix under the stock CLI.
#[test]
fn empty_prefix_is_a_plain_echo() {
    scenarios::binary_payload(&Server::stock(&["--prefix", ""]), b"", 1 << 20);
}

/// A client that stops reading holds up no one else. Under the stock CLI its
/// connection outlives the stall timeout (Wasmtime would block the whole
/// guest on dropping it mid-write, so the guest waits, parked, for the write
/// to end), but the probe and new clients are answered throughout.
#[test]
fn stalled_client_does_not_block_others() {
    let server = Server::stock(&["--stall-timeout", "1s"]);
    let stall = scenarios::stall_with_probe(&server, b"GOT:");
    stall.staller.shutdown(std::net::Shutdown::Both).unwrap();
    stall.flooding.join().unwrap();
}

/// Settings come from the environment too, where the arguments leave them.
#[test]
fn settings_come_from_the_environment() {
    let options = ["--env", "ECHO_PREFIX=env> ", "--env", "ECHO_IDLE_TIMEOUT=bad"];
    let server = Server::start(stock_command_with(&options, &["--idle-timeout", "1m"]));
    round_trip(&mut connect(server.addr), b"env> ", b"from the environment\n");
}
