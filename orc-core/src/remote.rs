//! Out-of-process execution, the core's half (ORC's executor-process model).
//!
//! The session, the linker and the layers run in the *controller*; the JIT'd
//! code runs in an *executor* process. The two meet in three places, all of
//! them process-wide:
//!
//! - **Memory.** Every reservation the linker, the stubs and the tier
//!   manager make comes from a shared arena ([`crate::memory`]) mapped at
//!   the same address in both processes: read-write (never executable) in
//!   the controller, which writes it directly, and with each segment's
//!   final protection in the executor, set through [`Target::protect`]. So
//!   the addresses the linker deals in are the executor's.
//! - **Calls out of the controller** ([`Target`], installed with
//!   [`set_target`]): page protections, `.eh_frame` registration, symbol
//!   lookups in the executor's process and libraries, running a function
//!   (initializers, finalizers, a program's entry).
//! - **Calls back from the executor** ([`Controller`], installed in the
//!   executor with [`set_controller`]): the runtime routines that JIT'd code
//!   enters and that need the session — the lazy reentry path, the tiering
//!   trip handler, a thread-local module's template — forward to the
//!   controller, which runs them with [`serve_reenter`], [`serve_trip`] and
//!   [`serve_tls_module`].
//!
//! The executor is the same build of the same executable as the controller
//! (its runtime routines and host functions are then at the same
//! addresses; the transport checks this at its handshake).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::memory::SegmentProtection;

/// How a function run in the executor returns its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetKind {
    /// Nothing.
    Void,
    /// An integer or pointer in `rax`.
    Int,
    /// A double in `xmm0` (returned as its bits).
    F64,
}

/// What the controller asks of the executor process. Errors are messages
/// naming what failed (the executor's death included).
pub trait Target: Send + Sync + 'static {
    /// Gives each `(addr, len, prot)` range (page-aligned, inside the
    /// shared arena) its protection in the executor: a link's segments,
    /// in one message.
    fn protect(&self, ranges: &[(u64, u64, SegmentProtection)]) -> Result<(), String>;
    /// Returns once every request made so far has taken effect in the
    /// executor. Protections and unwind registrations may be sent without
    /// waiting: a run or a callback's answer is performed after them, but
    /// code made reachable through shared memory (a stub repointed, an OSR
    /// entry published) is not, so those writes come after a barrier.
    fn barrier(&self) -> Result<(), String> {
        Ok(())
    }
    /// Registers the `.eh_frame` section at `begin` with the executor's
    /// unwinder (`__register_frame`).
    fn register_frames(&self, begin: u64) -> Result<(), String>;
    /// Undoes [`register_frames`](Self::register_frames).
    fn deregister_frames(&self, begin: u64) -> Result<(), String>;
    /// The addresses of `names` in the executor: in the library at
    /// `library` (loaded there first if it is not yet) or, with `None`, in
    /// the process and its libraries.
    fn lookup(&self, library: Option<&str>, names: &[String]) -> Result<Vec<Option<u64>>, String>;
    /// Calls the function at `addr` with integer and double arguments (at
    /// most six and eight) and returns its result as bits.
    fn run(&self, addr: u64, ints: &[u64], floats: &[f64], ret: RetKind) -> Result<u64, String>;
    /// Whether the executor sees this process's arena pages (shared
    /// memory: an executor on this machine). When it does not (over TCP),
    /// the controller copies what it writes there: each segment's bytes
    /// when it is published, and every later store ([`Target::write`]).
    fn shares_memory(&self) -> bool {
        true
    }
    /// Copies `bytes`, which this process just wrote at `addr` in the
    /// arena, to the executor's memory (only for a target that does not
    /// share memory; see [`Target::shares_memory`]).
    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), String> {
        let _ = (addr, bytes);
        Ok(())
    }
}

/// The target, if there is one and it does not share this process's
/// memory: what a store into published JIT memory must be copied to.
pub(crate) fn copying_target() -> Option<&'static Arc<dyn Target>> {
    target().filter(|t| !t.shares_memory())
}

/// [`Target::barrier`], if there is a target: before this process makes
/// code reachable through shared memory.
pub(crate) fn barrier() -> crate::Result<()> {
    match target() {
        Some(t) => t
            .barrier()
            .map_err(|e| crate::Error::other(format!("executor: {e}"))),
        None => Ok(()),
    }
}

/// Copies the word this process just stored at `addr` (a stub's slot) to
/// an executor that does not share memory.
pub(crate) fn mirror_u64(addr: u64, value: u64) -> crate::Result<()> {
    match copying_target() {
        Some(t) => t
            .write(addr, &value.to_le_bytes())
            .map_err(|e| crate::Error::other(format!("executor: {e}"))),
        None => Ok(()),
    }
}

static TARGET: OnceLock<Arc<dyn Target>> = OnceLock::new();

/// Makes this process a controller whose code runs through `target`. Set
/// once, before the first reservation; refused after.
pub fn set_target(target: Arc<dyn Target>) -> Result<(), String> {
    TARGET
        .set(target)
        .map_err(|_| "an executor target is already set for this process".to_owned())
}

/// The executor target, when this process is a controller.
pub fn target() -> Option<&'static Arc<dyn Target>> {
    TARGET.get()
}

/// Calls the function at `addr` where JIT'd code runs: through the target
/// when there is one, else here.
///
/// # Safety
///
/// `addr` must be a function of the C calling convention taking the given
/// integer and double arguments (in that order of registers) and returning
/// `ret`, that is sound to call now.
pub unsafe fn call(addr: u64, ints: &[u64], floats: &[f64], ret: RetKind) -> Result<u64, String> {
    if let Some(target) = target() {
        return target.run(addr, ints, floats, ret);
    }
    // SAFETY: forwarded contract.
    unsafe { call_here(addr, ints, floats, ret) }
}

