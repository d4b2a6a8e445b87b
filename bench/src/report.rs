//! The results: a markdown report with the targets, and SVG plots (drawn
//! with `plotters`).

use crate::load::Run;
use crate::scenarios::{Idle, PROBE_PAUSE, Streamed};
use crate::servers::Kind;
use std::fmt::Write as _;
use std::time::Duration;

/// One closed-loop configuration on one server: the medians over its runs.
pub struct Cell {
    pub kind: Kind,
    pub connections: usize,
    pub size: usize,
    pub per_second: f64,
    /// Latency percentiles in microseconds: p50, p99, p99.9, max.
    pub latency_us: [f64; 4],
    pub cpu_per_request_us: f64,
    /// The part of `cpu_per_request_us` spent in the kernel.
    pub kernel_per_request_us: f64,
    /// The share of the window the server was running (1.0: a whole core).
    pub busy: f64,
    /// Each run's figures, in the order of the rounds that made them.
    pub rounds: Vec<Sample>,
}

/// What one run of a cell measured, for comparisons within a round.
pub struct Sample {
    pub per_second: f64,
    pub p99_us: f64,
    pub cpu_per_request_us: f64,
}

impl Cell {
    /// Server CPU microseconds per request spent outside the kernel.
    pub fn user_per_request_us(&self) -> f64 {
        self.cpu_per_request_us - self.kernel_per_request_us
    }
}

/// The throughput goal against the Python seed at 50 × 64 B.
const SEED_GOAL: f64 = 1.2;

/// The share of its 50-connection throughput a server should keep at 1,000.
const SCALING_GOAL: f64 = 0.9;

/// The most a probe among idle connections may wait for its reply, in
/// microseconds (median).
const PROBE_GOAL_US: f64 = 400.0;

/// A ratio between two cells, taken in each round that measured both: on
/// this machine a round's servers share its speed, and the rounds differ.
struct Paired {
    /// The ratio in each round.
    ratios: Vec<f64>,
}

impl Paired {
    /// `f(a) / f(b)` in every round that ran both cells; `None` if none did.
    ///
    /// Runs pair by position: a cell measured in fewer rounds than another
    /// was measured in the first ones, those through every cell.
    fn new(a: &Cell, b: &Cell, f: fn(&Sample) -> f64) -> Option<Paired> {
        let ratios: Vec<f64> = a.rounds.iter().zip(&b.rounds).map(|(a, b)| f(a) / f(b)).collect();
        (!ratios.is_empty()).then_some(Paired { ratios })
    }

    fn median(&self) -> f64 {
        median(self.ratios.clone())
    }

