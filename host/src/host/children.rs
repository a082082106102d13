//! A supervisor's children in start order, as OTP keeps them: restarts of
//! `rest-for-one` take the children started after the one that failed,
//! and a supervisor stops its children last started first.
//!
//! Children are kept by the number of their start, so that one leaves
//! (a temporary child that stopped, a key of a virtual component that
//! passivated) in logarithmic time, without the thousands of others
//! moving.

use std::collections::{BTreeMap, HashMap};

use crate::message::Address;

/// A supervisor's children (what it keeps of each: `C`), in start order.
pub(crate) struct Children<C> {
    by_start: BTreeMap<u64, (Address, C)>,
    starts: HashMap<Address, u64>,
    next: u64,
}

impl<C> Default for Children<C> {
    fn default() -> Self {
        Children { by_start: BTreeMap::new(), starts: HashMap::new(), next: 0 }
    }
}

impl<C> Children<C> {
    /// How many.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// Adds `child` last in start order; a child at the same address
    /// leaves first.
    pub fn push(&mut self, address: Address, child: C) {
        self.remove(&address);
        let start = self.next;
        self.next += 1;
        self.starts.insert(address.clone(), start);
        self.by_start.insert(start, (address, child));
    }

    /// Removes the child at `address`.
    pub fn remove(&mut self, address: &str) -> Option<C> {
        let start = self.starts.remove(address)?;
        self.by_start.remove(&start).map(|(_, child)| child)
    }

    /// The child at `address`.
    pub fn get_mut(&mut self, address: &str) -> Option<&mut C> {
        let start = self.starts.get(address)?;
        self.by_start.get_mut(start).map(|(_, child)| child)
    }

    /// The first started.
    pub fn first(&self) -> Option<(&Address, &C)> {
        self.by_start.values().next().map(|(address, child)| (address, child))
    }

    /// The last started.
    pub fn last(&self) -> Option<(&Address, &C)> {
        self.by_start.values().next_back().map(|(address, child)| (address, child))
    }

    /// Every child, in start order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Address, &C)> {
        self.by_start.values().map(|(address, child)| (address, child))
    }

    /// Every child, in start order, to change.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&Address, &mut C)> {
        self.by_start.values_mut().map(|(address, child)| (&*address, child))
    }

    /// The child at `address` and those started after it, in start order,
    /// to change; none if there is no child at `address`.
    pub fn rest_mut(&mut self, address: &str) -> impl DoubleEndedIterator<Item = (&Address, &mut C)> {
        let start = self.starts.get(address).copied().unwrap_or(u64::MAX);
        self.by_start.range_mut(start..).map(|(_, (address, child))| (&*address, child))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child() -> u32 {
        0
    }

    fn order(children: &Children<u32>) -> Vec<&str> {
        children.iter().map(|(address, _)| address.as_str()).collect()
    }

    #[test]
    fn children_keep_their_start_order_as_others_leave_and_come() {
        let mut children = Children::default();
        for name in ["a", "b", "c", "d"] {
            children.push(Address::from(name), child());
        }
        assert!(children.remove("b").is_some());
        assert!(children.remove("b").is_none(), "gone already");
        children.push(Address::from("a"), child());
        assert_eq!(order(&children), ["c", "d", "a"], "a child added again goes last");
        assert_eq!(children.first().map(|(a, _)| a.as_str()), Some("c"));
        assert_eq!(children.last().map(|(a, _)| a.as_str()), Some("a"));
        assert_eq!(children.len(), 3);
    }

    #[test]
    fn the_rest_of_a_child_is_it_and_those_started_after_it() {
        let mut children = Children::default();
        for name in ["a", "b", "c"] {
            children.push(Address::from(name), child());
        }
        let rest: Vec<String> = children.rest_mut("b").map(|(a, _)| a.to_string()).collect();
        assert_eq!(rest, ["b", "c"]);
        assert_eq!(children.rest_mut("nobody").count(), 0);
    }
}
