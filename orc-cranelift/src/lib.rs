//! Tier 0 of orc: Cranelift IR to relocatable objects, linked by the core's
//! JIT linker.
//!
//! A frontend describes a module as a [`CraneliftModule`]: the symbols it
//! will define and a `build` step that declares and defines functions on a
//! `cranelift_module::Module`. The [`CraneliftCompiler`] turns it into an
//! ELF object with unwind info; the [`CraneliftLayer`] does that on demand
//! and links the result through the core's object-linking layer.

mod compiler;
pub mod debug_lines;
mod error;
mod functions;
mod layer;
pub mod osr;
mod profile;

pub use compiler::{
    CompiledObject, CounterProvider, CraneliftCompiler, CraneliftConfig, CraneliftModule, FnModule,
    FunctionReport, OptLevel,
};
pub use debug_lines::LineSource;
pub use error::CompileError;
pub use functions::{testcase_name_resolver, FunctionModule, NameResolver};
pub use layer::{CompileObserver, CompileStats, CraneliftLayer, MAX_FUNCTION_REPORTS};

/// Re-exported so frontends build against the same Cranelift version.
pub use cranelift_codegen as codegen;
/// Re-exported so frontends build against the same Cranelift version.
pub use cranelift_frontend as frontend;
/// Re-exported so frontends build against the same Cranelift version.
pub use cranelift_module as module;
