//! Turning LLVM's fatal errors into errors of the unit being compiled.
//!
//! LLVM reports some failures with `llvm::report_fatal_error` (instruction
//! selection's "Cannot select", a verifier pass in the pipeline rejecting
//! the module, ...). That function calls the installed handler and, if the
//! handler returns, ends the process with `exit`/`abort`. The handler
//! installed here ([`install_fatal_error_handler`]) does not return while a
//! compile on its thread is *guarded*: it unwinds, as a Rust panic with a
//! private payload, through LLVM's frames back to [`run_passes`] or
//! [`emit`], which catch it and return [`Fatal`] to the compiler.
//!
//! Why this is sound enough, and what it costs:
//! - LLVM is built without exceptions but with unwind tables (`.eh_frame`
//!   for every function, no landing pads), so the unwinder can walk its
//!   frames; none of them runs a destructor, so everything those frames
//!   owned is leaked: the pass managers, the machine code, the output
//!   buffer. The compiler also leaks the unit's context, module and target
//!   machine (they may be referenced by the leaked objects or be mid-way
//!   through an update), so a fatal error costs the failing compile's
//!   memory, by design.
//! - The calls that may unwind are declared `extern "C-unwind"` here (not
//!   the `extern "C"` declarations of `llvm-sys`, through which unwinding
//!   would be undefined behaviour), and the handler only unwinds when one
//!   of them is running on its thread ([`GUARDED`]); anywhere else it names
//!   the unit and lets LLVM end the process as before.
//! - `report_fatal_error` releases its own lock before calling the handler,
//!   and neither the pass pipeline nor code generation holds a lock of
//!   LLVM's across the passes. The one piece of thread-local state left
//!   pointing into the abandoned frames is LLVM's pretty-stack-trace list
//!   (its entries live on the stack): it is saved before the call and
//!   restored after a caught error, which is what LLVM's own
//!   `CrashRecoveryContext` does when it abandons frames.
//! - Only `report_fatal_error` is recoverable. `llvm_unreachable`, a
//!   crash inside LLVM (a segmentation fault from a backend bug) or an
//!   out-of-memory report still end the process.
//! - A fatal error inside a callback of ours (the diagnostic handler is an
//!   `extern "C"` Rust function) cannot unwind through it: Rust aborts the
//!   process there, as LLVM would have. So does a program built with
//!   `panic = "abort"`.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use inkwell::llvm_sys::core::{
    LLVMDisposeMemoryBuffer, LLVMDisposeMessage, LLVMGetBufferSize, LLVMGetBufferStart,
};
use inkwell::llvm_sys::error::{LLVMDisposeErrorMessage, LLVMErrorRef, LLVMGetErrorMessage};
use inkwell::llvm_sys::prelude::{LLVMBool, LLVMMemoryBufferRef, LLVMModuleRef};
use inkwell::llvm_sys::target_machine::{LLVMCodeGenFileType, LLVMTargetMachineRef};
use inkwell::llvm_sys::transforms::pass_builder::{
    LLVMCreatePassBuilderOptions, LLVMDisposePassBuilderOptions, LLVMPassBuilderOptionsRef,
};
use inkwell::module::Module;
use inkwell::targets::TargetMachine;

use crate::diagnostics::current_unit;

/// LLVM gave up with a fatal error: its reason. Everything the interrupted
/// call was working on (module, context, target machine) must be leaked.
#[derive(Debug)]
pub(crate) struct Fatal(pub(crate) String);

/// The panic payload that carries a fatal error from the handler to
/// [`catch_fatal`]. Private, so no other panic can be mistaken for it.
struct FatalUnwind(String);

