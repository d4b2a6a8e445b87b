//! The echo service's settings, defined once.
//!
//! The guest parses its command line with [`GuestCommand`]; `echo-host`
//! flattens [`Service`] into its own command line and hands the guest a
//! [`GuestCommand`] as arguments ([`GuestCommand::to_args`]). So both offer
//! the same flags, defaults, environment variables (`ECHO_LISTEN`, ...) and
//! checks: a value the guest would refuse, the host refuses before anything
//! starts, and `--help` reads the same under `echo-host` and under a stock
//! `wasmtime run`.

use clap::{Args, Parser};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

/// Where the service listens: every IPv4 interface, port 25000, as the
/// tutorial server this project grew from.
pub const LISTEN: &str = "0.0.0.0:25000";

/// What each reply starts with, with the default handler (`prefix`), unless
/// `--prefix` says otherwise. An empty prefix makes a plain RFC 862 echo.
pub const PREFIX: &str = "GOT:";

/// The most connections served at once. Past it the listener is not polled,
/// so newcomers wait in the kernel's backlog while existing connections go
/// on undisturbed.
///
/// 16,384 leaves room above the 10,000 concurrent clients the service is
/// measured with, and stays within common hard limits on open files (the
/// host needs a descriptor per connection).
pub const MAX_CONNECTIONS: NonZeroUsize = NonZeroUsize::new(16_384).unwrap();

/// How long a connection may wait for the client's next bytes before it is
/// closed. Five minutes outlasts any interactive pause, yet keeps abandoned
/// connections from piling up.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a reply may make no progress, the client not reading, before
/// the connection is closed. Thirty seconds is far beyond any healthy
/// client's pause, and short enough that a stalled client does not hold its
/// buffers for long.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long, once the client has finished sending, the server may take to
/// deliver the remaining replies. Bounds a client that half-closes and then
/// reads at a trickle.
pub const HALF_CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a user sets for the service: where it listens, what it answers, and
/// the limits that keep one client from hurting the others.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The address to listen on; port 0 picks a free port. Given more than
    /// once, or as a comma-separated list, each address is listened on:
    /// `--listen 0.0.0.0:25000 --listen [::]:25000` takes IPv4 and IPv6
    /// clients (an IPv6 socket takes IPv6 clients only).
    #[arg(
        long,
        value_name = "ADDR",
        env = "ECHO_LISTEN",
        default_value = LISTEN,
        value_delimiter = ','
    )]
    pub listen: Vec<SocketAddr>,

    /// Text put before every reply; empty for a plain echo (RFC 862). The
    /// handler's setting `prefix`: the default handler's is GOT:.
    #[arg(long, value_name = "STR", env = "ECHO_PREFIX", allow_hyphen_values = true)]
    pub prefix: Option<String>,

    /// A setting for the handler, which refuses those it does not know;
    /// may be given more than once.
    #[arg(long = "set", value_name = "KEY=VALUE", env = "ECHO_SET")]
    pub settings: Vec<Setting>,

    /// Connections served at once; past it, new clients wait in the
    /// kernel's backlog until one closes.
    #[arg(
        long,
        value_name = "N",
        env = "ECHO_MAX_CONNECTIONS",
        default_value_t = MAX_CONNECTIONS,
        value_parser = at_least_one
    )]
    pub max_connections: NonZeroUsize,

    /// Close a connection whose client has sent nothing for this long.
    #[arg(
        long,
        value_name = "DURATION",
        env = "ECHO_IDLE_TIMEOUT",
        default_value_t = Span(IDLE_TIMEOUT),
        value_parser = Span::positive
    )]
    pub idle_timeout: Span,

    /// Close a connection whose client has not read its replies for this
    /// long.
    #[arg(
        long,
        value_name = "DURATION",
        env = "ECHO_STALL_TIMEOUT",
        default_value_t = Span(STALL_TIMEOUT),
        value_parser = Span::positive
    )]
    pub stall_timeout: Span,

    /// Once a client has finished sending, the time to deliver its last
    /// replies.
    #[arg(
        long,
        value_name = "DURATION",
        env = "ECHO_HALF_CLOSE_TIMEOUT",
        default_value_t = Span(HALF_CLOSE_TIMEOUT),
        value_parser = Span::positive
    )]
    pub half_close_timeout: Span,
}

