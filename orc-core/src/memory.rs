//! The JIT memory manager: one reservation per link, split into page-aligned
//! segments by permission, written while read-write, then published.
//!
//! Invariants:
//! - A [`LinkMemory`] is one contiguous mapping, so any two addresses in it
//!   are less than its length apart (the linker keeps it below 1 GiB, so
//!   32-bit PC-relative references between its sections always reach).
//! - Until [`LinkMemory::publish`] every page is read-write and nothing in
//!   it may run; after it, each segment has its final protection and the
//!   bytes can no longer be borrowed mutably. No page is ever writable and
//!   executable at once.
//! - Dropping a `LinkMemory` unmaps it. Whoever registered anything that
//!   points into it (unwind info, atexit handlers) must undo that first; the
//!   linker's `LinkedObject` does so in its `Drop`.
//!
//! This is the only module of the linker that changes page protections.

use std::io;
use std::ptr::NonNull;

use memmap2::{MmapMut, MmapOptions};

/// The final protection of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentProtection {
    /// Executable code: read and execute.
    ReadExec,
    /// Constants, relocated read-only data, GOT: read only.
    Read,
    /// Mutable data: read and write.
    ReadWrite,
}

impl SegmentProtection {
    fn to_region(self) -> region::Protection {
        match self {
            SegmentProtection::ReadExec => region::Protection::READ_EXECUTE,
            SegmentProtection::Read => region::Protection::READ,
            SegmentProtection::ReadWrite => region::Protection::READ_WRITE,
        }
    }
}

/// Where in the address space a reservation may live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Placement {
    /// Wherever the kernel puts anonymous mappings (near the shared
    /// libraries, on Linux).
    #[default]
    Anywhere,
    /// In the low 2 GiB, for code built without `-fPIC` that stores
    /// addresses in 32-bit absolute fields (`R_X86_64_32`/`32S`).
    Low2GiB,
}

/// One segment of a reservation: where it starts and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The final protection.
    pub protection: SegmentProtection,
    /// The offset from the reservation's start (a multiple of the page size).
    pub offset: usize,
    /// The requested length in bytes (the pages cover at least this much).
    pub len: usize,
}

/// A mapping holding one link's segments.
pub struct LinkMemory {
    mapping: Mapping,
    segments: Vec<Segment>,
    published: bool,
}

enum Mapping {
    Mmap(MmapMut),
    Low { ptr: NonNull<u8>, len: usize },
}

// SAFETY: the low mapping is owned exclusively by this value (like MmapMut,
// which is Send and Sync); nothing else holds its pointer mutably.
unsafe impl Send for Mapping {}
// SAFETY: see above; shared access only reads.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn ptr(&self) -> *mut u8 {
        match self {
            Mapping::Mmap(map) => map.as_ptr() as *mut u8,
            Mapping::Low { ptr, .. } => ptr.as_ptr(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Mapping::Mmap(map) => map.len(),
            Mapping::Low { len, .. } => *len,
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Mapping::Low { ptr, len } = *self {
            // SAFETY: ptr/len came from our successful mmap and are unmapped
            // exactly once, here. Nothing may use the pages afterwards: the
            // owner (LinkMemory) is being dropped.
            unsafe {
                libc::munmap(ptr.as_ptr().cast(), len);
            }
        }
    }
}

/// The page size of the host.
pub fn page_size() -> usize {
    region::page::size()
}

fn round_up(value: usize, align: usize) -> Option<usize> {
    let mask = align.checked_sub(1)?;
    value.checked_add(mask).map(|v| v & !mask)
}

impl LinkMemory {
    /// Reserves one read-write mapping holding a page-aligned segment per
    /// entry of `segments` (protection, length in bytes), in that order.
    /// Empty segments take no pages. The memory is zero-filled.
    pub fn reserve(
        segments: &[(SegmentProtection, usize)],
        placement: Placement,
    ) -> io::Result<Self> {
        let page = page_size();
        let mut laid_out = Vec::with_capacity(segments.len());
        let mut offset = 0usize;
        for &(protection, len) in segments {
            laid_out.push(Segment {
                protection,
                offset,
                len,
            });
            let pages = round_up(len, page).ok_or_else(too_large)?;
            offset = offset.checked_add(pages).ok_or_else(too_large)?;
        }
        let total = offset.max(page);
        let mapping = match placement {
            Placement::Anywhere => Mapping::Mmap(MmapOptions::new().len(total).map_anon()?),
            Placement::Low2GiB => map_low(total)?,
        };
        Ok(LinkMemory {
            mapping,
            segments: laid_out,
            published: false,
        })
    }

