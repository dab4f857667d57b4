//! Kaleidoscope on a [`Jit`]: functions become lazily compiled tier-0
//! bodies behind stubs, top-level expressions run once under their own
//! resource tracker, and redefinition repoints the stub.
//!
//! Naming: the body of function `f` is the symbol `f$t0` in `main.impl`;
//! `f` itself is a lazy re-export (a stub) in `main`. Bodies call other
//! functions by their plain names, which resolve to the stubs, so a
//! redefinition (or a tier-up) reaches every caller. The one exception is
//! tier-1 code calling itself: `f$t1`'s recursion calls `f$t1` directly
//! (see `KaleidoscopeLlvmModule`), so a redefinition reaches it at its next
//! call from outside.
//!
//! Adaptive tiering: each tier-0 body is registered with the tier manager
//! (with one OSR slot per loop). When a batch starts, each of its
//! functions' stubs skips the entry-counting thunk and jumps straight to
//! the tier-0 body, so the compile window runs uncounted. Functions that turn hot together are
//! recompiled as one LLVM module holding `f$t1` (`f$t1.N` for the Nth
//! redefinition) and an entry `f$t1$osrL` per loop; installing repoints the
//! stub, publishes the entries (a frame still looping in `f$t0` moves over
//! at its next iteration) and releases the tier-0 body. A body's code is a
//! shared `Body`, removed when the last function using it lets go.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use cranelift_module::Module;
use orc_core::{
    Error, ExecutionSession, ExecutorAddr, JitDylib, MaterializationUnit, ResourceTracker, Result,
    SymbolAliasMap, SymbolAliasMapEntry, SymbolFlags, SymbolFlagsMap, SymbolLookupSet, SymbolName,
    SymbolState,
};
use orc_cranelift::CraneliftModule;
use orc_kaleidoscope::{Diagnostic, Function, Program};

use crate::jit::{Jit, Tier};

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// The tier-0 body symbol of function `name`.
pub fn body_symbol(name: &str) -> String {
    tier_body_symbol(name, Tier::Zero)
}

/// The body symbol of function `name` compiled by `tier`.
pub fn tier_body_symbol(name: &str, tier: Tier) -> String {
    match tier {
        // Adaptive code starts in tier 0; promotion adds `$t1` bodies.
        Tier::Zero | Tier::Adaptive => format!("{name}$t0"),
        Tier::One => format!("{name}$t1"),
    }
}

/// Kaleidoscope functions lowered into one Cranelift module, each under its
/// body symbol. The trees are shared with the parsed program, not copied,
/// and the symbols are interned once by the driver.
struct KalModule {
    name: SymbolName,
    functions: Vec<(SymbolName, Arc<Function>, Option<u64>)>,
}

/// The on-stack-replacement slots of one tier-0 body (one per loop; see
/// `orc_kaleidoscope::OsrSlot`). The body's code reads them at their fixed
/// address; the body's `Promoter`, kept in the driver's registry for the
/// life of the driver, owns them (a few words per tiered body version).
type OsrSlots = Arc<[orc_kaleidoscope::OsrSlot]>;

impl CraneliftModule for KalModule {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.functions
            .iter()
            .map(|(symbol, _, _)| (symbol.to_string(), CALLABLE))
            .collect()
    }

    fn interned_symbols(&self, _es: &ExecutionSession) -> SymbolFlagsMap {
        self.functions
            .iter()
            .map(|(symbol, _, _)| (symbol.clone(), CALLABLE))
            .collect()
    }

    fn build(self: Box<Self>, module: &mut dyn Module) -> std::result::Result<(), String> {
        for (symbol, func, osr) in &self.functions {
            orc_kaleidoscope::lower_function_osr(module, func, symbol, *osr).map_err(|e| {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message.push_str(": ");
                    message.push_str(&s.to_string());
                    source = s.source();
                }
                message
            })?;
        }
        Ok(())
    }
}

