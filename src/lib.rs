//! orc: a JIT-compiler construction kit on LLVM ORC's model, with a
//! Cranelift tier 0 and an LLVM tier 1.
//!
//! This facade re-exports the crates of the workspace. The README follows
//! (its examples are compiled and run as doctests).
#![doc = include_str!("../README.md")]

pub use orc_core as core;
