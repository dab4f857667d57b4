//! Tiering for any frontend: a frontend hands Cranelift IR, once per
//! function, and gets both tiers.
//!
//! ```text
//! frontend --CLIF--> TieredLayer --Cranelift (+ counters, OSR checks)--> tier-0 body --+
//!                         |                                                              +--> linker
//!                         +--CLIF -> LLVM IR (orc_llvm::translate), O2--> tier-1 body --+   (stub repointed)
//! ```
//!
//! The [`TieredLayer`] composes the Jit's two layers with
//! [`orc_core::TieredFunctions`], which keeps what knows no IR (ids,
//! versions, stubs, promotion batches, release). This half keeps each
//! function version's CLIF as the frontend built it, compiles it with the
//! JIT's tier policy, and is the [`Tier1Compiler`] that promotions call:
//! it translates the CLIF to LLVM IR, with one on-stack-replacement entry
//! per loop the tier-0 code checks (`orc_cranelift::osr`: a loop's state is
//! what is live at its header, so a frontend does nothing for OSR).
//!
//! Names in the CLIF a frontend builds: calls to a tiered function name it
//! with [`TieredLayer::func_name`] (namespace 0: its stub, so redefinition
//! and tier-up reach every caller), anything else with
//! [`TieredLayer::import`] (namespace 1: a host or process symbol), and
//! `%name` test-case names stand for the symbol `name`. Tier-1 code calls
//! itself directly, as LLVM's CompileOnDemand leaves a function's
//! recursion.
//!
//! A function the translation does not cover stays in tier 0 under
//! `Tier::Adaptive` (named once through the session's error reporter, and
//! in [`TieredLayer::untranslated`]); under `Tier::One` its compile fails
//! with the translator's error, which names the instruction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use orc_core::{
    Body, CodeTier, Definition, Error, ExecutorAddr, FuncId, FunctionStats, JitDylib,
    MaterializationResponsibility, MaterializationUnit, ResourceTracker, Result, SymbolFlags,
    SymbolFlagsMap, SymbolName, Tier1Compiler, Tier1Request, TierTrace, TieredFunctions,
};
use orc_cranelift::codegen::ir::{self, ExternalName, UserExternalName, UserFuncName};
use orc_cranelift::osr::{add_osr_checks, osr_entry, osr_loops, OsrLoop};
use orc_cranelift::{CraneliftLayer, FunctionModule, NameResolver};
use orc_llvm::translate::{check_translatable, ClifLlvmModule, TranslateConfig, TranslateError};
use orc_llvm::DebugSource;
use orc_llvm::LlvmModule;

use crate::jit::{LazyLlvmLayer, Tier};

/// The OSR slots of a tier-0 body's loops.
type OsrSlots = Arc<orc_core::memory::JitCells<orc_core::OsrSlot>>;

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// The namespace of [`TieredLayer::func_name`] names.
const FUNCTIONS: u32 = 0;
/// The namespace of [`TieredLayer::import`] names.
const IMPORTS: u32 = 1;

/// Tiered functions built from Cranelift IR; see the module docs. Made by
/// [`Jit::tiered`](crate::Jit::tiered); cheap to clone.
#[derive(Clone)]
pub struct TieredLayer {
    state: Arc<State>,
}

struct State {
    functions: TieredFunctions,
    cranelift: Arc<CraneliftLayer>,
    llvm: Arc<LazyLlvmLayer>,
    tier: Tier,
    lazy: bool,
    tables: Mutex<Tables>,
}

/// A frontend's own tier-1 lowering, used instead of translating its CLIF
/// (on-stack-replacement entries are translated either way: they are
/// derived from the CLIF the tier-0 code runs).
pub trait Tier1Lowering: Send + Sync {
    /// A module defining, for each `(function, version, symbol)`, that
    /// version's tier-1 body under `symbol` (a function calls itself by
    /// its own symbol, anything else by name), or `None` to translate.
    fn lower(&self, functions: &[(FuncId, u32, String)]) -> Option<Box<dyn LlvmModule>>;
}

/// Produces a function's CLIF when its tier-0 body is first needed, or says
/// why it cannot (then the frontend's [`Tier1Lowering`] compiles the body
/// instead). See [`TieredLayer::define_deferred`].
pub type ClifProducer = Box<dyn FnOnce() -> std::result::Result<ir::Function, String> + Send>;