/// Errors of the Kaleidoscope driver: source diagnostics or JIT errors.
#[derive(Debug, thiserror::Error)]
pub enum KaleidoscopeError {
    /// The source did not parse or check.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Source(Vec<Diagnostic>),
    /// The JIT failed (link error, missing symbol...).
    #[error(transparent)]
    Jit(#[from] Error),
    /// A function was used with the wrong number of arguments.
    #[error("function '{name}' takes {expected} argument{}, not {given}", if *.expected == 1 { "" } else { "s" })]
    Arity {
        /// The function.
        name: String,
        /// Its arity.
        expected: usize,
        /// The arity asked for.
        given: usize,
    },
}

/// The code of one or more functions, under one tracker. The functions
/// whose current code it holds share it (an eager program's module, a
/// tier-1 batch); it is removed when the last one lets go.
struct Body(Option<ResourceTracker>);

impl Body {
    fn new(tracker: ResourceTracker) -> Arc<Body> {
        Arc::new(Body(Some(tracker)))
    }

    /// Lets go of `body`: removes its code now if this was the last user
    /// (its memory is reclaimed once no thread can be running it).
    fn release(body: Arc<Body>) -> Result<()> {
        match Arc::into_inner(body).and_then(|mut b| b.0.take()) {
            Some(tracker) => tracker.remove(),
            None => Ok(()),
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // Only reached when the driver itself goes away (releases go
        // through `Body::release`, which reports errors); a failure here
        // means the session has already ended.
        if let Some(tracker) = self.0.take() {
            let _ = tracker.remove();
        }
    }
}

struct FunctionState {
    arity: usize,
    /// The current body's code (possibly shared with other functions).
    body: Option<Arc<Body>>,
    /// How many times the function was redefined.
    version: usize,
}

/// Function states by (interned) name, shared with background promotions.
type FunctionTable = Arc<Mutex<HashMap<SymbolName, FunctionState>>>;

fn lock(table: &FunctionTable) -> MutexGuard<'_, HashMap<SymbolName, FunctionState>> {
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs Kaleidoscope programs on a [`Jit`]. See the module docs.
pub struct KaleidoscopeJit {
    jit: Jit,
    functions: FunctionTable,
    n_modules: usize,
    /// Adaptive only: how to promote each registered tier-0 body, for the
    /// tier manager's batches.
    promoters: Promoters,
}

/// Promoters by tier-0 body symbol.
type Promoters = Arc<Mutex<HashMap<String, Arc<Promoter>>>>;

/// A function's stub symbol (its name, in `main`) and body symbol (in
/// `main.impl`), interned once.
#[derive(Clone)]
struct Symbols {
    stub: SymbolName,
    body: SymbolName,
}

impl KaleidoscopeJit {
    /// A driver over `jit`. With adaptive tiering, functions that turn hot
    /// together are recompiled by tier 1 as one module.
    pub fn new(jit: Jit) -> Self {
        let promoters = Promoters::default();
        if let Some(tiers) = jit.tier_manager() {
            let registry = promoters.clone();
            tiers.set_batch_promoter(Arc::new(move |names: &[&str]| {
                let found: Vec<Option<Arc<Promoter>>> = {
                    let registry = registry.lock().unwrap_or_else(|p| p.into_inner());
                    names.iter().map(|n| registry.get(*n).cloned()).collect()
                };
                let known: Vec<&Promoter> = found.iter().flatten().map(|p| &**p).collect();
                let mut results = promote_batch(&known).into_iter();
                names
                    .iter()
                    .zip(&found)
                    .map(|(name, p)| match p {
                        Some(_) => results
                            .next()
                            .unwrap_or_else(|| Err(Error::other("no result"))),
                        None => Err(Error::other(format!(
                            "'{name}' was registered by another driver"
                        ))),
                    })
                    .collect()
            }));
        }
        KaleidoscopeJit {
            jit,
            functions: Arc::default(),
            n_modules: 0,
            promoters,
        }
    }