/// The echo guest's command line: the [`Service`], and the switches a host
/// sets for the guest.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "echo-guest",
    version,
    about = "A TCP echo server: every chunk a client sends comes back prefixed with GOT:.",
    long_about = None,
    after_help = "Every option can also be set in the environment, as shown. \
                  Durations are written 250ms, 30s, 5m or 1h; a bare number is seconds. \
                  A switch set in the environment takes true or false, 1 or 0, yes or no, on or off.",
    // A host passes its settings first and the user's extra arguments after
    // them: the last one given wins.
    args_override_self = true
)]
pub struct GuestCommand {
    #[command(flatten)]
    pub service: Service,

    /// At the end of stdin, stop accepting, let the open connections finish,
    /// and exit (echo-host closes the guest's stdin on SIGINT or SIGTERM).
    #[arg(long, env = "ECHO_SHUTDOWN_ON_EOF", value_parser = clap::builder::BoolishValueParser::new())]
    pub shutdown_on_eof: bool,
}

impl GuestCommand {
    /// The arguments (without a program name) that parse back into `self`.
    pub fn to_args(&self) -> Vec<String> {
        // Destructured in full, so that a new setting cannot be forgotten here.
        let GuestCommand {
            service:
                Service {
                    listen,
                    prefix,
                    settings,
                    max_connections,
                    idle_timeout,
                    stall_timeout,
                    half_close_timeout,
                },
            shutdown_on_eof,
        } = self;
        let listen: Vec<String> = listen.iter().map(SocketAddr::to_string).collect();
        let mut args = vec![
            format!("--listen={}", listen.join(",")),
            format!("--max-connections={max_connections}"),
            format!("--idle-timeout={idle_timeout}"),
            format!("--stall-timeout={stall_timeout}"),
            format!("--half-close-timeout={half_close_timeout}"),
        ];
        // `=` keeps a value that is empty or starts with `-` one value.
        args.extend(prefix.iter().map(|prefix| format!("--prefix={prefix}")));
        args.extend(settings.iter().map(|setting| format!("--set={setting}")));
        if *shutdown_on_eof {
            args.push("--shutdown-on-eof".to_owned());
        }
        args
    }
}

impl Service {
    /// The handler's settings: `prefix` if `--prefix` is given, then every
    /// `--set`, in order.
    pub fn handler_settings(&self) -> Vec<(String, String)> {
        let prefix = self.prefix.iter().map(|prefix| ("prefix".to_owned(), prefix.clone()));
        let settings = self.settings.iter().map(|s| (s.key.clone(), s.value.clone()));
        prefix.chain(settings).collect()
    }
}

/// One `--set KEY=VALUE`: a setting for the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl FromStr for Setting {
    type Err = String;

    fn from_str(text: &str) -> Result<Setting, String> {
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                Ok(Setting { key: key.to_owned(), value: value.to_owned() })
            }
            _ => Err(format!("expected KEY=VALUE, got {text:?}")),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// A count that must be at least one.
fn at_least_one(text: &str) -> Result<NonZeroUsize, String> {
    let count: usize = text.parse().map_err(|e| format!("{e}"))?;
    NonZeroUsize::new(count).ok_or_else(|| "must be at least 1".to_owned())
}

