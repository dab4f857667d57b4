//! LLVM IR programs on the tiered layer: tier 0 for IR.
//!
//! [`add_tiered`] puts an [`IrProgram`] on a [`Jit`] whose tier is
//! [`Tier::Zero`](crate::Tier::Zero) or [`Tier::Adaptive`](crate::Tier::Adaptive):
//!
//! - the module's data (globals, constructor tables) is compiled by LLVM at
//!   once, as in every mode;
//! - each function definition is translated to Cranelift IR
//!   (`orc_llvm_ir::to_clif`) and becomes a function of the tiered layer:
//!   a stub in `main` under its own name, a tier-0 body compiled on first
//!   call (or now, eagerly), promoted to tier 1 when hot under adaptive
//!   tiering. Its tier-1 body is cut from the original IR, not translated
//!   back from the CLIF (the IR carries more for LLVM's optimizer), through
//!   the layer's [`Tier1Lowering`] hook;
//! - a function the translation does not take goes straight to tier 1, as
//!   an LLVM unit of its own (lazy or compiled now), and is named in the
//!   report;
//! - calls from tier-0 code to variadic functions go through a thunk per
//!   callee that sets `%al` (the SysV ABI's count of vector registers used)
//!   to 8, its upper bound, which Cranelift cannot do; the thunks are made
//!   by a generator of the bodies dylib on first lookup.
//!
//! [`Tier::One`](crate::Tier::One) does not use this: IR in tier 1 is
//! LLVM's own split (`IrProgram::add`).

use std::collections::HashMap;
use std::sync::Arc;

use orc_core::{
    absolute_symbols, DefinitionGenerator, ExecutorAddr, FuncId, JitDylib, JitDylibLookupFlags,
    LookupKind, Result, SymbolFlags, SymbolLookupSet, SymbolMap,
};
use orc_cranelift::codegen::binemit::Reloc;
use orc_cranelift::codegen::ir::{self, UserExternalName};
use orc_cranelift::module::{Linkage, Module, ModuleReloc, ModuleRelocTarget};
use orc_cranelift::{CraneliftLayer, CraneliftModule};
use orc_llvm::LlvmModule;
use orc_llvm_ir::to_clif::{ClifNames, PrivateData, VARARG_THUNK_PREFIX};
use orc_llvm_ir::{IrError, IrProgram, IrTarget, LoadMode};

use crate::{ClifProducer, Jit, Tier1Lowering, TieredLayer};

/// What [`add_tiered`] did with a program's functions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TieredIrReport {
    /// Functions in the tiered layer (tier 0 first).
    pub tiered: usize,
    /// Functions the translation to CLIF did not take, each with what it
    /// named: they run in tier 1 only.
    pub tier1_only: Vec<(String, String)>,
}

/// Adds `program` to `jit` with tier-0 code for what the translation takes
/// (see the module docs). `mode` says whether code is compiled now or on
/// first call. The caller then runs the initializers of the bodies dylib
/// and looks `main` up in the main dylib, as for [`IrProgram::add`], and at
/// the end runs `ObjectLinkingLayer::run_exit_handlers` on the bodies
/// dylib: exit handlers registered by code that tiering replaced run only
/// then.
pub fn add_tiered(jit: &Jit, program: &IrProgram, mode: LoadMode) -> Result<TieredIrReport> {
    let ir_err = |e: IrError| orc_core::Error::other(e.to_string());
    let layer = jit.llvm_layer()?;
    let target = IrTarget {
        layer,
        lazy: jit.lazy_reexports(),
        main: jit.main_dylib(),
        bodies: jit.bodies_dylib(),
    };
    add_vararg_thunks(jit)?;
    // A handler `main$t0` registers must outlive `main$t0` when it is
    // promoted; the program runs them at exit (`run_exit_handlers`).
    jit.object_layer().keep_exit_handlers(jit.bodies_dylib());
    program.add_data(&target, None).map_err(ir_err)?;
    let tiered = jit.tiered();
    // The program's own threads are not pinned: a tier-0 body they may
    // still be running must not be freed when tier-up replaces it.
    tiered.functions().keep_replaced_bodies();
    let lowering = IrLowering {
        program: program.clone(),
        functions: HashMap::new(),
    };
    if mode == LoadMode::Lazy && jit.config().lazy && jit.config().tier != crate::Tier::One {
        add_deferred(jit, program, &target, tiered, lowering)
    } else {
        add_translated_now(jit, program, &target, tiered, lowering, mode)
    }
}

