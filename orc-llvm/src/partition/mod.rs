//! Splitting an LLVM module the way LLVM's CompileOnDemandLayer does: the
//! data (global variables, their initializers, `llvm.global_ctors` /
//! `llvm.global_dtors`, aliases of variables) in one unit, and each function
//! definition in a unit of its own whose other globals are declarations.
//!
//! Units are coarser than one per function where laziness cannot gain
//! anything: a local function whose every use is a direct call (its address
//! is never taken) and whose callers all belong to one unit joins that unit
//! as a member (transitively: a helper called only by a member joins the
//! same unit). Members get no unit, no stub and no symbol of their own:
//! they are internal definitions of their unit, so the optimizer may inline
//! them. Local functions called from several units, exported functions and
//! any function whose address is taken keep their own unit.
//!
//! The split works on serialized IR. [`plan`] parses and verifies a module
//! once, gives every local (private or internal) and unnamed global a
//! unique external name so units can refer to each other's, turns
//! `linkonce` definitions into `weak` ones (so the optimizer of the data unit
//! cannot drop a definition another unit needs), and returns the prepared
//! bitcode with the module's interface. Each unit then reads that bitcode
//! in its compile thread's own context ([`function_unit`],
//! [`globals_unit`]) and deletes what it does not own. A function unit
//! reads it lazily: globals, constants and metadata, and only its own
//! function's body (the other bodies are deleted unread), which is what
//! keeps a lazy run's per-function cost low. Because every module
//! edited here is parsed inside these functions, no caller can hold a handle
//! to a global that gets deleted: the API is safe.
//!
//! The plan also records what each unit's code refers to: its size in
//! instructions, the units it calls or takes the address of, and the
//! globals (function-pointer tables, aliases) through which it reaches
//! more. [`PartitionPlan::speculate`] uses that graph to pick, when some
//! units are needed, the small units their code can reach, so a loader can
//! compile them in one module ([`functions_unit`]) and pay one unit's fixed
//! cost instead of many: the "partition" function of the
//! CompileOnDemandLayer.
//!
//! Declarations made here are fresh globals without `dso_local`, so code
//! reaches other units' symbols through the GOT or a PLT stub and the JIT
//! linker may place units anywhere.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use inkwell::context::Context;
use inkwell::llvm_sys::core::*;
use inkwell::llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};
use inkwell::llvm_sys::{LLVMLinkage, LLVMVisibility};
use inkwell::module::Module;

use crate::diagnostics::DiagnosticSink;

mod blocks;
mod graph;
mod ifunc;
mod ir;
mod tls;

use graph::*;
use ir::*;

/// Why a module cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// The IR does not parse: LLVM's diagnostic (`NAME:LINE:COL: error: ...`
    /// for text, `NAME: error: ...` for bitcode).
    #[error("{0}")]
    Parse(String),
    /// The IR parses but the verifier rejects it.
    #[error("{0}")]
    Verify(String),
    /// The module uses something the JIT cannot run (e.g. the address of a
    /// thread-local variable in a constant).
    #[error("{0}")]
    Unsupported(String),
}

/// A function definition of a prepared module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFunction {
    /// Its symbol name in the prepared module (a promoted name for a local
    /// function).
    pub name: String,
    /// Its name in the source module (the same unless promoted).
    pub source_name: String,
    /// Whether the source module exported it (external linkage, default
    /// visibility).
    pub exported: bool,
    /// Whether it can run while the JIT tears the program down or while a
    /// thread exits: it is in `llvm.global_dtors`, its address is passed
    /// directly to `atexit`, `__cxa_atexit`, `on_exit` or
    /// `__cxa_thread_atexit`, or such a function's code refers to it
    /// (transitively). Teardown cannot compile code (nor can an exiting
    /// thread, whose JIT state is being destroyed), so a lazy loader should
    /// compile these when they are first referenced rather than on first
    /// call.
    pub runs_at_exit: bool,
    /// The local functions compiled in this function's unit (prepared
    /// names, module order): called only from this unit, they have no unit,
    /// stub or symbol of their own.
    pub members: Vec<String>,
    /// The unit's size: instructions of the function and its members.
    pub size: usize,
    /// The units whose functions this unit's code refers to (calls or takes
    /// the address of), as indices into [`PartitionPlan::functions`],
    /// ascending, without itself.
    pub callees: Vec<usize>,
    /// The global variables and aliases this unit's code refers to that
    /// lead to functions, as indices into [`PartitionPlan::globals`],
    /// ascending.
    pub globals: Vec<usize>,
    /// The units whose code refers to this one directly (the reverse of
    /// `callees`), ascending.
    pub callers: Vec<usize>,
    /// The units that must be compiled in the same module as this one
    /// (indices, ascending, without itself): their code or data refers to
    /// each other's blocks (`blockaddress`). A loader compiles a unit only
    /// together with all its partners ([`PartitionPlan::speculate`] adds
    /// them).
    pub partners: Vec<usize>,
    /// The global variables (prepared names) this unit's module defines
    /// rather than the data unit: those holding the address of one of its
    /// functions' blocks (computed-goto tables). A lookup of one of them
    /// must compile this unit; every other unit declares them. In the
    /// prepared bitcode their block addresses are encoded (so that reading
    /// another unit does not read this unit's function; see `blocks.rs`):
    /// [`functions_unit`] decodes them.
    pub data: Vec<String>,
}

