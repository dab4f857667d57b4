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

use orc_core::lazy::LazyReexportsManager;
use orc_core::link::ObjectLinkingLayer;
use orc_core::{
    absolute_symbols, Dispatcher, DynamicLibrarySearchGenerator, Error, ExecutionSession,
    ExecutorAddr, InPlaceDispatcher, JitDylib, PinGuard, Reclaimer, Result, ThreadPoolDispatcher,
};
use orc_cranelift::{CraneliftCompiler, CraneliftConfig, CraneliftLayer, OptLevel};
use orc_llvm::{LlvmCompiler, LlvmConfig, LlvmLayer};

use crate::host;

/// Which code generator runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tier {
    /// Cranelift only: fast compiles.
    #[default]
    Zero,
    /// LLVM only: optimized code, slower compiles.
    One,
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "0" => Ok(Tier::Zero),
            "1" => Ok(Tier::One),
            "adaptive" => {
                Err("tier 'adaptive' is not available yet (tiers 0 and 1 are)".to_owned())
            }
            other => Err(format!(
                "unknown tier '{other}' (expected 0, 1 or adaptive)"
            )),
        }
    }
}

/// What to dump while compiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DumpOptions {
    /// Print each compiled function's CLIF on stderr.
    pub clif: bool,
    /// Print each tier-1 function's optimized LLVM IR on stderr.
    pub llvm_ir: bool,
    /// Print each tier-1 module's machine code (assembly) on stderr.
    pub asm: bool,
}

/// Settings of a [`Jit`].
#[derive(Clone, Debug)]
pub struct JitConfig {
    /// The tier policy.
    pub tier: Tier,
    /// Compile each function on its first call (default) or all up front.
    pub lazy: bool,
    /// Cranelift's optimization level.
    pub opt_level: OptLevel,
    /// LLVM's settings for tier 1 (pipeline, level; dumps come from
    /// [`DumpOptions`]).
    pub llvm: LlvmConfig,
    /// Threads for compiles; 0 compiles on the calling thread.
    pub compile_threads: usize,
    /// Dumps.
    pub dump: DumpOptions,
    /// Shared libraries to search for symbols (paths or sonames).
    pub libraries: Vec<String>,
    /// Where a call continues when its lazy compile fails; `None` prints
    /// the error and exits with status 70.
    pub lazy_failure_handler: Option<ExecutorAddr>,
}

impl Default for JitConfig {
    fn default() -> Self {
        JitConfig {
            tier: Tier::Zero,
            lazy: true,
            opt_level: OptLevel::Speed,
            llvm: LlvmConfig::default(),
            compile_threads: 0,
            dump: DumpOptions::default(),
            libraries: Vec::new(),
            lazy_failure_handler: None,
        }
    }
}

/// Builds a [`Jit`].
#[derive(Clone, Debug, Default)]
pub struct JitBuilder {
    config: JitConfig,
}

impl JitBuilder {
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
    /// Sets Cranelift's optimization level.
    pub fn opt_level(mut self, level: OptLevel) -> Self {
        self.config.opt_level = level;
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
        Jit::new(self.config)
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
    /// Created on first use: LLVM's start-up is not paid by tier-0 runs.
    llvm: OnceLock<Arc<LlvmLayer>>,
    lazy: Arc<LazyReexportsManager>,
    reclaimer: Reclaimer,
    config: JitConfig,
}

impl Jit {
    /// A builder with the defaults (tier 0, lazy, in-place compiles).
    pub fn builder() -> JitBuilder {
        JitBuilder::default()
    }

    fn new(config: JitConfig) -> Result<Self> {
        let dispatcher: Arc<dyn Dispatcher> = if config.compile_threads == 0 {
            Arc::new(InPlaceDispatcher)
        } else {
            let pool = ThreadPoolDispatcher::new(config.compile_threads)
                .map_err(|e| Error::other(format!("cannot start compile threads: {e}")))?;
            Arc::new(pool)
        };
        let es = ExecutionSession::with_dispatcher(dispatcher);
        let host = es.create_jit_dylib("host")?;
        host.define(absolute_symbols(host::host_symbols(&es)), None)?;
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
            opt_level: config.opt_level,
            capture_clif: config.dump.clif,
        })
        .map_err(|e| Error::other(e.to_string()))?;
        let cranelift = CraneliftLayer::new(compiler, objects.clone());
        if config.dump.clif {
            cranelift.set_observer(|compiled| {
                for f in &compiled.functions {
                    if let Some(clif) = &f.clif {
                        eprintln!("; CLIF of {}\n{clif}", f.name);
                    }
                }
            });
        }
        let lazy = LazyReexportsManager::new(&es)?;
        lazy.call_through()
            .set_failure_handler(config.lazy_failure_handler);
        Ok(Jit {
            es,
            main,
            bodies,
            host,
            objects,
            cranelift,
            llvm: OnceLock::new(),
            lazy,
            reclaimer,
            config,
        })
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
        if let Some(layer) = self.llvm.get() {
            return Ok(layer);
        }
        let mut config = self.config.llvm.clone();
        config.capture_ir |= self.config.dump.llvm_ir;
        config.capture_asm |= self.config.dump.asm;
        let compiler = LlvmCompiler::new(config).map_err(|e| Error::other(e.to_string()))?;
        let layer = LlvmLayer::new(compiler, self.objects.clone());
        if self.config.dump.llvm_ir || self.config.dump.asm {
            layer.set_observer(|compiled| {
                for f in &compiled.functions {
                    if let Some(ir) = &f.ir {
                        eprintln!("; optimized LLVM IR of {}\n{ir}", f.name);
                    }
                }
                if let Some(asm) = &compiled.asm {
                    eprintln!("; machine code of {}\n{asm}", compiled.name);
                }
            });
        }
        Ok(self.llvm.get_or_init(|| layer))
    }

    /// The tier-1 layer if something has used it.
    pub fn llvm_layer_if_created(&self) -> Option<&Arc<LlvmLayer>> {
        self.llvm.get()
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
        let _ = self.es.end_session();
        self.reclaimer.free_all();
    }
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jit").field("config", &self.config).finish()
    }
}
