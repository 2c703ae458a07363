//! Deadlines of one worker's connections: a min-heap with lazy deletion.
//!
//! Arming is O(log n) and happens only when a connection's deadline moves *earlier* than the
//! entry it already has; a deadline that moves later (every keep-alive request) costs nothing
//! until the old entry comes due, when it is pushed again at the new time. Entries of closed
//! connections are recognised by their connection id and dropped when they surface. The poll
//! timeout is the earliest entry, so no scan of all connections ever happens. This module knows
//! nothing of what a deadline means (see `serve::connection`). It also owns [`Moment`], the
//! compact time every open connection and every entry holds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::ops::Add;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A point in time as nanoseconds since the first one this process took: 8 bytes where an
/// `Instant` takes 16, and a niche, so that `Option<Moment>` is 8 bytes too. Every open
/// connection holds three and every deadline entry one, which an idle connection's size is
/// mostly made of. Good for 584 years from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moment(NonZeroU64);

/// The time of the first `Moment` taken; every later one counts from it.
static EPOCH: OnceLock<Instant> = OnceLock::new();

impl Moment {
    /// `instant` as a moment. An instant before the first moment taken is taken as that one
    /// (the event loops read the clock afresh for every time they convert).
    pub fn of(instant: Instant) -> Moment {
        let epoch = *EPOCH.get_or_init(|| instant);
        let nanos = instant.saturating_duration_since(epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Moment(NonZeroU64::new(nanos).unwrap_or(NonZeroU64::MIN))
    }

    /// Back to an `Instant`, for a wait's timeout.
    pub fn instant(self) -> Instant {
        let epoch = *EPOCH.get_or_init(Instant::now);
        epoch + Duration::from_nanos(self.0.get())
    }
}

impl Add<Duration> for Moment {
    type Output = Moment;

    fn add(self, duration: Duration) -> Moment {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Moment(self.0.saturating_add(nanos))
    }
}

/// The last instant a worker converted, with its moment: every connection one wake-up drives
/// reads the same clock, so it is converted once per wake-up, not once per connection.
#[derive(Debug, Clone, Copy)]
pub struct LastMoment {
    instant: Instant,
    moment: Moment,
}

impl LastMoment {
    pub fn new(instant: Instant) -> LastMoment {
        LastMoment {
            instant,
            moment: Moment::of(instant),
        }
    }

    /// `instant` as a moment, converted only when it is not the last one asked for.
    pub fn of(&mut self, instant: Instant) -> Moment {
        if instant != self.instant {
            *self = LastMoment::new(instant);
        }
        self.moment
    }
}

/// One armed deadline: when, for which Slab slot, for which connection in that slot (the low 32
/// bits of its id, as in its token). Kept small: every open connection has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub at: Moment,
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
        self.heap.peek().map(|Reverse(e)| e.at.instant())
    }

    /// Drops every entry `keep` rejects, and gives back the capacity a flood of connections grew.
    pub fn keep_only(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.heap.retain(|Reverse(entry)| keep(entry));
        self.heap.shrink_to_fit();
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Moment) -> Option<Entry> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A time after the epoch, whichever test takes the first moment.
    fn after_the_epoch() -> Instant {
        Moment::of(Instant::now());
        Instant::now() + Duration::from_millis(1)
    }

    #[test]
    fn pops_in_time_order_and_only_when_due() {
        let t0 = after_the_epoch();
        let mut d = Deadlines::default();
        for (i, secs) in [3u64, 1, 2].into_iter().enumerate() {
            d.push(Entry {
                at: Moment::of(t0) + Duration::from_secs(secs),
                slot: i as u32,
                conn_tag: i as u32,
            });
        }
        let seconds_after = |at: Option<Instant>| at.map(|at| at.duration_since(t0).as_secs_f64());
        assert_eq!(seconds_after(d.next()), Some(1.0));
        assert_eq!(d.pop_due(Moment::of(t0)), None);
        let due: Vec<u32> =
            std::iter::from_fn(|| d.pop_due(Moment::of(t0) + Duration::from_secs(2)))
                .map(|e| e.slot)
                .collect();
        assert_eq!(due, vec![1, 2]);
        assert_eq!(seconds_after(d.next()), Some(3.0));
    }

    #[test]
    fn a_moment_is_half_an_instant_and_keeps_nanoseconds() {
        assert_eq!(std::mem::size_of::<Option<Moment>>(), 8);
        let t0 = after_the_epoch();
        let later = t0 + Duration::from_nanos(1_234_567_891);
        assert_eq!(
            Moment::of(later),
            Moment::of(t0) + Duration::from_nanos(1_234_567_891)
        );
        assert_eq!(
            Moment::of(later)
                .instant()
                .duration_since(Moment::of(t0).instant()),
            Duration::from_nanos(1_234_567_891)
        );
        assert!(Moment::of(t0) < Moment::of(later));
    }
}
