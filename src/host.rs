//! Host functions JIT'd code can call, and stdio flushing.
//!
//! `putchard` and `printd` write through C stdio, the same buffered stream
//! C code linked into the process writes to, so output interleaves in
//! program order; [`flush_stdout`] flushes it (the CLI does before exit).

use orc_core::{ExecutorAddr, ExecutorSymbolDef, SymbolFlags, SymbolMap};

/// `putchard(x)`: writes the byte `x` to stdout; returns 0.
pub extern "C" fn putchard(x: f64) -> f64 {
    // SAFETY: putchar takes any int and writes one byte to stdout.
    unsafe {
        libc::putchar(x as u8 as libc::c_int);
    }
    0.0
}

/// `printd(x)`: prints `x` as `%f\n` on stdout; returns 0.
pub extern "C" fn printd(x: f64) -> f64 {
    // SAFETY: the format is a NUL-terminated literal with one %f, matched by
    // one double argument.
    unsafe {
        libc::printf(c"%f\n".as_ptr(), x);
    }
    0.0
}

/// Prints `Evaluated to %f` for a top-level expression's value, on the
/// same stream as the host functions.
pub fn print_result(x: f64) {
    // SAFETY: as in `printd`.
    unsafe {
        libc::printf(c"Evaluated to %f\n".as_ptr(), x);
    }
}

/// Flushes every C stdio stream (and Rust's stdout).
pub fn flush_stdout() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: fflush(NULL) flushes all open output streams; always valid.
    unsafe {
        libc::fflush(std::ptr::null_mut());
    }
}

/// The host functions as absolute symbols, interned in `es`.
pub fn host_symbols(es: &orc_core::ExecutionSession) -> SymbolMap {
    let flags = SymbolFlags::EXPORTED | SymbolFlags::CALLABLE;
    let f = |p: extern "C" fn(f64) -> f64| {
        ExecutorSymbolDef::new(ExecutorAddr::from_ptr(p as *const u8), flags)
    };
    SymbolMap::from([
        (es.intern("putchard"), f(putchard)),
        (es.intern("printd"), f(printd)),
    ])
}
