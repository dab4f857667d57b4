//! `JitBuilder` and `Jit`: the pieces of orc assembled into a ready JIT.
//!
//! Dylib layout:
//! - `main`: what users look up. With laziness, each function is a lazy
//!   re-export here: its stub is the function's canonical address.
//! - `main.impl`: function bodies (`NAME$t0` for tier 0) and top-level
//!   expressions. It searches itself, then `main` (so calls between JIT'd
//!   functions go through stubs, which redefinition and tiering repoint),
//!   then `host`.
//! - `host`: the host functions (`putchard`, `printd`), then the process's
//!   symbols and libm through generators.

use std::sync::{Arc, OnceLock};

use orc_core::cache::ObjectCache;
use orc_core::debug::{GdbJitPlugin, GdbRegistration, PerfPlugin};
use orc_core::lazy::LazyReexportsManager;
use orc_core::link::ObjectLinkingLayer;
use orc_core::{
    absolute_symbols, CodeTier, Dispatcher, DynamicLibrarySearchGenerator, Error, ExecutionSession,
    ExecutorAddr, ExecutorSymbolDef, InPlaceDispatcher, JitDylib, LazyPoolDispatcher, PinGuard,
    Reclaimer, Result, SymbolFlags, ThresholdPolicy, TierEvent, TierManager, TierPolicy, TierTrace,
    TieredFunctions, TieredFunctionsConfig,
};
use orc_cranelift::{CraneliftCompiler, CraneliftConfig, CraneliftLayer, OptLevel};
use orc_llvm::{LlvmCompiler, LlvmConfig, LlvmLayer};

use crate::host;
use crate::tiered::TieredLayer;

/// Which code generator runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tier {
    /// Cranelift only: fast compiles.
    #[default]
    Zero,
    /// LLVM only: optimized code, slower compiles.
    One,
    /// Start in tier 0; recompile hot functions with tier 1 in the
    /// background and repoint their stubs.
    Adaptive,
}

/// The default tier-up threshold: entries plus loop back-edges counted in
/// tier-0 code before a function is queued for tier 1.
///
/// Measured with `cargo bench --bench tiering` (its threshold sweep): from
/// 100 to 100,000 the CPU-heavy programs change little, because a hot
/// function passes any of them within a millisecond; a short program
/// (`short.kal`, ~7 ms) is hurt by low thresholds, which start LLVM
/// compiles (2-8 ms each) whose code the program ends before using. 10,000
/// was best or within noise of best on every program. It is in the range
/// HotSpot uses for its optimizing compiler (C2: ~10,000 invocations
/// without tiered compilation, 5,000-15,000 with it), which like LLVM here
/// costs milliseconds per method; .NET's 30 calls suit a cheaper tier 1.
pub const DEFAULT_TIER_THRESHOLD: u64 = 10_000;

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "0" => Ok(Tier::Zero),
            "1" => Ok(Tier::One),
            "adaptive" => Ok(Tier::Adaptive),
            other => Err(format!(
                "unknown tier '{other}' (expected 0, 1 or adaptive)"
            )),
        }
    }
}

impl std::fmt::Display for Tier {
    /// The spelling [`FromStr`](std::str::FromStr) takes: `0`, `1` or
    /// `adaptive`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Zero => "0",
            Tier::One => "1",
            Tier::Adaptive => "adaptive",
        })
    }
}

/// What to dump while compiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DumpOptions {
    /// Print each compiled function's CLIF on stderr.
    pub clif: bool,
    /// Print each tier-1 function's optimized LLVM IR on stderr.
    pub llvm_ir: bool,
    /// Print the machine code of every linked object (tier 0, tier 1,
    /// objects added directly) on stderr, disassembled where it was
    /// loaded, with function names and addresses ([`crate::asm`]).
    pub asm: bool,
}

