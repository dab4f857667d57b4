//! The finalize phase and its result: [`AppliedObject::finalize_with`]
//! runs the plugins' fixed-up hooks, publishes the segments, runs their
//! emitted hooks (`.eh_frame` registration is one, see `plugin.rs`), and
//! returns a [`LinkedObject`] that owns the memory and runs
//! initializers/finalizers.
//!
//! Order of initializers (as GNU ld + crt arrange them in an executable):
//! `.init_array.N`/`.ctors.N` sections by priority, then the unsuffixed
//! ones in file order; `.init_array` entries run first to last, `.ctors`
//! entries last to first. Finalizers are the mirror image: `.fini_array`
//! entries last to first, `.dtors` entries first to last, highest priority
//! last. Null and -1 entries (crt markers) are skipped.
//!
//! Drop order (see `Drop for LinkedObject`): forget the link's unrun exit
//! handlers, the plugins' removing hooks (deregistering `.eh_frame`), then
//! unmap the memory. Finalizers and
//! exit handlers are never run implicitly by `Drop`: an owner that wants
//! them (a resource tracker being removed) runs them first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::apply::AppliedObject;
use super::atexit;
use super::elf::SectionRole;
use super::error::LinkError;
use super::plugin::{self, LinkPlugin, PluginStates};
use crate::memory::LinkMemory;
use crate::trap::registry::parse_trap_section;
use crate::trap::{register_code, CodeFunction, CodeRegistration};
use crate::{ExecutorAddr, ExecutorSymbolDef};

/// A linked object: its code is in executable memory, its symbols have
/// addresses. Dropping it deregisters its unwind info and unmaps it.
pub struct LinkedObject {
    name: String,
    symbols: HashMap<String, ExecutorSymbolDef>,
    initializers: Vec<u64>,
    /// In the order they run.
    finalizers: Vec<u64>,
    dso: u64,
    initialized: AtomicBool,
    finalized: AtomicBool,
    /// What plugins keep for this object (`.eh_frame` registrations...).
    plugin_states: PluginStates,
    /// Thread-local storage (see `tls_link.rs`); dropped before `memory`,
    /// which holds its template.
    _tls: Option<super::tls_link::TlsLink>,
    memory: LinkMemory,
    /// Copied read-only data (see `copy.rs`); owned so it lives as long as the code.
    _copies: Option<LinkMemory>,
    /// The code segment in the trap handler's registry, with its functions
    /// and trap table.
    code_registration: Option<CodeRegistration>,
}

/// Registers the code segment `code` of a laid-out object with the trap
/// registry: every function symbol (local ones too: a tier-0 body behind
/// its entry thunk is local) and the trap table of a tier-0 object.
fn register_code_range(
    alloc: &super::layout::AllocatedObject,
    code: std::ops::Range<u64>,
) -> Option<CodeRegistration> {
    let obj = &alloc.obj;
    let base = alloc.memory.base();
    let addr_of = |sym: &super::elf::Symbol| -> Option<u64> {
        let super::elf::SymbolPlace::Section(sec) = sym.place else {
            return None;
        };
        let off = alloc.section_offsets.get(sec).copied().flatten()?;
        Some(base + off as u64 + sym.value)
    };
    let mut functions: Vec<CodeFunction> = Vec::new();
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    for sym in &obj.symbols {
        if sym.kind != object::elf::STT_FUNC || sym.name.is_empty() {
            continue;
        }
        let Some(start) = addr_of(sym) else { continue };
        if !code.contains(&start) {
            continue;
        }
        by_name.insert(&sym.name, start);
        functions.push(CodeFunction {
            start,
            end: if sym.size > 0 { start + sym.size } else { 0 },
            name: sym.name.as_str().into(),
        });
    }
    // Symbols without a size end where the next one starts.
    functions.sort_by_key(|f| f.start);
    let starts: Vec<u64> = functions.iter().map(|f| f.start).collect();
    for (i, f) in functions.iter_mut().enumerate() {
        if f.end == 0 {
            f.end = starts
                .get(i + 1..)
                .and_then(|s| s.iter().find(|&&s| s > f.start).copied())
                .unwrap_or(code.end);
        }
    }
    let mut traps = Vec::new();
    for sec in &obj.sections {
        if sec.name != crate::trap::registry::TRAP_SECTION {
            continue;
        }
        let Some(bytes) = sec.file_range.clone().and_then(|r| obj.bytes.get(r)) else {
            continue;
        };
        for (name, offset, trap) in parse_trap_section(bytes).unwrap_or_default() {
            if let Some(&start) = by_name.get(name.as_str()) {
                traps.push((start + u64::from(offset), trap));
            }
        }
    }
    register_code(code.start, code.end, &obj.name, functions, traps)
}