    /// The underlying JIT.
    pub fn jit(&self) -> &Jit {
        &self.jit
    }

    fn fresh_tracker(&self) -> Result<ResourceTracker> {
        self.jit.bodies_dylib().create_resource_tracker()
    }

    fn main(&self) -> &JitDylib {
        self.jit.main_dylib()
    }

    fn intern(&self, name: &str) -> SymbolName {
        self.jit.session().intern(name)
    }

    /// The stub and (first) body symbols of function `name` in this JIT's
    /// tier.
    fn symbols(&self, name: &str) -> Symbols {
        Symbols {
            stub: self.intern(name),
            body: self.intern(&tier_body_symbol(name, self.jit.config().tier)),
        }
    }

    /// Adds `functions` (each with the symbol it is defined under) as one
    /// module called `name` of this JIT's tier, under `tracker`.
    fn add_module(
        &self,
        name: SymbolName,
        functions: Vec<(SymbolName, Arc<Function>, Option<u64>)>,
        tracker: &ResourceTracker,
    ) -> Result<()> {
        let bodies = self.jit.bodies_dylib();
        match self.jit.config().tier {
            Tier::Zero | Tier::Adaptive => self.jit.cranelift_layer().add(
                bodies,
                Box::new(KalModule { name, functions }),
                Some(tracker),
            ),
            Tier::One => {
                let functions = functions
                    .into_iter()
                    .map(|(symbol, func, _)| (symbol.to_string(), func))
                    .collect();
                let module =
                    orc_kaleidoscope::KaleidoscopeLlvmModule::shared(name.as_str(), functions);
                self.jit.llvm_layer()?.add(bodies, module, Some(tracker))
            }
        }
    }

    /// A unit defining the stubs of `functions`, each standing for its body
    /// symbol.
    fn stub_unit(&self, functions: &[Symbols]) -> Box<dyn MaterializationUnit> {
        let aliases: SymbolAliasMap = functions
            .iter()
            .map(|f| {
                let entry = SymbolAliasMapEntry {
                    aliasee: f.body.clone(),
                    flags: CALLABLE,
                };
                (f.stub.clone(), entry)
            })
            .collect();
        self.jit
            .lazy_reexports()
            .lazy_reexports(self.jit.bodies_dylib(), aliases)
    }

    /// Compiles the bodies of `functions` now and points their stubs at
    /// them.
    fn compile_now(&self, functions: &[Symbols]) -> Result<()> {
        let es = self.jit.session();
        let bodies: SymbolLookupSet = functions.iter().map(|f| f.body.clone()).collect();
        let order = self.jit.bodies_dylib().search_order()?;
        let found = es.lookup(&order, bodies, SymbolState::Ready)?;
        let lazy = self.jit.lazy_reexports();
        for f in functions {
            // Make sure the stub exists (looking it up materializes it).
            self.main().lookup_symbol(&f.stub)?;
            if let Some(def) = found.get(&f.body) {
                lazy.redirect(self.main(), &f.stub, def.addr)?;
            }
        }
        Ok(())
    }

