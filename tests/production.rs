//! Running under an operator's eye: the figures on `--metrics`, the health
//! and readiness probes, the structured log, and a graceful shutdown as a
//! load balancer sees it.

mod support;

use rustix::process::Signal;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use support::observe::{get, metrics_addr, metrics_when, sample, wait_for_status};
use support::server::{host_command, run_to_exit};
use support::{DEADLINE, Server, connect, eventually, hostile, read_to_end, round_trip, scenarios};

const PREFIX: &[u8] = b"GOT:";

/// P1: the figures count what clients do, where it happens: connections
/// accepted and closed (by how they ended), bytes each way, replies; and
/// what the workers are: their limits, their memory, their listeners.
#[test]
fn p01_the_figures_count_what_clients_do() {
    let flags = ["--workers", "2", "--metrics", "127.0.0.1:0", "--idle-timeout", "1s"];
    let server = Server::host(&flags);
    assert!(server.wait_for_lines("listening on", 2, DEADLINE).is_some(), "{}", server.log());
    let metrics = metrics_addr(&server);
    let before = metrics_when(metrics, |text| sample(text, "echo_guest_listeners", &[]) == 2.0);
    assert_eq!(sample(&before, "echo_connections_accepted_total", &[]), 0.0);
    assert_eq!(sample(&before, "echo_connection_limit", &[]), 16_384.0);
    assert!(sample(&before, "echo_guest_memory_bytes", &["worker=\"1\""]) > 0.0, "{before}");
    assert!(sample(&before, "echo_guest_memory_bytes", &["worker=\"2\""]) > 0.0, "{before}");

    // One client finishes, one resets, one says nothing until the idle
    // timeout closes it.
    let mut finishes = connect(server.addr);
    round_trip(&mut finishes, PREFIX, b"hello");
    round_trip(&mut finishes, PREFIX, b"world!");
    finishes.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_end(&mut finishes).is_empty());
    let mut resets = connect(server.addr);
    round_trip(&mut resets, PREFIX, b"abc");
    scenarios::reset(resets);
    let mut idle = connect(server.addr);
    assert!(read_to_end(&mut idle).is_empty());

    let text =
        metrics_when(metrics, |text| sample(text, "echo_connections_closed_total", &[]) == 3.0);
    let count = |name: &str, labels: &[&str]| sample(&text, name, labels);
    assert_eq!(count("echo_connections_accepted_total", &[]), 3.0, "{text}");
    assert_eq!(count("echo_connections_open", &[]), 0.0, "{text}");
    assert_eq!(count("echo_received_bytes_total", &[]), 14.0, "{text}");
    assert_eq!(count("echo_sent_bytes_total", &[]), 14.0 + 3.0 * 4.0, "{text}");
    assert_eq!(count("echo_replies_total", &[]), 3.0, "{text}");
    for reason in ["finished", "reset", "idle_timeout"] {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(count("echo_connections_closed_total", &[&label]), 1.0, "{reason}: {text}");
    }
    assert_eq!(count("echo_connection_duration_seconds_count", &[]), 3.0, "{text}");
    // The idle client was open for at least the idle timeout.
    assert!(count("echo_connection_duration_seconds_sum", &[]) >= 1.0, "{text}");
    assert_eq!(count("echo_guest_traps_total", &[]), 0.0, "{text}");
}

/// P2: `/healthz` answers while the host runs; `/readyz` only while every
/// worker's guest listens. A guest that traps is counted, by kind, and its
/// restart too; once it listens again, the host is ready again.
#[test]
fn p02_readiness_follows_the_guests() {
    let flags = ["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"];
    let blocked = echo_testkit::Process::spawn(hostile::under_host("hostile", &flags, &["block"]));
    assert!(blocked.wait_for_line("blocking", DEADLINE).is_some(), "{}", blocked.log());
    let metrics = metrics_addr(&blocked);
    assert_eq!(get(metrics, "/healthz"), (200, "ok\n".to_owned()));
    let (status, body) = get(metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("worker 1's guest is not listening"), "{body}");
    assert_eq!(get(metrics, "/nowhere").0, 404);
    drop(blocked);

    let server = Server::start(hostile::under_host("hostile", &flags, &["serve"]));
    let metrics = metrics_addr(&server);
    wait_for_status(metrics, "/readyz", 200);
    let mut client = connect(server.addr);
    client.write_all(b"panic").unwrap();
    assert!(server.wait_for_line("restarting the guest", DEADLINE).is_some(), "{}", server.log());
    assert!(server.wait_for_lines("listening on", 2, DEADLINE).is_some(), "{}", server.log());
    wait_for_status(metrics, "/readyz", 200);
    let text = metrics_when(metrics, |text| sample(text, "echo_guest_restarts_total", &[]) == 1.0);
    let kind = "kind=\"UnreachableCodeReached\"";
    assert_eq!(sample(&text, "echo_guest_traps_total", &[kind]), 1.0, "{text}");
    assert_eq!(sample(&text, "echo_guest_listeners", &[]), 1.0, "{text}");
}

