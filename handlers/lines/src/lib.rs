//! A handler that answers per complete line: each line a client ends with
//! `\n` comes back numbered (`1: hello\n`), a partial line waits for the
//! rest, and whatever partial line is left when the client finishes is
//! answered then. It takes no settings.
//!
//! A line is at most [`MAX_LINE`] bytes: a client that sends a longer one is
//! told so, and the connection is closed.

mod bindings {
    wit_bindgen::generate!({ path: "../../wit/handler", world: "plugin" });
}

use bindings::exports::echo::handler::handler::{
    CloseReason, Guest, GuestSession, Instant, Session, Then, Verdict,
};
use std::cell::RefCell;

/// The longest line a session buffers.
pub const MAX_LINE: usize = 64 * 1024;

/// A connection's lines: the partial one, and how many were answered.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
    count: u64,
}

impl Lines {
    /// The answer to `chunk`: every line it completes, numbered; `None` if
    /// the partial line has grown past [`MAX_LINE`].
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let mut reply = Vec::new();
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..=end]);
            self.answer(&mut reply);
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        (self.partial.len() <= MAX_LINE).then_some(reply)
    }

    /// The answer to the partial line left at the end, if any.
    pub fn flush(&mut self) -> Vec<u8> {
        let mut reply = Vec::new();
        if !self.partial.is_empty() {
            self.answer(&mut reply);
        }
        reply
    }

    fn answer(&mut self, reply: &mut Vec<u8>) {
        self.count += 1;
        reply.extend_from_slice(format!("{}: ", self.count).as_bytes());
        reply.append(&mut self.partial);
    }
}

struct Handler;

impl Guest for Handler {
    type Session = LineSession;

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        match settings.first() {
            None => Ok(()),
            Some((key, _)) => Err(format!("unknown setting {key:?} (lines takes none)")),
        }
    }

    fn accept(_peer: String, _now: Instant) -> Result<(Session, Verdict), String> {
        let session = LineSession(RefCell::default());
        Ok((Session::new(session), Verdict { reply: Vec::new(), then: Then::Read }))
    }
}

struct LineSession(RefCell<Lines>);

impl GuestSession for LineSession {
    fn data(&self, chunk: Vec<u8>, _now: Instant) -> Verdict {
        match self.0.borrow_mut().feed(&chunk) {
            Some(reply) => Verdict { reply, then: Then::Read },
            None => Verdict {
                reply: format!("line too long (the most is {MAX_LINE} bytes)\n").into_bytes(),
                then: Then::Close,
            },
        }
    }

    fn finished(&self, _now: Instant) -> Verdict {
        Verdict { reply: self.0.borrow_mut().flush(), then: Then::Close }
    }

    fn closed(&self, _reason: CloseReason) {}
}

// Exported from the component only: native builds are for the tests.
#[cfg(target_arch = "wasm32")]
bindings::export!(Handler with_types_in bindings);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_answered_whole_whatever_the_chunking() {
        let mut lines = Lines::default();
        assert_eq!(lines.feed(b"hel").unwrap(), b"");
        assert_eq!(lines.feed(b"lo\nwor").unwrap(), b"1: hello\n");
        assert_eq!(lines.feed(b"ld\n\nx").unwrap(), b"2: world\n3: \n");
        assert_eq!(lines.flush(), b"4: x");
        assert_eq!(lines.flush(), b"");
    }

    #[test]
    fn a_line_too_long_is_refused() {
        let mut lines = Lines::default();
        assert!(lines.feed(&vec![b'a'; MAX_LINE]).is_some());
        assert!(lines.feed(b"a").is_none());
    }
}
