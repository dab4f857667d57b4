//! The tier-0 compiler: Cranelift functions built by a frontend, compiled
//! for the host and written as one relocatable ELF object with `.eh_frame`.
//!
//! Frontends write against `cranelift_module::Module`; the compiler hands
//! them a wrapper around `cranelift_object::ObjectModule` that records, per
//! function, the CLIF (when asked), compile time and code size. Calls to
//! other functions are by symbol name (relocations for the JIT linker),
//! never by address.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir;
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{CodegenError, Context};
use cranelift_module::{
    DataDescription, DataId, FuncId, Linkage, Module, ModuleDeclarations, ModuleError, ModuleReloc,
    ModuleRelocTarget, ModuleResult,
};
use cranelift_object::{ObjectBuilder, ObjectModule};
use orc_core::cache::{CacheKey, ObjectCache};
use orc_core::{ExecutionSession, SymbolFlags, SymbolFlagsMap};

use crate::debug_lines::LineSource;
use crate::error::CompileError;

/// How hard Cranelift optimizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OptLevel {
    /// No optimization: the fastest compiles.
    None,
    /// Optimize for speed (the default).
    #[default]
    Speed,
    /// Optimize for speed and size.
    SpeedAndSize,
}

impl OptLevel {
    fn setting(self) -> &'static str {
        match self {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        }
    }
}

/// Settings of the tier-0 compiler.
#[derive(Clone, Debug, Default)]
pub struct CraneliftConfig {
    /// Optimization level (default `speed`).
    pub opt_level: OptLevel,
    /// Keep each function's CLIF text in its [`FunctionReport`].
    pub capture_clif: bool,
}

/// A module of Cranelift functions a frontend builds on the compile thread.
pub trait CraneliftModule: Send + 'static {
    /// A name for diagnostics and the object file.
    fn name(&self) -> &str;

    /// The symbols the module defines once built, with their flags. Must
    /// match what `build` defines with `Linkage::Export`.
    fn symbols(&self) -> Vec<(String, SymbolFlags)>;

    /// [`Self::symbols`] interned in `es` (the session the module is added
    /// to). A module that already holds its names interned in `es`
    /// overrides this to skip the copies.
    fn interned_symbols(&self, es: &ExecutionSession) -> SymbolFlagsMap {
        self.symbols()
            .into_iter()
            .map(|(name, flags)| (es.intern(&name), flags))
            .collect()
    }

    /// Declares and defines the module's functions in `module`.
    fn build(self: Box<Self>, module: &mut dyn Module) -> Result<(), String>;
}

/// A [`CraneliftModule`] from a name, a symbol list and a closure.
pub struct FnModule<F> {
    name: String,
    symbols: Vec<(String, SymbolFlags)>,
    build: F,
}

impl<F> FnModule<F>
where
    F: FnOnce(&mut dyn Module) -> Result<(), String> + Send + 'static,
{
    /// A module called `name` defining `symbols` by running `build`.
    pub fn new(
        name: impl Into<String>,
        symbols: Vec<(String, SymbolFlags)>,
        build: F,
    ) -> Box<Self> {
        Box::new(FnModule {
            name: name.into(),
            symbols,
            build,
        })
    }
}

impl<F> CraneliftModule for FnModule<F>
where
    F: FnOnce(&mut dyn Module) -> Result<(), String> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.symbols.clone()
    }
    fn build(self: Box<Self>, module: &mut dyn Module) -> Result<(), String> {
        (self.build)(module)
    }
}

/// What the compiler recorded about one function.
#[derive(Clone, Debug)]
pub struct FunctionReport {
    /// The function's symbol name.
    pub name: String,
    /// Its CLIF before compilation, when [`CraneliftConfig::capture_clif`].
    pub clif: Option<String>,
    /// Time spent in Cranelift for it.
    pub compile_time: Duration,
    /// Size of its machine code in bytes.
    pub code_size: usize,
}

