//! On-stack-replacement slots: how a tier-0 frame that keeps looping finds
//! tier-1 code for the rest of its loop.
//!
//! Each loop of a tier-0 body that can be entered from the middle gets an
//! [`OsrSlot`] at a fixed address. The tier-0 code reads the slot's entry at
//! the top of every iteration; once a promotion publishes a tier-1 entry
//! there, the frame calls it with the loop's live state and returns what it
//! returns. What the state is, and how the entry is built, is the IR side's
//! business; the slots and their publication are kept by
//! [`TieredFunctions`](super::TieredFunctions).

use std::sync::atomic::AtomicU64;

/// One loop's on-stack-replacement slot, shared between the tier-0 code
/// that reads it on every iteration and the layer that publishes a tier-1
/// entry in it. Loop `n`'s slot of a body is at
/// `base + n * size_of::<OsrSlot>()`; the layer keeps the slots alive, at
/// that address, as long as the tier-0 code can run.
#[repr(C)]
#[derive(Debug, Default)]
pub struct OsrSlot {
    /// 0, or the address of the tier-1 entry for this loop: a function
    /// taking the loop's state and returning the function's results.
    pub entry: AtomicU64,
    /// How many frames moved to the entry (bumped by the tier-0 code).
    pub transfers: AtomicU64,
}

// SAFETY: two atomic integers (repr(C)): all-zero is the empty slot, and
// both change only through shared references.
unsafe impl crate::memory::ZeroCell for OsrSlot {}

impl OsrSlot {
    /// The byte offset of `entry` in a slot.
    pub const ENTRY_OFFSET: i32 = 0;
    /// The byte offset of `transfers` in a slot.
    pub const TRANSFERS_OFFSET: i32 = 8;
    /// The size of a slot in bytes.
    pub const SIZE: u64 = std::mem::size_of::<OsrSlot>() as u64;
}
