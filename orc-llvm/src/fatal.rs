//! Turning LLVM's fatal errors into errors of the unit being compiled.
//!
//! LLVM reports some failures with `llvm::report_fatal_error` (instruction
//! selection's "Cannot select", a verifier pass in the pipeline rejecting
//! the module, ...). That function calls the installed handler and, if the
//! handler returns, ends the process with `exit`/`abort`.
//!
//! How a fatal error becomes [`Fatal`] instead: the two LLVM calls that can
//! meet one, [`run_passes`] and [`emit`], run on a *helper thread* (one per
//! compiling thread, reused from call to call) while the caller waits. When
//! a fatal error happens there, the handler ([`install_fatal_error_handler`])
//! sends the reason to the waiting caller and then parks the helper thread
//! forever: it never returns into LLVM and never unwinds, so every LLVM
//! frame, every object they own and every lock they hold stays exactly as
//! it was, untouched by anyone. The caller gets [`Fatal`] and the compiling
//! thread gets a fresh helper for its next call.
//!
//! What it costs, by design: the parked thread (its stack) and everything
//! the failing compile allocated. The compiler leaks that unit's context,
//! module and target machine too, since the parked frames refer to them.
//! A lock of LLVM's held by the parked frames would stay held, but
//! `report_fatal_error` releases its own before calling the handler, and
//! neither the pass pipeline nor code generation holds one across passes.
//!
//! An earlier version unwound through LLVM's frames instead (no destructors
//! run there); state those frames had left in shared structures corrupted
//! the heap and stacks of compiles running on other threads (about 1 run in
//! 13 of `tests/fatal.rs`). Parking leaves no frame half-abandoned.
//!
//! A fatal error anywhere else (no guarded call on the thread) names the
//! unit being compiled, if any, and lets LLVM end the process as before.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::io::Write;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Once;

use inkwell::llvm_sys::core::{
    LLVMDisposeMemoryBuffer, LLVMDisposeMessage, LLVMGetBufferSize, LLVMGetBufferStart,
};
use inkwell::llvm_sys::error::{LLVMDisposeErrorMessage, LLVMGetErrorMessage};
use inkwell::llvm_sys::prelude::LLVMMemoryBufferRef;
use inkwell::llvm_sys::target_machine::{LLVMCodeGenFileType, LLVMTargetMachineEmitToMemoryBuffer};
use inkwell::llvm_sys::transforms::pass_builder::{
    LLVMCreatePassBuilderOptions, LLVMDisposePassBuilderOptions, LLVMRunPasses,
};
use inkwell::module::Module;
use inkwell::targets::TargetMachine;

use crate::diagnostics::current_unit;

/// A fatal error of LLVM's during a guarded call: its reason.
#[derive(Debug)]
pub(crate) struct Fatal(pub(crate) String);

/// What a guarded call sends back: its value, or the fatal error's reason.
type Outcome = Result<Box<dyn std::any::Any + Send>, String>;

/// A job for a helper thread: the call, and where its outcome goes.
type Job = (
    Box<dyn FnOnce() -> Box<dyn std::any::Any + Send> + Send>,
    SyncSender<Outcome>,
);

thread_local! {
    /// On a helper thread, while a job runs: where a fatal error's reason
    /// goes.
    static FATAL_TO: RefCell<Option<SyncSender<Outcome>>> = const { RefCell::new(None) };
    /// On a compiling thread: its helper, if it has a live one.
    static HELPER: RefCell<Option<Helper>> = const { RefCell::new(None) };
}

/// A compiling thread's helper: where its jobs go, and the thread, to keep
/// it on the caller's CPU.
struct Helper {
    jobs: SyncSender<Job>,
    #[cfg(target_os = "linux")]
    thread: libc::pthread_t,
    /// The CPU the helper is pinned to, if it is.
    cpu: Option<i32>,
}

