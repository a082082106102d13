//! Typed calls between actors through imported WIT interfaces.
//!
//! An actor component may import any protocol interface that other actors
//! export (`import acme:counter/api;`). The host satisfies such imports
//! itself: each imported function becomes a message to the actor (or group
//! of actors) the interface is *bound* to. A function with a result is an
//! ask — the caller's instance is suspended, without blocking a thread and
//! without spending its CPU budget, until the typed reply arrives; a
//! function without a result is a tell. Values cross as typed component
//! values, never as text.
//!
//! Bindings come from the manifest (`links`), from the spawner
//! (`spawn-options.bindings`), or from the actor itself at run time
//! (`troupe:actor/host.bind`). Every binding is type-checked when it is
//! made: the target must export the interface with identical types.
//!
//! # Failure semantics (like `gen_server:call`)
//!
//! A call through a binding that cannot complete *fails the caller's
//! message* (a `host-call` failure, so its supervisor applies its policy):
//! the interface is unbound, the target is gone, its mailbox is full, the
//! ask times out (`timeout-ms`, default 5000), the target fails while
//! handling it, or the call would close a cycle (A asks B asks A), which
//! is detected at once instead of waiting for the timeout. Guests that
//! need to handle such errors as values use `troupe:actor/host.ask`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::message::{Address, DEFAULT_ASK_TIMEOUT};

/// How a group shares the calls made through one binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Router {
    /// Each call to the next member in turn.
    RoundRobin,
    /// Each call to a random member.
    Random,
    /// Each call to the member with the shortest mailbox.
    LeastLoaded,
    /// Each call to every member. Tells only: an ask through a broadcast
    /// binding fails the caller.
    Broadcast,
    /// The same value of the named parameter always reaches the same
    /// member; adding or removing a member moves about 1/N of the keys.
    /// Calls to functions without that parameter fail the caller.
    HashOn(String),
}

/// Where a binding's calls go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BindingTarget {
    /// One actor.
    Actor(Address),
    /// The live actors of a group, chosen per call by a router.
    Group {
        /// The group: a manifest entry (or component) name, or a pool
        /// supervisor's name.
        name: String,
        /// How calls are shared.
        router: Router,
    },
}

/// A binding as configured: target and ask timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSpec {
    /// Where calls go.
    pub target: BindingTarget,
    /// How long an ask through this binding waits.
    pub timeout: Duration,
}

impl BindingSpec {
    /// A binding to one actor with the default timeout.
    pub fn actor(address: impl Into<Address>) -> Self {
        BindingSpec { target: BindingTarget::Actor(address.into()), timeout: DEFAULT_ASK_TIMEOUT }
    }

    /// A binding to a group with the default timeout.
    pub fn group(name: impl Into<String>, router: Router) -> Self {
        BindingSpec { target: BindingTarget::Group { name: name.into(), router }, timeout: DEFAULT_ASK_TIMEOUT }
    }
}

/// A live binding of one actor's imported interface.
#[derive(Debug)]
pub struct Binding {
    /// Its configuration.
    pub spec: BindingSpec,
    next: AtomicUsize,
}

impl Binding {
    /// A live binding for `spec`.
    pub fn new(spec: BindingSpec) -> Self {
        Binding { spec, next: AtomicUsize::new(0) }
    }

    /// The round-robin position for the next call among `members`.
    pub fn next_index(&self, members: usize) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % members.max(1)
    }
}

