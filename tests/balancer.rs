//! Past one machine: HAProxy, with the configuration in `deploy/haproxy/`
//! used unchanged (`echo_testkit::deploy::haproxy`), in front of three `echo-host` instances on loopback,
//! while clients keep connecting and checking every reply.
//!
//! Each instance answers with a prefix of its own (`GOT1:` ...), so every
//! client session knows which instance served it. The test kills one
//! instance (SIGKILL), drains another (SIGTERM), and brings the first back,
//! and checks what each client saw against what each instance went
//! through. It needs `haproxy` (`.ci/run` installs it); without it, it says
//! it was skipped.

mod support;

use echo_testkit::Process;
use rustix::process::Signal;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::observe::{get, metrics_addr, sample};
use support::server::host_command;
use support::{DEADLINE, Server, check_segments, eventually};

/// Clients connecting at once, each one session after another.
const CLIENTS: usize = 8;

/// Round trips per session, a few milliseconds apart: sessions are short,
/// and always some are open.
const ROUNDS: usize = 10;

/// How long a draining instance keeps accepting while HAProxy's health
/// check (every second) sees `/readyz` say so.
const DRAIN_DELAY: &str = "3s";

/// The prefix of instance `n`.
fn prefix(n: usize) -> Vec<u8> {
    format!("GOT{n}:").into_bytes()
}

/// One `echo-host` behind the balancer.
struct Instance {
    server: Server,
    listen: SocketAddr,
    metrics: SocketAddr,
}

impl Instance {
    /// Instance `n`, listening at `listen` with its figures and probes at
    /// `metrics` (port 0 for either picks one).
    fn start(n: usize, listen: &str, metrics: &str) -> Instance {
        let mut command = host_command();
        command.args(["--listen", listen, "--metrics", metrics, "--drain-delay", DRAIN_DELAY]);
        command.arg(format!("--prefix=GOT{n}:"));
        let server = Server::start(command);
        let metrics = metrics_addr(&server);
        Instance { listen: server.addr, server, metrics }
    }
}

/// HAProxy, run in the foreground on the shipped configuration.
struct Balancer {
    process: Process,
    frontend: SocketAddr,
    stats: PathBuf,
}

impl Balancer {
    fn start(instances: &[Instance], dir: &Path) -> Balancer {
        // A free port, for HAProxy to bind: the configuration names one.
        let frontend = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let stats = dir.join("haproxy.sock");
        let servers: Vec<(SocketAddr, u16)> =
            instances.iter().map(|instance| (instance.listen, instance.metrics.port())).collect();
        let mut command = echo_testkit::deploy::haproxy(frontend, &servers);
        command.env("HAPROXY_STATS_SOCKET", &stats);
        let process = Process::spawn(command);
        let balancer = Balancer { process, frontend, stats };
        for n in 1..=instances.len() {
            balancer.wait_for(n, "UP");
        }
        balancer
    }

    /// HAProxy's status of server `echoN`: `UP`, `DOWN`, `NOLB` (draining),
    /// or a transition such as `UP 1/2`.
    fn status(&self, n: usize) -> String {
        let Ok(mut socket) = UnixStream::connect(&self.stats) else { return String::new() };
        let _ = socket.write_all(b"show stat\n");
        let mut csv = String::new();
        let _ = socket.read_to_string(&mut csv);
        let mut lines = csv.lines();
        let header: Vec<&str> =
            lines.next().unwrap_or("").trim_start_matches("# ").split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let (Some(sv), Some(status)) = (column("svname"), column("status")) else {
            return String::new();
        };
        let name = format!("echo{n}");
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|fields| fields.get(sv) == Some(&name.as_str()))
            .and_then(|fields| fields.get(status).map(|s| s.to_string()))
            .unwrap_or_default()
    }

    /// Waits (within [`DEADLINE`]) until server `echoN` has `status`.
    fn wait_for(&self, n: usize, status: &str) {
        eventually(|| match self.status(n) {
            now if now == status => Ok(()),
            now => Err(format!("echo{n} is {now:?}, not {status}:\n{}", self.process.log())),
        });
    }
}

