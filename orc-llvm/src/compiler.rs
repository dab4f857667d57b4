//! The tier-1 compiler: an LLVM module built by a frontend on the compile
//! thread, verified, optimized with the new pass manager, and emitted as one
//! relocatable ELF object for the host CPU.
//!
//! Each compile creates its own `Context` (inkwell contexts are not `Send`)
//! and its own target machine (host triple, CPU and features, PIC, default
//! code model). The module is verified before anything else touches it, so
//! the optimizer and the code generator only ever see valid IR. Error
//! diagnostics LLVM reports on the context are collected and fail the
//! compile instead of ending the process, and so do LLVM's fatal errors
//! during optimization and code generation (`fatal.rs`): such a compile's
//! context, module and target machine are leaked, never reused.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use inkwell::context::Context;
use inkwell::llvm_sys::target_machine::LLVMCodeGenFileType;
use inkwell::memory_buffer::MemoryBuffer;
use inkwell::module::Module;
use inkwell::targets::{
    CodeModel, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple,
};
use inkwell::values::AnyValue;
use inkwell::OptimizationLevel;
use object::{Object, ObjectSymbol, SymbolKind};
use orc_core::cache::{CacheKey, ObjectCache};
use orc_core::SymbolFlags;

use crate::diagnostics::{CurrentUnit, DiagnosticSink};
use crate::error::{CompileError, CompileStage};
use crate::fatal::{self, install_fatal_error_handler, Fatal};

/// How hard LLVM optimizes: the IR pipeline `default<On>` and the code
/// generator's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum LlvmOptLevel {
    /// `default<O0>`, no backend optimization: the fastest compiles.
    O0,
    /// `default<O1>`, backend level "less".
    O1,
    /// `default<O2>`, backend level "default" (the default).
    #[default]
    O2,
    /// `default<O3>`, backend level "aggressive".
    O3,
}

impl LlvmOptLevel {
    /// The new pass manager's pipeline text for this level.
    pub fn pipeline(self) -> &'static str {
        match self {
            LlvmOptLevel::O0 => "default<O0>",
            LlvmOptLevel::O1 => "default<O1>",
            LlvmOptLevel::O2 => "default<O2>",
            LlvmOptLevel::O3 => "default<O3>",
        }
    }

    fn codegen(self) -> OptimizationLevel {
        match self {
            LlvmOptLevel::O0 => OptimizationLevel::None,
            LlvmOptLevel::O1 => OptimizationLevel::Less,
            LlvmOptLevel::O2 => OptimizationLevel::Default,
            LlvmOptLevel::O3 => OptimizationLevel::Aggressive,
        }
    }
}

impl std::str::FromStr for LlvmOptLevel {
    type Err = String;

    /// Accepts `0`..`3` and `O0`..`O3`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix('O').unwrap_or(s) {
            "0" => Ok(LlvmOptLevel::O0),
            "1" => Ok(LlvmOptLevel::O1),
            "2" => Ok(LlvmOptLevel::O2),
            "3" => Ok(LlvmOptLevel::O3),
            _ => Err(format!(
                "unknown LLVM optimization level '{s}' (expected O0, O1, O2 or O3)"
            )),
        }
    }
}

/// Settings of the tier-1 compiler.
#[derive(Clone, Debug, Default)]
pub struct LlvmConfig {
    /// Optimization level of the IR pipeline and the code generator
    /// (default O2).
    pub opt_level: LlvmOptLevel,
    /// A pass pipeline to run instead of `default<On>` (new pass manager
    /// syntax); `Some("")` runs no IR passes (code generation still uses
    /// `opt_level`), which is what `lli` does with already optimized IR.
    pub pipeline: Option<String>,
    /// Keep each function's optimized IR in its [`FunctionReport`].
    pub capture_ir: bool,
    /// Also emit the module as assembly into [`CompiledObject::asm`].
    pub capture_asm: bool,
}

impl LlvmConfig {
    /// Code generation at `opt_level` with no IR passes: what `lli` does,
    /// and the fastest choice for IR that is already optimized (e.g. from
    /// `clang -O2 -emit-llvm`).
    pub fn codegen_only(opt_level: LlvmOptLevel) -> Self {
        LlvmConfig {
            opt_level,
            pipeline: Some(String::new()),
            ..LlvmConfig::default()
        }
    }
}

