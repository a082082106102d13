//! The HTTP allow-list of an actor's grant: which URLs it may request.
//!
//! # Patterns
//!
//! A pattern is a URL without query, fragment or credentials, whose path
//! either ends in the segment `*` (a prefix) or is exact:
//!
//! | pattern | allows |
//! |---|---|
//! | `https://api.example.com/v1/*` | `/v1`, `/v1/`, `/v1/x/y`; not `/v10`, `/v2`, `/` |
//! | `https://api.example.com/v1/status` | `/v1/status` only (not `/v1/status/`) |
//! | `https://api.example.com/*` | every path of that host |
//! | `http://127.0.0.1:8080/*` | that address and port |
//! | `https://*.example.com/*` | every name *under* `example.com` (`a.example.com`, `a.b.example.com`), not `example.com` itself |
//!
//! * **Scheme**: `http` or `https`, nothing else.
//! * **Host**: a name (compared without regard to case, one trailing dot
//!   ignored), an IPv4 address, or an IPv6 address in brackets. A
//!   *subdomain wildcard* `*.` may stand as the whole leftmost label of a
//!   name of at least two labels: `*.example.com`, never `*.com`, `a*.b.c`
//!   or `*`; there is no other wildcard in the host, and none for addresses.
//! * **Port**: written, or the scheme's default (80, 443): a request matches
//!   on the port it will connect to, so `https://h/*` and `https://h:443/*`
//!   are the same pattern.
//! * **Path**: a pattern must have one; to allow a whole host, end it in
//!   `/*`. `*` may only be the whole last segment; `.` and `..` segments and
//!   percent-encoded `/`, `\` or `%` are refused in patterns.
//!
//! # Matching a request
//!
//! A request URL is parsed and normalised as browsers do (the WHATWG URL
//! rules of the `url` crate): the scheme and host are lowercased, `\` is
//! `/`, `.` and `..` segments (also written `%2e`) are resolved, IPv4
//! addresses in any notation (`2130706433`, `0x7f.1`) become dotted quads.
//! Then the path is checked for **ambiguous encodings**, which are refused
//! whatever the patterns: after percent-decoding each segment once,
//!
//! * a segment that still contains a percent-encoding (a double encoding
//!   such as `%252e`), or a NUL byte, is refused;
//! * a segment holding an encoded `/` or `\` is split there, and if any
//!   part is `.` or `..` (also before a `;` parameter, as in `..;`), the
//!   request is refused: a server that decodes `%2F` or resolves `..;`
//!   would otherwise walk out of the allowed prefix.
//!
//! An encoded `/` that forms no dot segment (`/projects/group%2Fname`) is
//! allowed: the pattern's segments are compared with the request's decoded
//! segments one by one, and a pattern segment never contains `/`, so such a
//! segment can only match below the prefix. A request matches a pattern
//! when scheme, host, port and path all match; the query is not part of the
//! decision. A request is allowed when some pattern matches.
//!
//! # Resolved addresses
//!
//! An allowed request to a *name* gets a [`Permit`]; before connecting,
//! every address the name resolved to goes through
//! [`Permit::check_address`]. A loopback, private (including the shared
//! `100.64.0.0/10`), link-local, unique-local or unspecified address (IPv4,
//! IPv6, and IPv4 mapped into IPv6; see [`AddressClass`]) is refused unless
//! a matching pattern names the host itself: an IP literal, or the exact
//! name. Naming a host exactly is trusting its DNS; a subdomain wildcard is
//! not, since a name under it may be made to resolve to `127.0.0.1` to reach
//! the host's own services.
//!
//! # Redirects
//!
//! A redirect target is a new request: [`HttpAllowList::check_redirect`]
//! resolves `Location` against the URL that was requested and checks the
//! result like any request, so redirects never lead outside the list.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// The URLs an actor may request: a list of patterns (see the module doc).
/// Empty by default, which allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct HttpAllowList {
    patterns: Vec<HttpPattern>,
}

