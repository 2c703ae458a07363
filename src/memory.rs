//! What the process asks of its allocator (glibc's malloc) so that memory a flood of connections
//! took goes back to the kernel once the flood has passed. When to ask is `worker`'s business;
//! this module only knows how. Elsewhere (musl, other systems) both calls do nothing.
//!
//! glibc keeps freed memory in per-thread arenas and returns it in two ways: the free space at the
//! top of an arena beyond the trim threshold is returned when memory is freed, and `malloc_trim`
//! returns whole free pages inside the arenas. By default both thresholds move: after a large
//! block (a Slab that grew to thousands of entries) is freed they rise to its size, and every
//! arena may then keep that much for good. Fixing them bounds what an arena keeps.

/// Blocks this large or larger get their own mapping, unmapped when freed; an arena keeps at most
/// this much free space at its top. glibc's own starting value, kept from moving.
const THRESHOLD_BYTES: i32 = 128 * 1024;

/// Fixes the allocator's thresholds. Call once at start, before the threads.
pub fn fix_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt has no preconditions; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD_BYTES);
    }
}

/// Hands the allocator's whole free pages inside its arenas back to the kernel, where a flood's
/// per-connection buffers were. It takes each arena's lock in turn: call it rarely.
pub fn return_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it takes each arena's lock itself.
    unsafe {
        libc::malloc_trim(0);
    }
}