/// A module of LLVM IR a frontend builds on the compile thread.
pub trait LlvmModule: Send + 'static {
    /// A name for diagnostics and the object file.
    fn name(&self) -> &str;

    /// The symbols the module defines once built, with their flags. Must
    /// be defined (with external linkage) by the module `build` returns.
    fn symbols(&self) -> Vec<(String, SymbolFlags)>;

    /// Creates the module in `context`. It need not be verified: the
    /// compiler verifies it before anything else.
    fn build<'ctx>(self: Box<Self>, context: &'ctx Context) -> Result<Module<'ctx>, String>;
}

/// An [`LlvmModule`] from a name, a symbol list and a closure.
pub struct FnLlvmModule<F> {
    name: String,
    symbols: Vec<(String, SymbolFlags)>,
    build: F,
}

impl<F> FnLlvmModule<F>
where
    F: for<'ctx> FnOnce(&'ctx Context) -> Result<Module<'ctx>, String> + Send + 'static,
{
    /// A module called `name` defining `symbols`, created by `build`.
    pub fn new(
        name: impl Into<String>,
        symbols: Vec<(String, SymbolFlags)>,
        build: F,
    ) -> Box<Self> {
        Box::new(FnLlvmModule {
            name: name.into(),
            symbols,
            build,
        })
    }
}

impl<F> LlvmModule for FnLlvmModule<F>
where
    F: for<'ctx> FnOnce(&'ctx Context) -> Result<Module<'ctx>, String> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.symbols.clone()
    }
    fn build<'ctx>(self: Box<Self>, context: &'ctx Context) -> Result<Module<'ctx>, String> {
        (self.build)(context)
    }
}

/// An [`LlvmModule`] parsed from LLVM IR text or bitcode.
pub struct IrBufferModule {
    name: String,
    symbols: Vec<(String, SymbolFlags)>,
    bytes: Arc<[u8]>,
}

impl IrBufferModule {
    /// A module called `name` (also the buffer name in parse errors)
    /// defining `symbols`, parsed from `bytes` (`.ll` text or `.bc`).
    pub fn new(
        name: impl Into<String>,
        symbols: Vec<(String, SymbolFlags)>,
        bytes: impl Into<Arc<[u8]>>,
    ) -> Box<Self> {
        Box::new(IrBufferModule {
            name: name.into(),
            symbols,
            bytes: bytes.into(),
        })
    }
}

impl LlvmModule for IrBufferModule {
    fn name(&self) -> &str {
        &self.name
    }
    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.symbols.clone()
    }
    fn build<'ctx>(self: Box<Self>, context: &'ctx Context) -> Result<Module<'ctx>, String> {
        let buffer = MemoryBuffer::create_from_memory_range_copy(&self.bytes, &self.name);
        context
            .create_module_from_ir(buffer)
            .map_err(|e| e.to_string().trim_end().to_owned())
    }
}

/// What the compiler recorded about one function of a module.
#[derive(Clone, Debug)]
pub struct FunctionReport {
    /// The function's symbol name.
    pub name: String,
    /// Its optimized IR, when [`LlvmConfig::capture_ir`].
    pub ir: Option<String>,
    /// Its share of the module's compile time (optimization and code
    /// generation), split by code size; exact for one-function modules.
    pub compile_time: Duration,
    /// Size of its machine code in bytes (the object's symbol size).
    pub code_size: usize,
}

/// Where a compile spent its time.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseTimes {
    /// Building (or parsing) the module in the frontend.
    pub build: Duration,
    /// The verifier.
    pub verify: Duration,
    /// The IR pass pipeline.
    pub optimize: Duration,
    /// Code generation (object, and assembly when asked).
    pub codegen: Duration,
}

/// A compiled module: a relocatable object and per-function reports.
#[derive(Clone, Debug)]
pub struct CompiledObject {
    /// The module's name.
    pub name: String,
    /// The ELF relocatable object.
    pub bytes: Vec<u8>,
    /// One report per function with code in the object, by address.
    pub functions: Vec<FunctionReport>,
    /// The module's assembly, when [`LlvmConfig::capture_asm`].
    pub asm: Option<String>,
    /// Time per phase.
    pub phases: PhaseTimes,
    /// Time for the whole compile.
    pub total_time: Duration,
}

/// The host as LLVM sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTarget {
    /// The target triple (normalized).
    pub triple: String,
    /// The CPU name (`get_host_cpu_name`).
    pub cpu: String,
    /// The CPU features (`get_host_cpu_features`).
    pub features: String,
}