/// A function version's CLIF as the frontend built it, with the loops its
/// tier-0 code checks for on-stack replacement (in slot order).
struct Source {
    version: u32,
    func: ir::Function,
    loops: Vec<OsrLoop>,
}

#[derive(Default)]
struct Tables {
    /// How CLIF is translated for tier 1.
    translate: TranslateConfig,
    /// The frontend's own tier-1 lowering, if it set one.
    lowering: Option<Arc<dyn Tier1Lowering>>,
    /// Each current function version's CLIF, as the frontend built it (the
    /// source of its tier-1 body and OSR entries).
    sources: HashMap<FuncId, Arc<Source>>,
    /// Namespace-1 symbols by index.
    imports: Vec<String>,
    import_index: HashMap<String, u32>,
    /// Functions the translation could not take, with what it named.
    untranslated: Vec<(String, String)>,
    /// Functions whose tier-0 code must not enter tier-1 code mid-loop.
    no_osr: std::collections::HashSet<FuncId>,
    /// Deferred functions that had no CLIF, compiled by the frontend's
    /// tier-1 lowering instead, with the producer's reason.
    fallbacks: Vec<(String, String)>,
    /// Each defined function's signature, as its CLIF declares it.
    signatures: HashMap<FuncId, ir::Signature>,
    /// Signatures of host functions, checked against the CLIF that
    /// imports them (see [`TieredLayer::declare_import_signature`]).
    import_signatures: HashMap<String, ir::Signature>,
    /// Where tier changes are logged; OSR entries then report themselves.
    trace: Option<Arc<TierTrace>>,
    /// The source file translated functions get line information from.
    debug_source: Option<DebugSource>,
}

impl TieredLayer {
    pub(crate) fn new(
        functions: TieredFunctions,
        cranelift: Arc<CraneliftLayer>,
        llvm: Arc<LazyLlvmLayer>,
        tier: Tier,
        lazy: bool,
    ) -> Self {
        let state = Arc::new(State {
            functions,
            cranelift,
            llvm,
            tier,
            lazy,
            tables: Mutex::new(Tables::default()),
        });
        state
            .functions
            .set_tier1_compiler(Arc::new(Promoter(Arc::downgrade(&state))));
        TieredLayer { state }
    }

    /// Logs tier changes to `trace`: promotions and releases (through
    /// [`TieredFunctions::set_trace`]), and frames entering tier-1 code by
    /// on-stack replacement (each OSR entry compiled from now on first
    /// calls [`TierTrace::osr_probe`], a host symbol the Jit defines).
    pub fn set_trace(&self, trace: Arc<TierTrace>) {
        let functions = self.state.functions.clone();
        trace.set_function_names(Arc::new(move |index| {
            functions
                .name(FuncId::from_index(index))
                .ok()
                .map(|n| n.to_string())
        }));
        self.state.functions.set_trace(trace.clone());
        self.state.lock().trace = Some(trace);
    }

    /// Gives compiled code DWARF line information: each CLIF instruction's
    /// source location (`FunctionBuilder::set_srcloc`) is read as a line
    /// of `source` (as the LLVM tutorial's chapter 9 does for
    /// Kaleidoscope), so debuggers and profilers show source lines. Tier 1
    /// gets it through the translation's debug locations, tier 0 as line
    /// tables made from Cranelift's source-location map
    /// (`orc_cranelift::debug_lines`). Applies to what is compiled from now
    /// on.
    pub fn set_debug_source(&self, source: Option<DebugSource>) {
        self.state
            .cranelift
            .compiler()
            .set_line_source(source.as_ref().map(|s| orc_cranelift::LineSource {
                file: s.file.clone(),
                directory: s.directory.clone(),
            }));
        self.state.lock().debug_source = source;
    }

    /// The IR-free half: ids, versions, stubs, statistics.
    pub fn functions(&self) -> &TieredFunctions {
        &self.state.functions
    }

    /// Registers a function called `name` (the symbol of its stub, its
    /// address for callers), to be defined with [`Self::define`].
    pub fn declare(&self, name: &str) -> Result<FuncId> {
        self.state.functions.declare(name)
    }

