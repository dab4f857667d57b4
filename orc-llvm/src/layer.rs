//! The tier-1 layer: LLVM modules as materialization units. When one of a
//! module's symbols is first looked up, the module is built, optimized and
//! compiled on the dispatcher's thread, and its object is linked by the
//! core's object-linking layer under the same responsibility.
//!
//! A compile failure fails that unit's responsibility (every waiter gets the
//! error) and nothing else: later units compile as usual. The layer keeps
//! statistics (modules and functions compiled, per-function compile time
//! and code size) and shows each compiled object to an observer (for
//! `--dump llvm-ir`, `--dump asm` and `--stats`).

use std::sync::Arc;
use std::time::Duration;

use orc_core::link::ObjectLinkingLayer;
use orc_core::{
    CompileLayer, Error, JitDylib, LayerUnit, MaterializationResponsibility, ResourceTracker,
    Result, SymbolFlagsMap,
};
use parking_lot::{Mutex, RwLock};

use crate::compiler::{CompiledObject, FunctionReport, LlvmCompiler, LlvmModule, PhaseTimes};
use crate::error::CompileError;

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
    /// Time spent compiling modules (build, verify, optimize, codegen).
    pub total_time: Duration,
    /// That time by phase, summed over modules.
    pub phases: PhaseTimes,
    /// Modules whose compile failed.
    pub failures: usize,
}

/// Sees every compiled object before it is linked.
pub type CompileObserver = Box<dyn Fn(&CompiledObject) + Send + Sync>;

/// Compiles LLVM modules on demand and links them. See the module docs.
pub struct LlvmLayer {
    compiler: LlvmCompiler,
    objects: Arc<ObjectLinkingLayer>,
    stats: Mutex<CompileStats>,
    observer: RwLock<Option<CompileObserver>>,
}

impl LlvmLayer {
    /// A layer compiling with `compiler` and linking through `objects`.
    pub fn new(compiler: LlvmCompiler, objects: Arc<ObjectLinkingLayer>) -> Arc<Self> {
        Arc::new(LlvmLayer {
            compiler,
            objects,
            stats: Mutex::new(CompileStats::default()),
            observer: RwLock::new(None),
        })
    }

    /// The compiler.
    pub fn compiler(&self) -> &LlvmCompiler {
        &self.compiler
    }

    /// The object-linking layer objects go to.
    pub fn object_layer(&self) -> &Arc<ObjectLinkingLayer> {
        &self.objects
    }

    /// Shows every compiled object to `observer` (runs on the compile
    /// thread, before linking; with [`crate::LlvmConfig::capture_ir`] and
    /// [`crate::LlvmConfig::capture_asm`] it sees optimized IR and
    /// assembly).
    pub fn set_observer(&self, observer: impl Fn(&CompiledObject) + Send + Sync + 'static) {
        *self.observer.write() = Some(Box::new(observer));
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> CompileStats {
        self.stats.lock().clone()
    }

    /// Adds `module` to `dylib` under `tracker` as one unit; nothing is
    /// compiled until one of its symbols is looked up. Fails like
    /// `JitDylib::define` (a symbol the dylib already defines).
    pub fn add(
        self: &Arc<Self>,
        dylib: &JitDylib,
        module: Box<dyn LlvmModule>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<()> {
        let es = dylib.session();
        let symbols: SymbolFlagsMap = module
            .symbols()
            .into_iter()
            .map(|(name, flags)| (es.intern(&name), flags))
            .collect();
        let unit = LayerUnit::new(self.clone(), module.name().to_owned(), module, symbols);
        dylib.define(Box::new(unit), tracker)
    }

    /// Compiles `module` now, on this thread, and adds its object to
    /// `dylib` under `tracker` (linked when one of its symbols is looked
    /// up). Unlike [`Self::add`], the compile does not run on the session's
    /// dispatcher: a background thread compiling a large module this way
    /// (a tier-up) does not hold up the dispatcher's other work, such as
    /// the first-call compiles of a running program.
    pub fn add_compiled_here(
        &self,
        dylib: &JitDylib,
        module: Box<dyn LlvmModule>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<()> {
        let name = module.name().to_owned();
        let compiled = self.compile(module).map_err(Error::layer)?;
        self.objects
            .add_bytes(dylib, &name, compiled.bytes, tracker)
    }

    /// Compiles `module` now, on this thread, records it in the statistics
    /// and shows it to the observer, without linking it (for callers that
    /// add the object themselves, e.g. to run its initializers).
    pub fn compile(
        &self,
        module: Box<dyn LlvmModule>,
    ) -> std::result::Result<CompiledObject, CompileError> {
        match self.compiler.compile(module) {
            Ok(compiled) => {
                if let Some(observer) = &*self.observer.read() {
                    observer(&compiled);
                }
                let mut stats = self.stats.lock();
                stats.modules += 1;
                stats.total_time += compiled.total_time;
                stats.phases.build += compiled.phases.build;
                stats.phases.verify += compiled.phases.verify;
                stats.phases.optimize += compiled.phases.optimize;
                stats.phases.codegen += compiled.phases.codegen;
                stats.functions_compiled += compiled.functions.len();
                let room = MAX_FUNCTION_REPORTS.saturating_sub(stats.functions.len());
                stats
                    .functions
                    .extend(compiled.functions.iter().take(room).cloned());
                Ok(compiled)
            }
            Err(e) => {
                self.stats.lock().failures += 1;
                Err(e)
            }
        }
    }

    /// Compiles `module` now and links it under `r`. A compile failure
    /// fails the responsibility (every waiter gets the error) and nothing
    /// else.
    pub fn emit(&self, r: MaterializationResponsibility, module: Box<dyn LlvmModule>) {
        let name = module.name().to_owned();
        let compiled = match self.compile(module) {
            Ok(compiled) => compiled,
            Err(e) => return r.fail(Error::layer(e)),
        };
        self.objects.emit_bytes(r, &name, compiled.bytes);
    }
}

impl std::fmt::Debug for LlvmLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlvmLayer")
            .field("compiler", &self.compiler)
            .finish()
    }
}

impl CompileLayer for LlvmLayer {
    type Module = Box<dyn LlvmModule>;

    fn emit(&self, r: MaterializationResponsibility, module: Self::Module) {
        LlvmLayer::emit(self, r, module)
    }
}
