//! Cranelift IR -> LLVM IR: one lowering (a `cranelift_codegen::ir::Function`)
//! feeds both tiers. This module owns the public face of the translation: its
//! options, the resolver of external names, its error type, the pre-check and
//! the [`ClifLlvmModule`] that hands translated functions to the
//! [`LlvmCompiler`](crate::LlvmCompiler).
//!
//! Invariants: the semantics of a translated function are exactly
//! Cranelift's (x86-64 backend), including traps (`llvm.ubsantrap` with the
//! trap code's byte), and its ABI equals Cranelift's for the same signature.
//! Whatever cannot be translated that way is a [`TranslateError::Unsupported`]
//! naming it, and [`check_translatable`] finds the same error without LLVM:
//! [`translate_function`] runs it first, so the two always agree.
//!
//! Files: `check.rs` decides what is supported, `abi.rs` maps signatures,
//! `function.rs` walks blocks and control flow, `int.rs`, `float.rs`,
//! `memory.rs`, `calls.rs` and `simd.rs` lower the instructions.
//!
//! The `tail` convention is taken where its ABI is System V's (register
//! arguments only, at most one integer result), and `return_call` becomes
//! a `musttail` call between functions of one prototype.
//!
//! Known limits: other `tail` signatures and tail calls, `sret`
//! parameters, return areas (more than two integer or two float/vector
//! results), thread-local symbols, pinned registers,
//! exceptions (`try_call`), dynamic vectors, f16/f128 and float conversions
//! of i128 are [`TranslateError::Unsupported`]. A memory access without
//! `notrap` that faults in tier-1 code raises the same signal as in
//! Cranelift's code, but the fault address is not in any Cranelift trap
//! table.
//!
//! # Example
//!
//! ```
//! use orc_core::SymbolFlags;
//! use orc_llvm::{default_name_resolver, ClifLlvmModule, LlvmCompiler, LlvmConfig, TranslateConfig};
//!
//! let clif = "function %square(i64) -> i64 {
//! block0(v0: i64):
//!     v1 = imul v0, v0
//!     return v1
//! }";
//! let func = cranelift_reader::parse_functions(clif).unwrap().remove(0);
//! orc_llvm::check_translatable(&func, "square").unwrap();
//! let module = ClifLlvmModule::new("m", default_name_resolver(), TranslateConfig::default())
//!     .with_function("square", func, SymbolFlags::EXPORTED | SymbolFlags::CALLABLE);
//! let compiled = LlvmCompiler::new(LlvmConfig::default()).unwrap().compile(Box::new(module)).unwrap();
//! assert_eq!(compiled.functions[0].name, "square");
//! ```

mod abi;
mod calls;
mod check;
mod debug;
mod float;
mod function;
mod int;
mod memory;
mod simd;

pub use debug::DebugSource;

use std::sync::Arc;

use cranelift_codegen::ir;
use inkwell::context::Context;
use inkwell::module::{Linkage, Module};
use inkwell::values::FunctionValue;
use orc_core::SymbolFlags;

use crate::compiler::LlvmModule;

/// Options of a translation.
#[derive(Clone, Debug, Default)]
pub struct TranslateConfig {
    /// Cranelift's `enable_nan_canonicalization` setting: float results are
    /// canonical NaNs.
    pub nan_canonicalization: bool,
}

/// Maps the external names a function refers to (calls, `func_addr`,
/// `symbol_value`, `tls_value`) to the symbol names the LLVM module should
/// use. `None`: unresolvable, which makes the translation fail with
/// [`TranslateError::Invalid`].
pub type NameResolver =
    Arc<dyn Fn(&ir::Function, &ir::ExternalName) -> Option<String> + Send + Sync>;

/// The default resolver: `%name` (`ExternalName::TestCase`) -> `"name"`;
/// `u{ns}:{idx}` (`User`) -> `"u{ns}:{idx}"`; a libcall -> its C symbol
/// (`FloorF32` -> `"floorf"`, `Memcpy` -> `"memcpy"`); anything else `None`.
pub fn default_name_resolver() -> NameResolver {
    Arc::new(|func: &ir::Function, name: &ir::ExternalName| match name {
        ir::ExternalName::TestCase(t) => Some(String::from_utf8_lossy(t.raw()).into_owned()),
        ir::ExternalName::User(r) => {
            let user = func.params.user_named_funcs().get(*r)?;
            Some(format!("u{}:{}", user.namespace, user.index))
        }
        ir::ExternalName::LibCall(lc) => libcall_symbol(*lc).map(str::to_owned),
        ir::ExternalName::KnownSymbol(_) => None,
    })
}

/// The C symbol of a Cranelift libcall, where it has one.
fn libcall_symbol(lc: ir::LibCall) -> Option<&'static str> {
    use ir::LibCall as L;
    Some(match lc {
        L::CeilF32 => "ceilf",
        L::CeilF64 => "ceil",
        L::FloorF32 => "floorf",
        L::FloorF64 => "floor",
        L::TruncF32 => "truncf",
        L::TruncF64 => "trunc",
        L::NearestF32 => "nearbyintf",
        L::NearestF64 => "nearbyint",
        L::FmaF32 => "fmaf",
        L::FmaF64 => "fma",
        L::Memcpy => "memcpy",
        L::Memset => "memset",
        L::Memmove => "memmove",
        L::Memcmp => "memcmp",
        L::Probestack | L::ElfTlsGetAddr | L::ElfTlsGetOffset | L::X86Pshufb => return None,
    })
}