/// Initializes LLVM's native target (once per process) and describes the
/// host.
pub fn host_target() -> Result<HostTarget, CompileError> {
    static HOST: OnceLock<Result<HostTarget, String>> = OnceLock::new();
    HOST.get_or_init(|| {
        install_fatal_error_handler();
        let config = InitializationConfig {
            asm_parser: true,
            asm_printer: true,
            base: true,
            disassembler: false,
            info: true,
            machine_code: true,
        };
        Target::initialize_native(&config)?;
        let triple = TargetMachine::normalize_triple(&TargetMachine::get_default_triple());
        Ok(HostTarget {
            triple: triple.as_str().to_string_lossy().into_owned(),
            cpu: TargetMachine::get_host_cpu_name().to_string(),
            features: TargetMachine::get_host_cpu_features().to_string(),
        })
    })
    .clone()
    .map_err(|message| CompileError::Target { message })
}

thread_local! {
    /// Target machines by optimization level, reused by later compiles on
    /// the same thread (a target machine is not `Send`, but can compile
    /// modules of different contexts one after the other).
    static MACHINES: RefCell<Vec<(LlvmOptLevel, TargetMachine)>> = const { RefCell::new(Vec::new()) };
}

/// Compiles [`LlvmModule`]s for the host. Cheap to share between threads:
/// every compile makes its own context; target machines are per thread.
pub struct LlvmCompiler {
    host: HostTarget,
    config: LlvmConfig,
    /// Where compiled objects are kept across runs, if anywhere.
    cache: Option<Arc<dyn ObjectCache>>,
}

impl LlvmCompiler {
    /// A compiler for the host CPU and its features. Fails if LLVM has no
    /// native target or cannot make a target machine for it.
    pub fn new(config: LlvmConfig) -> Result<Self, CompileError> {
        let compiler = LlvmCompiler {
            host: host_target()?,
            config,
            cache: None,
        };
        // The check's machine is this thread's first: keep it for the
        // thread's first compile (creating one costs ~0.2 ms).
        let tm = compiler.target_machine()?;
        compiler.recycle(tm);
        Ok(compiler)
    }

    /// Keeps compiled objects in `cache` and compiles only what it does
    /// not hold (see [`orc_core::cache`]). The key is the module's bitcode
    /// after verification, the host triple, CPU and features, the pass
    /// pipeline and code-generation level, and orc's build. Compiles
    /// that capture IR or assembly for dumps bypass the cache.
    pub fn with_cache(mut self, cache: Option<Arc<dyn ObjectCache>>) -> Self {
        self.cache = cache;
        self
    }

    /// The host the compiler targets.
    pub fn host(&self) -> &HostTarget {
        &self.host
    }

    /// The compiler's settings.
    pub fn config(&self) -> &LlvmConfig {
        &self.config
    }

    /// A target machine for this compiler's level: the one this thread
    /// used last if any (creating one costs as much as compiling a small
    /// function), else a new one. Give it back with [`Self::recycle`].
    fn take_machine(&self) -> Result<TargetMachine, CompileError> {
        let level = self.config.opt_level;
        let cached = MACHINES
            .try_with(|m| {
                let mut m = m.try_borrow_mut().ok()?;
                let i = m.iter().position(|(l, _)| *l == level)?;
                Some(m.swap_remove(i).1)
            })
            .ok()
            .flatten();
        match cached {
            Some(tm) => Ok(tm),
            None => self.target_machine(),
        }
    }

    fn recycle(&self, tm: TargetMachine) {
        let level = self.config.opt_level;
        let _ = MACHINES.try_with(|m| {
            if let Ok(mut m) = m.try_borrow_mut() {
                if m.len() < 4 {
                    m.push((level, tm));
                }
            }
        });
    }

    fn target_machine(&self) -> Result<TargetMachine, CompileError> {
        let triple = TargetTriple::create(&self.host.triple);
        let target = Target::from_triple(&triple).map_err(|e| CompileError::Target {
            message: e.to_string(),
        })?;
        target
            .create_target_machine(
                &triple,
                &self.host.cpu,
                &self.host.features,
                self.config.opt_level.codegen(),
                RelocMode::PIC,
                CodeModel::Default,
            )
            .ok_or_else(|| CompileError::Target {
                message: format!(
                    "cannot create a target machine for {} (cpu {})",
                    self.host.triple, self.host.cpu
                ),
            })
    }

