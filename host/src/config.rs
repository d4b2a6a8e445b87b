//! The command line.

use crate::limits;
use crate::supervisor::Restart;
use crate::watchdog;
use clap::Parser;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The guest's own defaults, compiled from the same file so the two agree.
#[path = "../../guest/src/settings.rs"]
mod settings;

/// Serve TCP from a sandboxed WebAssembly component: by default the
/// embedded echo server, which answers every chunk with `GOT:` + chunk.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// The one address the guest may listen on (port 0: a free port, kept
    /// across restarts).
    #[arg(long, value_name = "ADDR", default_value = settings::LISTEN)]
    pub listen: SocketAddr,

    /// Text put before every reply; empty for a plain echo.
    #[arg(long, value_name = "STR", default_value = settings::PREFIX, allow_hyphen_values = true)]
    pub prefix: String,

    /// Connections served at once; past it, new clients wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = settings::MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Close a connection whose client has sent nothing for this long.
    #[arg(long, value_name = "DURATION", default_value_t = Span(settings::IDLE_TIMEOUT))]
    pub idle_timeout: Span,

    /// Close a connection whose client has not read its replies for this long.
    #[arg(long, value_name = "DURATION", default_value_t = Span(settings::STALL_TIMEOUT))]
    pub stall_timeout: Span,

    /// Time to deliver the last replies once a client has finished sending.
    #[arg(long, value_name = "DURATION", default_value_t = Span(settings::HALF_CLOSE_TIMEOUT))]
    pub half_close_timeout: Span,

    /// The most linear memory the guest may have, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = limits::MAX_MEMORY_MIB)]
    pub max_memory: u64,

    /// Stop a guest that runs this long without returning to the host.
    #[arg(long, value_name = "DURATION", default_value_t = Span(watchdog::CPU_LIMIT))]
    pub cpu_limit: Span,

    /// Restart a guest that traps: always, never, or at most N times in a row.
    #[arg(long, value_name = "POLICY", default_value_t = Restart::Always)]
    pub restart: Restart,

    /// On SIGINT or SIGTERM, how long open connections may take to finish.
    #[arg(long, value_name = "DURATION", default_value_t = Span(crate::supervisor::GRACE_PERIOD))]
    pub grace_period: Span,

    /// Run this component instead of the embedded echo server. It must
    /// export `wasi:cli/run` and import no more than `wit/world.wit` lists.
    #[arg(long, value_name = "PATH")]
    pub component: Option<PathBuf>,

    /// Further arguments for the guest, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub guest_args: Vec<String>,
}

impl Config {
    /// The guest's argument list: its name, the host's settings, then
    /// [`Config::guest_args`].
    ///
    /// Besides the user's settings the guest is told that stdin is the
    /// shutdown signal, and that this host drops output streams without
    /// waiting (see `guest/src/net/stream.rs`).
    pub fn guest_argv(&self) -> Vec<String> {
        let mut argv = vec![
            "echo-guest".to_owned(),
            format!("--listen={}", self.listen),
            format!("--prefix={}", self.prefix),
            format!("--max-connections={}", self.max_connections),
            format!("--idle-timeout={}", self.idle_timeout),
            format!("--stall-timeout={}", self.stall_timeout),
            format!("--half-close-timeout={}", self.half_close_timeout),
            "--shutdown-on-eof".to_owned(),
            "--host-abandons-writes".to_owned(),
        ];
        argv.extend(self.guest_args.iter().cloned());
        argv
    }
}

/// A duration on the command line: `250ms`, `30s` (or `30`), `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Span, String> {
        settings::parse_duration(text).map(Span)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        match millis {
            m if m % 60_000 == 0 && m > 0 => write!(f, "{}m", m / 60_000),
            m if m % 1000 == 0 => write!(f, "{}s", m / 1000),
            m => write!(f, "{m}ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_guest() {
        let config = Config::parse_from(["echo-host"]);
        assert_eq!(config.listen, "0.0.0.0:25000".parse().unwrap());
        assert_eq!(config.prefix, "GOT:");
        assert_eq!(
            config.guest_argv(),
            [
                "echo-guest",
                "--listen=0.0.0.0:25000",
                "--prefix=GOT:",
                "--max-connections=16384",
                "--idle-timeout=5m",
                "--stall-timeout=30s",
                "--half-close-timeout=1m",
                "--shutdown-on-eof",
                "--host-abandons-writes",
            ]
        );
    }

    #[test]
    fn odd_prefixes_pass_through_verbatim() {
        for prefix in ["", "--help", "a=b", " x "] {
            let config = Config::parse_from(["echo-host", "--prefix", prefix, "--", "extra"]);
            let argv = config.guest_argv();
            assert_eq!(argv[2], format!("--prefix={prefix}"));
            assert_eq!(argv.last().unwrap(), "extra");
        }
    }

    #[test]
    fn spans_round_trip() {
        for text in ["250ms", "30s", "5m", "0s", "1500ms"] {
            assert_eq!(text.parse::<Span>().unwrap().to_string(), text);
        }
        assert_eq!("90".parse::<Span>().unwrap(), Span(Duration::from_secs(90)));
        assert!("soon".parse::<Span>().is_err());
    }
}