    /// The external name by which CLIF calls (or takes the address of)
    /// function `id`: its stub.
    pub fn func_name(&self, id: FuncId) -> UserExternalName {
        UserExternalName::new(FUNCTIONS, id.index())
    }

    /// The external name by which CLIF refers to `symbol`, a host function
    /// or any symbol the JIT's dylibs find.
    pub fn import(&self, symbol: &str) -> UserExternalName {
        self.state.import_name(symbol)
    }

    /// Defines functions, or redefines them. New functions are defined
    /// first, together: lazy units behind their stubs (compiled now, as
    /// one module, when the JIT is eager). Then each redefinition (of a
    /// function defined before, or a repeat in `defs`), in order, is
    /// compiled now under a version of its own, its stub is repointed, and
    /// the old body is released once no thread can be running it.
    pub fn define(&self, defs: Vec<(FuncId, ir::Function)>) -> Result<()> {
        {
            let mut tables = self.state.lock();
            for (id, func) in &defs {
                tables.check_imports(func, &self.state.functions.name(*id)?)?;
            }
            for (id, func) in &defs {
                tables.signatures.insert(*id, func.signature.clone());
            }
        }
        let mut new = Vec::new();
        let mut again = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (id, func) in defs {
            if !self.state.functions.is_defined(id)? && seen.insert(id) {
                new.push((id, func));
            } else {
                again.push((id, func));
            }
        }
        if !new.is_empty() {
            self.define_new(new)?;
        }
        for (id, func) in again {
            self.redefine(id, func)?;
        }
        Ok(())
    }

    fn define_new(&self, new: Vec<(FuncId, ir::Function)>) -> Result<()> {
        let functions = &self.state.functions;
        let ids: Vec<FuncId> = new.iter().map(|(id, _)| *id).collect();
        if self.state.lazy {
            let mut defs = Vec::with_capacity(new.len());
            for (id, func) in new {
                let tracker = functions.bodies_dylib().create_resource_tracker()?;
                let (tier, osr) = self.state.add_body(id, 0, func, &tracker)?;
                defs.push(Definition {
                    id,
                    version: 0,
                    tier,
                    body: Body::new(tracker),
                    osr,
                });
            }
            functions.define_new(defs)
        } else {
            let tracker = functions.bodies_dylib().create_resource_tracker()?;
            let funcs = new.into_iter().map(|(id, f)| (id, 0, f)).collect();
            let (tier, slots) = self.state.add_module(funcs, &tracker)?;
            let body = Body::new(tracker);
            let defs = ids
                .iter()
                .zip(slots)
                .map(|(&id, osr)| Definition {
                    id,
                    version: 0,
                    tier,
                    body: body.clone(),
                    osr,
                })
                .collect();
            functions.define_new(defs)?;
            functions.compile_now(&ids)
        }
    }

    /// Defines new functions whose CLIF is produced only when a body is
    /// first needed (their first call, or a lookup of the body): a
    /// frontend with many functions, most never called, translates only
    /// those that run. A producer that fails leaves its function to the
    /// frontend's [`Tier1Lowering`] (set it first), which then compiles the
    /// first body with LLVM; the function stays there (no counters, no
    /// promotion) and is listed in [`Self::fallbacks`].
    ///
    /// Deferral needs a lazy JIT whose first tier is tier 0. Otherwise the
    /// producers run now, and one that fails is an error.
    pub fn define_deferred(&self, defs: Vec<(FuncId, ClifProducer)>) -> Result<()> {
        let state = &self.state;
        let functions = &state.functions;
        if !state.lazy || state.first_tier() != CodeTier::Zero {
            let mut ready = Vec::with_capacity(defs.len());
            for (id, producer) in defs {
                let func = producer().map_err(|why| {
                    let name = functions
                        .name(id)
                        .map(|n| n.to_string())
                        .unwrap_or_default();
                    Error::other(format!("no CLIF for '{name}': {why}"))
                })?;
                ready.push((id, func));
            }
            return self.define(ready);
        }
        let mut out = Vec::with_capacity(defs.len());
        for (id, producer) in defs {
            if functions.is_defined(id)? {
                return Err(Error::other(format!(
                    "function '{}' is already defined",
                    functions.name(id)?
                )));
            }
            let tracker = functions.bodies_dylib().create_resource_tracker()?;
            let symbol = functions.body(id, CodeTier::Zero, 0)?;
            let unit = DeferredUnit {
                state: state.clone(),
                id,
                symbol,
                producer: Some(producer),
            };
            functions
                .bodies_dylib()
                .define(Box::new(unit), Some(&tracker))?;
            out.push(Definition {
                id,
                version: 0,
                tier: CodeTier::Zero,
                body: Body::new(tracker),
                osr: None,
            });
        }
        functions.define_new(out)
    }

