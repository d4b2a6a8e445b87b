//! What running the protocol as a handler costs a request: the echo server
//! as shipped (the server core composed with the `prefix` handler) against
//! the same server with `GOT:` built in (the `monolithic` build of the
//! guest, as it was before handlers); and the handler run on its own
//! (`--handler`): the shipped `prefix`, and the Python one. Interleaved
//! rounds, one worker each; and the Python handler's start-up, compiled and
//! cached.

use crate::load::{self, Waiting};
use crate::report::median;
use crate::servers::Kind;
use echo_testkit::Process;
use std::ffi::OsString;
use std::io;
use std::process::Command;
use std::time::{Duration, Instant};

/// Connection counts compared, at 64-byte requests.
const CONNECTIONS: [usize; 2] = [50, 1000];

/// The servers compared; the first is the baseline.
fn servers() -> Vec<(&'static str, Vec<OsString>)> {
    let monolithic =
        echo_testkit::wasm::build_with("echo-guest", "bench-monolithic", &["monolithic"])
            .join("echo_guest.wasm");
    let python = echo_testkit::handlers::python(false);
    vec![
        ("monolithic (GOT: built in)", vec!["--component".into(), monolithic.into()]),
        ("composed (as shipped)", vec![]),
        ("--handler prefix", vec!["--handler".into(), "prefix".into()]),
        (
            "--handler Python",
            vec!["--handler".into(), python.into(), "--prefix".into(), "GOT:".into()],
        ),
    ]
}

/// Runs `rounds` interleaved rounds of `seconds` each per cell, and prints
/// the comparison as markdown tables.
pub fn compare(rounds: usize, seconds: u64) -> io::Result<()> {
    echo_testkit::raise_fd_limit();
    let servers = servers();
    startup(&servers[3].1)?;
    let running: Vec<(Process, std::net::SocketAddr)> = servers
        .iter()
        .map(|(_, args)| {
            let mut command = Kind::Host.command();
            command.args(args);
            Process::listening(command, Duration::from_secs(120))
        })
        .collect();
    println!();
    println!("{rounds} rounds of {seconds} s per cell, 64 B requests, echo-host --workers 1");
    println!();
    println!(
        "| server | connections | req/s | vs monolithic (median of the rounds' ratios) \
         | p50 / p99 µs | server CPU µs/req |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let window = (Duration::from_secs(1), Duration::from_secs(seconds));
    for connections in CONNECTIONS {
        let mut runs: Vec<Vec<(f64, f64, f64, f64)>> = vec![Vec::new(); servers.len()];
        for _ in 0..rounds {
            for (at, (process, addr)) in running.iter().enumerate() {
                let pid = process.pid();
                let run = load::closed_loop(*addr, pid, connections, 64, window, Waiting::Sleep, 1)
                    .map_err(|e| {
                        let name = servers[at].0;
                        let log = process.log();
                        io::Error::other(format!("{name}, {connections} connections: {e}\n{log}"))
                    })?;
                let us = |q| run.latency.value_at_quantile(q) as f64 / 1e3;
                runs[at].push((run.per_second(), us(0.5), us(0.99), run.cpu_per_request_us()));
            }
        }
        let mid = |at: usize, pick: fn(&(f64, f64, f64, f64)) -> f64| {
            median(runs[at].iter().map(pick).collect())
        };
        for (at, (name, _)) in servers.iter().enumerate() {
            // Within a round, against the baseline's run of that round.
            let ratios = runs[at].iter().zip(&runs[0]).map(|(run, base)| run.0 / base.0);
            println!(
                "| {name} | {connections} | {:.0} | {:.2}× | {:.0} / {:.0} | {:.2} |",
                mid(at, |r| r.0),
                median(ratios.collect()),
                mid(at, |r| r.1),
                mid(at, |r| r.2),
                mid(at, |r| r.3),
            );
        }
    }
    Ok(())
}

/// Times the Python handler's start-up to its first reply: compiled at
/// start (an empty cache), then loaded from the cache.
fn startup(args: &[OsString]) -> io::Result<()> {
    let cache = echo_testkit::workspace_root().join("target/bench-handler-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let mut took = Vec::new();
    for _ in 0..2 {
        let mut command: Command = Kind::Host.command();
        command.args(args).arg("--cache-dir").arg(&cache);
        let started = Instant::now();
        let (process, addr) = Process::listening(command, Duration::from_secs(120));
        let mut stream = std::net::TcpStream::connect(addr)?;
        use std::io::{Read, Write};
        stream.write_all(b"x")?;
        let mut reply = [0; 5];
        stream.read_exact(&mut reply)?;
        took.push(started.elapsed());
        drop(process);
    }
    println!(
        "Python handler start-up to the first reply: {:.1} s compiling, {:.2} s from the cache",
        took[0].as_secs_f64(),
        took[1].as_secs_f64()
    );
    Ok(())
}
