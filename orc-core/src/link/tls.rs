//! Thread-local storage of linked objects: the runtime half.
//!
//! The JIT cannot grow the static TLS block of threads that already exist,
//! so each linked object with `.tdata`/`.tbss` is a *module* with its own
//! template, and every thread gets a copy of it (a *block*) on its first
//! access. A thread's blocks hang off its *table*, a fixed reservation of
//! [`MAX_MODULES`] words (untouched pages cost nothing) indexed by module
//! id, whose address lives in one slot of the static TLS of this crate
//! (`orc_core_tls_table`, reached at a fixed `%fs` offset from assembly).
//! Tables never move, so removing a module clears its entry in every
//! thread's table and frees the blocks, and its id is reused.
//!
//! Every access model ends in [`core_address`]: `rax = &{module, offset}`
//! in, `rax` = the variable's address for this thread out, every other
//! register and the flags preserved. Its fast path is four loads and two
//! `jrcxz` (no flags); a thread's first access to a module takes the slow
//! path, which saves every register (XSAVE) and calls Rust to allocate the
//! block. The fast path is also inlined where it runs most: in
//! [`get_addr`], [`tlsdesc`] and the exec-model thunks (which read the
//! table through [`table_tpoff`]). The linker wires the models to it (see
//! `tls_link.rs`):
//! - general/local dynamic: `__tls_get_addr` binds to [`get_addr`]
//!   (`rdi` = the `{module, offset}` pair);
//! - TLS descriptors: a descriptor is `{tlsdesc, module, offset}`,
//!   [`tlsdesc`] returns the address minus `%fs:0`;
//! - initial and local exec: the instruction is moved to a thunk that
//!   computes the per-thread offset from `%fs` first.
//!
//! A thread's blocks and table are freed by a pthread key destructor at
//! its exit (after the C++ `thread_local` destructors, which glibc runs
//! first); removing a module frees the blocks of every thread.

use std::alloc::Layout;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// One module: a link's TLS template.
struct Module {
    /// The address of the initialized part (`.tdata`), in the link's memory.
    template: usize,
    init_len: usize,
    layout: Layout,
    /// Every thread's block of this module, by the address of its entry in
    /// that thread's table.
    blocks: HashMap<usize, usize>,
}

/// The most modules alive at once (ids are reused), and so the words of a
/// thread's table (8 MiB of address space, touched only where used).
pub(crate) const MAX_MODULES: usize = 1 << 20;

#[derive(Default)]
struct Registry {
    modules: HashMap<u64, Module>,
    /// Ids of removed modules, for reuse.
    free_ids: Vec<u64>,
    /// The next never-used id (ids start at 1).
    next_id: u64,
    /// The `{module, offset}` of every published thread-local symbol, by
    /// the address published for it.
    published: HashMap<u64, (u64, u64)>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY.lock();
    f(guard.get_or_insert_with(Registry::default))
}

/// A registered module; unregisters (freeing every thread's block) when
/// dropped, which must happen before its template's memory goes away.
pub(crate) struct TlsModule {
    id: u64,
    published: Vec<u64>,
}

impl TlsModule {
    /// Registers a template of `size` bytes aligned to `align`, whose first
    /// `init_len` bytes are read from `template` when a thread first uses
    /// the module (the rest is zero). The template must stay readable as
    /// long as the returned value lives.
    pub(crate) fn register(
        template: u64,
        init_len: u64,
        size: u64,
        align: u64,
    ) -> Result<Self, String> {
        if !std::arch::is_x86_feature_detected!("xsave") {
            return Err("thread-local storage needs a CPU with XSAVE".into());
        }
        let layout = usize::try_from(size)
            .ok()
            .zip(usize::try_from(align).ok())
            .and_then(|(s, a)| Layout::from_size_align(s.max(1), a.max(1)).ok())
            .ok_or_else(|| format!("TLS block of {size} bytes aligned to {align}"))?;
        let init_len = usize::try_from(init_len)
            .ok()
            .filter(|&l| l <= layout.size())
            .ok_or("TLS template longer than its block")?;
        let template = usize::try_from(template).map_err(|_| "template address")?;
        let id = with_registry(|r| {
            let id = match r.free_ids.pop() {
                Some(id) => id,
                None if r.next_id + 1 < MAX_MODULES as u64 => {
                    r.next_id = r.next_id.max(1);
                    r.next_id += 1;
                    r.next_id - 1
                }
                None => return Err(format!("more than {MAX_MODULES} TLS modules at once")),
            };
            r.modules.insert(
                id,
                Module {
                    template,
                    init_len,
                    layout,
                    blocks: HashMap::new(),
                },
            );
            Ok(id)
        })?;
        Ok(TlsModule {
            id,
            published: Vec::new(),
        })
    }