impl AppliedObject {
    /// The finalize phase with the [`default_plugins`](plugin::default_plugins)
    /// (`.eh_frame` registration): see [`finalize_with`](Self::finalize_with).
    pub fn finalize(self) -> Result<LinkedObject, LinkError> {
        static DEFAULT: OnceLock<Vec<Arc<dyn LinkPlugin>>> = OnceLock::new();
        self.finalize_with(DEFAULT.get_or_init(plugin::default_plugins))
    }

    /// The finalize phase: runs the plugins' fixed-up hooks, makes the
    /// segments R / RX / RW, runs their emitted hooks and starts recording
    /// the object's exit handlers.
    pub fn finalize_with(self, plugins: &[Arc<dyn LinkPlugin>]) -> Result<LinkedObject, LinkError> {
        let mut alloc = self.alloc;
        plugin::run_fixed_up(plugins, &alloc)?;
        let obj = alloc.obj.clone();
        let name = obj.name.clone();
        let base = alloc.memory.base();
        let code = base + alloc.code.0 as u64..base + (alloc.code.0 + alloc.code.1) as u64;
        let (initializers, finalizers) = {
            let bytes = alloc
                .memory
                .bytes_mut()
                .ok_or_else(|| LinkError::malformed(&name, "memory already published"))?;
            let read = |sec: usize| -> Result<Vec<u64>, LinkError> {
                let s = obj
                    .sections
                    .get(sec)
                    .ok_or_else(|| LinkError::malformed(&name, "missing section"))?;
                let off = alloc
                    .section_offsets
                    .get(sec)
                    .copied()
                    .flatten()
                    .unwrap_or(0);
                let len = usize::try_from(s.size).unwrap_or(usize::MAX);
                if len % 8 != 0 {
                    return Err(LinkError::malformed(
                        &name,
                        format!("{} is not an array of pointers", s.name),
                    ));
                }
                let data = bytes.get(off..off.saturating_add(len)).ok_or_else(|| {
                    LinkError::malformed(&name, format!("{} out of place", s.name))
                })?;
                let mut entries: Vec<u64> = data
                    .chunks_exact(8)
                    .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
                    .filter(|&p| p != 0 && p != u64::MAX)
                    .collect();
                if matches!(s.role, SectionRole::Ctors | SectionRole::Dtors) {
                    entries.reverse();
                }
                Ok(entries)
            };
            let mut inits = Vec::new();
            for &sec in &alloc.init_sections {
                inits.extend(read(sec)?);
            }
            let mut finis = Vec::new();
            for &sec in &alloc.fini_sections {
                finis.extend(read(sec)?);
            }
            finis.reverse();
            (inits, finis)
        };
        alloc.memory.publish().map_err(|source| LinkError::Memory {
            object: name.clone(),
            action: "publishing memory",
            source,
        })?;
        if let Some(copies) = alloc.copies.as_mut() {
            copies.publish().map_err(|source| LinkError::Memory {
                object: name.clone(),
                action: "publishing copied data",
                source,
            })?;
        }
        let dso = base + alloc.dso_offset as u64;
        atexit::make_live(dso);
        let plugin_states = match PluginStates::emit(plugins, &alloc) {
            Ok(states) => states,
            Err(e) => {
                atexit::forget(dso);
                return Err(e);
            }
        };
        let code_registration = register_code_range(&alloc, code.clone());
        Ok(LinkedObject {
            code_registration,
            name,
            symbols: std::mem::take(&mut alloc.symbols),
            initializers,
            finalizers,
            dso,
            initialized: AtomicBool::new(false),
            finalized: AtomicBool::new(false),
            plugin_states,
            _tls: alloc.tls,
            memory: alloc.memory,
            _copies: alloc.copies,
        })
    }
}

