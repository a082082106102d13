//! Scenario 20: an outbound HTTP request from an actor (a `GET` through
//! `wasi:http`: the allow-list, the address check, a connection per
//! request, the guest reading the body) beside the same request from
//! native Rust (hyper's HTTP/1.1 client, a connection per request too),
//! against the same loopback server, in one run.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use troupe::outbound::{HttpClient, HttpGrant};
use troupe::{ActorTemplate, Host};

use crate::Scale;
use crate::measure::{ASK_TIMEOUT, latencies, on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::{ask_call, guest_path};

/// A server answering `200 hello` to each request, closing each connection.
async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ =
                    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello").await;
            });
        }
    });
    addr
}

/// One `GET /ok` from native Rust, body read.
async fn native_get(addr: SocketAddr) {
    let stream = TcpStream::connect(addr).await.expect("connects");
    let io = wasmtime_wasi_http::io::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("handshakes");
    tokio::spawn(conn);
    let request = http::Request::get("/ok")
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<bytes::Bytes>::new())
        .expect("a request");
    let response = sender.send_request(request).await.expect("answered");
    response.into_body().collect().await.expect("the body");
}

/// 20: an outbound request's round trip, from an actor and from native code.
pub async fn outbound(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    let addr = serve().await;
    let component = host.load("fetcher", &guest_path("fetcher"), None).expect("the fetcher loads");
    let mut entry = ActorTemplate::new(component);
    let grant = HttpGrant::of_patterns([format!("http://{addr}/*")]);
    entry.policy.grants.http = Some(HttpClient::access(grant).expect("a valid grant"));
    let actor = host.spawn(entry.spec("outbound-fetcher".into())).await.expect("the fetcher starts");
    let get = actor.parse(&format!("get(\"http://{addr}/ok\")")).expect("get parses");
    let n = (scale.asks / 20).max(5);
    let mut troupe = on_runtime(latencies(n, async move || {
        ask_call(&actor, &get, ASK_TIMEOUT).await;
    }))
    .await;
    let mut native = on_runtime(latencies(n, async move || native_get(addr).await)).await;
    let (t50, n50) = (percentile(&mut troupe, 0.5), percentile(&mut native, 0.5));
    rows.push(row(
        "20. outbound HTTP GET from an actor, loopback, a connection each (p50)",
        ns(t50),
        format!("native hyper {}", ns(n50)),
        Some(t50.as_secs_f64() / n50.as_secs_f64()),
        "-",
    ));
}