/// Why a function could not be translated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// Something the translation does not cover; `what` is the CLIF opcode
    /// name (e.g. "stack_switch"), or a short description ("type i8x16 in
    /// call signature", "call convention tail").
    #[error("cannot translate '{function}' to LLVM IR: unsupported {what}")]
    Unsupported {
        /// The symbol the function was to be defined as.
        function: String,
        /// What is not supported.
        what: String,
    },
    /// The function is not valid CLIF (dangling value, unknown name...), or
    /// LLVM rejected the result.
    #[error("cannot translate '{function}' to LLVM IR: {message}")]
    Invalid {
        /// The symbol the function was to be defined as.
        function: String,
        /// What is wrong.
        message: String,
    },
}

/// A cheap pre-check without LLVM: `Err(Unsupported)` naming the first
/// unsupported signature, type or instruction (in layout order). Anything it
/// accepts, [`translate_function`] translates, unless the function is
/// invalid CLIF or a name does not resolve.
pub fn check_translatable(func: &ir::Function, symbol: &str) -> Result<(), TranslateError> {
    check::check_function(func).map_err(|what| TranslateError::Unsupported {
        function: symbol.to_owned(),
        what,
    })
}

/// Adds `func` to `module` as a definition named `symbol` (external
/// linkage), declaring its callees and globals as external declarations
/// named by `names`. On error the module may hold a partial definition
/// that has been deleted again, and declarations it added.
pub fn translate_function<'ctx>(
    module: &Module<'ctx>,
    symbol: &str,
    func: &ir::Function,
    names: &NameResolver,
    config: &TranslateConfig,
) -> Result<FunctionValue<'ctx>, TranslateError> {
    check_translatable(func, symbol)?;
    function::translate(module, symbol, func, names, config, None)
}

/// [`translate_function`] with line information: the function gets a
/// DWARF subprogram in `source`'s file and its instructions the lines
/// their CLIF source locations name (see [`DebugSource`]).
pub fn translate_function_with_debug<'ctx>(
    module: &Module<'ctx>,
    symbol: &str,
    func: &ir::Function,
    names: &NameResolver,
    config: &TranslateConfig,
    source: &DebugSource,
) -> Result<FunctionValue<'ctx>, TranslateError> {
    check_translatable(func, symbol)?;
    function::translate(module, symbol, func, names, config, Some(source))
}

/// One function of a [`ClifLlvmModule`].
struct ClifFunction {
    symbol: String,
    func: ir::Function,
    flags: SymbolFlags,
    internal: bool,
}

/// An [`LlvmModule`] made of CLIF functions, translated on the compile
/// thread, so the [`LlvmLayer`](crate::LlvmLayer) and
/// [`LlvmCompiler`](crate::LlvmCompiler) compile it like any other module.
pub struct ClifLlvmModule {
    name: String,
    names: NameResolver,
    config: TranslateConfig,
    functions: Vec<ClifFunction>,
    debug: Option<DebugSource>,
}

impl ClifLlvmModule {
    /// An empty module called `name`, resolving external names with `names`.
    pub fn new(name: impl Into<String>, names: NameResolver, config: TranslateConfig) -> Self {
        ClifLlvmModule {
            name: name.into(),
            names,
            config,
            functions: Vec::new(),
            debug: None,
        }
    }

    /// Gives the module's functions line information from `source` (see
    /// [`DebugSource`]).
    pub fn with_debug_source(mut self, source: DebugSource) -> Self {
        self.debug = Some(source);
        self
    }

    /// Adds `func`, defined under `symbol` with `flags`.
    pub fn with_function(
        mut self,
        symbol: impl Into<String>,
        func: ir::Function,
        flags: SymbolFlags,
    ) -> Self {
        self.functions.push(ClifFunction {
            symbol: symbol.into(),
            func,
            flags,
            internal: false,
        });
        self
    }

    /// Adds `func` under `symbol` with internal linkage: callable from the
    /// module's other functions, not among its [`LlvmModule::symbols`].
    pub fn with_internal_function(mut self, symbol: impl Into<String>, func: ir::Function) -> Self {
        self.functions.push(ClifFunction {
            symbol: symbol.into(),
            func,
            flags: SymbolFlags::NONE,
            internal: true,
        });
        self
    }

    /// Checks every function with [`check_translatable`].
    pub fn check(&self) -> Result<(), TranslateError> {
        self.functions
            .iter()
            .try_for_each(|f| check_translatable(&f.func, &f.symbol))
    }

    /// Translates every function into a new module of `context`.
    pub fn translate<'ctx>(&self, context: &'ctx Context) -> Result<Module<'ctx>, TranslateError> {
        let module = context.create_module(&self.name);
        for f in &self.functions {
            check_translatable(&f.func, &f.symbol)?;
            let value = function::translate(
                &module,
                &f.symbol,
                &f.func,
                &self.names,
                &self.config,
                self.debug.as_ref(),
            )?;
            if f.internal {
                value.set_linkage(Linkage::Internal);
            }
        }
        Ok(module)
    }
}

impl std::fmt::Debug for ClifLlvmModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let symbols: Vec<&str> = self.functions.iter().map(|f| f.symbol.as_str()).collect();
        f.debug_struct("ClifLlvmModule")
            .field("name", &self.name)
            .field("functions", &symbols)
            .field("config", &self.config)
            .finish()
    }
}

impl LlvmModule for ClifLlvmModule {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.functions
            .iter()
            .filter(|f| !f.internal)
            .map(|f| (f.symbol.clone(), f.flags))
            .collect()
    }

    fn build<'ctx>(self: Box<Self>, context: &'ctx Context) -> Result<Module<'ctx>, String> {
        self.translate(context).map_err(|e| e.to_string())
    }
}