/// A compiled module: a relocatable object and per-function reports.
#[derive(Clone, Debug)]
pub struct CompiledObject {
    /// The module's name.
    pub name: String,
    /// The ELF relocatable object.
    pub bytes: Vec<u8>,
    /// One report per defined function, in definition order.
    pub functions: Vec<FunctionReport>,
    /// Time for the whole module (build, compile, object writing).
    pub total_time: Duration,
}

/// Compiles [`CraneliftModule`]s for the host.
pub struct CraneliftCompiler {
    isa: OwnedTargetIsa,
    config: CraneliftConfig,
    /// Where compiled objects are kept across runs, if anywhere.
    cache: Option<Arc<dyn ObjectCache>>,
    /// The file source locations are lines of, for DWARF line tables.
    line_source: std::sync::RwLock<Option<LineSource>>,
}

impl CraneliftCompiler {
    /// A compiler for the host CPU (features detected by
    /// `cranelift-native`), producing position-independent code.
    pub fn new(config: CraneliftConfig) -> Result<Self, CompileError> {
        let isa_err = |message: String| CompileError::Isa { message };
        let mut flags = settings::builder();
        flags
            .set("opt_level", config.opt_level.setting())
            .map_err(|e| isa_err(e.to_string()))?;
        flags
            .set("is_pic", "true")
            .map_err(|e| isa_err(e.to_string()))?;
        // Cranelift's own verifier runs five times per function (before and
        // after each of its passes); the compiler verifies each function
        // once instead, as the frontend built it (see
        // `define_function_with_control_plane`). Its passes are Cranelift's
        // to get right, and turning the flag off took a quarter off the
        // compile time of small functions.
        flags
            .set("enable_verifier", "false")
            .map_err(|e| isa_err(e.to_string()))?;
        // Tail calls (`return_call`, the `tail` convention) need frame
        // pointers on x86-64; without them Cranelift's backend stops with
        // a panic. They also give debuggers and profilers a frame chain.
        flags
            .set("preserve_frame_pointers", "true")
            .map_err(|e| isa_err(e.to_string()))?;
        let isa_builder = cranelift_native::builder().map_err(|e| isa_err(e.to_string()))?;
        let isa = isa_builder
            .finish(settings::Flags::new(flags))
            .map_err(|e| isa_err(e.to_string()))?;
        Ok(CraneliftCompiler {
            isa,
            config,
            cache: None,
            line_source: std::sync::RwLock::new(None),
        })
    }

    /// Gives compiled code DWARF line tables: each instruction's source
    /// location (`FunctionBuilder::set_srcloc`) is read as a line of
    /// `source` (see [`crate::debug_lines`]). Applies to what is compiled
    /// from now on; `None` turns it off.
    pub fn set_line_source(&self, source: Option<LineSource>) {
        *self.line_source.write().unwrap_or_else(|e| e.into_inner()) = source;
    }

    /// Keeps compiled objects in `cache` and compiles only modules it does
    /// not hold (see [`orc_core::cache`]). The key covers the module's
    /// declarations, data and every function's CLIF as the frontend built
    /// it, the ISA with its flags, and orc's build. Profiled modules
    /// (whose code holds this process's counter addresses) and compiles
    /// that capture CLIF bypass the cache.
    pub fn with_cache(mut self, cache: Option<Arc<dyn ObjectCache>>) -> Self {
        self.cache = cache;
        self
    }

    /// The target the compiler generates code for.
    pub fn isa(&self) -> &dyn TargetIsa {
        &*self.isa
    }

    /// The compiler's settings.
    pub fn config(&self) -> &CraneliftConfig {
        &self.config
    }

    /// Builds and compiles `module` into one relocatable object.
    pub fn compile(
        &self,
        module: Box<dyn CraneliftModule>,
    ) -> Result<CompiledObject, CompileError> {
        self.compile_profiled(module, None)
    }

