//! Indirect stubs: stable function addresses whose target can change.
//!
//! Stubs are allocated in blocks of one page of code (read-execute) and one
//! page of 8-byte slots (read-write) from a single reservation, so each
//! stub's `jmp [rip + disp32]` reaches its slot and no page is ever writable
//! and executable. Repointing a stub is one atomic 8-byte store to its slot:
//! a concurrent caller jumps to the old target or the new one, never to a
//! torn address.
//!
//! Blocks live as long as the manager. A released stub goes back to a free
//! list; whoever releases it guarantees nobody calls it any more.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::arch::{HostArch, LazyArch};
use crate::error::{Error, Result};
use crate::memory::{page_size, LinkMemory, Placement, SegmentProtection};
use crate::symbol::{ExecutorAddr, FastHash};

/// Identifies a stub of an [`IndirectStubsManager`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct StubId {
    block: u32,
    index: u32,
}

impl StubId {
    /// The id as one integer (a trampoline cookie).
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.block) << 32) | u64::from(self.index)
    }

    /// The inverse of [`Self::to_bits`].
    pub(crate) fn from_bits(bits: u64) -> Self {
        StubId {
            block: (bits >> 32) as u32,
            index: bits as u32,
        }
    }

    /// The block the stub is in and its index there: dense from zero, for
    /// tables indexed by stub.
    pub(crate) fn position(self) -> (usize, usize) {
        (self.block as usize, self.index as usize)
    }
}

struct StubBlock {
    /// Owns the pages; never dropped while the manager lives.
    _memory: LinkMemory,
    code_addr: u64,
    slots_addr: u64,
}

#[derive(Default)]
struct StubsState {
    blocks: Vec<StubBlock>,
    /// Block index by the address of its code page.
    by_page: HashMap<u64, u32, FastHash>,
    /// Stubs never handed out in the newest block start at this index.
    next_in_last: usize,
    free: Vec<StubId>,
    n_live: usize,
}

/// A pool of indirect stubs. See the module docs.
pub struct IndirectStubsManager {
    state: Mutex<StubsState>,
    per_block: usize,
}

impl Default for IndirectStubsManager {
    fn default() -> Self {
        Self::new()
    }
}

impl IndirectStubsManager {
    /// An empty pool; blocks are allocated on demand.
    pub fn new() -> Self {
        IndirectStubsManager {
            state: Mutex::new(StubsState::default()),
            per_block: page_size() / HostArch::STUB_SIZE,
        }
    }

    fn new_block(&self) -> Result<StubBlock> {
        let page = page_size();
        let mut memory = LinkMemory::reserve(
            &[
                (SegmentProtection::ReadExec, page),
                (SegmentProtection::ReadWrite, page),
            ],
            Placement::Anywhere,
        )
        .map_err(|e| Error::other(format!("cannot allocate indirect stubs: {e}")))?;
        let base = memory.base();
        let segs = memory.segments().to_vec();
        let (code_off, slots_off) = (segs[0].offset, segs[1].offset);
        let code_addr = base + code_off as u64;
        let slots_addr = base + slots_off as u64;
        // `stub_at` finds a block by its code page.
        if code_addr % page as u64 != 0 {
            return Err(Error::other("stub code is not page-aligned"));
        }
        let bytes = memory
            .bytes_mut()
            .ok_or_else(|| Error::other("fresh stub memory is already published"))?;
        HostArch::write_stubs(
            &mut bytes[code_off..code_off + page],
            code_addr,
            slots_addr,
            self.per_block,
        );
        memory
            .publish()
            .map_err(|e| Error::other(format!("cannot publish indirect stubs: {e}")))?;
        Ok(StubBlock {
            _memory: memory,
            code_addr,
            slots_addr,
        })
    }

    /// A stub jumping to `target`. Amortized cost: a pool pop or bump, and
    /// one page pair per `page_size / STUB_SIZE` stubs.
    pub fn create_stub(&self, target: ExecutorAddr) -> Result<StubId> {
        let mut st = self.state.lock();
        let id = match st.free.pop() {
            Some(id) => id,
            None => {
                if st.blocks.is_empty() || st.next_in_last == self.per_block {
                    let block = self.new_block()?;
                    let index = st.blocks.len() as u32;
                    st.by_page.insert(block.code_addr, index);
                    st.blocks.push(block);
                    st.next_in_last = 0;
                }
                let id = StubId {
                    block: (st.blocks.len() - 1) as u32,
                    index: st.next_in_last as u32,
                };
                st.next_in_last += 1;
                id
            }
        };
        st.n_live += 1;
        Self::slot_of(&st, id)?.store(target.0, Ordering::Release);
        crate::remote::mirror_u64(Self::slot_addr(&st, id)?, target.0)?;
        Ok(id)
    }