/// A global variable or alias through which code can reach functions: a
/// table of function pointers, an alias of a function, a structure holding
/// one of those...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedGlobal {
    /// Its name in the prepared module.
    pub name: String,
    /// The units whose functions its initializer (or aliasee) refers to,
    /// as indices into [`PartitionPlan::functions`], ascending.
    pub functions: Vec<usize>,
    /// The other globals of [`PartitionPlan::globals`] it refers to that
    /// lead to functions, ascending.
    pub globals: Vec<usize>,
}

/// A module prepared for splitting, and what it defines.
#[derive(Debug, Clone)]
pub struct PartitionPlan {
    /// The prepared module as bitcode, shared by all its units.
    pub bitcode: Arc<[u8]>,
    /// The function definitions that get a unit of their own
    /// (`available_externally` ones excluded: they are declarations in every
    /// unit; so are the [`PlannedFunction::members`] of another unit), in
    /// module order.
    pub functions: Vec<PlannedFunction>,
    /// The globals through which code can reach functions (see
    /// [`PlannedGlobal`]).
    pub globals: Vec<PlannedGlobal>,
    /// Aliases of functions: (alias, aliased function), both prepared
    /// names. They become extra entry points to the function, not data.
    pub function_aliases: Vec<(String, String)>,
    /// Whether the module has data for a [`globals_unit`]: global variable
    /// definitions (including `llvm.global_ctors`/`llvm.global_dtors`) or
    /// aliases of them.
    pub has_data: bool,
    /// Whether the module has static constructors or destructors.
    pub has_initializers: bool,
    /// The module's ifuncs: each is now a function of the same name that
    /// calls its resolver on first use and tail-calls the answer (the JIT
    /// linker has no `STT_GNU_IFUNC`; see `ifunc.rs`), planned like any
    /// other function.
    pub ifuncs: Vec<String>,
    /// The module to compile whole (eager loading) when it differs from the
    /// source: the source with its ifuncs lowered and its thread-local
    /// variables rewritten to emulated TLS (the JIT linker has no TLS; see
    /// `tls.rs`), as bitcode. `None`: compile the source as it is.
    pub whole: Option<Arc<[u8]>>,
}

/// How much [`PartitionPlan::speculate`] may add to the units asked for,
/// in instructions.
///
/// A unit has a fixed cost (reading the module, setting up code generation,
/// linking an object: about as much as generating code for 50
/// instructions), which a callee compiled along with its caller does not
/// pay; a callee compiled that way and never called wastes its own
/// compile time. So only small callees are worth it, and a total keeps the
/// first call's delay bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeculationLimits {
    /// The largest unit added (default 256).
    pub unit_size: usize,
    /// The most added in all (default 2048).
    pub total_size: usize,
}

impl SpeculationLimits {
    /// No speculation: each unit is compiled when asked for.
    pub const NONE: SpeculationLimits = SpeculationLimits {
        unit_size: 0,
        total_size: 0,
    };
}

impl Default for SpeculationLimits {
    fn default() -> Self {
        SpeculationLimits {
            unit_size: 256,
            total_size: 2048,
        }
    }
}