    /// Deferred functions that had no CLIF and were compiled by the
    /// frontend's tier-1 lowering, each with the producer's reason.
    pub fn fallbacks(&self) -> Vec<(String, String)> {
        self.state.lock().fallbacks.clone()
    }

    /// Compiles `func` now in the JIT's first tier as `symbol` in the
    /// bodies dylib, under `tracker`, untiered (no counters): for code run
    /// once, such as a top-level expression. Returns its address.
    pub fn add_untiered(
        &self,
        symbol: &str,
        func: ir::Function,
        tracker: &ResourceTracker,
    ) -> Result<ExecutorAddr> {
        let state = &self.state;
        state.add_first_tier(&[], vec![(symbol.to_owned(), func)], tracker)?;
        let bodies = state.functions.bodies_dylib();
        Ok(bodies.lookup_symbol(symbol)?.addr)
    }

    fn redefine(&self, id: FuncId, func: ir::Function) -> Result<()> {
        let functions = &self.state.functions;
        let version = functions.new_version(id)?;
        let tracker = functions.bodies_dylib().create_resource_tracker()?;
        let (tier, osr) = self.state.add_body(id, version, func, &tracker)?;
        let body = functions.body(id, tier, version)?;
        let addr = match functions.bodies_dylib().lookup_symbol(&body) {
            Ok(def) => def.addr,
            Err(e) => {
                let _ = tracker.remove();
                return Err(e);
            }
        };
        let def = Definition {
            id,
            version,
            tier,
            body: Body::new(tracker),
            osr,
        };
        functions.replace(def, addr)
    }

    /// Removes functions for good: their bodies in every tier, their stubs
    /// and the CLIF kept for them (see [`TieredFunctions::remove`]; the
    /// caller guarantees nothing calls them any more). For a frontend whose
    /// code goes away, such as a language VM that is dropped.
    pub fn remove(&self, ids: &[FuncId]) -> Result<()> {
        // The functions first: a promotion that then misses their CLIF
        // sees them removed and drops them quietly.
        let removed = self.state.functions.remove(ids);
        let mut tables = self.state.lock();
        for id in ids {
            tables.sources.remove(id);
            tables.signatures.remove(id);
            tables.no_osr.remove(id);
        }
        removed
    }

    /// The signature of function `id`'s current definition, as its CLIF
    /// declares it; `None` before it is defined.
    pub fn signature(&self, id: FuncId) -> Option<ir::Signature> {
        self.state.lock().signatures.get(&id).cloned()
    }

    /// Declares the signature of `symbol`, a host function: from now on
    /// [`Self::define`] refuses CLIF that imports it (through
    /// [`Self::import`]) with another signature, with a
    /// [`SignatureMismatch`](crate::embed::SignatureMismatch) error.
    pub fn declare_import_signature(&self, symbol: &str, signature: ir::Signature) {
        self.state
            .lock()
            .import_signatures
            .insert(symbol.to_owned(), signature);
    }

    /// The function's canonical address: its stub.
    pub fn address(&self, id: FuncId) -> Result<ExecutorAddr> {
        self.state.functions.address(id)
    }

    /// Every function's statistics.
    pub fn stats(&self) -> Vec<FunctionStats> {
        self.state.functions.stats()
    }

    /// Sets how CLIF is translated for tier 1 from now on (for example
    /// Cranelift's NaN canonicalization, which a frontend's CLIF relies on).
    pub fn set_translate_config(&self, config: TranslateConfig) {
        self.state.lock().translate = config;
    }

    /// Uses `lowering` for tier-1 bodies instead of the translation (for
    /// the functions it takes; `None` goes back to translating).
    pub fn set_tier1_lowering(&self, lowering: Option<Arc<dyn Tier1Lowering>>) {
        self.state.lock().lowering = lowering;
    }