impl Helper {
    /// Pins the helper, and the calling thread until the returned guard
    /// drops, to the CPU the caller runs on: one of the two runs at a time
    /// (the caller waits for the job), so they share that CPU and stay off
    /// the others. Left to itself, the scheduler often woke one of them on
    /// a CPU busy with the program's own thread (where it had last run,
    /// or where the waker was), while the CPU the other had just left sat
    /// idle: the program stalled for the compile, or the compile waited
    /// behind it for a time slice (3 ms), once per handoff.
    #[cfg(target_os = "linux")]
    fn share_callers_cpu(&mut self) -> Option<CallerPin> {
        // SAFETY: no arguments; returns -1 when unknown.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 || cpu as usize >= libc::CPU_SETSIZE as usize {
            return None;
        }
        // SAFETY: plain bit sets, initialized by zeroing, CPU_SET and
        // `pthread_getaffinity_np`; the helper's `pthread_t` stays valid
        // while we hold its job channel (it only exits once that closes).
        unsafe {
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut one);
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if self.cpu != Some(cpu) {
                let pinned = libc::pthread_setaffinity_np(self.thread, size, &one);
                // Refused (the CPU left this process's set): unpinned.
                self.cpu = (pinned == 0).then_some(cpu);
            }
            self.cpu?;
            let me = libc::pthread_self();
            let mut mine: libc::cpu_set_t = std::mem::zeroed();
            if libc::pthread_getaffinity_np(me, size, &mut mine) != 0
                || libc::pthread_setaffinity_np(me, size, &one) != 0
            {
                return None;
            }
            Some(CallerPin(mine))
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn share_callers_cpu(&mut self) -> Option<CallerPin> {
        None
    }
}

/// Gives the calling thread back its CPU set when dropped.
#[cfg(target_os = "linux")]
struct CallerPin(libc::cpu_set_t);

#[cfg(target_os = "linux")]
impl Drop for CallerPin {
    fn drop(&mut self) {
        // SAFETY: restores the calling thread's own earlier set.
        unsafe {
            libc::pthread_setaffinity_np(
                libc::pthread_self(),
                std::mem::size_of_val(&self.0),
                &self.0,
            )
        };
    }
}

#[cfg(not(target_os = "linux"))]
struct CallerPin;

/// The stack of a helper thread: code generation recurses deeply on big
/// functions, as on a main thread.
const HELPER_STACK: usize = 16 << 20;

mod ffi {
    use super::*;

    extern "C" {
        /// `llvm-c/ErrorHandling.h`, declared here with the handler type
        /// this module installs.
        pub(super) fn LLVMInstallFatalErrorHandler(
            handler: Option<unsafe extern "C" fn(reason: *const c_char)>,
        );
    }
}

/// Installs the process-wide fatal error handler (once).
pub(crate) fn install_fatal_error_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: installing a handler is a plain store inside LLVM; the
        // handler never unwinds (see `on_fatal_error`).
        unsafe { ffi::LLVMInstallFatalErrorHandler(Some(on_fatal_error)) };
    });
}

/// LLVM's fatal error handler. On a helper thread running a guarded call:
/// report the reason to the caller and park this thread forever. Anywhere
/// else: name the unit and return, so LLVM ends the process.
unsafe extern "C" fn on_fatal_error(reason: *const c_char) {
    let reason = if reason.is_null() {
        "(no reason given)".to_owned()
    } else {
        // SAFETY: LLVM passes a NUL-terminated string valid for this call.
        unsafe { CStr::from_ptr(reason) }
            .to_string_lossy()
            .into_owned()
    };
    let to = FATAL_TO.try_with(|t| t.borrow_mut().take()).ok().flatten();
    if let Some(to) = to {
        let _ = to.send(Err(reason));
        // Never return into LLVM, never unwind: the frames below stay as
        // they are, and nothing else will ever run them.
        loop {
            std::thread::park();
        }
    }
    let mut err = std::io::stderr().lock();
    let _ = match current_unit() {
        Some(unit) => writeln!(
            err,
            "orc: fatal LLVM error while compiling '{unit}': {reason}"
        ),
        None => writeln!(err, "orc: fatal LLVM error: {reason}"),
    };
    let _ = err.flush();
}

/// A helper thread: runs jobs until its job channel closes.
fn spawn_helper() -> Option<Helper> {
    let (tx, rx): (SyncSender<Job>, Receiver<Job>) = mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name("orc-llvm-codegen".into())
        .stack_size(HELPER_STACK)
        .spawn(move || {
            while let Ok((call, outcome)) = rx.recv() {
                FATAL_TO.with(|t| *t.borrow_mut() = Some(outcome.clone()));
                let value = call();
                FATAL_TO.with(|t| t.borrow_mut().take());
                let _ = outcome.send(Ok(value));
            }
        })
        .ok()?;
    Some(Helper {
        jobs: tx,
        #[cfg(target_os = "linux")]
        thread: std::os::unix::thread::JoinHandleExt::as_pthread_t(&handle),
        cpu: None,
    })
}

