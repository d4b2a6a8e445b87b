//! A handler that is a pure map: every chunk comes back in upper case
//! (ASCII letters; other bytes as they are). It takes no settings.

mod bindings {
    wit_bindgen::generate!({ path: "../../wit/handler", world: "plugin" });
}

use bindings::exports::echo::handler::handler::{
    CloseReason, Guest, GuestSession, Instant, Session, Then, Verdict,
};

struct Uppercase;

impl Guest for Uppercase {
    type Session = Shout;

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        match settings.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!("unknown setting {key:?} (uppercase takes none)")),
        }
    }

    fn accept(_peer: String, _now: Instant) -> Result<(Session, Verdict), String> {
        Ok((Session::new(Shout), Verdict { reply: Vec::new(), then: Then::Read }))
    }
}

struct Shout;

impl GuestSession for Shout {
    fn data(&self, mut chunk: Vec<u8>, _now: Instant) -> Verdict {
        chunk.make_ascii_uppercase();
        Verdict { reply: chunk, then: Then::Read }
    }

    fn finished(&self, _now: Instant) -> Verdict {
        Verdict { reply: Vec::new(), then: Then::Close }
    }

    fn closed(&self, _reason: CloseReason) {}
}

// Exported from the component only: native builds are for the tests.
#[cfg(target_arch = "wasm32")]
bindings::export!(Uppercase with_types_in bindings);
