//! An actor's `http` grant as written: the URL patterns it may request,
//! each with an optional circuit breaker and retries, and the limits of
//! its requests.
//!
//! ```toml
//! # the short form: patterns only, every limit at its default
//! grants = { http = ["https://api.example.com/v1/*", "http://127.0.0.1:8080/*"] }
//!
//! # the long form
//! [actors.fetcher.grants.http]
//! allow = [
//!     "https://docs.example.com/*",
//!     { url = "https://api.example.com/v1/*", breaker = { failures = 5, reset-ms = 10000 }, retry = { attempts = 3 } },
//! ]
//! max-concurrent = 8
//! connect-timeout-ms = 2000
//! ```
//!
//! # Limits and their defaults
//!
//! | key | default | what happens past it |
//! |---|---|---|
//! | `max-concurrent` | [`DEFAULT_MAX_CONCURRENT`] | a further request of the actor fails at once with `connection-limit-reached` |
//! | `max-request-bytes` | [`DEFAULT_MAX_REQUEST_BYTES`] | the request fails with `HTTP-request-body-size` |
//! | `max-response-bytes` | [`DEFAULT_MAX_RESPONSE_BYTES`] | reading the body fails with `HTTP-response-body-size` |
//! | `connect-timeout-ms` | [`DEFAULT_CONNECT_TIMEOUT`] | `connection-timeout` (name resolution included) |
//! | `first-byte-timeout-ms` | [`DEFAULT_FIRST_BYTE_TIMEOUT`] | `connection-read-timeout`: no response head in time |
//! | `between-bytes-timeout-ms` | [`DEFAULT_BETWEEN_BYTES_TIMEOUT`] | `connection-read-timeout` while reading the body |
//! | `message-ceiling-ms` | [`DEFAULT_MESSAGE_CEILING`] | the message fails (`deadline`), waits included |
//!
//! A guest's `request-options` may shorten the timeouts, never lengthen
//! them.

use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::allow::{HttpAllowList, HttpPattern, PatternError};
use super::breaker::{BreakerConfig, BreakerConfigError};
use super::retry::{RetryConfig, RetryConfigError};
use crate::actor::http_port::ChildHttpGrant;

/// Default requests one actor may have in flight: enough for a fan-out to
/// a few services, few enough that one actor cannot open hundreds of
/// connections.
pub const DEFAULT_MAX_CONCURRENT: u32 = 16;
/// Default largest request body: 1 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 1 << 20;
/// Default largest response body: 16 MiB, a large JSON document; an actor
/// holds what it reads in its memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 << 20;
/// Default connect timeout (name resolution and TLS included): a healthy
/// service connects in milliseconds, an unreachable one never.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default wait for the response head after the request was sent.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default wait between two chunks of the response body.
pub const DEFAULT_BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(30);
/// Default wall-clock ceiling of one message of an actor with an `http`
/// grant, waits included: twice the longest single wait at the defaults.
pub const DEFAULT_MESSAGE_CEILING: Duration = Duration::from_secs(60);

/// An `http` grant (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HttpGrant {
    /// The URLs the actor may request, in order; the first pattern that
    /// matches a request decides its breaker and retries.
    pub allow: Vec<HttpRule>,
    /// The limits of its requests.
    #[serde(flatten)]
    pub limits: HttpLimits,
}

/// One pattern of a grant, with its breaker and retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpRule {
    /// The URL pattern (see [`super::allow`]).
    pub url: String,
    /// A circuit breaker over the requests this pattern matches, shared by
    /// the actors of one grant. None by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerConfig>,
    /// Retries of its idempotent requests (`GET`, `HEAD`, `PUT`, `DELETE`,
    /// `OPTIONS`, `TRACE`, without a body). None by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
}

/// The limits of a grant's requests (see the module doc for defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Requests one actor may have in flight.
    pub max_concurrent: u32,
    /// Largest request body, in bytes (or `"1MiB"`).
    #[serde(with = "crate::units::bytes")]
    pub max_request_bytes: u64,
    /// Largest response body, in bytes (or `"16MiB"`).
    #[serde(with = "crate::units::bytes")]
    pub max_response_bytes: u64,
    /// Connect timeout.
    #[serde(with = "crate::units::millis", rename = "connect-timeout-ms")]
    pub connect_timeout: Duration,
    /// Wait for the response head.
    #[serde(with = "crate::units::millis", rename = "first-byte-timeout-ms")]
    pub first_byte_timeout: Duration,
    /// Wait between chunks of the body.
    #[serde(with = "crate::units::millis", rename = "between-bytes-timeout-ms")]
    pub between_bytes_timeout: Duration,
    /// Wall-clock ceiling of one message, waits included.
    #[serde(with = "crate::units::millis", rename = "message-ceiling-ms")]
    pub message_ceiling: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            between_bytes_timeout: DEFAULT_BETWEEN_BYTES_TIMEOUT,
            message_ceiling: DEFAULT_MESSAGE_CEILING,
        }
    }
}

