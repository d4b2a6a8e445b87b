//! The component's `wasi:cli/run` export: arguments and environment in,
//! [`server::run`] on the runtime, exit status out.

use crate::{runtime, server};
use clap::Parser;
use echo_settings::GuestCommand;

/// Bindings for `wit/world.wit`. Every import is mapped onto the `wasip2`
/// crate, so only the `wasi:cli/run` export is generated here.
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "echo-server",
        with: {
            "wasi:cli/environment@0.2.12": wasip2::cli::environment,
            "wasi:cli/exit@0.2.12": wasip2::cli::exit,
            "wasi:cli/stdin@0.2.12": wasip2::cli::stdin,
            "wasi:cli/stdout@0.2.12": wasip2::cli::stdout,
            "wasi:cli/stderr@0.2.12": wasip2::cli::stderr,
            "wasi:cli/terminal-input@0.2.12": wasip2::cli::terminal_input,
            "wasi:cli/terminal-output@0.2.12": wasip2::cli::terminal_output,
            "wasi:cli/terminal-stdin@0.2.12": wasip2::cli::terminal_stdin,
            "wasi:cli/terminal-stdout@0.2.12": wasip2::cli::terminal_stdout,
            "wasi:cli/terminal-stderr@0.2.12": wasip2::cli::terminal_stderr,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
            "wasi:sockets/network@0.2.12": wasip2::sockets::network,
            "wasi:sockets/instance-network@0.2.12": wasip2::sockets::instance_network,
            "wasi:sockets/tcp@0.2.12": wasip2::sockets::tcp,
            "wasi:sockets/tcp-create-socket@0.2.12": wasip2::sockets::tcp_create_socket,
        },
    });
}

struct Component;

impl bindings::exports::wasi::cli::run::Guest for Component {
    fn run() -> Result<(), ()> {
        // Arguments, and `ECHO_*` environment variables for what they leave unset.
        let command = match GuestCommand::try_parse() {
            Ok(command) => command,
            Err(e) => {
                // `--help` and `--version` are errors to clap, printed to stdout.
                let _ = e.print();
                return if e.use_stderr() { Err(()) } else { Ok(()) };
            }
        };
        runtime::block_on(server::run(command.into())).map_err(|e| eprintln!("echo: {e}"))
    }
}

bindings::export!(Component with_types_in bindings);