/// Settings of a [`Jit`].
#[derive(Clone, Debug)]
pub struct JitConfig {
    /// The tier policy.
    pub tier: Tier,
    /// Compile each function on its first call (default) or all up front.
    pub lazy: bool,
    /// Cranelift's optimization level; `None` picks the tier policy's
    /// default (see [`JitConfig::tier0_opt_level`]).
    pub opt_level: Option<OptLevel>,
    /// LLVM's settings for tier 1 (pipeline, level; dumps come from
    /// [`DumpOptions`]).
    pub llvm: LlvmConfig,
    /// Threads for compiles; 0 compiles on the calling thread. A thread
    /// that waits for a compile runs it itself either way (see
    /// [`orc_core::Dispatcher::caller_may_run`]); the pool, started when a
    /// lookup first has more work than its own thread, takes the rest.
    pub compile_threads: usize,
    /// With [`Tier::Adaptive`]: the count (entries plus loop back-edges)
    /// at which a function is recompiled by tier 1.
    pub tier_threshold: u64,
    /// With [`Tier::Adaptive`]: background threads for tier-1 compiles
    /// (started by the first promotion). 0 compiles each promotion on the
    /// thread whose code made the function hot, which waits for it.
    pub tier_up_threads: usize,
    /// Dumps.
    pub dump: DumpOptions,
    /// Shared libraries to search for symbols (paths or sonames).
    pub libraries: Vec<String>,
    /// Where a call continues when its lazy compile fails; `None` prints
    /// the error and exits with status 70.
    pub lazy_failure_handler: Option<ExecutorAddr>,
    /// Where tier changes are logged (`--trace-tier`, `ORC_TRACE_TIER=1`):
    /// compiles, hot and queued functions, promotions, OSR entries,
    /// released bodies. `None` logs nothing and changes no code.
    pub trace_tier: Option<Arc<TierTrace>>,
    /// Where compiled objects are kept across runs (tier 1's, and tier 0's
    /// where the code is not profiled, keyed by their IR, target, CPU,
    /// settings and orc's build); `None` compiles everything. See
    /// [`orc_core::cache`].
    pub object_cache: Option<Arc<dyn ObjectCache>>,
    /// Registers JIT'd code with the GDB JIT interface (see
    /// [`JitBuilder::debugger`]).
    pub debugger: bool,
    /// Writes the perf map and jitdump files (see [`JitBuilder::perf`]).
    pub perf: bool,
    /// Runs the code in an executor process started with this command
    /// (see [`JitBuilder::out_of_process`]).
    pub executor: Option<crate::oop::ExecutorSpec>,
}

impl JitConfig {
    /// The level Cranelift compiles at: [`Self::opt_level`] if set, else
    /// the tier policy's default. With [`Tier::Zero`] every function runs
    /// Cranelift code for good, so it is optimized (`Speed`). With
    /// [`Tier::Adaptive`] tier 0 is the baseline tier: whatever runs hot is
    /// recompiled by LLVM, so Cranelift compiles as fast as it can
    /// (`None`). Measured with `cargo bench --bench tiering` and `--stats`:
    /// compiles take about a fifth less time, which pays for the loop
    /// counting of tier-0 code, and the unoptimized code runs within a
    /// few percent of the optimized code on the bench programs while they
    /// wait for tier 1 (Kaleidoscope's CLIF has little for Cranelift's
    /// optimizer to do).
    pub fn tier0_opt_level(&self) -> OptLevel {
        self.opt_level.unwrap_or(match self.tier {
            Tier::Adaptive => OptLevel::None,
            Tier::Zero | Tier::One => OptLevel::Speed,
        })
    }
}

impl Default for JitConfig {
    fn default() -> Self {
        JitConfig {
            tier: Tier::Zero,
            lazy: true,
            opt_level: None,
            llvm: LlvmConfig::default(),
            compile_threads: 0,
            tier_threshold: DEFAULT_TIER_THRESHOLD,
            tier_up_threads: 1,
            dump: DumpOptions::default(),
            libraries: Vec::new(),
            lazy_failure_handler: None,
            trace_tier: None,
            object_cache: None,
            debugger: false,
            perf: false,
            executor: None,
        }
    }
}