    fn min(&self) -> f64 {
        self.ratios.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// In how many rounds the ratio met `goal`.
    fn rounds_meeting(&self, goal: f64, at_least: bool) -> usize {
        self.ratios.iter().filter(|&&r| if at_least { r >= goal } else { r <= goal }).count()
    }
}

/// A row of an idle-connections table: `label`, then what was measured,
/// or why nothing was.
fn idle_row(out: &mut String, label: &str, idle: &Result<Idle, String>) {
    let _ = match idle {
        Ok(i) => writeln!(
            out,
            "| {label} | {} | {:.1} KiB | {:.0} µs | {:.0} µs |",
            i.connections,
            i.bytes_per_connection / 1024.0,
            i.probe.as_secs_f64() * 1e6,
            i.paced_probe.as_secs_f64() * 1e6
        ),
        Err(why) => writeln!(out, "| {label} | n/a | {why} | | |"),
    };
}

/// The middle value (the upper of the two middle ones for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The median over the rounds of `f(a) / f(b)`; NaN if no round ran both.
fn median_ratio(a: Option<&Cell>, b: Option<&Cell>, f: fn(&Sample) -> f64) -> f64 {
    a.zip(b).and_then(|(a, b)| Paired::new(a, b, f)).map_or(f64::NAN, |p| p.median())
}

/// One row of the targets table.
pub struct Target {
    pub what: String,
    pub measured: String,
    /// For a ratio: its range over the rounds, and in how many it met the goal.
    pub rounds: String,
    pub goal: String,
    pub met: bool,
}

/// Everything one invocation measured.
pub struct Results {
    pub mode: &'static str,
    pub repetitions: usize,
    /// Further rounds through the target cells alone.
    pub target_rounds: usize,
    pub cells: Vec<Cell>,
    /// 64 B on the minimal guest (`bench/floor`), at 50 and 1,000
    /// connections: a diagnostic.
    pub floor: Vec<Cell>,
    /// 64 B on the peer guest (`bench/wstd`), under `echo-host` and the
    /// stock CLI, at every connection count: beside the echo guest.
    pub peers: Vec<Cell>,
    /// 50 × 64 B with a client that never sleeps: a diagnostic.
    pub spinning: Vec<Cell>,
    pub streaming: Vec<(Kind, Streamed)>,
    pub idle: Vec<(Kind, Result<Idle, String>)>,
    pub startup: Vec<(Kind, Duration)>,
    /// `echo-host`'s first start, which compiles the guest.
    pub cold_start: Option<Duration>,
    /// `echo-host` with each worker count.
    pub workers: Workers,
}

/// The workers table: `echo-host --workers N` at the targets' connection
/// counts × 64 B, and idle.
#[derive(Default)]
pub struct Workers {
    /// The client threads that drove the connections.
    pub client_threads: usize,
    /// By worker count and connection count, each round's run.
    pub runs: Vec<((usize, usize), Vec<Run>)>,
    /// Idle connections, by worker count.
    pub idle: Vec<(usize, Result<Idle, String>)>,
}

impl Workers {
    /// Adds a round's run of `workers` at `connections`.
    pub fn record(&mut self, workers: usize, connections: usize, run: Run) {
        let key = (workers, connections);
        match self.runs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, runs)) => runs.push(run),
            None => self.runs.push((key, vec![run])),
        }
    }

    fn rounds(&self, workers: usize, connections: usize) -> Option<&[Run]> {
        let key = (workers, connections);
        self.runs.iter().find(|(k, _)| *k == key).map(|(_, runs)| runs.as_slice())
    }

    fn markdown(&self, out: &mut String) {
        if self.runs.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n### Workers: `echo-host --workers N`, 64 B\n\n\
             Each round starts a fresh server per worker count; {} client thread(s) drive the \
             connections. \"vs 1 worker\" is the median of the ratios within a round; \
             \"each worker\" is each worker thread's CPU over the window (100% is one core).\n\n\
             | workers | connections | req/s | vs 1 worker | p99 µs | server CPU µs/req | each worker |\n\
             |---:|---:|---:|---:|---:|---:|---|",
            self.client_threads
        );
        for ((workers, connections), rounds) in &self.runs {
            let per_second = median(rounds.iter().map(Run::per_second).collect());
            let p99 = median(
                rounds.iter().map(|run| run.latency.value_at_quantile(0.99) as f64 / 1e3).collect(),
            );
            let cpu = median(rounds.iter().map(Run::cpu_per_request_us).collect());
            let vs_one = self.rounds(1, *connections).map(|one| {
                median(
                    rounds
                        .iter()
                        .zip(one)
                        .map(|(run, base)| run.per_second() / base.per_second().max(1.0))
                        .collect(),
                )
            });
            let busy: Vec<Vec<f64>> = rounds.iter().map(Run::workers_busy).collect();
            let busy: Vec<String> = (0..*workers)
                .map(|worker| {
                    let share = median(
                        busy.iter().filter_map(|round| round.get(worker).copied()).collect(),
                    );
                    format!("{:.0}%", share * 100.0)
                })
                .collect();
            let _ = writeln!(
                out,
                "| {workers} | {connections} | {per_second:.0} | {} | {p99:.0} | {cpu:.1} | {} |",
                vs_one.map_or("—".to_owned(), |r| format!("{r:.2}×")),
                busy.join(" / ")
            );
        }
        let _ = writeln!(
            out,
            "\n| workers | idle connections | memory per connection | probe reply, back to back | paced |\n\
             |---:|---:|---:|---:|---:|"
        );
        for (workers, idle) in &self.idle {
            idle_row(out, &workers.to_string(), idle);
        }
    }
}

impl Results {
    fn cell(&self, kind: Kind, connections: usize, size: usize) -> Option<&Cell> {
        self.cells.iter().find(|c| c.kind == kind && c.connections == connections && c.size == size)
    }

