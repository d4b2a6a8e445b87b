//! `echo-bench`: the echo server against a native server and the Python
//! seed, on this machine, in one invocation.
//!
//! ```text
//! cargo build --release                        # builds echo-host and the guest
//! cargo run --release -p echo-bench -- --quick # a few seconds per cell
//! cargo run --release -p echo-bench -- --targets # the target cells alone
//! cargo run --release -p echo-bench            # the full matrix
//! cargo run --release -p echo-bench -- balancer # direct against HAProxy
//! cargo run --release -p echo-bench -- handlers # composed, monolithic, isolated
//! ```
//!
//! Every server runs on 127.0.0.1 with a port the system picks, is driven by
//! the same client, and is measured in interleaved repetitions. Results go to
//! stdout and to `bench/results/` (markdown and SVG plots).

mod balancer;
mod handlers;
mod load;
mod native;
mod report;
mod scenarios;
mod servers;

use clap::{Parser, Subcommand};
use load::Waiting;
use report::{Cell, Results, Sample, median};
use servers::{Kind, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Benchmark the echo server against native and the Python seed")]
struct Args {
    /// A short run (seconds per cell, fewer cells), as CI runs it.
    #[arg(long, conflicts_with = "targets")]
    quick: bool,
    /// Only the cells the targets compare, in more rounds (~8 minutes): no
    /// matrix, streaming, idle or start-up measurements.
    #[arg(long)]
    targets: bool,
    /// Where to write the report and plots.
    #[arg(long, default_value_os_t = echo_testkit::workspace_root().join("bench/results"))]
    out: PathBuf,
    /// Client threads driving the workers table's connections: one leaves
    /// the other core of a 2-core machine to the server; a machine with
    /// more cores needs more to load more workers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    client_threads: u16,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the native baseline server.
    NativeServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long, default_value = "GOT:")]
        prefix: String,
    },
    /// Drive one closed-loop run against a server already running (for
    /// profiling it), and print req/s and latency.
    Load {
        addr: SocketAddr,
        /// The server's process id, to measure its CPU time.
        #[arg(long, default_value_t = 0)]
        pid: u32,
        #[arg(long, default_value_t = 50)]
        connections: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Poll without ever sleeping (see `Waiting::Spin`).
        #[arg(long)]
        spin: bool,
        /// Client threads sharing the connections.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        client_threads: u16,
    },
    /// Compare one echo-host reached directly and through HAProxy (needs
    /// `haproxy`), in interleaved rounds.
    Balancer {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// Compare the echo server as shipped (composed with its handler)
    /// with `GOT:` built in, and with handlers run on their own (needs
    /// componentize-py, for the Python one), in interleaved rounds.
    Handlers {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// Hold idle connections to a server already running, and time a probe
    /// among them, back to back and paced; print the medians and the
    /// server's memory per connection.
    Idle {
        addr: SocketAddr,
        /// The server's process id, to measure its memory.
        #[arg(long, default_value_t = 0)]
        pid: u32,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
    },
}

/// What the runs of one cell share: server, connections, size, client.
type RunKey = (Kind, usize, usize, Waiting);

/// The server a cell runs against.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// One kept for every round.
    Running(&'a Server),
    /// One started for the cell alone.
    Fresh(Kind),
}

/// The servers also measured with a client that never sleeps.
const SPINNING: [Kind; 2] = [Kind::Native, Kind::Host];

/// The servers the targets compare.
const TARGET_SERVERS: [Kind; 3] = [Kind::Native, Kind::Seed, Kind::Host];

/// The connection counts of the closed-loop targets, at 64 B; the minimal
/// guest runs at these too.
const TARGET_CONNECTIONS: [usize; 2] = [50, 1000];

/// The servers whose idle connections are measured: every one compared,
/// the minimal guest (what any guest that passes every parked pollable to
/// `poll` pays) and the peers.
const IDLE: [Kind; 7] =
    [Kind::Native, Kind::Seed, Kind::Host, Kind::Stock, Kind::Floor, Kind::Wstd, Kind::WstdStock];

/// The shape of a run.
struct Plan {
    /// The mode's name, which also names its files in the results folder.
    name: &'static str,
    connections: &'static [usize],
    sizes: &'static [usize],
    /// Rounds through every cell.
    repetitions: usize,
    /// Further rounds through the target cells alone: the targets compare
    /// servers within a round, and this machine's speed varies more between
    /// rounds than the margins of some targets.
    target_rounds: usize,
    warmup: Duration,
    measure: Duration,
    idle: usize,
    startups: usize,
    /// Whether to measure streaming, idle connections and start-up, and
    /// the workers table.
    scenarios: bool,
}

const FULL: Plan = Plan {
    name: "full",
    connections: &[1, 10, 50, 100, 500, 1000],
    sizes: &[64, 1024],
    repetitions: 3,
    target_rounds: 10,
    warmup: Duration::from_secs(1),
    measure: Duration::from_secs(3),
    idle: 10_000,
    startups: 7,
    scenarios: true,
};

const QUICK: Plan = Plan {
    name: "quick",
    connections: &[1, 50, 1000],
    sizes: &[64],
    repetitions: 1,
    target_rounds: 2,
    warmup: Duration::from_millis(300),
    measure: Duration::from_secs(1),
    idle: 1_000,
    startups: 3,
    scenarios: true,
};

const TARGETS: Plan = Plan {
    name: "targets",
    connections: &TARGET_CONNECTIONS,
    sizes: &[64],
    repetitions: 0,
    target_rounds: 15,
    warmup: Duration::from_secs(1),
    measure: Duration::from_secs(3),
    idle: 0,
    startups: 0,
    scenarios: false,
};

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::NativeServer { listen, prefix }) => {
            return native::serve(listen, prefix.as_bytes());
        }
        Some(Command::Load { addr, pid, connections, size, seconds, spin, client_threads }) => {
            let window = (Duration::from_secs(1), Duration::from_secs(seconds));
            let waiting = if spin { Waiting::Spin } else { Waiting::Sleep };
            let threads = usize::from(client_threads);
            let run = load::closed_loop(addr, pid, connections, size, window, waiting, threads)?;
            let us = |q| run.latency.value_at_quantile(q) as f64 / 1e3;
            println!(
                "{:.0} req/s, p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, \
                 server CPU {:.2} µs/req ({:.2} in the kernel), busy {:.0}%",
                run.per_second(),
                us(0.5),
                us(0.99),
                us(0.999),
                run.cpu_per_request_us(),
                run.kernel_per_request_us(),
                run.busy() * 100.0
            );
            return Ok(());
        }
        Some(Command::Balancer { rounds, seconds }) => return balancer::compare(rounds, seconds),
        Some(Command::Handlers { rounds, seconds }) => return handlers::compare(rounds, seconds),
        Some(Command::Idle { addr, pid, connections }) => {
            echo_testkit::raise_fd_limit();
            let idle = scenarios::idle(addr, pid, connections)?;
            println!(
                "{} idle connections, {:.1} KiB each; probe reply {:.0} µs back to back, \
                 {:.0} µs paced",
                idle.connections,
                idle.bytes_per_connection / 1024.0,
                idle.probe.as_secs_f64() * 1e6,
                idle.paced_probe.as_secs_f64() * 1e6
            );
            return Ok(());
        }
        None => {}
    }
    let plan = match (args.quick, args.targets) {
        (true, _) => QUICK,
        (_, true) => TARGETS,
        _ => FULL,
    };
    let limit = echo_testkit::raise_fd_limit();
    // Rounds of the target cells alone need neither the stock CLI nor the
    // cells it is in.
    let kinds: &[Kind] = if plan.repetitions > 0 { &Kind::ALL } else { &TARGET_SERVERS };
    let servers: Vec<Server> = kinds.iter().map(|&k| Server::start(k)).collect();
    let floor = Server::start(Kind::Floor);

    // Every round goes through its cells and servers before the next starts,
    // so that a slow spell of the machine hits them all alike. The first
    // `repetitions` rounds go through every cell (at 64 B, the peer guests
    // right after the others, each on a server of its own that ends with the
    // cell, so that one left spinning costs the next cell nothing), then the
    // diagnostics at 64 B: the minimal guest at the targets' connection
    // counts, and a client that never sleeps at 50. The rounds after them
    // repeat the target cells alone, the minimal guest's included.
    let mut runs: Vec<(RunKey, Vec<load::Run>)> = Vec::new();
    let window = (plan.warmup, plan.measure);
    let rounds = plan.repetitions + plan.target_rounds;
    // Ratios pair the runs of two cells by round, so every round must run
    // every target cell.
    assert!(
        plan.sizes.contains(&64) && TARGET_CONNECTIONS.iter().all(|c| plan.connections.contains(c)),
        "a plan's matrix must hold the target cells"
    );
    for round in 0..rounds {
        let servers = &servers;
        let jobs: Vec<(Target, usize, usize, Waiting)> = if round < plan.repetitions {
            let matrix = plan.sizes.iter().flat_map(|&size| {
                let peers: &[(Kind, Kind)] = if size == 64 { &Kind::PEERS } else { &[] };
                plan.connections.iter().flat_map(move |&connections| {
                    let running = servers.iter().map(Target::Running);
                    let fresh = peers.iter().map(|&(peer, _)| Target::Fresh(peer));
                    running
                        .chain(fresh)
                        .map(move |target| (target, connections, size, Waiting::Sleep))
                })
            });
            let floor = TARGET_CONNECTIONS
                .iter()
                .map(|&connections| (Target::Running(&floor), connections, 64, Waiting::Sleep));
            let spinning = servers
                .iter()
                .filter(|server| SPINNING.contains(&server.kind))
                .map(|server| (Target::Running(server), 50, 64, Waiting::Spin));
            matrix.chain(floor).chain(spinning).collect()
        } else {
            let compared = servers.iter().filter(|s| TARGET_SERVERS.contains(&s.kind));
            let compared: Vec<&Server> = compared.chain([&floor]).collect();
            TARGET_CONNECTIONS
                .iter()
                .flat_map(|&connections| {
                    compared.iter().map(move |&server| {
                        (Target::Running(server), connections, 64, Waiting::Sleep)
                    })
                })
                .collect()
        };
        for (target, connections, size, waiting) in jobs {
            let fresh;
            let server = match target {
                Target::Running(server) => server,
                Target::Fresh(kind) => {
                    fresh = Server::start(kind);
                    &fresh
                }
            };
            let (addr, pid) = (server.addr, server.pid());
            let run = load::closed_loop(addr, pid, connections, size, window, waiting, 1);
            let run = match (run, target) {
                (Ok(run), _) => run,
                // A peer that fails a cell (it may stop serving past some
                // connection count) is recorded as having served nothing.
                (Err(e), Target::Fresh(kind)) => {
                    eprintln!("{} at {connections} connections: {e}", kind.name());
                    load::Run::nothing(window.1)
                }
                (Err(e), Target::Running(_)) => return Err(e),
            };
            eprintln!(
                "round {}/{rounds}: {:>4} × {:>4} B  {:<20} {:>8.0} req/s{}",
                round + 1,
                connections,
                size,
                server.kind.name(),
                run.per_second(),
                if waiting == Waiting::Spin { ", client spinning" } else { "" }
            );
            let key = (server.kind, connections, size, waiting);
            match runs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(run),
                None => runs.push((key, vec![run])),
            }
        }
    }
    drop(floor);
    let (sleeping, spinning): (Vec<_>, Vec<_>) =
        runs.into_iter().partition(|((.., waiting), _)| *waiting == Waiting::Sleep);
    let summarize_all = |runs: Vec<(RunKey, Vec<load::Run>)>| -> Vec<Cell> {
        runs.into_iter()
            .map(|((kind, connections, size, _), runs)| summarize(kind, connections, size, &runs))
            .collect()
    };
    let (floor, cells): (Vec<_>, Vec<_>) =
        summarize_all(sleeping).into_iter().partition(|cell| cell.kind == Kind::Floor);
    let (peers, cells): (Vec<_>, Vec<_>) =
        cells.into_iter().partition(|cell| Kind::PEERS.iter().any(|&(peer, _)| cell.kind == peer));
    let spinning = summarize_all(spinning);

    let (streaming, idle, startup, cold_start) = if plan.scenarios {
        scenarios_of(&plan, servers, limit)?
    } else {
        (Vec::new(), Vec::new(), Vec::new(), None)
    };
    let workers = if plan.scenarios {
        workers_table(&plan, usize::from(args.client_threads), limit)?
    } else {
        report::Workers::default()
    };

    let results = Results {
        mode: plan.name,
        repetitions: plan.repetitions,
        target_rounds: plan.target_rounds,
        cells,
        floor,
        peers,
        spinning,
        streaming,
        idle,
        startup,
        cold_start,
        workers,
    };
    let report = results.markdown(&machine());
    println!("{report}");
    std::fs::create_dir_all(&args.out)?;
    let name = plan.name;
    std::fs::write(args.out.join(format!("{name}.md")), &report)?;
    // A plot needs more than the targets' two connection counts.
    let sizes = if plan.connections.len() > 2 { plan.sizes } else { &[] };
    for size in sizes {
        let title = format!("Closed-loop throughput, {size} B messages");
        let svg = results.svg(*size, &title, "requests per second", |c| c.per_second);
        std::fs::write(args.out.join(format!("{name}-throughput-{size}B.svg")), svg)?;
        let title = format!("p99 latency, {size} B messages");
        let svg = results.svg(*size, &title, "p99 latency (µs)", |c| c.latency_us[1]);
        std::fs::write(args.out.join(format!("{name}-p99-{size}B.svg")), svg)?;
    }
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// What the scenarios beside the closed loop measured, per server:
/// streaming, idle connections, start-up; and `echo-host`'s first start,
/// with nothing in its code cache.
type Scenarios = (
    Vec<(Kind, scenarios::Streamed)>,
    Vec<(Kind, Result<scenarios::Idle, String>)>,
    Vec<(Kind, Duration)>,
    Option<Duration>,
);