/// A duration on a command line: `250ms`, `30s`, `5m`, `1h 30m`
/// (humantime's format), or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    /// Parses a span that must be longer than zero, as a timeout must.
    pub fn positive(text: &str) -> Result<Span, String> {
        let span: Span = text.parse()?;
        if span.0.is_zero() {
            return Err("must be longer than zero".to_owned());
        }
        Ok(span)
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Span, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(|secs| Span(Duration::from_secs(secs)))
                .map_err(|e| format!("{text:?}: {e}"));
        }
        humantime::parse_duration(text)
            .map(Span)
            .map_err(|e| format!("{e} (expected e.g. 250ms, 30s or 5m)"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl From<Span> for Duration {
    fn from(span: Span) -> Duration {
        span.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<GuestCommand, clap::Error> {
        GuestCommand::try_parse_from(["echo-guest"].iter().chain(args))
    }

    #[test]
    fn the_definition_is_consistent() {
        GuestCommand::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_named_constants() {
        let command = parse(&[]).unwrap();
        assert_eq!(command.service.listen, [LISTEN.parse().unwrap()]);
        assert_eq!(command.service.prefix, None);
        assert!(command.service.settings.is_empty());
        assert_eq!(command.service.max_connections, MAX_CONNECTIONS);
        assert_eq!(command.service.idle_timeout, Span(IDLE_TIMEOUT));
        assert_eq!(command.service.stall_timeout, Span(STALL_TIMEOUT));
        assert_eq!(command.service.half_close_timeout, Span(HALF_CLOSE_TIMEOUT));
        assert!(!command.shutdown_on_eof);
    }

    /// Every setting changed from its default survives the trip through
    /// arguments; odd prefixes stay one value.
    #[test]
    fn arguments_round_trip() {
        for prefix in ["", "--help", "-", "a=b", " x ", "GOT:"] {
            let command = GuestCommand {
                service: Service {
                    listen: vec!["[::1]:0".parse().unwrap(), "127.0.0.1:7".parse().unwrap()],
                    prefix: Some(prefix.to_owned()),
                    settings: vec!["rate=10".parse().unwrap(), "k==-v,w".parse().unwrap()],
                    max_connections: NonZeroUsize::new(3).unwrap(),
                    idle_timeout: Span(Duration::from_millis(1500)),
                    stall_timeout: Span(Duration::from_secs(90)),
                    half_close_timeout: Span(Duration::from_secs(3600)),
                },
                shutdown_on_eof: true,
            };
            let args = command.to_args();
            let parsed = parse(&args.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
            assert_eq!(parsed, command, "{args:?}");
        }
    }

    /// The handler gets `--prefix` as `prefix`, then the `--set`s in order.
    #[test]
    fn the_handler_settings_are_prefix_and_sets() {
        let command = parse(&["--set", "b=2", "--prefix=", "--set=a=x=y"]).unwrap();
        let settings = command.service.handler_settings();
        let expected = [("prefix", ""), ("b", "2"), ("a", "x=y")];
        assert_eq!(settings, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert!(parse(&[]).unwrap().service.handler_settings().is_empty());
    }

    /// A later argument overrides an earlier one, as a host's extra
    /// arguments after its own settings do; but listen addresses add up.
    #[test]
    fn the_last_argument_wins() {
        let command = parse(&["--prefix=a", "--max-connections=2", "--prefix", "b"]).unwrap();
        assert_eq!(command.service.prefix.as_deref(), Some("b"));
        let command = parse(&["--listen=127.0.0.1:1", "--listen", "0.0.0.0:2,[::]:2"]).unwrap();
        let listen: Vec<SocketAddr> =
            ["127.0.0.1:1", "0.0.0.0:2", "[::]:2"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(command.service.listen, listen);
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (args, flag) in [
            (&["--listen", "localhost:25000"][..], "--listen"),
            (&["--max-connections", "0"], "--max-connections"),
            (&["--set", "novalue"], "--set"),
            (&["--set", "=v"], "--set"),
            (&["--max-connections", "many"], "--max-connections"),
            (&["--idle-timeout", "soon"], "--idle-timeout"),
            (&["--stall-timeout", "0s"], "--stall-timeout"),
            (&["--half-close-timeout=-1s"], "--half-close-timeout"),
        ] {
            let error = parse(args).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation, "{args:?}");
            assert!(error.to_string().contains(flag), "{args:?}: {error}");
        }
        assert_eq!(
            parse(&["--verbose"]).unwrap_err().kind(),
            clap::error::ErrorKind::UnknownArgument
        );
    }

    #[test]
    fn spans_take_units() {
        let span = |text: &str| text.parse::<Span>().map(|s| s.0);
        assert_eq!(span("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(span("30"), Ok(Duration::from_secs(30)));
        assert_eq!(span("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(span("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(span("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "s", "-1s", "soon", "99999999999999999999"] {
            assert!(span(bad).is_err(), "{bad:?}");
        }
        for text in ["250ms", "30s", "5m", "1h 30m", "0s"] {
            assert_eq!(text.parse::<Span>().unwrap().to_string(), text);
        }
        assert!(Span::positive("0").is_err());
    }
}