    /// Defines `func`, or redefines it. A redefinition gets a body symbol
    /// of its own (`f$t0.1`, `f$t0.2`...), is compiled at once and the stub
    /// is repointed to it, so every caller, including code already
    /// compiled, runs the new body on its next call; the old body is
    /// removed (its memory is reclaimed once no thread can be running it).
    /// With an eager JIT a new function is compiled at once too. The tree
    /// is shared with the compile unit, not copied.
    pub fn define(&mut self, func: &Arc<Function>) -> Result<()> {
        let stub = self.intern(&func.proto.name);
        let known = lock(&self.functions).get(&stub).map(|state| state.version);
        let Some(old_version) = known else {
            let symbols = self.define_units(&[(stub, func)])?;
            if !self.jit.config().lazy {
                self.compile_now(&symbols)?;
            }
            return Ok(());
        };
        let symbols = self.symbols(&func.proto.name);
        let tracker = self.fresh_tracker()?;
        let version = old_version + 1;
        let body = self.intern(&format!("{}.{version}", symbols.body));
        let osr = self.register_for_tiering(&body, func, &symbols.stub, version);
        self.add_module(
            body.clone(),
            vec![(body.clone(), func.clone(), osr)],
            &tracker,
        )?;
        let addr = self.jit.bodies_dylib().lookup_symbol(&body)?.addr;
        // The stub may never have been looked up (and so not exist yet):
        // looking it up materializes it.
        self.main().lookup_symbol(&symbols.stub)?;
        let old = {
            let mut table = lock(&self.functions);
            let state = table
                .get_mut(&symbols.stub)
                .ok_or_else(|| Error::other("function table changed"))?;
            // Under the table lock, so a promotion of the old version that
            // finishes now cannot repoint the stub after us.
            self.jit
                .lazy_reexports()
                .redirect(self.main(), &symbols.stub, addr)?;
            state.arity = func.proto.arity();
            state.version = version;
            state.body.replace(Body::new(tracker))
        };
        if let Some(old) = old {
            Body::release(old)?;
        }
        Ok(())
    }

    /// With adaptive tiering, registers the tier-0 body `body` of function
    /// `name` (at `version`) so its code counts and a hot body is recompiled
    /// by tier 1 in the background. Returns the address of the body's OSR
    /// slots when it has loops: the tier-1 recompile also builds an entry
    /// per loop, so a frame that is still looping in tier 0 moves over.
    fn register_for_tiering(
        &self,
        body: &SymbolName,
        func: &Arc<Function>,
        name: &SymbolName,
        version: usize,
    ) -> Option<u64> {
        let tiers = self.jit.tier_manager()?;
        let loops = orc_kaleidoscope::loop_count(func);
        let osr: Option<OsrSlots> = (loops > 0).then(|| {
            (0..loops)
                .map(|_| orc_kaleidoscope::OsrSlot::default())
                .collect()
        });
        let osr_base = osr.as_ref().map(|slots| slots.as_ptr() as u64);
        let promoter = Arc::new(Promoter {
            main: self.jit.main_dylib().clone(),
            bodies: self.jit.bodies_dylib().clone(),
            llvm: self.jit.llvm_layer_cell().clone(),
            lazy: self.jit.lazy_reexports().clone(),
            table: self.functions.clone(),
            func: func.clone(),
            name: name.clone(),
            tier0: body.clone(),
            version,
            osr,
        });
        self.promoters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(body.to_string(), promoter.clone());
        tiers.register(body, Arc::new(move || promoter.promote()));
        osr_base
    }

    /// With adaptive tiering: for each tier-0 body with loops, how many
    /// frames moved from its loops to tier-1 code (on-stack replacement).
    pub fn osr_transfers(&self) -> Vec<(String, u64)> {
        let promoters = self.promoters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, u64)> = promoters
            .iter()
            .filter_map(|(body, p)| {
                let slots = p.osr.as_ref()?;
                let n = slots
                    .iter()
                    .map(|s| s.transfers.load(std::sync::atomic::Ordering::Relaxed))
                    .sum();
                Some((body.clone(), n))
            })
            .collect();
        out.sort();
        out
    }