    /// The module's id (what `{module, offset}` pairs hold).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Records that `addr` is the address published for a thread-local
    /// symbol at `offset` in this module.
    pub(crate) fn publish(&mut self, addr: u64, offset: u64) {
        with_registry(|r| r.published.insert(addr, (self.id, offset)));
        self.published.push(addr);
    }
}

impl Drop for TlsModule {
    fn drop(&mut self) {
        with_registry(|r| {
            for addr in &self.published {
                r.published.remove(addr);
            }
            if let Some(m) = r.modules.remove(&self.id) {
                for (entry, block) in m.blocks {
                    // SAFETY: `entry` is this module's word in a live
                    // thread's table (a thread's exit removes its entries
                    // under this lock before unmapping the table); no code
                    // of a module being removed runs, so nothing reads it.
                    unsafe { (*(entry as *const AtomicUsize)).store(0, Ordering::Relaxed) };
                    // SAFETY: allocated with `m.layout` by `block_of`, and
                    // freed once: it left the registry under the lock.
                    unsafe { std::alloc::dealloc(block as *mut u8, m.layout) };
                }
                // Every table's entry for the id is clear: reusable.
                r.free_ids.push(self.id);
            }
        });
    }
}

/// The `{module, offset}` of a thread-local symbol published at `addr` by
/// some linked object.
pub(crate) fn published(addr: u64) -> Option<(u64, u64)> {
    with_registry(|r| r.published.get(&addr).copied())
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
std::arch::global_asm!(
    // This thread's table (null until its first slow-path access).
    ".section .tbss.orc_core_tls_table,\"awT\",@nobits",
    ".p2align 3",
    ".globl orc_core_tls_table",
    ".hidden orc_core_tls_table",
    ".type orc_core_tls_table, @tls_object",
    ".size orc_core_tls_table, 8",
    "orc_core_tls_table:",
    ".zero 8",
    ".text",
    // The address of this thread's table slot.
    ".p2align 4",
    ".globl orc_core_tls_table_slot",
    ".hidden orc_core_tls_table_slot",
    ".type orc_core_tls_table_slot, @function",
    "orc_core_tls_table_slot:",
    "mov rax, qword ptr fs:[0]",
    "add rax, qword ptr [rip + orc_core_tls_table@GOTTPOFF]",
    "ret",
    ".size orc_core_tls_table_slot, . - orc_core_tls_table_slot",
    // The %fs offset of the table slot (static TLS: the same in every
    // thread).
    ".p2align 4",
    ".globl orc_core_tls_table_tpoff",
    ".hidden orc_core_tls_table_tpoff",
    ".type orc_core_tls_table_tpoff, @function",
    "orc_core_tls_table_tpoff:",
    "mov rax, qword ptr [rip + orc_core_tls_table@GOTTPOFF]",
    "ret",
    ".size orc_core_tls_table_tpoff, . - orc_core_tls_table_tpoff",
    // rax = &{module, offset} -> rax = address; preserves all else,
    // flags included (no flag-setting instruction on the fast path).
    ".p2align 4",
    ".globl orc_core_tls_addr",
    ".hidden orc_core_tls_addr",
    ".type orc_core_tls_addr, @function",
    "orc_core_tls_addr:",
    "push rcx",
    "push rdx",
    "mov rcx, qword ptr [rip + orc_core_tls_table@GOTTPOFF]",
    "mov rcx, qword ptr fs:[rcx]",
    "jrcxz 2f",
    // Ids are below MAX_MODULES (checked at registration).
    "mov rdx, qword ptr [rax]",
    "mov rcx, qword ptr [rcx + 8*rdx]",
    "jrcxz 2f",
    "mov rdx, qword ptr [rax + 8]",
    "lea rax, [rcx + rdx]",
    "pop rdx",
    "pop rcx",
    "ret",
    "2:",
    "pop rdx",
    "pop rcx",
    // The slow path: save everything, call Rust.
    "push rbp",
    "mov rbp, rsp",
    "pushfq",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "mov rdi, rax",
    // An XSAVE area (x87, SSE, AVX, AVX-512: at most 2688 bytes), 64-byte
    // aligned, with a zeroed header.
    "sub rsp, 3072",
    "and rsp, -64",
    "xor eax, eax",
    "mov qword ptr [rsp + 512], rax",
    "mov qword ptr [rsp + 520], rax",
    "mov qword ptr [rsp + 528], rax",
    "mov qword ptr [rsp + 536], rax",
    "mov qword ptr [rsp + 544], rax",
    "mov qword ptr [rsp + 552], rax",
    "mov qword ptr [rsp + 560], rax",
    "mov qword ptr [rsp + 568], rax",
    "mov eax, 0xe7",
    "xor edx, edx",
    "xsave64 [rsp]",
    "call {slow}",
    "mov r11, rax",
    "mov eax, 0xe7",
    "xor edx, edx",
    "xrstor64 [rsp]",
    "mov rax, r11",
    "lea rsp, [rbp - 72]",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "popfq",
    "pop rbp",
    "ret",
    ".size orc_core_tls_addr, . - orc_core_tls_addr",
    // __tls_get_addr(rdi = &{module, offset}) for general/local dynamic.
    ".p2align 4",
    ".globl orc_core_tls_get_addr",
    ".hidden orc_core_tls_get_addr",
    ".type orc_core_tls_get_addr, @function",
    "orc_core_tls_get_addr:",
    // The routine's fast path, inlined (a C call: rcx and rdx are free).
    "mov rcx, qword ptr [rip + orc_core_tls_table@GOTTPOFF]",
    "mov rcx, qword ptr fs:[rcx]",
    "jrcxz 4f",
    "mov rdx, qword ptr [rdi]",
    "mov rcx, qword ptr [rcx + 8*rdx]",
    "jrcxz 4f",
    "mov rax, qword ptr [rdi + 8]",
    "add rax, rcx",
    "ret",
    "4:",
    "mov rax, rdi",
    "jmp orc_core_tls_addr",
    ".size orc_core_tls_get_addr, . - orc_core_tls_get_addr",
    // A TLS descriptor's function: rax = &{self, module, offset} ->
    // rax = address - %fs:0; preserves all else.
    ".p2align 4",
    ".globl orc_core_tlsdesc",
    ".hidden orc_core_tlsdesc",
    ".type orc_core_tlsdesc, @function",
    "orc_core_tlsdesc:",
    // The routine's fast path, inlined (flags may change here).
    "push rcx",
    "push rdx",
    "mov rcx, qword ptr [rip + orc_core_tls_table@GOTTPOFF]",
    "mov rcx, qword ptr fs:[rcx]",
    "jrcxz 3f",
    "mov rdx, qword ptr [rax + 8]",
    "mov rcx, qword ptr [rcx + 8*rdx]",
    "jrcxz 3f",
    "add rcx, qword ptr [rax + 16]",
    "sub rcx, qword ptr fs:[0]",
    "mov rax, rcx",
    "pop rdx",
    "pop rcx",
    "ret",
    "3:",
    "pop rdx",
    "pop rcx",
    "lea rax, [rax + 8]",
    "call orc_core_tls_addr",
    "sub rax, qword ptr fs:[0]",
    "ret",
    ".size orc_core_tlsdesc, . - orc_core_tlsdesc",
    slow = sym tls_slow,
);

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
extern "C" {
    /// Defined by the `global_asm!` above: the address of this thread's
    /// table slot.
    fn orc_core_tls_table_slot() -> *mut *mut usize;
    /// Defined above: the `%fs` offset of the table slot.
    fn orc_core_tls_table_tpoff() -> u64;
    /// Defined above; never called from Rust (register convention).
    fn orc_core_tls_addr();
    /// Defined above; never called from Rust.
    fn orc_core_tls_get_addr();
    /// Defined above; never called from Rust (descriptor convention).
    fn orc_core_tlsdesc();
}

/// The address of the `rax = &{module, offset}` -> `rax = address` routine.
pub(crate) fn core_address() -> u64 {
    orc_core_tls_addr as *const () as usize as u64
}

/// The `%fs` offset of every thread's table slot (thunks read the table
/// as `%fs:[this]`; the routine's fast path, inlined).
pub(crate) fn table_tpoff() -> u64 {
    // SAFETY: reads a link-time constant.
    unsafe { orc_core_tls_table_tpoff() }
}

/// What `__tls_get_addr` binds to in linked objects.
pub(crate) fn get_addr() -> u64 {
    orc_core_tls_get_addr as *const () as usize as u64
}

/// The function of every TLS descriptor.
pub(crate) fn tlsdesc() -> u64 {
    orc_core_tlsdesc as *const () as usize as u64
}

/// The slow path: this thread's block of `record.0`, allocated on first
/// use, plus `record.1`. Never unwinds.
extern "C" fn tls_slow(record: *const [u64; 2]) -> *mut u8 {
    match std::panic::catch_unwind(|| {
        // SAFETY: the linker passes the address of a `{module, offset}`
        // pair in a linked object's read-only memory (or of a GOT pair the
        // program's code built from one), alive while its code runs.
        let [module, offset] = unsafe { record.read() };
        block_of(module).map(|b| b.wrapping_add(offset as usize))
    }) {
        Ok(Some(addr)) => addr,
        Ok(None) => fatal("a thread-local variable of an unloaded or unknown object was accessed"),
        Err(_) => fatal("allocating a thread-local block failed"),
    }
}

fn fatal(msg: &str) -> ! {
    eprintln!("orc: {msg}");
    std::process::abort()
}

/// This thread's table, made on first use.
fn table() -> Option<*mut usize> {
    // SAFETY: returns the address of this thread's slot in static TLS.
    let slot = unsafe { orc_core_tls_table_slot() };
    // SAFETY: the slot is this thread's, read and written only by it.
    let table = unsafe { *slot };
    if !table.is_null() {
        return Some(table);
    }
    // SAFETY: a private anonymous reservation aliases nothing; its pages
    // read as zero until written.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            MAX_MODULES * 8,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    let table = ptr.cast::<usize>();
    // SAFETY: the slot is this thread's; the key's destructor frees the
    // table at the thread's exit.
    unsafe {
        *slot = table;
        libc::pthread_setspecific(thread_key(), table.cast());
    }
    Some(table)
}

/// This thread's block of `module`, allocated and initialized on first use.
fn block_of(module: u64) -> Option<*mut u8> {
    let index = usize::try_from(module)
        .ok()
        .filter(|&i| i > 0 && i < MAX_MODULES)?;
    let table = table()?;
    // SAFETY: the table holds MAX_MODULES words.
    let entry = unsafe { table.add(index) };
    // SAFETY: as above; this thread's table.
    let existing = unsafe { *entry };
    if existing != 0 {
        return Some(existing as *mut u8);
    }
    if let Some(controller) = crate::remote::controller() {
        // In an executor the modules are registered in the controller:
        // learn this one's template on first use.
        if !with_registry(|r| r.modules.contains_key(&module)) {
            let [template, init_len, size, align] = controller.tls_module(module)?;
            let layout = Layout::from_size_align(
                usize::try_from(size).ok()?.max(1),
                usize::try_from(align).ok()?.max(1),
            )
            .ok()?;
            let init_len = usize::try_from(init_len)
                .ok()
                .filter(|&l| l <= layout.size())?;
            with_registry(|r| {
                r.modules.entry(module).or_insert(Module {
                    template: usize::try_from(template).ok()?,
                    init_len,
                    layout,
                    blocks: HashMap::new(),
                });
                Some(())
            })?;
        }
    }
    with_registry(|r| {
        let m = r.modules.get_mut(&module)?;
        // SAFETY: the layout has a non-zero size.
        let block = unsafe { std::alloc::alloc_zeroed(m.layout) };
        if block.is_null() {
            return None;
        }
        // SAFETY: the template is readable while the module is registered
        // (`TlsModule::register`), and the block holds at least init_len
        // bytes; the two do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(m.template as *const u8, block, m.init_len);
        }
        m.blocks.insert(entry as usize, block as usize);
        // SAFETY: this thread's table entry; written under the registry
        // lock, which a module's removal takes to clear it.
        unsafe { *entry = block as usize };
        Some(block)
    })
}

