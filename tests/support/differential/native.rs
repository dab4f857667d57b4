//! Compiling a generated case in-process: one session with a dylib for
//! the cases, the Cranelift layer (tier 0) and, for the translation, the
//! LLVM layer. Each case is linked under its own resource tracker and
//! symbol names, and removed when it is done.
//!
//! Every function is called through the test trampoline of `orc-clif`,
//! compiled by Cranelift: `tramp(callee: i64, values: i64)` loads the
//! arguments from 16-byte slots at `values`, calls `callee` with the case's
//! signature and stores the results back into the first slots. One
//! trampoline serves both tiers, so the tier-1 code is entered exactly as
//! Cranelift code calls it.

use std::sync::Arc;

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{Function, Signature};
use cranelift_module::{Linkage, Module};
use orc_core::link::ObjectLinkingLayer;
use orc_core::{ExecutionSession, JitDylib, ResourceTracker, SymbolFlags};
use orc_cranelift::{CraneliftCompiler, CraneliftConfig, CraneliftLayer, FnModule, OptLevel};
use orc_llvm::{
    check_translatable, ClifLlvmModule, LlvmCompiler, LlvmConfig, LlvmLayer, NameResolver,
    TranslateConfig, TranslateError,
};

use super::child::{TrampolineFn, SLOTS};
use crate::support::clifgen::{Case, CALLEE_INDEX};

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// The session the cases are linked into.
pub struct NativeJit {
    pub es: ExecutionSession,
    pub jd: JitDylib,
    /// Tier 0 at Cranelift's default `speed` level.
    pub cranelift: Arc<CraneliftLayer>,
    /// Tier 0 at `opt_level = none`, as adaptive tiering compiles it.
    pub cranelift_unoptimized: Arc<CraneliftLayer>,
    pub llvm: Arc<LlvmLayer>,
    pub objects: Arc<ObjectLinkingLayer>,
}

/// Why a case has no tier-1 code.
pub enum LlvmLinkError {
    /// The translator does not cover this construct (its own words).
    Unsupported(String),
    /// Translating, compiling or linking failed although the pre-check
    /// passed: a bug.
    Failed(String),
}

/// A main function (and the callee it defines, if any) in memory,
/// removed on drop.
pub struct LinkedMain {
    tracker: ResourceTracker,
    /// The main function.
    pub main: u64,
}

impl Drop for LinkedMain {
    fn drop(&mut self) {
        let _ = self.tracker.remove();
    }
}

/// A case's code in memory, removed on drop.
pub struct Linked {
    tracker: ResourceTracker,
    /// The trampoline.
    pub trampoline: TrampolineFn,
    /// Cranelift's main function.
    pub main: u64,
}

impl Drop for Linked {
    fn drop(&mut self) {
        let _ = self.tracker.remove();
    }
}

impl NativeJit {
    /// A session with one dylib and the tier-0 layer.
    pub fn new() -> NativeJit {
        let es = ExecutionSession::new();
        let jd = es.create_jit_dylib("cases").unwrap();
        let objects = ObjectLinkingLayer::new(&es);
        let cranelift = CraneliftLayer::new(
            CraneliftCompiler::new(CraneliftConfig::default()).unwrap(),
            objects.clone(),
        );
        let unoptimized = CraneliftConfig {
            opt_level: OptLevel::None,
            ..CraneliftConfig::default()
        };
        let cranelift_unoptimized = CraneliftLayer::new(
            CraneliftCompiler::new(unoptimized).unwrap(),
            objects.clone(),
        );
        let llvm = LlvmLayer::new(
            LlvmCompiler::new(LlvmConfig::default()).unwrap(),
            objects.clone(),
        );
        // Failed compiles are reported by the harness, with the case.
        es.set_error_reporter(|_| {});
        NativeJit {
            es,
            jd,
            cranelift,
            cranelift_unoptimized,
            llvm,
            objects,
        }
    }