    /// Like [`Self::compile`], adding tiering counters (entry and loop
    /// back-edges, with a trip check) to every function `counters` gives a
    /// [`orc_core::TripCounter`] for.
    pub fn compile_profiled(
        &self,
        module: Box<dyn CraneliftModule>,
        counters: Option<&CounterProvider>,
    ) -> Result<CompiledObject, CompileError> {
        let start = Instant::now();
        let name = module.name().to_owned();
        let mut builder = ObjectBuilder::new(
            Arc::clone(&self.isa),
            name.as_bytes().to_vec(),
            cranelift_module::default_libcall_names(),
        )
        .map_err(|e| CompileError::Isa {
            message: e.to_string(),
        })?;
        builder.unwind_info(true);
        let mut object = ObjectModule::new(builder);
        let line_source = self
            .line_source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let cache = self
            .cache
            .as_ref()
            .filter(|_| counters.is_none() && !self.config.capture_clif);
        let mut recording = RecordingModule {
            inner: &mut object,
            reports: Vec::new(),
            capture_clif: self.config.capture_clif,
            error: None,
            counters,
            traps: Vec::new(),
            deferred: cache.map(|_| Deferred::default()),
            lines: line_source.is_some().then(Vec::new),
        };
        let mut built = module.build(&mut recording);
        // With a cache, the functions were only recorded: look the module
        // up, and compile them now only if it is not there.
        let mut key = None;
        if let (Some(cache), Some(deferred)) = (cache, recording.deferred.take()) {
            if built.is_ok() {
                let k = self.cache_key(
                    &name,
                    line_source.as_ref(),
                    recording.inner.declarations(),
                    &deferred,
                );
                if let Some(bytes) = cache.get(&k) {
                    let functions = deferred
                        .functions
                        .iter()
                        .map(|(id, _)| FunctionReport {
                            name: recording
                                .inner
                                .declarations()
                                .get_function_decl(*id)
                                .linkage_name(*id)
                                .into_owned(),
                            clif: None,
                            compile_time: Duration::ZERO,
                            code_size: 0,
                        })
                        .collect();
                    return Ok(CompiledObject {
                        name,
                        functions: with_code_sizes(functions, &bytes),
                        bytes,
                        total_time: start.elapsed(),
                    });
                }
                key = Some(k);
            }
            for (id, func) in deferred.functions {
                let mut ctx = Context::for_function(func);
                if let Err(e) = recording.define_function_with_control_plane(
                    id,
                    &mut ctx,
                    &mut ControlPlane::default(),
                ) {
                    built = Err(e.to_string());
                    break;
                }
            }
        }
        let RecordingModule {
            reports,
            error,
            traps,
            lines,
            ..
        } = recording;
        if let Some(message) = error {
            return Err(CompileError::Codegen {
                module: name,
                message,
            });
        }
        built.map_err(|message| CompileError::Frontend {
            module: name.clone(),
            message,
        })?;
        let mut product = object.finish();
        if let (Some(source), Some(lines)) = (&line_source, lines) {
            let functions: Vec<crate::debug_lines::FunctionLines> = lines
                .into_iter()
                .map(|(id, size, rows)| crate::debug_lines::FunctionLines {
                    symbol: product.function_symbol(id),
                    size,
                    rows,
                })
                .collect();
            crate::debug_lines::add_line_tables(&mut product.object, source, &name, &functions)
                .map_err(|message| CompileError::Object {
                    module: name.clone(),
                    message,
                })?;
        }
        if !traps.is_empty() {
            use cranelift_object::object::write::SectionKind;
            let table = orc_core::trap::registry::write_trap_section(
                traps.iter().map(|(s, t)| (s.as_str(), t.as_slice())),
            );
            let section = product.object.add_section(
                Vec::new(),
                orc_core::trap::registry::TRAP_SECTION.as_bytes().to_vec(),
                SectionKind::Metadata,
            );
            product.object.append_section_data(section, &table, 1);
        }
        let bytes = product.emit().map_err(|e| CompileError::Object {
            module: name.clone(),
            message: e.to_string(),
        })?;
        if let (Some(cache), Some(key)) = (cache, key) {
            cache.put(&key, &bytes);
        }
        Ok(CompiledObject {
            name,
            bytes,
            functions: reports,
            total_time: start.elapsed(),
        })
    }
}