impl PartitionPlan {
    /// The units to compile together when the units `requested` (indices
    /// into [`Self::functions`]) are needed: LLVM's CompileOnDemandLayer
    /// "partition" idea. The requested units come first; then, breadth
    /// first, every unit that `available` says is not compiled yet, within
    /// `limits`, that is reachable from
    /// - the batch's own code (its [`PlannedFunction::callees`] and the
    ///   functions reachable through its [`PlannedFunction::globals`]),
    /// - the code of the requested units' callers that are compiled
    ///   already (not `available`): code calling one of its callees now
    ///   tends to call the others it refers to next (a long `main` calling
    ///   many small functions in turn).
    ///
    /// Either way a unit is only added because compiled code (or code in
    /// the batch) refers to it, so a function that nothing compiled can
    /// reach is never compiled early. A unit always comes with its
    /// [`PlannedFunction::partners`] (the requested ones' partners follow
    /// them, before any speculative unit).
    pub fn speculate(
        &self,
        requested: &[usize],
        available: impl Fn(usize) -> bool,
        limits: SpeculationLimits,
    ) -> Vec<usize> {
        enum Node {
            Unit(usize),
            Global(usize),
        }
        let mut batch: Vec<usize> = Vec::new();
        let mut in_batch = HashSet::new();
        let mut queue = std::collections::VecDeque::new();
        for &i in requested {
            if i >= self.functions.len() {
                continue;
            }
            for j in std::iter::once(i).chain(self.functions[i].partners.iter().copied()) {
                if in_batch.insert(j) {
                    batch.push(j);
                    queue.push_back(Node::Unit(j));
                }
            }
        }
        for &i in &batch {
            let compiled_callers = self.functions[i].callers.iter().filter(|&&c| !available(c));
            queue.extend(compiled_callers.map(|&c| Node::Unit(c)));
        }
        let (mut explored_units, mut explored_globals) = (HashSet::new(), HashSet::new());
        let mut left = limits.total_size;
        while let Some(node) = queue.pop_front() {
            let (units, globals) = match node {
                Node::Unit(u) if explored_units.insert(u) => {
                    (&self.functions[u].callees, &self.functions[u].globals)
                }
                Node::Global(g) if explored_globals.insert(g) => {
                    (&self.globals[g].functions, &self.globals[g].globals)
                }
                _ => continue,
            };
            for &u in units {
                if in_batch.contains(&u) || !available(u) {
                    continue;
                }
                let group = || std::iter::once(u).chain(self.functions[u].partners.iter().copied());
                let size: usize = group().map(|v| self.functions[v].size).sum();
                if size <= limits.unit_size && size <= left {
                    left -= size;
                    for v in group() {
                        if in_batch.insert(v) {
                            batch.push(v);
                            queue.push_back(Node::Unit(v));
                        }
                    }
                }
            }
            queue.extend(globals.iter().map(|&g| Node::Global(g)));
        }
        batch
    }
}

/// Parses `bytes` (IR text or bitcode; `name` is the buffer name in
/// diagnostics) and verifies it. For callers that only want the
/// diagnostics.
pub fn check(name: &str, bytes: &[u8]) -> Result<(), PartitionError> {
    let sink = DiagnosticSink::new();
    let context = Context::create();
    sink.attach(&context);
    parse_verified(&context, &sink, name, bytes).map(drop)
}

