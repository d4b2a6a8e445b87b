//! A server under test: a child process on port 0, its output collected,
//! killed when dropped.

use super::DEADLINE;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The host binary under test.
pub const ECHO_HOST: &str = env!("CARGO_BIN_EXE_echo-host");

/// The echo guest the host embeds, for running under the stock CLI.
pub const ECHO_GUEST_WASM: &str = env!("ECHO_GUEST_WASM");

/// A running server and everything it has printed.
pub struct Server {
    child: Child,
    /// The address the server announced with `listening on <addr>`.
    pub addr: SocketAddr,
    output: Arc<Output>,
}

#[derive(Default)]
struct Output {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Server {
    /// `echo-host` on 127.0.0.1, port 0, with `args` added.
    pub fn host(args: &[&str]) -> Server {
        let mut command = Command::new(ECHO_HOST);
        command.args(["--listen", "127.0.0.1:0"]).args(args);
        Server::start(command)
    }

    /// The echo guest under the stock `wasmtime run -S inherit-network`,
    /// with `args` for the guest.
    pub fn stock(args: &[&str]) -> Server {
        let mut command = Command::new(stock_wasmtime());
        command
            .args(["run", "-S", "inherit-network", ECHO_GUEST_WASM, "--listen", "127.0.0.1:0"])
            .args(args);
        Server::start(command)
    }

    /// Starts `command` and waits until it says where it listens.
    pub fn start(command: Command) -> Server {
        let (child, output) = spawn(command);
        let mut server = Server { child, addr: "0.0.0.0:0".parse().unwrap(), output };
        let line = server
            .wait_for_line("listening on ", DEADLINE)
            .unwrap_or_else(|| panic!("the server never said where it listens:\n{}", server.log()));
        let addr = line.rsplit("listening on ").next().unwrap().trim();
        server.addr = addr.parse().unwrap_or_else(|_| panic!("not an address: {line:?}"));
        server
    }

    /// Starts `command` without waiting for it to listen anywhere.
    pub fn start_unannounced(command: Command) -> Server {
        let (child, output) = spawn(command);
        Server { child, addr: "0.0.0.0:0".parse().unwrap(), output }
    }

    /// Waits up to `timeout` for a line containing `needle`, and returns it.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.wait_for_lines(needle, 1, timeout).map(|mut lines| lines.remove(0))
    }

    /// Waits up to `timeout` until `count` lines contain `needle`.
    pub fn wait_for_lines(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.output.lines.lock().unwrap();
        loop {
            let found: Vec<String> = lines.iter().filter(|l| l.contains(needle)).cloned().collect();
            if found.len() >= count {
                return Some(found);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.output.changed.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Everything printed so far, stdout and stderr interleaved by line.
    pub fn log(&self) -> String {
        self.output.lines.lock().unwrap().join("\n")
    }

    /// How many lines so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.output.lines.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// How many descriptors the server has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap().count()
    }

    /// CPU time the server has used so far (user and system).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // The kernel's USER_HZ is 100 on every Linux this runs on.
        Duration::from_millis(ticks * 10)
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits up to `timeout` for the server to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` to completion (within [`DEADLINE`]) and returns its exit
/// status and output.
pub fn run_to_exit(command: Command) -> (ExitStatus, String) {
    let (mut child, output) = spawn(command);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "still running after {DEADLINE:?}:\n{}",
                output.lines.lock().unwrap().join("\n")
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    // The pipes close with the process; give the readers a moment to finish.
    let closed = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&output) > 1 && Instant::now() < closed {
        thread::sleep(Duration::from_millis(5));
    }
    let lines = output.lines.lock().unwrap().join("\n");
    (status, lines)
}

fn spawn(mut command: Command) -> (Child, Arc<Output>) {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    let output = Arc::new(Output::default());
    // Both pipes are drained for the life of the process: a server blocked
    // on a full stdout pipe would look like a hung server.
    collect(child.stdout.take().unwrap(), output.clone());
    collect(child.stderr.take().unwrap(), output.clone());
    (child, output)
}

fn collect(pipe: impl Read + Send + 'static, output: Arc<Output>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            output.lines.lock().unwrap().push(line);
            output.changed.notify_all();
        }
    });
}

/// The stock `wasmtime` CLI: `$WASMTIME`, else `wasmtime` on the `PATH`.
pub fn stock_wasmtime() -> PathBuf {
    if let Some(path) = std::env::var_os("WASMTIME") {
        return path.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("wasmtime")).find(|p| p.is_file())
    });
    found.expect(
        "the stock wasmtime CLI is needed for these tests: put it on PATH or set WASMTIME \
         (the README's test command installs it)",
    )
}