impl HttpAllowList {
    /// Parses every pattern.
    ///
    /// # Errors
    ///
    /// A [`PatternError`] for the first pattern that does not parse, naming
    /// it, the problem and the fix.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let patterns = patterns.iter().map(|p| p.as_ref().parse()).collect::<Result<_, _>>()?;
        Ok(HttpAllowList { patterns })
    }

    /// The patterns, in the order written.
    pub fn patterns(&self) -> &[HttpPattern] {
        &self.patterns
    }

    /// Allows nothing?
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// May the actor request `url`?
    ///
    /// # Errors
    ///
    /// A [`Denial`] saying why not.
    pub fn check(&self, url: &str) -> Result<Permit, Denial> {
        let parsed = Url::parse(url).map_err(|e| Denial::NotAUrl { url: url.to_string(), reason: e.to_string() })?;
        self.check_url(&parsed)
    }

    /// May the actor request `url` (already parsed, hence normalised)?
    ///
    /// # Errors
    ///
    /// A [`Denial`] saying why not.
    pub fn check_url(&self, url: &Url) -> Result<Permit, Denial> {
        let request = Request::of(url)?;
        let mut permit: Option<(usize, AddressRule)> = None;
        for (index, pattern) in self.patterns.iter().enumerate() {
            if let Some(rule) = pattern.matches(&request) {
                permit = Some(match (permit, rule) {
                    (Some((first, AddressRule::AnyAddress)), _) => (first, AddressRule::AnyAddress),
                    (Some((first, _)), rule) => (first, rule),
                    (None, rule) => (index, rule),
                });
            }
        }
        match permit {
            Some((pattern, addresses)) => Ok(Permit { url: url.clone(), addresses, pattern }),
            None => Err(Denial::NotAllowed { url: url.to_string() }),
        }
    }

    /// May the actor follow a redirect from `from` to `location` (the
    /// `Location` header, absolute or relative)? Checked like a new request.
    ///
    /// # Errors
    ///
    /// A [`Denial`] saying why not.
    pub fn check_redirect(&self, from: &Url, location: &str) -> Result<Permit, Denial> {
        let target =
            from.join(location).map_err(|e| Denial::NotAUrl { url: location.to_string(), reason: e.to_string() })?;
        self.check_url(&target)
    }
}

impl TryFrom<Vec<String>> for HttpAllowList {
    type Error = PatternError;

    fn try_from(patterns: Vec<String>) -> Result<Self, PatternError> {
        HttpAllowList::parse(&patterns)
    }
}

impl From<HttpAllowList> for Vec<String> {
    fn from(list: HttpAllowList) -> Self {
        list.patterns.into_iter().map(|p| p.text).collect()
    }
}

/// An allowed request, still to be checked against the addresses its host
/// resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    /// The request URL, normalised.
    pub url: Url,
    /// Which resolved addresses may be connected to.
    pub addresses: AddressRule,
    /// The index of the first pattern that matched: the one whose breaker
    /// and retries apply.
    pub pattern: usize,
}

impl Permit {
    /// May the request connect to `address`, one its host resolved to?
    ///
    /// # Errors
    ///
    /// [`Denial::PrivateAddress`] for a loopback, private, link-local,
    /// unique-local or unspecified address that no pattern named.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Denial> {
        match (self.addresses, AddressClass::of(address)) {
            (AddressRule::PublicOnly, Some(class)) => Err(Denial::PrivateAddress {
                host: self.url.host_str().unwrap_or_default().to_string(),
                address,
                class,
            }),
            _ => Ok(()),
        }
    }
}

/// Which addresses an allowed request may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressRule {
    /// Any: a matching pattern names the host exactly (or its address).
    AnyAddress,
    /// Public addresses only: the host matched through a subdomain wildcard.
    PublicOnly,
}

/// The kinds of address a name may not resolve to unless named; see the
/// module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, and the shared
    /// (carrier-grade NAT) `100.64.0.0/10`.
    Private,
    /// `169.254.0.0/16` (where cloud metadata services live), `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `0.0.0.0/8` (which Linux connects to this host), `::`.
    Unspecified,
}