    /// Defines new functions (none of them known yet), each as its own
    /// unit under its own tracker, behind its stub. Every table they go into
    /// is sized for all of them first, so defining a big program rehashes
    /// nothing, and the work goes in stages (body names, bodies with their
    /// trackers, stubs, table), each over all functions: a stage's code
    /// stays in the instruction cache instead of the whole pipeline running
    /// per function. Returns the functions' symbols.
    fn define_units(&mut self, funcs: &[(SymbolName, &Arc<Function>)]) -> Result<Vec<Symbols>> {
        let n = funcs.len();
        self.jit.bodies_dylib().reserve(n, n);
        self.main().reserve(n, n);
        let symbols = self.symbols_of(funcs);
        let mut trackers = Vec::with_capacity(n);
        for (s, (_, func)) in symbols.iter().zip(funcs) {
            let tracker = self.fresh_tracker()?;
            let osr = self.register_for_tiering(&s.body, func, &s.stub, 0);
            let functions = vec![(s.body.clone(), Arc::clone(func), osr)];
            self.add_module(s.stub.clone(), functions, &tracker)?;
            trackers.push(tracker);
        }
        for s in &symbols {
            self.main()
                .define(self.stub_unit(std::slice::from_ref(s)), None)?;
        }
        let mut table = lock(&self.functions);
        table.reserve(n);
        for ((s, (_, func)), tracker) in symbols.iter().zip(funcs).zip(trackers) {
            let state = FunctionState {
                arity: func.proto.arity(),
                body: Some(Body::new(tracker)),
                version: 0,
            };
            table.insert(s.stub.clone(), state);
        }
        Ok(symbols)
    }

    /// Defines every function of `program` (not its top-level
    /// expressions). The functions not defined yet are added together:
    /// lazily one unit per function, eagerly all bodies in one module,
    /// compiled now. Then the others (and repeats within the program) are
    /// redefined one by one, in order.
    pub fn add_program(&mut self, program: &Program) -> Result<()> {
        let mut new = Vec::new();
        let mut redefined = Vec::new();
        // Each function interns its name and its body's.
        self.jit
            .session()
            .symbol_string_pool()
            .reserve(2 * program.functions().count());
        {
            let mut seen = HashSet::new();
            let table = lock(&self.functions);
            for func in program.shared_functions() {
                let stub = self.intern(&func.proto.name);
                if !table.contains_key(&stub) && seen.insert(stub.clone()) {
                    new.push((stub, func));
                } else {
                    redefined.push(func);
                }
            }
        }
        if !new.is_empty() {
            if self.jit.config().lazy {
                self.define_units(&new)?;
            } else {
                self.define_module(&new)?;
            }
        }
        for func in redefined {
            self.define(func)?;
        }
        Ok(())
    }

    /// The stub and body symbols of each of `funcs`.
    fn symbols_of(&mut self, funcs: &[(SymbolName, &Arc<Function>)]) -> Vec<Symbols> {
        let tier = self.jit.config().tier;
        funcs
            .iter()
            .map(|(stub, _)| Symbols {
                stub: stub.clone(),
                body: self.intern(&tier_body_symbol(stub, tier)),
            })
            .collect()
    }

    /// Defines new functions as one module under one tracker and compiles
    /// it now (the eager path).
    fn define_module(&mut self, funcs: &[(SymbolName, &Arc<Function>)]) -> Result<()> {
        let tracker = self.fresh_tracker()?;
        self.n_modules += 1;
        let symbols = self.symbols_of(funcs);
        let bodies = symbols
            .iter()
            .zip(funcs)
            .map(|(s, (_, f))| {
                let osr = self.register_for_tiering(&s.body, f, &s.stub, 0);
                (s.body.clone(), Arc::clone(f), osr)
            })
            .collect();
        let name = self.intern(&format!("program{}", self.n_modules));
        self.add_module(name, bodies, &tracker)?;
        self.main().define(self.stub_unit(&symbols), None)?;
        // Every function shares the module: it is removed once all of them
        // have been redefined or promoted.
        let body = Body::new(tracker);
        for (s, (_, func)) in symbols.iter().zip(funcs) {
            lock(&self.functions).insert(
                s.stub.clone(),
                FunctionState {
                    arity: func.proto.arity(),
                    body: Some(body.clone()),
                    version: 0,
                },
            );
        }
        self.compile_now(&symbols)
    }

