//! What the process asks of its allocator (glibc's malloc) so that memory a flood of connections
//! took goes back to the kernel once the flood has passed, and [`Tidy`], the bookkeeping that
//! tells an event loop when to ask and when a flood is over. Moving connections and shrinking the
//! Slab is `worker`'s business. Elsewhere (musl, other systems) both allocator calls do nothing.
//!
//! glibc keeps freed memory in per-thread arenas and returns it in two ways: the free space at the
//! top of an arena beyond the trim threshold is returned when memory is freed, and `malloc_trim`
//! returns whole free pages inside the arenas. By default both thresholds move: after a large
//! block (a Slab that grew to thousands of entries) is freed they rise to its size, and every
//! arena may then keep that much for good. Fixing them bounds what an arena keeps.

use std::time::{Duration, Instant};

use crate::sys;

/// How long after a connection closes the loop tidies its memory: at most once per this while
/// connections come and go, never while nothing happens. A flood's connections are cut by the
/// same timeout within moments of each other, so a second later the Slab can shrink past the last
/// of them.
pub const TIDY_DELAY: Duration = Duration::from_secs(1);
/// A loop whose connections have held this many bytes (their Slab entries and buffers: about 390
/// idle connections) shrinks its Slab and deadline heap once they hold a quarter of it.
pub const FLOOD_BYTES: usize = 64 * 1024;

/// Blocks this large or larger get their own mapping, unmapped when freed; an arena keeps at most
/// this much free space at its top. glibc's own starting value, kept from moving.
const THRESHOLD_BYTES: i32 = 128 * 1024;

/// Fixes the allocator's thresholds; at start, before the threads allocate much.
pub fn fix_thresholds() {
    sys::fix_allocator_thresholds(THRESHOLD_BYTES);
}

/// Hands the allocator's whole free pages inside its arenas back to the kernel, where a flood's
/// per-connection buffers were. It takes each arena's lock in turn: call it rarely.
pub fn return_free_pages() {
    sys::return_free_pages();
}

/// One event loop's account of what its connections hold in user space (their Slab entries and
/// buffers), its high-water mark since memory was last released, and when to tidy next.
#[derive(Debug)]
pub struct Tidy {
    /// The size of one Slab entry.
    entry_bytes: usize,
    /// Bytes in the connections' buffers, summed.
    buffered: usize,
    /// The most bytes the connections held since memory was last released.
    high_water: usize,
    /// Set when a connection closes, unless already set.
    due: Option<Instant>,
}

impl Tidy {
    pub fn new(entry_bytes: usize) -> Tidy {
        Tidy {
            entry_bytes,
            buffered: 0,
            high_water: 0,
            due: None,
        }
    }

    /// What `connections` entries and the buffers hold now.
    pub fn held_bytes(&self, connections: usize) -> usize {
        connections * self.entry_bytes + self.buffered
    }

    pub fn high_water(&self) -> usize {
        self.high_water
    }

    /// A connection's buffers went from `before` to `after` bytes.
    pub fn buffers_changed(&mut self, before: usize, after: usize, connections: usize) {
        self.buffered = (self.buffered + after).saturating_sub(before);
        self.high_water = self.high_water.max(self.held_bytes(connections));
    }

    /// A connection holding `buffered` bytes closed: tidy a little later.
    pub fn closed(&mut self, buffered: usize, now: Instant) {
        self.buffered = self.buffered.saturating_sub(buffered);
        self.due.get_or_insert(now + TIDY_DELAY);
    }

    /// When the next tidy is due, for the poll timeout.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Starts a tidy if one is due: `Some(flood_over)`, where `flood_over` says the connections
    /// now hold a quarter of a high-water mark above [`FLOOD_BYTES`] or less, so the Slab and the
    /// deadline heap should shrink too.
    pub fn start(&mut self, now: Instant, connections: usize) -> Option<bool> {
        if self.due.is_none_or(|due| due > now) {
            return None;
        }
        self.due = None;
        let held = self.held_bytes(connections);
        Some(self.high_water >= FLOOD_BYTES && held <= self.high_water / 4)
    }

    /// The flood's memory is released: the mark starts again from what is held now.
    pub fn released(&mut self, connections: usize) {
        self.high_water = self.held_bytes(connections);
    }
}