    /// Gives function `id` no on-stack replacement from now on: its loops
    /// are not checked, so its tier-0 frames finish in tier 0 (for code
    /// whose loop state means something else in tier 1, such as tier-0
    /// block addresses). Set it before defining the function.
    pub fn disable_osr(&self, id: FuncId) {
        self.state.lock().no_osr.insert(id);
    }

    /// The functions the translation to tier 1 could not take, each with
    /// what it named (an instruction, a type), in the order met.
    pub fn untranslated(&self) -> Vec<(String, String)> {
        self.state.lock().untranslated.clone()
    }
}

impl std::fmt::Debug for TieredLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredLayer")
            .field("tier", &self.state.tier)
            .field("functions", &self.state.functions)
            .finish()
    }
}

impl Tables {
    /// Checks the host functions `func` imports against their declared
    /// signatures.
    fn check_imports(&self, func: &ir::Function, name: &str) -> Result<()> {
        for ext in func.dfg.ext_funcs.values() {
            let symbol = match &ext.name {
                ExternalName::User(r) => {
                    let Some(user) = func.params.user_named_funcs().get(*r) else {
                        continue;
                    };
                    if user.namespace != IMPORTS {
                        continue;
                    }
                    let Some(symbol) = self.imports.get(user.index as usize) else {
                        continue;
                    };
                    symbol.as_str()
                }
                ExternalName::TestCase(t) => match std::str::from_utf8(t.raw()) {
                    Ok(symbol) => symbol,
                    Err(_) => continue,
                },
                _ => continue,
            };
            let Some(expected) = self.import_signatures.get(symbol) else {
                continue;
            };
            let Some(declared) = func.dfg.signatures.get(ext.signature) else {
                continue;
            };
            if !crate::embed::same_abi(expected, declared) {
                return Err(Error::layer(crate::embed::SignatureMismatch {
                    function: symbol.to_owned(),
                    expected: expected.to_string(),
                    found: declared.to_string(),
                    context: format!("imported by '{name}'"),
                }));
            }
        }
        Ok(())
    }
}

