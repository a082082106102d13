//! Who may do what through the gateway: bearer tokens and their scopes.
//!
//! # Tokens
//!
//! Tokens come from a file (`troupe run --http-tokens FILE`) or the
//! environment (`TROUPE_HTTP_TOKENS`), both in one format: entries
//! `SCOPE TOKEN`, one per line, or separated by `;` (so that a single
//! environment variable can hold several); `#` starts a comment that runs
//! to the end of its line; blank entries are skipped. A token is at least
//! [`MIN_TOKEN_BYTES`] visible ASCII characters, without `;` or `#`
//! (they separate entries and comments); a token listed twice is refused,
//! as the two entries may disagree on its scope.
//!
//! # Scopes
//!
//! | scope | may |
//! |-------|-----|
//! | `read` | look: list actors, one actor, the tree, the event stream, the metrics |
//! | `admin` | everything `read` may, and call, send, spawn, stop, swap |
//!
//! The scope a request needs follows from its method alone ([`Scope::needed_for`]):
//! a `GET` (or `HEAD`) only reads and needs `read`; any other method calls
//! an actor or changes the host and needs `admin`. One rule, so that no
//! endpoint can be added without a scope. The one exception is the
//! dashboard's static assets (see [`super::dashboard`]): they hold no
//! host data, and the page they make asks for a token to read any.
//!
//! # Decisions
//!
//! With no token configured every request is allowed: the gateway starts
//! so only on a loopback address, where only this machine's users reach it
//! (see [`super::Gateway::bind`]). With tokens, a request without a valid
//! `Authorization: Bearer TOKEN` is [`Denied::Unauthenticated`] (401), and
//! one whose token's scope is too narrow [`Denied::Forbidden`] (403);
//! neither reaches a handler.
//!
//! Tokens are compared in constant time: each is kept as its BLAKE3 hash,
//! and the hash of the token presented is compared with every one of them
//! (no early exit) by [`blake3::Hash`]'s constant-time equality, so the
//! time taken tells neither how much of a token matched nor which entry.

use std::fmt;

/// The fewest bytes a token may have: a shorter one could be guessed.
pub const MIN_TOKEN_BYTES: usize = 16;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Look: list actors, one actor, the tree, the events.
    Read,
    /// Everything: read, and call, send, spawn, stop, swap.
    Admin,
}

impl Scope {
    /// The scope a request with `method` needs: `read` to `GET` or `HEAD`,
    /// `admin` for anything else (see the module docs).
    pub fn needed_for(method: &axum::http::Method) -> Scope {
        use axum::http::Method;
        if method == Method::GET || method == Method::HEAD { Scope::Read } else { Scope::Admin }
    }

    /// The scope's name in a tokens file.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A malformed tokens file or variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}, entry {entry}: {problem}")]
pub struct TokenError {
    /// Where the entry came from (a file's path, or `TROUPE_HTTP_TOKENS`).
    pub source_name: String,
    /// Which entry (1 for the first), counting blank ones.
    pub entry: usize,
    /// What is wrong with it, and the fix.
    pub problem: String,
}

/// Why a request was turned away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No token, a malformed `Authorization` header, or a token no entry
    /// has (401).
    #[error("{0}; send `Authorization: Bearer TOKEN` with a token from the host's tokens")]
    Unauthenticated(&'static str),
    /// A valid token whose scope is too narrow (403).
    #[error("this needs a token of scope `{needed}`; the one given has scope `{has}`")]
    Forbidden {
        /// The token's scope.
        has: Scope,
        /// The scope the request needs.
        needed: Scope,
    },
}

/// The tokens the gateway accepts, each with its scope.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(blake3::Hash, Scope)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the hashes: a log line is no place for them either.
        f.debug_struct("Tokens").field("count", &self.entries.len()).finish()
    }
}

