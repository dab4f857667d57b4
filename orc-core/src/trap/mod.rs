//! Traps as errors: a fault in JIT'd code (a Cranelift trap, an LLVM
//! `ubsantrap`, a SIGSEGV/SIGBUS, a stack overflow) ends the call that
//! entered JIT'd code with a [`Trap`] instead of killing the process.
//!
//! How (Wasmtime's design, x86-64 Linux):
//! - [`catch_traps`] enters JIT'd code through a trampoline written in
//!   `global_asm!` that saves the callee-saved registers on its own stack
//!   frame and records, in a per-thread `CallRecord` chain, that frame's
//!   stack pointer and the address to resume at.
//! - Handlers for SIGILL, SIGFPE, SIGSEGV and SIGBUS are installed once, on
//!   the alternate signal stack (each calling thread gets one if it has
//!   none), so a stack overflow can be handled. A fault is ours when the
//!   thread is inside [`catch_traps`] and the faulting PC is in code the
//!   linker registered ([`registry`]); anything else goes to the handler
//!   that was installed before (Rust's stack-overflow report, a debugger's,
//!   or the default action).
//! - For a fault of ours the handler classifies it (the trap table a
//!   tier-0 object carries, the code byte of LLVM's `ud1`, the signal and
//!   fault address), stores it in the thread's record, and rewrites the
//!   signal context's `rip`/`rsp` to the trampoline's resume point; on
//!   return from the handler the kernel restores that context, the
//!   trampoline pops the saved registers and returns "trapped".
//!
//! The frames between the trampoline and the fault are abandoned: no
//! destructor of theirs runs. JIT'd code has none; a host function called
//! from JIT'd code that faults in *its own* code is not caught (its PC is
//! not JIT'd code) and crashes as before.

pub mod registry;
mod signals;

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

pub use registry::{code_info, register_code, CodeFunction, CodeInfo, CodeRegistration};

/// What went wrong in JIT'd code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrapKind {
    /// Integer division (or remainder) by zero.
    IntegerDivisionByZero,
    /// Integer overflow: `sdiv MIN, -1`, an overflowing checked operation,
    /// or a float-to-int conversion out of range.
    IntegerOverflow,
    /// A float-to-int conversion of NaN.
    BadConversionToInteger,
    /// A bounds check of a heap access failed.
    HeapOutOfBounds,
    /// A `trap` with a user code (`trap user1`: a frontend's unreachable
    /// or its own check); `None` for a trap instruction with no recorded
    /// code.
    Unreachable(Option<u8>),
    /// The stack overflowed (the guard page was hit, or a stack check
    /// trapped).
    StackOverflow,
    /// A memory access faulted (SIGSEGV) at `address`.
    MemoryFault {
        /// The faulting data address.
        address: u64,
    },
    /// A bus error (SIGBUS) at `address`.
    BusError {
        /// The faulting data address.
        address: u64,
    },
    /// A host function called [`raise_trap`] with this code.
    Raised {
        /// The host's code.
        code: u64,
    },
}

impl TrapKind {
    /// The kind of a Cranelift trap code byte (`TrapCode::as_raw`).
    pub fn from_code(code: u8) -> TrapKind {
        match code {
            251 => TrapKind::StackOverflow,
            252 => TrapKind::IntegerOverflow,
            253 => TrapKind::HeapOutOfBounds,
            254 => TrapKind::IntegerDivisionByZero,
            255 => TrapKind::BadConversionToInteger,
            user => TrapKind::Unreachable(Some(user)),
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapKind::IntegerDivisionByZero => f.write_str("integer division by zero"),
            TrapKind::IntegerOverflow => f.write_str("integer overflow"),
            TrapKind::BadConversionToInteger => f.write_str("invalid conversion to integer"),
            TrapKind::HeapOutOfBounds => f.write_str("heap access out of bounds"),
            TrapKind::Unreachable(Some(c)) => write!(f, "unreachable code reached (user{c})"),
            TrapKind::Unreachable(None) => f.write_str("unreachable code reached"),
            TrapKind::StackOverflow => f.write_str("stack overflow"),
            TrapKind::MemoryFault { address } => {
                write!(f, "memory access fault at address {address:#x}")
            }
            TrapKind::BusError { address } => write!(f, "bus error at address {address:#x}"),
            TrapKind::Raised { code } => write!(f, "raised by a host function (code {code})"),
        }
    }
}

/// A trap in JIT'd code, caught: what, where, in which function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    /// What went wrong.
    pub kind: TrapKind,
    /// The JIT'd function the fault was in (its symbol: `f$t0`, `f$t1`,
    /// `f$body`...), when a symbol covers the PC.
    pub function: Option<Arc<str>>,
    /// The faulting instruction's address (0 for [`TrapKind::Raised`]).
    pub pc: u64,
    /// What [`raise_trap`] was given.
    pub message: Option<Arc<str>>,
}

impl Trap {
    /// The function's source name: the symbol without the tier and body
    /// suffixes orc adds (`f$t0$v2` -> `f`).
    pub fn function_name(&self) -> Option<&str> {
        let s = self.function.as_deref()?;
        Some(s.split('$').next().unwrap_or(s))
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(message) = &self.message {
            return write!(f, "{message}");
        }
        match (&self.function, self.function_name()) {
            (Some(func), Some(name)) if name != &**func => {
                write!(f, "trap in JIT'd function '{name}' ({func}): {}", self.kind)
            }
            (Some(func), _) => write!(f, "trap in JIT'd function '{func}': {}", self.kind),
            (None, _) => write!(f, "trap in JIT'd code at {:#x}: {}", self.pc, self.kind),
        }
    }
}

