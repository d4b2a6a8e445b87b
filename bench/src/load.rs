//! The closed-loop load generator.
//!
//! Each connection sends a message of `size` bytes, all the same byte
//! ([`FILL`]), waits until that many `FILL` bytes have come back, records the
//! latency, and sends the next. Only `FILL` bytes are counted, so the count
//! is right with or without a prefix and however the server chunks its
//! replies. One thread drives every connection through mio, so that the
//! client takes one core and the server the other; a server with several
//! workers is driven by several client threads (`--client-threads`), each
//! with its share of the connections.
//!
//! The client normally sleeps in `epoll_wait` when it has nothing to do, as
//! any client would. On loopback that has a cost the server pays: its send
//! runs the client's receive path, and waking a sleeping client is part of
//! it. The slower of the two sides finds the other asleep more often, so
//! this cost grows as a server gets slower. [`Waiting::Spin`] keeps the
//! client awake (it polls without sleeping, taking its whole core), which
//! removes that cost for every server: a diagnostic, not the measure the
//! targets use.

use echo_testkit::procfs::{cpu_time, kernel_time};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The byte every message is made of; not in the reply prefix `GOT:`.
pub const FILL: u8 = b'x';

/// How long a connection may take to be established, and all of them: a
/// server that stops accepting, or accepts slowly, fails the run instead of
/// holding it up.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
const CONNECTING_DEADLINE: Duration = Duration::from_secs(30);

/// What one closed-loop run measured.
pub struct Run {
    /// Requests completed in the measured window.
    pub requests: u64,
    /// The length of the measured window.
    pub window: Duration,
    /// Request latencies in the window, in nanoseconds.
    pub latency: Histogram<u64>,
    /// CPU time the server used in the window.
    pub server_cpu: Duration,
    /// The part of it spent in the kernel (coarser: clock ticks).
    pub server_kernel: Duration,
    /// CPU time of each of the server's worker threads (`echo-host`'s
    /// `worker-N`, in order) in the window; empty for other servers.
    pub worker_cpu: Vec<Duration>,
}

impl Run {
    /// A run that served nothing in a window of `window`.
    pub fn nothing(window: Duration) -> Run {
        Run {
            requests: 0,
            window,
            latency: latency_histogram(),
            server_cpu: Duration::ZERO,
            server_kernel: Duration::ZERO,
            worker_cpu: Vec::new(),
        }
    }

    /// Each worker thread's share of a core over the window.
    pub fn workers_busy(&self) -> Vec<f64> {
        self.worker_cpu.iter().map(|cpu| cpu.as_secs_f64() / self.window.as_secs_f64()).collect()
    }

    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }

    /// Server CPU microseconds per request.
    pub fn cpu_per_request_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }

    /// Server CPU microseconds per request spent in the kernel.
    pub fn kernel_per_request_us(&self) -> f64 {
        self.server_kernel.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }

    /// The share of the window the server was running: 1.0 is a whole core.
    pub fn busy(&self) -> f64 {
        self.server_cpu.as_secs_f64() / self.window.as_secs_f64()
    }
}

/// How the client waits for replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Sleeps in `epoll_wait` until a reply arrives.
    Sleep,
    /// Polls without ever sleeping.
    Spin,
}

struct Client {
    stream: TcpStream,
    /// `FILL` bytes still expected for the request in flight.
    awaiting: usize,
    sent_at: Instant,
    /// Bytes of the current message not yet written.
    unsent: usize,
}