    /// Translates `case`'s functions as generated (the translation applies
    /// NaN canonicalization itself when the case sets it), compiles them
    /// with LLVM and links them under the names `{prefix}_f` and
    /// `{prefix}_g`; the translated main calls the translated callee, or,
    /// with `import_callee`, the callee already linked under that symbol.
    pub fn link_llvm(
        &self,
        prefix: &str,
        case: &Case,
        import_callee: Option<&str>,
    ) -> Result<LinkedMain, LlvmLinkError> {
        let main_name = format!("{prefix}_f");
        let callee_name = match import_callee {
            Some(symbol) => symbol.to_owned(),
            None => format!("{prefix}_g"),
        };
        let defined_callee = case.callee.as_ref().filter(|_| import_callee.is_none());
        let to_check = defined_callee
            .map(|g| (g, &callee_name))
            .into_iter()
            .chain(std::iter::once((&case.main, &main_name)));
        for (func, symbol) in to_check {
            if let Err(e) = check_translatable(func, symbol) {
                return Err(match e {
                    TranslateError::Unsupported { what, .. } => LlvmLinkError::Unsupported(what),
                    other => LlvmLinkError::Failed(other.to_string()),
                });
            }
        }
        let resolved_callee = callee_name.clone();
        let names: NameResolver = Arc::new(move |func, name| {
            let cranelift_codegen::ir::ExternalName::User(r) = name else {
                return None;
            };
            let user = func.params.user_named_funcs().get(*r)?;
            (user.namespace == 0 && user.index == CALLEE_INDEX).then(|| resolved_callee.clone())
        });
        let config = TranslateConfig {
            nan_canonicalization: case.nan_canonicalization,
        };
        let mut module = ClifLlvmModule::new(prefix, names, config);
        if let Some(callee) = defined_callee {
            module = module.with_function(callee_name, callee.clone(), CALLABLE);
        }
        module = module.with_function(main_name.clone(), case.main.clone(), CALLABLE);
        let failed = |e: orc_core::Error| LlvmLinkError::Failed(e.to_string());
        let tracker = self.jd.create_resource_tracker().map_err(failed)?;
        let linked = self
            .llvm
            .add(&self.jd, Box::new(module), Some(&tracker))
            .and_then(|()| self.jd.lookup_symbol(&main_name));
        match linked {
            Ok(sym) => Ok(LinkedMain {
                tracker,
                main: sym.addr.value(),
            }),
            Err(e) => {
                let _ = tracker.remove();
                Err(failed(e))
            }
        }
    }

    /// Compiles `case` (`funcs`: its functions as Cranelift compiles them,
    /// the callee first, NaN canonicalization already applied) with
    /// Cranelift (at the level [`Self::tier0`] picks), with the trampoline,
    /// under the names `c{id}_*`.
    pub fn link_cranelift(
        &self,
        id: u64,
        case: &Case,
        funcs: Vec<Function>,
    ) -> Result<Linked, String> {
        let tracker = self
            .jd
            .create_resource_tracker()
            .map_err(|e| e.to_string())?;
        let has_callee = case.callee.is_some();
        let callee_name = format!("c{id}_g");
        let main_name = format!("c{id}_f");
        let tramp_name = format!("c{id}_tramp");
        let mut symbols = vec![
            (main_name.clone(), CALLABLE),
            (tramp_name.clone(), CALLABLE),
        ];
        if has_callee {
            symbols.push((callee_name.clone(), CALLABLE));
        }
        let tramp = orc_clif::trampoline::build(&case.main.signature, &tramp_name)
            .map_err(|e| format!("no trampoline for the signature: {e}"))?;
        let module = FnModule::new(format!("c{id}"), symbols, move |m: &mut dyn Module| {
            let mut funcs = funcs.into_iter();
            if has_callee {
                let g = funcs.next().ok_or("no callee")?;
                let id = m
                    .declare_function(&callee_name, Linkage::Export, &g.signature)
                    .map_err(|e| e.to_string())?;
                // Calls name the callee `u0:0`, which the module resolves
                // by function id.
                if id.as_u32() != CALLEE_INDEX {
                    return Err(format!("callee declared as {id}, not u0:0"));
                }
                define(m, id, g)?;
            }
            let f = funcs.next().ok_or("no main")?;
            let id = m
                .declare_function(&main_name, Linkage::Export, &f.signature)
                .map_err(|e| e.to_string())?;
            define(m, id, f)?;
            let id = m
                .declare_function(&tramp_name, Linkage::Export, &tramp.signature)
                .map_err(|e| e.to_string())?;
            define(m, id, tramp)
        });
        self.tier0(case.seed)
            .add(&self.jd, module, Some(&tracker))
            .map_err(|e| e.to_string())?;
        let lookup = |name: &str| {
            self.jd
                .lookup_symbol(name)
                .map(|s| s.addr)
                .map_err(|e| e.to_string())
        };
        let addrs = lookup(&format!("c{id}_f"))
            .and_then(|main| Ok((main, lookup(&format!("c{id}_tramp"))?)));
        let (main, tramp) = match addrs {
            Ok(addrs) => addrs,
            Err(e) => {
                let _ = tracker.remove();
                return Err(e);
            }
        };
        // SAFETY: the symbol is the trampoline just compiled, whose
        // signature is (i64, i64) -> () in the System V convention, which
        // is `TrampolineFn`'s.
        let trampoline: TrampolineFn = unsafe { std::mem::transmute(tramp.to_ptr::<u8>()) };
        Ok(Linked {
            tracker,
            trampoline,
            main: main.value(),
        })
    }
}