/// Builds a [`Jit`]. [`Jit::builder`] starts from the defaults adjusted by
/// the environment variables `ORC_TIER` (`0`, `1` or `adaptive`),
/// `ORC_TIER_THRESHOLD`, `ORC_TRACE_TIER`, `ORC_GDB` and `ORC_PERF` (`1` or `0`), for
/// embedders who cannot change code; explicit builder calls override them.
#[derive(Clone, Default)]
pub struct JitBuilder {
    config: JitConfig,
    policy: Option<Arc<dyn TierPolicy>>,
    env_error: Option<String>,
}

impl std::fmt::Debug for JitBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitBuilder")
            .field("config", &self.config)
            .field("custom_policy", &self.policy.is_some())
            .finish()
    }
}

impl JitBuilder {
    /// The defaults adjusted by `ORC_TIER` and `ORC_TIER_THRESHOLD`. An
    /// invalid value makes [`Self::build`] fail with a message naming it.
    pub fn from_env() -> Self {
        let mut builder = JitBuilder::default();
        if let Ok(tier) = std::env::var("ORC_TIER") {
            match tier.parse() {
                Ok(tier) => builder.config.tier = tier,
                Err(e) => builder.env_error = Some(format!("ORC_TIER: {e}")),
            }
        }
        if std::env::var("ORC_TRACE_TIER").is_ok_and(|v| !v.is_empty() && v != "0") {
            builder.config.trace_tier = Some(TierTrace::to_stderr());
        }
        for (var, flag) in [
            ("ORC_GDB", &mut builder.config.debugger),
            ("ORC_PERF", &mut builder.config.perf),
        ] {
            if let Ok(value) = std::env::var(var) {
                match value.trim() {
                    "1" | "on" | "true" => *flag = true,
                    "0" | "off" | "false" | "" => *flag = false,
                    other => {
                        builder.env_error = Some(format!("{var}: '{other}' is not 1 or 0"));
                    }
                }
            }
        }
        if let Ok(threshold) = std::env::var("ORC_TIER_THRESHOLD") {
            match threshold.trim().parse::<u64>() {
                Ok(n) if n > 0 => builder.config.tier_threshold = n,
                _ => {
                    builder.env_error = Some(format!(
                        "ORC_TIER_THRESHOLD: '{threshold}' is not a positive integer"
                    ))
                }
            }
        }
        builder
    }

    /// Logs every tier change on standard error, with the time since the
    /// JIT was built (`orc: tier 12.345 ms: promoted fib v0 to tier 1 ...`).
    pub fn trace_tier(mut self, on: bool) -> Self {
        self.config.trace_tier = on.then(TierTrace::to_stderr);
        self
    }

