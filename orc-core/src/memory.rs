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
    Low {
        ptr: NonNull<u8>,
        len: usize,
    },
    /// Pages of a shared arena (out-of-process execution); never unmapped
    /// or reused, since the executor may still run them.
    Arena {
        ptr: NonNull<u8>,
        len: usize,
    },
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
            Mapping::Low { ptr, .. } | Mapping::Arena { ptr, .. } => ptr.as_ptr(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Mapping::Mmap(map) => map.len(),
            Mapping::Low { len, .. } | Mapping::Arena { len, .. } => *len,
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
        let mapping = match (arenas(), placement) {
            (Some(arenas), Placement::Anywhere) => arenas.main.allocate(total)?,
            (Some(arenas), Placement::Low2GiB) => arenas.low.allocate(total)?,
            (None, Placement::Anywhere) => Mapping::Mmap(MmapOptions::new().len(total).map_anon()?),
            (None, Placement::Low2GiB) => map_low(total)?,
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
        if let (Mapping::Arena { .. }, Some(target)) =
            (&self.mapping, crate::remote::copying_target())
        {
            // The executor does not see these pages: copy them first.
            for seg in &self.segments {
                if seg.len == 0 {
                    continue;
                }
                // SAFETY: the segment lies inside our mapping, still
                // read-write and borrowed by nothing else (publish takes
                // &mut self).
                let bytes = unsafe { std::slice::from_raw_parts(base.add(seg.offset), seg.len) };
                target
                    .write(base as u64 + seg.offset as u64, bytes)
                    .map_err(io::Error::other)?;
            }
        }
        // The executor's protections, set in one message after ours.
        let mut remote = Vec::new();
        for seg in &self.segments {
            if seg.len == 0 {
                continue;
            }
            let len = round_up(seg.len, page).ok_or_else(too_large)?;
            let here = match (&self.mapping, seg.protection) {
                // A controller never runs the code: its view of shared
                // pages is read-only or read-write, the executor's has the
                // final protection.
                (Mapping::Arena { .. }, SegmentProtection::ReadExec) => SegmentProtection::Read,
                (_, protection) => protection,
            };
            // SAFETY: offset..offset+len lies inside our mapping (reserve laid
            // the segments out inside `total`), is page-aligned, and no Rust
            // reference into it outlives this call: bytes_mut borrows self
            // mutably and is refused from now on. Read-only and RX pages are
            // never written again.
            unsafe {
                region::protect(base.add(seg.offset), len, here.to_region())
                    .map_err(io::Error::other)?;
            }
            if let Mapping::Arena { .. } = &self.mapping {
                remote.push((base as u64 + seg.offset as u64, len as u64, seg.protection));
            }
        }
        if let (false, Some(target)) = (remote.is_empty(), crate::remote::target()) {
            target.protect(&remote).map_err(io::Error::other)?;
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

/// One shared region of address space that reservations are cut from,
/// mapped at the same address in the controller and the executor.
struct Arena {
    base: usize,
    len: usize,
    /// How many bytes at the top are used (reservations go downwards).
    /// Pages are never reused: the executor may still be running code in
    /// them after the controller dropped its reservation.
    used: std::sync::atomic::AtomicUsize,
}

impl Arena {
    fn allocate(&self, len: usize) -> io::Result<Mapping> {
        use std::sync::atomic::Ordering;
        // From the top down: an arena the kernel placed sits just below the
        // shared libraries, and code near them calls them directly.
        let mut used = self.used.load(Ordering::Relaxed);
        let start = loop {
            let now = used
                .checked_add(len)
                .filter(|&u| u <= self.len)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        format!("the shared JIT arena of {} MiB is full", self.len >> 20),
                    )
                })?;
            match self
                .used
                .compare_exchange(used, now, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break self.len - now,
                Err(seen) => used = seen,
            }
        };
        let ptr = NonNull::new((self.base + start) as *mut u8)
            .ok_or_else(|| io::Error::other("null arena"))?;
        // Fresh pages of the memfd read as zero; make them writable here.
        // SAFETY: the range is inside our arena mapping and handed out
        // exactly once (the bump above), so no reference aliases it.
        unsafe {
            region::protect(ptr.as_ptr(), len, region::Protection::READ_WRITE)
                .map_err(io::Error::other)?;
        }
        Ok(Mapping::Arena { ptr, len })
    }
}

struct Arenas {
    main: Arena,
    low: Arena,
}

static ARENAS: std::sync::OnceLock<Arenas> = std::sync::OnceLock::new();

fn arenas() -> Option<&'static Arenas> {
    ARENAS.get()
}

