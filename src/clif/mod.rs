//! CLIF programs on a [`Jit`]: a parsed file's functions defined under
//! their symbols, and calls into them with any signature through the test
//! trampoline.
//!
//! [`define_clif_functions`] is the one place that decides which tier
//! compiles a file's functions. [`ClifProgram`] owns the JIT; its
//! [`ClifProgram::call`] compiles (once per signature, always with tier 0)
//! a trampoline from `orc_clif::trampoline`, fills 16-byte argument slots,
//! calls the trampoline with the function's address while the JIT is
//! pinned, and reads the results back from the slots.
//! [`ClifProgram::run_directive`] (in `directive.rs`) runs a `; run:` /
//! `; print:` directive with the semantics of Cranelift's own runner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod directive;

pub use directive::{DisplayValues, Outcome};

use orc_clif::{trampoline, ClifError, ClifFile, DataValue, FileSettings, ValuesError};
use orc_core::{ExecutorAddr, SymbolFlags};
use orc_cranelift::codegen::ir::{Function, Signature};
use orc_cranelift::codegen::settings::OptLevel as ClifOptLevel;
use orc_cranelift::{testcase_name_resolver, FunctionModule, OptLevel};
use orc_llvm::{
    check_translatable, default_name_resolver, ClifLlvmModule, TranslateConfig, TranslateError,
};

use crate::{Jit, JitBuilder, Tier};

/// Why a CLIF program could not be loaded or a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClifRunError {
    /// The file is not valid (parse, directives, names, settings).
    #[error(transparent)]
    Load(#[from] ClifError),
    /// The JIT could not be built or code could not be added or linked.
    #[error("{context}: {source}")]
    Jit {
        /// What was being done.
        context: String,
        /// The core's error.
        #[source]
        source: orc_core::Error,
    },
    /// No function of the program defines this symbol.
    #[error("no function {0} in the program")]
    NoFunction(String),
    /// Arguments or results do not match a signature.
    #[error("function {symbol}: {source}")]
    Values {
        /// The function called.
        symbol: String,
        /// The mismatch.
        #[source]
        source: ValuesError,
    },
    /// The function trapped (the JIT and the program stay usable).
    #[error(transparent)]
    Trap(#[from] orc_core::Trap),
    /// The chosen tier cannot compile this function.
    #[error("function {symbol}: {reason}")]
    NotCompiled {
        /// The function.
        symbol: String,
        /// Why.
        #[source]
        reason: Unavailable,
    },
}

/// Why the chosen tier cannot compile a function.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// Cranelift's x86-64 backend lacks something with orc's settings (see
    /// [`orc_clif::tier0_obstacle`]).
    #[error("tier 0 cannot compile it: {0}")]
    Tier0(String),
    /// The CLIF-to-LLVM translation does not cover it; the message names
    /// the instruction or type.
    #[error(transparent)]
    Tier1(Arc<TranslateError>),
}

/// What [`define_clif_functions`] did.
#[derive(Debug, Default, Clone)]
pub struct DefinedFunctions {
    /// The functions the chosen tier cannot compile, with the reason. They
    /// are not defined (so calls to them fail to link) unless another tier
    /// stands in (tier 0 for what tier 1 cannot translate), but calling
    /// them directly is a [`ClifRunError::NotCompiled`] error, so a test of
    /// the tier never passes on another tier's code.
    pub not_compiled: HashMap<String, Unavailable>,
}

/// Defines each `(symbol, function)` in `jit`'s `main` dylib with the tier
/// the JIT is configured for, each as a module `NAME:SYMBOL` of its own;
/// then `jit.lookup(symbol)` gives a function's address. Nothing is
/// compiled until a symbol is looked up. Calls between the functions, and
/// to host and process symbols, bind by symbol (`%foo` is `foo`; see
/// [`orc_clif::function_symbol`]).
pub fn define_clif_functions(
    jit: &Jit,
    name: &str,
    functions: Vec<(String, Function)>,
    settings: &FileSettings,
) -> Result<DefinedFunctions, ClifRunError> {
    match jit.config().tier {
        Tier::Zero => define_tier0(jit, name, functions, settings),
        Tier::One => define_tier1(jit, name, functions, settings),
        Tier::Adaptive => define_adaptive(jit, name, functions, settings),
    }
}