    /// Logs every tier change to `trace` (a sink of your own).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use orc::core::TierTrace;
    ///
    /// let events = Arc::new(Mutex::new(Vec::new()));
    /// let log = events.clone();
    /// let trace = TierTrace::new(move |_, e| log.lock().unwrap().push(e.to_string()));
    /// let jit = orc::Jit::builder().tier(orc::Tier::Zero).tier_trace(trace).build()?;
    /// let mut kjit = orc::KaleidoscopeJit::new(jit);
    /// kjit.eval("def twice(x) x * 2; twice(4);")?;
    /// assert!(events.lock().unwrap().iter().any(|e| e.starts_with("compiled twice$t0 (tier 0")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tier_trace(mut self, trace: Arc<TierTrace>) -> Self {
        self.config.trace_tier = Some(trace);
        self
    }

    /// Keeps compiled objects in `cache` across runs: a compile whose
    /// input is found there is skipped (see [`orc_core::cache`];
    /// [`orc_core::cache::DirectoryCache`] is the on-disk one `orc` uses).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use orc::core::cache::{DirectoryCache, DEFAULT_CACHE_BYTES};
    ///
    /// let dir = std::env::temp_dir().join(format!("orc-doc-cache-{}", std::process::id()));
    /// let cache = Arc::new(DirectoryCache::open(&dir, DEFAULT_CACHE_BYTES)?);
    /// for run in 0..2 {
    ///     let jit = orc::Jit::builder().tier(orc::Tier::One).object_cache(cache.clone()).build()?;
    ///     let mut kjit = orc::KaleidoscopeJit::new(jit);
    ///     assert_eq!(kjit.eval("def sq(x) x * x; sq(7);")?, vec![49.0]);
    /// }
    /// // The second JIT found both objects (the function and the expression).
    /// assert_eq!(cache.stats().hits, 2);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn object_cache(mut self, cache: Arc<dyn ObjectCache>) -> Self {
        self.config.object_cache = Some(cache);
        self
    }

    /// With [`Tier::Adaptive`]: the count at which functions tier up.
    pub fn tier_threshold(mut self, threshold: u64) -> Self {
        self.config.tier_threshold = threshold.max(1);
        self
    }

    /// With [`Tier::Adaptive`]: decides tier-ups with `policy` instead of a
    /// threshold.
    pub fn tier_policy(mut self, policy: Arc<dyn TierPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets the tier policy.
    pub fn tier(mut self, tier: Tier) -> Self {
        self.config.tier = tier;
        self
    }
    /// Compiles functions on first call (`true`, default) or up front.
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.config.lazy = lazy;
        self
    }
    /// Sets Cranelift's optimization level, whatever the tier policy
    /// (see [`JitConfig::tier0_opt_level`] for the default).
    pub fn opt_level(mut self, level: OptLevel) -> Self {
        self.config.opt_level = Some(level);
        self
    }
    /// Sets LLVM's settings for tier 1.
    pub fn llvm_config(mut self, config: LlvmConfig) -> Self {
        self.config.llvm = config;
        self
    }
    /// Compiles on `n` background threads (0: on the calling thread).
    pub fn compile_threads(mut self, n: usize) -> Self {
        self.config.compile_threads = n;
        self
    }

    /// With [`Tier::Adaptive`]: `n` background threads for tier-1 compiles
    /// (default 1); 0 compiles each promotion on the thread whose code made
    /// the function hot.
    pub fn tier_up_threads(mut self, n: usize) -> Self {
        self.config.tier_up_threads = n;
        self
    }
    /// Sets what to dump.
    pub fn dump(mut self, dump: DumpOptions) -> Self {
        self.config.dump = dump;
        self
    }
    /// Adds a shared library to search (a path or a name like `libm.so.6`).
    pub fn library(mut self, lib: impl Into<String>) -> Self {
        self.config.libraries.push(lib.into());
        self
    }
    /// Registers every linked object (tier-0 and tier-1 code, objects
    /// added to [`Jit::object_layer`]) and every function stub with the
    /// GDB JIT interface, so gdb names JIT'd frames, unwinds through them
    /// and shows source lines where the object has DWARF. Off by default
    /// (`ORC_GDB=1` turns it on); the `orc` tool turns it on.
    ///
    /// ```
    /// let jit = orc::Jit::builder().debugger(true).build().unwrap();
    /// assert!(jit.config().debugger);
    /// ```
    pub fn debugger(mut self, on: bool) -> Self {
        self.config.debugger = on;
        self
    }
    /// Writes `/tmp/perf-PID.map` and the jitdump file `jit-PID.dump` (in
    /// `$JITDUMPDIR`, else `/tmp`) naming every JIT'd function, for `perf
    /// record -k 1` + `perf inject --jit` + `perf report`. Off by default
    /// (`ORC_PERF=1`, or `orc run --perf`).
    pub fn perf(mut self, on: bool) -> Self {
        self.config.perf = on;
        self
    }
    /// Runs the JIT'd code in an executor process (ORC's executor-process
    /// model) started with `command`, which must run this same executable
    /// and reach [`crate::oop::serve_if_executor`]: a crash of the code
    /// then ends only the executor. The first JIT built so starts it; the
    /// whole process's JIT memory goes there from then on. See
    /// [`crate::oop`].
    pub fn out_of_process(mut self, command: crate::oop::ExecutorCommand) -> Self {
        self.config.executor = Some(crate::oop::ExecutorSpec::Child(command));
        self
    }
    /// Runs the JIT'd code in the executor listening on TCP at `addr`
    /// (`orc executor --listen`, the same build of this executable,
    /// perhaps on another machine), reached with `secret`. It shares no
    /// memory with this process: what the JIT writes is copied there, and
    /// adaptive tiering is refused. See [`crate::oop`].
    pub fn remote_executor(mut self, addr: &str, secret: &[u8]) -> Self {
        self.config.executor = Some(crate::oop::ExecutorSpec::Remote {
            addr: addr.to_owned(),
            secret: secret.to_vec(),
        });
        self
    }
    /// Continues failed lazy calls in `handler` instead of exiting.
    pub fn lazy_failure_handler(mut self, handler: ExecutorAddr) -> Self {
        self.config.lazy_failure_handler = Some(handler);
        self
    }
    /// The configuration so far.
    pub fn config(&self) -> &JitConfig {
        &self.config
    }
    /// Builds the JIT.
    pub fn build(self) -> Result<Jit> {
        if let Some(e) = self.env_error {
            return Err(Error::other(e));
        }
        Jit::new(self.config, self.policy)
    }
}

