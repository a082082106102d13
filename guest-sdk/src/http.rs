//! Outbound HTTP from an actor, over `wasi:http/outgoing-handler` (feature
//! `http`).
//!
//! The host sends a request only if the actor's `http` grant allows its
//! URL; anything else fails with [`Error::Http`] holding
//! `HTTP-request-denied`. Waiting for a response suspends the actor
//! without holding a host thread, and does not count against its
//! per-message deadline.
//!
//! ```ignore
//! let doc = troupe_guest::http::get("https://api.example.com/v1/status")?;
//! assert_eq!(doc.status, 200);
//! let text = doc.text();
//! ```
//!
//! [`send`] never follows redirects; [`get_following`] does, and each
//! redirect is a new request that the host checks against the grant like
//! the first, so a redirect cannot lead outside it.

use std::fmt;

mod wasi {
    wit_bindgen::generate!({
        path: "wasi-http",
        world: "troupe:guest-sdk-http/http",
        generate_all,
    });
}

use wasi::wasi::http::outgoing_handler;
use wasi::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::wasi::io::streams::StreamError;

/// A request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// How long to wait for the response head, in milliseconds (shortens
    /// the grant's `first-byte-timeout-ms`, never lengthens it).
    pub timeout_ms: Option<u64>,
}

impl Request {
    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request { method: "GET".into(), url: url.into(), headers: Vec::new(), body: None, timeout_ms: None }
    }

    /// A `POST` of `body` to `url`.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Request {
            method: "POST".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Some(body.into()),
            timeout_ms: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A response, its body read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (any case), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The URL is not an absolute `http://` or `https://` URL.
    Url(String),
    /// The host or the server refused or failed it: the `wasi:http` error,
    /// e.g. `HTTP-request-denied` (outside the grant),
    /// `connection-read-timeout`, `connection-limit-reached`, or
    /// `internal-error("circuit-open: ...")` while a breaker is open.
    Http(String),
    /// Too many redirects ([`get_following`]).
    Redirects(u32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(url) => write!(f, "not an absolute http(s) URL: {url}"),
            Error::Http(code) => f.write_str(code),
            Error::Redirects(n) => write!(f, "more than {n} redirects"),
        }
    }
}

impl std::error::Error for Error {}

/// The `wasi:http` error code as its WIT name (with its detail, if any).
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::DnsTimeout => "DNS-timeout".into(),
        ErrorCode::DnsError(e) => format!("DNS-error({})", e.rcode.clone().unwrap_or_default()),
        ErrorCode::DestinationNotFound => "destination-not-found".into(),
        ErrorCode::DestinationUnavailable => "destination-unavailable".into(),
        ErrorCode::DestinationIpProhibited => "destination-IP-prohibited".into(),
        ErrorCode::ConnectionRefused => "connection-refused".into(),
        ErrorCode::ConnectionTerminated => "connection-terminated".into(),
        ErrorCode::ConnectionTimeout => "connection-timeout".into(),
        ErrorCode::ConnectionReadTimeout => "connection-read-timeout".into(),
        ErrorCode::ConnectionLimitReached => "connection-limit-reached".into(),
        ErrorCode::TlsProtocolError => "TLS-protocol-error".into(),
        ErrorCode::TlsCertificateError => "TLS-certificate-error".into(),
        ErrorCode::TlsAlertReceived(alert) => {
            format!("TLS-alert-received({})", alert.alert_message.clone().unwrap_or_default())
        }
        ErrorCode::HttpRequestDenied => "HTTP-request-denied".into(),
        ErrorCode::HttpRequestBodySize(_) => "HTTP-request-body-size".into(),
        ErrorCode::HttpResponseBodySize(_) => "HTTP-response-body-size".into(),
        ErrorCode::HttpResponseTimeout => "HTTP-response-timeout".into(),
        ErrorCode::HttpProtocolError => "HTTP-protocol-error".into(),
        ErrorCode::InternalError(detail) => format!("internal-error({})", detail.clone().unwrap_or_default()),
        other => format!("{other:?}"),
    }
}

/// `GET url`.
///
/// # Errors
///
/// See [`Error`].
pub fn get(url: &str) -> Result<Response, Error> {
    send(&Request::get(url))
}

