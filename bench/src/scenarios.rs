//! The open-ended measurements: streaming, idle connections, start-up.

use crate::load::FILL;
use crate::servers::Server;
use echo_testkit::procfs::rss_kib;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// What [`stream`] measured.
pub struct Streamed {
    /// Payload echoed per second, in MB (10^6 bytes).
    pub mb_per_s: f64,
    /// The server's resident memory before, and at its highest during.
    pub rss_before_kib: u64,
    pub rss_peak_kib: u64,
}

/// One connection writing 64 KiB chunks while reading the echo, for
/// `duration` after a short warm-up.
pub fn stream(server: &Server, duration: Duration) -> io::Result<Streamed> {
    let rss_before_kib = rss_kib(server.pid());
    let mut client = TcpStream::connect(server.addr)?;
    let mut writer = client.try_clone()?;
    let stop = Arc::new(AtomicBool::new(false));
    let writing = {
        let stop = stop.clone();
        thread::spawn(move || -> io::Result<()> {
            let chunk = vec![FILL; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                writer.write_all(&chunk)?;
            }
            writer.shutdown(Shutdown::Write)
        })
    };
    let mut buf = vec![0; 256 * 1024];
    let warmup = Duration::from_millis(300);
    let started = Instant::now();
    let (mut counted, mut window_start, mut last_sample) = (0u64, None, Instant::now());
    let mut rss_peak_kib = rss_before_kib;
    loop {
        let n = client.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let elapsed = started.elapsed();
        if elapsed >= warmup && window_start.is_none() {
            window_start = Some(Instant::now());
        }
        if window_start.is_some() && !stop.load(Ordering::Relaxed) {
            counted += buf[..n].iter().filter(|&&b| b == FILL).count() as u64;
        }
        if last_sample.elapsed() > Duration::from_millis(50) {
            rss_peak_kib = rss_peak_kib.max(rss_kib(server.pid()));
            last_sample = Instant::now();
        }
        if elapsed >= warmup + duration {
            stop.store(true, Ordering::Relaxed);
        }
    }
    writing.join().expect("writer thread")?;
    let window = window_start.map_or(duration, |start| start.elapsed().min(duration));
    Ok(Streamed {
        mb_per_s: counted as f64 / window.as_secs_f64() / 1e6,
        rss_before_kib,
        rss_peak_kib,
    })
}

/// What [`idle`] measured.
pub struct Idle {
    pub connections: usize,
    /// The server's resident memory per open connection, in bytes.
    pub bytes_per_connection: f64,
    /// The median reply time of a probe among the idle connections, sent as
    /// soon as the previous reply came back.
    pub probe: Duration,
    /// The same, with [`PROBE_PAUSE`] between probes: the server is waiting
    /// in `poll` when each arrives.
    pub paced_probe: Duration,
}

/// The pause between paced probes.
pub const PROBE_PAUSE: Duration = Duration::from_millis(2);

/// How long a reply may take before the scenario gives up on the server.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// How long connecting them all may take: a server that takes connections
/// slowly (one per SYN retry, say) fails the scenario instead of holding
/// the run for hours.
const SETUP_DEADLINE: Duration = Duration::from_secs(60);

/// Probes timed in each way, after one that is not.
const PROBES: usize = 101;

/// Holds `count` idle connections to the server at `addr` (process `pid`),
/// each of which has echoed one message, so it is surely accepted, and times
/// a probe meanwhile, back to back and paced.
pub fn idle(addr: SocketAddr, pid: u32, count: usize) -> io::Result<Idle> {
    let before = rss_kib(pid);
    let mut held = Vec::with_capacity(count);
    let started = Instant::now();
    for taken in 0..count {
        if started.elapsed() > SETUP_DEADLINE {
            return Err(io::Error::other(format!(
                "{taken} of {count} connections taken in {} s",
                SETUP_DEADLINE.as_secs()
            )));
        }
        let mut stream = connect(addr)?;
        // A server that stops answering fails the scenario, not the run.
        stream.set_read_timeout(Some(REPLY_DEADLINE))?;
        stream.write_all(&[FILL])?;
        held.push(stream);
    }
    for stream in &mut held {
        await_echo(stream, "an idle connection")?;
    }
    thread::sleep(Duration::from_millis(300));
    let after = rss_kib(pid);
    let mut probe = connect(addr)?;
    probe.set_nodelay(true)?;
    probe.set_read_timeout(Some(REPLY_DEADLINE))?;
    let mut round_trip = || -> io::Result<Duration> {
        let start = Instant::now();
        probe.write_all(&[FILL])?;
        await_echo(&mut probe, "the probe's connection")?;
        Ok(start.elapsed())
    };
    round_trip()?;
    let back_to_back = (0..PROBES).map(|_| round_trip()).collect::<io::Result<Vec<_>>>()?;
    let paced = (0..PROBES)
        .map(|_| {
            thread::sleep(PROBE_PAUSE);
            round_trip()
        })
        .collect::<io::Result<Vec<_>>>()?;
    drop(held);
    Ok(Idle {
        connections: count,
        bytes_per_connection: after.saturating_sub(before) as f64 * 1024.0 / count as f64,
        probe: median_duration(back_to_back),
        paced_probe: median_duration(paced),
    })
}

/// Reads from `stream` until an echoed [`FILL`] byte has come back; `which`
/// names the connection if it closes first.
fn await_echo(stream: &mut TcpStream, which: &str) -> io::Result<()> {
    let mut reply = [0; 64];
    loop {
        let n = stream.read(&mut reply).map_err(no_reply)?;
        if n == 0 {
            return Err(io::Error::other(format!("{which} was closed")));
        }
        if reply[..n].contains(&FILL) {
            return Ok(());
        }
    }
}

/// A connection, or an error if the server does not take it within
/// [`REPLY_DEADLINE`] (a full backlog makes the client wait for retries).
fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr, REPLY_DEADLINE).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::other(format!(
            "a connection not taken within {} s",
            REPLY_DEADLINE.as_secs()
        )),
        _ => e,
    })
}

/// A read that timed out, said plainly.
fn no_reply(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::other(format!("no reply within {} s", REPLY_DEADLINE.as_secs()))
        }
        _ => e,
    }
}

fn median_duration(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}
