//! The GDB JIT interface (gdb's manual, "JIT Compilation Interface"): a
//! list of in-memory ELF files headed by `__jit_debug_descriptor`, and an
//! empty function `__jit_debug_register_code` that gdb breaks on to learn
//! that the list changed (the descriptor says which entry and how).
//!
//! Each linked object is registered as a copy of its relocatable ELF
//! whose section headers carry the sections' final addresses (`sh_addr`),
//! as LLVM's `ELFDebugObject` does: gdb relocates the symbols and the
//! DWARF of a relocatable file against those addresses itself. Sections
//! the linker did not load lose `SHF_ALLOC`, so gdb does not place them at
//! address 0.
//!
//! Invariants: the list is changed only under one process-wide lock, and
//! an entry's ELF stays allocated until the entry is unlinked.

use std::ptr::{addr_of, addr_of_mut, null_mut, NonNull};
use std::sync::Mutex;

use super::elf_writer::{self, SynthSymbol};
use crate::link::{LinkError, LinkPlugin, LinkView, PluginState};

#[repr(C)]
struct JitCodeEntry {
    next_entry: *mut JitCodeEntry,
    prev_entry: *mut JitCodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

#[repr(C)]
struct JitDescriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *mut JitCodeEntry,
    first_entry: *mut JitCodeEntry,
}

const JIT_NOACTION: u32 = 0;
const JIT_REGISTER_FN: u32 = 1;
const JIT_UNREGISTER_FN: u32 = 2;

// The descriptor and the function gdb breaks on are defined weak, in
// assembly: LLVM's `JITLoaderGDB.cpp` (linked into binaries that carry
// LLVM, such as `orc`) defines both too, and two strong definitions would
// not link. Whichever copy the linker keeps, the layout is gdb's and there
// is one list per process. The function is a lone `ret` that nothing can
// inline or fold (gdb sets a breakpoint on it).
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .data.__jit_debug_descriptor,\"aw\",@progbits",
    ".weak __jit_debug_descriptor",
    ".type __jit_debug_descriptor,@object",
    ".size __jit_debug_descriptor, 24",
    ".p2align 3",
    "__jit_debug_descriptor:",
    ".long 1", // version
    ".long 0", // action_flag
    ".quad 0", // relevant_entry
    ".quad 0", // first_entry
    ".popsection",
    ".pushsection .text.__jit_debug_register_code,\"ax\",@progbits",
    ".weak __jit_debug_register_code",
    ".type __jit_debug_register_code,@function",
    ".p2align 4",
    "__jit_debug_register_code:",
    "ret",
    ".size __jit_debug_register_code, . - __jit_debug_register_code",
    ".popsection",
);

extern "C" {
    /// The list gdb reads (the name and layout are gdb's). Written only
    /// under `LIST_LOCK`.
    static mut __jit_debug_descriptor: JitDescriptor;
    /// gdb sets a breakpoint here and reads the descriptor when it is hit.
    fn __jit_debug_register_code();
}

static LIST_LOCK: Mutex<()> = Mutex::new(());

/// An in-memory ELF registered with the GDB JIT interface; dropping it
/// unregisters it.
pub struct GdbRegistration {
    entry: NonNull<JitCodeEntry>,
    /// The ELF the entry points to.
    _object: Box<[u8]>,
}

// SAFETY: the entry is only touched under LIST_LOCK (in `register` and
// `drop`); the ELF bytes are never written after registration.
unsafe impl Send for GdbRegistration {}
// SAFETY: no method reads or writes through &self.
unsafe impl Sync for GdbRegistration {}

impl GdbRegistration {
    /// Registers `object` (an ELF file) with the debugger.
    pub fn register(object: Vec<u8>) -> Self {
        let object = object.into_boxed_slice();
        let entry = Box::into_raw(Box::new(JitCodeEntry {
            next_entry: null_mut(),
            prev_entry: null_mut(),
            symfile_addr: object.as_ptr(),
            symfile_size: object.len() as u64,
        }));
        let _guard = LIST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the descriptor and every entry in its list are written
        // only here and in `drop`, under LIST_LOCK (held); `entry` is a
        // fresh allocation, and listed entries stay allocated until
        // unlinked. Raw-pointer accesses create no references to the
        // static.
        unsafe {
            let desc = addr_of_mut!(__jit_debug_descriptor);
            let first = (*desc).first_entry;
            (*entry).next_entry = first;
            if !first.is_null() {
                (*first).prev_entry = entry;
            }
            (*desc).first_entry = entry;
            (*desc).relevant_entry = entry;
            (*desc).action_flag = JIT_REGISTER_FN;
            __jit_debug_register_code();
            (*desc).action_flag = JIT_NOACTION;
        }
        GdbRegistration {
            // SAFETY: Box::into_raw never returns null.
            entry: unsafe { NonNull::new_unchecked(entry) },
            _object: object,
        }
    }
}