/// Lazily: every function is tiered, and translated to CLIF on its first
/// call (by a translator thread that keeps the module parsed); one the
/// translation does not take gets its first body from LLVM.
fn add_deferred(
    jit: &Jit,
    program: &IrProgram,
    target: &IrTarget<'_>,
    tiered: &TieredLayer,
    mut lowering: IrLowering,
) -> Result<TieredIrReport> {
    let ir_err = |e: IrError| orc_core::Error::other(e.to_string());
    let names = Names {
        layer: tiered.clone(),
    };
    let translator = Arc::new(program.clif_translator(Box::new(names)).map_err(ir_err)?);
    let mut defs: Vec<(FuncId, ClifProducer)> = Vec::new();
    let mut at_exit = Vec::new();
    let mut tier1_only = Vec::new();
    for f in program.definitions() {
        // Functions that share blocks with others are compiled together,
        // by LLVM; those with block-address tables of their own are
        // translated now, to know whether tier 0 takes them (their tier-1
        // modules then keep private copies of the tables).
        if !f.partners.is_empty() {
            tier1_only.push((
                f.name,
                "block addresses shared with another function".to_owned(),
            ));
            continue;
        }
        let early = if f.data.is_empty() {
            None
        } else {
            match translator.translate(&f.name) {
                Ok(t) => Some(t),
                Err(why) => {
                    tier1_only.push((f.name, one_line(&why.reason)));
                    continue;
                }
            }
        };
        let id = tiered.declare(&f.name)?;
        lowering.functions.insert(id, f.name.clone());
        if f.runs_at_exit {
            at_exit.push(id);
        }
        let translator = translator.clone();
        let layer = tiered.clone();
        let bodies = jit.bodies_dylib().clone();
        let name = f.name;
        let producer: ClifProducer = Box::new(move || {
            let t = match early {
                Some(t) => t,
                None => translator
                    .translate(&name)
                    .map_err(|u| one_line(&u.reason))?,
            };
            if !t.osr_safe {
                layer.disable_osr(id);
            }
            if !t.data.is_empty() {
                let data = private_data_symbols(&bodies.session(), t.data)?;
                bodies
                    .define(absolute_symbols(data), None)
                    .map_err(|e| e.to_string())?;
            }
            Ok(t.func)
        });
        defs.push((id, producer));
    }
    let report = TieredIrReport {
        tiered: defs.len(),
        tier1_only,
    };
    let tier1: Vec<String> = report.tier1_only.iter().map(|(n, _)| n.clone()).collect();
    program
        .add_tier1_functions(target, &tier1, LoadMode::Lazy, None)
        .map_err(ir_err)?;
    program.add_function_aliases(target).map_err(ir_err)?;
    tiered.set_tier1_lowering(Some(Arc::new(lowering)));
    tiered.define_deferred(defs)?;
    // Teardown cannot compile: code that may run then is compiled now.
    if !at_exit.is_empty() {
        tiered.functions().compile_now(&at_exit)?;
    }
    Ok(report)
}

/// Eagerly (or without a lazy tier 0): every function is translated now;
/// those the translation does not take are LLVM units of their own.
fn add_translated_now(
    jit: &Jit,
    program: &IrProgram,
    target: &IrTarget<'_>,
    tiered: &TieredLayer,
    mut lowering: IrLowering,
    mode: LoadMode,
) -> Result<TieredIrReport> {
    let ir_err = |e: IrError| orc_core::Error::other(e.to_string());
    let mut names = Names {
        layer: tiered.clone(),
    };
    let translated = program.translate_to_clif(&mut names).map_err(ir_err)?;
    let definitions: HashMap<String, orc_llvm_ir::IrFunction> = program
        .definitions()
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect();
    let mut report = TieredIrReport::default();
    let mut defs = Vec::new();
    let mut data = SymbolMap::new();
    let mut at_exit = Vec::new();
    let es = jit.session();
    for t in translated {
        let shares_blocks = definitions
            .get(&t.name)
            .is_some_and(|d| !d.partners.is_empty());
        let result = match t.result {
            Ok(_) if shares_blocks => Err(orc_llvm_ir::to_clif::Untranslatable {
                function: t.name.clone(),
                reason: "block addresses shared with another function".to_owned(),
            }),
            other => other,
        };
        match result {
            Ok(f) => {
                let id = tiered.declare(&t.name)?;
                if !f.osr_safe {
                    tiered.disable_osr(id);
                }
                data.extend(private_data_symbols(es, f.data).map_err(orc_core::Error::other)?);
                if definitions.get(&t.name).is_some_and(|d| d.runs_at_exit) {
                    at_exit.push(id);
                }
                lowering.functions.insert(id, t.name.clone());
                defs.push((id, f.func));
            }
            Err(why) => report.tier1_only.push((t.name, one_line(&why.reason))),
        }
    }
    report.tiered = defs.len();
    if !data.is_empty() {
        jit.bodies_dylib().define(absolute_symbols(data), None)?;
    }
    // What tier-0 code calls must be defined before it is compiled (now,
    // when eager): the tier-1-only functions and the aliases first.
    let tier1: Vec<String> = report.tier1_only.iter().map(|(n, _)| n.clone()).collect();
    program
        .add_tier1_functions(target, &tier1, mode, None)
        .map_err(ir_err)?;
    program.add_function_aliases(target).map_err(ir_err)?;
    tiered.set_tier1_lowering(Some(Arc::new(lowering)));
    tiered.define(defs)?;
    // Teardown cannot compile: code that may run then is compiled now.
    if !at_exit.is_empty() && mode != LoadMode::Eager {
        tiered.functions().compile_now(&at_exit)?;
    }
    Ok(report)
}