    /// Compiles and runs a top-level expression (a parameterless function)
    /// under its own tracker, removed once it has run. Returns its value.
    pub fn run_top_level(&mut self, expr: &Function) -> Result<f64> {
        let tracker = self.fresh_tracker()?;
        let name = self.intern(&expr.proto.name);
        let func = (name.clone(), Arc::new(expr.clone()), None);
        self.add_module(name.clone(), vec![func], &tracker)?;
        let result = self.jit.bodies_dylib().lookup_symbol(&name).map(|def| {
            let _inside = self.jit.enter();
            // SAFETY: a Kaleidoscope top-level expression is compiled as
            // `extern "C" fn() -> f64` (the frontend's calling convention);
            // its tracker, and so its code, lives until after the call.
            let f: extern "C" fn() -> f64 = unsafe { std::mem::transmute(def.addr.to_ptr::<u8>()) };
            f()
        });
        tracker.remove()?;
        result
    }

    /// Parses, checks and runs `source`: defines its functions, then runs
    /// its top-level expressions in order, returning their values.
    pub fn eval(&mut self, source: &str) -> std::result::Result<Vec<f64>, KaleidoscopeError> {
        let program =
            orc_kaleidoscope::parse_and_check(source).map_err(KaleidoscopeError::Source)?;
        self.add_program(&program)?;
        let mut values = Vec::new();
        for expr in program.top_level_exprs() {
            values.push(self.run_top_level(expr)?);
        }
        Ok(values)
    }

    /// The arity of a defined function.
    pub fn arity(&self, name: &str) -> Option<usize> {
        lock(&self.functions)
            .get(&self.intern(name))
            .map(|s| s.arity)
    }

    /// A typed handle on function `name`, checked to take `A::ARITY`
    /// arguments.
    pub fn function<A: KalArgs>(
        &self,
        name: &str,
    ) -> std::result::Result<KalFunction<'_, A>, KaleidoscopeError> {
        let arity = self.arity(name).ok_or_else(|| Error::SymbolsNotFound {
            symbols: vec![self.jit.session().intern(name)],
        })?;
        if arity != A::ARITY {
            return Err(KaleidoscopeError::Arity {
                name: name.to_owned(),
                expected: arity,
                given: A::ARITY,
            });
        }
        let addr = self.jit.lookup(name)?;
        Ok(KalFunction {
            jit: &self.jit,
            addr,
            _args: PhantomData,
        })
    }
}

impl std::fmt::Debug for KaleidoscopeJit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KaleidoscopeJit")
            .field("functions", &lock(&self.functions).len())
            .finish()
    }
}

/// Argument tuples of Kaleidoscope functions (every value is an `f64`).
pub trait KalArgs: sealed::Sealed {
    /// The number of arguments.
    const ARITY: usize;
    #[doc(hidden)]
    fn call(self, addr: ExecutorAddr) -> f64;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! kal_args {
    ($n:expr; $($a:ident),*) => {
        impl sealed::Sealed for ($(kal_args!(@f64 $a),)*) {}
        impl KalArgs for ($(kal_args!(@f64 $a),)*) {
            const ARITY: usize = $n;
            #[allow(non_snake_case)]
            fn call(self, addr: ExecutorAddr) -> f64 {
                let ($($a,)*) = self;
                // SAFETY: `KaleidoscopeJit::function` checked that the
                // function behind `addr` takes exactly this many f64s and
                // returns an f64 (every Kaleidoscope function does).
                let f: extern "C" fn($(kal_args!(@f64 $a)),*) -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
                f($($a),*)
            }
        }
    };
    (@f64 $a:ident) => { f64 };
}

kal_args!(0;);
kal_args!(1; A);
kal_args!(2; A, B);
kal_args!(3; A, B, C);
kal_args!(4; A, B, C, D);
kal_args!(5; A, B, C, D, E);
kal_args!(6; A, B, C, D, E, F);
kal_args!(7; A, B, C, D, E, F, G);
kal_args!(8; A, B, C, D, E, F, G, H);

/// A Kaleidoscope function with a checked signature, callable from Rust.
pub struct KalFunction<'j, A: KalArgs> {
    jit: &'j Jit,
    addr: ExecutorAddr,
    _args: PhantomData<fn(A) -> f64>,
}