/// Streams through each of `running`, then drops them and measures idle
/// connections and start-up on fresh servers.
fn scenarios_of(plan: &Plan, running: Vec<Server>, limit: u64) -> std::io::Result<Scenarios> {
    let streaming = running
        .iter()
        .map(|s| Ok((s.kind, scenarios::stream(s, plan.measure * 2)?)))
        .collect::<std::io::Result<_>>()?;
    drop(running);
    // Fresh servers: memory grown by the runs above would hide what idle
    // connections cost.
    let idle = IDLE
        .iter()
        .map(|&kind| {
            let result = if kind == Kind::Seed && plan.idle >= 1000 {
                Err("select() handles at most 1,024 descriptors".to_owned())
            } else {
                idle_on(kind, 1, plan, limit)
            };
            (kind, result)
        })
        .collect();
    let startup = Kind::ALL
        .iter()
        .map(|&kind| {
            let mut times = (0..plan.startups)
                .map(|_| servers::startup(kind, &[]))
                .collect::<std::io::Result<Vec<_>>>()?;
            times.sort();
            Ok((kind, times[times.len() / 2]))
        })
        .collect::<std::io::Result<_>>()?;
    // The first start compiles the guest, into a code cache of its own.
    let cache = echo_testkit::workspace_root().join("target/bench-empty-code-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let cold = servers::startup(Kind::Host, &["--cache-dir".as_ref(), cache.as_ref()])?;
    let _ = std::fs::remove_dir_all(&cache);
    Ok((streaming, idle, startup, Some(cold)))
}

/// The idle scenario on a fresh server of `kind` with `workers` guests, if
/// this process may open the files it needs (`limit`).
fn idle_on(kind: Kind, workers: usize, plan: &Plan, limit: u64) -> Result<scenarios::Idle, String> {
    if limit < plan.idle as u64 + 100 {
        return Err(format!("this process may open only {limit} files"));
    }
    let server = Server::start_workers(kind, workers);
    scenarios::idle(server.addr, server.pid(), plan.idle).map_err(|e| e.to_string())
}

/// The worker counts of the workers table: 1 and 2, then doubling up to
/// the cores this process may use, and those cores.
fn worker_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts: Vec<usize> = std::iter::successors(Some(1), |n| Some(n * 2))
        .take_while(|&n| n <= cores.max(2))
        .collect();
    if !counts.contains(&cores) {
        counts.push(cores);
    }
    counts
}

