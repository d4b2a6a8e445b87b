//! The component's `wasi:cli/run` export: arguments and environment in,
//! the handler configured, [`server::run`] on the runtime, exit status out;
//! and the imported handler as the server sees one (`imported`), or with
//! the `monolithic` feature the `GOT:` protocol built in (`builtin`).

use crate::{runtime, server};
use clap::Parser;
use echo_settings::GuestCommand;

/// Bindings for a world of `wit/world.wit`: `server-core`, or with the
/// `monolithic` feature `echo-server`, which imports no handler. Every WASI
/// import is mapped onto the `wasip2` crate, so only the `wasi:cli/run`
/// export and the handler import are generated here.
macro_rules! bindings {
    ($world:literal; $($more:tt)*) => {
        wit_bindgen::generate!({
            path: ["../wit/handler", "../wit"],
            world: $world,
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
                $($more)*
            },
        });
    };
}

#[cfg(not(feature = "monolithic"))]
mod bindings {
    bindings!("echo:server/server-core"; "echo:handler/handler@0.1.0": generate,);
}

#[cfg(feature = "monolithic")]
mod bindings {
    bindings!("echo:server/echo-server";);
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
        let config: crate::config::Config = command.into();
        let handler = match handler::configure(&config.settings) {
            Ok(handler) => handler,
            Err(e) => {
                eprintln!("echo: the handler refuses its settings: {e}");
                return Err(());
            }
        };
        runtime::block_on(server::run(config, handler)).map_err(|e| eprintln!("echo: {e}"))
    }
}

bindings::export!(Component with_types_in bindings);

#[cfg(not(feature = "monolithic"))]
use imported as handler;

#[cfg(feature = "monolithic")]
use builtin as handler;

/// The handler this component imports, as the server sees one.
#[cfg(not(feature = "monolithic"))]
mod imported {
    use super::bindings::echo::handler::handler as wit;
    use crate::runtime::time::Instant;
    use crate::session::{self, CloseReason, Then, Verdict};
    use std::net::SocketAddr;
    use std::time::Duration;

    /// Hands the settings to the handler.
    pub fn configure(settings: &[(String, String)]) -> Result<Imported, String> {
        wit::configure(settings).map(|()| Imported)
    }

    /// The imported handler.
    pub struct Imported;

    impl session::Handler for Imported {
        type Session = wit::Session;

        fn accept(&self, peer: SocketAddr) -> Result<(wit::Session, Verdict), String> {
            let (session, greeting) = wit::accept(&peer.to_string(), now())?;
            Ok((session, greeting.into()))
        }
    }

    impl session::Session for wit::Session {
        fn data(&mut self, chunk: &[u8]) -> Verdict {
            wit::Session::data(self, chunk, now()).into()
        }

        fn finished(&mut self) -> Verdict {
            wit::Session::finished(self, now()).into()
        }

        fn closed(self, reason: CloseReason) {
            wit::Session::closed(&self, reason.into());
        }
    }

    /// The time handed to the handler: the scheduler's, read after its last
    /// `poll`, which costs no call.
    fn now() -> u64 {
        Instant::recent().as_nanos()
    }

    impl From<wit::Verdict> for Verdict {
        fn from(verdict: wit::Verdict) -> Verdict {
            let then = match verdict.then {
                wit::Then::Read => Then::Read,
                wit::Then::ReadAfter(nanos) => Then::ReadAfter(Duration::from_nanos(nanos)),
                wit::Then::Close => Then::Close,
                wit::Then::Abort => Then::Abort,
            };
            Verdict { reply: verdict.reply, then }
        }
    }

    impl From<CloseReason> for wit::CloseReason {
        fn from(reason: CloseReason) -> wit::CloseReason {
            match reason {
                CloseReason::Finished => wit::CloseReason::Finished,
                CloseReason::Closed => wit::CloseReason::Closed,
                CloseReason::Aborted => wit::CloseReason::Aborted,
                CloseReason::Reset => wit::CloseReason::Reset,
                CloseReason::IdleTimeout => wit::CloseReason::IdleTimeout,
                CloseReason::StallTimeout => wit::CloseReason::StallTimeout,
                CloseReason::Shutdown => wit::CloseReason::Shutdown,
            }
        }
    }
}

/// The `GOT:` protocol built in, as the echo server was before handlers:
/// the benchmark's baseline for the composed server.
#[cfg(feature = "monolithic")]
mod builtin {
    use crate::session::{self, CloseReason, Then, Verdict};
    use std::net::SocketAddr;
    use std::rc::Rc;

    pub struct Prefix(Rc<[u8]>);

    /// Takes `prefix` alone, as the prefix handler does.
    pub fn configure(settings: &[(String, String)]) -> Result<Prefix, String> {
        match settings {
            [] => Ok(Prefix(b"GOT:".as_slice().into())),
            [(key, prefix)] if key == "prefix" => Ok(Prefix(prefix.as_bytes().into())),
            _ => Err(format!("unknown settings {settings:?} (prefix takes: prefix)")),
        }
    }

    impl session::Handler for Prefix {
        type Session = Rc<[u8]>;

        fn accept(&self, _peer: SocketAddr) -> Result<(Rc<[u8]>, Verdict), String> {
            Ok((self.0.clone(), Verdict::read()))
        }
    }

    impl session::Session for Rc<[u8]> {
        fn data(&mut self, chunk: &[u8]) -> Verdict {
            Verdict { reply: [&self[..], chunk].concat(), then: Then::Read }
        }

        fn finished(&mut self) -> Verdict {
            Verdict { reply: Vec::new(), then: Then::Close }
        }

        fn closed(self, _reason: CloseReason) {}
    }
}