/// The shared arenas of out-of-process execution, as the executor maps
/// them: each a memfd (by descriptor) mapped at `base` for `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaSpec {
    /// The memfd's descriptor in the process that made it.
    pub fd: i32,
    /// Where it is mapped (the same in both processes).
    pub base: u64,
    /// Its length.
    pub len: u64,
}

/// Where the shared arenas go: far from both the executable (low) and the
/// shared libraries (high), so the executor finds the range free too.
const MAIN_ARENA_HINTS: [u64; 4] = [
    0x2000_0000_0000,
    0x3000_0000_0000,
    0x1000_0000_0000,
    0x4000_0000_0000,
];
const MAIN_ARENA_LEN: u64 = 16 << 30;
/// The low arena serves `Placement::Low2GiB`: all of it below 2 GiB.
const LOW_ARENA_HINTS: [u64; 3] = [0x6000_0000, 0x7000_0000, 0x5000_0000];
const LOW_ARENA_LEN: u64 = 256 << 20;

/// Makes this process a controller's: creates the two shared arenas (main
/// and low), maps them read-only here (reservations make their pages
/// writable), and from now on cuts every [`LinkMemory`] from them. Returns
/// their specs for the executor, which maps the same descriptors at the
/// same addresses ([`map_arena_in_executor`]). Once per process.
pub fn create_shared_arenas() -> io::Result<[ArenaSpec; 2]> {
    create_arenas(true)
}

/// As [`create_shared_arenas`], for an executor on another machine: the
/// arenas are this process's own memory (descriptor `-1`), which the
/// executor maps at the same addresses ([`map_arena_in_executor`]) and
/// the controller copies to it (see `remote::Target::shares_memory`).
pub fn create_private_arenas() -> io::Result<[ArenaSpec; 2]> {
    create_arenas(false)
}

/// As [`create_shared_arenas`], for executors forked from this process
/// (which see the same layout): the kernel places the arenas, the main one
/// just below the shared libraries (so code calls them directly), the low
/// one in the low 2 GiB.
pub fn create_shared_arenas_here() -> io::Result<[ArenaSpec; 2]> {
    if ARENAS.get().is_some() {
        return Err(io::Error::other("the JIT arenas already exist"));
    }
    let main = make_arena_here("orc-jit-arena", NEAR_ARENA_LEN, 0)?;
    let low = make_arena_here("orc-jit-arena-low", LOW_ARENA_LEN, libc::MAP_32BIT)?;
    install_arenas(main, low)
}

/// The main arena's length when the kernel places it (near the libraries).
const NEAR_ARENA_LEN: u64 = 8 << 30;

fn make_arena_here(name: &str, len: u64, flags: i32) -> io::Result<ArenaSpec> {
    let fd = new_memfd(name, len)?;
    // SAFETY: a new shared mapping of our own memfd at a kernel-chosen
    // address aliases nothing.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_READ,
            libc::MAP_SHARED | libc::MAP_NORESERVE | flags,
            fd,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    Ok(ArenaSpec {
        fd,
        base: ptr as usize as u64,
        len,
    })
}

fn new_memfd(name: &str, len: u64) -> io::Result<i32> {
    let cname = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: creates a new anonymous file; the name is a valid C string.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is the memfd just created; growing it is sparse.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        let e = io::Error::last_os_error();
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    Ok(fd)
}

fn create_arenas(shared: bool) -> io::Result<[ArenaSpec; 2]> {
    if ARENAS.get().is_some() {
        return Err(io::Error::other("the JIT arenas already exist"));
    }
    let main = make_arena("orc-jit-arena", &MAIN_ARENA_HINTS, MAIN_ARENA_LEN, shared)?;
    let low = make_arena("orc-jit-arena-low", &LOW_ARENA_HINTS, LOW_ARENA_LEN, shared)?;
    install_arenas(main, low)
}

fn install_arenas(main: ArenaSpec, low: ArenaSpec) -> io::Result<[ArenaSpec; 2]> {
    let arena = |spec: &ArenaSpec| Arena {
        base: spec.base as usize,
        len: spec.len as usize,
        used: std::sync::atomic::AtomicUsize::new(0),
    };
    ARENAS
        .set(Arenas {
            main: arena(&main),
            low: arena(&low),
        })
        .map_err(|_| io::Error::other("the shared arenas already exist"))?;
    Ok([main, low])
}