    /// Builds, verifies, optimizes and compiles `module` into one
    /// relocatable object. Every failure is an error value, including
    /// LLVM's fatal errors ([`CompileError::Fatal`]); see the crate docs.
    pub fn compile(&self, module: Box<dyn LlvmModule>) -> Result<CompiledObject, CompileError> {
        let start = Instant::now();
        let name = module.name().to_owned();
        let _unit = CurrentUnit::enter(&name);
        // Declared before the context: it must outlive it.
        let sink = DiagnosticSink::new();
        let context = Context::create();
        sink.attach(&context);
        let res = self.compile_in(&context, &sink, module, &name);
        if let Err(CompileError::Fatal { .. }) = &res {
            // LLVM abandoned its work on this context half-way (see
            // `fatal.rs`): the parked helper thread's frames may still
            // refer to it. It is leaked too, and so is the sink it reports
            // to.
            std::mem::forget(context);
            std::mem::forget(sink);
        }
        let mut compiled = res?;
        compiled.total_time = start.elapsed();
        Ok(compiled)
    }

    fn compile_in(
        &self,
        context: &Context,
        sink: &DiagnosticSink,
        producer: Box<dyn LlvmModule>,
        name: &str,
    ) -> Result<CompiledObject, CompileError> {
        let diag_errors = |stage: &str| reported_errors(sink, name, stage);
        let mut phases = PhaseTimes::default();
        let t = Instant::now();
        let module = producer
            .build(context)
            .map_err(|message| CompileError::Frontend {
                module: name.to_owned(),
                message,
            })?;
        phases.build = t.elapsed();
        diag_errors("building")?;

        let tm = self.take_machine()?;
        let compiled = self.compile_module(module, &tm, sink, name, phases);
        if let Err(CompileError::Fatal { .. }) = &compiled {
            // It may have been half-way through an update: never reused,
            // never disposed of.
            std::mem::forget(tm);
        } else {
            self.recycle(tm);
        }
        compiled
    }

    /// Verifies, optimizes and compiles `module`. After a
    /// [`CompileError::Fatal`], `tm` and the module's context must be
    /// leaked (the module already is).
    fn compile_module(
        &self,
        module: Module<'_>,
        tm: &TargetMachine,
        sink: &DiagnosticSink,
        name: &str,
        mut phases: PhaseTimes,
    ) -> Result<CompiledObject, CompileError> {
        let diag_errors = |stage: &str| reported_errors(sink, name, stage);
        self.check_triple(&module, name)?;
        module.set_triple(&tm.get_triple());
        module.set_data_layout(&tm.get_target_data().get_data_layout());

        let t = Instant::now();
        module.verify().map_err(|e| CompileError::Verify {
            module: name.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        phases.verify = t.elapsed();

        let pipeline = self
            .config
            .pipeline
            .as_deref()
            .unwrap_or(self.config.opt_level.pipeline());
        let cache = self
            .cache
            .as_ref()
            .filter(|_| !self.config.capture_ir && !self.config.capture_asm);
        let key = cache.map(|_| self.cache_key(&module, pipeline));
        if let (Some(cache), Some(key)) = (cache, &key) {
            if let Some(bytes) = cache.get(key) {
                let functions = function_reports(&bytes, Duration::ZERO, Vec::new());
                return Ok(CompiledObject {
                    name: name.to_owned(),
                    bytes,
                    functions,
                    asm: None,
                    phases,
                    total_time: Duration::ZERO,
                });
            }
        }

        let function = sole_function(&module);
        let fatal_error = |stage: CompileStage, f: Fatal| CompileError::Fatal {
            module: name.to_owned(),
            function: function.clone(),
            stage,
            reason: f.0,
        };
        let t = Instant::now();
        if !pipeline.is_empty() {
            match fatal::run_passes(&module, pipeline, tm) {
                Ok(Ok(())) => {}
                Ok(Err(message)) => {
                    return Err(CompileError::Passes {
                        module: name.to_owned(),
                        message,
                    })
                }
                Err(f) => {
                    std::mem::forget(module);
                    return Err(fatal_error(CompileStage::Optimize, f));
                }
            }
        }
        phases.optimize = t.elapsed();
        diag_errors("optimizing")?;

        let ir: Vec<(String, String)> = if self.config.capture_ir {
            module
                .get_functions()
                .filter(|f| f.count_basic_blocks() > 0)
                .map(|f| {
                    let fname = f.get_name().to_string_lossy().into_owned();
                    (fname, f.print_to_string().to_string())
                })
                .collect()
        } else {
            Vec::new()
        };

        let t = Instant::now();
        let codegen_err = |message: String| CompileError::Codegen {
            module: name.to_owned(),
            message,
        };
        let asm = if self.config.capture_asm {
            // Code generation may rewrite the IR it runs on: emit the
            // assembly from a copy so the object comes from the same input.
            let copy = module.clone();
            match fatal::emit(&copy, tm, LLVMCodeGenFileType::LLVMAssemblyFile) {
                Ok(Ok(text)) => Some(String::from_utf8_lossy(&text).into_owned()),
                Ok(Err(message)) => return Err(codegen_err(message)),
                Err(f) => {
                    std::mem::forget(copy);
                    std::mem::forget(module);
                    return Err(fatal_error(CompileStage::Codegen, f));
                }
            }
        } else {
            None
        };
        let bytes = match fatal::emit(&module, tm, LLVMCodeGenFileType::LLVMObjectFile) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(message)) => return Err(codegen_err(message)),
            Err(f) => {
                std::mem::forget(module);
                return Err(fatal_error(CompileStage::Codegen, f));
            }
        };
        phases.codegen = t.elapsed();
        diag_errors("generating code")?;

        if let (Some(cache), Some(key)) = (cache, &key) {
            cache.put(key, &bytes);
        }
        let compile_time = phases.optimize + phases.codegen;
        let functions = function_reports(&bytes, compile_time, ir);
        Ok(CompiledObject {
            name: name.to_owned(),
            bytes,
            functions,
            asm,
            phases,
            total_time: Duration::ZERO,
        })
    }