impl CraneliftCompiler {
    /// The object cache's key of a module: what decides its object's
    /// bytes (see [`Self::with_cache`]).
    fn cache_key(
        &self,
        name: &str,
        lines: Option<&LineSource>,
        decls: &ModuleDeclarations,
        deferred: &Deferred,
    ) -> CacheKey {
        let mut key = CacheKey::builder()
            .part("cranelift")
            .part(name)
            .part(format!("{lines:?}"))
            .part(self.isa.triple().to_string())
            .part(self.isa.flags().to_string())
            .part(
                self.isa
                    .isa_flags()
                    .iter()
                    .map(|v| format!("{v} "))
                    .collect::<String>(),
            );
        for (id, decl) in decls.get_functions() {
            key = key.part(format!(
                "fn {} {:?} {}",
                decl.linkage_name(id),
                decl.linkage,
                decl.signature
            ));
        }
        for (id, decl) in decls.get_data_objects() {
            key = key.part(format!(
                "data {} {:?} {} {}",
                decl.linkage_name(id),
                decl.linkage,
                decl.writable,
                decl.tls
            ));
        }
        for event in &deferred.log {
            key = key.part(event);
        }
        for (id, func) in &deferred.functions {
            key = key.part(format!("define {}\n{}", id.as_u32(), func.display()));
        }
        key.finish()
    }
}

/// Fills in each report's code size from the symbols of `object`.
fn with_code_sizes(mut reports: Vec<FunctionReport>, object: &[u8]) -> Vec<FunctionReport> {
    use cranelift_object::object::{File, Object, ObjectSymbol};
    if let Ok(file) = File::parse(object) {
        for report in &mut reports {
            if let Some(sym) = file
                .symbols()
                .find(|s| s.name() == Ok(report.name.as_str()))
            {
                report.code_size = sym.size() as usize;
            }
        }
    }
    reports
}

/// What a module built while its functions were only recorded (to look it
/// up in the object cache first).
#[derive(Default)]
struct Deferred {
    /// The functions to compile, in definition order.
    functions: Vec<(FuncId, ir::Function)>,
    /// Everything else defined, in order, as text for the key.
    log: Vec<String>,
}

impl std::fmt::Debug for CraneliftCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CraneliftCompiler")
            .field("triple", &self.isa.triple().to_string())
            .field("config", &self.config)
            .finish()
    }
}

/// Gives the tiering counter of a function (by symbol name) and what its
/// code calls when the count trips, or `None` for functions that are not
/// profiled.
pub type CounterProvider =
    std::sync::Arc<dyn Fn(&str) -> Option<orc_core::TripCounter> + Send + Sync>;

/// Delegates to the object module and records what each function cost.
struct RecordingModule<'a> {
    inner: &'a mut ObjectModule,
    counters: Option<&'a CounterProvider>,
    reports: Vec<FunctionReport>,
    capture_clif: bool,
    /// The first codegen error, kept with the function's name: frontends
    /// may flatten errors into strings, the layer reports this one.
    error: Option<String>,
    /// Each compiled function's trap table: (symbol, [(offset, code)]).
    traps: Vec<(String, Vec<(u32, u8)>)>,
    /// With an object cache: functions are recorded, not compiled, until
    /// the cache has been asked.
    deferred: Option<Deferred>,
    /// With a line source: each compiled body's (function, code size,
    /// (offset, line) rows).
    lines: Option<Vec<BodyLines>>,
}

/// A compiled body's function, code size and (offset, line) rows.
type BodyLines = (FuncId, u64, Vec<(u64, u64)>);

