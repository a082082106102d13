//! Consistent hashing for `hash-on` routers: a ring of points per group
//! member, so that the same key always reaches the same member and adding
//! or removing a member moves about 1/N of the keys.

/// Virtual nodes per member on the hash ring: enough that keys spread
/// within a few percent of evenly among a handful of members.
pub(crate) const VIRTUAL_NODES: usize = 128;

/// A consistent-hash ring over a group's members.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashRing {
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
}