impl NativeJit {
    /// The tier-0 layer for the case of `seed`: odd seeds are compiled at
    /// `opt_level = none`, even ones at `speed`.
    pub fn tier0(&self, seed: u64) -> &Arc<CraneliftLayer> {
        if seed % 2 == 1 {
            &self.cranelift_unoptimized
        } else {
            &self.cranelift
        }
    }

    /// Compiles `main` (as Cranelift compiles it) alone with Cranelift as
    /// `{prefix}_f`, its calls to `u0:0` bound to `callee`, a symbol of
    /// signature `callee_sig` already linked (the other tier's callee).
    pub fn link_cranelift_main(
        &self,
        seed: u64,
        prefix: &str,
        main: Function,
        callee: &str,
        callee_sig: Signature,
    ) -> Result<LinkedMain, String> {
        let tracker = self
            .jd
            .create_resource_tracker()
            .map_err(|e| e.to_string())?;
        let main_name = format!("{prefix}_f");
        let (defined, callee) = (main_name.clone(), callee.to_owned());
        let module = FnModule::new(
            prefix,
            vec![(main_name.clone(), CALLABLE)],
            move |m: &mut dyn Module| {
                let id = m
                    .declare_function(&callee, Linkage::Import, &callee_sig)
                    .map_err(|e| e.to_string())?;
                if id.as_u32() != CALLEE_INDEX {
                    return Err(format!("callee declared as {id}, not u0:0"));
                }
                let id = m
                    .declare_function(&defined, Linkage::Export, &main.signature)
                    .map_err(|e| e.to_string())?;
                define(m, id, main)
            },
        );
        let linked = self
            .tier0(seed)
            .add(&self.jd, module, Some(&tracker))
            .and_then(|()| self.jd.lookup_symbol(&main_name));
        match linked {
            Ok(sym) => Ok(LinkedMain {
                tracker,
                main: sym.addr.value(),
            }),
            Err(e) => {
                let _ = tracker.remove();
                Err(e.to_string())
            }
        }
    }
}

fn define(m: &mut dyn Module, id: cranelift_module::FuncId, func: Function) -> Result<(), String> {
    let mut ctx = m.make_context();
    ctx.func = func;
    m.define_function(id, &mut ctx)
        .map_err(|e| format!("{e:?}"))
}

/// The slots of an argument list of a function of `sig`.
pub fn encode(args: &[DataValue], sig: &Signature) -> [u128; SLOTS] {
    let encoded = orc_clif::values::encode_args(args, sig)
        .unwrap_or_else(|e| panic!("the generator made arguments that do not fit: {e}"));
    let mut slots = [0u128; SLOTS];
    slots[..encoded.len()].copy_from_slice(&encoded);
    slots
}