impl AddressClass {
    /// The class of `address`, or `None` for an address that may be reached
    /// through any allowed name. An IPv4 address mapped into IPv6
    /// (`::ffff:127.0.0.1`) is classed as the IPv4 address.
    pub fn of(address: IpAddr) -> Option<AddressClass> {
        match address {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                if v4.is_loopback() {
                    Some(AddressClass::Loopback)
                } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                    Some(AddressClass::Private)
                } else if v4.is_link_local() {
                    Some(AddressClass::LinkLocal)
                } else if a == 0 {
                    Some(AddressClass::Unspecified)
                } else {
                    None
                }
            }
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    AddressClass::of(IpAddr::V4(v4))
                } else if v6.is_loopback() {
                    Some(AddressClass::Loopback)
                } else if v6.is_unspecified() {
                    Some(AddressClass::Unspecified)
                } else if v6.is_unicast_link_local() {
                    Some(AddressClass::LinkLocal)
                } else if v6.is_unique_local() {
                    Some(AddressClass::UniqueLocal)
                } else {
                    None
                }
            }
        }
    }

    /// The name used in messages, e.g. `link-local`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::Unspecified => "unspecified",
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The URL does not parse.
    #[error("`{url}` is not a URL: {reason}")]
    NotAUrl {
        /// The URL as given.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// No pattern of the allow-list matches the URL.
    #[error("`{url}` is not in the actor's HTTP allow-list")]
    NotAllowed {
        /// The URL, normalised.
        url: String,
    },
    /// The path could mean different things to different servers.
    #[error("`{url}` is refused: its path {reason}")]
    AmbiguousPath {
        /// The URL, normalised.
        url: String,
        /// What is ambiguous.
        reason: &'static str,
    },
    /// The host resolved to an address only a pattern naming it may reach.
    #[error(
        "`{host}` resolved to {address}, a {} address; allow it by naming the host exactly in a pattern, not through a wildcard",
        class.as_str()
    )]
    PrivateAddress {
        /// The host name requested.
        host: String,
        /// The address it resolved to.
        address: IpAddr,
        /// What kind of address that is.
        class: AddressClass,
    },
}

/// One pattern of an [`HttpAllowList`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPattern {
    text: String,
    scheme: Scheme,
    host: HostPattern,
    port: u16,
    path: PathPattern,
}

impl HttpPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does this pattern allow every request `other` allows, with no
    /// address `other` may reach that this one may not? Same scheme and
    /// port; the same host (a subdomain wildcard covers itself and the
    /// wildcards under it, never an exact name, which may reach private
    /// addresses the wildcard may not); a path inside this one's.
    pub fn covers(&self, other: &HttpPattern) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        let host = match (&self.host, &other.host) {
            (HostPattern::Address(a), HostPattern::Address(b)) => a == b,
            (HostPattern::Name(a), HostPattern::Name(b)) => a == b,
            (HostPattern::Subdomains(a), HostPattern::Subdomains(b)) => {
                b == a
                    || (b.len() > a.len() + 1 && b.ends_with(a.as_str()) && b.as_bytes()[b.len() - a.len() - 1] == b'.')
            }
            _ => false,
        };
        host && self.path.covers(&other.path)
    }

    /// Does `request` match, and if so which addresses may it reach?
    fn matches(&self, request: &Request) -> Option<AddressRule> {
        if request.scheme != self.scheme || request.port != self.port || !self.path.matches(&request.segments) {
            return None;
        }
        match (&self.host, &request.host) {
            (HostPattern::Address(want), RequestHost::Address(got)) if want == got => Some(AddressRule::AnyAddress),
            (HostPattern::Name(want), RequestHost::Name(got)) if want == got => Some(AddressRule::AnyAddress),
            (HostPattern::Subdomains(suffix), RequestHost::Name(got))
                if got.len() > suffix.len() + 1
                    && got.ends_with(suffix.as_str())
                    && got.as_bytes()[got.len() - suffix.len() - 1] == b'.' =>
            {
                Some(AddressRule::PublicOnly)
            }
            _ => None,
        }
    }
}