/// `echo-host` with each worker count at the targets' connection counts ×
/// 64 B, driven by `client_threads`: each round on fresh servers, every
/// count before the next round; then idle connections on each.
fn workers_table(
    plan: &Plan,
    client_threads: usize,
    limit: u64,
) -> std::io::Result<report::Workers> {
    let counts = worker_counts();
    let mut table = report::Workers { client_threads, ..report::Workers::default() };
    let window = (plan.warmup, plan.measure);
    let rounds = plan.repetitions.max(1);
    for round in 0..rounds {
        for &workers in &counts {
            let server = Server::start_workers(Kind::Host, workers);
            for connections in TARGET_CONNECTIONS {
                let (addr, pid) = (server.addr, server.pid());
                let run = load::closed_loop(
                    addr,
                    pid,
                    connections,
                    64,
                    window,
                    Waiting::Sleep,
                    client_threads,
                )?;
                eprintln!(
                    "workers round {}/{rounds}: {workers} worker(s), {connections} × 64 B, \
                     {client_threads} client thread(s): {:.0} req/s, workers busy {:.2?}",
                    round + 1,
                    run.per_second(),
                    run.workers_busy()
                );
                table.record(workers, connections, run);
            }
        }
    }
    for &workers in &counts {
        table.idle.push((workers, idle_on(Kind::Host, workers, plan, limit)));
    }
    Ok(table)
}

