//! One `echo-host` reached directly and through HAProxy (the configuration
//! in `deploy/haproxy/`, unchanged), in interleaved rounds: what the load
//! balancer costs a request on this machine.
//!
//! The shipped configuration names three servers; here all three are the
//! same instance, so that the two paths differ by HAProxy alone. On a
//! 2-core machine HAProxy, the host and the client share the cores: the
//! figures show HAProxy's cost per request, not what several machines
//! behind it would serve.

use crate::load::{self, Waiting};
use crate::report::median;
use crate::servers::Kind;
use echo_testkit::Process;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// Connection counts compared, at 64-byte requests.
const CONNECTIONS: [usize; 3] = [1, 50, 500];

/// Runs `rounds` interleaved rounds of `seconds` each per cell, and prints
/// the comparison as a markdown table.
pub fn compare(rounds: usize, seconds: u64) -> io::Result<()> {
    let mut host = Kind::Host.command();
    host.args(["--metrics", "127.0.0.1:0"]);
    let (host, direct) = Process::listening(host, Duration::from_secs(60));
    let metrics = echo_testkit::deploy::metrics_addr(&host, Duration::from_secs(10))
        .ok_or_else(|| io::Error::other(format!("no metrics address:\n{}", host.log())))?;
    let frontend = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let haproxy = echo_testkit::deploy::haproxy(frontend, &[(direct, metrics.port())]);
    let haproxy = Process::spawn(haproxy);
    answered(frontend).map_err(|e| io::Error::other(format!("{e}\n{}", haproxy.log())))?;

    println!(
        "{rounds} rounds of {seconds} s per cell, 64 B requests; echo-host --workers 1, \
         HAProxy {}",
        haproxy_version()
    );
    let window = (Duration::from_secs(1), Duration::from_secs(seconds));
    println!();
    println!(
        "| connections | direct req/s | via HAProxy req/s | ratio | direct p50 / p99 µs \
         | via HAProxy p50 / p99 µs | HAProxy CPU µs/req |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for connections in CONNECTIONS {
        let mut runs: [Vec<(f64, f64, f64, f64)>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..rounds {
            for (path, addr) in [direct, frontend].into_iter().enumerate() {
                let before = echo_testkit::procfs::cpu_time(haproxy.pid());
                let run = load::closed_loop(
                    addr,
                    host.pid(),
                    connections,
                    64,
                    window,
                    Waiting::Sleep,
                    1,
                )?;
                let spent = echo_testkit::procfs::cpu_time(haproxy.pid()) - before;
                let us = |q| run.latency.value_at_quantile(q) as f64 / 1e3;
                // Its CPU over the whole run, warm-up included, per request
                // of the measured window: an upper bound.
                let per_request = spent.as_secs_f64() * 1e6 / run.requests.max(1) as f64
                    * (seconds as f64 / (seconds as f64 + 1.0));
                runs[path].push((run.per_second(), us(0.5), us(0.99), per_request));
            }
        }
        let mid = |path: usize, pick: fn(&(f64, f64, f64, f64)) -> f64| {
            median(runs[path].iter().map(pick).collect())
        };
        let (direct_rate, proxied_rate) = (mid(0, |r| r.0), mid(1, |r| r.0));
        println!(
            "| {connections} | {direct_rate:.0} | {proxied_rate:.0} | {:.2}× | {:.0} / {:.0} \
             | {:.0} / {:.0} | {:.1} |",
            proxied_rate / direct_rate,
            mid(0, |r| r.1),
            mid(0, |r| r.2),
            mid(1, |r| r.1),
            mid(1, |r| r.2),
            mid(1, |r| r.3),
        );
    }
    Ok(())
}

/// Waits until a request through `frontend` is answered.
fn answered(frontend: SocketAddr) -> io::Result<()> {
    let start = Instant::now();
    loop {
        let attempt = (|| {
            let mut stream = TcpStream::connect(frontend)?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            stream.write_all(b"ping")?;
            let mut reply = [0; 8];
            stream.read_exact(&mut reply)?;
            Ok::<_, io::Error>(reply == *b"GOT:ping")
        })();
        match attempt {
            Ok(true) => return Ok(()),
            _ if start.elapsed() > Duration::from_secs(10) => {
                return Err(io::Error::other("HAProxy never answered"));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn haproxy_version() -> String {
    let output = Command::new("haproxy").arg("-v").output();
    let text = output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.split_whitespace().nth(2).unwrap_or("(version unknown)").to_owned()
}
