//! Copy relocations for code built without `-fPIC`: such code takes the
//! address of external data in 32-bit fields (`R_X86_64_32`/`32S`/`PC32`),
//! which cannot reach a shared library mapped high in the address space. A
//! static linker solves this with a copy relocation; this module does the
//! same for *read-only* data (C++ typeinfo such as `_ZTIi`, constant
//! tables): the symbol's bytes (its size from the dynamic symbol table, via
//! `dladdr1`) are copied into a small read-only mapping in the low 2 GiB,
//! and the object's references bind to the copy.
//!
//! Invariants: only data in non-writable, non-executable memory whose
//! symbol starts exactly at the resolved address is copied, so the copy can
//! never diverge from the original (libstdc++ compares typeinfo by name, so
//! exception matching works on copies). Writable data (`stdout`, `optind`)
//! is never copied: those references fail with `RelocationOverflow`.
//! Far functions are handled by canonical PLT stubs instead (`apply.rs`).

use std::ffi::c_void;

use super::error::LinkError;
use super::layout::{AllocatedObject, Target};
use super::x86_64;
use crate::memory::{LinkMemory, Placement, SegmentProtection};

/// `RTLD_DL_SYMENT`: ask `dladdr1` for the symbol table entry.
const RTLD_DL_SYMENT: libc::c_int = 1;

/// The largest object copied.
const MAX_COPY: u64 = 1 << 16;

/// Copies the far read-only data this low-placed object takes 32-bit
/// addresses of, and rebinds `values` of those symbols to the copies.
pub(crate) fn make_copies(
    alloc: &mut AllocatedObject,
    values: &mut [Option<u64>],
) -> Result<(), LinkError> {
    if alloc.placement != Placement::Low2GiB {
        return Ok(());
    }
    let mut wanted: Vec<(usize, u64, u64)> = Vec::new(); // (symbol, address, size)
                                                         // Each symbol is looked at once (the check asks the kernel).
    let mut seen = std::collections::HashSet::new();
    for sec in &alloc.obj.sections {
        for r in &sec.relocs {
            if !x86_64::may_use_canonical_stub(r.kind)
                || !matches!(alloc.targets.get(r.sym), Some(Target::External { .. }))
                || !seen.insert(r.sym)
            {
                continue;
            }
            let Some(addr) = values.get(r.sym).copied().flatten() else {
                continue;
            };
            if addr == 0 || addr < (1 << 31) {
                continue;
            }
            if let Some(size) = read_only_data_size(addr) {
                wanted.push((r.sym, addr, size));
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let total: u64 = wanted.iter().map(|w| w.2.div_ceil(16) * 16).sum();
    let mut memory = LinkMemory::reserve(
        &[(SegmentProtection::Read, total as usize)],
        Placement::Low2GiB,
    )
    .map_err(|source| LinkError::Memory {
        object: alloc.obj.name.clone(),
        action: "reserving memory for copied data",
        source,
    })?;
    let base = memory.base();
    let bytes = memory
        .bytes_mut()
        .ok_or_else(|| LinkError::malformed(&alloc.obj.name, "copy memory already published"))?;
    let mut at = 0usize;
    for (sym, addr, size) in wanted {
        let len = size as usize;
        // SAFETY: read_only_data_size checked that addr..addr+size is the
        // extent of a data symbol in mapped, non-writable memory, which
        // nothing can change while we read it.
        let src = unsafe { std::slice::from_raw_parts(addr as usize as *const u8, len) };
        if let Some(dst) = bytes.get_mut(at..at + len) {
            dst.copy_from_slice(src);
            if let Some(v) = values.get_mut(sym) {
                *v = Some(base + at as u64);
            }
        }
        at += len.div_ceil(16) * 16;
    }
    alloc.copies = Some(memory);
    Ok(())
}

/// The size of the data symbol starting at `addr`, if it is read-only,
/// non-executable data of a sensible size.
fn read_only_data_size(addr: u64) -> Option<u64> {
    let region = region::query(addr as usize as *const u8).ok()?;
    if region.is_writable() || region.is_executable() || !region.is_readable() {
        return None;
    }
    // SAFETY: Dl_info is plain old data; all-zero is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let mut extra: *mut c_void = std::ptr::null_mut();
    // SAFETY: dladdr1 only reads the loader's tables and writes the two
    // out-parameters we own.
    let found = unsafe {
        libc::dladdr1(
            addr as usize as *const c_void,
            &mut info,
            &mut extra,
            RTLD_DL_SYMENT,
        )
    };
    if found == 0 || extra.is_null() || info.dli_saddr as usize as u64 != addr {
        return None;
    }
    // SAFETY: with RTLD_DL_SYMENT, a non-null `extra` points to the
    // matching ElfW(Sym) inside the loaded object's symbol table.
    let sym = unsafe { &*(extra as *const libc::Elf64_Sym) };
    let size = sym.st_size;
    let end = addr.checked_add(size)?;
    let region_end = (region.as_ptr::<u8>() as usize as u64).checked_add(region.len() as u64)?;
    (size > 0 && size <= MAX_COPY && end <= region_end).then_some(size)
}