    /// The object cache's key for `module` (verified, triple and data
    /// layout set) compiled with `pipeline`.
    fn cache_key(&self, module: &Module<'_>, pipeline: &str) -> CacheKey {
        let bitcode = module.write_bitcode_to_memory();
        CacheKey::builder()
            .part("llvm")
            .part(&self.host.triple)
            .part(&self.host.cpu)
            .part(&self.host.features)
            .part(pipeline)
            .part(format!(
                "{:?} pic default-code-model",
                self.config.opt_level
            ))
            .part(bitcode.as_slice())
            .finish()
    }

    /// Rejects modules for another architecture (their IR would be
    /// miscompiled or crash the backend); an empty triple means the host.
    fn check_triple(&self, module: &Module<'_>, name: &str) -> Result<(), CompileError> {
        let triple = module.get_triple();
        let triple = triple.as_str().to_string_lossy().into_owned();
        if triple.is_empty() {
            return Ok(());
        }
        let arch = |t: &str| t.split('-').next().unwrap_or("").to_owned();
        let normalized = TargetMachine::normalize_triple(&TargetTriple::create(&triple));
        let normalized = normalized.as_str().to_string_lossy().into_owned();
        if arch(&normalized) == arch(&self.host.triple) {
            Ok(())
        } else {
            Err(CompileError::ForeignTriple {
                module: name.to_owned(),
                triple,
                host: self.host.triple.clone(),
            })
        }
    }
}

impl std::fmt::Debug for LlvmCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlvmCompiler")
            .field("host", &self.host)
            .field("config", &self.config)
            .finish()
    }
}

/// The name of `module`'s only function definition, if it has exactly one.
fn sole_function(module: &Module<'_>) -> Option<String> {
    let mut defined = module
        .get_functions()
        .filter(|f| !f.as_global_value().is_declaration());
    let first = defined.next()?;
    if defined.next().is_some() {
        return None;
    }
    Some(first.get_name().to_string_lossy().into_owned())
}

/// The error diagnostics LLVM reported while `stage` ran, as an error.
fn reported_errors(sink: &DiagnosticSink, name: &str, stage: &str) -> Result<(), CompileError> {
    let errors = sink.take_errors();
    if errors.is_empty() {
        return Ok(());
    }
    Err(CompileError::Codegen {
        module: name.to_owned(),
        message: format!("{stage}: {}", errors.join("\n")),
    })
}

/// One report per function symbol of the object, with the module's compile
/// time split by code size and the captured IR attached by name.
fn function_reports(
    bytes: &[u8],
    compile_time: Duration,
    mut ir: Vec<(String, String)>,
) -> Vec<FunctionReport> {
    let mut sized: Vec<(u64, String, usize)> = match object::File::parse(bytes) {
        Ok(file) => file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
            .filter_map(|s| {
                let name = s.name().ok()?.to_owned();
                Some((s.address(), name, usize::try_from(s.size()).ok()?))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    sized.sort();
    let total: usize = sized.iter().map(|(_, _, size)| size).sum();
    sized
        .into_iter()
        .map(|(_, name, code_size)| {
            let share = if total == 0 {
                0.0
            } else {
                code_size as f64 / total as f64
            };
            let ir = ir
                .iter()
                .position(|(n, _)| *n == name)
                .map(|i| ir.swap_remove(i).1);
            FunctionReport {
                name,
                ir,
                compile_time: compile_time.mul_f64(share),
                code_size,
            }
        })
        .collect()
}