/// How a client session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Every reply, then the server's end after the client's.
    Done,
    /// The server ended the session cleanly (FIN) after this many complete
    /// replies.
    Ended(usize),
    /// Cut: a reset, or an end in the middle of a reply.
    Cut(String),
    /// A reply that is not the echo of what was sent: never acceptable.
    Wrong(String),
}

/// A client session: when it started and ended, which instance served it
/// (if it got as far as a reply), and how it ended.
#[derive(Debug, Clone)]
struct Session {
    started: Instant,
    ended: Instant,
    instance: Option<usize>,
    outcome: Outcome,
}

/// One session of [`ROUNDS`] round trips through `frontend`.
fn session(frontend: SocketAddr, id: u64) -> Session {
    let started = Instant::now();
    let mut instance = None;
    let outcome = run_session(frontend, id, &mut instance);
    Session { started, ended: Instant::now(), instance, outcome }
}

fn run_session(frontend: SocketAddr, id: u64, instance: &mut Option<usize>) -> Outcome {
    let mut stream = match TcpStream::connect_timeout(&frontend, DEADLINE) {
        Ok(stream) => stream,
        Err(e) => return Outcome::Cut(format!("connect to HAProxy: {e}")),
    };
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0; 4096];
    for round in 0..ROUNDS {
        let message = format!("session {id} round {round}\n").into_bytes();
        if let Err(e) = stream.write_all(&message) {
            return Outcome::Cut(format!("write: {e}"));
        }
        let mut reply = Vec::new();
        loop {
            if instance.is_none() && reply.len() >= prefix(1).len() {
                match (1..=3).find(|&n| reply.starts_with(&prefix(n))) {
                    Some(n) => *instance = Some(n),
                    None => return Outcome::Wrong(format!("{reply:?} from no instance")),
                }
            }
            if let Some(n) = *instance {
                let prefix = prefix(n);
                if check_segments(&reply, &prefix, &message).is_ok() {
                    break;
                }
                // Longer than the reply could be, were each byte a chunk.
                if reply.len() >= message.len() * (prefix.len() + 1) {
                    return Outcome::Wrong(format!("{reply:?} for {message:?}"));
                }
            }
            match stream.read(&mut buf) {
                Ok(0) if reply.is_empty() => return Outcome::Ended(round),
                Ok(0) => return Outcome::Cut(format!("end of stream in a reply: {reply:?}")),
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Outcome::Cut(format!("reset after {round} replies"));
                }
                Err(e) => return Outcome::Cut(format!("read: {e}")),
            }
        }
        thread::sleep(Duration::from_millis(3));
    }
    let _ = stream.shutdown(Shutdown::Write);
    match stream.read(&mut buf) {
        Ok(0) => Outcome::Done,
        Ok(n) => Outcome::Wrong(format!("{:?} after the last reply", &buf[..n])),
        Err(e) => Outcome::Cut(format!("at the end: {e}")),
    }
}

/// Clients that keep running sessions until stopped, and what they saw.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<thread::JoinHandle<()>>,
    sessions: Arc<Mutex<Vec<Session>>>,
}

impl Load {
    fn start(frontend: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let ids = Arc::new(AtomicU64::new(0));
        let clients = (0..CLIENTS)
            .map(|_| {
                let (stop, sessions, ids) = (stop.clone(), sessions.clone(), ids.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let record = session(frontend, ids.fetch_add(1, Ordering::Relaxed));
                        sessions.lock().unwrap().push(record);
                    }
                })
            })
            .collect();
        Load { stop, clients, sessions }
    }

    fn stop(self) -> Vec<Session> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().unwrap();
        }
        Arc::try_unwrap(self.sessions).unwrap().into_inner().unwrap()
    }
}

