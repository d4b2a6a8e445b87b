//! The servers compared, started as processes on a port the system picks.

use echo_testkit::Process;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The servers the benchmark compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The single-threaded mio server in this crate.
    Native,
    /// The tutorial's Python generator scheduler, completed.
    Seed,
    /// The echo guest under `echo-host`.
    Host,
    /// The echo guest under the stock `wasmtime run`.
    Stock,
    /// The least a WASI 0.2 guest can do per request (`bench/floor`), under
    /// `echo-host`: a yardstick, not one of the servers compared.
    Floor,
    /// The same echo written on `wstd` (`bench/wstd`), under `echo-host`: the
    /// peer a user would write instead of a scheduler of their own.
    Wstd,
    /// The `wstd` peer under the stock `wasmtime run`.
    WstdStock,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Native, Kind::Seed, Kind::Host, Kind::Stock];

    /// The peer guest, written on `wstd`, with the echo guest on the same
    /// runtime: measured at 64 B in the rounds through every cell, and idle.
    pub const PEERS: [(Kind, Kind); 2] = [(Kind::Wstd, Kind::Host), (Kind::WstdStock, Kind::Stock)];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Native => "native (mio)",
            Kind::Seed => "Python seed",
            Kind::Host => "guest, echo-host",
            Kind::Stock => "guest, wasmtime run",
            Kind::Floor => "minimal guest, echo-host",
            Kind::Wstd => "wstd guest, echo-host",
            Kind::WstdStock => "wstd guest, wasmtime run",
        }
    }

    /// The command that starts this server on 127.0.0.1, port 0, with one
    /// guest under `echo-host`, as every other server here has one thread.
    pub fn command(self) -> Command {
        self.command_with_workers(1)
    }

    /// Like [`Kind::command`], with `workers` guests under `echo-host` (the
    /// other servers have one thread whatever this says).
    pub fn command_with_workers(self, workers: usize) -> Command {
        let workers = workers.to_string();
        let root = echo_testkit::workspace_root();
        let target = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from))
            .unwrap_or_else(|| root.join("target/release"));
        let mut command = match self {
            Kind::Native => {
                let mut c = Command::new(std::env::current_exe().expect("own path"));
                c.arg("native-server");
                c
            }
            Kind::Seed => {
                let mut c = Command::new("python3");
                c.arg(root.join("bench/seed_server.py"));
                c
            }
            Kind::Host => {
                let mut c = Command::new(target.join("echo-host"));
                c.args(["--workers", &workers]);
                c
            }
            Kind::Floor | Kind::Wstd => {
                let mut c = Command::new(target.join("echo-host"));
                c.args(["--workers", &workers, "--component"]).arg(self.component());
                if self == Kind::Wstd {
                    // The standard library's hash maps, which wstd's reactor
                    // uses, ask for `wasi:random/insecure-seed`.
                    c.arg("--allow-random");
                }
                c
            }
            Kind::Stock | Kind::WstdStock => {
                let mut c = Command::new("wasmtime");
                c.args(["run", "-S", "inherit-network"]);
                c.arg(self.component());
                c
            }
        };
        command.args(["--listen", "127.0.0.1:0"]);
        command
    }

    /// The component a guest server runs: the echo guest as shipped, or a
    /// benchmark's own guest (`bench/floor`, `bench/wstd`), built for
    /// `wasm32-wasip2` on first use.
    fn component(self) -> &'static Path {
        static FLOOR: OnceLock<PathBuf> = OnceLock::new();
        static WSTD: OnceLock<PathBuf> = OnceLock::new();
        let built = |cell: &'static OnceLock<PathBuf>, package: &str| -> &'static Path {
            cell.get_or_init(|| {
                echo_testkit::wasm::build(package, "bench-guests").join(format!("{package}.wasm"))
            })
        };
        match self {
            Kind::Floor => built(&FLOOR, "echo-floor"),
            Kind::Wstd | Kind::WstdStock => built(&WSTD, "echo-wstd"),
            _ => Path::new(echo_guest_wasm::ECHO_GUEST_PATH),
        }
    }
}

/// A server process, killed when dropped.
pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    process: Process,
}

impl Server {
    /// Starts `kind` and waits until it says where it listens.
    pub fn start(kind: Kind) -> Server {
        Server::start_workers(kind, 1)
    }

    /// Starts `kind` with `workers` guests (see [`Kind::command_with_workers`]).
    pub fn start_workers(kind: Kind, workers: usize) -> Server {
        let command = kind.command_with_workers(workers);
        let (process, addr) = Process::listening(command, Duration::from_secs(60));
        Server { kind, addr, process }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// Time from starting `kind`, with `extra` arguments, to its first echoed
/// reply.
pub fn startup(kind: Kind, extra: &[&std::ffi::OsStr]) -> io::Result<Duration> {
    use std::io::{Read, Write};
    // The port must be known before the server starts: take one the system
    // hands out, and give it back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let command = kind.command();
    let args: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let program = command.get_program().to_owned();
    let mut command = Command::new(program);
    command.args(&args[..args.len() - 2]).args(extra).args(["--listen", &addr.to_string()]);
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn()?;
    let took = loop {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            return Err(io::Error::other(format!("{} did not answer within 30 s", kind.name())));
        }
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            stream.write_all(b"x")?;
            let mut reply = [0; 5];
            if stream.read_exact(&mut reply).is_ok() {
                break started.elapsed();
            }
        }
        thread::sleep(Duration::from_micros(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok(took)
}
