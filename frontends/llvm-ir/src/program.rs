//! A loaded IR module and the two ways of putting it on a JIT (see the
//! crate docs). The module's bytes are parsed again on each compile thread
//! (inkwell contexts are not `Send`); only bytes and names cross threads.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use orc_core::lazy::LazyReexportsManager;
use orc_core::link::ObjectFile;
use orc_core::{
    reexports, JitDylib, MaterializationResponsibility, MaterializationUnit, ResourceTracker,
    SymbolAliasMap, SymbolAliasMapEntry, SymbolFlags, SymbolFlagsMap, SymbolName,
};
use orc_llvm::inkwell::context::Context;
use orc_llvm::inkwell::module::Module;
use orc_llvm::partition::{self, PartitionError, PartitionPlan, SpeculationLimits, UnitFunction};
use orc_llvm::{IrBufferModule, LlvmLayer, LlvmModule};

use crate::diagnostic::{IrDiagnostic, IrError};

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// The symbol of the compiled body of function `name` in the bodies dylib
/// (lazy mode): `NAME$t1`, the facade's tier-1 naming.
pub fn body_symbol(name: &str) -> String {
    format!("{name}$t1")
}

/// How [`IrProgram::add`] puts a module on the JIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoadMode {
    /// Data now, each function on its first call (CompileOnDemand split).
    #[default]
    Lazy,
    /// The whole module compiled now as one object.
    Eager,
}

/// The parts of a JIT an IR module goes into; the facade's `Jit` has them
/// all.
#[derive(Clone, Copy, Debug)]
pub struct IrTarget<'a> {
    /// The tier-1 layer (its object layer receives the objects).
    pub layer: &'a Arc<LlvmLayer>,
    /// Makes the lazy stubs (lazy mode).
    pub lazy: &'a Arc<LazyReexportsManager>,
    /// Where the program's functions are looked up (`main` among them):
    /// lazy stubs or re-exports.
    pub main: &'a JitDylib,
    /// Where the code and data go. Its link order must search `main` before
    /// the host's symbols, as the facade's `main.impl` does.
    pub bodies: &'a JitDylib,
}

/// A parsed, verified LLVM IR module, ready to add to JITs (any number of
/// times, to different sessions).
#[derive(Debug, Clone)]
pub struct IrProgram {
    pub(crate) name: String,
    pub(crate) bytes: Arc<[u8]>,
    pub(crate) plan: PartitionPlan,
    pub(crate) speculation: SpeculationLimits,
}