    /// The targets, each judged on its median.
    pub fn targets(&self) -> Vec<Target> {
        let mut rows = Vec::new();
        let mut ratio = |what: &str, paired: Option<Paired>, goal: f64, at_least: bool| {
            if let Some(paired) = paired {
                let median = paired.median();
                rows.push(Target {
                    what: what.to_owned(),
                    measured: format!("{median:.2}×"),
                    rounds: format!(
                        "{:.2}–{:.2}×, met in {} of {}",
                        paired.min(),
                        paired.max(),
                        paired.rounds_meeting(goal, at_least),
                        paired.ratios.len()
                    ),
                    goal: format!("{} {goal}×", if at_least { "≥" } else { "≤" }),
                    met: if at_least { median >= goal } else { median <= goal },
                });
            }
        };
        let host = self.cell(Kind::Host, 50, 64);
        let native = self.cell(Kind::Native, 50, 64);
        let seed = self.cell(Kind::Seed, 50, 64);
        let pair = |a: Option<&Cell>, b: Option<&Cell>, f| Paired::new(a?, b?, f);
        ratio("50 × 64 B throughput vs native", pair(host, native, |s| s.per_second), 0.75, true);
        ratio(
            "50 × 64 B throughput vs Python seed",
            pair(host, seed, |s| s.per_second),
            SEED_GOAL,
            true,
        );
        ratio(
            "50 × 64 B server CPU per request vs native",
            pair(host, native, |s| s.cpu_per_request_us),
            1.5,
            false,
        );
        ratio("50 × 64 B p99 latency vs native", pair(host, native, |s| s.p99_us), 1.5, false);
        let wide = self.cell(Kind::Host, 1000, 64);
        ratio(
            "1,000 vs 50 connections throughput (64 B)",
            pair(wide, host, |s| s.per_second),
            SCALING_GOAL,
            true,
        );
        let streamed =
            |kind| self.streaming.iter().find(|(k, _)| *k == kind).map(|(_, s)| s.mb_per_s);
        if let (Some(guest), Some(native)) = (streamed(Kind::Host), streamed(Kind::Native)) {
            let value = guest / native;
            rows.push(Target {
                what: "streaming throughput vs native".to_owned(),
                measured: format!("{value:.2}×"),
                rounds: "one run".to_owned(),
                goal: "≥ 0.6×".to_owned(),
                met: value >= 0.6,
            });
        }
        if let Some((_, Ok(idle))) = self.idle.iter().find(|(k, _)| *k == Kind::Host) {
            let probes = [
                ("back to back", idle.probe),
                (&*format!("one every {} ms", PROBE_PAUSE.as_millis()), idle.paced_probe),
            ];
            for (how, probe) in probes {
                let us = probe.as_secs_f64() * 1e6;
                rows.push(Target {
                    what: format!("probe reply among {} idle connections, {how}", idle.connections),
                    measured: format!("{us:.0} µs"),
                    rounds: "median of the probes".to_owned(),
                    goal: format!("≤ {PROBE_GOAL_US:.0} µs"),
                    met: us <= PROBE_GOAL_US,
                });
            }
            let kib = idle.bytes_per_connection / 1024.0;
            rows.push(Target {
                what: format!(
                    "idle memory per connection ({} connections served)",
                    idle.connections
                ),
                measured: format!("{kib:.1} KiB"),
                rounds: "one run".to_owned(),
                goal: "≤ 8 KiB".to_owned(),
                met: kib <= 8.0,
            });
        }
        if let Some((_, took)) = self.startup.iter().find(|(k, _)| *k == Kind::Host) {
            let ms = took.as_secs_f64() * 1e3;
            rows.push(Target {
                what: "start to first reply".to_owned(),
                measured: format!("{ms:.1} ms"),
                rounds: "median of the starts".to_owned(),
                goal: "≤ 50 ms".to_owned(),
                met: ms <= 50.0,
            });
        }
        rows
    }

