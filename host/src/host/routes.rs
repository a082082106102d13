//! Routes: the paths of the HTTP gateway whose requests go to an HTTP
//! actor (one whose component exports `wasi:http/incoming-handler`, see
//! [`crate::actor::http_serve`]), as its manifest entry declares them:
//! `routes = ["/hello/*", "/status"]`.
//!
//! A route is a path of whole segments: `/hello/*` is `/hello` and every
//! path below it (not `/helloworld`), `/status` that path only. `*` may
//! only be the whole last segment; no query, fragment, `.` or `..`.
//!
//! Two actors' routes may not **overlap** (some path would match both),
//! and no route may **shadow** the gateway's own paths: `/` and
//! `/dashboard/...` (its dashboard), `/v1` and below, `/metrics`. Both are refused with the routes
//! named, when the manifest is read.

use crate::message::Address;

/// The gateway's own paths, which no route may match: segments, and
/// whether every path below them is the gateway's too.
const RESERVED: [(&[&str], bool); 4] = [(&[], false), (&["dashboard"], true), (&["v1"], true), (&["metrics"], true)];

/// One route (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    text: String,
    segments: Vec<String>,
    /// Ends in `/*`: these segments, then anything or nothing.
    prefix: bool,
}

/// A route that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// It does not parse.
    #[error("route `{route}`: {problem}")]
    Invalid {
        /// The route as written.
        route: String,
        /// What is wrong, and the fix.
        problem: &'static str,
    },
    /// It would take requests meant for the gateway itself.
    #[error(
        "route `{0}` shadows the gateway's own paths (`/`, `/dashboard/...`, `/v1/...`, `/metrics`); pick a path outside them"
    )]
    Shadows(String),
    /// The actor is not there, or its component exports no handler.
    #[error("`{0}` is no HTTP actor: routes go to an actor whose component exports `wasi:http/incoming-handler`")]
    NotHttpActor(Address),
    /// The actor is durable: its journal would record requests it cannot
    /// replay.
    #[error("`{0}` is durable: an HTTP actor runs in memory (its requests cannot be replayed from a journal)")]
    Durable(Address),
    /// Another actor's route matches some of the same paths.
    #[error("route `{route}` overlaps `{other}` of `{actor}`: a request could go to either; make them disjoint")]
    Overlaps {
        /// The route refused.
        route: String,
        /// The route it overlaps.
        other: String,
        /// The actor that route is for.
        actor: Address,
    },
}

impl Route {
    /// Parses a route.
    ///
    /// # Errors
    ///
    /// [`RouteError::Invalid`] naming the problem, or
    /// [`RouteError::Shadows`].
    pub fn parse(text: &str) -> Result<Route, RouteError> {
        let invalid = |problem| RouteError::Invalid { route: text.to_string(), problem };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(invalid("a route is a path: begin it with `/`, e.g. `/hello/*`"));
        };
        if text.contains(['?', '#']) {
            return Err(invalid("a route has no query or fragment"));
        }
        let mut segments: Vec<String> = rest.split('/').map(str::to_string).collect();
        let prefix = segments.last().is_some_and(|s| s == "*");
        if prefix {
            segments.pop();
        }
        if segments.len() == 1 && segments[0].is_empty() {
            segments.clear();
        }
        if segments.iter().any(|s| s.contains('*')) {
            return Err(invalid("`*` may only be the whole last segment, e.g. `/hello/*`"));
        }
        if segments.iter().any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(invalid("empty, `.` and `..` segments are not allowed"));
        }
        let route = Route { text: text.to_string(), segments, prefix };
        if RESERVED.iter().any(|(reserved, below)| route.overlaps_segments(reserved, *below)) {
            return Err(RouteError::Shadows(text.to_string()));
        }
        Ok(route)
    }

    /// The route as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does the path (a request's, without query) match?
    pub fn matches(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        self.matches_segments(&segments)
    }

    fn matches_segments<S: AsRef<str>>(&self, segments: &[S]) -> bool {
        let head =
            segments.len() >= self.segments.len() && self.segments.iter().zip(segments).all(|(a, b)| a == b.as_ref());
        head && (self.prefix || segments.len() == self.segments.len())
    }

    /// Does some path match both this route and `segments` (a prefix of
    /// paths if `prefix`)?
    fn overlaps_segments<S: AsRef<str>>(&self, segments: &[S], prefix: bool) -> bool {
        let shorter = self.segments.len().min(segments.len());
        if !self.segments.iter().take(shorter).zip(segments).all(|(a, b)| a == b.as_ref()) {
            return false;
        }
        match self.segments.len().cmp(&segments.len()) {
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => self.prefix,
            std::cmp::Ordering::Greater => prefix,
        }
    }

    /// Does some path match both routes?
    pub fn overlaps(&self, other: &Route) -> bool {
        self.overlaps_segments(&other.segments, other.prefix)
    }
}