impl IrProgram {
    /// Reads, parses and verifies the IR file at `path` (`.ll` or `.bc`,
    /// told apart by content). Diagnostics name the file as given.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, IrError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| IrError::Read {
            path: name.clone(),
            source: Arc::new(e),
        })?;
        Self::parse(name, bytes)
    }

    /// Parses and verifies `bytes` (IR text or bitcode) named `name` in
    /// diagnostics.
    pub fn parse(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Result<Self, IrError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let name = name.into();
        let bytes: Arc<[u8]> = bytes.into().into();
        let prefix = format!("m{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let plan = partition::plan(&name, &bytes, &prefix).map_err(|e| match e {
            PartitionError::Parse(text) => {
                IrError::Invalid(IrDiagnostic::from_parse_error(&name, &text))
            }
            PartitionError::Verify(text) => {
                let source = std::str::from_utf8(&bytes).ok();
                IrError::Invalid(IrDiagnostic::from_verifier_error(&name, &text, source))
            }
            PartitionError::Unsupported(message) => IrError::Unsupported {
                message: message
                    .strip_prefix(&format!("{name}: "))
                    .map_or(message.clone(), str::to_owned),
                file: name.clone(),
            },
            other => IrError::Invalid(IrDiagnostic::from_parse_error(&name, &other.to_string())),
        })?;
        Ok(IrProgram {
            name,
            bytes,
            plan,
            speculation: SpeculationLimits::default(),
        })
    }

    /// How many callees lazy mode may compile along with a function that is
    /// called (see [`LoadMode::Lazy`]); [`SpeculationLimits::NONE`] compiles
    /// each unit only when it is called itself.
    pub fn with_speculation(mut self, limits: SpeculationLimits) -> Self {
        self.speculation = limits;
        self
    }

    /// The name diagnostics use (the path as given).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names the module's functions have in the main dylib, in module
    /// order (local functions under their promoted names).
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.plan.functions.iter().map(|f| f.name.as_str())
    }

    /// Whether the module defines an exported function `name` (e.g.
    /// `main`).
    pub fn defines(&self, name: &str) -> bool {
        self.plan
            .functions
            .iter()
            .any(|f| f.exported && f.source_name == name)
    }

    /// Whether the module has `llvm.global_ctors` or `llvm.global_dtors`.
    pub fn has_initializers(&self) -> bool {
        self.plan.has_initializers
    }

    /// Adds the module to `target` (see the crate docs for each mode).
    /// Lazy mode compiles the data now; eager mode compiles everything now;
    /// both define the functions in `target.main`. Code and data go under
    /// `tracker` (the bodies dylib's default when `None`); stubs and
    /// re-exports under the main dylib's default tracker.
    pub fn add(
        &self,
        target: &IrTarget<'_>,
        mode: LoadMode,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), IrError> {
        match mode {
            LoadMode::Lazy => self.add_lazy(target, tracker),
            LoadMode::Eager => self.add_eager(target, tracker),
        }
    }

    fn add_lazy(
        &self,
        target: &IrTarget<'_>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), IrError> {
        if self.plan.has_data {
            let data = GlobalsUnit {
                name: format!("{}:globals", self.name),
                bitcode: self.plan.bitcode.clone(),
            };
            self.add_object(target, Box::new(data), tracker)?;
        }
        let es = target.main.session();
        if !self.plan.functions.is_empty() {
            let split = Arc::new(SplitModule::new(
                &self.name,
                self.plan.clone(),
                target,
                self.speculation,
            ));
            let unit = FunctionsUnit {
                functions: (0..split.plan.functions.len()).collect(),
                split,
            };
            target.bodies.define(Box::new(unit), tracker)?;
        }
        // Functions that may run during teardown, when nothing can be
        // compiled any more, are plain re-exports: compiled as soon as code
        // referring to them is linked. The rest are lazy stubs.
        let mut lazy = SymbolAliasMap::new();
        let mut direct = SymbolAliasMap::new();
        let at_exit = |name: &str| {
            self.plan
                .functions
                .iter()
                .any(|f| f.runs_at_exit && f.name == name)
        };
        let entries = self
            .plan
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.name.as_str()))
            .chain(
                self.plan
                    .function_aliases
                    .iter()
                    .map(|(alias, f)| (alias.as_str(), f.as_str())),
            );
        for (name, function) in entries {
            let entry = SymbolAliasMapEntry {
                aliasee: es.intern(&body_symbol(function)),
                flags: CALLABLE,
            };
            let map = if at_exit(function) {
                &mut direct
            } else {
                &mut lazy
            };
            map.insert(es.intern(name), entry);
        }
        if !lazy.is_empty() {
            target
                .main
                .define(target.lazy.lazy_reexports(target.bodies, lazy), None)?;
        }
        if !direct.is_empty() {
            target.main.define(reexports(target.bodies, direct), None)?;
        }
        Ok(())
    }

    fn add_eager(
        &self,
        target: &IrTarget<'_>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), IrError> {
        // The source, unless the plan had to rewrite it (thread-locals).
        let bytes = self
            .plan
            .whole
            .clone()
            .unwrap_or_else(|| self.bytes.clone());
        let whole = IrBufferModule::new(self.name.clone(), Vec::new(), bytes);
        self.add_object(target, whole, tracker)?;
        let es = target.main.session();
        let aliases: SymbolAliasMap = self
            .plan
            .functions
            .iter()
            .filter(|f| f.exported)
            .map(|f| {
                let name = es.intern(&f.source_name);
                let entry = SymbolAliasMapEntry {
                    aliasee: name.clone(),
                    flags: CALLABLE,
                };
                (name, entry)
            })
            .collect();
        if !aliases.is_empty() {
            target
                .main
                .define(reexports(target.bodies, aliases), None)?;
        }
        Ok(())
    }

    /// Compiles `module` now and adds its object to the bodies dylib (so
    /// the object-linking layer runs its initializers).
    pub(crate) fn add_object(
        &self,
        target: &IrTarget<'_>,
        module: Box<dyn LlvmModule>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), IrError> {
        let name = module.name().to_owned();
        let compiled = target.layer.compile(module)?;
        let object = ObjectFile::parse(&name, compiled.bytes).map_err(|e| {
            orc_core::Error::other(format!("llvm produced an object the linker rejects: {e}"))
        })?;
        target
            .layer
            .object_layer()
            .add(target.bodies, object, tracker)?;
        Ok(())
    }
}