/// A ready JIT: session, dylibs and layers. Ends its session when dropped.
pub struct Jit {
    es: ExecutionSession,
    main: JitDylib,
    bodies: JitDylib,
    host: JitDylib,
    objects: Arc<ObjectLinkingLayer>,
    cranelift: Arc<CraneliftLayer>,
    /// Created on first use: LLVM's start-up is not paid by tier-0 runs,
    /// and with adaptive tiering it is paid by the first promotion, in the
    /// background.
    llvm: Arc<LazyLlvmLayer>,
    /// With [`Tier::Adaptive`]: watches tier-0 counters, promotes hot code.
    tiers: Option<Arc<TierManager>>,
    lazy: Arc<LazyReexportsManager>,
    reclaimer: Reclaimer,
    config: JitConfig,
    /// Made on first use (see [`Jit::tiered`]).
    tiered: OnceLock<TieredLayer>,
    /// Whether the variadic-call thunks' generator is on the bodies dylib
    /// (`llvm_ir`).
    pub(crate) vararg_thunks: OnceLock<()>,
    /// What typed handles share with the JIT (see [`crate::embed`]).
    pub(crate) embed: Arc<crate::embed::Shared>,
    /// The stubs' registrations with gdb (with [`JitConfig::debugger`]).
    _stub_names: Arc<std::sync::Mutex<Vec<GdbRegistration>>>,
}

/// Installs the debugger and profiler plugins the configuration asks for,
/// and names the stubs for them; returns the stubs' gdb registrations
/// (kept for the JIT's life: stubs are never unmapped before).
fn install_debug_support(
    config: &JitConfig,
    objects: &ObjectLinkingLayer,
    lazy: &LazyReexportsManager,
) -> Arc<std::sync::Mutex<Vec<GdbRegistration>>> {
    let registrations = Arc::new(std::sync::Mutex::new(Vec::new()));
    if config.dump.asm {
        objects.add_plugin(Arc::new(crate::asm::AsmDumpPlugin::to_stderr()));
    }
    if config.debugger {
        objects.add_plugin(Arc::new(GdbJitPlugin));
    }
    if config.perf {
        objects.add_plugin(Arc::new(PerfPlugin::new()));
    }
    if config.debugger || config.perf {
        let (gdb, perf) = (config.debugger, config.perf);
        let kept = Arc::downgrade(&registrations);
        lazy.set_stub_observer(Some(Arc::new(
            move |stubs: &[(String, ExecutorAddr, u64)]| {
                let named: Vec<(String, u64, u64)> = stubs
                    .iter()
                    .map(|(n, a, s)| (n.clone(), a.value(), *s))
                    .collect();
                if perf {
                    orc_core::debug::perf_map_add(&named);
                }
                if gdb {
                    if let Some(kept) = kept.upgrade() {
                        let reg = orc_core::debug::register_symbols("<orc stubs>", &named);
                        kept.lock().unwrap_or_else(|e| e.into_inner()).push(reg);
                    }
                }
            },
        )));
    }
    registrations
}