impl RecordingModule<'_> {
    /// Compiles `ctx` as a local body `{name}$body` and defines `func` (the
    /// symbol callers reach) as `thunk` jumping to it.
    // The error type is the `Module` trait's, returned as is.
    #[allow(clippy::result_large_err)]
    fn define_behind_thunk(
        &mut self,
        func: FuncId,
        name: &str,
        thunk: &orc_core::EntryThunk,
        ctx: &mut Context,
        ctrl_plane: &mut ControlPlane,
    ) -> ModuleResult<FuncId> {
        let body = self.inner.declare_function(
            &format!("{name}$body"),
            Linkage::Local,
            &ctx.func.signature,
        )?;
        self.inner
            .define_function_with_control_plane(body, ctx, ctrl_plane)?;
        let reloc = ModuleReloc {
            offset: thunk.body_rel32_at as u32,
            kind: Reloc::X86PCRel4,
            name: ModuleRelocTarget::user(0, body.as_u32()),
            addend: -4,
        };
        self.inner
            .define_function_bytes(func, 16, &thunk.code, &[reloc])?;
        Ok(body)
    }
}

impl RecordingModule<'_> {
    /// Keeps the first error of the module, naming the function, and
    /// passes it on to the frontend.
    fn record_error(&mut self, name: &str, e: ModuleError) -> ModuleError {
        self.error
            .get_or_insert_with(|| format!("function '{name}': {e}"));
        e
    }

    /// [`Self::record_error`] for a codegen error.
    fn codegen_error(&mut self, name: &str, e: CodegenError) -> ModuleError {
        self.record_error(name, ModuleError::Compilation(e))
    }
}