    fn slot_addr(st: &StubsState, id: StubId) -> Result<u64> {
        Ok(Self::block_of(st, id)?.slots_addr + 8 * id.index as u64)
    }

    fn slot_of(st: &StubsState, id: StubId) -> Result<&AtomicU64> {
        let addr = Self::slot_addr(st, id)?;
        // SAFETY: the slot lies in the block's read-write page (the index is
        // below `per_block`, checked by `block_of`), which stays mapped RW as
        // long as the manager and so outlives the returned borrow of `st`;
        // it is 8-byte aligned and only ever accessed atomically.
        Ok(unsafe { &*(addr as *const AtomicU64) })
    }

    fn block_of(st: &StubsState, id: StubId) -> Result<&StubBlock> {
        let in_range = (id.index as usize) < page_size() / HostArch::STUB_SIZE;
        st.blocks
            .get(id.block as usize)
            .filter(|_| in_range)
            .ok_or_else(|| Error::other(format!("{id:?} does not belong to this stubs manager")))
    }

    /// The stub whose address is `addr`, if `addr` is the start of one of
    /// this pool's stubs (handed out or not).
    pub fn stub_at(&self, addr: ExecutorAddr) -> Option<StubId> {
        let page = page_size() as u64;
        let code_page = addr.0 & !(page - 1);
        let offset = addr.0 - code_page;
        let size = HostArch::STUB_SIZE as u64;
        if offset % size != 0 || offset / size >= self.per_block as u64 {
            return None;
        }
        let block = *self.state.lock().by_page.get(&code_page)?;
        Some(StubId {
            block,
            index: (offset / size) as u32,
        })
    }

    /// The stub's address: the stable address of whatever it stands for.
    pub fn address(&self, id: StubId) -> Result<ExecutorAddr> {
        let st = self.state.lock();
        let block = Self::block_of(&st, id)?;
        Ok(ExecutorAddr(
            block.code_addr + (HostArch::STUB_SIZE as u64) * id.index as u64,
        ))
    }

    /// Points the stub at `target` with one atomic store.
    pub fn set_target(&self, id: StubId, target: ExecutorAddr) -> Result<()> {
        crate::remote::barrier()?;
        let st = self.state.lock();
        Self::slot_of(&st, id)?.store(target.0, Ordering::Release);
        crate::remote::mirror_u64(Self::slot_addr(&st, id)?, target.0)?;
        Ok(())
    }

    /// Points the stub at `new` only if it still jumps to `expected` (one
    /// atomic compare-and-swap); returns whether it did.
    pub fn compare_and_set(
        &self,
        id: StubId,
        expected: ExecutorAddr,
        new: ExecutorAddr,
    ) -> Result<bool> {
        crate::remote::barrier()?;
        let st = self.state.lock();
        let slot = Self::slot_of(&st, id)?;
        let swapped = slot
            .compare_exchange(expected.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if swapped {
            crate::remote::mirror_u64(Self::slot_addr(&st, id)?, new.0)?;
        }
        Ok(swapped)
    }

    /// Where the stub jumps now.
    pub fn target(&self, id: StubId) -> Result<ExecutorAddr> {
        let st = self.state.lock();
        Ok(ExecutorAddr(
            Self::slot_of(&st, id)?.load(Ordering::Acquire),
        ))
    }

    /// Returns the stub to the pool. The caller guarantees nothing calls
    /// or refers to it any more.
    pub fn release(&self, id: StubId) {
        let mut st = self.state.lock();
        st.n_live = st.n_live.saturating_sub(1);
        st.free.push(id);
    }

    /// Stubs handed out and not released.
    pub fn n_live(&self) -> usize {
        self.state.lock().n_live
    }

    /// Pages of stub code and slots allocated so far.
    pub fn n_pages(&self) -> usize {
        2 * self.state.lock().blocks.len()
    }
}

impl std::fmt::Debug for IndirectStubsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndirectStubsManager")
            .field("n_live", &self.n_live())
            .finish()
    }
}