/// P3: on SIGTERM the host stops being ready (404, which HAProxy takes as
/// "drain"), refuses new clients once its guests have closed their
/// listeners, lets the open connections finish, and exits 0. Its JSON log
/// says how each connection ended, with its peer and bytes each way.
#[test]
fn p03_a_shutdown_is_seen_by_probes_and_logged_as_json() {
    let mut command = host_command();
    command.env("RUST_LOG", "info,echo_host=debug");
    command.args(["--listen", "127.0.0.1:0", "--workers", "2", "--metrics", "127.0.0.1:0"]);
    command.args(["--log-format", "json", "--grace-period", "3s"]);
    let mut server = Server::start(command);
    assert!(server.wait_for_lines("listening on", 2, DEADLINE).is_some(), "{}", server.log());
    let metrics = metrics_addr(&server);
    wait_for_status(metrics, "/readyz", 200);
    let mut open = connect(server.addr);
    round_trip(&mut open, PREFIX, b"before");
    // A client that sends without reading: once the buffers between are
    // full, the server owes it a reply it cannot deliver, which keeps the
    // host draining for the grace period.
    let staller = connect(server.addr);
    let mut flood = staller.try_clone().unwrap();
    let flooding = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        while flood.write_all(&chunk).is_ok() {}
    });
    let mut received = 0.0;
    let stalled = |text: &str| {
        let now = sample(text, "echo_received_bytes_total", &[]);
        let same = now == received && now > 0.0;
        received = now;
        std::thread::sleep(std::time::Duration::from_millis(200));
        same
    };
    metrics_when(metrics, stalled);

    server.signal(Signal::TERM);
    let body = wait_for_status(metrics, "/readyz", 404);
    assert!(body.starts_with("draining"), "{body}");
    // The open connection is finished by the server: its replies, then its end.
    assert!(read_to_end(&mut open).is_empty());
    eventually(|| match TcpStream::connect(server.addr) {
        Ok(_) => Err("new clients are still taken while draining".to_owned()),
        Err(_) => Ok(()),
    });
    assert!(server.is_running(), "the stalled client keeps the host draining");
    let status = server.wait_exit(DEADLINE).expect("the host exits after draining");
    assert!(status.success(), "{status:?}\n{}", server.log());
    drop(staller);
    flooding.join().unwrap();

    let log = server.log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    assert!(events.iter().all(|e| e["level"].is_string() && e["timestamp"].is_string()));
    let peer = open.local_addr().unwrap().to_string();
    let closed: Vec<_> = events
        .iter()
        .filter(|e| e["message"] == "connection closed" && e["peer"] == peer.as_str())
        .collect();
    assert_eq!(closed.len(), 1, "{log}");
    let event = closed[0];
    assert_eq!((event["received"].as_u64(), event["sent"].as_u64()), (Some(6), Some(10)));
    assert_eq!(event["end"], "shutdown", "{event}");
    assert!(event["duration"].is_string(), "{event}");
    assert!(event["span"]["worker"].is_u64(), "the worker's span: {event}");
    // The guest's own lines are its own, as the seed's.
    assert!(log.lines().any(|line| line == "Connection closed"), "{log}");
}

/// P4: the new flags are checked before anything starts, and an address in
/// use for the metrics stops the host before any guest runs. The text log
/// has no colour codes when it is not written to a terminal. A switch set
/// in the environment takes the usual words for yes.
#[test]
fn p04_bad_flags_and_a_busy_metrics_port_are_refused() {
    for (args, named) in
        [(&["--metrics", "somewhere"][..], "--metrics"), (&["--log-format", "xml"], "--log-format")]
    {
        let mut command = host_command();
        command.args(["--listen", "127.0.0.1:0"]).args(args);
        let (status, output) = run_to_exit(command);
        assert_eq!(status.code(), Some(2), "{args:?}: {output}");
        assert!(output.contains(named), "{args:?}: {output}");
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut command = host_command();
    let busy = taken.local_addr().unwrap().to_string();
    command.args(["--listen", "127.0.0.1:0", "--metrics", &busy]);
    let (status, output) = run_to_exit(command);
    assert!(!status.success(), "{output}");
    assert!(output.contains(&format!("cannot serve --metrics on {busy}")), "{output}");
    assert!(!output.contains("starting the guest"), "{output}");
    assert!(!output.contains('\u{1b}'), "colour codes in a log that is not a terminal: {output}");

    let mut command = host_command();
    command.env("ECHO_NO_CACHE", "1").env("ECHO_ALLOW_RANDOM", "yes");
    command.args(["--listen", "127.0.0.1:0"]);
    let mut server = Server::start(command);
    let mut client = connect(server.addr);
    round_trip(&mut client, PREFIX, b"switches");
    server.signal(Signal::TERM);
    assert!(server.wait_exit(DEADLINE).is_some_and(|status| status.success()));
}