impl Module for RecordingModule<'_> {
    fn isa(&self) -> &dyn TargetIsa {
        self.inner.isa()
    }

    fn declarations(&self) -> &ModuleDeclarations {
        self.inner.declarations()
    }

    fn declare_function(
        &mut self,
        name: &str,
        linkage: Linkage,
        signature: &ir::Signature,
    ) -> ModuleResult<FuncId> {
        self.inner.declare_function(name, linkage, signature)
    }

    fn declare_anonymous_function(&mut self, signature: &ir::Signature) -> ModuleResult<FuncId> {
        self.inner.declare_anonymous_function(signature)
    }

    fn declare_data(
        &mut self,
        name: &str,
        linkage: Linkage,
        writable: bool,
        tls: bool,
    ) -> ModuleResult<DataId> {
        self.inner.declare_data(name, linkage, writable, tls)
    }

    fn declare_anonymous_data(&mut self, writable: bool, tls: bool) -> ModuleResult<DataId> {
        self.inner.declare_anonymous_data(writable, tls)
    }

    fn define_function_with_control_plane(
        &mut self,
        func: FuncId,
        ctx: &mut Context,
        ctrl_plane: &mut ControlPlane,
    ) -> ModuleResult<()> {
        if let Some(deferred) = &mut self.deferred {
            deferred.functions.push((func, ctx.func.clone()));
            return Ok(());
        }
        let name = self
            .inner
            .declarations()
            .get_function_decl(func)
            .linkage_name(func)
            .into_owned();
        let start = Instant::now();
        // Bad input from a frontend is an error here, with the function's
        // name, not a panic or wrong code further down.
        if let Err(errors) = cranelift_codegen::verify_function(&ctx.func, self.inner.isa()) {
            return Err(self.codegen_error(&name, CodegenError::Verifier(errors)));
        }
        let profile = self.counters.and_then(|c| c(&name));
        // Entries are counted by a thunk in front of the body where the
        // host has one and the signature is System V (the thunk keeps
        // exactly that convention's argument registers); else in the body.
        let thunk = profile
            .filter(|_| ctx.func.signature.call_conv == CallConv::SystemV)
            .and_then(|p| p.entry_thunk());
        if let Some(profile) = &profile {
            let call_conv = self.inner.isa().default_call_conv();
            crate::profile::instrument(&mut ctx.func, profile, call_conv, thunk.is_none());
            // The instrumentation is this crate's own code: checked in
            // debug builds (every test), trusted in release ones.
            if cfg!(debug_assertions) {
                if let Err(errors) = cranelift_codegen::verify_function(&ctx.func, self.inner.isa())
                {
                    let e = CodegenError::Verifier(errors.clone());
                    panic!(
                        "profiling instrumentation of '{name}' broke its CLIF: {e}\n{}",
                        cranelift_codegen::print_errors::pretty_verifier_error(
                            &ctx.func, None, errors
                        )
                    );
                }
            }
        }
        let clif = self.capture_clif.then(|| ctx.func.display().to_string());
        let res = match &thunk {
            None => self
                .inner
                .define_function_with_control_plane(func, ctx, ctrl_plane)
                .map(|()| func),
            Some(thunk) => self.define_behind_thunk(func, &name, thunk, ctx, ctrl_plane),
        };
        let compile_time = start.elapsed();
        let code_id = match res {
            Ok(id) => id,
            Err(e) => return Err(self.record_error(&name, e)),
        };
        if let (Some(lines), Some(compiled)) = (&mut self.lines, ctx.compiled_code()) {
            let mut rows: Vec<(u64, u64)> = Vec::new();
            for loc in compiled.buffer.get_srclocs_sorted() {
                if loc.loc.is_default() || loc.start == loc.end {
                    continue;
                }
                let line = u64::from(loc.loc.bits());
                if rows.last().is_none_or(|&(_, l)| l != line) {
                    rows.push((u64::from(loc.start), line));
                }
            }
            // The prologue belongs to the first line, as compilers
            // attribute it: debuggers then place a function's breakpoint
            // after it, at the second row.
            if let Some(first) = rows.first_mut() {
                if first.0 > 0 {
                    let line = first.1;
                    rows.insert(0, (0, line));
                }
            }
            let size = compiled.code_buffer().len() as u64;
            lines.push((code_id, size, rows));
        }
        let code_size = ctx.compiled_code().map_or(0, |c| c.code_buffer().len())
            + thunk.as_ref().map_or(0, |t| t.code.len());
        // The trap table, by the symbol the compiled code is under, for the
        // trap handler (`orc_core::trap`).
        if let Some(compiled) = ctx.compiled_code() {
            let traps: Vec<(u32, u8)> = compiled
                .buffer
                .traps()
                .iter()
                .map(|t| (t.offset, t.code.as_raw().get()))
                .collect();
            if !traps.is_empty() {
                let symbol = match &thunk {
                    Some(_) => format!("{name}$body"),
                    None => name.clone(),
                };
                self.traps.push((symbol, traps));
            }
        }
        self.reports.push(FunctionReport {
            name,
            clif,
            compile_time,
            code_size,
        });
        Ok(())
    }

    fn define_function_bytes(
        &mut self,
        func_id: FuncId,
        alignment: u64,
        bytes: &[u8],
        relocs: &[ModuleReloc],
    ) -> ModuleResult<()> {
        if let Some(deferred) = &mut self.deferred {
            let relocs: Vec<String> = relocs
                .iter()
                .map(|r| format!("{} {:?} {:?} {}", r.offset, r.kind, r.name, r.addend))
                .collect();
            deferred.log.push(format!(
                "bytes {} {alignment} {bytes:?} {relocs:?}",
                func_id.as_u32()
            ));
        }
        self.inner
            .define_function_bytes(func_id, alignment, bytes, relocs)
    }

    fn define_data(&mut self, data_id: DataId, data: &DataDescription) -> ModuleResult<()> {
        if let Some(deferred) = &mut self.deferred {
            deferred
                .log
                .push(format!("data {} {data:?}", data_id.as_u32()));
        }
        self.inner.define_data(data_id, data)
    }
}