fn make_arena(name: &str, hints: &[u64], len: u64, shared: bool) -> io::Result<ArenaSpec> {
    let fd = if shared { new_memfd(name, len)? } else { -1 };
    for &base in hints {
        if map_at(fd, base, len, libc::PROT_READ).is_ok() {
            return Ok(ArenaSpec { fd, base, len });
        }
    }
    if fd >= 0 {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(fd) };
    }
    Err(io::Error::other(format!(
        "no free address range for a {} MiB arena",
        len >> 20
    )))
}

/// Maps `fd` (shared) or, with `-1`, anonymous private memory at exactly
/// `base`.
fn map_at(fd: i32, base: u64, len: u64, prot: i32) -> io::Result<()> {
    let kind = if fd < 0 {
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS
    } else {
        libc::MAP_SHARED
    };
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping: it
    // fails if any page of the range is in use, so nothing is aliased.
    let ptr = unsafe {
        libc::mmap(
            base as usize as *mut libc::c_void,
            len as usize,
            prot,
            kind | libc::MAP_FIXED_NOREPLACE | libc::MAP_NORESERVE,
            fd,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    if ptr as usize as u64 != base {
        // An old kernel without MAP_FIXED_NOREPLACE treats it as a hint.
        // SAFETY: the mapping we just made, unmapped once.
        unsafe { libc::munmap(ptr, len as usize) };
        return Err(io::Error::other("the arena's address range is in use"));
    }
    Ok(())
}

/// In an executor: maps a controller's arena at the same address, with no
/// access until the controller sets each segment's protection: its memfd
/// (inherited as `spec.fd`), or fresh memory the controller copies to
/// (`spec.fd` is `-1`).
pub fn map_arena_in_executor(spec: &ArenaSpec) -> io::Result<()> {
    map_at(spec.fd, spec.base, spec.len, libc::PROT_NONE).map_err(|e| {
        io::Error::other(format!(
            "cannot map the shared arena at {:#x} ({} MiB): {e}",
            spec.base,
            spec.len >> 20
        ))
    })
}

/// In an executor: sets the protection of arena pages.
pub fn protect_in_executor(
    specs: &[ArenaSpec],
    addr: u64,
    len: u64,
    prot: SegmentProtection,
) -> io::Result<()> {
    let page = page_size() as u64;
    let end = addr.checked_add(len);
    let inside = specs
        .iter()
        .any(|s| addr >= s.base && end.is_some_and(|e| e <= s.base + s.len));
    if !inside || addr % page != 0 || len % page != 0 {
        return Err(io::Error::other(format!(
            "protect {addr:#x}+{len:#x}: not whole pages of the shared arena"
        )));
    }
    // SAFETY: whole pages inside the arena mapping, which only JIT'd code
    // uses; no Rust reference points into it in the executor.
    unsafe {
        region::protect(addr as usize as *const u8, len as usize, prot.to_region())
            .map_err(io::Error::other)
    }
}

/// Marks values for which all-zero bytes are valid and which are only
/// changed through shared references (atomics): they can live in memory
/// that JIT'd code reads and writes.
///
/// # Safety
///
/// The all-zero bit pattern must be a valid value, and the type must be
/// `Sync` with interior mutability only.
pub unsafe trait ZeroCell: Sync + Send {}

// SAFETY: an atomic integer: zero is a valid value, shared mutation only.
unsafe impl ZeroCell for std::sync::atomic::AtomicU64 {}

/// Cells that JIT'd code reads and writes at fixed addresses (tiering
/// counters, on-stack-replacement slots): a published read-write
/// reservation, so in the shared arena when the code runs in an executor.
pub struct JitCells<T: ZeroCell> {
    memory: LinkMemory,
    len: usize,
    _cells: std::marker::PhantomData<T>,
}

impl<T: ZeroCell> JitCells<T> {
    /// `len` zeroed cells.
    pub fn new(len: usize) -> io::Result<Self> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(too_large)?;
        let mut memory = LinkMemory::reserve(
            &[(SegmentProtection::ReadWrite, bytes)],
            Placement::Anywhere,
        )?;
        memory.publish()?;
        Ok(JitCells {
            memory,
            len,
            _cells: std::marker::PhantomData,
        })
    }
}

impl<T: ZeroCell> std::ops::Deref for JitCells<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the reservation is page-aligned (so aligned for T), at
        // least len * size_of::<T>() bytes, zero-filled (a valid T each,
        // by ZeroCell), read-write, and never borrowed mutably after
        // publish; T only changes through shared references.
        unsafe { std::slice::from_raw_parts(self.memory.base() as usize as *const T, self.len) }
    }
}

impl<T: ZeroCell> std::fmt::Debug for JitCells<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JitCells({} at {:#x})", self.len, self.memory.base())
    }
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