/// Calls the function at `addr` in this process (see [`call`]). Passing
/// more register arguments than the callee takes is harmless in the
/// System V ABI, so one shape covers every signature.
///
/// # Safety
///
/// As for [`call`].
pub unsafe fn call_here(
    addr: u64,
    ints: &[u64],
    floats: &[f64],
    ret: RetKind,
) -> Result<u64, String> {
    if ints.len() > 6 || floats.len() > 8 {
        return Err(format!(
            "cannot call with {} integer and {} double arguments (at most 6 and 8)",
            ints.len(),
            floats.len()
        ));
    }
    let mut i = [0u64; 6];
    i[..ints.len()].copy_from_slice(ints);
    let mut f = [0f64; 8];
    f[..floats.len()].copy_from_slice(floats);
    type IntFn =
        extern "C" fn(u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, f64, f64, f64) -> u64;
    type F64Fn =
        extern "C" fn(u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, f64, f64, f64) -> f64;
    Ok(match ret {
        RetKind::Void | RetKind::Int => {
            // SAFETY: the caller guarantees a C function at `addr` whose
            // parameters are a prefix of these registers.
            let func = unsafe { std::mem::transmute::<usize, IntFn>(addr as usize) };
            let r = func(
                i[0], i[1], i[2], i[3], i[4], i[5], f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7],
            );
            if ret == RetKind::Void {
                0
            } else {
                r
            }
        }
        RetKind::F64 => {
            // SAFETY: as above, returning a double.
            let func = unsafe { std::mem::transmute::<usize, F64Fn>(addr as usize) };
            func(
                i[0], i[1], i[2], i[3], i[4], i[5], f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7],
            )
            .to_bits()
        }
    })
}

/// What the executor's runtime routines ask of the controller.
pub trait Controller: Send + Sync + 'static {
    /// A lazy call reached its trampoline: returns where it continues
    /// ([`serve_reenter`] in the controller).
    fn reenter(&self, ctx: u64, ret: u64) -> u64;
    /// A tiering counter tripped; its count is in the counter cell's
    /// `carried` word, where the manager reads it (so the code goes on at
    /// once, without waiting: [`serve_trip`] runs later in the
    /// controller).
    fn trip(&self, context: u64, counter: u64);
    /// A thread-local module's `{template, init_len, size, align}`
    /// ([`serve_tls_module`]).
    fn tls_module(&self, module: u64) -> Option<[u64; 4]>;
}

static CONTROLLER: OnceLock<Box<dyn Controller>> = OnceLock::new();

/// Makes this process an executor whose runtime routines call back through
/// `controller`. Set once.
pub fn set_controller(controller: Box<dyn Controller>) -> Result<(), String> {
    CONTROLLER
        .set(controller)
        .map_err(|_| "a controller is already set for this executor".to_owned())
}

/// The controller, when this process is an executor.
pub(crate) fn controller() -> Option<&'static dyn Controller> {
    CONTROLLER.get().map(|c| &**c)
}

/// Contexts the executor may name in a callback: the addresses of live
/// lazy call-through managers and tier managers. A callback naming any
/// other is refused, so a confused or hostile executor cannot make the
/// controller follow a wild pointer.
static LIVE_CONTEXTS: RwLock<Option<HashSet<u64>>> = RwLock::new(None);

pub(crate) fn add_context(ctx: u64) {
    LIVE_CONTEXTS
        .write()
        .get_or_insert_with(HashSet::new)
        .insert(ctx);
}

pub(crate) fn remove_context(ctx: u64) {
    if let Some(set) = LIVE_CONTEXTS.write().as_mut() {
        set.remove(&ctx);
    }
}

fn is_live(ctx: u64) -> bool {
    LIVE_CONTEXTS
        .read()
        .as_ref()
        .is_some_and(|s| s.contains(&ctx))
}

/// Runs, in the controller, a lazy call's reentry that the executor
/// forwarded: compiles and links what the trampoline stands for and returns
/// where the call continues.
pub fn serve_reenter(ctx: u64, ret: u64) -> Result<u64, String> {
    if !is_live(ctx) {
        return Err(format!("reentry through an unknown manager {ctx:#x}"));
    }
    Ok(crate::lazy::reenter_from_executor(ctx, ret))
}

/// Whether a trip through `context` (as tier-0 code passes it to the trip
/// handler) is promoted in place, on the thread that tripped, which waits
/// for it: then the executor waits for a counter's first trip to be
/// served, as that thread would in process; otherwise it waits for none,
/// and the controller may serve the trip on any thread (it only queues
/// work).
pub fn trip_waits(context: u64) -> bool {
    context & crate::tiering::CONTEXT_IN_PLACE != 0
}

/// Runs, in the controller, a tiering trip the executor forwarded.
pub fn serve_trip(context: u64, counter: u64) {
    let context = context & !crate::tiering::CONTEXT_IN_PLACE;
    // Not a live manager's: a report that arrived after its manager was
    // dropped (the program is ending), or a confused executor's. Either
    // way there is nothing to count it for.
    if is_live(context) {
        crate::tiering::trip_from_executor(context, counter);
    }
}

/// A thread-local module's `{template, init_len, size, align}`, for the
/// executor's first access to it.
pub fn serve_tls_module(module: u64) -> Option<[u64; 4]> {
    crate::link::tls_module_info(module)
}