impl State {
    /// The namespace-1 name of `symbol` (see [`TieredLayer::import`]).
    fn import_name(&self, symbol: &str) -> UserExternalName {
        let mut tables = self.lock();
        let next = tables.imports.len() as u32;
        let index = *tables.import_index.entry(symbol.to_owned()).or_insert(next);
        if index == next {
            tables.imports.push(symbol.to_owned());
        }
        UserExternalName::new(IMPORTS, index)
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tier a new body is compiled by.
    fn first_tier(&self) -> CodeTier {
        match self.tier {
            Tier::Zero | Tier::Adaptive => CodeTier::Zero,
            Tier::One => CodeTier::One,
        }
    }

    /// Resolves names for code of this layer; `own` maps functions to the
    /// symbols their own references use instead of the stub (tier-1 self
    /// calls).
    fn resolver(self: &Arc<Self>, own: HashMap<u32, String>) -> NameResolver {
        let state = Arc::downgrade(self);
        let libcalls = cranelift_module::default_libcall_names();
        Arc::new(move |func: &ir::Function, name: &ExternalName| match name {
            ExternalName::User(r) => {
                let n = func.params.user_named_funcs().get(*r)?;
                let state = state.upgrade()?;
                match n.namespace {
                    FUNCTIONS => {
                        let own_ref = match &func.name {
                            UserFuncName::User(me) => me == n,
                            UserFuncName::Testcase(_) => false,
                        };
                        match own.get(&n.index) {
                            Some(symbol) if own_ref => Some(symbol.clone()),
                            _ => state
                                .functions
                                .name(FuncId::from_index(n.index))
                                .ok()
                                .map(|s| s.to_string()),
                        }
                    }
                    IMPORTS => state.lock().imports.get(n.index as usize).cloned(),
                    _ => None,
                }
            }
            ExternalName::TestCase(t) => std::str::from_utf8(t.raw()).ok().map(str::to_owned),
            ExternalName::LibCall(call) => Some(libcalls(*call)),
            ExternalName::KnownSymbol(_) => None,
        })
    }

    /// Prepares version `version` of `id` for its first tier: keeps its
    /// CLIF as the tier-1 source, registers it for tiering and adds the
    /// OSR checks under adaptive tiering. Returns the CLIF to compile and
    /// the OSR slots.
    fn prepare(
        &self,
        id: FuncId,
        version: u32,
        mut func: ir::Function,
    ) -> Result<(ir::Function, Option<OsrSlots>)> {
        // The function's own name: tier-1 code recognizes its recursion by
        // it (see `resolver`).
        func.name = UserFuncName::User(UserExternalName::new(FUNCTIONS, id.index()));
        if self.tier != Tier::Adaptive {
            return Ok((func, None));
        }
        self.functions.register_for_tiering(id, version)?;
        let osr = !self.lock().no_osr.contains(&id);
        let loops = if osr { osr_loops(&func) } else { Vec::new() };
        let slots = if loops.is_empty() {
            None
        } else {
            Some(TieredFunctions::osr_slots(loops.len())?)
        };
        let source = Source {
            version,
            func: func.clone(),
            loops,
        };
        if let Some(slots) = &slots {
            add_osr_checks(&mut func, &source.loops, slots.as_ptr() as u64);
        }
        self.lock().sources.insert(id, Arc::new(source));
        Ok((func, slots))
    }

    /// Adds version `version` of `id` as a unit of its first tier under
    /// `tracker`.
    fn add_body(
        self: &Arc<Self>,
        id: FuncId,
        version: u32,
        func: ir::Function,
        tracker: &ResourceTracker,
    ) -> Result<(CodeTier, Option<OsrSlots>)> {
        let (tier, mut slots) = self.add_module(vec![(id, version, func)], tracker)?;
        Ok((tier, slots.pop().flatten()))
    }

    /// Adds `funcs` (each with its version) as one module of the first
    /// tier under `tracker`.
    fn add_module(
        self: &Arc<Self>,
        funcs: Vec<(FuncId, u32, ir::Function)>,
        tracker: &ResourceTracker,
    ) -> Result<(CodeTier, Vec<Option<OsrSlots>>)> {
        let tier = self.first_tier();
        let mut slots = Vec::with_capacity(funcs.len());
        let mut functions = Vec::with_capacity(funcs.len());
        let versions: Vec<(FuncId, u32)> = funcs.iter().map(|(id, v, _)| (*id, *v)).collect();
        for (id, version, func) in funcs {
            let (func, osr) = self.prepare(id, version, func)?;
            slots.push(osr);
            functions.push((self.functions.body(id, tier, version)?.to_string(), func));
        }
        self.add_first_tier(&versions, functions, tracker)?;
        Ok((tier, slots))
    }

    /// Compiles `functions` (symbol, CLIF), as one module under `tracker`,
    /// with the first tier; `versions` are the tiered functions they are
    /// versions of (empty for untiered code), for the frontend's own tier-1
    /// lowering and direct self-calls.
    fn add_first_tier(
        self: &Arc<Self>,
        versions: &[(FuncId, u32)],
        functions: Vec<(String, ir::Function)>,
        tracker: &ResourceTracker,
    ) -> Result<()> {
        let bodies = self.functions.bodies_dylib();
        let name = module_name(functions.iter().map(|(s, _)| s.as_str()));
        match self.first_tier() {
            CodeTier::Zero => {
                let mut module = FunctionModule::new(name, self.resolver(HashMap::new()));
                for (symbol, func) in functions {
                    module = module.with_function(symbol, func, CALLABLE);
                }
                self.cranelift.add(bodies, Box::new(module), Some(tracker))
            }
            CodeTier::One => {
                let requests: Vec<(FuncId, u32, String)> = versions
                    .iter()
                    .zip(&functions)
                    .map(|(&(id, v), (s, _))| (id, v, s.clone()))
                    .collect();
                let module: Box<dyn LlvmModule> = match self.hand_lowered(&requests) {
                    Some(module) => module,
                    None => Box::new(self.translated(&name, &requests, functions)),
                };
                self.llvm.get()?.add(bodies, module, Some(tracker))
            }
        }
    }

    /// The frontend's own tier-1 module for `requests` (function, version,
    /// symbol), if it set a lowering and the lowering takes them.
    fn hand_lowered(&self, requests: &[(FuncId, u32, String)]) -> Option<Box<dyn LlvmModule>> {
        if requests.is_empty() {
            return None;
        }
        let lowering = self.lock().lowering.clone()?;
        lowering.lower(requests)
    }

    /// A module translating `functions` (symbol, CLIF) to LLVM IR, in which
    /// each of `requests` calls itself directly, by its own symbol.
    fn translated(
        self: &Arc<Self>,
        name: &str,
        requests: &[(FuncId, u32, String)],
        functions: Vec<(String, ir::Function)>,
    ) -> ClifLlvmModule {
        let own = requests
            .iter()
            .map(|(id, _, symbol)| (id.index(), symbol.clone()))
            .collect();
        let (config, debug) = {
            let tables = self.lock();
            (tables.translate.clone(), tables.debug_source.clone())
        };
        let mut module = ClifLlvmModule::new(name, self.resolver(own), config);
        if let Some(source) = debug {
            module = module.with_debug_source(source);
        }
        for (symbol, func) in functions {
            module = module.with_function(symbol, func, CALLABLE);
        }
        module
    }

    /// Records that `name`'s CLIF uses `e`, which the translation does not
    /// take (once per function).
    fn note_untranslated(&self, name: String, e: &TranslateError) {
        let what = match e {
            TranslateError::Unsupported { what, .. } => what.clone(),
            other => other.to_string(),
        };
        let mut tables = self.lock();
        if !tables.untranslated.iter().any(|(n, _)| *n == name) {
            tables.untranslated.push((name, what));
        }
    }
}

/// The first-tier body of a deferred function: produces its CLIF when
/// materialized.
struct DeferredUnit {
    state: Arc<State>,
    id: FuncId,
    symbol: SymbolName,
    producer: Option<ClifProducer>,
}

impl MaterializationUnit for DeferredUnit {
    fn name(&self) -> &str {
        self.symbol.as_str()
    }

