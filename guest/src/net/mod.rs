//! TCP over `wasi:sockets`, with operations that await readiness instead of
//! blocking.
//!
//! [`TcpListener`] binds, listens and accepts; [`TcpStream`] reads, writes
//! and shuts down. Each subscribes once to the pollables it needs and parks
//! on them through [`runtime::readiness`](crate::runtime::readiness). WASI
//! error codes become [`std::io::Error`]s in one place, [`error`].

mod address;
pub(crate) mod error;
mod listener;
mod stream;

pub use listener::TcpListener;
pub use stream::TcpStream;
