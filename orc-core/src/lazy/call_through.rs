//! Lazy call-through: trampolines that, when first called, look a symbol
//! up through the session (materializing it on demand, once, however many
//! threads call at the same moment), report the address (so a stub can be
//! repointed), and continue into it with the caller's arguments intact.
//!
//! The reentry path takes the manager's table lock only to read which
//! symbol a trampoline stands for; the session lookup waits without holding
//! any lock, and no lock is held once control returns to JIT'd code.
//!
//! When the lookup fails the call must not return garbage: by default the
//! error (function and cause) is printed on stderr, stdio is flushed and
//! the process exits with status [`LAZY_COMPILE_FAILURE_EXIT_CODE`]. With a
//! failure handler set, the error goes to the session's error reporter and
//! the call continues in the handler instead, with the original arguments
//! (like LLVM's `setLazyCompileFailureAddr`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::arch::{HostArch, LazyArch};
use crate::dylib::JitDylib;
use crate::error::{Error, Result};
use crate::lookup::{JitDylibLookupFlags, SymbolLookupFlags, SymbolState};
use crate::memory::{page_size, LinkMemory, Placement, SegmentProtection};
use crate::session::{take_one, ExecutionSession, Search};
use crate::state::DylibId;
use crate::symbol::{ExecutorAddr, FastHash, SymbolName};

/// The exit status of a process whose lazy compile failed with no failure
/// handler set (EX_SOFTWARE).
pub const LAZY_COMPILE_FAILURE_EXIT_CODE: i32 = 70;

/// Told the outcome of a trampoline's lookup; returns where the call
/// continues. One handler serves many trampolines: each call passes the
/// trampoline's address and the cookie the trampoline was made with, so a
/// trampoline costs no closure of its own. A lazy re-export uses it to
/// repoint its stub (only if the stub still points at the trampoline) and,
/// when the stub was repointed meanwhile (a redefinition raced with this
/// first call) or the lookup failed because of it, to continue at the
/// stub's new target.
pub trait TrampolineHandler: Send + Sync {
    /// `found` is the outcome of the lookup made for `trampoline`.
    fn resolved(
        &self,
        trampoline: ExecutorAddr,
        cookie: u64,
        found: Result<ExecutorAddr>,
    ) -> Result<ExecutorAddr>;
}

impl<F> TrampolineHandler for F
where
    F: Fn(ExecutorAddr, u64, Result<ExecutorAddr>) -> Result<ExecutorAddr> + Send + Sync,
{
    fn resolved(
        &self,
        trampoline: ExecutorAddr,
        cookie: u64,
        found: Result<ExecutorAddr>,
    ) -> Result<ExecutorAddr> {
        self(trampoline, cookie, found)
    }
}

/// What a trampoline stands for. Kept small (the dylib by id), since a
/// program has one per function.
struct Landing {
    dylib: DylibId,
    symbol: SymbolName,
    handler: Arc<dyn TrampolineHandler>,
    cookie: u64,
}

struct TrampolineBlock {
    _memory: LinkMemory,
    code_addr: u64,
    /// The landing of each trampoline of the block, by index: registering
    /// one writes next to the previous one, not into a hash table.
    landings: Vec<Option<Landing>>,
}

/// Every trampoline block and what each handed-out trampoline stands for.
#[derive(Default)]
struct Trampolines {
    blocks: Vec<TrampolineBlock>,
    /// Block index by the address of its code page.
    by_page: HashMap<u64, usize, FastHash>,
    /// Trampolines never handed out in the newest block start at this index.
    next_in_last: usize,
    free: Vec<u64>,
    n_live: usize,
}

impl Trampolines {
    /// The block and index of trampoline `addr`, if it is one of ours.
    fn position(&self, addr: u64) -> Option<(usize, usize)> {
        let page = page_size() as u64;
        let block = *self.by_page.get(&(addr & !(page - 1)))?;
        let offset = addr - self.blocks[block].code_addr;
        let size = HostArch::TRAMPOLINE_SIZE as u64;
        (offset % size == 0).then_some((block, (offset / size) as usize))
    }

    fn landing(&self, addr: u64) -> Option<&Landing> {
        let (block, index) = self.position(addr)?;
        self.blocks[block].landings.get(index)?.as_ref()
    }

    fn slot_mut(&mut self, addr: u64) -> Option<&mut Option<Landing>> {
        let (block, index) = self.position(addr)?;
        self.blocks[block].landings.get_mut(index)
    }

    /// A trampoline nobody uses, if there is one without a new block.
    fn take_free(&mut self, per_block: usize) -> Option<u64> {
        if let Some(addr) = self.free.pop() {
            return Some(addr);
        }
        let block = self
            .blocks
            .last()
            .filter(|_| self.next_in_last < per_block)?;
        let addr = block.code_addr + (HostArch::TRAMPOLINE_SIZE * self.next_in_last) as u64;
        self.next_in_last += 1;
        Some(addr)
    }
}