/// Each function is a module of its own (`FILE:SYMBOL`), so one that
/// Cranelift rejects fails only the lookups that need it; calls between
/// them bind by symbol when they are linked. Functions Cranelift would
/// panic on (see [`orc_clif::tier0_obstacle`]) are not defined.
fn define_tier0(
    jit: &Jit,
    name: &str,
    functions: Vec<(String, Function)>,
    settings: &FileSettings,
) -> Result<DefinedFunctions, ClifRunError> {
    let mut defined = DefinedFunctions::default();
    let flags = jit.cranelift_layer().compiler().isa().flags().clone();
    for (symbol, func) in functions {
        let Some(func) = for_tier0(&mut defined, &symbol, func, &flags, settings) else {
            continue;
        };
        let module_name = format!("{name}:{symbol}");
        add_tier0(jit, module_name.clone(), symbol, func).map_err(|source| ClifRunError::Jit {
            context: format!("cannot add {module_name}"),
            source,
        })?;
    }
    Ok(defined)
}

/// Tier 1: each function translatable to LLVM IR is a module of its own
/// (`FILE:SYMBOL`), optimized by the JIT's LLVM settings. A function the
/// translation does not cover is compiled by tier 0 instead, so its callers
/// still link, and recorded as not compiled, so its own directives fail
/// naming what the translation lacks.
fn define_tier1(
    jit: &Jit,
    name: &str,
    functions: Vec<(String, Function)>,
    settings: &FileSettings,
) -> Result<DefinedFunctions, ClifRunError> {
    let jit_err = |context: String| move |source| ClifRunError::Jit { context, source };
    let layer = jit
        .llvm_layer()
        .map_err(jit_err("cannot start tier 1".to_owned()))?;
    let config = TranslateConfig {
        nan_canonicalization: settings.nan_canonicalization,
    };
    let mut defined = DefinedFunctions::default();
    let mut tier0 = Vec::new();
    for (symbol, func) in functions {
        if let Err(e) = check_translatable(&func, &symbol) {
            defined
                .not_compiled
                .insert(symbol.clone(), Unavailable::Tier1(Arc::new(e)));
            tier0.push((symbol, func));
            continue;
        }
        let module_name = format!("{name}:{symbol}");
        let module =
            ClifLlvmModule::new(module_name.clone(), default_name_resolver(), config.clone())
                .with_function(symbol, func, SymbolFlags::EXPORTED | SymbolFlags::CALLABLE);
        layer
            .add(jit.main_dylib(), Box::new(module), None)
            .map_err(jit_err(format!("cannot add {module_name}")))?;
    }
    let stand_ins = define_tier0(jit, name, tier0, settings)?;
    for (symbol, reason) in stand_ins.not_compiled {
        defined.not_compiled.entry(symbol).or_insert(reason);
    }
    Ok(defined)
}

/// Adaptive: every function goes to the tiered layer ([`Jit::tiered`])
/// behind a stub of its symbol; it starts in tier 0 and, once hot, is
/// translated to LLVM IR (a function the translation does not cover stays
/// in tier 0, named in `--stats`). Functions tier 0 cannot compile are not
/// defined, as with [`Tier::Zero`].
fn define_adaptive(
    jit: &Jit,
    _name: &str,
    functions: Vec<(String, Function)>,
    settings: &FileSettings,
) -> Result<DefinedFunctions, ClifRunError> {
    let jit_err = |context: String| move |source| ClifRunError::Jit { context, source };
    let mut defined = DefinedFunctions::default();
    let flags = jit.cranelift_layer().compiler().isa().flags().clone();
    let layer = jit.tiered();
    layer.set_translate_config(TranslateConfig {
        nan_canonicalization: settings.nan_canonicalization,
    });
    let mut defs = Vec::new();
    for (symbol, func) in functions {
        let Some(mut func) = for_tier0(&mut defined, &symbol, func, &flags, settings) else {
            continue;
        };
        // The layer's own user names (namespace 0: its function ids) are
        // not the file's: the file's `u1:2` becomes the symbol `u1:2`.
        orc_clif::user_names_as_symbols(&mut func);
        let id = layer
            .declare(&symbol)
            .map_err(jit_err(format!("cannot declare {symbol}")))?;
        defs.push((id, func));
    }
    layer
        .define(defs)
        .map_err(jit_err("cannot define the functions".to_owned()))?;
    Ok(defined)
}

