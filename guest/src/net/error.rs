//! The one mapping from WASI errors to [`std::io::Error`].

use std::io::{Error, ErrorKind};
use wasip2::io::streams::StreamError;
use wasip2::sockets::network::ErrorCode;

/// A `wasi:sockets` error code, as the closest [`ErrorKind`], with the WASI
/// name kept in the message.
pub(crate) fn from_code(code: ErrorCode) -> Error {
    let kind = match code {
        ErrorCode::AccessDenied => ErrorKind::PermissionDenied,
        ErrorCode::NotSupported => ErrorKind::Unsupported,
        ErrorCode::InvalidArgument => ErrorKind::InvalidInput,
        ErrorCode::OutOfMemory => ErrorKind::OutOfMemory,
        ErrorCode::Timeout => ErrorKind::TimedOut,
        ErrorCode::WouldBlock => ErrorKind::WouldBlock,
        ErrorCode::AddressNotBindable => ErrorKind::AddrNotAvailable,
        ErrorCode::AddressInUse => ErrorKind::AddrInUse,
        ErrorCode::RemoteUnreachable => ErrorKind::HostUnreachable,
        ErrorCode::ConnectionRefused => ErrorKind::ConnectionRefused,
        ErrorCode::ConnectionReset => ErrorKind::ConnectionReset,
        ErrorCode::ConnectionAborted => ErrorKind::ConnectionAborted,
        ErrorCode::NewSocketLimit => ErrorKind::QuotaExceeded,
        _ => ErrorKind::Other,
    };
    Error::new(kind, code.name())
}

/// A `wasi:io/streams` error. `closed` on a write means the peer is gone.
pub(crate) fn from_stream(error: StreamError) -> Error {
    match error {
        StreamError::Closed => Error::new(ErrorKind::BrokenPipe, "stream closed"),
        // The error resource says no more than its debug string: the
        // `network-error-code` accessor is not part of WASI 0.2.
        StreamError::LastOperationFailed(error) => Error::other(error.to_debug_string()),
    }
}

/// Accept errors that concern one client only, which left before it was
/// accepted: the accept loop just goes on.
///
/// Every other accept error is taken as the process running short of
/// something (descriptors, memory) and met with a pause. `echo-host` says
/// `new-socket-limit` for an exhausted descriptor table (EMFILE), but
/// Wasmtime's own WASI, under the stock CLI, says `unknown`, so the loop
/// cannot wait for that code alone.
pub(crate) fn is_client_gone(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}
