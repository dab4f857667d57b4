//! Tier 1 of orc: LLVM IR (through inkwell, LLVM 19) compiled to optimized
//! relocatable objects for the core's JIT linker.
//!
//! A frontend describes a module as an [`LlvmModule`]: the symbols it will
//! define and a `build` step that creates the `inkwell` module in a context
//! the compiler owns. inkwell values are not `Send`, so the module is built
//! on the compile thread, in a fresh `Context` per compile. The
//! [`LlvmCompiler`] verifies it, runs the new pass manager (`default<O2>`
//! unless configured otherwise), and emits an ELF object for the host CPU;
//! the [`LlvmLayer`] does that on demand and links the result through the
//! core's object-linking layer. [`partition`] holds the module surgery that
//! splits a module per function the way LLVM's CompileOnDemandLayer does.
//! [`translate`] turns Cranelift IR into LLVM IR with Cranelift's exact
//! semantics and ABI, so one lowering feeds both tiers
//! ([`ClifLlvmModule`]).
//!
//! Failure policy: a module that fails to build or verify, that LLVM
//! reports an error diagnostic for, or that makes LLVM stop with a fatal
//! error while optimizing or generating code (backend failures such as
//! "Cannot select") is an error for its unit only
//! ([`CompileError::Fatal`]); the process and later compiles go on.
//! Unverified IR never reaches the optimizer or code generator. A fatal
//! error leaks the memory of the compile it stopped.
//!
//! # Example
//!
//! ```
//! use orc_llvm::{FnLlvmModule, LlvmCompiler, LlvmConfig};
//! use orc_core::SymbolFlags;
//!
//! let compiler = LlvmCompiler::new(LlvmConfig::default()).unwrap();
//! let module = FnLlvmModule::new(
//!     "answer",
//!     vec![("answer".into(), SymbolFlags::EXPORTED | SymbolFlags::CALLABLE)],
//!     |ctx| {
//!         let m = ctx.create_module("answer");
//!         let i32t = ctx.i32_type();
//!         let f = m.add_function("answer", i32t.fn_type(&[], false), None);
//!         let b = ctx.create_builder();
//!         b.position_at_end(ctx.append_basic_block(f, "entry"));
//!         b.build_return(Some(&i32t.const_int(42, false))).map_err(|e| e.to_string())?;
//!         Ok(m)
//!     },
//! );
//! let compiled = compiler.compile(module).unwrap();
//! assert_eq!(compiled.functions[0].name, "answer");
//! assert!(compiled.functions[0].code_size > 0);
//! ```

mod compiler;
mod diagnostics;
mod error;
mod fatal;
mod layer;
#[cfg(target_arch = "x86_64")]
mod native_target;
pub mod partition;
pub mod translate;

pub use compiler::{
    host_target, CompiledObject, FnLlvmModule, FunctionReport, HostTarget, IrBufferModule,
    LlvmCompiler, LlvmConfig, LlvmModule, LlvmOptLevel, PhaseTimes,
};
pub use error::{CompileError, CompileStage};
pub use layer::{CompileObserver, CompileStats, LlvmLayer, MAX_FUNCTION_REPORTS};
pub use translate::{
    check_translatable, default_name_resolver, translate_function, translate_function_with_debug,
    ClifLlvmModule, DebugSource, NameResolver, TranslateConfig, TranslateError,
};

/// Re-exported so frontends build against the same inkwell (and LLVM).
pub use inkwell;