impl Jit {
    /// A builder with the defaults (tier 0, lazy, in-place compiles),
    /// adjusted by `ORC_TIER` and `ORC_TIER_THRESHOLD` (see
    /// [`JitBuilder::from_env`]).
    pub fn builder() -> JitBuilder {
        JitBuilder::from_env()
    }

    fn new(mut config: JitConfig, policy: Option<Arc<dyn TierPolicy>>) -> Result<Self> {
        if let Some(spec) = &config.executor {
            if matches!(spec, crate::oop::ExecutorSpec::Remote { .. })
                && config.tier == Tier::Adaptive
            {
                return Err(Error::other(
                    "adaptive tiering needs an executor on this machine (its counters are \
                     memory the code and the JIT share): use tier 0 or 1 with a remote executor",
                ));
            }
            // Before any reservation: they all come from the executor's arena.
            crate::oop::start(spec).map_err(|e| Error::other(e.to_string()))?;
            // gdb would be told of code it cannot see run here.
            config.debugger = false;
        }
        let dispatcher: Arc<dyn Dispatcher> = if config.compile_threads == 0 {
            Arc::new(InPlaceDispatcher)
        } else {
            // Started by the first task that reaches it: a lookup's first
            // materialization runs on the thread that waits for it, so a
            // lazily run program may never need the pool.
            Arc::new(LazyPoolDispatcher::new(config.compile_threads))
        };
        let es = ExecutionSession::with_dispatcher(dispatcher);
        let host = es.create_jit_dylib("host")?;
        host.define(absolute_symbols(host::host_symbols(&es)), None)?;
        if config.trace_tier.is_some() {
            let probe = TierTrace::osr_probe();
            let def = ExecutorSymbolDef {
                addr: ExecutorAddr::from_ptr(probe as *const u8),
                flags: SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
            };
            let symbols = std::iter::once((es.intern(crate::tiered::OSR_PROBE), def)).collect();
            host.define(absolute_symbols(symbols), None)?;
        }
        host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))?;
        host.add_generator(Arc::new(DynamicLibrarySearchGenerator::load(
            "libm.so.6",
            None,
        )?))?;
        for lib in &config.libraries {
            host.add_generator(Arc::new(DynamicLibrarySearchGenerator::load(lib, None)?))?;
        }
        let main = es.create_jit_dylib("main")?;
        main.add_to_link_order(&host)?;
        let bodies = es.create_jit_dylib("main.impl")?;
        bodies.set_link_order(&[&main, &host])?;
        let objects = ObjectLinkingLayer::new(&es);
        let reclaimer = Reclaimer::new();
        objects.set_reclaimer(reclaimer.clone());
        let compiler = CraneliftCompiler::new(CraneliftConfig {
            opt_level: config.tier0_opt_level(),
            capture_clif: config.dump.clif,
        })
        .map_err(Error::layer)?
        .with_cache(config.object_cache.clone());
        let cranelift = CraneliftLayer::new(compiler, objects.clone());
        if config.dump.clif || config.trace_tier.is_some() {
            let trace = config.trace_tier.clone();
            cranelift.set_observer(move |compiled| {
                for f in &compiled.functions {
                    if let Some(clif) = &f.clif {
                        eprintln!("; CLIF of {}\n{clif}", f.name);
                    }
                    if let Some(trace) = &trace {
                        trace.emit(TierEvent::Compiled {
                            symbol: f.name.clone(),
                            tier: CodeTier::Zero,
                            time: f.compile_time,
                        });
                    }
                }
            });
        }
        let lazy = LazyReexportsManager::new(&es)?;
        lazy.call_through()
            .set_failure_handler(config.lazy_failure_handler);
        let stub_names = install_debug_support(&config, &objects, &lazy);
        let tiers = if config.tier == Tier::Adaptive {
            let policy = policy.unwrap_or_else(|| {
                Arc::new(ThresholdPolicy {
                    threshold: config.tier_threshold,
                })
            });
            // Started by the first promotion: a program with nothing hot
            // pays for no tier-up thread. None: promote on the thread whose
            // code made the function hot.
            let pool: Arc<dyn Dispatcher> = match config.tier_up_threads {
                0 => Arc::new(InPlaceDispatcher),
                n => Arc::new(LazyPoolDispatcher::new(n)),
            };
            let manager = Arc::new(TierManager::new(&es, policy, pool));
            manager.set_reclaimer(reclaimer.clone());
            let weak = Arc::downgrade(&manager);
            cranelift.set_counter_provider(Arc::new(move |name: &str| {
                weak.upgrade()?.trip_counter(name)
            }));
            Some(manager)
        } else {
            None
        };
        let jit = Jit {
            es,
            main,
            bodies,
            host,
            objects: objects.clone(),
            cranelift,
            llvm: Arc::new(LazyLlvmLayer {
                cell: OnceLock::new(),
                config: {
                    let mut llvm = config.llvm.clone();
                    llvm.capture_ir |= config.dump.llvm_ir;
                    llvm
                },
                dump: config.dump.llvm_ir,
                trace: config.trace_tier.clone(),
                cache: config.object_cache.clone(),
                objects: objects.clone(),
            }),
            tiers,
            lazy,
            reclaimer,
            config,
            tiered: OnceLock::new(),
            vararg_thunks: OnceLock::new(),
            embed: Arc::default(),
            _stub_names: stub_names,
        };
        Ok(jit)
    }

    /// The tiered layer: functions handed as Cranelift IR, compiled with
    /// this JIT's tier policy, stubs in `main`, bodies in `main.impl`.
    /// Made on first use; with [`Tier::Adaptive`] it takes the tier
    /// manager's promotions. Frontends share it: a
    /// [`KaleidoscopeJit`](crate::KaleidoscopeJit) is an adapter on it.
    pub fn tiered(&self) -> &TieredLayer {
        self.tiered.get_or_init(|| {
            let functions = TieredFunctions::new(TieredFunctionsConfig {
                stubs: self.main.clone(),
                bodies: self.bodies.clone(),
                lazy: self.lazy.clone(),
                tiers: self.tiers.clone(),
            });
            let layer = TieredLayer::new(
                functions,
                self.cranelift.clone(),
                self.llvm.clone(),
                self.config.tier,
                self.config.lazy,
            );
            if let Some(trace) = &self.config.trace_tier {
                layer.set_trace(trace.clone());
            }
            layer
        })
    }

    /// The tiered layer if something has used it.
    pub fn tiered_if_created(&self) -> Option<&TieredLayer> {
        self.tiered.get()
    }

    /// The tier manager, with [`Tier::Adaptive`].
    pub fn tier_manager(&self) -> Option<&Arc<TierManager>> {
        self.tiers.as_ref()
    }

    /// The session.
    pub fn session(&self) -> &ExecutionSession {
        &self.es
    }
    /// The dylib users look functions up in.
    pub fn main_dylib(&self) -> &JitDylib {
        &self.main
    }
    /// The dylib holding function bodies and top-level expressions.
    pub fn bodies_dylib(&self) -> &JitDylib {
        &self.bodies
    }
    /// The dylib of host functions and process symbols.
    pub fn host_dylib(&self) -> &JitDylib {
        &self.host
    }
    /// The object-linking layer (to add objects of your own).
    pub fn object_layer(&self) -> &Arc<ObjectLinkingLayer> {
        &self.objects
    }
    /// The tier-0 layer.
    pub fn cranelift_layer(&self) -> &Arc<CraneliftLayer> {
        &self.cranelift
    }
    /// The tier-1 layer, created on first use with the configured LLVM
    /// settings and dumps.
    pub fn llvm_layer(&self) -> Result<&Arc<LlvmLayer>> {
        self.llvm.get()
    }

    /// The tier-1 layer's lazy cell, for work that creates it later (a
    /// background promotion).
    pub fn llvm_layer_cell(&self) -> &Arc<LazyLlvmLayer> {
        &self.llvm
    }

    /// The tier-1 layer if something has used it.
    pub fn llvm_layer_if_created(&self) -> Option<&Arc<LlvmLayer>> {
        self.llvm.cell.get()
    }

    /// The lazy re-exports manager (stubs).
    pub fn lazy_reexports(&self) -> &Arc<LazyReexportsManager> {
        &self.lazy
    }
    /// The reclaimer guarding code that may be running.
    pub fn reclaimer(&self) -> &Reclaimer {
        &self.reclaimer
    }
    /// The configuration.
    pub fn config(&self) -> &JitConfig {
        &self.config
    }

    /// The address of `name` in `main` (its stub when lazy).
    pub fn lookup(&self, name: &str) -> Result<ExecutorAddr> {
        self.main.lookup_symbol(name).map(|d| d.addr)
    }

    /// Marks this thread as running JIT'd code until the guard drops, so
    /// code it may be running is not freed under it.
    pub fn enter(&self) -> PinGuard {
        self.reclaimer.pin()
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        // Typed handles fail from now on; calls in flight finish first.
        self.embed.close();
        // Promotions in flight use the session: let them finish first.
        if let Some(tiers) = &self.tiers {
            tiers.shutdown();
        }
        let _ = self.es.end_session();
        self.reclaimer.free_all();
        // The stubs are unmapped with the JIT: the debugger forgets them.
        self._stub_names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jit").field("config", &self.config).finish()
    }
}

