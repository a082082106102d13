//! Groups across hosts: the members of each group on every host, so that
//! an import bound to a group reaches its members wherever they run.
//!
//! A host records each member it serves (an actor with a group whose
//! address it claimed, `serve.rs`) in the groups bucket, one key per
//! member (`GROUP.ADDRESS`, escaped) holding the node, and removes it when
//! the member leaves. Every host follows the bucket with a watch (its
//! current keys, then each change), so that routing reads the members of
//! other hosts from memory; a host's members are removed by the others
//! when it leaves the cluster without a word (`failover.rs`), each only at
//! the revision that named that host (a member another host serves since
//! stays). A host that finds one of its own members removed while it
//! still serves it (its lease had lapsed, and it is back) records it
//! again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tracing::{debug, warn};

use super::names::{escape, unescape};
use crate::message::Address;
use crate::sync::{Mutex, RwLock};

/// Where a member is: its host's node, and the bucket revision that
/// recorded it there.
type Placed = (String, u64);

/// The members of every group of the cluster, as this host follows them.
pub struct Groups {
    kv: kv::Store,
    node: String,
    /// Group → member address → where it is.
    members: RwLock<HashMap<String, BTreeMap<String, Placed>>>,
    /// The keys of the members this host serves.
    own: Mutex<HashSet<String>>,
    /// Bumped at each change, for routing's hash rings.
    version: AtomicU64,
}

impl Groups {
    /// The groups in `kv`, for host `node`.
    pub fn new(kv: kv::Store, node: &str) -> Self {
        Groups {
            kv,
            node: node.to_string(),
            members: RwLock::default(),
            own: Mutex::default(),
            version: AtomicU64::new(0),
        }
    }

    /// Records that this host serves `address`, a member of `group`.
    pub async fn join(&self, group: &str, address: &str) {
        let key = member_key(group, address);
        self.own.lock().insert(key.clone());
        self.record(&key).await;
    }

    /// Puts this host's member `key` in the bucket.
    async fn record(&self, key: &str) {
        if let Err(e) = self.kv.put(key, Bytes::from(self.node.clone())).await {
            let (group, address) = parse_member_key(key).unwrap_or_default();
            warn!(%group, actor = %address, error = %e, "group member not recorded: other hosts do not route to it");
        }
    }

    /// Records that this host no longer serves `address` of `group`.
    pub async fn leave(&self, group: &str, address: &str) {
        let key = member_key(group, address);
        self.own.lock().remove(&key);
        if let Err(e) = self.kv.delete(&key).await {
            debug!(%group, actor = %address, error = %e, "group member not removed");
        }
    }

    /// Removes the members host `node` recorded: it left without a word.
    /// Each only at the revision that named `node`, so that a member
    /// another host serves since stays.
    pub async fn forget_node(&self, node: &str) {
        let gone: Vec<(String, u64)> = self
            .members
            .read()
            .iter()
            .flat_map(|(group, members)| {
                members
                    .iter()
                    .filter(|(_, (n, _))| n == node)
                    .map(|(address, (_, revision))| (member_key(group, address), *revision))
            })
            .collect();
        for (key, revision) in gone {
            if let Err(e) = self.kv.delete_expect_revision(&key, Some(revision)).await {
                debug!(%key, error = %e, "a lost host's group member not removed (recorded again since?)");
            }
        }
    }

    /// The members of `group` on other hosts, by address, and a number
    /// that changes whenever any group's membership does.
    pub fn elsewhere(&self, group: &str) -> (u64, Vec<Address>) {
        let version = self.version.load(Ordering::Acquire);
        let members = self.members.read();
        let Some(group) = members.get(group) else { return (version, Vec::new()) };
        let addresses =
            group.iter().filter(|(_, (node, _))| *node != self.node).map(|(a, _)| Address::from(a.as_str()));
        (version, addresses.collect())
    }

    /// Follows the bucket until the watch ends: its current keys first,
    /// then each change.
    pub async fn follow(self: std::sync::Arc<Self>) {
        let mut watch = match self.kv.watch_with_history(">").await {
            Ok(watch) => watch,
            Err(e) => {
                warn!(error = %e, "the cluster's groups cannot be followed: imports bound to groups reach this host's members only");
                return;
            }
        };
        while let Some(entry) = watch.next().await {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    warn!(error = %e, "following the cluster's groups");
                    continue;
                }
            };
            let Some((group, address)) = parse_member_key(&entry.key) else { continue };
            let removed = {
                let mut members = self.members.write();
                match entry.operation {
                    kv::Operation::Put => {
                        let node = String::from_utf8_lossy(&entry.value).into_owned();
                        members.entry(group).or_default().insert(address, (node, entry.revision));
                        false
                    }
                    kv::Operation::Delete | kv::Operation::Purge => {
                        if let Some(group_members) = members.get_mut(&group) {
                            group_members.remove(&address);
                            if group_members.is_empty() {
                                members.remove(&group);
                            }
                        }
                        true
                    }
                }
            };
            // Removed by others while this host still serves it.
            if removed && self.own.lock().contains(&entry.key) {
                self.record(&entry.key).await;
            }
            self.version.fetch_add(1, Ordering::Release);
        }
    }
}

/// The key of `address`, a member of `group`: both escaped, so that the
/// only `.` is the one between them.
fn member_key(group: &str, address: &str) -> String {
    format!("{}.{}", escape(group), escape(address))
}

/// The group and address of a member's key.
fn parse_member_key(key: &str) -> Option<(String, String)> {
    let (group, address) = key.split_once('.')?;
    Some((unescape(group)?, unescape(address)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_key_reads_back_as_its_group_and_address() {
        for (group, address) in [("shards", "shards-0"), ("pool.v2", "pool.v2/worker 3"), ("g", "a.b.c")] {
            let key = member_key(group, address);
            assert_eq!(key.matches('.').count(), 1, "{key}");
            assert_eq!(parse_member_key(&key), Some((group.to_string(), address.to_string())));
        }
    }
}
