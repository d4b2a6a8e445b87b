//! The command line, and the plain settings it makes for the layers below.
//!
//! The service's own flags (`--listen`, `--prefix`, the connection limits)
//! come from `echo-settings`, the definition the guest parses its arguments
//! with; the host adds what only a host can do. Everything is checked here,
//! before anything starts.

use crate::guest::CodeCache;
use crate::handler::{self, HandlerLimits, OnFailure};
use crate::limits::{self, Limits};
use crate::sandbox::Extras;
use crate::supervisor::{Handler, Launch, Policy, Restart};
use crate::wasi::grant::{self, Grant};
use crate::watchdog;
use clap::builder::BoolishValueParser;
use clap::{CommandFactory, Parser};
use echo_settings::{GuestCommand, Service, Span};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

/// How the host writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people, in colour on a terminal (unless `NO_COLOR` is set).
    Text,
    /// A JSON object a line, with the event's fields and its span's.
    Json,
}

/// Serve TCP from a sandboxed WebAssembly component: by default the
/// embedded echo server, which answers every chunk with `GOT:` + chunk.
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Every option can also be set in the environment, as shown. \
                  Durations are written 250ms, 30s, 5m or 1h; a bare number is seconds. \
                  A switch set in the environment takes true or false, 1 or 0, yes or no, on or off."
)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub service: Service,

    /// Let the guest bind and listen, itself, on any address and port in
    /// this network (CIDR, or one address); may be given more than once.
    /// `--listen` needs none of this: the host binds it for the guest.
    #[arg(
        long,
        value_name = "CIDR",
        env = "ECHO_ALLOW_LISTEN",
        value_delimiter = ',',
        value_parser = grant::parse_network
    )]
    pub allow_listen: Vec<IpNet>,

    /// Let the guest connect to this network (CIDR, or one address); may be
    /// given more than once. None by default.
    #[arg(
        long,
        value_name = "CIDR",
        env = "ECHO_ALLOW_CONNECT",
        value_delimiter = ',',
        value_parser = grant::parse_network
    )]
    pub allow_connect: Vec<IpNet>,

    /// Accept clients from this network only (CIDR, or one address); may be
    /// given more than once. Others are reset as they are accepted.
    /// Everyone by default.
    #[arg(
        long,
        value_name = "CIDR",
        env = "ECHO_ALLOW_PEERS",
        value_delimiter = ',',
        value_parser = grant::parse_network
    )]
    pub allow_peers: Vec<IpNet>,

    /// Link `wasi:random` too, for components whose language runtime asks
    /// for it; the echo guest does not.
    #[arg(long, env = "ECHO_ALLOW_RANDOM", value_parser = BoolishValueParser::new())]
    pub allow_random: bool,

    /// Guest instances serving the listeners together, each on a thread of
    /// its own [default: the cores this process may use, at most
    /// --max-connections].
    #[arg(long, value_name = "N", env = "ECHO_WORKERS")]
    pub workers: Option<NonZeroUsize>,

    /// The most linear memory the guests may have together, in MiB; each
    /// worker gets an even share.
    #[arg(
        long,
        value_name = "MIB",
        env = "ECHO_MAX_MEMORY",
        default_value_t = limits::MAX_MEMORY_MIB,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_memory: u64,

    /// Stop a guest that runs this long without returning to the host.
    #[arg(
        long,
        value_name = "DURATION",
        env = "ECHO_CPU_LIMIT",
        default_value_t = Span(watchdog::CPU_LIMIT),
        value_parser = Span::positive
    )]
    pub cpu_limit: Span,

    /// Restart a guest that traps: always, never, or at most N times in a row.
    #[arg(long, value_name = "POLICY", env = "ECHO_RESTART", default_value_t = Restart::Always)]
    pub restart: Restart,

    /// On SIGINT or SIGTERM, how long open connections may take to finish.
    #[arg(
        long,
        value_name = "DURATION",
        env = "ECHO_GRACE_PERIOD",
        default_value_t = Span(crate::supervisor::GRACE_PERIOD)
    )]
    pub grace_period: Span,

    /// On SIGINT or SIGTERM, how long to go on taking new connections
    /// while /readyz says the host is draining, before the grace period:
    /// time for load balancers to stop sending clients (a few of their
    /// health-check intervals).
    #[arg(long, value_name = "DURATION", env = "ECHO_DRAIN_DELAY", default_value_t = Span(Duration::ZERO))]
    pub drain_delay: Span,

    /// Run this component instead of the embedded echo server. It must
    /// export `wasi:cli/run` and import no more than `wit/world.wit` lists.
    #[arg(long, value_name = "PATH", env = "ECHO_COMPONENT", conflicts_with = "handler")]
    pub component: Option<PathBuf>,

    /// Serve with this handler (`wit/handler/handler.wit`) in a store of
    /// its own: a shipped one by name (prefix, uppercase, lines, ratelimit)
    /// or a component file. Without it, the default handler is composed
    /// into the server.
    #[arg(long, value_name = "NAME|PATH", env = "ECHO_HANDLER")]
    pub handler: Option<handler::Source>,

    /// Fuel for each call into the --handler (about an instruction each);
    /// a call that runs out fails.
    #[arg(
        long,
        value_name = "N",
        env = "ECHO_HANDLER_FUEL",
        default_value_t = handler::FUEL,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub handler_fuel: u64,

    /// The most linear memory one --handler instance may have, in MiB
    /// (each worker has its own instance).
    #[arg(
        long,
        value_name = "MIB",
        env = "ECHO_HANDLER_MEMORY",
        default_value_t = handler::MEMORY_MIB,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub handler_memory: u64,

    /// What a connection gets when the --handler fails on it (traps, runs
    /// out of fuel or memory): `close` ends it after what was answered
    /// already, `reset` cuts it at once. The handler starts afresh.
    #[arg(long, value_name = "POLICY", env = "ECHO_ON_HANDLER_FAILURE", default_value = "close")]
    pub on_handler_failure: OnFailure,

    /// Keep compiled guests in this folder, so that later starts need not
    /// compile them; it must be writable by this user alone
    /// [default: ~/.cache/echo-host].
    #[arg(long, value_name = "DIR", env = "ECHO_CACHE_DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,

    /// Compile the guest at every start instead of keeping compiled code.
    #[arg(long, env = "ECHO_NO_CACHE", value_parser = BoolishValueParser::new())]
    pub no_cache: bool,

    /// Serve the host's figures for Prometheus at http://ADDR/metrics, with
    /// /healthz and /readyz for probes and load balancers. Off by default.
    #[arg(long, value_name = "ADDR", env = "ECHO_METRICS")]
    pub metrics: Option<SocketAddr>,

    /// How the host writes its log to stderr: `text` for people, `json` (one
    /// object a line) for log collectors. The guest's own lines go to stdout
    /// as it writes them.
    #[arg(long, value_name = "FORMAT", env = "ECHO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Further arguments for the guest, after `--`; for the embedded echo
    /// server, any of its options (`echo_guest.wasm --help` lists them).
    #[arg(last = true, value_name = "ARGS")]
    pub guest_args: Vec<String>,
}