/// Runs `connections` closed loops of `size`-byte messages against `addr`:
/// `warmup`, then `measure` during which requests and the server's CPU time
/// (process `server`) are counted. The connections are shared out among
/// `threads` client threads, each with its own `epoll`: one is enough for a
/// single-threaded server on a 2-core machine, and a server on more cores
/// needs a client on more cores to be measured at all.
pub fn closed_loop(
    addr: SocketAddr,
    server: u32,
    connections: usize,
    size: usize,
    (warmup, measure): (Duration, Duration),
    waiting: Waiting,
    threads: usize,
) -> io::Result<Run> {
    let threads = threads.clamp(1, connections.max(1));
    let mut streams: Vec<Vec<TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    let connecting = Instant::now();
    for i in 0..connections {
        if connecting.elapsed() > CONNECTING_DEADLINE {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("{i} of {connections} connections taken in {CONNECTING_DEADLINE:?}"),
            ));
        }
        let stream = std::net::TcpStream::connect_timeout(&addr, CONNECT_DEADLINE)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        streams[i % threads].push(TcpStream::from_std(stream));
    }
    let window_start = Instant::now() + warmup;
    let window = (window_start, window_start + measure);
    std::thread::scope(|scope| {
        let drivers: Vec<_> = streams
            .into_iter()
            .map(|streams| scope.spawn(move || drive(streams, size, window, waiting)))
            .collect();
        // The server's CPU time over the window, sampled from this thread.
        std::thread::sleep(window_start.saturating_duration_since(Instant::now()));
        let (cpu_start, kernel_start) = (cpu_time(server), kernel_time(server));
        let workers_start = worker_cpu(server);
        std::thread::sleep(window.1.saturating_duration_since(Instant::now()));
        let server_cpu = cpu_time(server).saturating_sub(cpu_start);
        let server_kernel = kernel_time(server).saturating_sub(kernel_start);
        let worker_cpu = worker_cpu(server)
            .iter()
            .zip(&workers_start)
            .map(|(end, start)| end.saturating_sub(*start))
            .collect();
        let mut run = Run { server_cpu, server_kernel, worker_cpu, ..Run::nothing(measure) };
        for driver in drivers {
            let (requests, latency) = driver.join().expect("a client thread panicked")?;
            run.requests += requests;
            run.latency.add(&latency).expect("histograms of the same bounds");
        }
        Ok(run)
    })
}

/// One client thread: drives `streams` until the end of `window`, and
/// returns the requests completed within it and their latencies.
fn drive(
    streams: Vec<TcpStream>,
    size: usize,
    (window_start, window_end): (Instant, Instant),
    waiting: Waiting,
) -> io::Result<(u64, Histogram<u64>)> {
    let mut poll = Poll::new()?;
    let message = vec![FILL; size];
    let mut clients = Vec::with_capacity(streams.len());
    for (i, mut stream) in streams.into_iter().enumerate() {
        poll.registry().register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        clients.push(Client { stream, awaiting: 0, sent_at: Instant::now(), unsent: 0 });
    }
    for client in &mut clients {
        start_request(client, &message)?;
    }

    let mut latency = latency_histogram();
    let mut buf = vec![0; 64 * 1024];
    let mut events = Events::with_capacity(4096);
    let timeout = match waiting {
        Waiting::Sleep => Duration::from_millis(10),
        Waiting::Spin => Duration::ZERO,
    };
    let mut requests = 0;
    loop {
        let now = Instant::now();
        if now >= window_end {
            break;
        }
        poll.poll(&mut events, Some(timeout))?;
        for event in &events {
            let client = &mut clients[event.token().0];
            if client.unsent > 0 {
                write_rest(client, &message)?;
            }
            loop {
                match client.stream.read(&mut buf) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "server closed a connection",
                        ));
                    }
                    Ok(n) => {
                        let echoed = buf[..n].iter().filter(|&&b| b == FILL).count();
                        client.awaiting = client.awaiting.checked_sub(echoed).ok_or_else(|| {
                            io::Error::new(ErrorKind::InvalidData, "more bytes echoed than sent")
                        })?;
                        if client.awaiting == 0 {
                            let done = Instant::now();
                            if done >= window_start && done < window_end {
                                requests += 1;
                                let nanos = (done - client.sent_at).as_nanos() as u64;
                                latency.saturating_record(nanos.max(1_000));
                            }
                            start_request(client, &message)?;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok((requests, latency))
}

/// The CPU time of each thread of process `pid` named `worker-N`, in the
/// order of N: `echo-host`'s workers.
fn worker_cpu(pid: u32) -> Vec<Duration> {
    let mut workers: Vec<(usize, Duration)> = echo_testkit::procfs::threads(pid)
        .into_iter()
        .filter_map(|(name, cpu)| Some((name.strip_prefix("worker-")?.parse().ok()?, cpu)))
        .collect();
    workers.sort();
    workers.into_iter().map(|(_, cpu)| cpu).collect()
}

/// Latencies from 1 µs to 60 s, in nanoseconds, to three significant
/// digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds")
}

fn start_request(client: &mut Client, message: &[u8]) -> io::Result<()> {
    client.awaiting = message.len();
    client.sent_at = Instant::now();
    client.unsent = message.len();
    write_rest(client, message)
}

fn write_rest(client: &mut Client, message: &[u8]) -> io::Result<()> {
    while client.unsent > 0 {
        let from = message.len() - client.unsent;
        match client.stream.write(&message[from..]) {
            Ok(n) => client.unsent -= n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