/// Parses, verifies and prepares a module for splitting; `prefix` makes the
/// promoted names unique (use a different one per loaded module).
pub fn plan(name: &str, bytes: &[u8], prefix: &str) -> Result<PartitionPlan, PartitionError> {
    let sink = DiagnosticSink::new();
    let context = Context::create();
    sink.attach(&context);
    let module = parse_verified(&context, &sink, name, bytes)?;
    let m = module.as_mut_ptr();
    let unsupported = |e: String| PartitionError::Unsupported(format!("{name}: {e}"));
    let ifunc_names = ifunc::lower_ifuncs(m).map_err(unsupported)?;
    let emulated_tls = tls::emulate_tls(m).map_err(unsupported)?;
    let whole = if emulated_tls || !ifunc_names.is_empty() {
        module
            .verify()
            .map_err(|e| PartitionError::Verify(e.to_string().trim_end().to_owned()))?;
        Some(Arc::from(module.write_bitcode_to_memory().as_slice()))
    } else {
        None
    };
    let at_exit = exit_handlers(m);
    let mut functions = Vec::new();
    let mut n_promoted = 0usize;
    let mut promote = |v: LLVMValueRef| -> (String, String, bool) {
        let source_name = name_of(v);
        let linkage = linkage_of(v);
        let local = matches!(
            linkage,
            LLVMLinkage::LLVMPrivateLinkage | LLVMLinkage::LLVMInternalLinkage
        );
        // SAFETY: `v` is a live global of `module`.
        let hidden = unsafe { LLVMGetVisibility(v) } != LLVMVisibility::LLVMDefaultVisibility;
        let exported = !local && !hidden && !source_name.is_empty();
        let mut new_name = source_name.clone();
        if local || source_name.is_empty() {
            n_promoted += 1;
            new_name = format!(
                "__orc_local.{prefix}.{n_promoted}.{}",
                source_name.trim_start_matches('\u{1}')
            );
            set_name(v, &new_name);
            // SAFETY: `v` is a live global; external linkage with default
            // visibility is valid for any definition.
            unsafe {
                LLVMSetLinkage(v, LLVMLinkage::LLVMExternalLinkage);
                LLVMSetVisibility(v, LLVMVisibility::LLVMDefaultVisibility);
            }
        }
        let weak = match linkage {
            LLVMLinkage::LLVMLinkOnceAnyLinkage => Some(LLVMLinkage::LLVMWeakAnyLinkage),
            LLVMLinkage::LLVMLinkOnceODRLinkage => Some(LLVMLinkage::LLVMWeakODRLinkage),
            _ => None,
        };
        if let Some(weak) = weak {
            // SAFETY: `v` is a live definition; weak keeps it alive.
            unsafe { LLVMSetLinkage(v, weak) };
        }
        (new_name, source_name, exported)
    };
    let owners = unit_owners(m);
    let mut unit_index = HashMap::new();
    let mut members = Vec::new();
    for f in function_list(m) {
        if is_declaration(f) || linkage_of(f) == LLVMLinkage::LLVMAvailableExternallyLinkage {
            continue;
        }
        let (name, source_name, exported) = promote(f);
        match owners.get(&f) {
            Some(&root) if root != f => members.push((root, name)),
            _ => {
                unit_index.insert(f, functions.len());
                functions.push(PlannedFunction {
                    name,
                    source_name,
                    exported,
                    runs_at_exit: at_exit.contains(&f),
                    members: Vec::new(),
                    size: 0,
                    callees: Vec::new(),
                    globals: Vec::new(),
                    callers: Vec::new(),
                    partners: Vec::new(),
                    data: Vec::new(),
                });
            }
        }
    }
    for (root, name) in members {
        let i = unit_index[&root];
        functions[i].members.push(name);
    }
    let mut has_data = false;
    let mut has_initializers = false;
    for g in global_list(m) {
        if is_declaration(g) || linkage_of(g) == LLVMLinkage::LLVMAvailableExternallyLinkage {
            continue;
        }
        has_data = true;
        if linkage_of(g) == LLVMLinkage::LLVMAppendingLinkage {
            let n = name_of(g);
            has_initializers |= n == "llvm.global_ctors" || n == "llvm.global_dtors";
            continue;
        }
        promote(g);
    }
    let mut function_aliases = Vec::new();
    for a in alias_list(m) {
        let (alias, _, _) = promote(a);
        match aliased_function(a) {
            Some(f) => function_aliases.push((alias, name_of(f))),
            None => has_data = true,
        }
    }
    let globals = references(m, &owners, &unit_index, &mut functions);
    // What an exit handler calls runs at exit too.
    let mut at_exit_units: Vec<usize> = (0..functions.len())
        .filter(|&i| functions[i].runs_at_exit)
        .collect();
    while let Some(i) = at_exit_units.pop() {
        for c in functions[i].callees.clone() {
            if !functions[c].runs_at_exit {
                functions[c].runs_at_exit = true;
                at_exit_units.push(c);
            }
        }
    }
    let (partners, data) = block_address_groups(m, &owners, &unit_index, functions.len());
    for ((f, partners), data) in functions.iter_mut().zip(partners).zip(data) {
        f.partners = partners;
        f.data = data;
    }
    let tables: Vec<LLVMValueRef> = functions
        .iter()
        .flat_map(|f| &f.data)
        .filter_map(|name| named_global(m, name))
        .collect();
    blocks::encode_tables(m, &tables);
    let buffer = module.write_bitcode_to_memory();
    Ok(PartitionPlan {
        bitcode: Arc::from(buffer.as_slice()),
        functions,
        globals,
        function_aliases,
        has_data,
        has_initializers,
        ifuncs: ifunc_names,
        whole,
    })
}