/// The identity of an interface across versions: `ns:pkg/iface` without
/// `@version`.
pub fn interface_key(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// Why a binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// The actor does not import this interface.
    #[error("`{actor}` does not import `{interface}`; it imports: {imports}")]
    NotImported {
        /// The binding actor.
        actor: Address,
        /// The interface.
        interface: String,
        /// What it does import (protocol interfaces only).
        imports: String,
    },
    /// The target does not exist.
    #[error("cannot bind `{interface}` to `{target}`: no such actor")]
    UnknownTarget {
        /// The interface.
        interface: String,
        /// The target.
        target: Address,
    },
    /// A function is missing from, or typed differently by, the target.
    #[error("cannot bind `{interface}` to `{target}`: `{function}` is imported as `{expected}` but `{target}` {found}")]
    Mismatch {
        /// The interface.
        interface: String,
        /// The target.
        target: String,
        /// The function.
        function: String,
        /// The importer's signature.
        expected: String,
        /// What the target has.
        found: String,
    },
    /// Broadcast over an interface whose every function returns something.
    #[error("broadcast routes tells only, but every function of the interface returns a result (`{function}` does)")]
    BroadcastAsk {
        /// The function.
        function: String,
    },
    /// `hash-on` names a parameter no function of the interface has.
    #[error("`hash-on({param})`: no function of `{interface}` has a parameter `{param}`")]
    NoSuchParam {
        /// The parameter.
        param: String,
        /// The interface.
        interface: String,
    },
}

/// Virtual nodes per member on the hash ring: enough that keys spread
/// within a few percent of evenly among a handful of members.
pub const VIRTUAL_NODES: usize = 128;

/// A consistent-hash ring over a group's members.
#[derive(Debug, Clone, Default)]
pub struct HashRing {
    points: Vec<(u64, usize)>,
}

fn hash64(bytes: &[u8]) -> u64 {
    let digest = blake3::hash(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

impl HashRing {
    /// A ring over `members` (their addresses), [`VIRTUAL_NODES`] points each.
    pub fn new<'a>(members: impl IntoIterator<Item = &'a str>) -> Self {
        let mut points = Vec::new();
        for (index, member) in members.into_iter().enumerate() {
            for v in 0..VIRTUAL_NODES {
                points.push((hash64(format!("{member}#{v}").as_bytes()), index));
            }
        }
        points.sort_unstable();
        HashRing { points }
    }

    /// The member (its index) that owns `key`.
    pub fn pick(&self, key: &[u8]) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let h = hash64(key);
        let at = self.points.partition_point(|(p, _)| *p < h);
        Some(self.points[at % self.points.len()].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(ring: &HashRing, members: &[String], keys: usize) -> Vec<String> {
        (0..keys).map(|k| members[ring.pick(format!("key-{k}").as_bytes()).unwrap()].clone()).collect()
    }

    #[test]
    fn the_same_key_always_goes_to_the_same_member() {
        let members: Vec<String> = (0..4).map(|i| format!("shard-{i}")).collect();
        let ring = HashRing::new(members.iter().map(String::as_str));
        let again = HashRing::new(members.iter().map(String::as_str));
        assert_eq!(owners(&ring, &members, 1000), owners(&again, &members, 1000));
    }

    #[test]
    fn keys_spread_over_all_members() {
        let members: Vec<String> = (0..4).map(|i| format!("shard-{i}")).collect();
        let ring = HashRing::new(members.iter().map(String::as_str));
        let owned = owners(&ring, &members, 4000);
        for m in &members {
            let share = owned.iter().filter(|o| *o == m).count();
            assert!((600..=1400).contains(&share), "{m} owns {share} of 4000 keys");
        }
    }

    #[test]
    fn adding_a_member_moves_about_one_nth_of_the_keys() {
        let four: Vec<String> = (0..4).map(|i| format!("shard-{i}")).collect();
        let five: Vec<String> = (0..5).map(|i| format!("shard-{i}")).collect();
        let before = owners(&HashRing::new(four.iter().map(String::as_str)), &four, 5000);
        let after = owners(&HashRing::new(five.iter().map(String::as_str)), &five, 5000);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        // Ideal: 1/5 of the keys (1000), all to the new member.
        assert!((600..=1400).contains(&moved), "{moved} of 5000 keys moved");
        assert!(before.iter().zip(&after).all(|(a, b)| a == b || b == "shard-4"), "keys move only to the newcomer");
    }

    #[test]
    fn round_robin_cycles_through_members() {
        let binding = Binding::new(BindingSpec::group("g", Router::RoundRobin));
        let picks: Vec<usize> = (0..6).map(|_| binding.next_index(3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }
}