struct Inner {
    session: ExecutionSession,
    reentry: OnceLock<LinkMemory>,
    trampolines: RwLock<Trampolines>,
    failure_handler: RwLock<Option<ExecutorAddr>>,
    per_block: usize,
}

/// Hands out trampolines that resolve a symbol on first call. See the
/// module docs. The manager must outlive every piece of code that can still
/// call one of its trampolines.
#[derive(Clone)]
pub struct LazyCallThroughManager {
    inner: Arc<Inner>,
}

impl LazyCallThroughManager {
    /// A manager resolving through `session`.
    pub fn new(session: &ExecutionSession) -> Result<Self> {
        let inner = Arc::new(Inner {
            session: session.clone(),
            reentry: OnceLock::new(),
            trampolines: RwLock::new(Trampolines::default()),
            failure_handler: RwLock::new(None),
            per_block: page_size() / HostArch::TRAMPOLINE_SIZE,
        });
        let mut memory = LinkMemory::reserve(
            &[(SegmentProtection::ReadExec, HostArch::REENTRY_MAX_SIZE)],
            Placement::Anywhere,
        )
        .map_err(|e| Error::other(format!("cannot allocate the reentry routine: {e}")))?;
        let ctx = Arc::as_ptr(&inner) as u64;
        let resolver = reenter as extern "C" fn(*const Inner, u64) -> u64 as usize as u64;
        let code = memory
            .bytes_mut()
            .ok_or_else(|| Error::other("fresh reentry memory is already published"))?;
        HostArch::write_reentry(code, ctx, resolver);
        memory
            .publish()
            .map_err(|e| Error::other(format!("cannot publish the reentry routine: {e}")))?;
        let _ = inner.reentry.set(memory);
        crate::remote::add_context(ctx);
        Ok(LazyCallThroughManager { inner })
    }

    /// The session lookups go through.
    pub fn session(&self) -> &ExecutionSession {
        &self.inner.session
    }

    /// Makes failed lazy compiles continue in `handler` (called with the
    /// original arguments) instead of exiting the process; `None` restores
    /// the default.
    pub fn set_failure_handler(&self, handler: Option<ExecutorAddr>) {
        *self.inner.failure_handler.write() = handler;
    }

    /// A trampoline that, when called, looks `symbol` up in `dylib`
    /// (matching hidden symbols too, required state Ready), passes the
    /// outcome to `handler` (with `cookie`), and continues where the
    /// handler says.
    pub fn get_call_through_trampoline(
        &self,
        dylib: &JitDylib,
        symbol: SymbolName,
        handler: Arc<dyn TrampolineHandler>,
        cookie: u64,
    ) -> Result<ExecutorAddr> {
        if !Arc::ptr_eq(&dylib.session, self.inner.session.inner()) {
            return Err(Error::other(format!(
                "dylib '{}' belongs to another session than the call-through manager",
                dylib.name()
            )));
        }
        let landing = Landing {
            dylib: dylib.id,
            symbol,
            handler,
            cookie,
        };
        loop {
            {
                let mut table = self.inner.trampolines.write();
                if let Some(addr) = table.take_free(self.inner.per_block) {
                    if let Some(slot) = table.slot_mut(addr) {
                        *slot = Some(landing);
                        table.n_live += 1;
                        return Ok(ExecutorAddr(addr));
                    }
                }
            }
            // A new block is mapped without the table lock, so the reentry
            // path never waits on it; another thread may add one meanwhile,
            // which only means one more block.
            let block = self.new_block()?;
            let mut table = self.inner.trampolines.write();
            let index = table.blocks.len();
            table.by_page.insert(block.code_addr, index);
            table.blocks.push(block);
            table.next_in_last = 0;
        }
    }

    /// Returns a trampoline to the pool. The caller guarantees nothing will
    /// call it again.
    pub fn release_trampoline(&self, trampoline: ExecutorAddr) {
        let mut table = self.inner.trampolines.write();
        if let Some(slot) = table.slot_mut(trampoline.0) {
            if slot.take().is_some() {
                table.n_live -= 1;
                table.free.push(trampoline.0);
            }
        }
    }

    /// Trampolines handed out and not released.
    pub fn n_live(&self) -> usize {
        self.inner.trampolines.read().n_live
    }