/// A value moved to the helper thread and back. Raw LLVM handles are not
/// `Send`; the caller owns them and waits while the helper uses them.
struct OnHelper<T>(T);
// SAFETY: see `catch_fatal`: the calling thread blocks while the helper
// uses the value, so it is never used by two threads at once.
unsafe impl<T> Send for OnHelper<T> {}

/// Runs `f` on this thread's helper and waits for it; a fatal error of
/// LLVM's in `f` becomes [`Fatal`] (the helper is then parked for good and
/// a new one serves the next call).
///
/// # Safety
/// `f` must only call into LLVM with handles the caller owns. If it returns
/// `Err`, whatever `f` touched (module, context, target machine, buffers it
/// wrote to) may still be referenced by the parked thread's frames: the
/// caller must leak it, never use it again (the parked thread never runs
/// again, so freeing plain memory `f` borrowed, like a string, is fine).
unsafe fn catch_fatal<R: 'static>(f: impl FnOnce() -> R) -> Result<R, Fatal> {
    // A thread whose thread-locals are being destroyed (one running C++
    // `thread_local` destructors that call JIT'd code) has no helper.
    let Ok(helper) = HELPER.try_with(|h| h.borrow_mut().take()) else {
        return Ok(f());
    };
    let helper = helper.or_else(spawn_helper);
    let Some(mut helper) = helper else {
        // No thread for it: run here, unprotected (a fatal error then ends
        // the process, as without this module).
        return Ok(f());
    };
    let call: Box<dyn FnOnce() -> R + '_> = Box::new(f);
    // SAFETY: the borrow is erased to 'static so the helper can run it; we
    // block below until the helper has finished `f` or parked for good, and
    // a parked helper never runs `f`'s code again.
    let call: Box<dyn FnOnce() -> R + 'static> = unsafe { std::mem::transmute(call) };
    let call = OnHelper(call);
    let job: Box<dyn FnOnce() -> Box<dyn std::any::Any + Send> + Send> = Box::new(move || {
        let call = call;
        Box::new(OnHelper((call.0)())) as Box<dyn std::any::Any + Send>
    });
    let (tx, rx) = mpsc::sync_channel(1);
    let _pin = helper.share_callers_cpu();
    if helper.jobs.send((job, tx)).is_err() {
        return Err(Fatal("the LLVM code generation thread is gone".into()));
    }
    match rx.recv() {
        Ok(Ok(value)) => {
            let _ = HELPER.try_with(|h| *h.borrow_mut() = Some(helper));
            match value.downcast::<OnHelper<R>>() {
                Ok(v) => Ok(v.0),
                Err(_) => Err(Fatal("internal: unexpected result type".into())),
            }
        }
        // The helper is parked; drop our sender to it.
        Ok(Err(reason)) => Err(Fatal(reason)),
        // The helper died (a Rust panic in `f`): treat it as fatal too.
        Err(_) => Err(Fatal("the LLVM code generation thread panicked".into())),
    }
}

/// Runs the new pass manager's `pipeline` on `module`: `Ok(Err(message))`
/// if the pipeline is rejected, `Err(Fatal)` if LLVM hit a fatal error
/// (`module` and `tm` must then be leaked).
pub(crate) fn run_passes(
    module: &Module<'_>,
    pipeline: &str,
    tm: &TargetMachine,
) -> Result<Result<(), String>, Fatal> {
    let pipeline = std::ffi::CString::new(pipeline.replace('\0', "")).unwrap_or_default();
    let (m, machine) = (module.as_mut_ptr(), tm.as_mut_ptr());
    // SAFETY: creates an options object owned here.
    let options = unsafe { LLVMCreatePassBuilderOptions() };
    // SAFETY: `m`, `machine` and `options` are live and owned by the
    // caller, who leaks them on a fatal error (see `catch_fatal`).
    let error = unsafe { catch_fatal(|| LLVMRunPasses(m, pipeline.as_ptr(), machine, options))? };
    // SAFETY: the options are not used any more (on a fatal error they
    // leak with the rest, above).
    unsafe { LLVMDisposePassBuilderOptions(options) };
    if error.is_null() {
        return Ok(Ok(()));
    }
    // SAFETY: `error` is a live error; getting its message consumes it,
    // and the message is disposed of once, after copying.
    let message = unsafe {
        let raw = LLVMGetErrorMessage(error);
        let text = CStr::from_ptr(raw).to_string_lossy().into_owned();
        LLVMDisposeErrorMessage(raw);
        text
    };
    Ok(Err(message))
}