/// The data of a split module.
pub(crate) struct GlobalsUnit {
    pub(crate) name: String,
    pub(crate) bitcode: Arc<[u8]>,
}

impl LlvmModule for GlobalsUnit {
    fn name(&self) -> &str {
        &self.name
    }
    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        // Compiled directly (`LlvmLayer::compile`): the object says.
        Vec::new()
    }
    fn build<'ctx>(self: Box<Self>, context: &'ctx Context) -> Result<Module<'ctx>, String> {
        partition::globals_unit(context, &self.name, &self.bitcode)
    }
}

/// What the function units of one lazily added module share.
pub(crate) struct SplitModule {
    /// The module's name (the file).
    pub(crate) name: String,
    pub(crate) plan: PartitionPlan,
    pub(crate) layer: Arc<LlvmLayer>,
    pub(crate) limits: SpeculationLimits,
    /// The body symbol of each planned function, by index.
    pub(crate) bodies: Vec<SymbolName>,
    /// The global variables each planned function's unit defines
    /// ([`partition::PlannedFunction::data`]), by index.
    pub(crate) data: Vec<Vec<SymbolName>>,
    /// The index of the unit defining each body symbol and data symbol.
    pub(crate) index: HashMap<SymbolName, usize>,
}

/// The function bodies of a split module that are not compiled yet, as one
/// unit: the CompileOnDemandLayer's partitioning unit. When some are looked
/// up it compiles them together with the small functions their code refers
/// to that are not compiled yet ([`PartitionPlan::speculate`], within the
/// default [`SpeculationLimits`]), as one object, and hands every other body back
/// to the dylib as a new unit of the same kind. So a function is compiled
/// on the first call of a function whose code can reach it, and never when
/// nothing compiled can.
///
/// If that batch fails to compile, the speculative part is handed back and
/// the requested functions are compiled alone: a callee that cannot be
/// compiled fails only when (and if) it is called itself.
pub(crate) struct FunctionsUnit {
    pub(crate) split: Arc<SplitModule>,
    /// The planned functions (indices) whose bodies this unit defines.
    pub(crate) functions: Vec<usize>,
}

impl FunctionsUnit {
    fn symbols_of(split: &SplitModule, functions: &[usize]) -> SymbolFlagsMap {
        let mut symbols: SymbolFlagsMap = functions
            .iter()
            .map(|&i| (split.bodies[i].clone(), CALLABLE))
            .collect();
        for &i in functions {
            for g in &split.data[i] {
                symbols.insert(g.clone(), SymbolFlags::EXPORTED);
            }
        }
        symbols
    }

    /// A unit for `functions` of the same module.
    fn rest(&self, functions: Vec<usize>) -> Box<FunctionsUnit> {
        Box::new(FunctionsUnit {
            split: self.split.clone(),
            functions,
        })
    }
}

impl MaterializationUnit for FunctionsUnit {
    fn name(&self) -> &str {
        &self.split.name
    }

    fn symbols(&self) -> SymbolFlagsMap {
        Self::symbols_of(&self.split, &self.functions)
    }

