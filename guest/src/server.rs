//! The accept loop: one task per connection, and the log lines.
//!
//! What a connection does with its bytes is [`echo`]'s business; here a
//! connection is started, its errors are logged with its peer, and nothing a
//! client does can stop the loop.

use crate::config::Config;
use crate::echo::{self, Connection};
use crate::net::error::is_resource_exhaustion;
use crate::net::{TcpListener, TcpStream};
use crate::runtime::{self, time};
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// How long the accept loop pauses when the process is out of descriptors or
/// memory. Retrying at once would spin on a listener that stays ready;
/// 100 ms lets connections close meanwhile, as nginx does.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `config` until a fatal error: one that says the listener itself is
/// unusable.
pub async fn run(config: Config) -> io::Result<()> {
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
    })?;
    println!("listening on {}", listener.local_addr());
    let prefix: Rc<[u8]> = config.prefix.into();
    loop {
        match listener.accept().await {
            Ok(stream) => {
                runtime::spawn(connection(stream, prefix.clone()));
            }
            Err(e) if is_resource_exhaustion(&e) => {
                eprintln!("accept: {e}; pausing {} ms", ACCEPT_BACKOFF.as_millis());
                time::sleep(ACCEPT_BACKOFF).await;
            }
            // A client that vanished between connecting and being accepted,
            // and the like: its problem, not the listener's.
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

async fn connection(mut stream: TcpStream, prefix: Rc<[u8]>) {
    let peer = stream.peer_addr();
    println!("Connection from {peer}");
    if let Err(e) = echo::serve(&mut stream, &prefix).await {
        eprintln!("connection {peer}: {e}");
    }
    drop(stream);
    println!("Connection closed");
}

impl Connection for TcpStream {
    async fn read(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        TcpStream::read(self, max).await
    }

    async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        TcpStream::write(self, data).await
    }

    async fn finish(&mut self) -> io::Result<()> {
        self.shutdown_write().await
    }
}
