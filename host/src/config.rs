//! The command line.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The guest's own defaults, compiled from the same file so the two agree.
#[path = "../../guest/src/defaults.rs"]
mod defaults;

/// Serve TCP from a sandboxed WebAssembly component: by default the
/// embedded echo server, which answers every chunk with `GOT:` + chunk.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// The one address the guest may listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,

    /// Text put before every reply; empty for a plain echo.
    #[arg(long, value_name = "STR", default_value = defaults::PREFIX, allow_hyphen_values = true)]
    pub prefix: String,

    /// Run this component instead of the embedded echo server. It must
    /// export `wasi:cli/run` and import no more than `wit/world.wit` lists.
    #[arg(long, value_name = "PATH")]
    pub component: Option<PathBuf>,

    /// Further arguments for the guest, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub guest_args: Vec<String>,
}

impl Config {
    /// The guest's argument list: its name, the listen address and prefix,
    /// then [`Config::guest_args`].
    pub fn guest_argv(&self) -> Vec<String> {
        let mut argv = vec![
            "echo-guest".to_owned(),
            format!("--listen={}", self.listen),
            format!("--prefix={}", self.prefix),
        ];
        argv.extend(self.guest_args.iter().cloned());
        argv
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
        assert_eq!(config.guest_argv(), ["echo-guest", "--listen=0.0.0.0:25000", "--prefix=GOT:"]);
    }

    #[test]
    fn odd_prefixes_pass_through_verbatim() {
        for prefix in ["", "--help", "a=b", " x "] {
            let config = Config::parse_from(["echo-host", "--prefix", prefix, "--", "extra"]);
            assert_eq!(config.guest_argv()[2], format!("--prefix={prefix}"));
            assert_eq!(config.guest_argv()[3], "extra");
        }
    }
}
