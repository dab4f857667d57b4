//! Host functions JIT'd code can call (`putchard` and `printd` for
//! Kaleidoscope, `print_i64` and `print_f64` for CLIF programs), and stdio
//! flushing.
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

/// `print_i64(x)`: prints `x` in decimal and a newline on stdout (for
/// CLIF programs, through the same C stdio stream as `putchar`).
pub extern "C" fn print_i64(x: i64) {
    // SAFETY: the format is a NUL-terminated literal with one %lld, matched
    // by one long long argument (i64 on every target orc supports).
    unsafe {
        libc::printf(c"%lld\n".as_ptr(), x as libc::c_longlong);
    }
}

/// `print_f64(x)`: prints `x` with 17 significant digits (enough to tell
/// any two doubles apart) and a newline on stdout.
pub extern "C" fn print_f64(x: f64) {
    // SAFETY: the format is a NUL-terminated literal with one %.17g,
    // matched by one double argument.
    unsafe {
        libc::printf(c"%.17g\n".as_ptr(), x);
    }
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
    // The perf map and jitdump file are buffered too.
    orc_core::debug::flush_perf_files();
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
    let addr = |p: *const u8| ExecutorSymbolDef::new(ExecutorAddr::from_ptr(p), flags);
    SymbolMap::from([
        (es.intern("putchard"), f(putchard)),
        (es.intern("printd"), f(printd)),
        (
            es.intern("print_i64"),
            addr(print_i64 as extern "C" fn(i64) as *const u8),
        ),
        (
            es.intern("print_f64"),
            addr(print_f64 as extern "C" fn(f64) as *const u8),
        ),
    ])
}