impl fmt::Display for HttpPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for HttpPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, PatternError> {
        let err = |problem: PatternProblem| PatternError { pattern: text.to_string(), problem };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err(PatternProblem::Empty));
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Err(err(PatternProblem::NoScheme));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(err(PatternProblem::Scheme(scheme.to_string()))),
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(authority_end);
        if after.contains(['?', '#']) {
            return Err(err(PatternProblem::QueryOrFragment));
        }
        if after.is_empty() {
            return Err(err(PatternProblem::NoPath));
        }
        if authority.contains('@') {
            return Err(err(PatternProblem::Credentials));
        }
        let (wildcard, authority) = match authority.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, authority),
        };
        if authority.contains('*') || authority.is_empty() {
            return Err(err(PatternProblem::HostWildcard));
        }
        let raw_segments: Vec<&str> = after[1..].split('/').collect();
        if raw_segments.iter().any(|s| matches!(*s, "." | "..")) {
            return Err(err(PatternProblem::DotSegment));
        }
        let url = Url::parse(&format!("{}://{authority}{after}", scheme.as_str()))
            .map_err(|e| err(PatternProblem::Url(e.to_string())))?;
        let host = match url.host() {
            Some(Host::Domain(name)) if wildcard => {
                if name.trim_end_matches('.').split('.').count() < 2 {
                    return Err(err(PatternProblem::HostWildcard));
                }
                HostPattern::Subdomains(name.trim_end_matches('.').to_string())
            }
            Some(Host::Domain(name)) => HostPattern::Name(name.trim_end_matches('.').to_string()),
            Some(_) if wildcard => return Err(err(PatternProblem::HostWildcard)),
            Some(Host::Ipv4(a)) => HostPattern::Address(IpAddr::V4(a)),
            Some(Host::Ipv6(a)) => HostPattern::Address(IpAddr::V6(a)),
            None => return Err(err(PatternProblem::Url("no host".into()))),
        };
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        let mut segments = Vec::new();
        let mut prefix = false;
        let mut parts = url.path()[1..].split('/').peekable();
        while let Some(part) = parts.next() {
            if part == "*" && parts.peek().is_none() {
                prefix = true;
                break;
            }
            if part.contains('*') {
                return Err(err(PatternProblem::PathWildcard));
            }
            let decoded = percent_decode(part);
            if decoded.contains(['/', '\\', '%', '\0']) {
                return Err(err(PatternProblem::PathEncoding));
            }
            segments.push(decoded);
        }
        let path = if prefix { PathPattern::Prefix(segments) } else { PathPattern::Exact(segments) };
        Ok(HttpPattern { text: trimmed.to_string(), scheme, host, port, path })
    }
}

/// A pattern that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP allow-list pattern `{pattern}`: {problem}")]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: PatternProblem,
}

/// What is wrong with a pattern, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternProblem {
    /// Nothing was written.
    #[error("the pattern is empty; write e.g. `https://api.example.com/v1/*`")]
    Empty,
    /// No `scheme://`.
    #[error("no scheme; begin with `https://` or `http://`, e.g. `https://api.example.com/*`")]
    NoScheme,
    /// A scheme other than `http` and `https`.
    #[error("scheme `{0}` is not allowed; only `http` and `https` are")]
    Scheme(String),
    /// The pattern has a `?` or `#`.
    #[error("a pattern has no query or fragment; end it at the path, e.g. `/v1/*`")]
    QueryOrFragment,
    /// No path after the host.
    #[error("no path; end the pattern in `/*` to allow every path of the host, or name a path")]
    NoPath,
    /// `user:password@` before the host.
    #[error("credentials (`user@`) do not belong in a pattern; remove them")]
    Credentials,
    /// A `*` in the host that is not the whole leftmost label of a name of
    /// two labels or more.
    #[error("a host wildcard must be the whole leftmost label of a name of at least two labels, e.g. `*.example.com`")]
    HostWildcard,
    /// A `*` in the path that is not the whole last segment.
    #[error("`*` may only be the whole last segment of the path, e.g. `/v1/*`")]
    PathWildcard,
    /// A `.` or `..` segment.
    #[error("`.` and `..` segments are not allowed; write the path they stand for")]
    DotSegment,
    /// A percent-encoded `/`, `\`, `%` or NUL in a segment.
    #[error("percent-encoded `/`, `\\`, `%` or NUL is not allowed in a pattern's path")]
    PathEncoding,
    /// The `url` parser refused it.
    #[error("not a URL: {0}")]
    Url(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// The host part of a pattern. Names are stored lowercased (the `url`
/// parser lowercases them) and without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Name(String),
    /// Names strictly under this one (`*.example.com` keeps `example.com`).
    Subdomains(String),
    Address(IpAddr),
}