/// `GET url`, following up to `max_redirects` redirects (301, 302, 303,
/// 307, 308) as new `GET`s; each is checked against the grant.
///
/// # Errors
///
/// See [`Error`].
pub fn get_following(url: &str, max_redirects: u32) -> Result<Response, Error> {
    let mut url = url.to_string();
    for _ in 0..=max_redirects {
        let response = get(&url)?;
        match (response.status, response.header("location")) {
            (301 | 302 | 303 | 307 | 308, Some(location)) => url = resolve(&url, &location),
            _ => return Ok(response),
        }
    }
    Err(Error::Redirects(max_redirects))
}

/// `location` made absolute against `base` (absolute, or a path on the
/// same origin).
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let origin_end = base.find("://").map(|i| i + 3).and_then(|i| base[i..].find('/').map(|j| i + j));
    let origin = origin_end.map_or(base, |end| &base[..end]);
    format!("{origin}/{}", location.trim_start_matches('/'))
}

/// Sends `request` and reads the whole response.
///
/// # Errors
///
/// See [`Error`].
pub fn send(request: &Request) -> Result<Response, Error> {
    start(request)?.wait()
}

/// A request sent and not yet answered: several can be in flight at
/// once ([`Pending::wait`] each).
pub struct Pending(wasi::wasi::http::types::FutureIncomingResponse);

/// Sends `request` without waiting for its response.
///
/// # Errors
///
/// See [`Error`].
pub fn start(request: &Request) -> Result<Pending, Error> {
    let (scheme, rest) = match request.url.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        _ => return Err(Error::Url(request.url.clone())),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let headers = Fields::new();
    for (name, value) in &request.headers {
        headers.append(name, value).map_err(|e| Error::Http(format!("header `{name}`: {e:?}")))?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method.as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let invalid = |_| Error::Url(request.url.clone());
    outgoing.set_method(&method).map_err(invalid)?;
    outgoing.set_scheme(Some(&scheme)).map_err(invalid)?;
    outgoing.set_authority(Some(authority)).map_err(invalid)?;
    outgoing.set_path_with_query(Some(path)).map_err(invalid)?;
    let body = match &request.body {
        Some(bytes) => {
            let body = outgoing.body().map_err(|_| Error::Http("the request body was taken".into()))?;
            write_all(&body, bytes)?;
            Some(body)
        }
        None => None,
    };
    let options = request.timeout_ms.map(|ms| {
        let options = RequestOptions::new();
        let _ = options.set_first_byte_timeout(Some(ms * 1_000_000));
        options
    });
    let future = outgoing_handler::handle(outgoing, options).map_err(|e| Error::Http(describe(&e)))?;
    if let Some(body) = body {
        OutgoingBody::finish(body, None).map_err(|e| Error::Http(describe(&e)))?;
    }
    Ok(Pending(future))
}

fn write_all(body: &OutgoingBody, mut bytes: &[u8]) -> Result<(), Error> {
    let stream = body.write().map_err(|_| Error::Http("the request body stream was taken".into()))?;
    while !bytes.is_empty() {
        let n = stream.check_write().map_err(stream_error)?;
        if n == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = (n as usize).min(bytes.len());
        stream.write(&bytes[..n]).map_err(stream_error)?;
        bytes = &bytes[n..];
    }
    stream.blocking_flush().map_err(stream_error)?;
    Ok(())
}

fn stream_error(e: StreamError) -> Error {
    match e {
        StreamError::LastOperationFailed(e) => Error::Http(e.to_debug_string()),
        StreamError::Closed => Error::Http("stream closed".into()),
    }
}

impl Pending {
    /// Waits for the response and reads its body.
    ///
    /// # Errors
    ///
    /// See [`Error`].
    pub fn wait(self) -> Result<Response, Error> {
        self.0.subscribe().block();
        let response = match self.0.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(Error::Http(describe(&code))),
            Some(Err(())) | None => return Err(Error::Http("the response was already taken".into())),
        };
        let status = response.status();
        let headers = response.headers().entries();
        let body = response.consume().map_err(|_| Error::Http("the response body was taken".into()))?;
        // Children go before their parents: the stream (in `read_all`),
        // the body, then the response.
        let bytes = read_all(&body);
        drop(body);
        drop(response);
        Ok(Response { status, headers, body: bytes? })
    }
}

fn read_all(body: &IncomingBody) -> Result<Vec<u8>, Error> {
    let stream = body.stream().map_err(|_| Error::Http("the response body stream was taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                // The body's own failure (a timeout, the size limit) is a
                // `wasi:http` error code behind the I/O error.
                let detail = match wasi::wasi::http::types::http_error_code(&e) {
                    Some(code) => describe(&code),
                    None => e.to_debug_string(),
                };
                return Err(Error::Http(detail));
            }
        }
    }
    Ok(bytes)
}