    fn symbols(&self) -> SymbolFlagsMap {
        std::iter::once((self.symbol.clone(), CALLABLE)).collect()
    }

    fn materialize(mut self: Box<Self>, r: MaterializationResponsibility) {
        let Some(producer) = self.producer.take() else {
            return r.fail(Error::other("deferred function materialized twice"));
        };
        let (state, id, symbol) = (&self.state, self.id, self.symbol.to_string());
        match producer() {
            Ok(func) => {
                let (func, slots) = match state.prepare(id, 0, func) {
                    Ok(prepared) => prepared,
                    Err(e) => return r.fail(e),
                };
                if let Some(slots) = slots {
                    if let Err(e) = state.functions.attach_osr(id, 0, slots) {
                        return r.fail(e);
                    }
                }
                let module = FunctionModule::new(symbol.clone(), state.resolver(HashMap::new()))
                    .with_function(symbol, func, CALLABLE);
                state.cranelift.emit(r, Box::new(module));
            }
            Err(why) => {
                let name = state
                    .functions
                    .name(id)
                    .map_or_else(|_| symbol.clone(), |n| n.to_string());
                state.lock().fallbacks.push((name.clone(), why.clone()));
                match state.hand_lowered(&[(id, 0, symbol)]) {
                    Some(module) => match state.llvm.get() {
                        Ok(llvm) => llvm.emit(r, module),
                        Err(e) => r.fail(e),
                    },
                    None => r.fail(Error::other(format!("no CLIF for '{name}': {why}"))),
                }
            }
        }
    }