/// A grant that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpGrantError {
    /// A pattern does not parse.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// A pattern's breaker is invalid.
    #[error("`{url}`: {error}")]
    Breaker {
        /// The pattern.
        url: String,
        /// What is wrong.
        error: BreakerConfigError,
    },
    /// A pattern's retries are invalid.
    #[error("`{url}`: {error}")]
    Retry {
        /// The pattern.
        url: String,
        /// What is wrong.
        error: RetryConfigError,
    },
    /// A limit is zero.
    #[error("http `{0}` must be at least 1")]
    ZeroLimit(&'static str),
    /// Nothing is allowed.
    #[error("an `http` grant needs at least one URL pattern, e.g. `http = [\"https://api.example.com/*\"]`")]
    Empty,
}

impl HttpGrant {
    /// A grant of `patterns`, with every limit at its default and no
    /// breakers or retries.
    pub fn of_patterns<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        let allow = patterns.into_iter().map(|url| HttpRule { url: url.into(), breaker: None, retry: None }).collect();
        HttpGrant { allow, limits: HttpLimits::default() }
    }

    /// Checks everything and parses the patterns.
    ///
    /// # Errors
    ///
    /// An [`HttpGrantError`] naming the first problem.
    pub fn validate(&self) -> Result<HttpAllowList, HttpGrantError> {
        if self.allow.is_empty() {
            return Err(HttpGrantError::Empty);
        }
        let list = HttpAllowList::parse(&self.allow.iter().map(|r| r.url.as_str()).collect::<Vec<_>>())?;
        for rule in &self.allow {
            if let Some(breaker) = &rule.breaker {
                breaker.validate().map_err(|error| HttpGrantError::Breaker { url: rule.url.clone(), error })?;
            }
            if let Some(retry) = &rule.retry {
                retry.validate().map_err(|error| HttpGrantError::Retry { url: rule.url.clone(), error })?;
            }
        }
        let l = &self.limits;
        let zero = [
            (l.max_concurrent == 0, "max-concurrent"),
            (l.connect_timeout.is_zero(), "connect-timeout-ms"),
            (l.first_byte_timeout.is_zero(), "first-byte-timeout-ms"),
            (l.between_bytes_timeout.is_zero(), "between-bytes-timeout-ms"),
            (l.message_ceiling.is_zero(), "message-ceiling-ms"),
        ];
        if let Some((_, name)) = zero.iter().find(|(is_zero, _)| *is_zero) {
            return Err(HttpGrantError::ZeroLimit(name));
        }
        Ok(list)
    }
}

/// Why a child cannot have the `http` grant its spawner asked for it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DelegationError {
    /// The grant asked for is invalid in itself.
    #[error(transparent)]
    Invalid(#[from] HttpGrantError),
    /// A pattern is not within any of the spawner's.
    #[error(
        "`{pattern}` is not within any of the `http` patterns its spawner holds ({held}); \
         a guest can grant a child only URLs it may request itself"
    )]
    NotHeld {
        /// The pattern asked for.
        pattern: String,
        /// The spawner's patterns.
        held: String,
    },
    /// A limit is above the spawner's.
    #[error("`{name}` = {asked} is above the {held} its spawner holds; a child gets no more than its spawner")]
    AboveLimit {
        /// The limit, as the manifest names it.
        name: &'static str,
        /// The value asked for.
        asked: u64,
        /// The spawner's value.
        held: u64,
    },
}

