//! Exit handlers of JIT'd code: `atexit` and `__cxa_atexit` calls made by
//! linked objects are recorded here, per link, instead of in libc's list,
//! so they can run when the code is removed (before it is unmapped) rather
//! than at process exit (after).
//!
//! How it is wired: every link has its own `__dso_handle` (a slot in its
//! memory) and, if it calls `atexit`, its own `atexit` thunk that forwards
//! to [`cxa_atexit_override`] with that handle. References to
//! `__dso_handle`, `atexit` and `__cxa_atexit` are bound by the linker
//! itself, before any external lookup. A handle is *live* from the link's
//! finalization until its `LinkedObject` is dropped; handlers registered
//! with a handle that is not live (the host's own, or NULL) are passed on
//! to libc's `__cxa_atexit` unchanged.
//!
//! Invariants: handlers run outside the registry lock, newest first, each
//! at most once; dropping a link forgets its handlers without running them
//! (the owner must have called [`run_atexit_handlers`] first if they are to
//! run), so no handler into unmapped code is ever left behind.

use std::collections::{BTreeSet, HashSet};
use std::ffi::{c_int, c_void};

use parking_lot::Mutex;

use super::LinkedObject;

/// The C type of an exit handler as `__cxa_atexit` receives it.
pub(crate) type Handler = unsafe extern "C" fn(*mut c_void);

struct Entry {
    func: Handler,
    arg: usize,
    dso: u64,
}

struct Registry {
    live: BTreeSet<u64>,
    /// In registration order; run from the back.
    entries: Vec<Entry>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    live: BTreeSet::new(),
    entries: Vec::new(),
});

extern "C" {
    #[link_name = "__cxa_atexit"]
    fn libc_cxa_atexit(func: Handler, arg: *mut c_void, dso: *mut c_void) -> c_int;
}

/// What JIT'd references to `__cxa_atexit` (and the `atexit` thunks) call:
/// records the handler for a live link's handle, or forwards it to libc.
pub(crate) extern "C" fn cxa_atexit_override(
    func: Option<Handler>,
    arg: *mut c_void,
    dso: *mut c_void,
) -> c_int {
    let Some(func) = func else { return -1 };
    let dso_addr = dso as usize as u64;
    {
        let mut reg = REGISTRY.lock();
        if reg.live.contains(&dso_addr) {
            reg.entries.push(Entry {
                func,
                arg: arg as usize,
                dso: dso_addr,
            });
            return 0;
        }
    }
    // SAFETY: same contract as the caller's own call to __cxa_atexit: the
    // handler and handle are passed through unchanged.
    unsafe { libc_cxa_atexit(func, arg, dso) }
}

/// The address JIT'd code should call for `__cxa_atexit`.
pub(crate) fn recorder_address() -> u64 {
    cxa_atexit_override as *const () as usize as u64
}

pub(crate) fn make_live(dso: u64) {
    REGISTRY.lock().live.insert(dso);
}

/// Moves the unrun handlers registered under handle `from` to handle `to`
/// (which becomes live), keeping their order: for code replaced by another
/// version of itself, whose handlers belong to the program, not to it.
pub(crate) fn adopt(from: u64, to: u64) {
    let mut reg = REGISTRY.lock();
    reg.live.insert(to);
    for e in reg.entries.iter_mut().filter(|e| e.dso == from) {
        e.dso = to;
    }
}

/// Runs, newest first, the handlers registered under handle `dso` (and
/// those registered under it while they run).
///
/// # Safety
///
/// Runs JIT'd code: the handlers must be sound to call now.
pub(crate) unsafe fn run_for_handle(dso: u64) {
    loop {
        let next = {
            let mut reg = REGISTRY.lock();
            let pos = reg.entries.iter().rposition(|e| e.dso == dso);
            pos.map(|p| reg.entries.remove(p))
        };
        let Some(entry) = next else { break };
        // SAFETY: the caller vouches that running the handler is sound.
        unsafe { (entry.func)(entry.arg as *mut c_void) };
    }
}

/// Forgets a link's handle and its unrun handlers.
pub(crate) fn forget(dso: u64) {
    let mut reg = REGISTRY.lock();
    reg.live.remove(&dso);
    reg.entries.retain(|e| e.dso != dso);
}

/// Runs, newest first, the exit handlers registered by any of `objects`
/// (by `atexit` or `__cxa_atexit` from their code), as `exit` or `dlclose`
/// would. Handlers registered while this runs, by these objects, run too.
/// Call it before [`LinkedObject::run_finalizers`], as glibc does.
///
/// # Safety
///
/// Runs JIT'd code: the objects' handlers must be sound to call now.
pub unsafe fn run_atexit_handlers(objects: &[&LinkedObject]) {
    let handles: HashSet<u64> = objects.iter().map(|o| o.dso_handle().value()).collect();
    loop {
        let next = {
            let mut reg = REGISTRY.lock();
            let pos = reg.entries.iter().rposition(|e| handles.contains(&e.dso));
            pos.map(|p| reg.entries.remove(p))
        };
        let Some(entry) = next else { break };
        // SAFETY: the handler was registered by code of one of `objects`,
        // which are still mapped (borrowed here); the caller vouches that
        // running it now is sound.
        unsafe { (entry.func)(entry.arg as *mut c_void) };
    }
}

/// The number of recorded, not yet run handlers of one link.
pub(crate) fn pending(dso: u64) -> usize {
    REGISTRY
        .lock()
        .entries
        .iter()
        .filter(|e| e.dso == dso)
        .count()
}