    /// The report, as markdown.
    pub fn markdown(&self, machine: &str) -> String {
        let mut out = String::new();
        let target_cells = "the target cells (native, seed, echo guest and minimal guest at 50 \
                            and 1,000 connections × 64 B)";
        let rounds = if self.repetitions > 0 {
            format!(
                "{} round(s) through every cell and {} more through {target_cells}",
                self.repetitions, self.target_rounds
            )
        } else {
            format!("{} rounds through {target_cells} alone", self.target_rounds)
        };
        let _ = writeln!(
            out,
            "Mode: {}, {rounds}. Medians reported; a ratio between servers is taken within \
             each round, and its median judged. {machine}\n",
            self.mode
        );
        let _ = writeln!(
            out,
            "### Targets\n\n| target | measured | over the rounds | goal | met |\n|---|---|---|---|---|"
        );
        for t in self.targets() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                t.what,
                t.measured,
                t.rounds,
                t.goal,
                if t.met { "yes" } else { "**no**" }
            );
        }
        let _ = writeln!(
            out,
            "\n### Closed loop\n\n| connections | size | server | req/s | p50 µs | p99 µs | p99.9 µs | max µs | server CPU µs/req |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|"
        );
        for cell in &self.cells {
            let [p50, p99, p999, max] = cell.latency_us;
            let _ = writeln!(
                out,
                "| {} | {} B | {} | {:.0} | {p50:.0} | {p99:.0} | {p999:.0} | {max:.0} | {:.1} |",
                cell.connections,
                cell.size,
                cell.kind.name(),
                cell.per_second,
                cell.cpu_per_request_us
            );
        }
        self.floor_diagnostic(&mut out);
        self.peers_diagnostic(&mut out);
        self.scaling_diagnostic(&mut out);
        if !self.spinning.is_empty() {
            let _ = writeln!(
                out,
                "\n### Diagnostic: 50 × 64 B with a client that never sleeps\n\n\
                 On loopback a server's send runs the client's receive path, waking the client if \
                 it sleeps; the slower side finds the other asleep more often. A client that \
                 polls without sleeping removes that cost for every server. The targets use the \
                 sleeping client above.\n\n\
                 | server | req/s | vs native | p99 µs | server CPU µs/req | vs native |\n\
                 |---|---:|---:|---:|---:|---:|"
            );
            let native = self.spinning.iter().find(|c| c.kind == Kind::Native);
            for cell in &self.spinning {
                let vs = |f| median_ratio(Some(cell), native, f);
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {:.2}× | {:.0} | {:.1} | {:.2}× |",
                    cell.kind.name(),
                    cell.per_second,
                    vs(|s| s.per_second),
                    cell.latency_us[1],
                    cell.cpu_per_request_us,
                    vs(|s| s.cpu_per_request_us)
                );
            }
        }
        if !self.streaming.is_empty() {
            let _ = writeln!(
                out,
                "\n### Streaming (one connection, 64 KiB writes)\n\n| server | MB/s | RSS before | RSS peak |\n|---|---:|---:|---:|"
            );
            for (kind, s) in &self.streaming {
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {} KiB | {} KiB |",
                    kind.name(),
                    s.mb_per_s,
                    s.rss_before_kib,
                    s.rss_peak_kib
                );
            }
        }
        if !self.idle.is_empty() {
            let _ = writeln!(
                out,
                "\n### Idle connections\n\nA probe connection among the idle ones sends one byte \
                 as soon as its previous reply came back (back to back), then once every {} ms, \
                 so that the server is waiting when it arrives (paced).\n\n\
                 | server | connections | memory per connection | probe reply, back to back | paced |\n\
                 |---|---:|---:|---:|---:|",
                PROBE_PAUSE.as_millis()
            );
            for (kind, idle) in &self.idle {
                idle_row(&mut out, kind.name(), idle);
            }
        }
        if !self.startup.is_empty() {
            let _ = writeln!(out, "\n### Start to first reply\n\n| server | median |\n|---|---:|");
            for (kind, took) in &self.startup {
                let _ = writeln!(out, "| {} | {:.1} ms |", kind.name(), took.as_secs_f64() * 1e3);
            }
            if let Some(took) = self.cold_start {
                let _ = writeln!(
                    out,
                    "| {}, first start (empty code cache: compiles the guest) | {:.0} ms |",
                    Kind::Host.name(),
                    took.as_secs_f64() * 1e3
                );
            }
        }
        self.workers.markdown(&mut out);
        out
    }

    /// The minimal guest beside the others at 50 × 64 B, with where each
    /// spends its time, and the budget 1.2× the seed leaves.
    fn floor_diagnostic(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### Diagnostic: the least a WASI 0.2 guest does, 50 × 64 B\n\n\
             `bench/floor` is a guest reduced to one `poll` over every connection, then `read`, \
             `check-write` and `write` for each ready one: no scheduler, timers, limits or log. \
             Under `echo-host` with the same client, it shows what any guest could reach with \
             WASI 0.2 on this host; the gap to the echo guest is what the guest's own scheduler \
             and limits cost. \"Busy\" is the server's CPU time over the window (one core is \
             100%); \"kernel\" is the part of its CPU time spent in system calls and the \
             network stack, from `/proc/PID/stat` (on loopback, a send also runs the client's \
             receive path).\n\n\
             | server | req/s | vs native | vs Python seed | p99 µs | busy | CPU µs/req | kernel | user | CPU vs native |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let native = self.cell(Kind::Native, 50, 64);
        let seed = self.cell(Kind::Seed, 50, 64);
        let floor = self.floor.iter().find(|c| c.connections == 50);
        let rows = [native, seed, self.cell(Kind::Host, 50, 64), floor];
        for cell in rows.into_iter().flatten() {
            let vs = |base, f| median_ratio(Some(cell), base, f);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.2}× | {:.2}× | {:.0} | {:.0}% | {:.2} | {:.2} | {:.2} | {:.2}× |",
                cell.kind.name(),
                cell.per_second,
                vs(native, |s| s.per_second),
                vs(seed, |s| s.per_second),
                cell.latency_us[1],
                cell.busy * 100.0,
                cell.cpu_per_request_us,
                cell.kernel_per_request_us,
                cell.user_per_request_us(),
                vs(native, |s| s.cpu_per_request_us)
            );
        }
        if let (Some(seed), Some(floor)) = (seed, floor) {
            let reached = |cell: Option<&Cell>| {
                let paired = Paired::new(cell?, seed, |s| s.per_second)?;
                Some(format!(
                    "{} of {} rounds ({:.2}–{:.2}×)",
                    paired.rounds_meeting(SEED_GOAL, true),
                    paired.ratios.len(),
                    paired.min(),
                    paired.max()
                ))
            };
            if let (Some(host), Some(floor)) =
                (reached(self.cell(Kind::Host, 50, 64)), reached(Some(floor)))
            {
                let _ = writeln!(
                    out,
                    "\n{SEED_GOAL}× the seed's throughput was reached by the echo guest in {host}, \
                     by the minimal guest in {floor}."
                );
            }
            let budget = 1e6 / (SEED_GOAL * seed.per_second);
            let _ = writeln!(
                out,
                "\nA server serves as many requests per second as its busy share over its CPU \
                 per request. {SEED_GOAL}× the seed's {:.0} req/s on one whole core leaves \
                 {budget:.2} µs per request; the minimal guest spent {:.2} µs in the kernel and \
                 {:.2} µs in user space.",
                seed.per_second,
                floor.kernel_per_request_us,
                floor.user_per_request_us()
            );
        }
    }

    /// The peer guest on `wstd` against the echo guest, on each runtime, at
    /// every connection count measured.
    fn peers_diagnostic(&self, out: &mut String) {
        if self.peers.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n### Peer guest: the same echo on `wstd`, 64 B\n\n\
             `bench/wstd` is the echo written as a user of `wstd` (the async runtime for WASI \
             0.2 components) would write it: a task per connection that reads a chunk and \
             writes the reply, with no timeouts, limits or shutdown. Each row pairs it with the \
             echo guest on the same runtime; \"vs ours\" is the median of the within-round \
             ratios of throughput.\n\n\
             | connections | runtime | echo guest req/s | wstd req/s | wstd vs ours | echo guest p99 µs | wstd p99 µs | echo guest p99.9 µs | wstd p99.9 µs | echo guest CPU µs/req | wstd CPU µs/req |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for peer in &self.peers {
            let Some(&(_, ours)) = Kind::PEERS.iter().find(|(p, _)| *p == peer.kind) else {
                continue;
            };
            let Some(ours) = self.cell(ours, peer.connections, 64) else { continue };
            let runtime = if ours.kind == Kind::Host { "echo-host" } else { "wasmtime run" };
            let _ = writeln!(
                out,
                "| {} | {runtime} | {:.0} | {:.0} | {:.2}× | {:.0} | {} | {:.0} | {} | {:.1} | {} |",
                peer.connections,
                ours.per_second,
                peer.per_second,
                median_ratio(Some(peer), Some(ours), |s| s.per_second),
                ours.latency_us[1],
                served(peer, peer.latency_us[1], 0),
                ours.latency_us[2],
                served(peer, peer.latency_us[2], 0),
                ours.cpu_per_request_us,
                served(peer, peer.cpu_per_request_us, 1)
            );
        }
    }

    /// Throughput at 1,000 connections against 50, for every server
    /// including the minimal guest.
    fn scaling_diagnostic(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### Diagnostic: 1,000 vs 50 connections, 64 B\n\n\
             | server | req/s at 50 | at 1,000 | 1,000 vs 50 | over the rounds | CPU µs/req at 50 | at 1,000 | kernel at 50 | at 1,000 |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let at = |kind: Kind, connections: usize| {
            self.cell(kind, connections, 64).or_else(|| {
                let mut others = self.floor.iter().chain(&self.peers);
                others.find(|c| c.kind == kind && c.connections == connections)
            })
        };
        for kind in Kind::ALL.iter().copied().chain([Kind::Floor, Kind::Wstd, Kind::WstdStock]) {
            let (Some(few), Some(many)) = (at(kind, 50), at(kind, 1000)) else { continue };
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.2}× | {} | {:.2} | {} | {:.2} | {} |",
                kind.name(),
                few.per_second,
                many.per_second,
                median_ratio(Some(many), Some(few), |s| s.per_second),
                Paired::new(many, few, |s| s.per_second).map_or(String::new(), |p| format!(
                    "{:.2}–{:.2}×, ≥ {SCALING_GOAL}× in {} of {}",
                    p.min(),
                    p.max(),
                    p.rounds_meeting(SCALING_GOAL, true),
                    p.ratios.len()
                )),
                few.cpu_per_request_us,
                served(many, many.cpu_per_request_us, 2),
                few.kernel_per_request_us,
                served(many, many.kernel_per_request_us, 2)
            );
        }
    }

    /// A line plot over connection counts (a log scale), one line per
    /// server, for `size`; `value` is what is plotted, `unit` its axis label.
    pub fn svg(&self, size: usize, title: &str, unit: &str, value: fn(&Cell) -> f64) -> String {
        let mut counts: Vec<usize> = self.cells.iter().map(|c| c.connections).collect();
        counts.sort_unstable();
        counts.dedup();
        let series: Vec<(Kind, Vec<(f64, f64)>)> = Kind::ALL
            .iter()
            .map(|&kind| {
                let points = counts
                    .iter()
                    .filter_map(|&n| self.cell(kind, n, size).map(|c| (n as f64, value(c))))
                    .collect();
                (kind, points)
            })
            .filter(|(_, points): &(Kind, Vec<_>)| !points.is_empty())
            .collect();
        let top = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, v)| v)).fold(0.0, f64::max);
        let mut svg = String::new();
        plot(&mut svg, title, unit, &counts, top * 1.1, &series)
            .expect("drawing into a string does not fail");
        svg
    }
}

