//! Keeping LLVM's errors inside the unit that caused them.
//!
//! A per-context diagnostic handler ([`DiagnosticSink`]) collects error
//! diagnostics instead of letting LLVM print them and call `exit(1)` (its
//! behaviour for a context without a handler); it cannot panic or unwind
//! into LLVM. [`CurrentUnit`] records which unit a thread compiles, for
//! messages about fatal errors (see `fatal.rs`).

use std::cell::RefCell;
use std::ffi::{c_void, CStr};
use std::sync::Mutex;

use inkwell::context::Context;
use inkwell::llvm_sys::core::{
    LLVMContextSetDiagnosticHandler, LLVMDisposeMessage, LLVMGetDiagInfoDescription,
    LLVMGetDiagInfoSeverity,
};
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

/// The unit this thread is compiling, if any.
pub(crate) fn current_unit() -> Option<String> {
    CURRENT_UNIT
        .try_with(|u| u.try_borrow().ok().and_then(|u| u.clone()))
        .ok()
        .flatten()
}