/// Generates `module`'s code (an object or assembly) into memory: the bytes,
/// `Ok(Err(message))` if the code generator refuses, `Err(Fatal)` if LLVM
/// hit a fatal error (`module` and `tm` must then be leaked).
pub(crate) fn emit(
    module: &Module<'_>,
    tm: &TargetMachine,
    file_type: LLVMCodeGenFileType,
) -> Result<Result<Vec<u8>, String>, Fatal> {
    let (m, machine) = (module.as_mut_ptr(), tm.as_mut_ptr());
    let mut message: *mut c_char = std::ptr::null_mut();
    let mut buffer: LLVMMemoryBufferRef = std::ptr::null_mut();
    let (message_ptr, buffer_ptr) = (&raw mut message, &raw mut buffer);
    // SAFETY: `m` and `machine` are live and owned by the caller, who leaks
    // them on a fatal error; the out-pointers point at locals of this frame,
    // written only before the helper reports success (a parked helper never
    // writes again).
    let failed = unsafe {
        catch_fatal(|| {
            LLVMTargetMachineEmitToMemoryBuffer(machine, m, file_type, message_ptr, buffer_ptr)
        })?
    };
    if failed != 0 || buffer.is_null() {
        let text = if message.is_null() {
            "code generation failed".to_owned()
        } else {
            // SAFETY: LLVM returned a NUL-terminated message we own; it is
            // disposed of once, after copying.
            unsafe {
                let text = CStr::from_ptr(message).to_string_lossy().into_owned();
                LLVMDisposeMessage(message);
                text
            }
        };
        return Ok(Err(text));
    }
    // SAFETY: `buffer` is a live memory buffer we own: its bytes are
    // copied out, then it is disposed of once.
    let bytes = unsafe {
        let start = LLVMGetBufferStart(buffer).cast::<u8>();
        let len = LLVMGetBufferSize(buffer);
        let bytes = if start.is_null() || len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(start, len).to_vec()
        };
        LLVMDisposeMemoryBuffer(buffer);
        bytes
    };
    Ok(Ok(bytes))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's CPU set.
    fn own_cpu_set() -> libc::cpu_set_t {
        // SAFETY: `set` is a plain bit set for the kernel to fill.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of_val(&set);
            assert_eq!(
                libc::pthread_getaffinity_np(libc::pthread_self(), size, &mut set),
                0
            );
            set
        }
    }

    #[test]
    fn the_helper_runs_on_the_waiting_callers_cpu_and_the_caller_gets_its_set_back() {
        let before = own_cpu_set();
        // SAFETY: no arguments.
        let caller = unsafe { libc::pthread_self() };
        for _ in 0..3 {
            // SAFETY: the closure calls no LLVM.
            let (helper_set, caller_set, on) = unsafe {
                catch_fatal(move || {
                    let mut theirs: libc::cpu_set_t = std::mem::zeroed();
                    let size = std::mem::size_of_val(&theirs);
                    assert_eq!(libc::pthread_getaffinity_np(caller, size, &mut theirs), 0);
                    (own_cpu_set(), theirs, libc::sched_getcpu())
                })
            }
            .expect("no fatal error");
            // SAFETY: reads of plain bit sets.
            unsafe {
                assert_eq!(libc::CPU_COUNT(&helper_set), 1, "the helper is on one CPU");
                assert!(
                    libc::CPU_EQUAL(&helper_set, &caller_set),
                    "the caller waits on it too"
                );
                assert!(libc::CPU_ISSET(on as usize, &helper_set));
                assert!(
                    libc::CPU_ISSET(on as usize, &before),
                    "a CPU the caller may use"
                );
            }
            let after = own_cpu_set();
            // SAFETY: a read of plain bit sets.
            let given_back = unsafe { libc::CPU_EQUAL(&after, &before) };
            assert!(given_back, "the caller's set is given back");
        }
    }
}