/// `value` with `precision` decimals, or a dash if `cell` served nothing
/// (its figures per request then mean nothing).
fn served(cell: &Cell, value: f64, precision: usize) -> String {
    if cell.per_second > 0.0 { format!("{value:.precision$}") } else { "—".to_owned() }
}

/// Draws `series` as lines over `counts` into `svg`.
fn plot<'a>(
    svg: &'a mut String,
    title: &str,
    unit: &str,
    counts: &[usize],
    top: f64,
    series: &[(Kind, Vec<(f64, f64)>)],
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    use plotters::coord::combinators::BindKeyPoints;
    use plotters::prelude::*;
    let root = SVGBackend::with_string(svg, (760, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let first = counts.first().copied().unwrap_or(1) as f64;
    let last = counts.last().copied().unwrap_or(1).max(2) as f64;
    let x = (first..last).log_scale().with_key_points(counts.iter().map(|&n| n as f64).collect());
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x, 0.0..top.max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("connections (log scale)")
        .y_desc(unit)
        .x_label_formatter(&|n| format!("{n:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    // Four colours told apart in print and by most colour-blind readers.
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
    ];
    for (index, (kind, points)) in series.iter().enumerate() {
        let color = colours[index % colours.len()].to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(kind.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&point| Circle::new(point, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