impl Drop for GdbRegistration {
    fn drop(&mut self) {
        let entry = self.entry.as_ptr();
        let _guard = LIST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: as in `register`: under LIST_LOCK; `entry` is in the list
        // (registered, not yet unlinked: this drop runs once) and its
        // neighbours are live entries.
        unsafe {
            let desc = addr_of_mut!(__jit_debug_descriptor);
            let (prev, next) = ((*entry).prev_entry, (*entry).next_entry);
            if prev.is_null() {
                (*desc).first_entry = next;
            } else {
                (*prev).next_entry = next;
            }
            if !next.is_null() {
                (*next).prev_entry = prev;
            }
            (*desc).relevant_entry = entry;
            (*desc).action_flag = JIT_UNREGISTER_FN;
            __jit_debug_register_code();
            (*desc).action_flag = JIT_NOACTION;
            (*desc).relevant_entry = null_mut();
            drop(Box::from_raw(entry));
        }
    }
}

/// Copies of the ELF files registered now, newest first (what gdb would
/// read).
pub fn registered_objects() -> Vec<Vec<u8>> {
    let _guard = LIST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    // SAFETY: under LIST_LOCK the list is stable; every listed entry and
    // its ELF are allocated (see `register`).
    unsafe {
        let mut at = (*addr_of!(__jit_debug_descriptor)).first_entry;
        while !at.is_null() {
            let len = usize::try_from((*at).symfile_size).unwrap_or(0);
            out.push(std::slice::from_raw_parts((*at).symfile_addr, len).to_vec());
            at = (*at).next_entry;
        }
    }
    out
}

/// Registers code that is not a linked object (stubs, trampolines) under
/// `name`: a synthesized relocatable ELF with one function symbol per
/// `(name, address, size)`, grouped into one section per contiguous run.
pub fn register_symbols(name: &str, symbols: &[(String, u64, u64)]) -> GdbRegistration {
    let symbols: Vec<SynthSymbol<'_>> = symbols
        .iter()
        .map(|(n, addr, size)| SynthSymbol {
            name: n,
            addr: *addr,
            size: *size,
        })
        .collect();
    GdbRegistration::register(elf_writer::symbols_object(name, &symbols))
}

/// Registers every linked object with gdb (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct GdbJitPlugin;

impl LinkPlugin for GdbJitPlugin {
    fn name(&self) -> &str {
        "gdb-jit"
    }

    fn emitted(&self, view: &LinkView<'_>) -> Result<Option<PluginState>, LinkError> {
        match debug_object(view) {
            Some(bytes) => Ok(Some(Box::new(GdbRegistration::register(bytes)))),
            // Headers the parser accepted but that do not fit here: no
            // debug info for this object, but its link goes on.
            None => Ok(None),
        }
    }

    fn removing(&self, _object: &str, state: PluginState) {
        drop(state);
    }
}

/// The object's bytes with each loaded section's final address in its
/// header and `SHF_ALLOC` cleared on the sections not loaded.
fn debug_object(view: &LinkView<'_>) -> Option<Vec<u8>> {
    let mut bytes = view.object_bytes().to_vec();
    let u16_at = |b: &[u8], at: usize| -> Option<usize> {
        Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
    };
    let shoff =
        usize::try_from(u64::from_le_bytes(bytes.get(0x28..0x30)?.try_into().ok()?)).ok()?;
    let shentsize = u16_at(&bytes, 0x3a)?;
    let mut shnum = u16_at(&bytes, 0x3c)?;
    if shentsize < 64 {
        return None;
    }
    if shnum == 0 {
        // More than 0xff00 sections: the count is in section 0's sh_size.
        let at = shoff.checked_add(0x20)?;
        shnum =
            usize::try_from(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)).ok()?;
    }
    for index in 1..shnum {
        let hdr = shoff.checked_add(index.checked_mul(shentsize)?)?;
        let flags_at = hdr + 0x08;
        let addr_at = hdr + 0x10;
        let mut flags = u64::from_le_bytes(bytes.get(flags_at..flags_at + 8)?.try_into().ok()?);
        let addr = match view.section_address(index) {
            Some(addr) => addr,
            None => {
                flags &= !u64::from(object::elf::SHF_ALLOC);
                0
            }
        };
        bytes
            .get_mut(flags_at..flags_at + 8)?
            .copy_from_slice(&flags.to_le_bytes());
        bytes
            .get_mut(addr_at..addr_at + 8)?
            .copy_from_slice(&addr.to_le_bytes());
    }
    Some(bytes)
}