impl Tokens {
    /// Reads tokens in the format of the module docs; `source_name` names
    /// where `text` came from in errors.
    ///
    /// # Errors
    ///
    /// [`TokenError`] for the first malformed entry: an unknown scope, a
    /// missing, short or ill-formed token, or a token given twice.
    pub fn parse(text: &str, source_name: &str) -> Result<Tokens, TokenError> {
        let mut tokens = Tokens::default();
        let entries = text.lines().flat_map(|line| {
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            line.split(';')
        });
        for (i, entry) in entries.enumerate() {
            let mut words = entry.split_whitespace();
            let Some(scope) = words.next() else { continue };
            let bad = |problem: String| TokenError { source_name: source_name.to_string(), entry: i + 1, problem };
            let scope = match scope {
                "read" => Scope::Read,
                "admin" => Scope::Admin,
                other => return Err(bad(format!("unknown scope `{other}`; write `read TOKEN` or `admin TOKEN`"))),
            };
            let token = words.next().ok_or_else(|| bad(format!("`{scope}` without a token; write `{scope} TOKEN`")))?;
            if words.next().is_some() {
                return Err(bad("more than a scope and a token; a token has no spaces".into()));
            }
            if token.len() < MIN_TOKEN_BYTES {
                return Err(bad(format!(
                    "a token of {} bytes is too short to be secret; use at least {MIN_TOKEN_BYTES} random characters \
                     (e.g. `openssl rand -hex 24`)",
                    token.len()
                )));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad("a token is visible ASCII characters only".into()));
            }
            let hash = blake3::hash(token.as_bytes());
            if tokens.entries.iter().any(|(known, _)| *known == hash) {
                return Err(bad("this token is listed twice; list each token once, with one scope".into()));
            }
            tokens.entries.push((hash, scope));
        }
        Ok(tokens)
    }

    /// These tokens and `other`'s.
    ///
    /// # Errors
    ///
    /// [`TokenError`] if a token is in both (`other_name` names `other`).
    pub fn merge(mut self, other: Tokens, other_name: &str) -> Result<Tokens, TokenError> {
        for (i, (hash, scope)) in other.entries.into_iter().enumerate() {
            if self.entries.iter().any(|(known, _)| *known == hash) {
                return Err(TokenError {
                    source_name: other_name.to_string(),
                    entry: i + 1,
                    problem: "this token is also in the other source of tokens; list each token once".into(),
                });
            }
            self.entries.push((hash, scope));
        }
        Ok(self)
    }

    /// No token configured: every request is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The scope of `token`, if it is one of these. Compares with every
    /// entry in constant time (see the module docs).
    pub fn scope_of(&self, token: &str) -> Option<Scope> {
        let presented = blake3::hash(token.as_bytes());
        let mut found = None;
        for (hash, scope) in &self.entries {
            // Every entry is compared, match or not.
            if *hash == presented {
                found = Some(*scope);
            }
        }
        found
    }

    /// Whether a request carrying `authorization` (the `Authorization`
    /// header's value, if any) may do what needs `needed`.
    ///
    /// # Errors
    ///
    /// [`Denied`]: why not.
    pub fn authorize(&self, authorization: Option<&[u8]>, needed: Scope) -> Result<(), Denied> {
        if self.is_empty() {
            return Ok(());
        }
        let header = authorization.ok_or(Denied::Unauthenticated("no token given"))?;
        let header = std::str::from_utf8(header).map_err(|_| Denied::Unauthenticated("malformed `Authorization`"))?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(Denied::Unauthenticated("`Authorization` is not `Bearer TOKEN`")),
        };
        let has = self.scope_of(token).ok_or(Denied::Unauthenticated("the token is not valid here"))?;
        if has < needed {
            return Err(Denied::Forbidden { has, needed });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Denied, Scope, TokenError, Tokens};

    const READ: &str = "r3ad-token-0123456789";
    const ADMIN: &str = "adm1n-token-0123456789";

    fn tokens() -> Tokens {
        Tokens::parse(&format!("# the host's tokens\nread {READ}\n\nadmin {ADMIN}  # ops\n"), "tokens").unwrap()
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[test]
    fn a_tokens_file_takes_lines_semicolons_and_comments() {
        assert_eq!(tokens().len(), 2);
        let env = Tokens::parse(&format!("read {READ}; admin {ADMIN};"), "TROUPE_HTTP_TOKENS").unwrap();
        assert_eq!((env.scope_of(READ), env.scope_of(ADMIN)), (Some(Scope::Read), Some(Scope::Admin)));
        assert!(Tokens::parse("# nothing\n\n ; \n", "tokens").unwrap().is_empty());
    }

    #[test]
    fn a_malformed_entry_is_refused_with_its_place_and_the_fix() {
        let err = |text: &str| Tokens::parse(text, "tokens").unwrap_err();
        let e = err(&format!("read {READ}\nwrite {ADMIN}"));
        assert_eq!((e.entry, e.source_name.as_str()), (2, "tokens"));
        assert!(e.problem.contains("unknown scope `write`"), "{e}");
        assert!(err("admin").problem.contains("without a token"));
        assert!(err("admin short").problem.contains("too short"));
        assert!(err(&format!("admin {ADMIN} extra")).problem.contains("no spaces"));
        assert!(err(&format!("admin {ADMIN}\nread {ADMIN}")).problem.contains("listed twice"));
        let e = err(&format!("admin {ADMIN}é"));
        assert_eq!(e, TokenError { source_name: "tokens".into(), entry: 1, problem: e.problem.clone() });
        assert!(e.problem.contains("visible ASCII"));
    }

    #[test]
    fn merging_refuses_a_token_in_both_sources() {
        let env = Tokens::parse(&format!("read {READ}"), "TROUPE_HTTP_TOKENS").unwrap();
        let e = tokens().merge(env, "TROUPE_HTTP_TOKENS").unwrap_err();
        assert!(e.problem.contains("also in the other source"), "{e}");
    }

    #[test]
    fn without_tokens_everything_is_allowed() {
        assert_eq!(Tokens::default().authorize(None, Scope::Admin), Ok(()));
    }

    #[test]
    fn a_request_without_a_valid_bearer_token_is_unauthenticated() {
        let t = tokens();
        assert_eq!(t.authorize(None, Scope::Read), Err(Denied::Unauthenticated("no token given")));
        let basic = format!("Basic {READ}").into_bytes();
        assert!(matches!(t.authorize(Some(&basic), Scope::Read), Err(Denied::Unauthenticated(_))));
        let wrong = bearer("not-a-token-of-this-host");
        assert_eq!(t.authorize(Some(&wrong), Scope::Read), Err(Denied::Unauthenticated("the token is not valid here")));
    }

    #[test]
    fn a_read_token_reads_and_is_forbidden_to_act() {
        let t = tokens();
        assert_eq!(t.authorize(Some(&bearer(READ)), Scope::Read), Ok(()));
        assert_eq!(
            t.authorize(Some(&bearer(READ)), Scope::Admin),
            Err(Denied::Forbidden { has: Scope::Read, needed: Scope::Admin })
        );
    }

    #[test]
    fn an_admin_token_does_everything_and_the_scheme_is_case_insensitive() {
        let t = tokens();
        assert_eq!(t.authorize(Some(&bearer(ADMIN)), Scope::Admin), Ok(()));
        assert_eq!(t.authorize(Some(format!("bearer {ADMIN}").as_bytes()), Scope::Read), Ok(()));
    }

    #[test]
    fn reading_is_get_and_everything_else_needs_admin() {
        use axum::http::Method;
        assert_eq!(Scope::needed_for(&Method::GET), Scope::Read);
        assert_eq!(Scope::needed_for(&Method::HEAD), Scope::Read);
        for method in [Method::POST, Method::DELETE, Method::PUT, Method::PATCH] {
            assert_eq!(Scope::needed_for(&method), Scope::Admin, "{method}");
        }
    }
}
