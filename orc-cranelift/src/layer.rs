//! The tier-0 layer: Cranelift modules as materialization units. When one
//! of a module's symbols is first looked up, the module is built and
//! compiled on the dispatcher's thread and its object is linked by the
//! core's object-linking layer under the same responsibility.
//!
//! The layer keeps statistics (modules and functions compiled, per-function
//! compile time and code size) and can show each compiled object to an
//! observer (for `--dump clif` and `--stats`).

use std::sync::Arc;
use std::time::Duration;

use orc_core::link::ObjectLinkingLayer;
use orc_core::{
    CompileLayer, Error, JitDylib, LayerUnit, MaterializationResponsibility, ResourceTracker,
    Result,
};
use parking_lot::{Mutex, RwLock};

use crate::compiler::{
    CompiledObject, CounterProvider, CraneliftCompiler, CraneliftModule, FunctionReport,
};

/// The most per-function reports [`CompileStats::functions`] keeps.
pub const MAX_FUNCTION_REPORTS: usize = 1024;

/// Totals of what the layer compiled.
#[derive(Clone, Debug, Default)]
pub struct CompileStats {
    /// Modules compiled.
    pub modules: usize,
    /// The first [`MAX_FUNCTION_REPORTS`] functions compiled, in compile
    /// order (a long session's later compiles are only counted, in
    /// `functions_compiled`, so the statistics stay bounded).
    pub functions: Vec<FunctionReport>,
    /// Every function compiled.
    pub functions_compiled: usize,
    /// Time spent compiling modules (build, codegen, object writing).
    pub total_time: Duration,
    /// Modules whose compile failed.
    pub failures: usize,
}

/// Sees every compiled object before it is linked.
pub type CompileObserver = Box<dyn Fn(&CompiledObject) + Send + Sync>;

/// Compiles Cranelift modules on demand and links them. See the module
/// docs.
pub struct CraneliftLayer {
    compiler: CraneliftCompiler,
    objects: Arc<ObjectLinkingLayer>,
    stats: Mutex<CompileStats>,
    observer: RwLock<Option<CompileObserver>>,
    counters: RwLock<Option<CounterProvider>>,
}

impl CraneliftLayer {
    /// A layer compiling with `compiler` and linking through `objects`.
    pub fn new(compiler: CraneliftCompiler, objects: Arc<ObjectLinkingLayer>) -> Arc<Self> {
        Arc::new(CraneliftLayer {
            compiler,
            objects,
            stats: Mutex::new(CompileStats::default()),
            observer: RwLock::new(None),
            counters: RwLock::new(None),
        })
    }

    /// The compiler.
    pub fn compiler(&self) -> &CraneliftCompiler {
        &self.compiler
    }

    /// Shows every compiled object to `observer` (runs on the compile
    /// thread, before linking).
    pub fn set_observer(&self, observer: impl Fn(&CompiledObject) + Send + Sync + 'static) {
        *self.observer.write() = Some(Box::new(observer));
    }

    /// Profiles the functions `counters` names: their code bumps the given
    /// counter on entry and on every loop back-edge and calls the given
    /// handler when the count trips (for a tier manager).
    pub fn set_counter_provider(&self, counters: CounterProvider) {
        *self.counters.write() = Some(counters);
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> CompileStats {
        self.stats.lock().clone()
    }

    /// Adds `module` to `dylib` under `tracker` as one unit; nothing is
    /// compiled until one of its symbols is looked up.
    pub fn add(
        self: &Arc<Self>,
        dylib: &JitDylib,
        module: Box<dyn CraneliftModule>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<()> {
        let symbols = module.interned_symbols(&dylib.session());
        let unit = LayerUnit::new(self.clone(), module.name().to_owned(), module, symbols);
        dylib.define(Box::new(unit), tracker)
    }

    /// Compiles `module` now and links it under `r`. A compile failure
    /// fails the responsibility (every waiter gets the error) and nothing
    /// else.
    pub fn emit(&self, r: MaterializationResponsibility, module: Box<dyn CraneliftModule>) {
        let name = module.name().to_owned();
        let counters = self.counters.read().clone();
        let compiled = match self.compiler.compile_profiled(module, counters.as_ref()) {
            Ok(compiled) => compiled,
            Err(e) => {
                self.stats.lock().failures += 1;
                return r.fail(Error::layer(e));
            }
        };
        if let Some(observer) = &*self.observer.read() {
            observer(&compiled);
        }
        {
            let mut stats = self.stats.lock();
            stats.modules += 1;
            stats.total_time += compiled.total_time;
            stats.functions_compiled += compiled.functions.len();
            let room = MAX_FUNCTION_REPORTS.saturating_sub(stats.functions.len());
            stats
                .functions
                .extend(compiled.functions.iter().take(room).cloned());
        }
        self.objects.emit_bytes(r, &name, compiled.bytes);
    }
}

impl std::fmt::Debug for CraneliftLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CraneliftLayer")
            .field("compiler", &self.compiler)
            .finish()
    }
}

impl CompileLayer for CraneliftLayer {
    type Module = Box<dyn CraneliftModule>;

    fn emit(&self, r: MaterializationResponsibility, module: Self::Module) {
        CraneliftLayer::emit(self, r, module)
    }
}
