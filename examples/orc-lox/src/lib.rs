//! # orc-lox: a Lox VM
//!
//! Lox is the language of Robert Nystrom's *Crafting Interpreters*. This
//! crate implements its complete final form as the book's C VM (clox) does:
//! numbers, booleans, `nil`, interned strings, closures with upvalues,
//! classes with methods, initializers and single inheritance (`super`), the
//! native `clock()`, and a precise mark-sweep garbage collector. Output,
//! compile and runtime error messages, stack traces and exit codes follow
//! clox exactly, so clox's behaviour is the specification (the test suite
//! compares the two when `CLOX` names a clox binary).
//!
//! ```
//! use orc_lox::{InterpretResult, Vm};
//! # use std::io::Write;
//! # #[derive(Clone, Default)] struct Buf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
//! # impl Write for Buf {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.borrow_mut().write(b) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! let out = Buf::default();
//! let mut vm = Vm::with_output(Box::new(out.clone()), Box::new(std::io::sink()), false);
//! let src = "fun fib(n) { if (n < 2) return n; return fib(n - 2) + fib(n - 1); } print fib(10);";
//! assert_eq!(vm.interpret(src), InterpretResult::Ok);
//! assert_eq!(String::from_utf8(out.0.borrow().clone()).unwrap(), "55\n");
//! ```
//!
//! ## Pipeline
//!
//! [`scanner`] (tokens on demand) → `compiler` (single-pass Pratt parser
//! emitting bytecode, [`chunk::Op`]) → `vm` (the `interp` tier: a `match`
//! loop over the bytecode). `lox FILE` runs a script, `lox` alone is a REPL
//! whose globals persist between lines.
//!
//! ## Design for the JIT tiers (next session)
//!
//! The interpreter is the `interp` tier and the fallback; tiers 0
//! (Cranelift) and 1 (LLVM) will compile hot Lox functions through orc's
//! tiered layer (`src/tiered.rs` in the facade) from **one lowering of the
//! bytecode to Cranelift IR**. Everything below was chosen so that JIT'd
//! code and the interpreter share state without translation:
//!
//! * **Values** are NaN-boxed `u64`s ([`Value`], clox's `NAN_BOXING`):
//!   a number is any non-quiet-NaN bit pattern, so the fast path of
//!   arithmetic is "two `band`/`icmp`s, a `bitcast`, an `fadd`"; `nil`,
//!   `false`, `true` are three constants; objects are `SIGN|QNAN|pointer`.
//!   Truthiness is two compares. Inline fast paths cover numbers,
//!   comparisons, locals, globals, jumps and (later) cached field loads;
//!   everything else calls a runtime helper.
//! * **The value stack is one fixed allocation** (`STACK_MAX` slots, never
//!   reallocated) and a frame is `(closure, ip, base)`: slot `base` holds
//!   the callee, then the arguments, then locals and temporaries. The
//!   compiler computes every function's maximum depth (`max_slots`), so
//!   overflow is checked once per call (by the interpreter and by JIT'd
//!   prologues alike) and a JIT'd function knows its frame size. JIT'd code
//!   keeps Lox locals in their stack slots (values may be cached in
//!   registers between helper calls but are written back before any call
//!   that can collect, throw or deoptimize), so the collector's root scan,
//!   runtime-error traces and tier changes need no stack maps: a JIT'd
//!   activation is an ordinary `CallFrame` whose `ip` is updated
//!   (one store) before each helper call.
//! * **Calling convention** for compiled Lox functions:
//!   `extern "C" fn(vm: *mut Vm, base: *mut Value) -> u64` returning 0 or a
//!   "runtime error raised" status; arguments are already in `base[1..]`
//!   where the caller pushed them, and the result goes to `base[0]`, as the
//!   interpreter's `Return` does. Calls from JIT'd code to Lox functions go
//!   through orc's stubs (`jmp *[slot]`), so a function can tier up (or be
//!   interpreted) underneath its callers.
//! * **Runtime helpers** (slow paths: string concatenation, property
//!   lookup, calls of non-closures, closures and upvalue capture, class
//!   operations, printing, error reporting) will be `extern "C"` functions
//!   over `(*mut Vm, ...)` taking and returning raw `u64` values, wrapping
//!   the same Rust methods the interpreter uses; the runtime-error helper
//!   reports and resets exactly as `runtime_error` does here.
//! * **Globals** live in slots (an array indexed by a `u16` the compiler
//!   assigns, "undefined" marked by a reserved tag), not a hash table, so a
//!   global access is one load and one compare in JIT'd code.
//! * **GC roots** are precise: the value stack up to `sp`, the frames'
//!   closures, open upvalues, globals, the `init` string, and — while
//!   compiling — the constants of every function under construction.
//!   Collections happen only at safepoints after allocations, once the new
//!   object is rooted; JIT'd code reaches safepoints only inside helpers,
//!   after spilling to the shared stack, which is why it needs no maps.
//!   `LOX_GC_STRESS=1` collects at every safepoint.
//! * **Objects** all have one size (an enum, at most 64 bytes) and live in
//!   slabs with a free list, so allocation is a pop and a store, and an
//!   object's address never changes (JIT'd code may embed it while the
//!   object is reachable, e.g. the class of an inline cache). Field and
//!   method tables are keyed by interned strings and hashed by address.
//! * **Hotness** is not counted yet: the adaptive tier will add a call
//!   counter and a back-edge counter per function (the JIT session decides
//!   where, so the interpreter pays only for what tiering uses).
//!
//! ## Still to do for the JIT session
//!
//! A `--tier` other than `interp` needs: the lowering of [`chunk::Op`] to
//! Cranelift IR (operand formats and stack effects are documented per
//! instruction; `lox --dump FILE` prints a program's bytecode with each
//! function's `max_slots`), the `extern "C"` helper table, registering each
//! compiled function with orc's tiered layer behind a stub the closure
//! calls, and tier-up counters. Runtime errors from JIT'd code return the
//! error status up through the JIT'd frames to the interpreter loop, which
//! then returns `RuntimeError` exactly as now.
//!
//! Tier selection (`--tier interp|0|1|adaptive`) is accepted by the binary;
//! only `interp` exists yet, the others are refused with a clear error.

pub mod chunk;
mod compiler;
mod debug;
pub mod jit;
mod object;
pub mod scanner;
mod table;
pub mod value;
pub mod vm;

pub use value::Value;
pub use jit::{JitStats, LoxJit};
pub use vm::{InterpretResult, Vm};

/// An execution tier, as `--tier` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The bytecode interpreter.
    Interp,
    /// Every function compiled by Cranelift (orc's tier 0) on first entry.
    Tier0,
    /// Every function compiled by LLVM (orc's tier 1) on first entry.
    Tier1,
    /// Interpret; compile hot functions (and enter hot loops) with orc's
    /// adaptive tiering: tier 0 with counters, LLVM when hotter.
    Adaptive,
}

impl Tier {
    /// Parses a `--tier` argument.
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "interp" => Some(Tier::Interp),
            "0" => Some(Tier::Tier0),
            "1" => Some(Tier::Tier1),
            "adaptive" => Some(Tier::Adaptive),
            _ => None,
        }
    }

    /// Whether this build can run code in this tier (all can).
    pub fn is_implemented(self) -> bool {
        true
    }
}
