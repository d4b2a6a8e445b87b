//! The default handler: every chunk comes back as `prefix + chunk`, with
//! `GOT:` as the prefix unless the `prefix` setting says otherwise (empty: a
//! plain RFC 862 echo).
//!
//! Composed into the echo server by the build, this is the `GOT:` server the
//! seed tutorial describes.

mod bindings {
    wit_bindgen::generate!({ path: "../../wit/handler", world: "plugin" });
}

use bindings::exports::echo::handler::handler::{
    CloseReason, Guest, GuestSession, Instant, Session, Then, Verdict,
};
use std::sync::OnceLock;

/// The prefix when the settings name none.
pub const DEFAULT_PREFIX: &[u8] = b"GOT:";

/// The configured prefix; [`DEFAULT_PREFIX`] until configured.
static PREFIX: OnceLock<Vec<u8>> = OnceLock::new();

fn prefix() -> &'static [u8] {
    PREFIX.get().map_or(DEFAULT_PREFIX, Vec::as_slice)
}

/// `prefix + chunk`, in one buffer: one write for the server.
pub fn reply(prefix: &[u8], chunk: &[u8]) -> Vec<u8> {
    let mut reply = Vec::with_capacity(prefix.len() + chunk.len());
    reply.extend_from_slice(prefix);
    reply.extend_from_slice(chunk);
    reply
}

struct Prefix;

impl Guest for Prefix {
    type Session = Echo;

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in settings {
            match key.as_str() {
                "prefix" => {
                    PREFIX.set(value.into_bytes()).map_err(|_| "prefix: configured twice")?
                }
                _ => return Err(format!("unknown setting {key:?} (prefix takes: prefix)")),
            }
        }
        Ok(())
    }

    fn accept(_peer: String, _now: Instant) -> Result<(Session, Verdict), String> {
        Ok((Session::new(Echo), Verdict { reply: Vec::new(), then: Then::Read }))
    }
}

/// A connection: no state beyond the prefix all share.
struct Echo;

impl GuestSession for Echo {
    fn data(&self, chunk: Vec<u8>, _now: Instant) -> Verdict {
        Verdict { reply: reply(prefix(), &chunk), then: Then::Read }
    }

    fn finished(&self, _now: Instant) -> Verdict {
        Verdict { reply: Vec::new(), then: Then::Close }
    }

    fn closed(&self, _reason: CloseReason) {}
}

// Exported from the component only: native builds are for the tests.
#[cfg(target_arch = "wasm32")]
bindings::export!(Prefix with_types_in bindings);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_prefix_then_chunk() {
        assert_eq!(reply(b"GOT:", b"hi\n"), b"GOT:hi\n");
        assert_eq!(reply(b"", b"\0GOT:"), b"\0GOT:");
    }
}
