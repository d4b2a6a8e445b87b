//! The servers compared, started as processes on a port the system picks.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Native, Kind::Seed, Kind::Host, Kind::Stock];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Native => "native (mio)",
            Kind::Seed => "Python seed",
            Kind::Host => "guest, echo-host",
            Kind::Stock => "guest, wasmtime run",
            Kind::Floor => "minimal guest, echo-host",
        }
    }

    /// The command that starts this server on 127.0.0.1, port 0.
    pub fn command(self) -> Command {
        let root = workspace_root();
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
            Kind::Host => Command::new(target.join("echo-host")),
            Kind::Floor => {
                let mut c = Command::new(target.join("echo-host"));
                c.arg("--component").arg(floor_component());
                c
            }
            Kind::Stock => {
                let mut c = Command::new("wasmtime");
                c.args(["run", "-S", "inherit-network"]);
                c.arg(root.join("target/guest/wasm32-wasip2/release/echo_guest.wasm"));
                c
            }
        };
        command.args(["--listen", "127.0.0.1:0"]);
        command
    }
}

/// The workspace this crate belongs to.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ is in the workspace").into()
}

/// The minimal guest of `bench/floor`, built for `wasm32-wasip2` on first
/// use, in a target directory of its own so as not to wait on the lock of
/// the build running the benchmark.
fn floor_component() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root();
        let target_dir = root.join("target/floor");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&root)
            .args(["build", "--release", "--package", "echo-floor", "--target", "wasm32-wasip2"])
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .stdout(Stdio::null())
            .status()
            .expect("run cargo");
        assert!(status.success(), "building bench/floor for wasm32-wasip2 failed");
        target_dir.join("wasm32-wasip2/release/echo-floor.wasm")
    })
}

/// A server process, killed when dropped.
pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts `kind` and waits until it says where it listens.
    pub fn start(kind: Kind) -> io::Result<Server> {
        let mut child = kind
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("start {}: {e}", kind.name())))?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                return Err(io::Error::other(format!("{} exited before listening", kind.name())));
            };
            if let Some(addr) = line?.split("listening on ").nth(1) {
                break addr.trim().parse().map_err(io::Error::other)?;
            }
        };
        // Drain the log (one line per connection), or the server would block
        // on a full pipe.
        thread::spawn(move || for _ in lines {});
        Ok(Server { kind, addr, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Time from starting `kind` to its first echoed reply.
pub fn startup(kind: Kind) -> io::Result<Duration> {
    use std::io::{Read, Write};
    // The port must be known before the server starts: take one the system
    // hands out, and give it back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let command = kind.command();
    let args: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let program = command.get_program().to_owned();
    let mut command = Command::new(program);
    command.args(&args[..args.len() - 2]).args(["--listen", &addr.to_string()]);
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