impl HttpGrant {
    /// The grant its holder gives a child as `request` asks: each pattern
    /// with the breaker and retries (as configured; the child's own state)
    /// of the first of this grant's patterns that covers it, and the
    /// limits asked for, this grant's where none is asked.
    ///
    /// # Errors
    ///
    /// A [`DelegationError`] naming the first pattern or limit outside
    /// this grant, or what makes the grant invalid.
    pub fn delegate(&self, request: &ChildHttpGrant) -> Result<HttpGrant, DelegationError> {
        let own = self.validate()?;
        let mut allow = Vec::with_capacity(request.allow.len());
        for text in &request.allow {
            let pattern: HttpPattern = text.parse().map_err(HttpGrantError::from)?;
            let Some(index) = own.patterns().iter().position(|held| held.covers(&pattern)) else {
                let held = self.allow.iter().map(|r| format!("`{}`", r.url)).collect::<Vec<_>>().join(", ");
                return Err(DelegationError::NotHeld { pattern: text.clone(), held });
            };
            let rule = &self.allow[index];
            allow.push(HttpRule { url: text.clone(), breaker: rule.breaker, retry: rule.retry });
        }
        let held = self.limits;
        let within = |name: &'static str, asked: Option<u64>, held: u64| match asked {
            Some(asked) if asked > held => Err(DelegationError::AboveLimit { name, asked, held }),
            Some(asked) => Ok(asked),
            None => Ok(held),
        };
        let ms = |name: &'static str, asked: Option<u64>, held: Duration| {
            within(name, asked, held.as_millis() as u64).map(Duration::from_millis)
        };
        let limits = HttpLimits {
            max_concurrent: within("max-concurrent", request.max_concurrent.map(u64::from), held.max_concurrent.into())?
                as u32,
            max_request_bytes: within("max-request-bytes", request.max_request_bytes, held.max_request_bytes)?,
            max_response_bytes: within("max-response-bytes", request.max_response_bytes, held.max_response_bytes)?,
            connect_timeout: ms("connect-timeout-ms", request.connect_timeout_ms, held.connect_timeout)?,
            first_byte_timeout: ms("first-byte-timeout-ms", request.first_byte_timeout_ms, held.first_byte_timeout)?,
            between_bytes_timeout: ms(
                "between-bytes-timeout-ms",
                request.between_bytes_timeout_ms,
                held.between_bytes_timeout,
            )?,
            message_ceiling: ms("message-ceiling-ms", request.message_ceiling_ms, held.message_ceiling)?,
        };
        let grant = HttpGrant { allow, limits };
        grant.validate()?;
        Ok(grant)
    }
}

/// The long form of a grant, as a table.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct GrantTable {
    allow: Vec<RuleForm>,
    #[serde(default)]
    max_concurrent: Option<u32>,
    #[serde(default, with = "opt_bytes")]
    max_request_bytes: Option<u64>,
    #[serde(default, with = "opt_bytes")]
    max_response_bytes: Option<u64>,
    connect_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    between_bytes_timeout_ms: Option<u64>,
    message_ceiling_ms: Option<u64>,
}

mod opt_bytes {
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        crate::units::bytes::deserialize(d).map(Some)
    }
}

impl From<GrantTable> for HttpGrant {
    fn from(t: GrantTable) -> Self {
        let d = HttpLimits::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        HttpGrant {
            allow: t.allow.into_iter().map(|r| r.0).collect(),
            limits: HttpLimits {
                max_concurrent: t.max_concurrent.unwrap_or(d.max_concurrent),
                max_request_bytes: t.max_request_bytes.unwrap_or(d.max_request_bytes),
                max_response_bytes: t.max_response_bytes.unwrap_or(d.max_response_bytes),
                connect_timeout: ms(t.connect_timeout_ms, d.connect_timeout),
                first_byte_timeout: ms(t.first_byte_timeout_ms, d.first_byte_timeout),
                between_bytes_timeout: ms(t.between_bytes_timeout_ms, d.between_bytes_timeout),
                message_ceiling: ms(t.message_ceiling_ms, d.message_ceiling),
            },
        }
    }
}

/// A rule written as a bare pattern or as a table.
struct RuleForm(HttpRule);

