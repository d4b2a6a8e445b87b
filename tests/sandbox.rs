//! The sandbox seen from outside: components that try what they were not
//! granted are refused, and the host stays well.

mod support;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;
use support::server::{ECHO_HOST, run_to_exit};
use support::{DEADLINE, Server, connect, hostile};

/// Starts `echo-host` on `listen` running the hostile component with `actions`.
fn hostile_host(listen: &str, actions: &[&str]) -> Server {
    let mut command = Command::new(ECHO_HOST);
    command.args(["--listen", listen, "--component"]).arg(hostile::component("hostile")).arg("--");
    command.args(actions).arg("serve");
    Server::start(command)
}

/// The host is well: its guest still answers on the granted address.
fn assert_alive(server: &mut Server) {
    assert!(server.is_running(), "the host died:\n{}", server.log());
    let mut greeting = String::new();
    connect(server.addr).read_to_string(&mut greeting).unwrap();
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

/// Binding a port other than the granted one is refused with access-denied.
#[test]
fn binding_another_port_is_refused() {
    let other: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut server = hostile_host("127.0.0.1:0", &[&format!("bind={other}")]);
    let line = format!("bind {other}: access-denied");
    assert!(server.wait_for_line(&line, DEADLINE).is_some(), "no {line:?} in:\n{}", server.log());
    assert_nothing_listens(other);
    assert_alive(&mut server);
}

/// The granted port on another address (every interface, IPv6) is refused.
#[test]
fn binding_the_granted_port_elsewhere_is_refused() {
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

/// Connecting out, even to loopback, is refused; the target sees nothing.
#[test]
fn connecting_out_is_refused() {
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

/// Components importing UDP or name lookup are not linked, so never run.
#[test]
fn udp_and_name_lookup_are_not_linked() {
    for (name, interface, attempt) in [
        ("udp", "wasi:sockets/udp", "udp socket:"),
        ("lookup", "wasi:sockets/ip-name-lookup", "name lookup:"),
    ] {
        let mut command = Command::new(ECHO_HOST);
        command.args(["--listen", "127.0.0.1:0", "--component"]).arg(hostile::component(name));
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
    let mut command = Command::new(ECHO_HOST);
    command.args(["--listen", "127.0.0.1:0", "--", "--listen", &other]);
    let (status, output) = run_to_exit(command);
    assert!(!status.success());
    assert!(output.contains(&format!("cannot listen on {other}: access-denied")), "{output}");
    assert!(output.contains("denied a socket operation outside the grant"), "{output}");
}

/// A guest that traps ends the host with a non-zero status and says so.
#[test]
fn a_trap_ends_the_host_with_an_error() {
    let mut command = Command::new(ECHO_HOST);
    command.args(["--listen", "127.0.0.1:0", "--component"]).arg(hostile::component("hostile"));
    command.args(["--", "panic"]);
    let (status, output) = run_to_exit(command);
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("panicking on purpose") && output.contains("the guest trapped"),
        "{output}"
    );
}