/// B1: one instance killed, one drained, the first back: no reply is ever
/// wrong; new sessions always succeed; the only sessions cut are those the
/// killed instance had open; the drained instance's sessions end cleanly
/// and it exits 0; the instance that comes back takes sessions again.
#[test]
fn b01_clients_ride_through_a_kill_a_drain_and_a_return() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        eprintln!("skipped: haproxy is not installed (.ci/run installs it)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("echo-balancer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut instances: Vec<Instance> =
        (1..=3).map(|n| Instance::start(n, "127.0.0.1:0", "127.0.0.1:0")).collect();
    let balancer = Balancer::start(&instances, &dir);
    let load = Load::start(balancer.frontend);
    thread::sleep(Duration::from_secs(1));

    // Killed: its open sessions are cut; new ones go to the others. It is
    // gone once it has been reaped: until then the kernel may still take
    // connections into its backlog, which its end then cuts.
    let killed_at = Instant::now();
    instances[0].server.signal(Signal::KILL);
    assert!(instances[0].server.wait_exit(DEADLINE).is_some());
    let gone_at = Instant::now();
    balancer.wait_for(1, "DOWN");
    thread::sleep(Duration::from_secs(1));

    // Drained: HAProxy sees /readyz say so and sends it no one new; its
    // open sessions finish; it exits 0.
    instances[1].server.signal(Signal::TERM);
    balancer.wait_for(2, "NOLB");
    let status = instances[1].server.wait_exit(DEADLINE).expect("the drained instance exits");
    assert!(status.success(), "{status:?}\n{}", instances[1].server.log());

    // Back, on the same addresses: HAProxy sees it ready, and it takes
    // sessions again.
    let (listen, metrics) = (instances[0].listen.to_string(), instances[0].metrics.to_string());
    instances[0] = Instance::start(1, &listen, &metrics);
    let back_at = Instant::now();
    balancer.wait_for(1, "UP");
    thread::sleep(Duration::from_secs(1));
    let sessions = load.stop();

    let (_, figures) = get(instances[0].metrics, "/metrics");
    let accepted = sample(&figures, "echo_connections_accepted_total", &[]);
    let count = |f: &dyn Fn(&Session) -> bool| sessions.iter().filter(|s| f(s)).count();
    let done = |n: usize| count(&|s| s.instance == Some(n) && s.outcome == Outcome::Done);
    let cut_by_kill = count(&|s| {
        matches!(s.outcome, Outcome::Cut(_) | Outcome::Ended(_)) && s.instance != Some(2)
    });
    let drained = count(&|s| s.instance == Some(2) && matches!(s.outcome, Outcome::Ended(_)));
    println!(
        "sessions: {} in all; done by echo1 {}, echo2 {}, echo3 {}; cut by the kill {cut_by_kill}; \
         ended by echo2's drain {drained}; echo1 back took {accepted} connections",
        sessions.len(),
        done(1),
        done(2),
        done(3)
    );

    for s in &sessions {
        let context = format!("{s:?}, killed {:?} in", s.started.checked_duration_since(killed_at));
        match &s.outcome {
            Outcome::Wrong(what) => panic!("a wrong reply: {what} ({context})"),
            Outcome::Done => {}
            // echo2 drained: a clean end, never a cut.
            Outcome::Ended(_) if s.instance == Some(2) => {}
            Outcome::Cut(_) if s.instance == Some(2) => panic!("echo2's session cut: {context}"),
            // Only sessions open on echo1 while it was killed: never one of
            // echo3's, never one started once it was gone.
            Outcome::Cut(_) | Outcome::Ended(_) => {
                assert!(matches!(s.instance, None | Some(1)), "a survivor's session: {context}");
                assert!(s.started < gone_at && s.ended >= killed_at, "{context}");
            }
        }
    }
    assert!(done(3) > 0 && done(2) > 0, "every instance served");
    assert!(accepted > 0.0, "echo1, back, took no connection:\n{figures}");
    assert!(
        sessions.iter().any(|s| s.instance == Some(1) && s.started > back_at),
        "no session reached echo1 once it was back"
    );
    drop(balancer);
    let _ = std::fs::remove_dir_all(&dir);
}