impl<'de> Deserialize<'de> for RuleForm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RuleForm;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a URL pattern, or a table `{ url = \"...\", breaker = {...}, retry = {...} }`")
            }
            fn visit_str<E: de::Error>(self, url: &str) -> Result<RuleForm, E> {
                Ok(RuleForm(HttpRule { url: url.to_string(), breaker: None, retry: None }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RuleForm, A::Error> {
                HttpRule::deserialize(de::value::MapAccessDeserializer::new(map)).map(RuleForm)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for HttpGrant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HttpGrant;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of URL patterns, or a table with `allow = [...]` and limits")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<HttpGrant, A::Error> {
                let rules = Vec::<RuleForm>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(HttpGrant { allow: rules.into_iter().map(|r| r.0).collect(), limits: HttpLimits::default() })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HttpGrant, A::Error> {
                GrantTable::deserialize(de::value::MapAccessDeserializer::new(map)).map(HttpGrant::from)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_form_is_a_list_of_patterns_with_default_limits() {
        let grant: HttpGrant = toml::from_str::<toml::Table>(r#"http = ["https://a.example/*"]"#).unwrap()["http"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(grant, HttpGrant::of_patterns(["https://a.example/*"]));
        assert!(grant.validate().is_ok());
    }

    #[test]
    fn the_long_form_sets_limits_breakers_and_retries() {
        let text = r#"
            allow = ["https://a.example/*", { url = "http://127.0.0.1:9/*", breaker = { failures = 2, reset-ms = 50 }, retry = { attempts = 3 } }]
            max-concurrent = 2
            max-response-bytes = "1KiB"
            first-byte-timeout-ms = 300
        "#;
        let grant: HttpGrant = toml::from_str(text).unwrap();
        assert_eq!(grant.allow.len(), 2);
        assert_eq!(grant.allow[1].breaker.unwrap().failures, 2);
        assert_eq!(grant.allow[1].breaker.unwrap().reset, Duration::from_millis(50));
        assert_eq!(grant.allow[1].retry.unwrap().attempts, 3);
        assert_eq!(grant.limits.max_concurrent, 2);
        assert_eq!(grant.limits.max_response_bytes, 1024);
        assert_eq!(grant.limits.first_byte_timeout, Duration::from_millis(300));
        assert_eq!(grant.limits.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        // It goes through JSON (the control protocol) unchanged.
        let json = serde_json::to_string(&grant).unwrap();
        assert_eq!(serde_json::from_str::<HttpGrant>(&json).unwrap(), grant);
    }

    #[test]
    fn a_child_gets_patterns_within_its_spawners_with_their_breakers_and_the_spawners_limits() {
        let text = r#"
            allow = ["https://a.example/docs/*", { url = "http://127.0.0.1:9/*", breaker = { failures = 2, reset-ms = 50 } }]
            max-concurrent = 4
        "#;
        let parent: HttpGrant = toml::from_str(text).unwrap();
        let request = ChildHttpGrant {
            allow: vec!["http://127.0.0.1:9/api/*".into(), "https://a.example/docs/readme".into()],
            max_response_bytes: Some(1000),
            ..ChildHttpGrant::default()
        };
        let child = parent.delegate(&request).unwrap();
        assert_eq!(child.allow[0].url, "http://127.0.0.1:9/api/*");
        assert_eq!(child.allow[0].breaker, parent.allow[1].breaker, "the covering pattern's breaker");
        assert_eq!(child.allow[1].breaker, None);
        assert_eq!(child.limits.max_concurrent, 4, "the spawner's where none is asked");
        assert_eq!(child.limits.max_response_bytes, 1000);
    }

    #[test]
    fn a_child_is_refused_a_pattern_or_limit_beyond_its_spawners() {
        let parent = HttpGrant::of_patterns(["https://a.example/docs/*"]);
        let ask = |allow: &str| ChildHttpGrant { allow: vec![allow.into()], ..ChildHttpGrant::default() };
        let err = parent.delegate(&ask("https://a.example/*")).unwrap_err();
        assert_eq!(
            err,
            DelegationError::NotHeld {
                pattern: "https://a.example/*".into(),
                held: "`https://a.example/docs/*`".into()
            }
        );
        assert!(err.to_string().contains("only URLs it may request itself"), "{err}");
        let more =
            ChildHttpGrant { max_concurrent: Some(DEFAULT_MAX_CONCURRENT + 1), ..ask("https://a.example/docs/x") };
        assert_eq!(
            parent.delegate(&more).unwrap_err(),
            DelegationError::AboveLimit {
                name: "max-concurrent",
                asked: u64::from(DEFAULT_MAX_CONCURRENT) + 1,
                held: u64::from(DEFAULT_MAX_CONCURRENT)
            }
        );
        assert!(matches!(parent.delegate(&ask("ftp://a.example/docs/*")), Err(DelegationError::Invalid(_))));
        let nothing = ChildHttpGrant::default();
        assert_eq!(parent.delegate(&nothing).unwrap_err(), DelegationError::Invalid(HttpGrantError::Empty));
    }

    #[test]
    fn unknown_keys_bad_patterns_and_zero_limits_are_refused_by_name() {
        let err = toml::from_str::<HttpGrant>("allow = [\"https://a.example/*\"]\nmax-concurent = 2").unwrap_err();
        assert!(err.to_string().contains("max-concurent"), "{err}");
        let bad = HttpGrant::of_patterns(["ftp://a.example/*"]);
        assert!(bad.validate().unwrap_err().to_string().contains("scheme `ftp` is not allowed"));
        let mut zero = HttpGrant::of_patterns(["https://a.example/*"]);
        zero.limits.max_concurrent = 0;
        assert_eq!(zero.validate().unwrap_err(), HttpGrantError::ZeroLimit("max-concurrent"));
        assert_eq!(HttpGrant::of_patterns(Vec::<String>::new()).validate().unwrap_err(), HttpGrantError::Empty);
    }
}
