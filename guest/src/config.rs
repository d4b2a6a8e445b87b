//! Configuration: where to listen and what to prefix replies with.
//!
//! Arguments win over environment variables, which win over [`defaults`].
//! Parsing is pure (arguments and a lookup function in, a [`Command`] out), so
//! it is tested natively.

use crate::defaults;
use std::fmt;
use std::net::SocketAddr;

/// Shown for `--help` and after a bad argument.
pub const USAGE: &str = "\
usage: echo-guest [--listen ADDR] [--prefix STR]

  --listen ADDR   address to listen on (env ECHO_LISTEN, default 0.0.0.0:25000)
  --prefix STR    text put before every reply (env ECHO_PREFIX, default GOT:);
                  an empty prefix makes a plain echo
  --help          show this text";

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

impl Command {
    /// Parses `args` (without the program name), falling back to `env` for
    /// anything the arguments do not set.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Command, ConfigError> {
        let mut listen = None;
        let mut prefix = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg, None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| ConfigError(format!("{name} needs a value")))
            };
            match flag.as_str() {
                "--listen" => listen = Some(value("--listen")?),
                "--prefix" => prefix = Some(value("--prefix")?),
                "-h" | "--help" => return Ok(Command::Help),
                other => return Err(ConfigError(format!("unexpected argument {other:?}"))),
            }
        }
        let listen =
            listen.or_else(|| env("ECHO_LISTEN")).unwrap_or_else(|| defaults::LISTEN.to_owned());
        let listen = listen.parse().map_err(|_| {
            ConfigError(format!("invalid listen address {listen:?} (expected IP:PORT, e.g. 127.0.0.1:25000 or [::1]:25000)"))
        })?;
        let prefix =
            prefix.or_else(|| env("ECHO_PREFIX")).unwrap_or_else(|| defaults::PREFIX.to_owned());
        Ok(Command::Serve(Config { listen, prefix: prefix.into_bytes() }))
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

    fn serve(listen: &str, prefix: &str) -> Command {
        Command::Serve(Config { listen: listen.parse().unwrap(), prefix: prefix.into() })
    }

    #[test]
    fn defaults_apply_without_arguments_or_environment() {
        assert_eq!(parse(&[], &[]), Ok(serve("0.0.0.0:25000", "GOT:")));
    }

    #[test]
    fn arguments_override_environment() {
        let env = [("ECHO_LISTEN", "127.0.0.1:1"), ("ECHO_PREFIX", "env:")];
        assert_eq!(parse(&[], &env), Ok(serve("127.0.0.1:1", "env:")));
        assert_eq!(
            parse(&["--listen", "[::1]:0", "--prefix=arg:"], &env),
            Ok(serve("[::1]:0", "arg:"))
        );
    }

    #[test]
    fn empty_prefix_is_allowed() {
        assert_eq!(parse(&["--prefix", ""], &[]), Ok(serve("0.0.0.0:25000", "")));
        assert_eq!(parse(&["--prefix="], &[]), Ok(serve("0.0.0.0:25000", "")));
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse(&["--listen", "nonsense", "--help"], &[]), Ok(Command::Help));
    }

    #[test]
    fn bad_input_is_explained() {
        let err = parse(&["--listen", "localhost:25000"], &[]).unwrap_err();
        assert!(err.to_string().contains("invalid listen address \"localhost:25000\""), "{err}");
        let err = parse(&["--listen"], &[]).unwrap_err();
        assert_eq!(err.to_string(), "--listen needs a value");
        let err = parse(&["--verbose"], &[]).unwrap_err();
        assert_eq!(err.to_string(), "unexpected argument \"--verbose\"");
    }
}
