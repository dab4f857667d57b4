//! orc: a JIT-compiler construction kit on LLVM ORC's model, with a
//! Cranelift tier 0 and an LLVM tier 1.
//!
//! This facade assembles the workspace's crates into a ready JIT
//! ([`Jit`], built with [`JitBuilder`]) and runs Kaleidoscope on it
//! ([`KaleidoscopeJit`]). The README follows (its examples are compiled
//! and run as doctests).
#![doc = include_str!("../README.md")]

pub mod asm;
pub mod clif;
pub mod embed;
pub mod host;
mod jit;
mod kaleidoscope_jit;
pub mod llvm_ir;
pub mod oop;
mod tiered;

pub use embed::{Error, Func, HostFunction, Module, Trap, TrapKind};
pub use jit::{
    DumpOptions, Jit, JitBuilder, JitConfig, LazyLlvmLayer, Tier, DEFAULT_TIER_THRESHOLD,
};
pub use kaleidoscope_jit::{
    body_symbol, tier_body_symbol, KalArgs, KalFunction, KaleidoscopeError, KaleidoscopeJit,
    RuntimeError, SourceMap,
};
pub use tiered::{ClifProducer, Tier1Lowering, TieredLayer};

pub use orc_clif as clif_frontend;
pub use orc_core as core;
pub use orc_cranelift as cranelift;
pub use orc_kaleidoscope as kaleidoscope;
pub use orc_llvm as llvm;