    fn discard(&mut self, _dylib: &JitDylib, _name: &SymbolName) {
        // A body symbol is a strong definition: nothing to lose to.
    }
}

/// The host symbol of [`TierTrace::osr_probe`], which OSR entries call
/// first while tier changes are traced.
pub(crate) const OSR_PROBE: &str = "__orc_tier_trace_osr";

/// Makes `func` call `probe(args)` (System V, three `i64`s, no result)
/// before anything else.
fn call_probe(func: &mut ir::Function, probe: UserExternalName, args: [i64; 3]) {
    use orc_cranelift::codegen::cursor::{Cursor, FuncCursor};
    use orc_cranelift::codegen::ir::{types::I64, AbiParam, InstBuilder};
    let Some(entry) = func.layout.entry_block() else {
        return;
    };
    let mut sig = ir::Signature::new(orc_cranelift::codegen::isa::CallConv::SystemV);
    sig.params = vec![AbiParam::new(I64); 3];
    let sig = func.import_signature(sig);
    let name = func.declare_imported_user_function(probe);
    let callee = func.import_function(ir::ExtFuncData {
        name: ExternalName::User(name),
        signature: sig,
        colocated: false,
        patchable: false,
    });
    let mut pos = FuncCursor::new(func);
    pos.goto_first_insertion_point(entry);
    let args: Vec<ir::Value> = args.iter().map(|&a| pos.ins().iconst(I64, a)).collect();
    pos.ins().call(callee, &args);
}

/// A module's name after the symbols it defines.
fn module_name<'a>(mut symbols: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = symbols.len();
    let first = symbols.next().unwrap_or_default().to_owned();
    match n {
        0 | 1 => first,
        n => format!("{first} (+{} more)", n - 1),
    }
}

/// The [`Tier1Compiler`] of a [`TieredLayer`]: translates each requested
/// version's CLIF, and its loops' OSR entries, as one LLVM module.
struct Promoter(std::sync::Weak<State>);

impl Tier1Compiler for Promoter {
    fn compile(&self, batch: &[Tier1Request], tracker: &ResourceTracker) -> Result<Vec<Vec<bool>>> {
        let state = self
            .0
            .upgrade()
            .ok_or_else(|| Error::other("the tiered layer is gone"))?;
        let sources = {
            let tables = state.lock();
            batch
                .iter()
                .map(|r| match tables.sources.get(&r.id) {
                    Some(source) if source.version == r.version => Ok(source.clone()),
                    _ => Err(Error::other(format!(
                        "no CLIF kept for version {} of '{}'",
                        r.version,
                        state.functions.name(r.id)?
                    ))),
                })
                .collect::<Result<Vec<Arc<Source>>>>()?
        };
        let requests: Vec<(FuncId, u32, String)> = batch
            .iter()
            .map(|r| (r.id, r.version, r.symbol.to_string()))
            .collect();
        let hand = state.hand_lowered(&requests);
        let trace = state.lock().trace.clone();
        // The bodies (unless the frontend lowered them), then each loop's
        // OSR entry the translation takes.
        let mut functions = Vec::new();
        if hand.is_none() {
            for (r, source) in batch.iter().zip(&sources) {
                if let Err(e) = check_translatable(&source.func, &r.symbol) {
                    state.note_untranslated(state.functions.name(r.id)?.to_string(), &e);
                    return Err(Error::layer(e));
                }
                functions.push((r.symbol.to_string(), source.func.clone()));
            }
        }
        let mut built = Vec::with_capacity(batch.len());
        for (r, source) in batch.iter().zip(&sources) {
            let mut entries = Vec::with_capacity(r.osr_entries.len());
            for (i, (symbol, lp)) in r.osr_entries.iter().zip(&source.loops).enumerate() {
                let mut entry = osr_entry(&source.func, lp);
                if let Some(trace) = &trace {
                    let probe = state.import_name(OSR_PROBE);
                    let context = Arc::as_ptr(trace) as i64;
                    call_probe(
                        &mut entry,
                        probe,
                        [context, i64::from(r.id.index()), i as i64],
                    );
                }
                let ok = check_translatable(&entry, symbol).is_ok();
                if ok {
                    functions.push((symbol.to_string(), entry));
                }
                entries.push(ok);
            }
            built.push(entries);
        }
        // Compiled on this (tier-up) thread, not on the session's compile
        // threads: tier 0's first-call compiles must not wait behind an
        // LLVM compile.
        let llvm = state.llvm.get()?;
        let bodies = state.functions.bodies_dylib();
        if let Some(hand) = hand {
            llvm.add_compiled_here(bodies, hand, Some(tracker))?;
        }
        if !functions.is_empty() {
            let name = module_name(batch.iter().map(|r| r.symbol.as_str()));
            let module = state.translated(&format!("{name} (translated)"), &requests, functions);
            llvm.add_compiled_here(bodies, Box::new(module), Some(tracker))?;
        }
        Ok(built)
    }
}
