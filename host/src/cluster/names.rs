//! How troupe's names become NATS subjects and JetStream KV keys.
//!
//! A subject token may not hold `.`, `*`, `>` or whitespace, and a KV key
//! only `[-/_=.a-zA-Z0-9]`; actor addresses and node names may hold `.`
//! (and keys of virtual components more). [`escape`] maps any string to a
//! token that is valid in both places, one-to-one, so that two addresses
//! never share a subject.

/// The prefix of every subject and bucket troupe uses, so that a NATS
/// account can carry other traffic beside it.
pub const PREFIX: &str = "troupe";

/// The bucket of host leases: one key per live node, expiring with the
/// lease (see `members.rs`).
pub const HOSTS_BUCKET: &str = "troupe-hosts";

/// The bucket of address claims: which node serves each address (see
/// `claims.rs`).
pub const ADDRESSES_BUCKET: &str = "troupe-addresses";

/// The bucket of group members: which node serves each member of each
/// group (see `groups.rs`).
pub const GROUPS_BUCKET: &str = "troupe-groups";

/// The object store holding the components whose actors a host serves,
/// by content hash, for senders that have not loaded them (see
/// `remote.rs`).
pub const COMPONENTS_BUCKET: &str = "troupe-components";

/// `text` as a subject token and KV key: ASCII letters, digits, `_`, `-`
/// and `/` stay; every other byte becomes `=` and two hex digits.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("={byte:02x}"));
        }
    }
    out
}

/// The inverse of [`escape`], `None` for a string it cannot have made.
pub fn unescape(token: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'=' {
            let hex = tail.get(..2)?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The subject the host serving `address` listens on for its messages.
pub fn actor_subject(address: &str) -> String {
    format!("{PREFIX}.actor.{}", escape(address))
}

/// The subject a host listens on for requests about itself (`ps`).
pub fn host_subject(node: &str) -> String {
    format!("{PREFIX}.host.{}", escape(node))
}

/// The subject a host listens on for messages to the keys of virtual
/// components it holds (see `keys.rs`): one for all its keys, where each
/// named actor has its own.
pub fn keys_subject(node: &str) -> String {
    format!("{PREFIX}.keys.{}", escape(node))
}

/// The subject a host listens on for `down` notices to its actors, from
/// the hosts of the actors they watch (see `watches.rs`).
pub fn down_subject(node: &str) -> String {
    format!("{PREFIX}.down.{}", escape(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_are_valid_subject_tokens_and_kv_keys() {
        for name in ["counter", "user/42", "a.b", "x*y>z", "sp ace", "=", "ü/ß", "tab\there", ""] {
            let token = escape(name);
            assert!(
                token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/' | b'=')),
                "{name:?} -> {token:?}"
            );
            assert_eq!(unescape(&token).as_deref(), Some(name), "{name:?} round-trips");
        }
    }

    #[test]
    fn distinct_names_get_distinct_tokens() {
        assert_ne!(escape("a.b"), escape("a=2eb"));
        assert_ne!(escape("a.b"), escape("a_b"));
        assert_eq!(actor_subject("user/4.2"), "troupe.actor.user/4=2e2");
    }

    #[test]
    fn strings_escape_never_makes_are_refused() {
        assert_eq!(unescape("=2"), None);
        assert_eq!(unescape("=zz"), None);
        assert_eq!(unescape("=ff"), None, "not UTF-8 alone");
    }
}
