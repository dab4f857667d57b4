//! Keeping LLVM's errors inside the unit that caused them.
//!
//! Two hooks: a per-context diagnostic handler ([`DiagnosticSink`]) that
//! collects error diagnostics instead of letting LLVM print them and call
//! `exit(1)` (its behaviour for a context without a handler), and a
//! process-wide fatal error handler ([`install_fatal_error_handler`]) that
//! names the unit being compiled on this thread before LLVM ends the
//! process. Neither hook can panic or unwind into LLVM.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};
use std::io::Write;
use std::sync::{Mutex, Once};

use inkwell::context::Context;
use inkwell::llvm_sys::core::{
    LLVMContextSetDiagnosticHandler, LLVMDisposeMessage, LLVMGetDiagInfoDescription,
    LLVMGetDiagInfoSeverity,
};
use inkwell::llvm_sys::error_handling::LLVMInstallFatalErrorHandler;
use inkwell::llvm_sys::prelude::LLVMDiagnosticInfoRef;
use inkwell::llvm_sys::LLVMDiagnosticSeverity;

/// Error diagnostics LLVM reported for one context.
///
/// Boxed so its address is stable while the context points at it. The
/// context must be dropped (or its handler replaced) before the sink: see
/// [`DiagnosticSink::attach`].
pub(crate) struct DiagnosticSink {
    errors: Mutex<Vec<String>>,
}

impl DiagnosticSink {
    pub(crate) fn new() -> Box<Self> {
        Box::new(DiagnosticSink {
            errors: Mutex::new(Vec::new()),
        })
    }

    /// Routes `context`'s diagnostics here.
    ///
    /// The caller keeps `self` alive longer than `context` (declare the sink
    /// before the context so it is dropped after it).
    pub(crate) fn attach(&self, context: &Context) {
        let data = self as *const DiagnosticSink as *mut c_void;
        // SAFETY: `context.raw()` is a live context; the handler only reads
        // `data` as a `&DiagnosticSink`, which outlives the context by the
        // contract above, and the handler never unwinds.
        unsafe { LLVMContextSetDiagnosticHandler(context.raw(), Some(on_diagnostic), data) };
    }

    /// Takes the errors reported so far.
    pub(crate) fn take_errors(&self) -> Vec<String> {
        match self.errors.lock() {
            Ok(mut errors) => std::mem::take(&mut *errors),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

extern "C" fn on_diagnostic(info: LLVMDiagnosticInfoRef, data: *mut c_void) {
    // SAFETY: LLVM passes a live diagnostic for the duration of the call.
    let severity = unsafe { LLVMGetDiagInfoSeverity(info) };
    if severity != LLVMDiagnosticSeverity::LLVMDSError {
        return;
    }
    // SAFETY: as above; the description is a malloc'd C string we own and
    // dispose of below.
    let raw = unsafe { LLVMGetDiagInfoDescription(info) };
    if raw.is_null() {
        return;
    }
    // SAFETY: `raw` is a NUL-terminated string from LLVM.
    let text = unsafe { CStr::from_ptr(raw) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: `raw` came from LLVMGetDiagInfoDescription and is freed once.
    unsafe { LLVMDisposeMessage(raw) };
    // SAFETY: `data` is the `DiagnosticSink` registered by `attach`, alive
    // while its context is.
    let sink = unsafe { &*(data as *const DiagnosticSink) };
    if let Ok(mut errors) = sink.errors.lock() {
        errors.push(text);
    }
}

thread_local! {
    /// The unit this thread is compiling, for the fatal error message.
    static CURRENT_UNIT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records the unit being compiled on this thread until dropped.
pub(crate) struct CurrentUnit(());

impl CurrentUnit {
    pub(crate) fn enter(name: &str) -> Self {
        let _ = CURRENT_UNIT.try_with(|u| {
            if let Ok(mut u) = u.try_borrow_mut() {
                *u = Some(name.to_owned());
            }
        });
        CurrentUnit(())
    }
}

impl Drop for CurrentUnit {
    fn drop(&mut self) {
        let _ = CURRENT_UNIT.try_with(|u| {
            if let Ok(mut u) = u.try_borrow_mut() {
                *u = None;
            }
        });
    }
}

/// Installs the process-wide fatal error handler (once).
pub(crate) fn install_fatal_error_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: the handler is a plain function that never unwinds.
        unsafe { LLVMInstallFatalErrorHandler(Some(on_fatal_error)) };
    });
}

extern "C" fn on_fatal_error(reason: *const c_char) {
    let reason = if reason.is_null() {
        "(no reason given)".to_owned()
    } else {
        // SAFETY: LLVM passes a NUL-terminated string.
        unsafe { CStr::from_ptr(reason) }
            .to_string_lossy()
            .into_owned()
    };
    let unit = CURRENT_UNIT
        .try_with(|u| u.try_borrow().ok().and_then(|u| u.clone()))
        .ok()
        .flatten();
    let mut err = std::io::stderr().lock();
    let _ = match unit {
        Some(unit) => writeln!(
            err,
            "orc: fatal LLVM error while compiling '{unit}': {reason}"
        ),
        None => writeln!(err, "orc: fatal LLVM error: {reason}"),
    };
    let _ = err.flush();
    // LLVM ends the process when this returns.
}
