//! Kaleidoscope on a [`Jit`]: functions become lazily compiled tier-0
//! bodies behind stubs, top-level expressions run once under their own
//! resource tracker, and redefinition repoints the stub.
//!
//! Naming: the body of function `f` is the symbol `f$t0` in `main.impl`;
//! `f` itself is a lazy re-export (a stub) in `main`. Bodies call other
//! functions by their plain names, which resolve to the stubs, so a
//! redefinition (or a tier-up) reaches every caller.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use cranelift_module::Module;
use orc_core::{
    Error, ExecutorAddr, JitDylib, ResourceTracker, Result, SymbolAliasMap, SymbolAliasMapEntry,
    SymbolFlags, SymbolLookupSet, SymbolState,
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

/// Kaleidoscope functions lowered into one Cranelift module, each with
/// the address of its on-stack-replacement slots if it has them.
struct KalModule {
    name: String,
    functions: Vec<(Function, Option<u64>)>,
}

impl KalModule {
    /// A module defining `functions` under their prototype names.
    fn new(name: String, functions: Vec<(Function, Option<u64>)>) -> Box<Self> {
        Box::new(KalModule { name, functions })
    }
}

/// The on-stack-replacement slots of one tier-0 body (one per loop; see
/// `orc_kaleidoscope::OsrSlot`). The body's code reads them at their fixed
/// address, so they are kept for the life of the JIT (a few words per
/// tiered body version).
type OsrSlots = Arc<[orc_kaleidoscope::OsrSlot]>;

impl CraneliftModule for KalModule {
    fn name(&self) -> &str {
        &self.name
    }

    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.functions
            .iter()
            .map(|(f, _)| (f.proto.name.clone(), CALLABLE))
            .collect()
    }

    fn build(self: Box<Self>, module: &mut dyn Module) -> std::result::Result<(), String> {
        for (func, osr) in &self.functions {
            orc_kaleidoscope::lower_function_osr(module, func, *osr).map_err(|e| {
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

/// A copy of `func` whose definition is named `symbol`.
fn renamed(func: &Function, symbol: String) -> Function {
    let mut f = func.clone();
    f.proto.name = symbol;
    f
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

/// The code of one or more functions, under one tracker. Functions whose
/// current code it holds share it (a tier-1 batch compiles several
/// functions into one module); it is removed when the last one lets go.
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
    /// The current body's code, when it is not shared with other functions
    /// for good (an eager program compiles all bodies as one module).
    body: Option<Arc<Body>>,
    /// How many times the function was redefined.
    version: usize,
}

/// Function states by name, shared with background promotions.
type FunctionTable = Arc<Mutex<HashMap<String, FunctionState>>>;

fn lock(table: &FunctionTable) -> MutexGuard<'_, HashMap<String, FunctionState>> {
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_osr(osr: &Mutex<Vec<(String, OsrSlots)>>) -> MutexGuard<'_, Vec<(String, OsrSlots)>> {
    osr.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs Kaleidoscope programs on a [`Jit`]. See the module docs.
pub struct KaleidoscopeJit {
    jit: Jit,
    functions: FunctionTable,
    n_modules: usize,
    /// Every tier-0 body's OSR slots, by body symbol (adaptive only).
    osr: Mutex<Vec<(String, OsrSlots)>>,
    /// Adaptive only: how to promote each registered tier-0 body, for the
    /// tier manager's batches.
    promoters: Promoters,
}

/// Promoters by tier-0 body symbol.
type Promoters = Arc<Mutex<HashMap<String, Arc<Promoter>>>>;

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
            osr: Mutex::default(),
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

    /// The body symbol of `name` in this JIT's tier.
    fn body(&self, name: &str) -> String {
        tier_body_symbol(name, self.jit.config().tier)
    }

    /// Adds `functions` (named as they should be defined; tier-0 bodies
    /// with their OSR slots, if any) as one module of this JIT's tier,
    /// under `tracker`.
    fn add_module(
        &self,
        name: String,
        functions: Vec<(Function, Option<u64>)>,
        tracker: &ResourceTracker,
    ) -> Result<()> {
        let bodies = self.jit.bodies_dylib();
        match self.jit.config().tier {
            Tier::Zero | Tier::Adaptive => self.jit.cranelift_layer().add(
                bodies,
                KalModule::new(name, functions),
                Some(tracker),
            ),
            Tier::One => {
                let functions = functions.into_iter().map(|(f, _)| f).collect();
                let module = orc_kaleidoscope::KaleidoscopeLlvmModule::new(name, functions);
                self.jit.llvm_layer()?.add(bodies, module, Some(tracker))
            }
        }
    }

    /// Defines the stubs of `names` (each standing for its body symbol).
    fn define_stubs(&self, names: &[&str]) -> Result<()> {
        let es = self.jit.session();
        let aliases: SymbolAliasMap = names
            .iter()
            .map(|n| {
                let entry = SymbolAliasMapEntry {
                    aliasee: es.intern(&self.body(n)),
                    flags: CALLABLE,
                };
                (es.intern(n), entry)
            })
            .collect();
        let unit = self
            .jit
            .lazy_reexports()
            .lazy_reexports(self.jit.bodies_dylib(), aliases);
        self.main().define(unit, None)
    }

    /// Compiles the bodies of `names` now and points their stubs at them.
    fn compile_now(&self, names: &[&str]) -> Result<()> {
        let es = self.jit.session();
        let bodies: SymbolLookupSet = names.iter().map(|n| es.intern(&self.body(n))).collect();
        let order = self.jit.bodies_dylib().search_order()?;
        let found = es.lookup(&order, bodies, SymbolState::Ready)?;
        let lazy = self.jit.lazy_reexports();
        for name in names {
            let stub = es.intern(name);
            // Make sure the stub exists (looking it up materializes it).
            self.main().lookup_symbol(name)?;
            if let Some(def) = found.get(&es.intern(&self.body(name))) {
                lazy.redirect(self.main(), &stub, def.addr)?;
            }
        }
        Ok(())
    }

    /// Defines `func`, or redefines it. A redefinition gets a body symbol
    /// of its own (`f$t0.1`, `f$t0.2`...), is compiled at once and the stub
    /// is repointed to it, so every caller, including code already
    /// compiled, runs the new body on its next call; the old body is
    /// removed (its memory is reclaimed once no thread can be running it).
    /// With an eager JIT a new function is compiled at once too.
    pub fn define(&mut self, func: &Function) -> Result<()> {
        let name = func.proto.name.clone();
        let tracker = self.fresh_tracker()?;
        let known = lock(&self.functions).get(&name).map(|state| state.version);
        let Some(old_version) = known else {
            let body = self.body(&name);
            let osr = self.register_for_tiering(&body, func, &name, 0);
            self.add_module(name.clone(), vec![(renamed(func, body), osr)], &tracker)?;
            self.define_stubs(&[&name])?;
            lock(&self.functions).insert(
                name.clone(),
                FunctionState {
                    arity: func.proto.arity(),
                    body: Some(Body::new(tracker)),
                    version: 0,
                },
            );
            if !self.jit.config().lazy {
                self.compile_now(&[&name])?;
            }
            return Ok(());
        };
        let version = old_version + 1;
        let body = format!("{}.{version}", self.body(&name));
        let osr = self.register_for_tiering(&body, func, &name, version);
        self.add_module(
            body.clone(),
            vec![(renamed(func, body.clone()), osr)],
            &tracker,
        )?;
        let addr = self.jit.bodies_dylib().lookup_symbol(&body)?.addr;
        let es = self.jit.session();
        let old = {
            let mut table = lock(&self.functions);
            let state = table
                .get_mut(&name)
                .ok_or_else(|| Error::other("function table changed"))?;
            // Under the table lock, so a promotion of the old version that
            // finishes now cannot repoint the stub after us.
            self.jit
                .lazy_reexports()
                .redirect(self.main(), &es.intern(&name), addr)?;
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
        body: &str,
        func: &Function,
        name: &str,
        version: usize,
    ) -> Option<u64> {
        let tiers = self.jit.tier_manager()?;
        let loops = orc_kaleidoscope::loop_count(func);
        let osr: Option<OsrSlots> = (loops > 0).then(|| {
            (0..loops)
                .map(|_| orc_kaleidoscope::OsrSlot::default())
                .collect()
        });
        if let Some(slots) = &osr {
            lock_osr(&self.osr).push((body.to_owned(), slots.clone()));
        }
        let osr_base = osr.as_ref().map(|slots| slots.as_ptr() as u64);
        let llvm = self.jit.llvm_layer_cell().clone();
        let promoter = Arc::new(Promoter {
            es: self.jit.session().clone(),
            main: self.jit.main_dylib().clone(),
            bodies: self.jit.bodies_dylib().clone(),
            llvm,
            lazy: self.jit.lazy_reexports().clone(),
            table: self.functions.clone(),
            func: func.clone(),
            name: name.to_owned(),
            version,
            osr,
        });
        self.promoters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(body.to_owned(), promoter.clone());
        tiers.register(body, Arc::new(move || promoter.promote()));
        osr_base
    }

    /// With adaptive tiering: for each tier-0 body with loops, how many
    /// frames moved from its loops to tier-1 code (on-stack replacement).
    pub fn osr_transfers(&self) -> Vec<(String, u64)> {
        lock_osr(&self.osr)
            .iter()
            .map(|(body, slots)| {
                let n = slots
                    .iter()
                    .map(|s| s.transfers.load(std::sync::atomic::Ordering::Relaxed))
                    .sum();
                (body.clone(), n)
            })
            .collect()
    }

    /// Defines every function of `program` (not its top-level
    /// expressions). Lazy: one unit per function. Eager: all bodies in one
    /// module, compiled now.
    pub fn add_program(&mut self, program: &Program) -> Result<()> {
        if self.jit.config().lazy {
            for func in program.functions() {
                self.define(func)?;
            }
            return Ok(());
        }
        let new: Vec<&Function> = program
            .functions()
            .filter(|f| !lock(&self.functions).contains_key(&f.proto.name))
            .collect();
        let redefined: Vec<&Function> = program
            .functions()
            .filter(|f| lock(&self.functions).contains_key(&f.proto.name))
            .collect();
        for func in redefined {
            self.define(func)?;
        }
        if new.is_empty() {
            return Ok(());
        }
        let tracker = self.fresh_tracker()?;
        self.n_modules += 1;
        let bodies = new
            .iter()
            .map(|f| (renamed(f, self.body(&f.proto.name)), None))
            .collect();
        self.add_module(format!("program{}", self.n_modules), bodies, &tracker)?;
        let names: Vec<&str> = new.iter().map(|f| f.proto.name.as_str()).collect();
        self.define_stubs(&names)?;
        for func in &new {
            // The module's tracker is shared, so no function owns it: a
            // redefinition leaves the shared module in place (unreachable
            // for that function) instead of removing its neighbours.
            lock(&self.functions).insert(
                func.proto.name.clone(),
                FunctionState {
                    arity: func.proto.arity(),
                    body: None,
                    version: 0,
                },
            );
        }
        self.compile_now(&names)
    }

    /// Compiles and runs a top-level expression (a parameterless function)
    /// under its own tracker, removed once it has run. Returns its value.
    pub fn run_top_level(&mut self, expr: &Function) -> Result<f64> {
        let tracker = self.fresh_tracker()?;
        let name = expr.proto.name.clone();
        self.add_module(name.clone(), vec![(expr.clone(), None)], &tracker)?;
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
        lock(&self.functions).get(name).map(|s| s.arity)
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
/// tier-up thread).
struct Promoter {
    es: orc_core::ExecutionSession,
    main: JitDylib,
    bodies: JitDylib,
    llvm: Arc<crate::jit::LazyLlvmLayer>,
    lazy: Arc<orc_core::lazy::LazyReexportsManager>,
    table: FunctionTable,
    func: Function,
    name: String,
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
                    self.lazy
                        .redirect(&self.main, &self.es.intern(&self.name), addr)?;
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
        .map(|(p, symbol)| renamed(&p.func, symbol.clone()))
        .collect();
    let module_name = match promoters.len() {
        1 => symbols[0].clone(),
        n => format!("{} (+{} more)", symbols[0], n - 1),
    };
    let mut module = orc_kaleidoscope::KaleidoscopeLlvmModule::new(module_name, functions);
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
            .and_then(|llvm| llvm.add(bodies, module, Some(&tracker)))
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
