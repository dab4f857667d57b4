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
//! loop over the bytecode) and [`jit`] (the JIT tiers). `lox FILE` runs a
//! script, `lox` alone is a REPL whose globals persist between lines.
//!
//! ## Tiers
//!
//! `lox --tier interp|0|1|adaptive` (default `adaptive`):
//!
//! * `interp`: the bytecode interpreter only.
//! * `0`: every Lox function is compiled by Cranelift (orc's tier 0) on
//!   its first entry (the script included), and runs compiled.
//! * `1`: the same through LLVM (orc's tier 1: the tiered layer's
//!   translation of the same Cranelift IR to LLVM IR).
//! * `adaptive`: interpret; a function whose calls plus loop back-edges
//!   pass `LOX_JIT_THRESHOLD` (default [`DEFAULT_JIT_THRESHOLD`]) is
//!   compiled through orc's tiered layer under `Tier::Adaptive` (tier 0
//!   with counters; orc promotes it to LLVM past `LOX_TIER1_THRESHOLD`,
//!   default [`DEFAULT_TIER1_THRESHOLD`], and moves its looping tier-0
//!   frames to tier 1 by on-stack replacement). A hot loop is entered from
//!   the interpreter at its header: a compiled function takes the bytecode
//!   offset to start at (0 or a loop header), since every Lox value of a
//!   frame lives in the VM stack there.
//!
//! A VM gets a JIT with [`Vm::set_jit`]; one [`LoxJit`] (an `Arc`) can
//! serve many VMs on many threads. A dropped VM releases its compiled code
//! (`TieredLayer::remove`).
//!
//! ```
//! use orc_lox::{InterpretResult, LoxJit, Tier, Vm};
//! let jit = LoxJit::new(Tier::Tier0).unwrap();
//! let mut vm = Vm::with_output(Box::new(std::io::sink()), Box::new(std::io::sink()), false);
//! vm.set_jit(jit.clone());
//! let src = "fun fib(n) { if (n < 2) return n; return fib(n - 2) + fib(n - 1); } fib(15);";
//! assert_eq!(vm.interpret(src), InterpretResult::Ok);
//! assert_eq!(vm.jit_stats().compiled, 2); // the script and fib
//! assert_eq!(jit.live_functions(), 2);
//! drop(vm);
//! assert_eq!(jit.live_functions(), 0);
//! ```
//!
//! ## How JIT'd code and the interpreter share the VM
//!
//! * **Values** are NaN-boxed `u64`s ([`Value`], clox's `NAN_BOXING`):
//!   a number is any non-quiet-NaN bit pattern, so the fast path of
//!   arithmetic is "two `band`/`icmp`s, a `bitcast`, an `fadd`"; `nil`,
//!   `false`, `true` are three constants; objects are `SIGN|QNAN|pointer`.
//!   A NaN made by arithmetic is x86's default NaN (printed `-nan`, as
//!   clox prints it) in every tier, also where LLVM folds constants.
//! * **The value stack is one fixed allocation** (`STACK_MAX` slots, never
//!   reallocated), and so is the **frame array** (`FRAMES_MAX` frames of
//!   `(closure, ip, base)`; JIT'd code pushes and pops frames in place).
//!   Slot `base` holds the callee, then the arguments, then locals and
//!   temporaries; the compiler computes every function's maximum depth
//!   (`max_slots`), so overflow is checked once per call (by the
//!   interpreter and by JIT'd calls alike), and the depth at each
//!   instruction is static, so JIT'd code addresses slot `k` as
//!   `stack[base + k]`.
//! * **One lowering** (`jit::lower`) turns a function's bytecode into
//!   Cranelift IR: `extern "C" fn(vm, base, at) -> status` runs the frame
//!   on top of the frame array from offset `at` to its return, pops it and
//!   leaves the result in slot `base`. Inline fast paths: numbers
//!   (arithmetic and comparisons with NaN-box checks), equality,
//!   truthiness, locals, globals (a slot array; "undefined" is a reserved
//!   tag), jumps and loops, returns, and calls of closures whose function
//!   is compiled (the type tag, arity, frame and stack checks, the frame
//!   push, an indirect call through the function's entry: its tiered stub,
//!   so tier-up reaches callers; a class's instance is made by a helper and
//!   its `init` called the same way). Property gets and sets and method
//!   calls go through lookup helpers with a per-site inline cache (the
//!   table entry where the name was found last). Values are cached in SSA values within a
//!   basic block and written back before any helper call that reads the
//!   stack, allocates, can fail or runs code, before calls and at block
//!   ends. Everything else calls a runtime helper (`jit::helpers`):
//!   `extern "C"` functions over `(*mut Vm, u64, u64) -> u64` registered
//!   with the JIT by name (`Jit::define_host_function`), wrapping the
//!   interpreter's own methods. A helper that calls a non-compiled Lox
//!   function runs the interpreter on it (nested) until it returns.
//! * **Runtime errors**: before a helper that can fail, JIT'd code stores
//!   its frame's `ip` (and the stack top), so the helper reports the error
//!   and prints the trace exactly as the interpreter does, then resets the
//!   VM and returns status 1, which every JIT'd frame returns at once.
//!   Stack overflow is detected at `FRAMES_MAX` frames as in clox.
//! * **GC roots** are precise: the value stack up to `sp`, the frames'
//!   closures, open upvalues, globals, the `init` string, and — while
//!   compiling — the constants of every function under construction.
//!   Collections happen only at safepoints after allocations, inside
//!   helpers, after JIT'd code spilled its frame: no stack maps.
//!   `LOX_GC_STRESS=1` collects at every safepoint.
//! * **Objects** all have one size (an enum, at most 64 bytes, `repr(u8)`
//!   so JIT'd code reads the type tag at a fixed offset) and live in slabs
//!   with a free list, so an object's address never changes and compiled
//!   code may embed constants (strings, functions) of its function.
//!
//! `LOX_JIT_DEBUG=1` reports functions the JIT cannot compile (they stay
//! interpreted), `LOX_DUMP_CLIF=1` prints each function's CLIF,
//! `LOX_DUMP_LLVM=1` the optimized LLVM IR of tier-1 code,
//! `LOX_LLVM_OPT=0..3` sets LLVM's optimization level.

pub mod chunk;
mod compiler;
mod debug;
pub mod jit;
mod object;
pub mod scanner;
mod table;
pub mod value;
pub mod vm;

pub use jit::{JitStats, LoxJit, DEFAULT_JIT_THRESHOLD, DEFAULT_TIER1_THRESHOLD};
pub use value::Value;
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
