//! A server under test: `echo-host`, or the guest under the stock CLI, as a
//! child process on port 0 ([`echo_testkit::Process`]).

use super::DEADLINE;
use echo_testkit::Process;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::process::{Command, ExitStatus};

/// The host binary under test.
pub const ECHO_HOST: &str = env!("CARGO_BIN_EXE_echo-host");

/// A command that runs `echo-host` with one worker, as the suites test it
/// unless a test says `--workers` (a flag wins over the environment).
pub fn host_command() -> Command {
    let mut command = Command::new(ECHO_HOST);
    command.env("ECHO_WORKERS", "1");
    command
}

/// The echo guest the host embeds, for running under the stock CLI.
pub const ECHO_GUEST_WASM: &str = echo_guest_wasm::ECHO_GUEST_PATH;

/// A running server, the address it announced, and everything it printed.
pub struct Server {
    process: Process,
    /// The address the server announced with `listening on <addr>`.
    pub addr: SocketAddr,
}

impl Server {
    /// `echo-host` on 127.0.0.1, port 0, with `args` added.
    pub fn host(args: &[&str]) -> Server {
        let mut command = host_command();
        command.args(["--listen", "127.0.0.1:0"]).args(args);
        Server::start(command)
    }

    /// The echo guest under the stock `wasmtime run -S inherit-network`,
    /// with `args` for the guest.
    pub fn stock(args: &[&str]) -> Server {
        Server::start(stock_command(args))
    }

    /// Starts `command` and waits until it says where it listens.
    pub fn start(command: Command) -> Server {
        let (process, addr) = Process::listening(command, DEADLINE);
        Server { process, addr }
    }

    /// A server already started, once it has said where it listens.
    pub fn announced(process: Process) -> Server {
        let addr = process.announced(DEADLINE);
        Server { process, addr }
    }
}

impl Deref for Server {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// The echo guest under the stock CLI on 127.0.0.1, port 0, with `args`.
pub fn stock_command(args: &[&str]) -> Command {
    stock_command_with(&[], args)
}

/// Like [`stock_command`], with `options` for `wasmtime run` itself.
pub fn stock_command_with(options: &[&str], args: &[&str]) -> Command {
    let wasmtime = echo_testkit::stock_wasmtime().expect(
        "the stock wasmtime CLI is needed for these tests: put it on PATH or set WASMTIME \
         (the README's test command installs it)",
    );
    let mut command = Command::new(wasmtime);
    command.args(["run", "-S", "inherit-network"]).args(options);
    command.args([ECHO_GUEST_WASM, "--listen", "127.0.0.1:0"]).args(args);
    command
}

/// Runs `command` to its end (within [`DEADLINE`]), and returns its exit
/// status and output.
pub fn run_to_exit(command: Command) -> (ExitStatus, String) {
    Process::run_to_exit(command, DEADLINE)
}