impl<A: KalArgs> KalFunction<'_, A> {
    /// Calls the function (through its stub: compiling it on first call).
    pub fn call(&self, args: A) -> f64 {
        let _inside = self.jit.enter();
        args.call(self.addr)
    }

    /// The function's canonical address (its stub).
    pub fn address(&self) -> ExecutorAddr {
        self.addr
    }
}

/// Recompiles one function with tier 1 and repoints its stub (runs on a
/// Recompiles one function with tier 1 and repoints its stub (runs on a
/// tier-up thread).
struct Promoter {
    main: JitDylib,
    bodies: JitDylib,
    llvm: Arc<crate::jit::LazyLlvmLayer>,
    lazy: Arc<orc_core::lazy::LazyReexportsManager>,
    table: FunctionTable,
    func: Arc<Function>,
    name: SymbolName,
    /// The tier-0 body symbol (`f$t0`, `f$t0.N`) in `bodies`.
    tier0: SymbolName,
    version: usize,
    /// The tier-0 body's OSR slots, if it has loops.
    osr: Option<OsrSlots>,
}

impl Promoter {
    /// The tier-1 body symbol.
    fn tier1_symbol(&self) -> String {
        match self.version {
            0 => tier_body_symbol(&self.name, Tier::One),
            v => format!("{}.{v}", tier_body_symbol(&self.name, Tier::One)),
        }
    }

    /// The function is on its way to tier 1, so counting its entries is
    /// wasted work: points the stub past the entry thunk, straight at the
    /// tier-0 body, for the rest of the compile (~20% of a call-heavy
    /// function's tier-0 time). Loop back-edges still count, harmlessly. A
    /// tier-1 failure leaves the function there: it is never queued again.
    fn stop_counting_entries(&self) {
        if orc_core::TripCounter::preserve_all_trip().is_none() {
            return; // No entry thunks on this host.
        }
        let Ok(thunk) = self.bodies.lookup_symbol(&self.tier0) else {
            return;
        };
        let table = lock(&self.table);
        match table.get(&self.name) {
            Some(state) if state.version == self.version => {}
            _ => return,
        }
        if self.lazy.current_target(&self.main, &self.name).ok() != Some(thunk.addr) {
            return;
        }
        // SAFETY: `thunk` is the start of this version's tier-0 symbol,
        // which on this host the tier-0 layer defines as an entry thunk of
        // more than `BODY_JUMP_END` bytes (`body_of` checks its bytes
        // before trusting them). Its code stays mapped while the table
        // holds the version's body, and the table is locked.
        let code = unsafe {
            std::slice::from_raw_parts(
                thunk.addr.to_ptr::<u8>(),
                orc_core::EntryThunk::BODY_JUMP_END,
            )
        };
        if let Some(body) = orc_core::EntryThunk::body_of(code, thunk.addr.value()) {
            let _ = self
                .lazy
                .redirect(&self.main, &self.name, ExecutorAddr(body));
        }
    }

    /// Compiles this function alone.
    fn promote(&self) -> Result<orc_core::Promotion> {
        promote_batch(&[self])
            .pop()
            .unwrap_or_else(|| Err(Error::other("no result")))
    }