/// `func` as tier 0 takes it (NaNs canonicalized if the file says so), or
/// `None` with the reason recorded in `defined` when Cranelift's backend
/// cannot compile it.
fn for_tier0(
    defined: &mut DefinedFunctions,
    symbol: &str,
    mut func: Function,
    flags: &orc_cranelift::codegen::settings::Flags,
    settings: &FileSettings,
) -> Option<Function> {
    if let Some(reason) = orc_clif::tier0_obstacle(&func, flags) {
        defined
            .not_compiled
            .insert(symbol.to_owned(), Unavailable::Tier0(reason));
        return None;
    }
    if settings.nan_canonicalization {
        orc_clif::canonicalize_nans(&mut func);
    }
    Some(func)
}

/// Adds `func` under `symbol` as the tier-0 module `module_name`.
fn add_tier0(
    jit: &Jit,
    module_name: String,
    symbol: String,
    func: Function,
) -> Result<(), orc_core::Error> {
    let module = FunctionModule::new(module_name, testcase_name_resolver()).with_function(
        symbol,
        func,
        SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
    );
    jit.cranelift_layer()
        .add(jit.main_dylib(), Box::new(module), None)
}

/// A CLIF file's functions in a JIT of their own, ready to call.
pub struct ClifProgram {
    jit: Jit,
    signatures: HashMap<String, Signature>,
    defined: DefinedFunctions,
    /// Per signature, the address of its trampoline (compiled on first
    /// use), or why it could not be compiled.
    trampolines: Mutex<HashMap<Signature, Result<ExecutorAddr, orc_core::Error>>>,
}

impl ClifProgram {
    /// Builds a JIT with `builder` and defines `file`'s functions in it. A
    /// file's `set opt_level` applies unless `builder` sets a level.
    pub fn load(file: &ClifFile, builder: JitBuilder) -> Result<ClifProgram, ClifRunError> {
        let builder = match (builder.config().opt_level, file.settings.opt_level) {
            (None, Some(level)) => builder.opt_level(match level {
                ClifOptLevel::None => OptLevel::None,
                ClifOptLevel::Speed => OptLevel::Speed,
                ClifOptLevel::SpeedAndSize => OptLevel::SpeedAndSize,
            }),
            _ => builder,
        };
        let jit = builder.build().map_err(|source| ClifRunError::Jit {
            context: "cannot start the JIT".to_owned(),
            source,
        })?;
        let functions: Vec<(String, Function)> = file
            .functions
            .iter()
            .map(|f| (f.symbol.clone(), f.func.clone()))
            .collect();
        let signatures = file
            .functions
            .iter()
            .map(|f| (f.symbol.clone(), f.func.signature.clone()))
            .collect();
        let defined = define_clif_functions(&jit, &file.name, functions, &file.settings)?;
        Ok(ClifProgram {
            jit,
            signatures,
            defined,
            trampolines: Mutex::new(HashMap::new()),
        })
    }

    /// The JIT the program runs in.
    pub fn jit(&self) -> &Jit {
        &self.jit
    }

    /// The signature of the function defining `symbol`.
    pub fn signature(&self, symbol: &str) -> Option<&Signature> {
        self.signatures.get(symbol)
    }

