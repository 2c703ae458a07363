//! Deadlines of one worker's connections: a min-heap with lazy deletion.
//!
//! Arming is O(log n) and happens only when a connection's deadline moves *earlier* than the
//! entry it already has; a deadline that moves later (every keep-alive request) costs nothing
//! until the old entry comes due, when it is pushed again at the new time. Entries of closed
//! connections are recognised by their connection id and dropped when they surface. The poll
//! timeout is the earliest entry, so no scan of all connections ever happens. This module knows
//! nothing of what a deadline means (see `conn`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// One armed deadline: when, for which Slab slot, for which connection in that slot (the low 32
/// bits of its id, as in its token). Kept small: every open connection has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub at: Instant,
    pub slot: u32,
    pub conn_tag: u32,
}

#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Deadlines {
    pub fn push(&mut self, entry: Entry) {
        self.heap.push(Reverse(entry));
    }

    /// The earliest armed time, for the poll timeout.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Drops every entry `keep` rejects, and gives back the capacity a flood of connections grew.
    pub fn keep_only(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.heap.retain(|Reverse(entry)| keep(entry));
        self.heap.shrink_to_fit();
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_time_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for (i, secs) in [3u64, 1, 2].into_iter().enumerate() {
            d.push(Entry {
                at: t0 + Duration::from_secs(secs),
                slot: i as u32,
                conn_tag: i as u32,
            });
        }
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None);
        let due: Vec<u32> = std::iter::from_fn(|| d.pop_due(t0 + Duration::from_secs(2)))
            .map(|e| e.slot)
            .collect();
        assert_eq!(due, vec![1, 2]);
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(3)));
    }
}