/// The path part of a pattern, as decoded segments (`/v1/x` is `["v1", "x"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathPattern {
    Exact(Vec<String>),
    /// The path ended in `/*`: these segments, then anything or nothing.
    Prefix(Vec<String>),
}

impl PathPattern {
    /// Does every path `other` matches match this one too?
    fn covers(&self, other: &PathPattern) -> bool {
        match (self, other) {
            (PathPattern::Prefix(want), PathPattern::Prefix(got) | PathPattern::Exact(got)) => got.starts_with(want),
            (PathPattern::Exact(want), PathPattern::Exact(got)) => want == got,
            (PathPattern::Exact(_), PathPattern::Prefix(_)) => false,
        }
    }

    fn matches(&self, segments: &[String]) -> bool {
        match self {
            PathPattern::Exact(want) => want.as_slice() == segments,
            PathPattern::Prefix(want) => segments.starts_with(want),
        }
    }
}

/// A request URL, reduced to what patterns look at.
struct Request {
    scheme: Scheme,
    host: RequestHost,
    port: u16,
    /// The path's segments, each percent-decoded once.
    segments: Vec<String>,
}

enum RequestHost {
    Name(String),
    Address(IpAddr),
}

impl Request {
    fn of(url: &Url) -> Result<Request, Denial> {
        let not_allowed = || Denial::NotAllowed { url: url.to_string() };
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(not_allowed()),
        };
        let host = match url.host() {
            Some(Host::Domain(name)) => RequestHost::Name(name.trim_end_matches('.').to_ascii_lowercase()),
            Some(Host::Ipv4(a)) => RequestHost::Address(IpAddr::V4(a)),
            Some(Host::Ipv6(a)) => RequestHost::Address(IpAddr::V6(a)),
            None => return Err(not_allowed()),
        };
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        let ambiguous = |reason| Denial::AmbiguousPath { url: url.to_string(), reason };
        let path = url.path().strip_prefix('/').unwrap_or(url.path());
        let mut segments = Vec::new();
        for raw in path.split('/') {
            let decoded = percent_decode(raw);
            if decoded.contains('\0') {
                return Err(ambiguous("contains an encoded NUL"));
            }
            if has_percent_encoding(&decoded) {
                return Err(ambiguous("is percent-encoded twice (e.g. `%252e`)"));
            }
            let dot_segment = decoded.split(['/', '\\']).any(|part| {
                let name = part.split(';').next().unwrap_or(part);
                matches!(name, "." | "..")
            });
            if dot_segment {
                return Err(ambiguous("has a `.` or `..` segment hidden by an encoded `/` or `\\`, or by `;`"));
            }
            segments.push(decoded);
        }
        Ok(Request { scheme, host, port, segments })
    }
}

/// Decodes `%XX` sequences once; anything else (a `%` not followed by two
/// hex digits, invalid UTF-8 after decoding) is kept as it is, lossily.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes.get(i + 1..i + 3).and_then(hex_byte)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