/// A registered module's `{template, init_len, size, align}`, for an
/// executor's first access (see [`crate::remote::serve_tls_module`]).
pub(crate) fn module_info(module: u64) -> Option<[u64; 4]> {
    with_registry(|r| {
        r.modules.get(&module).map(|m| {
            [
                m.template as u64,
                m.init_len as u64,
                m.layout.size() as u64,
                m.layout.align() as u64,
            ]
        })
    })
}

/// The pthread key whose destructor frees a thread's blocks.
fn thread_key() -> libc::pthread_key_t {
    static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer; the destructor is sound
        // for any value this module stores under the key.
        let rc = unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) };
        if rc != 0 {
            fatal("cannot create the thread-local storage key");
        }
        key
    })
}

/// Frees the exiting thread's blocks and table.
extern "C" fn thread_exit(table: *mut libc::c_void) {
    let table = table as *mut usize;
    if table.is_null() {
        return;
    }
    with_registry(|r| {
        let used = usize::try_from(r.next_id)
            .unwrap_or(MAX_MODULES)
            .min(MAX_MODULES);
        for index in 1..used {
            // SAFETY: the key holds a table made by `table` for this
            // thread, which is exiting: only this thread and a module's
            // removal (under the lock held here) touch its entries.
            let entry = unsafe { table.add(index) };
            // SAFETY: as above.
            let block = unsafe { *entry };
            if block == 0 {
                continue;
            }
            if let Some(m) = r.modules.get_mut(&(index as u64)) {
                if m.blocks.remove(&(entry as usize)).is_some() {
                    // SAFETY: allocated with this layout by `block_of`, and
                    // removed from the registry under its lock: freed once.
                    unsafe { std::alloc::dealloc(block as *mut u8, m.layout) };
                }
            }
        }
    });
    // SAFETY: this thread's slot; the table is referenced by nothing else
    // once its entries left the registry (the key's value is cleared by
    // pthread already), so it can be unmapped.
    unsafe {
        let slot = orc_core_tls_table_slot();
        if *slot == table {
            *slot = std::ptr::null_mut();
        }
        libc::munmap(table.cast(), MAX_MODULES * 8);
    }
}
