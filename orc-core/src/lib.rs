//! The language-agnostic core of orc: LLVM ORC's session model (symbols,
//! JIT dylibs, lookups, materialization units, resource trackers) and the
//! JIT linker that loads relocatable objects into the process.
//!
//! This crate knows no IR: code generators plug in as materialization units
//! and layers that produce objects for the linker.

pub mod link;
pub mod memory;
mod symbol;

pub use symbol::{
    ExecutorAddr, ExecutorSymbolDef, SymbolFlags, SymbolFlagsMap, SymbolMap, SymbolName,
    SymbolStringPool,
};