/// `text` on one line (an `invoke` prints on two), at most 200 characters.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// `data` as symbols of memory of their own.
fn private_data_symbols(
    es: &orc_core::ExecutionSession,
    data: Vec<PrivateData>,
) -> std::result::Result<SymbolMap, String> {
    data.into_iter()
        .map(|PrivateData { symbol, bytes }| Ok((es.intern(&symbol), private_data(&bytes)?)))
        .collect()
}

/// Memory for a [`PrivateData`], for the life of the process (a page per
/// table; code may keep its address): a JIT reservation, so it is where
/// the code runs, in an executor's arena too.
fn private_data(bytes: &[u8]) -> std::result::Result<orc_core::ExecutorSymbolDef, String> {
    use orc_core::memory::{LinkMemory, Placement, SegmentProtection};
    let fail = |e: std::io::Error| format!("cannot allocate a private table: {e}");
    let mut memory = LinkMemory::reserve(
        &[(SegmentProtection::ReadWrite, bytes.len().max(1))],
        Placement::Anywhere,
    )
    .map_err(fail)?;
    memory
        .bytes_mut()
        .ok_or("a fresh reservation is already published")?[..bytes.len()]
        .copy_from_slice(bytes);
    memory.publish().map_err(fail)?;
    let addr = ExecutorAddr(memory.base());
    // Kept for the life of the process, as the code may keep its address.
    std::mem::forget(memory);
    Ok(orc_core::ExecutorSymbolDef {
        addr,
        flags: SymbolFlags::EXPORTED,
    })
}

/// Names in translated code: everything by symbol (a function's symbol is
/// its stub, or its tier-1 re-export when it is not tiered).
#[derive(Clone)]
struct Names {
    layer: TieredLayer,
}

impl ClifNames for Names {
    fn function(&mut self, name: &str) -> UserExternalName {
        self.layer.import(name)
    }
    fn symbol(&mut self, name: &str) -> UserExternalName {
        self.layer.import(name)
    }
}

/// Tier-1 bodies of a program's tiered functions, cut from its IR.
struct IrLowering {
    program: IrProgram,
    functions: HashMap<FuncId, String>,
}

impl Tier1Lowering for IrLowering {
    fn lower(&self, functions: &[(FuncId, u32, String)]) -> Option<Box<dyn LlvmModule>> {
        let wanted: Option<Vec<(String, String)>> = functions
            .iter()
            .map(|(id, _, symbol)| Some((self.functions.get(id)?.clone(), symbol.clone())))
            .collect();
        Some(self.program.tier1_module(&wanted?))
    }
}

/// Adds, once per JIT, the generator of variadic-call thunks to the bodies
/// dylib.
fn add_vararg_thunks(jit: &Jit) -> Result<()> {
    if jit.vararg_thunks.set(()).is_err() {
        return Ok(());
    }
    jit.bodies_dylib().add_generator(Arc::new(VarargThunks {
        layer: jit.cranelift_layer().clone(),
    }))
}

/// Defines `__orc_va.NAME` on lookup: `mov al, 8; jmp NAME`.
struct VarargThunks {
    layer: Arc<CraneliftLayer>,
}

impl DefinitionGenerator for VarargThunks {
    fn try_to_generate(
        &self,
        _kind: LookupKind,
        dylib: &JitDylib,
        _flags: JitDylibLookupFlags,
        names: &SymbolLookupSet,
    ) -> Result<()> {
        for (name, _) in names.iter() {
            let Some(callee) = name.as_str().strip_prefix(VARARG_THUNK_PREFIX) else {
                continue;
            };
            let module = ThunkModule {
                name: name.to_string(),
                callee: callee.to_owned(),
            };
            self.layer.add(dylib, Box::new(module), None)?;
        }
        Ok(())
    }
}

/// One variadic-call thunk.
struct ThunkModule {
    name: String,
    callee: String,
}

impl CraneliftModule for ThunkModule {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        vec![(
            self.name.clone(),
            SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE),
        )]
    }

    fn build(self: Box<Self>, module: &mut dyn Module) -> std::result::Result<(), String> {
        let sig = ir::Signature::new(orc_cranelift::codegen::isa::CallConv::SystemV);
        let thunk = module
            .declare_function(&self.name, Linkage::Export, &sig)
            .map_err(|e| e.to_string())?;
        let callee = module
            .declare_function(&self.callee, Linkage::Import, &sig)
            .map_err(|e| e.to_string())?;
        // mov al, 8 ; jmp rel32 (to the callee, through a PLT stub when far)
        let code = [0xb0, 0x08, 0xe9, 0, 0, 0, 0];
        let reloc = ModuleReloc {
            offset: 3,
            kind: Reloc::X86CallPLTRel4,
            name: ModuleRelocTarget::user(0, callee.as_u32()),
            addend: -4,
        };
        module
            .define_function_bytes(thunk, 16, &code, &[reloc])
            .map_err(|e| e.to_string())
    }
}
