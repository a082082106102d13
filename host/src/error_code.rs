//! The stable names of every kind of error troupe reports, defined once:
//! the control protocol's `code`, `--json` errors on the command line, and
//! the cases of the WIT `error` variant guests receive all use these
//! names. Each error type says which code it is through [`HasErrorCode`].

use serde::Serialize;

macro_rules! error_codes {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal
    ),+ $(,)?) => {
        /// The kind of an error, by a stable kebab-case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum ErrorCode {
            $(
                $(#[$doc])*
                #[serde(rename = $name)]
                $variant,
            )+
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The stable name, e.g. `mailbox-full`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// The code whose stable name is `name`, if one is.
            pub fn named(name: &str) -> Option<ErrorCode> {
                ErrorCode::ALL.iter().copied().find(|code| code.as_str() == name)
            }
        }
    };
}

error_codes! {
    /// No actor has the address.
    UnknownAddress = "unknown-address",
    /// The receiver's mailbox is full; nothing was queued.
    MailboxFull = "mailbox-full",
    /// The message does not fit the receiver's protocol.
    BadMessage = "bad-message",
    /// A message or reply is over `max-message-bytes`.
    TooLarge = "too-large",
    /// No reply within the ask's timeout.
    Timeout = "timeout",
    /// The receiver failed handling the message.
    ActorFailed = "actor-failed",
    /// The receiver stopped before handling the message.
    Stopped = "stopped",
    /// The ask would wait on an actor that waits on the asker.
    Cycle = "cycle",
    /// The address is taken.
    NameTaken = "name-taken",
    /// No component (template) by that name.
    UnknownComponent = "unknown-component",
    /// No supervisor by that name.
    UnknownSupervisor = "unknown-supervisor",
    /// The actor failed to start.
    SpawnFailed = "spawn-failed",
    /// A per-actor or per-host quota is exhausted.
    QuotaExceeded = "quota-exceeded",
    /// An argument was rejected (a name, a limit, a policy, a grant).
    InvalidArgument = "invalid-argument",
    /// A binding of an imported interface was refused.
    BadBinding = "bad-binding",
    /// A component could not be read, compiled or linked.
    LoadFailed = "load-failed",
    /// The new code of a swap does not cover the old protocol.
    Incompatible = "incompatible",
    /// The actor is restarting or stopping.
    NotRunning = "not-running",
    /// Another swap of the actor is on probation.
    InProgress = "in-progress",
    /// The old code's snapshot failed.
    SnapshotFailed = "snapshot-failed",
    /// The new code of a swap failed to start.
    StartFailed = "start-failed",
    /// The new code failed on probation and was rolled back.
    ProbationFailed = "probation-failed",
    /// A rolling swap failed part-way and was rolled back.
    RolledBack = "rolled-back",
    /// The host that has the receiver could not be reached; whether the
    /// message arrived is unknown.
    Unreachable = "unreachable",
    /// The store did not take a write: nothing was acknowledged.
    NotDurable = "not-durable",
    /// A circuit breaker over the dependency is open: the call failed
    /// fast, without reaching it (see `crate::outbound::breaker`).
    CircuitOpen = "circuit-open",
    /// A control request that does not parse.
    BadRequest = "bad-request",
    /// A bug in troupe.
    Internal = "internal",
}

/// An error that has an [`ErrorCode`].
pub trait HasErrorCode: std::error::Error {
    /// Its code.
    fn code(&self) -> ErrorCode;
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_have_distinct_kebab_case_names() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-')), "{names:?}");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(serde_json::to_string(&ErrorCode::MailboxFull).unwrap(), "\"mailbox-full\"");
    }

    #[test]
    fn a_code_is_found_again_by_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::named(code.as_str()), Some(*code));
        }
        assert_eq!(ErrorCode::named("no-such-code"), None);
    }
}