thread_local! {
    /// Whether a call that may unwind (see the module docs) is running on
    /// this thread.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

mod ffi {
    use super::*;

    // The same functions `llvm-sys` declares, declared again with the
    // ABI that allows unwinding out of them.
    extern "C-unwind" {
        #[link_name = "LLVMRunPasses"]
        pub(super) fn run_passes(
            m: LLVMModuleRef,
            passes: *const c_char,
            tm: LLVMTargetMachineRef,
            options: LLVMPassBuilderOptionsRef,
        ) -> LLVMErrorRef;

        #[link_name = "LLVMTargetMachineEmitToMemoryBuffer"]
        pub(super) fn emit_to_memory_buffer(
            tm: LLVMTargetMachineRef,
            m: LLVMModuleRef,
            codegen: LLVMCodeGenFileType,
            error_message: *mut *mut c_char,
            out: *mut LLVMMemoryBufferRef,
        ) -> LLVMBool;
    }

    extern "C" {
        /// The handler is called by LLVM (C++), which lets it unwind.
        pub(super) fn LLVMInstallFatalErrorHandler(
            handler: Option<unsafe extern "C-unwind" fn(reason: *const c_char)>,
        );

        /// `const void *llvm::SavePrettyStackState()`: the head of this
        /// thread's pretty-stack-trace list (no C API).
        #[link_name = "_ZN4llvm20SavePrettyStackStateEv"]
        pub(super) fn save_pretty_stack_state() -> *const c_void;

        /// `void llvm::RestorePrettyStackState(const void *)`.
        #[link_name = "_ZN4llvm23RestorePrettyStackStateEPKv"]
        pub(super) fn restore_pretty_stack_state(top: *const c_void);
    }
}

/// Installs the process-wide fatal error handler (once).
pub(crate) fn install_fatal_error_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: the handler unwinds only while GUARDED, i.e. only into
        // frames of `catch_fatal` reached through `extern "C-unwind"`
        // calls; otherwise it returns normally.
        unsafe { ffi::LLVMInstallFatalErrorHandler(Some(on_fatal_error)) };
    });
}

unsafe extern "C-unwind" fn on_fatal_error(reason: *const c_char) {
    let reason = if reason.is_null() {
        "(no reason given)".to_owned()
    } else {
        // SAFETY: LLVM passes a NUL-terminated string.
        unsafe { CStr::from_ptr(reason) }
            .to_string_lossy()
            .into_owned()
    };
    if GUARDED.try_with(Cell::get).unwrap_or(false) {
        // No panic hook runs: this is not a bug of ours, just a way back.
        std::panic::resume_unwind(Box::new(FatalUnwind(reason)));
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
    // LLVM ends the process when this returns.
}

/// Runs `f`, catching a fatal error LLVM reports while it runs.
///
/// # Safety
/// `f` reaches LLVM only through `extern "C-unwind"` declarations (those
/// of [`ffi`]), and owns nothing whose drop calls into LLVM: a fatal error
/// unwinds its frames.
unsafe fn catch_fatal<R>(f: impl FnOnce() -> R) -> Result<R, Fatal> {
    // SAFETY: plain thread-local reads of LLVM's list head.
    let saved = unsafe { ffi::save_pretty_stack_state() };
    let was_guarded = GUARDED.replace(true);
    let res = std::panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.set(was_guarded);
    match res {
        Ok(value) => Ok(value),
        Err(payload) => {
            // SAFETY: `saved` is the head this thread had before the call;
            // the entries pushed since lived in the unwound frames.
            unsafe { ffi::restore_pretty_stack_state(saved) };
            match payload.downcast::<FatalUnwind>() {
                Ok(fatal) => Err(Fatal(fatal.0)),
                Err(other) => std::panic::resume_unwind(other),
            }
        }
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
    // SAFETY: `m`, `machine` and `options` are live; the closure owns only
    // raw pointers and reaches LLVM through `ffi` alone.
    let error = unsafe { catch_fatal(|| ffi::run_passes(m, pipeline.as_ptr(), machine, options))? };
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
    // SAFETY: `m` and `machine` are live; the out-pointers point at locals
    // of this frame, which outlives the call; the closure owns only raw
    // pointers and reaches LLVM through `ffi` alone.
    let failed = unsafe {
        catch_fatal(|| ffi::emit_to_memory_buffer(machine, m, file_type, message_ptr, buffer_ptr))?
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