/// Does `text` hold a `%XX` sequence?
fn has_percent_encoding(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w[0] == b'%' && hex_byte(&w[1..]).is_some())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn list(patterns: &[&str]) -> HttpAllowList {
        HttpAllowList::parse(patterns).expect("patterns parse")
    }

    fn allowed(list: &HttpAllowList, url: &str) -> bool {
        list.check(url).is_ok()
    }

    fn problem(pattern: &str) -> PatternProblem {
        pattern.parse::<HttpPattern>().expect_err("the pattern is refused").problem
    }

    fn covers(outer: &str, inner: &str) -> bool {
        outer.parse::<HttpPattern>().unwrap().covers(&inner.parse().unwrap())
    }

    #[test]
    fn a_pattern_covers_the_same_host_and_port_with_a_path_inside_its_own() {
        let outer = "https://api.example.com/v1/*";
        for inner in [outer, "https://api.example.com/v1/users/*", "https://API.example.com:443/v1/status"] {
            assert!(covers(outer, inner), "{inner}");
        }
        for inner in [
            "https://api.example.com/*",
            "https://api.example.com/v10/*",
            "http://api.example.com/v1/*",
            "https://api.example.com:8443/v1/*",
            "https://other.example.com/v1/*",
        ] {
            assert!(!covers(outer, inner), "{inner}");
        }
        assert!(covers("https://h.example/a", "https://h.example/a"));
        assert!(!covers("https://h.example/a", "https://h.example/a/*"), "an exact path covers no prefix");
        assert!(covers("http://127.0.0.1:8080/*", "http://127.0.0.1:8080/x"));
        assert!(!covers("http://127.0.0.1:8080/*", "http://localhost:8080/x"));
    }

    #[test]
    fn a_subdomain_wildcard_covers_wildcards_under_it_but_no_exact_name() {
        assert!(covers("https://*.example.com/*", "https://*.api.example.com/*"));
        assert!(covers("https://*.example.com/*", "https://*.example.com/v1/*"));
        assert!(!covers("https://*.example.com/*", "https://*.badexample.com/*"));
        // An exact name may reach a private address; under the wildcard it may not.
        assert!(!covers("https://*.example.com/*", "https://api.example.com/*"));
    }

    #[test]
    fn a_prefix_pattern_matches_whole_segments_only() {
        let list = list(&["https://api.example.com/v1/*"]);
        for url in ["https://api.example.com/v1", "https://api.example.com/v1/", "https://api.example.com/v1/x/y?q=1"] {
            assert!(allowed(&list, url), "{url}");
        }
        for url in ["https://api.example.com/v10", "https://api.example.com/v2/x", "https://api.example.com/"] {
            assert_eq!(list.check(url), Err(Denial::NotAllowed { url: url.into() }), "{url}");
        }
    }

    #[test]
    fn an_exact_pattern_matches_that_path_only() {
        let list = list(&["https://api.example.com/v1/status"]);
        assert!(allowed(&list, "https://api.example.com/v1/status?verbose"));
        assert!(!allowed(&list, "https://api.example.com/v1/status/"));
        assert!(!allowed(&list, "https://api.example.com/v1/status/x"));
        assert!(!allowed(&list, "https://api.example.com/v1"));
    }

    #[test]
    fn a_root_wildcard_allows_every_path_of_the_host_and_nothing_else() {
        let list = list(&["https://api.example.com/*"]);
        assert!(allowed(&list, "https://api.example.com"));
        assert!(allowed(&list, "https://api.example.com/any/thing"));
        assert!(!allowed(&list, "https://example.com/"));
        assert!(!allowed(&list, "https://api.example.com.evil.net/"));
    }

    #[test]
    fn scheme_and_port_must_match_with_the_default_port_filled_in() {
        let list = list(&["https://api.example.com/*", "http://127.0.0.1:8080/*"]);
        assert!(allowed(&list, "https://api.example.com:443/x"));
        assert!(!allowed(&list, "http://api.example.com/x"), "http is not https");
        assert!(!allowed(&list, "https://api.example.com:8443/x"));
        assert!(allowed(&list, "http://127.0.0.1:8080/x"));
        assert!(!allowed(&list, "http://127.0.0.1/x"), "port 80 is not 8080");
        assert!(!allowed(&list, "ftp://api.example.com/x"));
        let explicit = list_of_one("https://api.example.com:443/*");
        assert!(allowed(&explicit, "https://api.example.com/x"), "a written default port is the default port");
    }

    fn list_of_one(pattern: &str) -> HttpAllowList {
        list(&[pattern])
    }

    #[test]
    fn hosts_compare_without_case_or_a_trailing_dot() {
        let list = list(&["https://API.Example.com/v1/*"]);
        assert!(allowed(&list, "HTTPS://api.EXAMPLE.com/v1/x"));
        assert!(allowed(&list, "https://api.example.com./v1/x"));
        assert!(!allowed(&list, "https://api.example.com/V1/x"), "paths are case-sensitive");
    }

    #[test]
    fn a_subdomain_wildcard_matches_names_under_the_domain_but_not_the_domain() {
        let list = list(&["https://*.example.com/*"]);
        assert!(allowed(&list, "https://a.example.com/"));
        assert!(allowed(&list, "https://a.b.example.com/x"));
        assert!(!allowed(&list, "https://example.com/"));
        assert!(!allowed(&list, "https://badexample.com/"));
        assert!(!allowed(&list, "https://a.example.com.evil.net/"));
    }

    #[test]
    fn ipv4_addresses_in_any_notation_match_the_dotted_pattern() {
        let list = list(&["http://127.0.0.1:8080/*", "http://[::1]:8080/*"]);
        assert!(allowed(&list, "http://2130706433:8080/"));
        assert!(allowed(&list, "http://0x7f.1:8080/"));
        assert!(allowed(&list, "http://[0:0::1]:8080/"));
        assert!(!allowed(&list, "http://localhost:8080/"), "a name is not the address it may resolve to");
    }

    #[test]
    fn dot_segments_are_resolved_before_matching() {
        let list = list(&["https://api.example.com/v1/*"]);
        for url in [
            "https://api.example.com/v1/../admin",
            "https://api.example.com/v1/%2e%2e/admin",
            "https://api.example.com/v1/.%2E/admin",
            "https://api.example.com/v1\\..\\admin",
        ] {
            assert_eq!(
                list.check(url),
                Err(Denial::NotAllowed { url: "https://api.example.com/admin".into() }),
                "{url} is /admin"
            );
        }
        assert!(allowed(&list, "https://api.example.com/v2/../v1/x"));
    }

    #[test]
    fn encoded_slashes_that_hide_dot_segments_are_refused() {
        let list = list(&["https://api.example.com/v1/*"]);
        for url in [
            "https://api.example.com/v1/..%2Fadmin",
            "https://api.example.com/v1/x%2F..%2F..%2Fadmin",
            "https://api.example.com/v1/..%5cadmin",
            "https://api.example.com/v1/..;/admin",
            "https://api.example.com/v1/%252e%252e/admin",
            "https://api.example.com/v1/a%00b",
        ] {
            assert!(matches!(list.check(url), Err(Denial::AmbiguousPath { .. })), "{url}: {:?}", list.check(url));
        }
    }

    #[test]
    fn an_encoded_slash_without_dot_segments_matches_below_the_prefix_only() {
        let list = list(&["https://gitlab.example.com/api/v4/*"]);
        assert!(allowed(&list, "https://gitlab.example.com/api/v4/projects/group%2Fname"));
        assert!(!allowed(&list, "https://gitlab.example.com/api%2Fv4/projects"));
        assert!(allowed(&list, "https://gitlab.example.com/api/v%34/x"), "an encoded unreserved character is itself");
    }

    #[test]
    fn a_redirect_is_checked_like_a_new_request() {
        let list = list(&["https://api.example.com/v1/*"]);
        let from = Url::parse("https://api.example.com/v1/a").unwrap();
        assert!(list.check_redirect(&from, "/v1/b").is_ok());
        assert!(list.check_redirect(&from, "b").is_ok());
        assert_eq!(
            list.check_redirect(&from, "https://evil.example.net/v1/a"),
            Err(Denial::NotAllowed { url: "https://evil.example.net/v1/a".into() })
        );
        assert_eq!(
            list.check_redirect(&from, "../admin"),
            Err(Denial::NotAllowed { url: "https://api.example.com/admin".into() })
        );
        assert!(matches!(list.check_redirect(&from, "http://[::1"), Err(Denial::NotAUrl { .. })));
    }

    #[test]
    fn a_wildcard_host_may_not_resolve_to_a_private_address() {
        let list = list(&["https://*.example.com/*"]);
        let permit = list.check("https://a.example.com/").unwrap();
        assert_eq!(permit.addresses, AddressRule::PublicOnly);
        assert_eq!(permit.check_address("93.184.215.14".parse().unwrap()), Ok(()));
        assert_eq!(
            permit.check_address("127.0.0.1".parse().unwrap()),
            Err(Denial::PrivateAddress {
                host: "a.example.com".into(),
                address: "127.0.0.1".parse().unwrap(),
                class: AddressClass::Loopback
            })
        );
        for address in ["10.1.2.3", "::ffff:192.168.1.1", "169.254.169.254", "fd00::1", "::", "0.0.0.0"] {
            assert!(permit.check_address(address.parse().unwrap()).is_err(), "{address}");
        }
    }

    #[test]
    fn a_host_named_exactly_may_resolve_to_any_address() {
        let list = list(&["http://localhost:8080/*", "https://*.example.com/*", "https://db.example.com/*"]);
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(list.check("http://localhost:8080/").unwrap().check_address(loopback), Ok(()));
        let both = list.check("https://db.example.com/").unwrap();
        assert_eq!(both.addresses, AddressRule::AnyAddress, "the exact pattern wins over the wildcard");
        assert_eq!(both.check_address(IpAddr::V6(Ipv6Addr::LOCALHOST)), Ok(()));
    }

    #[test]
    fn special_addresses_are_classified_in_v4_v6_and_v4_mapped_v6() {
        let class = |a: &str| AddressClass::of(a.parse().unwrap());
        use AddressClass::*;
        let table = [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.0.1", Some(Private)),
            ("100.64.0.1", Some(Private)),
            ("100.128.0.1", None),
            ("::ffff:10.0.0.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("fc00::1", Some(UniqueLocal)),
            ("fdff::1", Some(UniqueLocal)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("::", Some(Unspecified)),
            ("8.8.8.8", None),
            ("2001:4860:4860::8888", None),
            ("::ffff:8.8.8.8", None),
        ];
        for (address, want) in table {
            assert_eq!(class(address), want, "{address}");
        }
    }

    #[test]
    fn bad_patterns_name_the_problem_and_the_fix() {
        assert_eq!(problem(""), PatternProblem::Empty);
        assert_eq!(problem("api.example.com/*"), PatternProblem::NoScheme);
        assert_eq!(problem("ftp://example.com/*"), PatternProblem::Scheme("ftp".into()));
        assert_eq!(problem("https://api.example.com"), PatternProblem::NoPath);
        assert_eq!(problem("https://api.example.com/v1/*?x=1"), PatternProblem::QueryOrFragment);
        assert_eq!(problem("https://user:pw@api.example.com/*"), PatternProblem::Credentials);
        assert_eq!(problem("https://*/*"), PatternProblem::HostWildcard);
        assert_eq!(problem("https://*.com/*"), PatternProblem::HostWildcard);
        assert_eq!(problem("https://a*.example.com/*"), PatternProblem::HostWildcard);
        assert_eq!(problem("https://*.127.0.0.1/*"), PatternProblem::HostWildcard);
        assert_eq!(problem("https://api.example.com/v1*"), PatternProblem::PathWildcard);
        assert_eq!(problem("https://api.example.com/*/x"), PatternProblem::PathWildcard);
        assert_eq!(problem("https://api.example.com/v1/../admin/*"), PatternProblem::DotSegment);
        assert_eq!(problem("https://api.example.com/a%2Fb/*"), PatternProblem::PathEncoding);
        assert!(matches!(problem("https://exa mple.com/*"), PatternProblem::Url(_)));
        let message = "https://api.example.com".parse::<HttpPattern>().unwrap_err().to_string();
        assert_eq!(
            message,
            "HTTP allow-list pattern `https://api.example.com`: no path; end the pattern in `/*` to allow every path of the host, or name a path"
        );
    }

    #[test]
    fn an_empty_list_allows_nothing() {
        let list = HttpAllowList::default();
        assert!(list.is_empty());
        assert!(!allowed(&list, "https://api.example.com/"));
    }

    #[test]
    fn the_list_deserializes_from_strings_and_serializes_back_as_written() {
        let list: HttpAllowList =
            serde_json::from_str(r#"["https://api.example.com/v1/*", "http://127.0.0.1:8080/*"]"#).unwrap();
        assert_eq!(list.patterns().len(), 2);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"["https://api.example.com/v1/*","http://127.0.0.1:8080/*"]"#
        );
        let bad = serde_json::from_str::<HttpAllowList>(r#"["https://api.example.com"]"#).unwrap_err().to_string();
        assert!(bad.contains("no path; end the pattern in `/*`"), "{bad}");
    }
}
