//! A handler that misbehaves when a client asks it to, and echoes with
//! `H:` otherwise:
//!
//! - `trap`: traps (`unreachable`);
//! - `spin`: loops forever;
//! - `hoard`: allocates without end;
//! - `huge`: answers with 100 MiB;
//! - `leak`: keeps 1 MiB for good, and answers `leaked`;
//! - `file` (with the `file` feature): reads `/etc/passwd`, for which it
//!   imports the file system, and answers with what it got.
//!
//! Built by the tests, never shipped.

mod bindings {
    wit_bindgen::generate!({ path: "../../wit/handler", world: "plugin" });
}

use bindings::exports::echo::handler::handler::{
    CloseReason, Guest, GuestSession, Instant, Session, Then, Verdict,
};
use std::cell::RefCell;

thread_local! {
    static HOARD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

struct Hostile;

impl Guest for Hostile {
    type Session = Cue;

    fn configure(_settings: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn accept(_peer: String, _now: Instant) -> Result<(Session, Verdict), String> {
        Ok((Session::new(Cue), Verdict { reply: Vec::new(), then: Then::Read }))
    }
}

struct Cue;

impl GuestSession for Cue {
    fn data(&self, chunk: Vec<u8>, _now: Instant) -> Verdict {
        let reply = match chunk.trim_ascii() {
            b"trap" => std::process::abort(),
            b"spin" => loop {
                std::hint::spin_loop();
            },
            // Memory taken, not touched: it is the cap that stops this, not
            // the fuel.
            b"hoard" => loop {
                let block = Vec::with_capacity(1 << 20);
                HOARD.with(|hoard| hoard.borrow_mut().push(block));
            },
            b"huge" => vec![0; 100 << 20],
            b"leak" => {
                HOARD.with(|hoard| hoard.borrow_mut().push(Vec::with_capacity(1 << 20)));
                b"leaked".to_vec()
            }
            #[cfg(feature = "file")]
            b"file" => match std::fs::read("/etc/passwd") {
                Ok(bytes) => format!("read {} bytes\n", bytes.len()).into_bytes(),
                Err(e) => format!("no file: {e}\n").into_bytes(),
            },
            _ => [b"H:", &chunk[..]].concat(),
        };
        Verdict { reply, then: Then::Read }
    }

    fn finished(&self, _now: Instant) -> Verdict {
        Verdict { reply: Vec::new(), then: Then::Close }
    }

    fn closed(&self, _reason: CloseReason) {}
}

// Exported from the component only: native builds are for the tests.
#[cfg(target_arch = "wasm32")]
bindings::export!(Hostile with_types_in bindings);