    fn materialize(self: Box<Self>, r: MaterializationResponsibility) {
        let split = &self.split;
        let mut requested: Vec<usize> = r
            .requested_symbols()
            .iter()
            .filter_map(|s| split.index.get(s).copied())
            .filter(|i| self.functions.contains(i))
            .collect();
        if requested.is_empty() {
            // Materialized with no lookup waiting: everything was wanted.
            requested.clone_from(&self.functions);
        }
        let owned: HashSet<usize> = self.functions.iter().copied().collect();
        // The requested units with their partners come first in a batch.
        let required = split
            .plan
            .speculate(&requested, |i| owned.contains(&i), SpeculationLimits::NONE)
            .len();
        let batch = split
            .plan
            .speculate(&requested, |i| owned.contains(&i), split.limits);
        let in_batch: HashSet<usize> = batch.iter().copied().collect();
        let rest: Vec<usize> = self
            .functions
            .iter()
            .copied()
            .filter(|i| !in_batch.contains(i))
            .collect();
        if !rest.is_empty() {
            if let Err(e) = r.replace(self.rest(rest)) {
                return r.fail(e);
            }
        }
        let compiled = split.layer.compile(split.batch_module(&batch));
        match compiled {
            Ok(compiled) => {
                let name = split.batch_name(&batch);
                split
                    .layer
                    .object_layer()
                    .emit_bytes(r, &name, compiled.bytes);
            }
            Err(_) if batch.len() > required => {
                // Maybe a speculative callee failed: compile what was asked
                // for alone, and the callees when they are called.
                let extras = batch[required..].to_vec();
                if let Err(e) = r.replace(self.rest(extras)) {
                    return r.fail(e);
                }
                split.layer.emit(r, split.batch_module(&batch[..required]));
            }
            Err(e) => r.fail(orc_core::Error::other(e.to_string())),
        }
    }

    fn discard(&mut self, _dylib: &JitDylib, name: &SymbolName) {
        // Body symbols are strong definitions; nothing to lose to.
        if self.split.bodies.contains(name) {
            if let Some(i) = self.split.index.get(name) {
                self.functions.retain(|f| f != i);
            }
        }
    }
}

impl SplitModule {
    /// The split of `plan`'s functions into units for `target`: each
    /// planned function's body symbol and the data its unit defines,
    /// interned, and the unit of each such symbol.
    pub(crate) fn new(
        name: &str,
        plan: PartitionPlan,
        target: &IrTarget<'_>,
        limits: SpeculationLimits,
    ) -> SplitModule {
        let es = target.main.session();
        let bodies: Vec<SymbolName> = plan
            .functions
            .iter()
            .map(|f| es.intern(&body_symbol(&f.name)))
            .collect();
        let data: Vec<Vec<SymbolName>> = plan
            .functions
            .iter()
            .map(|f| f.data.iter().map(|g| es.intern(g)).collect())
            .collect();
        let index = bodies
            .iter()
            .cloned()
            .zip(0..)
            .chain(
                data.iter()
                    .enumerate()
                    .flat_map(|(i, names)| names.iter().map(move |n| (n.clone(), i))),
            )
            .collect();
        SplitModule {
            name: name.to_owned(),
            plan,
            layer: target.layer.clone(),
            limits,
            bodies,
            data,
            index,
        }
    }

    /// `NAME:FUNCTION`, or `NAME:FUNCTION+N` for a batch of N more.
    pub(crate) fn batch_name(&self, batch: &[usize]) -> String {
        let first = batch
            .first()
            .map_or("", |&i| self.plan.functions[i].name.as_str());
        match batch.len() {
            0 | 1 => format!("{}:{first}", self.name),
            n => format!("{}:{first}+{}", self.name, n - 1),
        }
    }

    pub(crate) fn batch_module(&self, batch: &[usize]) -> Box<dyn LlvmModule> {
        Box::new(BatchModule {
            name: self.batch_name(batch),
            bitcode: self.plan.bitcode.clone(),
            functions: batch
                .iter()
                .map(|&i| {
                    let f = &self.plan.functions[i];
                    (f.name.clone(), f.members.clone(), body_symbol(&f.name))
                })
                .collect(),
        })
    }
}

/// Functions of a split module compiled together, each defined as its body
/// symbol, with the local functions only it calls.
pub(crate) struct BatchModule {
    pub(crate) name: String,
    pub(crate) bitcode: Arc<[u8]>,
    /// (function, members, body symbol) for each.
    pub(crate) functions: Vec<(String, Vec<String>, String)>,
}

impl LlvmModule for BatchModule {
    fn name(&self) -> &str {
        &self.name
    }
    fn symbols(&self) -> Vec<(String, SymbolFlags)> {
        self.functions
            .iter()
            .map(|(_, _, body)| (body.clone(), CALLABLE))
            .collect()
    }
    fn build<'ctx>(self: Box<Self>, context: &'ctx Context) -> Result<Module<'ctx>, String> {
        let units: Vec<UnitFunction<'_>> = self
            .functions
            .iter()
            .map(|(function, members, body)| UnitFunction {
                function,
                members,
                body,
            })
            .collect();
        partition::functions_unit(context, &self.name, &self.bitcode, &units)
    }
}