impl std::error::Error for Trap {}

/// One active [`catch_traps`] on a thread. Its first two fields are read
/// by the trampoline (`global_asm!` offsets 0 and 8).
#[repr(C)]
pub(crate) struct CallRecord {
    /// The trampoline's stack pointer after it saved the registers.
    sp: u64,
    /// Where the trampoline resumes after a trap.
    resume: u64,
    /// The enclosing record (a host function that calls JIT'd code again).
    prev: *mut CallRecord,
    /// Set by the signal handler.
    trap: Option<Trap>,
}

thread_local! {
    /// The innermost active record; const-initialized and without a
    /// destructor, so the signal handler can read it.
    static CURRENT: Cell<*mut CallRecord> = const { Cell::new(std::ptr::null_mut()) };
}

/// Runs `f`, which calls JIT'd code, and returns `Err` with the trap if
/// that code faults (see the module docs). Nests: JIT'd code may call a
/// host function that calls `catch_traps` again.
///
/// The first call installs the signal handlers (once per process) and,
/// when this thread has no alternate signal stack, gives it one (freed at
/// thread exit).
///
/// # Safety
///
/// On a trap, the frames of `f` and of everything it called are abandoned
/// without running destructors or unwinding: `f` must own nothing whose
/// destructor matters (it is leaked on a trap), and a trap must not
/// abandon frames that hold locks or other state that must be released
/// (host functions called from JIT'd code are such frames only if the
/// fault happens in JIT'd code they call in turn without their own
/// `catch_traps`). `f` must not unwind (a panic in it aborts).
pub unsafe fn catch_traps<F: FnOnce()>(f: F) -> Result<(), Trap> {
    signals::init();
    signals::ensure_altstack();
    let mut closure = Some(f);
    let mut record = CallRecord {
        sp: 0,
        resume: 0,
        prev: CURRENT.get(),
        trap: None,
    };
    CURRENT.set(&mut record);
    // SAFETY: the trampoline saves the callee-saved registers, stores its
    // stack pointer and resume address in `record` (valid and pinned on
    // this frame for the whole call), and calls `call_closure::<F>` with
    // the closure's address, which it takes out of the Option exactly
    // once. Whether the call returns or the signal handler redirects the
    // thread to the resume point, the trampoline restores the registers
    // and returns to us normally; the frames it abandons are only those
    // the caller vouched for.
    let trapped = unsafe {
        signals::orc_core_trap_call(
            (&mut record as *mut CallRecord).cast(),
            call_closure::<F>,
            (&mut closure as *mut Option<F>).cast(),
        )
    };
    CURRENT.set(record.prev);
    if trapped != 0 {
        // The closure's environment, if the trap came before it was taken,
        // or what is left of it: leaked, as promised.
        std::mem::forget(closure);
        return Err(record.trap.take().unwrap_or(Trap {
            kind: TrapKind::Unreachable(None),
            function: None,
            pc: 0,
            message: None,
        }));
    }
    Ok(())
}

extern "C" fn call_closure<F: FnOnce()>(data: *mut u8) {
    // SAFETY: `catch_traps` passes the address of its `Option<F>`, alive
    // and not otherwise used during the call.
    let closure = unsafe { &mut *data.cast::<Option<F>>() };
    if let Some(f) = closure.take() {
        f();
    }
}

/// Ends the innermost [`catch_traps`] call of this thread at once with
/// `Err(trap)`, abandoning every frame since (JIT'd code and the host
/// function calling this): a host function's way to stop the JIT'd code
/// that called it (a VM's runtime error). Returns `trap` only when this
/// thread is not inside [`catch_traps`].
///
/// # Safety
///
/// The frames abandoned (the caller's, and those between it and the
/// `catch_traps` call) are not unwound: nothing they own is dropped (it
/// leaks) and they must hold no lock or borrow whose release matters.
/// Call it from a host function's own frame, with nothing live that
/// needs dropping (drop it first).
pub unsafe fn raise_trap(trap: Trap) -> Trap {
    let record = CURRENT.get();
    if record.is_null() {
        return trap;
    }
    // SAFETY: record is this thread's innermost live CallRecord; the
    // trampoline's frame (with the saved registers) is below every frame
    // we abandon, and jumping to its resume label with its stack pointer
    // is what the signal handler does, from an ordinary context here.
    unsafe {
        (*record).trap = Some(trap);
        signals::orc_core_trap_unwind((*record).sp, (*record).resume)
    }
}

/// What to do with a trap in JIT'd code that no [`catch_traps`] catches.
static UNCAUGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets the handler of traps in JIT'd code outside [`catch_traps`]
/// (`None`: the signal goes to the handler installed before ours, which
/// usually kills the process). It runs in the signal handler, on the
/// alternate stack, and should end the process (a program's tool flushes
/// its output, reports the trap and exits); if it returns, the signal goes
/// on as with `None`. Installs the signal handlers.
pub fn set_uncaught_trap_handler(handler: Option<fn(&Trap)>) {
    signals::init();
    let raw = handler.map_or(0, |f| f as usize);
    UNCAUGHT.store(raw, std::sync::atomic::Ordering::SeqCst);
}

fn uncaught_handler() -> Option<fn(&Trap)> {
    let raw = UNCAUGHT.load(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: a non-zero value was stored from a `fn(&Trap)` above.
    (raw != 0).then(|| unsafe { std::mem::transmute::<usize, fn(&Trap)>(raw) })
}

/// Whether this thread is inside [`catch_traps`].
pub fn in_jit_call() -> bool {
    !CURRENT.get().is_null()
}

#[cfg(test)]
mod tests;