    fn new_block(&self) -> Result<TrampolineBlock> {
        let page = page_size();
        let reentry_addr = self
            .inner
            .reentry
            .get()
            .map(|m| m.base())
            .ok_or_else(|| Error::other("the reentry routine is missing"))?;
        let mut memory = LinkMemory::reserve(
            &[
                (SegmentProtection::ReadExec, page),
                (SegmentProtection::Read, 8),
            ],
            Placement::Anywhere,
        )
        .map_err(|e| Error::other(format!("cannot allocate trampolines: {e}")))?;
        let base = memory.base();
        let segs = memory.segments().to_vec();
        let (code_off, ptr_off) = (segs[0].offset, segs[1].offset);
        let code_addr = base + code_off as u64;
        // Trampolines are found by their block's code page.
        if code_addr % page as u64 != 0 {
            return Err(Error::other("trampoline code is not page-aligned"));
        }
        let bytes = memory
            .bytes_mut()
            .ok_or_else(|| Error::other("fresh trampoline memory is already published"))?;
        bytes[ptr_off..ptr_off + 8].copy_from_slice(&reentry_addr.to_le_bytes());
        HostArch::write_trampolines(
            &mut bytes[code_off..code_off + page],
            code_addr,
            base + ptr_off as u64,
            self.inner.per_block,
        );
        memory
            .publish()
            .map_err(|e| Error::other(format!("cannot publish trampolines: {e}")))?;
        Ok(TrampolineBlock {
            _memory: memory,
            code_addr,
            landings: std::iter::repeat_with(|| None)
                .take(self.inner.per_block)
                .collect(),
        })
    }
}

impl Inner {
    /// Resolves the symbol behind a trampoline (no lock held while the
    /// session materializes it).
    fn resolve(&self, trampoline: u64) -> (Option<SymbolName>, Result<ExecutorAddr>) {
        let (dylib, symbol, handler, cookie) = match self.trampolines.read().landing(trampoline) {
            Some(l) => (l.dylib, l.symbol.clone(), l.handler.clone(), l.cookie),
            None => {
                let err = Error::other(format!("call through unknown trampoline {trampoline:#x}"));
                return (None, Err(err));
            }
        };
        let names = [(symbol.clone(), SymbolLookupFlags::RequiredSymbol)];
        let res = self
            .session
            .dylib_handle(dylib)
            .and_then(|dylib| {
                dylib.session.lookup_blocking(
                    Search::Only(&dylib, JitDylibLookupFlags::MatchAllSymbols),
                    &names,
                    SymbolState::Ready,
                )
            })
            .and_then(|map| take_one(map, names))
            .map(|def| def.addr);
        (
            Some(symbol),
            handler.resolved(ExecutorAddr(trampoline), cookie, res),
        )
    }

    fn fail(&self, symbol: Option<&SymbolName>, err: &Error) -> u64 {
        let what = symbol.map_or_else(|| "<unknown>".to_owned(), |s| s.to_string());
        if let Some(handler) = *self.failure_handler.read() {
            let report = match symbol {
                Some(symbol) => Error::LazyCompileFailed {
                    symbol: symbol.clone(),
                    cause: Arc::new(err.clone()),
                },
                None => Error::other(format!("lazy compile of '{what}' failed: {err}")),
            };
            self.session.report_error(&report);
            return handler.0;
        }
        eprintln!("orc: error: lazy compile of '{what}' failed: {err}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: fflush(NULL) flushes every C stdio stream, then `_exit`
        // ends the process at once: no atexit handlers or static
        // destructors run while other threads (compiles in the background)
        // may still be using what they would destroy.
        unsafe {
            libc::fflush(std::ptr::null_mut());
            libc::_exit(LAZY_COMPILE_FAILURE_EXIT_CODE)
        }
    }
}

/// Entered from the reentry routine with the manager and the return address
/// pushed by a trampoline; returns where the call continues.
extern "C" fn reenter(ctx: *const Inner, ret: u64) -> u64 {
    // In an executor, the manager lives in the controller: ask it.
    if let Some(controller) = crate::remote::controller() {
        return controller.reenter(ctx as u64, ret);
    }
    // SAFETY: `ctx` is the address of the manager's `Inner`, baked into the
    // reentry routine that lives inside that same `Inner`; the routine can
    // only run while the manager (and so `Inner`) is alive.
    let inner = unsafe { &*ctx };
    let trampoline = HostArch::trampoline_from_return_address(ret);
    // Unwinding into JIT'd code through the reentry frame is not allowed.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.resolve(trampoline)));
    match outcome {
        Ok((_, Ok(addr))) => addr.0,
        Ok((symbol, Err(err))) => inner.fail(symbol.as_ref(), &err),
        Err(_) => inner.fail(None, &Error::other("panic while resolving a lazy call")),
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        crate::remote::remove_context(self as *const Inner as u64);
    }
}

/// A reentry the executor forwarded (see [`crate::remote::serve_reenter`],
/// which checked that `ctx` is a live manager's).
pub(crate) fn reenter_from_executor(ctx: u64, ret: u64) -> u64 {
    reenter(ctx as *const Inner, ret)
}

impl std::fmt::Debug for LazyCallThroughManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyCallThroughManager")
            .field("n_live", &self.n_live())
            .finish()
    }
}