/// What `echo-host` does instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Compose the server with a handler into one component, which runs
    /// under `echo-host --component` and under `wasmtime run -S
    /// inherit-network`. The handler then shares the server's instance: a
    /// trap in it is a trap of the whole server.
    Compose(Compose),
}

/// `echo-host compose`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Compose {
    /// The handler: a shipped one by name, or a component file.
    #[arg(long, value_name = "NAME|PATH")]
    pub handler: handler::Source,

    /// Where to write the composed server.
    #[arg(long, short, value_name = "PATH")]
    pub output: PathBuf,
}

impl Config {
    /// What to start and how to supervise it, or why the command line is
    /// refused.
    ///
    /// The echo guest's arguments are checked here with the guest's own
    /// definition, so that a value it would refuse stops the host before
    /// anything starts. Another component's arguments are its own business,
    /// and pass through as given.
    pub fn plan(self) -> Result<(Launch, Policy), clap::Error> {
        let grant = Grant {
            listen: self.service.listen.clone(),
            listen_networks: self.allow_listen,
            connect: self.allow_connect,
            peers: (!self.allow_peers.is_empty()).then_some(self.allow_peers),
        };
        let mut guest = GuestCommand {
            service: self.service,
            // The host closes the guest's stdin to ask it to stop.
            shutdown_on_eof: true,
        };
        let mut extra_args = self.guest_args;
        if self.component.is_none() && !extra_args.is_empty() {
            let argv = ["echo-guest".to_owned()].into_iter().chain(guest.to_args());
            guest = GuestCommand::try_parse_from(argv.chain(extra_args.drain(..)))?;
        }
        let max_connections = guest.service.max_connections;
        let workers = match self.workers {
            Some(workers) if workers > max_connections => {
                return Err(Config::command().error(
                    clap::error::ErrorKind::ValueValidation,
                    format!(
                        "--workers {workers} is more than --max-connections {max_connections}: \
                         each worker serves at least one connection"
                    ),
                ));
            }
            Some(workers) => workers,
            None => std::thread::available_parallelism()
                .unwrap_or(NonZeroUsize::MIN)
                .min(max_connections),
        };
        let limits = Limits::new(max_connections.get(), self.max_memory, self.cpu_limit.0);
        let cache = match (self.no_cache, self.cache_dir) {
            (true, _) => CodeCache::Off,
            (false, None) => CodeCache::Default,
            // Wasmtime wants an absolute path; the current folder is known now.
            (false, Some(dir)) => CodeCache::At(std::path::absolute(&dir).map_err(|e| {
                Config::command().error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("--cache-dir {}: {e}", dir.display()),
                )
            })?),
        };
        let component = self.component;
        let handler = self.handler.map(|source| Handler {
            source,
            limits: HandlerLimits {
                memory: usize::try_from(self.handler_memory.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
                fuel: self.handler_fuel,
            },
            on_failure: self.on_handler_failure,
        });
        let extras = Extras { random: self.allow_random, handler: handler.is_some() };
        let metrics = self.metrics;
        let launch = Launch {
            grant,
            guest,
            extra_args,
            component,
            handler,
            cache,
            extras,
            limits,
            workers,
            metrics,
        };
        let policy = Policy {
            restart: self.restart,
            grace_period: self.grace_period.0,
            drain_delay: self.drain_delay.0,
        };
        Ok((launch, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<(Launch, Policy), clap::Error> {
        Config::try_parse_from(["echo-host"].iter().chain(args))?.plan()
    }

    #[test]
    fn the_definition_is_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn the_guest_gets_the_service_settings_and_the_host_switches() {
        let (launch, policy) = plan(&["--prefix", "> ", "--max-connections", "7"]).unwrap();
        assert_eq!(launch.guest.service.prefix.as_deref(), Some("> "));
        assert_eq!(launch.guest.service.max_connections.get(), 7);
        assert!(launch.guest.shutdown_on_eof);
        assert!(launch.extra_args.is_empty());
        assert_eq!(policy.restart, Restart::Always);
    }

    /// The embedded guest's extra arguments are its options: checked now,
    /// and the last one given wins.
    #[test]
    fn extra_arguments_for_the_echo_guest_are_checked() {
        let (launch, _) = plan(&["--prefix", "a", "--", "--prefix=b"]).unwrap();
        assert_eq!(launch.guest.service.prefix.as_deref(), Some("b"));
        // The guest may ask for another address too; the grant is the host's.
        let (launch, _) = plan(&["--listen", "127.0.0.1:1", "--", "--listen=127.0.0.1:2"]).unwrap();
        let both: Vec<SocketAddr> =
            ["127.0.0.1:1", "127.0.0.1:2"].map(|a| a.parse().unwrap()).into();
        assert_eq!(launch.guest.service.listen, both);
        assert_eq!(launch.grant.listen, both[..1]);
        let refused = plan(&["--", "--max-connections", "0"]).unwrap_err();
        assert!(refused.to_string().contains("--max-connections"), "{refused}");
        assert!(plan(&["--", "--no-such-option"]).is_err());
    }

    #[test]
    fn another_components_arguments_pass_through() {
        let (launch, _) = plan(&["--component", "x.wasm", "--", "spin", "--odd"]).unwrap();
        assert_eq!(launch.extra_args, ["spin", "--odd"]);
    }

    #[test]
    fn the_grant_takes_networks() {
        let (launch, _) = plan(&[
            "--allow-connect",
            "10.0.0.0/8,::1",
            "--allow-listen",
            "127.0.0.1",
            "--allow-peers",
            "192.0.2.0/24",
        ])
        .unwrap();
        assert_eq!(launch.grant.connect.len(), 2);
        assert_eq!(launch.grant.listen_networks[0].to_string(), "127.0.0.1/32");
        assert!(launch.grant.accepts("192.0.2.9:1".parse().unwrap()));
        assert!(!launch.grant.accepts("198.51.100.1:1".parse().unwrap()));
        let (launch, _) = plan(&[]).unwrap();
        assert!(launch.grant.connect.is_empty() && launch.grant.peers.is_none());
        let refused = plan(&["--allow-connect", "everywhere"]).unwrap_err();
        assert!(refused.to_string().contains("--allow-connect"), "{refused}");
    }

    /// Several listen addresses are each granted.
    #[test]
    fn listen_addresses_add_up() {
        let (launch, _) = plan(&["--listen", "0.0.0.0:1", "--listen", "[::]:1"]).unwrap();
        let both: Vec<SocketAddr> = ["0.0.0.0:1", "[::]:1"].map(|a| a.parse().unwrap()).into();
        assert_eq!(launch.grant.listen, both);
        assert_eq!(launch.guest.service.listen, both);
    }

    /// One worker per core by default, never more than connections; each
    /// worker's part of the limits adds up to the whole.
    #[test]
    fn workers_share_the_limits() {
        let (launch, _) = plan(&["--max-connections", "1"]).unwrap();
        assert_eq!(launch.workers.get(), 1);
        let refused = plan(&["--workers", "3", "--max-connections", "2"]).unwrap_err();
        assert!(refused.to_string().contains("--workers 3"), "{refused}");
        let (launch, _) =
            plan(&["--workers", "3", "--max-connections", "10", "--max-memory", "300"]).unwrap();
        let parts: Vec<Launch> = (0..3).map(|index| launch.worker(index)).collect();
        let connections: Vec<usize> =
            parts.iter().map(|part| part.guest.service.max_connections.get()).collect();
        assert_eq!(connections, [4, 3, 3]);
        assert!(parts.iter().all(|part| part.limits.memory == 100 << 20));
        assert!(parts.iter().all(|part| part.workers.get() == 3));
    }

    /// `--handler` takes a shipped handler's name or a path, and its
    /// limits; it and `--component` exclude each other.
    #[test]
    fn handlers_are_named_or_found() {
        let (launch, _) = plan(&["--handler", "lines", "--handler-memory", "2"]).unwrap();
        let handler = launch.handler.unwrap();
        assert_eq!(handler.source, handler::Source::Shipped("lines"));
        assert_eq!(handler.limits.memory, 2 << 20);
        assert_eq!(handler.on_failure, OnFailure::Close);
        assert!(launch.extras.handler);
        let (launch, _) =
            plan(&["--handler", "./h.wasm", "--on-handler-failure", "reset"]).unwrap();
        let handler = launch.handler.unwrap();
        assert_eq!(handler.source, handler::Source::File("./h.wasm".into()));
        assert_eq!(handler.on_failure, OnFailure::Reset);
        let refused = plan(&["--handler", "lines", "--component", "x.wasm"]).unwrap_err();
        assert!(refused.to_string().contains("--component"), "{refused}");
    }

    #[test]
    fn host_values_are_checked() {
        for args in [
            &["--max-memory", "0"][..],
            &["--cpu-limit", "0s"],
            &["--restart", "often"],
            &["--workers", "0"],
            &["--handler", "nosuch"],
            &["--handler-fuel", "0"],
            &["--handler-memory", "0"],
            &["--on-handler-failure", "ignore"],
        ] {
            let error = plan(args).unwrap_err();
            assert!(error.to_string().contains(args[0]), "{args:?}: {error}");
        }
    }
}
