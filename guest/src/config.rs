//! Configuration: where to listen, what to prefix replies with, and the
//! limits that keep one client from hurting the others.
//!
//! Arguments win over environment variables, which win over [`settings`].
//! Parsing is pure (arguments and a lookup function in, a [`Command`] out), so
//! it is tested natively.

use crate::settings::{self, parse_duration};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Shown for `--help` and after a bad argument.
pub const USAGE: &str = "\
usage: echo-guest [OPTIONS]

  --listen ADDR               address to listen on (default 0.0.0.0:25000)
  --prefix STR                text put before every reply (default GOT:);
                              an empty prefix makes a plain echo
  --max-connections N         connections served at once (default 16384);
                              past it, new clients wait in the backlog
  --idle-timeout DURATION     close a connection silent this long (default 5m)
  --stall-timeout DURATION    close a connection whose client does not read
                              its replies for this long (default 30s)
  --half-close-timeout DURATION
                              time to deliver the last replies once the client
                              has finished sending (default 60s)
  --shutdown-on-eof           at end of stdin, stop accepting, finish the open
                              connections, and exit
  --host-abandons-writes      the host drops an output stream without waiting
                              for a write in flight (echo-host does): a stalled
                              connection is closed at once, not when its
                              client reads again or goes away
  --help                      show this text

Each option can also be set in the environment: ECHO_LISTEN, ECHO_PREFIX,
ECHO_MAX_CONNECTIONS, ..., ECHO_SHUTDOWN_ON_EOF=1, ECHO_HOST_ABANDONS_WRITES=1. Durations are written
250ms, 30s or 5m.";

/// What the component was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve with this configuration.
    Serve(Config),
    /// Print [`USAGE`] and exit.
    Help,
}

/// A complete service configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The address to bind and listen on; port 0 lets the system choose.
    pub listen: SocketAddr,
    /// The bytes put before every echoed chunk.
    pub prefix: Vec<u8>,
    /// What one connection, and all of them together, may take.
    pub limits: Limits,
    /// Watch stdin, and shut down gracefully when it ends.
    pub shutdown_on_eof: bool,
    /// The host drops output streams without waiting for writes in flight.
    pub host_abandons_writes: bool,
}

/// The limits on connections; see [`settings`] for why each default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a connection may wait for the client's next bytes.
    pub idle_timeout: Duration,
    /// How long a reply may make no progress.
    pub stall_timeout: Duration,
    /// How long the last replies may take once the client stopped sending.
    pub half_close_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: settings::MAX_CONNECTIONS,
            idle_timeout: settings::IDLE_TIMEOUT,
            stall_timeout: settings::STALL_TIMEOUT,
            half_close_timeout: settings::HALF_CLOSE_TIMEOUT,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The options that take a value.
const VALUED: [&str; 6] =
    ["listen", "prefix", "max-connections", "idle-timeout", "stall-timeout", "half-close-timeout"];

/// The options that are switches.
const SWITCHES: [&str; 2] = ["shutdown-on-eof", "host-abandons-writes"];

