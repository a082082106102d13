//! Scenario 21: an actor called over HTTP (`POST
//! /v1/actors/{address}/call/incr` with JSON arguments, through the
//! gateway, on keep-alive connections) beside a bare axum handler doing no
//! work, both loaded by the same in-process generator (hyper's HTTP/1.1
//! client, a few hundred connections opened before the clock starts, each
//! sending its next request when the last is answered), rounds
//! interleaved, in one run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use http_body_util::{BodyExt, Full};
use tokio::net::{TcpSocket, TcpStream};
use troupe::gateway::{Gateway, LISTEN_BACKLOG, Tokens};

use crate::Scale;
use crate::measure::{median, percentile};
use crate::report::{Row, ns, row};
use crate::support::define;

/// Rounds of each system, interleaved; the median round's rate counts.
const ROUNDS: usize = 3;

/// The path both servers answer: an actor call through the gateway.
const CALL_PATH: &str = "/v1/actors/http-counter/call/incr";

/// The bare handler: no work, a reply of the gateway's shape.
async fn bare_server() -> SocketAddr {
    // The gateway's backlog: with the default 128, connections opened at
    // once wait a second for their retry.
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("a loopback port");
    let listener = socket.listen(LISTEN_BACKLOG).expect("listens");
    let addr = listener.local_addr().expect("its address");
    let app = Router::new().route("/v1/actors/{*path}", post(|| async { r#"{"result":1}"# }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A troupe gateway over a host running a counter at `http-counter`; the
/// host's messages timed, as `troupe run --http` has them.
async fn gateway_server() -> SocketAddr {
    let host = crate::timed_host(16, 64 << 20);
    let entry = define(&host, "counter");
    host.spawn(entry.spec("http-counter".into())).await.expect("the counter starts");
    let gateway = Gateway::bind("127.0.0.1:0".parse().unwrap(), Tokens::default()).await.expect("the gateway binds");
    let addr = gateway.local_addr();
    tokio::spawn(gateway.serve(host));
    addr
}

/// One round: `connections` keep-alive connections to `addr`, all open
/// before the clock starts, send `total` calls in all, each its next when
/// the last is answered. Requests per second, and every request's
/// latency.
async fn round(addr: SocketAddr, connections: usize, total: usize) -> (f64, Vec<Duration>) {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = TcpStream::connect(addr).await.expect("connects");
        stream.set_nodelay(true).expect("no delay");
        let io = wasmtime_wasi_http::io::TokioIo::new(stream);
        let (sender, connection) = hyper::client::conn::http1::handshake(io).await.expect("handshakes");
        tokio::spawn(connection);
        senders.push(sender);
    }
    let left = Arc::new(AtomicUsize::new(total));
    let started = Instant::now();
    let clients: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let left = left.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                    let request = http::Request::post(CALL_PATH)
                        .header(http::header::HOST, addr.to_string())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(Full::new(bytes::Bytes::from_static(b"[1]")))
                        .expect("a request");
                    let t0 = Instant::now();
                    sender.ready().await.expect("the connection stays open");
                    let response = sender.send_request(request).await.expect("answered");
                    assert_eq!(response.status(), 200, "the call succeeds");
                    response.into_body().collect().await.expect("the body");
                    latencies.push(t0.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for client in clients {
        latencies.extend(client.await.expect("the client"));
    }
    (total as f64 / started.elapsed().as_secs_f64(), latencies)
}

/// 21: calls over HTTP through the gateway, and a bare handler's floor.
pub async fn gateway(scale: Scale, rows: &mut Vec<Row>) {
    let connections = if scale.smoke { 8 } else { 256 };
    let total = scale.asks * 2;
    let (troupe_addr, bare_addr) = (gateway_server().await, bare_server().await);
    let (mut troupe_rates, mut bare_rates) = (Vec::new(), Vec::new());
    let (mut troupe_latencies, mut bare_latencies) = (Vec::new(), Vec::new());
    // A warm-up round each: connections, the instance, allocator caches.
    round(troupe_addr, connections, total / 10).await;
    round(bare_addr, connections, total / 10).await;
    for _ in 0..ROUNDS {
        let (rate, latencies) = round(troupe_addr, connections, total).await;
        troupe_rates.push(rate);
        troupe_latencies.extend(latencies);
        let (rate, latencies) = round(bare_addr, connections, total).await;
        bare_rates.push(rate);
        bare_latencies.extend(latencies);
    }
    // Rates as durations per request, so that `median` applies.
    let per = |rates: Vec<f64>| median(rates.into_iter().map(|r| Duration::from_secs_f64(1.0 / r)).collect());
    let (troupe_rate, bare_rate) = (1.0 / per(troupe_rates).as_secs_f64(), 1.0 / per(bare_rates).as_secs_f64());
    let (t99, b99) = (percentile(&mut troupe_latencies, 0.99), percentile(&mut bare_latencies, 0.99));
    let (t50, b50) = (percentile(&mut troupe_latencies, 0.5), percentile(&mut bare_latencies, 0.5));
    rows.push(row(
        &format!(
            "21. actor call over HTTP (`POST .../call/incr`, JSON, {connections} keep-alive connections): \
             requests/s, p50 / p99"
        ),
        format!("{troupe_rate:.0}/s, {} / {}", ns(t50), ns(t99)),
        format!("bare axum handler {bare_rate:.0}/s, {} / {}", ns(b50), ns(b99)),
        Some(troupe_rate / bare_rate),
        ">= 0.5x the bare handler's requests/s",
    ));
}
