//! A server under test or under load: a child process whose output is
//! collected line by line, killed when dropped.

use crate::procfs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The line a server prints once it listens: `listening on <ip>:<port>`.
pub const ANNOUNCEMENT: &str = "listening on ";

/// A running child process and everything it has printed.
pub struct Process {
    child: Child,
    output: Arc<Output>,
}

struct Output {
    state: Mutex<State>,
    /// Notified at each new line, and as each pipe closes.
    changed: Condvar,
}

struct State {
    lines: Vec<String>,
    /// Pipes still open: 0 once the process and anything it left have
    /// closed their output.
    open: usize,
}

impl Process {
    /// Starts `command` with an empty stdin, and its stdout and stderr
    /// collected.
    pub fn spawn(mut command: Command) -> Process {
        command.stdin(Stdio::null());
        Process::start(command)
    }

    /// Like [`Process::spawn`], with a pipe for stdin ([`Process::stdin`]).
    pub fn spawn_with_stdin(mut command: Command) -> Process {
        command.stdin(Stdio::piped());
        Process::start(command)
    }

    fn start(mut command: Command) -> Process {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let state = Mutex::new(State { lines: Vec::new(), open: 2 });
        let output = Arc::new(Output { state, changed: Condvar::new() });
        // Both pipes are drained for the life of the process: a server
        // blocked on a full pipe would look like a hung server.
        collect(child.stdout.take().unwrap(), output.clone());
        collect(child.stderr.take().unwrap(), output.clone());
        Process { child, output }
    }

    /// Starts `command` and waits up to `timeout` for it to announce where it
    /// listens ([`ANNOUNCEMENT`]); returns it with that address.
    pub fn listening(command: Command, timeout: Duration) -> (Process, SocketAddr) {
        let process = Process::spawn(command);
        let addr = process.announced(timeout);
        (process, addr)
    }

    /// Waits up to `timeout` for the process to announce where it listens
    /// ([`ANNOUNCEMENT`]), and returns that address.
    pub fn announced(&self, timeout: Duration) -> SocketAddr {
        let line = self
            .wait_for_line(ANNOUNCEMENT, timeout)
            .unwrap_or_else(|| panic!("the server never said where it listens:\n{}", self.log()));
        let addr = line.rsplit(ANNOUNCEMENT).next().unwrap().trim();
        addr.parse().unwrap_or_else(|_| panic!("not an address: {line:?}"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's stdin, if it was started with `Stdio::piped()`.
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.child.stdin.as_mut()
    }

    /// Closes the process's stdin, if it has one.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Waits up to `timeout` for a line containing `needle`, and returns it.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.wait_for_lines(needle, 1, timeout).map(|mut lines| lines.remove(0))
    }

    /// Waits up to `timeout` until `count` lines contain `needle`; gives up
    /// early if the process has closed its output.
    pub fn wait_for_lines(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut state = self.output.state.lock().unwrap();
        loop {
            let found: Vec<String> =
                state.lines.iter().filter(|l| l.contains(needle)).cloned().collect();
            if found.len() >= count {
                return Some(found);
            }
            if state.open == 0 {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self.output.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Everything printed so far, stdout and stderr interleaved by line.
    pub fn log(&self) -> String {
        self.output.state.lock().unwrap().lines.join("\n")
    }

    /// How many lines so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.output.state.lock().unwrap().lines.iter().filter(|l| l.contains(needle)).count()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits up to `timeout` for the process to exit, and for its output
    /// to be read to the end.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        };
        // The pipes may outlive the process a moment (a child it left).
        let settled = Instant::now() + SETTLE;
        let mut state = self.output.state.lock().unwrap();
        while state.open > 0 {
            let Some(left) = settled.checked_duration_since(Instant::now()) else { break };
            state = self.output.changed.wait_timeout(state, left).unwrap().0;
        }
        Some(status)
    }

    /// Runs until exit (within `timeout`, else it is killed and this
    /// panics), and returns its exit status and output.
    pub fn run_to_exit(command: Command, timeout: Duration) -> (ExitStatus, String) {
        let mut process = Process::spawn(command);
        match process.wait_exit(timeout) {
            Some(status) => (status, process.log()),
            None => panic!("still running after {timeout:?}:\n{}", process.log()),
        }
    }

    /// CPU time the process has used so far, every thread's.
    pub fn cpu_time(&self) -> Duration {
        procfs::cpu_time(self.pid())
    }

    /// Resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        procfs::rss_kib(self.pid())
    }

    /// Descriptors open.
    pub fn open_fds(&self) -> usize {
        procfs::open_fds(self.pid())
    }
}

/// How long output may trail the exit of a process whose deadline is past.
const SETTLE: Duration = Duration::from_secs(5);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(pipe: impl Read + Send + 'static, output: Arc<Output>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            output.state.lock().unwrap().lines.push(line);
            output.changed.notify_all();
        }
        output.state.lock().unwrap().open -= 1;
        output.changed.notify_all();
    });
}