    /// Calls the function defining `symbol` with `args` (checked against
    /// its signature) and returns its results. Compiles what the call
    /// needs first. A function the JIT's tier cannot compile is a
    /// [`ClifRunError::NotCompiled`] error.
    ///
    /// # Safety
    ///
    /// CLIF code is machine code with raw loads, stores and calls; orc
    /// checks the arguments' number and types, not what the code does with
    /// them. The caller must know that this function, and what it calls,
    /// stays within memory it may use for these arguments (a CLIF function
    /// that only computes on its arguments and its own stack slots does).
    /// A trap in JIT'd code is caught: [`ClifRunError::Trap`].
    pub unsafe fn call(
        &self,
        symbol: &str,
        args: &[DataValue],
    ) -> Result<Vec<DataValue>, ClifRunError> {
        let sig = self
            .signatures
            .get(symbol)
            .ok_or_else(|| ClifRunError::NoFunction(symbol.to_owned()))?;
        if let Some(reason) = self.defined.not_compiled.get(symbol) {
            return Err(ClifRunError::NotCompiled {
                symbol: symbol.to_owned(),
                reason: reason.clone(),
            });
        }
        let values_err = |source| ClifRunError::Values {
            symbol: symbol.to_owned(),
            source,
        };
        let mut slots = orc_clif::encode_args(args, sig).map_err(values_err)?;
        // The trampoline is tier-0 code whatever the tier of the callee.
        let flags = self.jit.cranelift_layer().compiler().isa().flags();
        if let Some(reason) = orc_clif::signature_obstacle(sig, flags) {
            return Err(ClifRunError::NotCompiled {
                symbol: symbol.to_owned(),
                reason: Unavailable::Tier0(format!("its call trampoline: {reason}")),
            });
        }
        let tramp = self.trampoline(sig).map_err(|e| match e {
            TrampolineError::Values(source) => values_err(source),
            TrampolineError::Run(e) => e,
        })?;
        let callee = self
            .jit
            .lookup(symbol)
            .map_err(|source| ClifRunError::Jit {
                context: format!("cannot link {symbol}"),
                source,
            })?;
        // SAFETY: `tramp` is the code of `trampoline::build(sig)`, whose
        // signature is `(i64, i64)` in the System V convention: on x86-64
        // exactly `extern "C" fn(*const u8, *mut u128)`. Calling it stays
        // unsafe (see below).
        let tramp: unsafe extern "C" fn(*const u8, *mut u128) =
            unsafe { std::mem::transmute(tramp.to_ptr::<u8>()) };
        {
            let _inside = self.jit.enter();
            // SAFETY: `callee` is the function defined for `symbol`, whose
            // signature is `sig`, the one the trampoline calls it with;
            // `slots` holds `slot_count(sig)` 16-byte-aligned slots, which
            // covers every argument the trampoline loads and every result
            // it stores, and lives across the call. The JIT is pinned, so
            // neither the trampoline nor the callee is freed while they
            // run. What the callee itself does is our caller's contract
            // (see `# Safety`).
            let slots = slots.as_mut_ptr();
            // SAFETY: (catch_traps) the closure owns only a pointer and an
            // address: a trap leaks nothing.
            unsafe { orc_core::catch_traps(|| tramp(callee.to_ptr::<u8>(), slots)) }?;
        }
        orc_clif::decode_results(&slots, sig).map_err(values_err)
    }

    fn trampoline(&self, sig: &Signature) -> Result<ExecutorAddr, TrampolineError> {
        let mut trampolines = self
            .trampolines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let jit_err = |source| {
            TrampolineError::Run(ClifRunError::Jit {
                context: "cannot compile a call trampoline".to_owned(),
                source,
            })
        };
        if let Some(known) = trampolines.get(sig) {
            return known.clone().map_err(jit_err);
        }
        let symbol = format!("$orc.clif.trampoline.{}", trampolines.len());
        let func = trampoline::build(sig, &symbol).map_err(TrampolineError::Values)?;
        let addr = add_tier0(&self.jit, symbol.clone(), symbol.clone(), func)
            .and_then(|()| self.jit.lookup(&symbol));
        // A failure is kept: the symbol stays defined (in its error
        // state), so compiling it again is not possible.
        trampolines.insert(sig.clone(), addr.clone());
        addr.map_err(jit_err)
    }
}

impl std::fmt::Debug for ClifProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClifProgram")
            .field("jit", &self.jit)
            .field("functions", &self.signatures.len())
            .finish()
    }
}

enum TrampolineError {
    Values(ValuesError),
    Run(ClifRunError),
}

#[cfg(test)]
mod tests;