/// The medians of a cell's runs, and each run's figures in round order.
fn summarize(kind: Kind, connections: usize, size: usize, runs: &[load::Run]) -> Cell {
    let us = |run: &load::Run, q: f64| run.latency.value_at_quantile(q) as f64 / 1e3;
    Cell {
        kind,
        connections,
        size,
        per_second: median(runs.iter().map(load::Run::per_second).collect()),
        latency_us: [
            median(runs.iter().map(|r| us(r, 0.5)).collect()),
            median(runs.iter().map(|r| us(r, 0.99)).collect()),
            median(runs.iter().map(|r| us(r, 0.999)).collect()),
            median(runs.iter().map(|r| r.latency.max() as f64 / 1e3).collect()),
        ],
        cpu_per_request_us: median(runs.iter().map(load::Run::cpu_per_request_us).collect()),
        kernel_per_request_us: median(runs.iter().map(load::Run::kernel_per_request_us).collect()),
        busy: median(runs.iter().map(load::Run::busy).collect()),
        rounds: runs
            .iter()
            .map(|run| Sample {
                per_second: run.per_second(),
                p99_us: us(run, 0.99),
                cpu_per_request_us: run.cpu_per_request_us(),
            })
            .collect(),
    }
}

/// The machine, in a line: CPU model and count, kernel.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Machine: {} × {}, Linux {}.", cores, model.unwrap_or("unknown CPU"), kernel.trim())
}