impl LinkedObject {
    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address of a global or weak symbol this object defines.
    pub fn lookup(&self, name: &str) -> Option<ExecutorAddr> {
        self.symbols.get(name).map(|d| d.addr)
    }

    /// Every global and weak symbol this object defines.
    pub fn symbols(&self) -> &HashMap<String, ExecutorSymbolDef> {
        &self.symbols
    }

    /// This link's `__dso_handle`, the key of its exit handlers.
    pub fn dso_handle(&self) -> ExecutorAddr {
        ExecutorAddr(self.dso)
    }

    /// The address range of the link's memory.
    pub fn memory_range(&self) -> std::ops::Range<ExecutorAddr> {
        ExecutorAddr(self.memory.base())
            ..ExecutorAddr(self.memory.base() + self.memory.len() as u64)
    }

    /// The number of exit handlers recorded for this link and not yet run.
    pub fn pending_atexit_handlers(&self) -> usize {
        atexit::pending(self.dso)
    }

    /// Runs the initializers (`.init_array`, `.ctors`) once; later calls do
    /// nothing.
    ///
    /// # Safety
    ///
    /// Runs JIT'd code: the object's initializers must be sound to call now,
    /// with every object they reach linked and initialized as they expect.
    pub unsafe fn run_initializers(&self) {
        if self.initialized.swap(true, Ordering::AcqRel) {
            return;
        }
        for &f in &self.initializers {
            // SAFETY: f is an entry of the object's init arrays, relocated to
            // a function address; the caller vouches that calling it is sound.
            unsafe { call_void(f) };
        }
    }

    /// Runs this link's exit handlers, newest first (see
    /// [`run_atexit_handlers`](super::run_atexit_handlers) for several
    /// links of one dylib at once).
    ///
    /// # Safety
    ///
    /// As for [`run_initializers`](Self::run_initializers).
    pub unsafe fn run_atexit_handlers(&self) {
        // SAFETY: forwarded contract.
        unsafe { atexit::run_atexit_handlers(&[self]) }
    }

    /// Runs the finalizers (`.fini_array`, `.dtors`) once, if the
    /// initializers were run (as `dlclose` finalizes only initialized
    /// objects); later calls do nothing. Exit handlers should run before (as
    /// in `exit` and `dlclose`); [`shut_down`](Self::shut_down) does both.
    ///
    /// # Safety
    ///
    /// As for [`run_initializers`](Self::run_initializers).
    pub unsafe fn run_finalizers(&self) {
        if !self.initialized.load(Ordering::Acquire) || self.finalized.swap(true, Ordering::AcqRel)
        {
            return;
        }
        for &f in &self.finalizers {
            // SAFETY: as in run_initializers.
            unsafe { call_void(f) };
        }
    }

    /// Runs the exit handlers, then the finalizers: what removing the object
    /// should do before dropping it.
    ///
    /// # Safety
    ///
    /// As for [`run_initializers`](Self::run_initializers).
    pub unsafe fn shut_down(&self) {
        // SAFETY: forwarded contract.
        unsafe {
            self.run_atexit_handlers();
            self.run_finalizers();
        }
    }
}

/// # Safety
///
/// `f` must be the address of a function taking no arguments that is sound
/// to call now.
unsafe fn call_void(f: u64) {
    // SAFETY: the caller guarantees f is such a function; in an executor
    // (the code's process when there is a target) as much as here.
    if let Err(e) = unsafe { crate::remote::call(f, &[], &[], crate::remote::RetKind::Void) } {
        eprintln!("orc: warning: an initializer or finalizer at {f:#x} did not run: {e}");
    }
}

impl Drop for LinkedObject {
    fn drop(&mut self) {
        // 1. No exit handler may outlive the code it points into.
        atexit::forget(self.dso);
        // 2. The unwinder, the plugins' clients (a debugger) and the trap
        // handler must not see the frames any more...
        drop(std::mem::take(&mut self.plugin_states));
        self.code_registration = None;
        // 3. ...before `memory` is unmapped, when the fields drop after this.
    }
}

impl std::fmt::Debug for LinkedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedObject")
            .field("name", &self.name)
            .field("memory", &self.memory_range())
            .finish_non_exhaustive()
    }
}