    /// Puts linked tier-1 code to use: repoints the stub to `addr`,
    /// publishes the OSR entries and lets go of the tier-0 body. Nothing
    /// happens when the function was redefined while it compiled.
    fn install(
        &self,
        addr: ExecutorAddr,
        osr_entries: &[ExecutorAddr],
        body: &Arc<Body>,
        compile_time: std::time::Duration,
    ) -> Result<orc_core::Promotion> {
        let old_tier0 = {
            let mut table = lock(&self.table);
            match table.get_mut(&self.name) {
                Some(state) if state.version == self.version => {
                    self.lazy.redirect(&self.main, &self.name, addr)?;
                    // Frames still looping in the tier-0 body move over at
                    // their loop's next iteration. The entries live in the
                    // new body, which is released after the tier-0 body
                    // (so after any frame that can read them).
                    if let Some(slots) = &self.osr {
                        for (slot, entry) in slots.iter().zip(osr_entries) {
                            slot.entry
                                .store(entry.value(), std::sync::atomic::Ordering::Release);
                        }
                    }
                    Some(state.body.replace(body.clone()))
                }
                // Redefined while we compiled: this code is stale.
                _ => None,
            }
        };
        let installed = old_tier0.is_some();
        // The tier-0 body leaves the dylib; its memory is reclaimed once no
        // thread can be running it.
        if let Some(Some(old)) = old_tier0 {
            Body::release(old)?;
        }
        Ok(orc_core::Promotion {
            compile_time,
            installed,
        })
    }
}

/// Recompiles `promoters`' functions with tier 1 as one module (each with
/// its OSR entries), then installs each. If the module fails, each function
/// is tried alone, so one bad function fails by itself.
fn promote_batch(promoters: &[&Promoter]) -> Vec<Result<orc_core::Promotion>> {
    let Some(first) = promoters.first() else {
        return Vec::new();
    };
    let start = Instant::now();
    for p in promoters {
        p.stop_counting_entries();
    }
    let symbols: Vec<String> = promoters.iter().map(|p| p.tier1_symbol()).collect();
    let entries: Vec<Vec<String>> = promoters
        .iter()
        .zip(&symbols)
        .map(|(p, symbol)| {
            let loops = p.osr.as_ref().map_or(0, |slots| slots.len());
            (0..loops).map(|l| format!("{symbol}$osr{l}")).collect()
        })
        .collect();
    let functions = promoters
        .iter()
        .zip(&symbols)
        .map(|(p, symbol)| (symbol.clone(), p.func.clone()))
        .collect();
    let module_name = match promoters.len() {
        1 => symbols[0].clone(),
        n => format!("{} (+{} more)", symbols[0], n - 1),
    };
    let mut module = orc_kaleidoscope::KaleidoscopeLlvmModule::shared(module_name, functions);
    for (i, names) in entries.iter().enumerate() {
        for (l, entry) in names.iter().enumerate() {
            module = module.with_osr_entry(i, l, entry.clone());
        }
    }
    let bodies = &first.bodies;
    let linked = bodies.create_resource_tracker().and_then(|tracker| {
        let found = first
            .llvm
            .get()
            // Compiled on this (tier-up) thread, not on the session's
            // compile threads: tier 0's first-call compiles must not wait
            // behind an LLVM compile.
            .and_then(|llvm| llvm.add_compiled_here(bodies, module, Some(&tracker)))
            .and_then(|_| {
                symbols
                    .iter()
                    .zip(&entries)
                    .map(|(symbol, names)| {
                        let addr = bodies.lookup_symbol(symbol)?.addr;
                        let osr = names
                            .iter()
                            .map(|e| bodies.lookup_symbol(e).map(|d| d.addr))
                            .collect::<Result<Vec<_>>>()?;
                        Ok((addr, osr))
                    })
                    .collect::<Result<Vec<_>>>()
            });
        match found {
            Ok(found) => Ok((Body::new(tracker), found)),
            Err(e) => {
                let _ = tracker.remove();
                Err(e)
            }
        }
    });
    match linked {
        Ok((body, found)) => {
            let share = start.elapsed() / promoters.len() as u32;
            promoters
                .iter()
                .zip(found)
                .map(|(p, (addr, osr))| p.install(addr, &osr, &body, share))
                .collect()
        }
        Err(e) if promoters.len() == 1 => vec![Err(e)],
        Err(_) => promoters.iter().map(|p| p.promote()).collect(),
    }
}