    /// The address of the first byte.
    pub fn base(&self) -> u64 {
        self.mapping.ptr() as usize as u64
    }

    /// The length of the mapping in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.mapping.len()
    }

    /// Whether the mapping is empty (never: a reservation has a page).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segments, in the order they were requested.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether [`publish`](Self::publish) has run.
    pub fn is_published(&self) -> bool {
        self.published
    }

    /// The whole mapping, writable; `None` once published.
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        if self.published {
            return None;
        }
        let (ptr, len) = (self.mapping.ptr(), self.mapping.len());
        // SAFETY: the mapping is ptr..ptr+len, read-write until publish (we
        // checked it has not run), owned by self and borrowed mutably
        // through &mut self, so no other reference to it exists.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
    }

    /// The bytes at `offset..offset + len` of the mapping, if they lie
    /// inside it and nothing may write them while the borrow lives: before
    /// publishing (writing needs `&mut self`), or inside a read-only or
    /// executable segment once published (JIT'd code may write the RW
    /// segment at any time).
    pub fn read(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        if end > self.mapping.len() {
            return None;
        }
        if self.published {
            let page = page_size();
            let inside_readonly = self.segments.iter().any(|seg| {
                seg.protection != SegmentProtection::ReadWrite
                    && offset >= seg.offset
                    && round_up(seg.len, page)
                        .and_then(|l| seg.offset.checked_add(l))
                        .is_some_and(|seg_end| end <= seg_end)
            });
            if !inside_readonly {
                return None;
            }
        }
        // SAFETY: offset..end lies inside the mapping, which lives as long
        // as `self`. Before publishing, no `&mut` to it can coexist with
        // this `&self` borrow; after, the range is in a read-only or
        // read-execute segment, which nothing writes again.
        Some(unsafe { std::slice::from_raw_parts(self.mapping.ptr().add(offset), len) })
    }

    /// Gives every segment its final protection. On x86-64 the instruction
    /// cache is coherent with data writes, so no flush is needed; a port to
    /// another architecture adds its flush here, before RX is set.
    pub fn publish(&mut self) -> io::Result<()> {
        if self.published {
            return Ok(());
        }
        let page = page_size();
        let base = self.mapping.ptr();
        for seg in &self.segments {
            if seg.len == 0 {
                continue;
            }
            let len = round_up(seg.len, page).ok_or_else(too_large)?;
            // SAFETY: offset..offset+len lies inside our mapping (reserve laid
            // the segments out inside `total`), is page-aligned, and no Rust
            // reference into it outlives this call: bytes_mut borrows self
            // mutably and is refused from now on. Read-only and RX pages are
            // never written again.
            unsafe {
                region::protect(base.add(seg.offset), len, seg.protection.to_region())
                    .map_err(io::Error::other)?;
            }
        }
        self.published = true;
        Ok(())
    }
}

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "reservation too large")
}

fn map_low(len: usize) -> io::Result<Mapping> {
    // memmap2 has no way to ask for MAP_32BIT, so this placement maps
    // directly; the pages are owned by the returned Mapping.
    // SAFETY: an anonymous private mapping at a kernel-chosen address
    // aliases nothing; the result is checked before use.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let ptr =
        NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
    Ok(Mapping::Low { ptr, len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_page_aligned_and_published() {
        let page = page_size();
        let mut mem = LinkMemory::reserve(
            &[
                (SegmentProtection::ReadExec, 10),
                (SegmentProtection::Read, 0),
                (SegmentProtection::ReadWrite, page + 1),
            ],
            Placement::Anywhere,
        )
        .unwrap();
        let offsets: Vec<usize> = mem.segments().iter().map(|s| s.offset).collect();
        assert_eq!(offsets, vec![0, page, page]);
        assert_eq!(mem.len(), 3 * page);
        mem.bytes_mut().unwrap()[0] = 0xc3;
        mem.publish().unwrap();
        assert!(mem.bytes_mut().is_none());
        let info = region::query(mem.base() as usize as *const u8).unwrap();
        assert_eq!(info.protection(), region::Protection::READ_EXECUTE);
    }

    #[test]
    fn low_placement_is_below_2gib() {
        let mem =
            LinkMemory::reserve(&[(SegmentProtection::ReadWrite, 64)], Placement::Low2GiB).unwrap();
        assert!(mem.base() + mem.len() as u64 <= 1 << 31);
    }
}
