//! orc: a JIT-compiler construction kit on LLVM ORC's model, with a
//! Cranelift tier 0 and an LLVM tier 1.
//!
//! This facade re-exports the crates of the workspace.

pub use orc_core as core;
