//! LLVM IR files (`.ll` text or `.bc` bitcode) as an orc frontend: what
//! `orc run PROG.ll` uses to behave like `lli`.
//!
//! [`IrProgram::load`] reads, parses and verifies a module once (invalid IR
//! is an [`IrError::Invalid`] carrying LLVM's diagnostic with `FILE:LINE:COL`
//! where LLVM gives one), and prepares it for splitting. [`IrProgram::add`]
//! puts it on a JIT in one of two ways:
//!
//! - [`LoadMode::Lazy`] (the default of `orc run`): split the way LLVM's
//!   CompileOnDemandLayer does. The data (global variables, constructor and
//!   destructor tables) is compiled at once and added as an object, so the
//!   object-linking layer knows its initializers; each function definition
//!   defines the body `NAME$t1` in the bodies dylib, and `NAME` in the main
//!   dylib is a lazy stub for it. Bodies call each other (and take
//!   addresses) through the stubs, so function pointers are the stubs. A
//!   local (static) function whose address is never taken and whose callers
//!   are all in one unit is compiled in that unit as an internal function,
//!   with no unit or stub of its own (see `orc_llvm::partition`).
//!
//!   The bodies not compiled yet form one unit, which, like the
//!   CompileOnDemandLayer's partitioning, compiles the functions a lookup
//!   asks for together with the small functions their code refers to
//!   (calls, takes the address of, or reaches through a table of function
//!   pointers) that are not compiled yet, within [`SpeculationLimits`], and
//!   hands the rest back as a new unit. Each unit has a fixed cost (about
//!   1 ms), so this is what keeps lazy mode as fast as compiling the whole
//!   module; and a function is still compiled only once code that can reach
//!   it is: one nothing compiled refers to is never compiled. If a batch
//!   fails, the functions asked for are compiled alone, so a callee that
//!   cannot be compiled fails only when it is called.
//! - [`LoadMode::Eager`]: the whole module is compiled at once into one
//!   object in the bodies dylib; its exported functions are re-exported
//!   into the main dylib under their own names.
//!
//! In both modes the caller then runs the initializers of the bodies dylib
//! (`ObjectLinkingLayer::run_initializers`: `llvm.global_ctors`), calls
//! `main` from the main dylib, and ends the session (or removes the
//! tracker), which runs `atexit` handlers and `llvm.global_dtors`.
#![deny(unsafe_code)]

mod diagnostic;
mod program;
mod tiered;
#[allow(unsafe_code)]
pub mod to_clif;

pub use diagnostic::{IrDiagnostic, IrError};
pub use orc_llvm::partition::SpeculationLimits;
pub use program::{body_symbol, IrProgram, IrTarget, LoadMode};
pub use tiered::IrFunction;