/// Every route of the host, each with its actor.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<(Route, Address)>,
}

impl RouteTable {
    /// Routes `route` to `actor`.
    ///
    /// # Errors
    ///
    /// [`RouteError::Overlaps`] if another actor's route overlaps it.
    pub fn add(&mut self, route: Route, actor: Address) -> Result<(), RouteError> {
        if let Some((other, owner)) = self.routes.iter().find(|(r, a)| *a != actor && r.overlaps(&route)) {
            return Err(RouteError::Overlaps {
                route: route.text.clone(),
                other: other.text.clone(),
                actor: owner.clone(),
            });
        }
        self.routes.push((route, actor));
        Ok(())
    }

    /// The actor whose route matches `path`, if any.
    pub fn resolve(&self, path: &str) -> Option<&Address> {
        self.routes.iter().find(|(r, _)| r.matches(path)).map(|(_, a)| a)
    }

    /// Every route, with its actor.
    pub fn routes(&self) -> impl Iterator<Item = (&Route, &Address)> {
        self.routes.iter().map(|(r, a)| (r, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(text: &str) -> Route {
        Route::parse(text).unwrap()
    }

    #[test]
    fn a_prefix_route_matches_whole_segments_and_an_exact_one_its_path_only() {
        let hello = route("/hello/*");
        for path in ["/hello", "/hello/", "/hello/a/b"] {
            assert!(hello.matches(path), "{path}");
        }
        assert!(!hello.matches("/helloworld"));
        let status = route("/status");
        assert!(status.matches("/status"));
        assert!(!status.matches("/status/x"));
    }

    #[test]
    fn routes_shadowing_the_gateway_are_refused() {
        for text in ["/", "/*", "/dashboard/app.js", "/v1/*", "/v1/actors/x", "/metrics", "/metrics/*"] {
            assert_eq!(Route::parse(text), Err(RouteError::Shadows(text.into())), "{text}");
        }
        assert!(Route::parse("/v10/*").is_ok());
        assert!(Route::parse("/metricsx").is_ok());
    }

    #[test]
    fn malformed_routes_are_refused_with_the_fix() {
        for text in ["hello", "/a*/b", "/a/*/b", "/a/../b", "/a?x=1", "/a//b"] {
            assert!(matches!(Route::parse(text), Err(RouteError::Invalid { .. })), "{text}");
        }
    }

    #[test]
    fn overlapping_routes_of_two_actors_are_refused_naming_both() {
        let mut table = RouteTable::default();
        table.add(route("/hello/*"), "a".into()).unwrap();
        table.add(route("/hello/again"), "a".into()).unwrap();
        assert_eq!(
            table.add(route("/hello/x"), "b".into()),
            Err(RouteError::Overlaps { route: "/hello/x".into(), other: "/hello/*".into(), actor: "a".into() })
        );
        table.add(route("/bye"), "b".into()).unwrap();
        assert_eq!(table.resolve("/hello/x").map(Address::as_str), Some("a"));
        assert_eq!(table.resolve("/bye").map(Address::as_str), Some("b"));
        assert_eq!(table.resolve("/nothing"), None);
    }
}