impl Command {
    /// Parses `args` (without the program name), falling back to `env` for
    /// anything the arguments do not set.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError> {
        let mut given = BTreeMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(Command::Help);
            }
            let Some(option) = arg.strip_prefix("--") else {
                return Err(ConfigError(format!("unexpected argument {arg:?}")));
            };
            let (name, inline) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (option, None),
            };
            let value = if SWITCHES.contains(&name) {
                inline.unwrap_or_else(|| "1".to_owned())
            } else if VALUED.contains(&name) {
                inline
                    .or_else(|| args.next())
                    .ok_or_else(|| ConfigError(format!("--{name} needs a value")))?
            } else {
                return Err(ConfigError(format!("unexpected argument {arg:?}")));
            };
            given.insert(name.to_owned(), value);
        }
        let lookup = |name: &str| {
            given
                .get(name)
                .cloned()
                .or_else(|| env(&format!("ECHO_{}", name.replace('-', "_").to_uppercase())))
        };

        let listen = lookup("listen").unwrap_or_else(|| settings::LISTEN.to_owned());
        let listen = listen.parse().map_err(|_| {
            ConfigError(format!(
                "invalid listen address {listen:?} (expected IP:PORT, e.g. 127.0.0.1:25000 or [::1]:25000)"
            ))
        })?;
        let prefix = lookup("prefix").unwrap_or_else(|| settings::PREFIX.to_owned());
        let defaults = Limits::default();
        let duration = |name: &str, default: Duration| match lookup(name) {
            None => Ok(default),
            Some(text) => parse_duration(&text).map_err(|e| ConfigError(format!("--{name}: {e}"))),
        };
        let limits = Limits {
            max_connections: match lookup("max-connections") {
                None => defaults.max_connections,
                Some(text) => text.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    ConfigError(format!("--max-connections: {text:?} is not a positive number"))
                })?,
            },
            idle_timeout: duration("idle-timeout", defaults.idle_timeout)?,
            stall_timeout: duration("stall-timeout", defaults.stall_timeout)?,
            half_close_timeout: duration("half-close-timeout", defaults.half_close_timeout)?,
        };
        let switch =
            |name: &str| !matches!(lookup(name).as_deref(), None | Some("0" | "false" | ""));
        Ok(Command::Serve(Config {
            listen,
            prefix: prefix.into_bytes(),
            limits,
            shutdown_on_eof: switch("shutdown-on-eof"),
            host_abandons_writes: switch("host-abandons-writes"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let env: Vec<(String, String)> =
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Command::parse(args.iter().map(|a| a.to_string()), |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse(args, env) {
            Ok(Command::Serve(config)) => config,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_apply_without_arguments_or_environment() {
        let config = config(&[], &[]);
        assert_eq!(config.listen, "0.0.0.0:25000".parse().unwrap());
        assert_eq!(config.prefix, b"GOT:");
        assert_eq!(config.limits, Limits::default());
        assert!(!config.shutdown_on_eof);
        assert!(!config.host_abandons_writes);
    }

    #[test]
    fn arguments_override_environment() {
        let env = [
            ("ECHO_LISTEN", "127.0.0.1:1"),
            ("ECHO_PREFIX", "env:"),
            ("ECHO_IDLE_TIMEOUT", "2m"),
            ("ECHO_SHUTDOWN_ON_EOF", "1"),
        ];
        let from_env = config(&[], &env);
        assert_eq!(from_env.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(from_env.prefix, b"env:");
        assert_eq!(from_env.limits.idle_timeout, Duration::from_secs(120));
        assert!(from_env.shutdown_on_eof);
        let from_args =
            config(&["--listen", "[::1]:0", "--prefix=arg:", "--idle-timeout=250ms"], &env);
        assert_eq!(from_args.listen, "[::1]:0".parse().unwrap());
        assert_eq!(from_args.prefix, b"arg:");
        assert_eq!(from_args.limits.idle_timeout, Duration::from_millis(250));
    }

    #[test]
    fn every_limit_can_be_set() {
        let config = config(
            &[
                "--max-connections",
                "3",
                "--idle-timeout",
                "1s",
                "--stall-timeout=2s",
                "--half-close-timeout",
                "3",
                "--shutdown-on-eof",
                "--host-abandons-writes",
            ],
            &[],
        );
        let limits = Limits {
            max_connections: 3,
            idle_timeout: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(2),
            half_close_timeout: Duration::from_secs(3),
        };
        assert_eq!(config.limits, limits);
        assert!(config.shutdown_on_eof);
        assert!(config.host_abandons_writes);
    }

    #[test]
    fn empty_prefix_is_allowed() {
        assert_eq!(config(&["--prefix", ""], &[]).prefix, b"");
        assert_eq!(config(&["--prefix="], &[]).prefix, b"");
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse(&["--listen", "nonsense", "--help"], &[]), Ok(Command::Help));
    }

    #[test]
    fn bad_input_is_explained() {
        let error = |args: &[&str]| parse(args, &[]).unwrap_err().to_string();
        assert!(
            error(&["--listen", "localhost:25000"])
                .contains("invalid listen address \"localhost:25000\"")
        );
        assert_eq!(error(&["--listen"]), "--listen needs a value");
        assert_eq!(error(&["--verbose"]), "unexpected argument \"--verbose\"");
        assert_eq!(error(&["stray"]), "unexpected argument \"stray\"");
        assert!(error(&["--idle-timeout", "soon"]).contains("invalid duration \"soon\""));
        assert!(error(&["--max-connections", "0"]).contains("not a positive number"));
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        for bad in ["", "s", "1h", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