/// One function of a unit being cut out of a prepared module (see
/// [`functions_unit`]).
#[derive(Debug, Clone, Copy)]
pub struct UnitFunction<'a> {
    /// The function's name in the prepared module
    /// ([`PlannedFunction::name`]).
    pub function: &'a str,
    /// Its unit's members ([`PlannedFunction::members`]).
    pub members: &'a [String],
    /// The name its body gets.
    pub body: &'a str,
}

/// Parses a prepared module (from [`plan`]) into `context` and keeps only
/// `function`'s body, renamed `body_name` with external linkage and default
/// visibility, and the bodies of its unit's `members` (its
/// [`PlannedFunction::members`]) as internal functions. Every other
/// definition becomes a declaration (so does `function` itself under its
/// own name: recursive calls and address uses go through whatever that name
/// resolves to, e.g. a lazy stub), and the `llvm.global_ctors`-style tables
/// are dropped.
pub fn function_unit<'ctx>(
    context: &'ctx Context,
    name: &str,
    bitcode: &[u8],
    function: &str,
    members: &[String],
    body_name: &str,
) -> Result<Module<'ctx>, String> {
    let unit = UnitFunction {
        function,
        members,
        body: body_name,
    };
    functions_unit(context, name, bitcode, &[unit])
}

/// [`function_unit`] for several units at once (one module, one object):
/// each function keeps its body under its `body` name, with its members.
/// Calls between them still go through their own names.
pub fn functions_unit<'ctx>(
    context: &'ctx Context,
    name: &str,
    bitcode: &[u8],
    functions: &[UnitFunction<'_>],
) -> Result<Module<'ctx>, String> {
    if functions.is_empty() {
        return Err(format!("unit '{name}' has no function"));
    }
    let module = parse_lazily(context, name, bitcode)?;
    let m = module.as_mut_ptr();
    let kept = kept_functions(m, name, functions)?;
    for &f in kept.iter().flatten() {
        materialize(m, f);
    }
    // SAFETY: `module` was parsed just above; no handle to any of its
    // globals exists outside this call. The other function bodies are
    // still unread: they are deleted unread, which is what makes this
    // cheap (only the unit's own bodies are ever parsed).
    unsafe { keep_only_functions(m, &kept, functions)? };
    Ok(module)
}

/// For each of `functions`, its definition in `m` (first) and its members'.
fn kept_functions(
    m: LLVMModuleRef,
    name: &str,
    functions: &[UnitFunction<'_>],
) -> Result<Vec<Vec<LLVMValueRef>>, String> {
    functions
        .iter()
        .map(|unit| {
            std::iter::once(unit.function)
                .chain(unit.members.iter().map(String::as_str))
                .map(|wanted| {
                    named_function(m, wanted)
                        .filter(|&f| !is_declaration(f))
                        .ok_or_else(|| {
                            format!("module '{name}' does not define function '{wanted}'")
                        })
                })
                .collect()
        })
        .collect()
}

/// Parses a prepared module (from [`plan`]) into `context` and keeps only
/// its data: global variables with their initializers (including the
/// constructor and destructor tables) and aliases of variables. Functions
/// and their aliases become declarations, and so do the variables holding
/// block addresses (see [`PlannedFunction::data`]).
pub fn globals_unit<'ctx>(
    context: &'ctx Context,
    name: &str,
    bitcode: &[u8],
) -> Result<Module<'ctx>, String> {
    let module = parse(context, name, bitcode)?;
    let m = module.as_mut_ptr();
    let mut dead = None;
    // Jump tables of blocks belong to their function's unit.
    let mut tables = blocks::encoded_tables(m);
    for f in function_list(m) {
        if !is_declaration(f) {
            tables.extend(graph::block_address_holders(f).0);
        }
    }
    for g in tables {
        if !is_declaration(g) {
            replace_with_declaration(m, g, &mut dead)?;
        }
    }
    for a in alias_list(m) {
        if aliased_function(a).is_some() {
            replace_with_declaration(m, a, &mut dead)?;
        }
    }
    for f in function_list(m) {
        if !is_declaration(f) {
            drop_definition(m, f, &mut dead)?;
        }
    }
    for g in global_list(m) {
        if !is_declaration(g) && linkage_of(g) == LLVMLinkage::LLVMAvailableExternallyLinkage {
            drop_definition(m, g, &mut dead)?;
        }
    }
    Ok(module)
}
