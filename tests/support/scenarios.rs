//! Test bodies shared by the host's suite and the stock-CLI suite.

use super::{
    DEADLINE, Rng, Server, check_segments, connect, read_replies, read_to_end, round_trip,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// The tutorial's `nc` session, byte for byte, and its two log lines.
pub fn nc_session(server: &Server) {
    let mut client = connect(server.addr);
    let local = client.local_addr().unwrap();
    client.write_all(b"Hello\n").unwrap();
    assert_eq!(read_replies(&mut client, b"GOT:", b"Hello\n"), b"GOT:Hello\n");
    client.write_all(b"World\n").unwrap();
    assert_eq!(read_replies(&mut client, b"GOT:", b"World\n"), b"GOT:World\n");
    drop(client);

    let from = format!("Connection from {local}");
    assert!(server.wait_for_line(&from, DEADLINE).is_some(), "no {from:?} in:\n{}", server.log());
    assert!(
        server.wait_for_line("Connection closed", DEADLINE).is_some(),
        "no \"Connection closed\" in:\n{}",
        server.log()
    );
}

/// `clients` connections open at once, each sending `rounds` messages of its
/// own, interleaved with everyone else's, and getting exactly its replies.
pub fn many_clients(server: &Server, prefix: &[u8], clients: usize, rounds: usize) {
    let connected = Arc::new(Barrier::new(clients));
    let workers: Vec<_> = (0..clients)
        .map(|id| {
            let (addr, prefix, connected) = (server.addr, prefix.to_vec(), connected.clone());
            thread::spawn(move || {
                let mut client = connect(addr);
                let mut rng = Rng::new(id as u64);
                // Everyone connects before anyone talks.
                connected.wait();
                for round in 0..rounds {
                    let mut message = format!("client {id} round {round}: ").into_bytes();
                    let len = 1 + rng.below(2000);
                    message.extend(rng.payload(len));
                    round_trip(&mut client, &prefix, &message);
                }
                client.shutdown(Shutdown::Write).unwrap();
                assert_eq!(
                    read_to_end(&mut client),
                    b"",
                    "client {id}: bytes after the last reply"
                );
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a client failed");
    }
}

/// `len` random bytes written by one thread while another reads; the reply
/// must echo them exactly once, in order.
pub fn binary_payload(server: &Server, prefix: &[u8], len: usize) {
    stream_payload(server, prefix, len, |_| 64 * 1024 + 7);
}

/// Like [`binary_payload`], with each write's size chosen by `piece(rng)`;
/// returns the most the server's resident memory grew while it ran, in KiB.
pub fn stream_payload(
    server: &Server,
    prefix: &[u8],
    len: usize,
    piece: impl Fn(&mut Rng) -> usize + Send + 'static,
) -> u64 {
    let rss_before = server.rss_kib();
    let payload = Arc::new(Rng::new(len as u64).payload(len));
    let mut client = connect(server.addr);
    let mut writer = client.try_clone().unwrap();
    let sent = payload.clone();
    let writing = thread::spawn(move || {
        let mut rng = Rng::new(1);
        let mut rest = &sent[..];
        while !rest.is_empty() {
            let n = piece(&mut rng).clamp(1, rest.len());
            writer.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut received = Vec::with_capacity(len + len / 8);
    let mut buf = vec![0; 256 * 1024];
    let mut peak = 0;
    loop {
        let n = std::io::Read::read(&mut client, &mut buf).expect("read replies");
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        if received.len() % (4 << 20) < n {
            peak = peak.max(server.rss_kib().saturating_sub(rss_before));
        }
    }
    writing.join().unwrap();
    check_segments(&received, prefix, &payload).unwrap();
    peak
}

/// Several messages, then the client shuts down its sending side: every
/// reply still arrives, followed by a clean end of stream (not a reset).
pub fn half_close(server: &Server, prefix: &[u8]) {
    let mut client = connect(server.addr);
    let sent = b"one\ntwo\nthree\n".repeat(1000);
    client.write_all(&sent).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let received = read_to_end(&mut client);
    check_segments(&received, prefix, &sent).unwrap();
}

/// What [`non_reading_client`] saw.
pub struct Backpressure {
    /// Bytes the client managed to write before the server stopped reading.
    pub written_before_stall: usize,
    /// How much the server's resident memory grew meanwhile, in KiB.
    pub rss_growth_kib: u64,
}

/// A client writes `total` bytes without reading. The server must stop
/// reading (so the writer stalls well short of `total`), a probe connection
/// must still be answered meanwhile, and once the client reads, everything
/// must arrive.
pub fn non_reading_client(server: &Server, prefix: &[u8], total: usize) -> Backpressure {
    let rss_before = server.rss_kib();
    let payload = Arc::new(Rng::new(7).payload(total));
    let mut client = connect(server.addr);
    let mut writer = client.try_clone().unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let (sent, progress) = (payload.clone(), written.clone());
    let writing = thread::spawn(move || {
        for piece in sent.chunks(16 * 1024) {
            writer.write_all(piece).unwrap();
            progress.fetch_add(piece.len(), Ordering::Relaxed);
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });

    // Stalled: no progress for half a second.
    let give_up = Instant::now() + DEADLINE;
    let mut last = (usize::MAX, Instant::now());
    let written_before_stall = loop {
        let now = written.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) {
            break now;
        }
        assert!(Instant::now() < give_up, "the writer neither stalled nor finished");
        thread::sleep(Duration::from_millis(20));
    };
    let rss_growth_kib = server.rss_kib().saturating_sub(rss_before);
    let mut probe = connect(server.addr);
    round_trip(&mut probe, prefix, b"probe while another client stalls\n");

    let received = read_to_end(&mut client);
    writing.join().unwrap();
    check_segments(&received, prefix, &payload).unwrap();
    Backpressure { written_before_stall, rss_growth_kib }
}

/// At a connection cap of `cap`, for the whole server: `cap` clients are
/// served, one more waits in the backlog while the others go on, and is
/// served once one of them leaves.
pub fn connection_cap(server: &Server, prefix: &[u8], cap: usize) {
    let mut served: Vec<TcpStream> = (0..cap).map(|_| connect(server.addr)).collect();
    for client in &mut served {
        round_trip(client, prefix, b"within the cap\n");
    }
    let mut waiting = connect(server.addr);
    waiting.write_all(b"over the cap\n").unwrap();
    waiting.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let early = waiting.read(&mut [0; 64]);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a client over a cap of {cap} was served: {early:?}"
    );
    round_trip(&mut served[cap - 1], prefix, b"the others go on\n");
    drop(served.remove(0));
    waiting.set_read_timeout(Some(DEADLINE)).unwrap();
    read_replies(&mut waiting, prefix, b"over the cap\n");
}

/// Clients that reset their connection, some with replies still in flight,
/// while a probe connection keeps talking: the probe never notices, and the
/// server keeps accepting.
pub fn resets_do_not_disturb_others(server: &Server, prefix: &[u8], resets: usize) {
    let mut probe = connect(server.addr);
    for i in 0..resets {
        let victim = connect(server.addr);
        let mut writer = victim.try_clone().unwrap();
        // Every other victim leaves a lot unread, so the server is mid-write.
        let size = if i % 2 == 0 { 100 } else { 512 * 1024 };
        let _ = writer.write_all(&vec![b'x'; size]);
        reset(victim);
        round_trip(&mut probe, prefix, format!("probe {i}\n").as_bytes());
    }
    let mut fresh = connect(server.addr);
    round_trip(&mut fresh, prefix, b"still accepting\n");
}

/// Closes `stream` with a TCP reset (RST) instead of a FIN.
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// A stalled client: see [`stall_with_probe`].
pub struct Stall {
    /// The client that stopped reading.
    pub staller: TcpStream,
    /// Its flood, which writes until a write fails; it says how the last
    /// write failed, and how long after the flood's last progress.
    pub flooding: thread::JoinHandle<(ErrorKind, Duration)>,
}

/// A client floods without reading until the server's stall timeout fires,
/// while a probe connection is answered before, during and after; then a new
/// client is served.
pub fn stall_with_probe(server: &Server, prefix: &[u8]) -> Stall {
    let mut probe = connect(server.addr);
    round_trip(&mut probe, prefix, b"before\n");
    let staller = connect(server.addr);
    let mut writer = staller.try_clone().unwrap();
    let flooding = thread::spawn(move || {
        let chunk = vec![b's'; 64 * 1024];
        let mut progress = Instant::now();
        loop {
            match writer.write_all(&chunk) {
                Ok(()) => progress = Instant::now(),
                Err(e) => return (e.kind(), progress.elapsed()),
            }
        }
    });
    let give_up = Instant::now() + DEADLINE;
    let mut during = 0;
    while server.count_lines("the client is not reading") == 0 {
        assert!(Instant::now() < give_up, "the stall timeout never fired:\n{}", server.log());
        round_trip(&mut probe, prefix, format!("during {during}\n").as_bytes());
        during += 1;
        thread::sleep(Duration::from_millis(50));
    }
    assert!(during > 0, "the stall timeout fired before the probe could be answered");
    for round in 0..10 {
        round_trip(&mut probe, prefix, format!("after {round}\n").as_bytes());
    }
    let mut fresh = connect(server.addr);
    round_trip(&mut fresh, prefix, b"a new client\n");
    Stall { staller, flooding }
}
