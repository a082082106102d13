//! Scenario 22: an HTTP actor serving through the gateway: the third-party
//! `hello-http` component (the `wasi` crate's hello world) on a route,
//! requests over keep-alive connections, each a message to the actor;
//! beside a bare hyper server answering the same bytes natively, through
//! the same client, in one run. (`wasmtime serve`, the other baseline
//! people would expect, is not built here: see BENCHMARKS.md.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use tokio::net::{TcpListener, TcpStream};
use troupe::gateway::Gateway;
use troupe::{ActorTemplate, Host};

use crate::Scale;
use crate::measure::{on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::guest_path;

/// Keep-alive connections the client runs at once.
const CONNECTIONS: usize = 4;

/// A native server answering every request with `Hello, WASI!`, keeping
/// connections alive.
async fn native_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let io = wasmtime_wasi_http::io::TokioIo::new(stream);
            let service = hyper::service::service_fn(|_request| async {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"Hello, WASI!"))))
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

/// `n` requests for `path` on `addr` over [`CONNECTIONS`] keep-alive
/// connections: each request's latency, and the requests per second.
async fn load(addr: SocketAddr, path: &'static str, n: usize) -> (Vec<Duration>, f64) {
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connects");
            let io = wasmtime_wasi_http::io::TokioIo::new(stream);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("handshakes");
            tokio::spawn(conn);
            let mut latencies = Vec::with_capacity(n / CONNECTIONS);
            for _ in 0..n / CONNECTIONS {
                let request = http::Request::get(path)
                    .header(http::header::HOST, "localhost")
                    .body(Empty::<Bytes>::new())
                    .expect("a request");
                let begun = Instant::now();
                let response = sender.send_request(request).await.expect("answered");
                assert_eq!(response.status(), 200);
                let body = response.into_body().collect().await.expect("the body").to_bytes();
                assert_eq!(&body[..], b"Hello, WASI!");
                latencies.push(begun.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(n);
    for client in clients {
        all.extend(client.await.expect("the client ran"));
    }
    let per_second = all.len() as f64 / started.elapsed().as_secs_f64();
    (all, per_second)
}

/// 22: requests to an HTTP actor through its route, and to a native server.
pub async fn http_actors(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    let component = host.load("hello-http", &guest_path("hello-http"), None).expect("hello-http loads");
    host.spawn(ActorTemplate::new(component).spec("bench-hello".into())).await.expect("hello-http starts");
    host.add_routes("bench-hello", &["/hello/*".to_string()]).expect("the route is free");
    let gateway =
        Gateway::bind("127.0.0.1:0".parse().expect("an address"), Default::default()).await.expect("the gateway binds");
    let addr = gateway.local_addr();
    tokio::spawn(gateway.serve(host.clone()));
    let native = native_server().await;
    let n = (scale.asks / 5).max(CONNECTIONS * 10);
    // Warm both: connections, the actor's instance, the allocator.
    on_runtime(load(addr, "/hello", CONNECTIONS * 10)).await;
    on_runtime(load(native, "/hello", CONNECTIONS * 10)).await;
    let (mut troupe, troupe_rps) = on_runtime(load(addr, "/hello", n)).await;
    let (mut bare, bare_rps) = on_runtime(load(native, "/hello", n)).await;
    let (t99, b99) = (percentile(&mut troupe, 0.99), percentile(&mut bare, 0.99));
    rows.push(row(
        &format!("22. wasi:http hello world through a route, {CONNECTIONS} keep-alive connections (requests/s)"),
        format!("{troupe_rps:.0}/s"),
        format!("native hyper {bare_rps:.0}/s"),
        Some(bare_rps / troupe_rps),
        "-",
    ));
    rows.push(row(
        &format!("22. wasi:http hello world through a route, {CONNECTIONS} keep-alive connections (p99)"),
        ns(t99),
        format!("native hyper {}", ns(b99)),
        Some(t99.as_secs_f64() / b99.as_secs_f64()),
        "-",
    ));
}
