//! The figures over HTTP, for Prometheus, Kubernetes and load balancers:
//!
//! - `/metrics`: every figure, in the OpenMetrics text format;
//! - `/healthz`: 200 while the host runs;
//! - `/readyz`: 200 while every worker's guest listens; 503 while one does
//!   not (it is starting, or restarting after a trap); 404 once the host
//!   is shutting down. A load balancer told to take 404 as "drain"
//!   (HAProxy's `http-check disable-on-404`) sends no new connections but
//!   lets the open ones finish; to Kubernetes, any of the two is "not
//!   ready".

use super::{Metrics, Readiness};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server pauses after a failed accept (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `metrics` to every client of `listener`, for as long as the
/// runtime runs.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("metrics: accept: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let answer = service_fn(|request| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), answer);
            if let Err(e) = connection.await {
                tracing::debug!("metrics: a connection ended with {e}");
            }
        });
    }
}

fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = text(StatusCode::OK, metrics.encode());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match metrics.readiness() {
            Readiness::Ready => text(StatusCode::OK, "ready\n".into()),
            Readiness::NotListening(worker) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: worker {worker}'s guest is not listening\n"),
            ),
            Readiness::Draining => text(
                StatusCode::NOT_FOUND,
                "draining: finishing the open connections, taking no new ones\n".into(),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