/// The tier-1 layer, created by whoever needs it first.
pub struct LazyLlvmLayer {
    cell: OnceLock<Arc<LlvmLayer>>,
    config: LlvmConfig,
    dump: bool,
    trace: Option<Arc<TierTrace>>,
    cache: Option<Arc<dyn ObjectCache>>,
    objects: Arc<ObjectLinkingLayer>,
}

impl LazyLlvmLayer {
    /// The layer, created now if needed (LLVM's start-up costs a few
    /// milliseconds).
    pub fn get(&self) -> Result<&Arc<LlvmLayer>> {
        if let Some(layer) = self.cell.get() {
            return Ok(layer);
        }
        let compiler = LlvmCompiler::new(self.config.clone())
            .map_err(Error::layer)?
            .with_cache(self.cache.clone());
        let layer = LlvmLayer::new(compiler, self.objects.clone());
        if self.dump || self.trace.is_some() {
            let trace = self.trace.clone();
            layer.set_observer(move |compiled| {
                for f in &compiled.functions {
                    if let Some(ir) = &f.ir {
                        eprintln!("; optimized LLVM IR of {}\n{ir}", f.name);
                    }
                    if let Some(trace) = &trace {
                        trace.emit(TierEvent::Compiled {
                            symbol: f.name.clone(),
                            tier: CodeTier::One,
                            time: f.compile_time,
                        });
                    }
                }
                if let Some(asm) = &compiled.asm {
                    eprintln!("; machine code of {}\n{asm}", compiled.name);
                }
            });
        }
        Ok(self.cell.get_or_init(|| layer))
    }
}

impl std::fmt::Debug for LazyLlvmLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyLlvmLayer")
            .field("created", &self.cell.get().is_some())
            .finish()
    }
}
