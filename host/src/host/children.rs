//! A supervisor's children in start order, as OTP keeps them: restarts of
//! `rest-for-one` take the children started after the one that failed,
//! and a supervisor stops its children last started first.
//!
//! Children sit in a vector in start order, with an index by address. One
//! that leaves (a temporary child that stopped, a key of a virtual
//! component that passivated) leaves a hole, so that the thousands of
//! others do not move; the holes are closed up, in one pass, once they
//! are as many as the children. Leaving costs constant time on average,
//! and the memory per child is that of a vector's slot and an index entry.

use std::collections::HashMap;

use crate::message::Address;

/// Holes tolerated before any closing up, whatever the number of children:
/// a small supervisor never compacts.
const MIN_HOLES: usize = 32;

/// A supervisor's children (what it keeps of each: `C`), in start order.
pub(crate) struct Children<C> {
    /// In start order; `None` where a child left.
    slots: Vec<Option<(Address, C)>>,
    /// Where each child is in `slots`.
    places: HashMap<Address, usize>,
}

impl<C> Default for Children<C> {
    fn default() -> Self {
        Children { slots: Vec::new(), places: HashMap::new() }
    }
}

impl<C> Children<C> {
    /// How many.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Adds `child` last in start order; a child at the same address
    /// leaves first.
    pub fn push(&mut self, address: Address, child: C) {
        self.remove(&address);
        self.places.insert(address.clone(), self.slots.len());
        self.slots.push(Some((address, child)));
    }

    /// Removes the child at `address`.
    pub fn remove(&mut self, address: &str) -> Option<C> {
        let place = self.places.remove(address)?;
        let (_, child) = self.slots[place].take()?;
        let holes = self.slots.len() - self.places.len();
        if holes > MIN_HOLES && holes > self.places.len() {
            self.close_up();
        }
        Some(child)
    }

    /// Moves the children over the holes, keeping their order.
    fn close_up(&mut self) {
        self.slots.retain(Option::is_some);
        for (place, (address, _)) in self.slots.iter().flatten().enumerate() {
            self.places.insert(address.clone(), place);
        }
    }

    /// The child at `address`.
    pub fn get_mut(&mut self, address: &str) -> Option<&mut C> {
        let place = *self.places.get(address)?;
        self.slots[place].as_mut().map(|(_, child)| child)
    }

    /// The first started.
    pub fn first(&self) -> Option<(&Address, &C)> {
        self.iter().next()
    }

    /// The last started.
    pub fn last(&self) -> Option<(&Address, &C)> {
        self.iter().next_back()
    }

    /// Every child, in start order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Address, &C)> {
        self.slots.iter().flatten().map(|(address, child)| (address, child))
    }

    /// Every child, in start order, to change.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&Address, &mut C)> {
        self.slots.iter_mut().flatten().map(|(address, child)| (&*address, child))
    }

    /// The child at `address` and those started after it, in start order,
    /// to change; none if there is no child at `address`.
    pub fn rest_mut(&mut self, address: &str) -> impl DoubleEndedIterator<Item = (&Address, &mut C)> {
        let from = self.places.get(address).copied().unwrap_or(self.slots.len());
        self.slots[from..].iter_mut().flatten().map(|(address, child)| (&*address, child))
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
    fn many_leaving_keeps_the_others_in_order_and_in_place() {
        let mut children = Children::default();
        for n in 0..1000u32 {
            children.push(Address::from(n.to_string().as_str()), n);
        }
        for n in (0..1000u32).filter(|n| n % 3 != 0) {
            assert_eq!(children.remove(&n.to_string()), Some(n));
        }
        let left: Vec<u32> = children.iter().map(|(_, n)| *n).collect();
        assert_eq!(left, (0..1000).filter(|n| n % 3 == 0).collect::<Vec<_>>());
        assert!(children.slots.len() < 2 * children.len() + MIN_HOLES + 1, "the holes were closed up");
        assert_eq!(children.get_mut("999").copied(), Some(999), "found where it moved to");
        let rest: Vec<u32> = children.rest_mut("990").map(|(_, n)| *n).collect();
        assert_eq!(rest, [990, 993, 996, 999]);
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
