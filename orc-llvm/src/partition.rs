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
use std::ffi::{c_char, c_uint, CString};
use std::sync::Arc;

use inkwell::context::Context;
use inkwell::llvm_sys::bit_reader::LLVMGetBitcodeModuleInContext2;
use inkwell::llvm_sys::comdat::LLVMSetComdat;
use inkwell::llvm_sys::core::*;
use inkwell::llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};
use inkwell::llvm_sys::{LLVMAttributeFunctionIndex, LLVMLinkage, LLVMTypeKind, LLVMVisibility};
use inkwell::memory_buffer::MemoryBuffer;
use inkwell::module::Module;

use crate::diagnostics::DiagnosticSink;

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
    /// Whether it can run while the JIT tears the program down: it is in
    /// `llvm.global_dtors` or its address is passed directly to `atexit`,
    /// `__cxa_atexit` or `on_exit`. Teardown cannot compile code, so a
    /// lazy loader should compile these when they are first referenced
    /// rather than on first call.
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
    /// The module's ifuncs: the split does not handle them (compile such a
    /// module whole).
    pub ifuncs: Vec<String>,
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
    /// reach is never compiled early.
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
            if i < self.functions.len() && in_batch.insert(i) {
                batch.push(i);
                queue.push_back(Node::Unit(i));
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
                let size = self.functions[u].size;
                let fits = size <= limits.unit_size && size <= left;
                if fits && !in_batch.contains(&u) && available(u) {
                    left -= size;
                    in_batch.insert(u);
                    batch.push(u);
                    queue.push_back(Node::Unit(u));
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
    let ifunc_names = ifuncs(m).into_iter().map(name_of).collect();
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
    let buffer = module.write_bitcode_to_memory();
    Ok(PartitionPlan {
        bitcode: Arc::from(buffer.as_slice()),
        functions,
        globals,
        function_aliases,
        has_data,
        has_initializers,
        ifuncs: ifunc_names,
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

/// The function called `name` in `m`, if any.
fn named_function(m: LLVMModuleRef, name: &str) -> Option<LLVMValueRef> {
    // A name with a NUL byte cannot be looked up; no function has one.
    let cname = CString::new(name).ok()?;
    // SAFETY: `m` is a live module; LLVM only reads the NUL-terminated
    // name to look it up.
    let f = unsafe { LLVMGetNamedFunction(m, cname.as_ptr()) };
    (!f.is_null()).then_some(f)
}

/// Removes the definition `old` from `m`: deleted at once when nothing uses
/// it, else replaced by a declaration (see [`replace_with_declaration`]).
fn drop_definition(
    m: LLVMModuleRef,
    old: LLVMValueRef,
    dead: &mut Option<LLVMValueRef>,
) -> Result<(), String> {
    // SAFETY: `old` is a live global of `m`; without uses it can be
    // erased with the API matching its kind, and no handle to it survives
    // (the module was parsed by our caller).
    unsafe {
        if LLVMGetFirstUse(old).is_null() {
            if !LLVMIsAFunction(old).is_null() {
                LLVMDeleteFunction(old);
                return Ok(());
            }
            if !LLVMIsAGlobalVariable(old).is_null() {
                LLVMDeleteGlobal(old);
                return Ok(());
            }
        }
    }
    replace_with_declaration(m, old, dead)
}

/// Which unit each function definition of `m` belongs to, as a map from
/// definition to the function whose unit holds it (itself for a function
/// with a unit of its own); definitions without an entry
/// (`available_externally` ones) belong to no unit.
///
/// A function is a root of the call graph when it may be entered from
/// outside the module's direct calls: it is not local, its address is
/// taken, or it is called from a function that is in no unit. A local
/// function joins the unit of the root that dominates it in the call graph
/// (every chain of direct calls reaching it passes through that root; it
/// then has only callers in that unit). A local function that no single
/// root dominates (callers in several units) gets its own unit, which the
/// local functions it dominates join in turn.
fn unit_owners(m: LLVMModuleRef) -> HashMap<LLVMValueRef, LLVMValueRef> {
    let defs: Vec<LLVMValueRef> = function_list(m)
        .into_iter()
        .filter(|&f| {
            !is_declaration(f) && linkage_of(f) != LLVMLinkage::LLVMAvailableExternallyLinkage
        })
        .collect();
    // Node 0 is the virtual entry, node `i + 1` is `defs[i]`.
    let index: HashMap<LLVMValueRef, usize> =
        defs.iter().enumerate().map(|(i, &f)| (f, i + 1)).collect();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); defs.len() + 1];
    for (i, &f) in defs.iter().enumerate() {
        let local = matches!(
            linkage_of(f),
            LLVMLinkage::LLVMPrivateLinkage | LLVMLinkage::LLVMInternalLinkage
        );
        let callers: Option<Vec<usize>> = direct_callers(f)
            .filter(|_| local)
            .and_then(|callers| callers.iter().map(|c| index.get(c).copied()).collect());
        preds[i + 1] = match callers {
            Some(callers) => callers.into_iter().filter(|&c| c != i + 1).collect(),
            None => vec![0],
        };
    }
    let idom = loop {
        let (idom, unreached) = dominators(&preds);
        if unreached.is_empty() {
            break idom;
        }
        // Functions no root reaches (dead local code, e.g. an unused
        // recursive pair) become roots.
        for n in unreached {
            preds[n] = vec![0];
        }
    };
    defs.iter()
        .enumerate()
        .map(|(i, &f)| {
            let mut n = i + 1;
            while idom[n] != 0 {
                n = idom[n];
            }
            (f, defs[n - 1])
        })
        .collect()
}

/// The immediate dominators of the graph given by `preds` (node 0 is the
/// entry), by Cooper, Harvey and Kennedy's iterative algorithm, and the
/// nodes the entry does not reach (their entry is meaningless).
fn dominators(preds: &[Vec<usize>]) -> (Vec<usize>, Vec<usize>) {
    let n = preds.len();
    let mut succs = vec![Vec::new(); n];
    for (node, ps) in preds.iter().enumerate() {
        for &p in ps {
            succs[p].push(node);
        }
    }
    // Postorder numbers by an iterative depth-first walk from the entry.
    let mut post = vec![usize::MAX; n];
    let mut order = Vec::with_capacity(n);
    let mut visited = vec![false; n];
    let mut stack = vec![(0usize, 0usize)];
    visited[0] = true;
    while let Some(&mut (node, ref mut next)) = stack.last_mut() {
        if let Some(&s) = succs[node].get(*next) {
            *next += 1;
            if !visited[s] {
                visited[s] = true;
                stack.push((s, 0));
            }
        } else {
            post[node] = order.len();
            order.push(node);
            stack.pop();
        }
    }
    let mut idom = vec![usize::MAX; n];
    idom[0] = 0;
    let mut changed = true;
    while changed {
        changed = false;
        for &node in order.iter().rev().filter(|&&node| node != 0) {
            let mut new = usize::MAX;
            for &p in &preds[node] {
                if idom[p] == usize::MAX {
                    continue;
                }
                new = if new == usize::MAX {
                    p
                } else {
                    let (mut a, mut b) = (p, new);
                    while a != b {
                        while post[a] < post[b] {
                            a = idom[a];
                        }
                        while post[b] < post[a] {
                            b = idom[b];
                        }
                    }
                    a
                };
            }
            if new != idom[node] {
                idom[node] = new;
                changed = true;
            }
        }
    }
    let unreached = (0..n).filter(|&node| !visited[node]).collect();
    (idom, unreached)
}

/// Fills in each unit's size, callees and globals (see [`PlannedFunction`])
/// and returns the globals that lead to functions. `owners` and
/// `unit_index` say which unit each function definition belongs to.
fn references(
    m: LLVMModuleRef,
    owners: &HashMap<LLVMValueRef, LLVMValueRef>,
    unit_index: &HashMap<LLVMValueRef, usize>,
    functions: &mut [PlannedFunction],
) -> Vec<PlannedGlobal> {
    let mut walk = ReferenceWalk {
        owners,
        unit_index,
        global_ids: HashMap::new(),
        global_values: Vec::new(),
    };
    let mut unit_refs = vec![Refs::default(); functions.len()];
    for f in function_list(m) {
        let Some(&unit) = owners.get(&f).and_then(|root| unit_index.get(root)) else {
            continue;
        };
        let refs = &mut unit_refs[unit];
        // SAFETY: walking the blocks and instructions of a live function;
        // operands are only inspected.
        unsafe {
            let mut block = LLVMGetFirstBasicBlock(f);
            while !block.is_null() {
                let mut inst = LLVMGetFirstInstruction(block);
                while !inst.is_null() {
                    functions[unit].size += 1;
                    let n = u32::try_from(LLVMGetNumOperands(inst)).unwrap_or(0);
                    for i in 0..n {
                        walk.visit(LLVMGetOperand(inst, i), refs);
                    }
                    inst = LLVMGetNextInstruction(inst);
                }
                block = LLVMGetNextBasicBlock(block);
            }
        }
        refs.constants.clear();
    }
    // The globals' own references; visiting may discover more globals.
    let mut global_refs: Vec<Refs> = Vec::new();
    while global_refs.len() < walk.global_values.len() {
        let g = walk.global_values[global_refs.len()];
        let mut refs = Refs::default();
        // SAFETY: `g` is a live global variable with an initializer or a
        // live alias (see `ReferenceWalk::visit`); both are only inspected.
        let target = unsafe {
            if LLVMIsAGlobalAlias(g).is_null() {
                LLVMGetInitializer(g)
            } else {
                LLVMAliasGetAliasee(g)
            }
        };
        walk.visit(target, &mut refs);
        refs.constants.clear();
        global_refs.push(refs);
    }
    // Keep only the globals that lead to some function.
    let n = global_refs.len();
    let mut leads = vec![false; n];
    let mut changed = true;
    while changed {
        changed = false;
        for g in 0..n {
            if !leads[g]
                && (!global_refs[g].units.is_empty()
                    || global_refs[g].globals.iter().any(|&h| leads[h]))
            {
                leads[g] = true;
                changed = true;
            }
        }
    }
    let mut new_id = vec![usize::MAX; n];
    let mut kept = 0;
    for g in 0..n {
        if leads[g] {
            new_id[g] = kept;
            kept += 1;
        }
    }
    let remap = |ids: &HashSet<usize>| -> Vec<usize> {
        let mut out: Vec<usize> = ids
            .iter()
            .filter(|&&g| leads[g])
            .map(|&g| new_id[g])
            .collect();
        out.sort_unstable();
        out
    };
    let sorted = |ids: &HashSet<usize>| -> Vec<usize> {
        let mut out: Vec<usize> = ids.iter().copied().collect();
        out.sort_unstable();
        out
    };
    for (unit, refs) in unit_refs.iter().enumerate() {
        let mut callees = sorted(&refs.units);
        callees.retain(|&c| c != unit);
        for &callee in &callees {
            functions[callee].callers.push(unit);
        }
        functions[unit].callees = callees;
        functions[unit].globals = remap(&refs.globals);
    }
    (0..n)
        .filter(|&g| leads[g])
        .map(|g| PlannedGlobal {
            name: name_of(walk.global_values[g]),
            functions: sorted(&global_refs[g].units),
            globals: remap(&global_refs[g].globals),
        })
        .collect()
}

/// What a piece of code or data refers to.
#[derive(Clone, Default)]
struct Refs {
    /// Units (indices).
    units: HashSet<usize>,
    /// Globals (ids of [`ReferenceWalk`]).
    globals: HashSet<usize>,
    /// Constants already visited (shared subexpressions are walked once).
    constants: HashSet<LLVMValueRef>,
}

/// Finds the functions and globals values refer to, numbering the globals
/// as it meets them.
struct ReferenceWalk<'a> {
    owners: &'a HashMap<LLVMValueRef, LLVMValueRef>,
    unit_index: &'a HashMap<LLVMValueRef, usize>,
    global_ids: HashMap<LLVMValueRef, usize>,
    global_values: Vec<LLVMValueRef>,
}

impl ReferenceWalk<'_> {
    /// Records what `v` refers to: a function's unit, a global variable
    /// with an initializer or an alias (walked later, once), or, for other
    /// constants, what their operands refer to.
    fn visit(&mut self, v: LLVMValueRef, refs: &mut Refs) {
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            if v.is_null() {
                continue;
            }
            // SAFETY: `v` is a live value of the module; the queries and
            // operand reads only inspect it.
            unsafe {
                if !LLVMIsAFunction(v).is_null() {
                    let unit = self.owners.get(&v).and_then(|r| self.unit_index.get(r));
                    refs.units.extend(unit.copied());
                } else if !LLVMIsAGlobalAlias(v).is_null()
                    || (!LLVMIsAGlobalVariable(v).is_null()
                        && !is_declaration(v)
                        && linkage_of(v) != LLVMLinkage::LLVMAppendingLinkage)
                {
                    let next = self.global_values.len();
                    let id = *self.global_ids.entry(v).or_insert(next);
                    if id == next {
                        self.global_values.push(v);
                    }
                    refs.globals.insert(id);
                } else if !LLVMIsAConstant(v).is_null()
                    && LLVMIsAGlobalValue(v).is_null()
                    && refs.constants.insert(v)
                {
                    let n = u32::try_from(LLVMGetNumOperands(v)).unwrap_or(0);
                    stack.extend((0..n).map(|i| LLVMGetOperand(v, i)));
                }
            }
        }
    }
}

/// The functions that call `f` directly, or `None` if some use of `f` is
/// not the callee of a call or invoke (its address is taken, it is in a
/// constant, an alias...).
fn direct_callers(f: LLVMValueRef) -> Option<HashSet<LLVMValueRef>> {
    let mut callers = HashSet::new();
    // SAFETY: `f` is a live function; its uses, their users and the users'
    // operands and parents are only inspected.
    unsafe {
        let mut u = LLVMGetFirstUse(f);
        while !u.is_null() {
            let user = LLVMGetUser(u);
            let is_call = !LLVMIsACallInst(user).is_null() || !LLVMIsAInvokeInst(user).is_null();
            if !is_call || LLVMGetCalledValue(user) != f {
                return None;
            }
            let n_args = LLVMGetNumArgOperands(user);
            if (0..n_args).any(|i| LLVMGetOperand(user, i) == f) {
                return None;
            }
            let block = LLVMGetInstructionParent(user);
            if block.is_null() {
                return None;
            }
            callers.insert(LLVMGetBasicBlockParent(block));
            u = LLVMGetNextUse(u);
        }
    }
    Some(callers)
}

/// Reads the bitcode `bytes` lazily into `context`: globals, constants
/// and metadata now, each function body only when materialized.
fn parse_lazily<'ctx>(
    context: &'ctx Context,
    name: &str,
    bytes: &[u8],
) -> Result<Module<'ctx>, String> {
    let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
    let mut raw: LLVMModuleRef = std::ptr::null_mut();
    // SAFETY: the buffer copies `bytes`; on success the module takes
    // ownership of it (lazy reading keeps it), on failure it is disposed of
    // here. `context.raw()` is a live context.
    let failed = unsafe {
        let buffer = LLVMCreateMemoryBufferWithMemoryRangeCopy(
            bytes.as_ptr().cast::<c_char>(),
            bytes.len(),
            cname.as_ptr(),
        );
        let failed = LLVMGetBitcodeModuleInContext2(context.raw(), buffer, &mut raw) != 0;
        if failed {
            LLVMDisposeMemoryBuffer(buffer);
        }
        failed
    };
    if failed || raw.is_null() {
        return Err(format!("{name}: error: cannot read the prepared bitcode"));
    }
    // SAFETY: `raw` is a new module of `context`, owned by nobody else.
    Ok(unsafe { Module::new(raw) })
}

/// Reads the body of `f`, a function of the lazily read module `m`
/// (a no-op for a body already read). LLVM's C API materializes a
/// function when a legacy function pass manager runs on it; this one has
/// no passes.
fn materialize(m: LLVMModuleRef, f: LLVMValueRef) {
    // SAFETY: `m` is a live module and `f` one of its functions; the pass
    // manager is created, used and disposed of here.
    unsafe {
        let fpm = LLVMCreateFunctionPassManagerForModule(m);
        LLVMInitializeFunctionPassManager(fpm);
        LLVMRunFunctionPassManager(fpm, f);
        LLVMFinalizeFunctionPassManager(fpm);
        LLVMDisposePassManager(fpm);
    }
}

/// The edit of [`functions_unit`] on `m`: keeps each function's body
/// (`kept[i][0]`) as `functions[i].body` and its members (`kept[i][1..]`) as
/// internal functions; every other definition becomes a declaration,
/// appending tables are dropped, and so are declarations nothing uses.
///
/// # Safety
/// `m` is a live module, `kept` holds definitions of `m` (from
/// [`kept_functions`]) and no caller holds a handle to any other of its
/// globals (they may be deleted).
unsafe fn keep_only_functions(
    m: LLVMModuleRef,
    kept: &[Vec<LLVMValueRef>],
    functions: &[UnitFunction<'_>],
) -> Result<(), String> {
    let all_kept: HashSet<LLVMValueRef> = kept.iter().flatten().copied().collect();
    let mut dead = None;
    for g in global_list(m) {
        if linkage_of(g) == LLVMLinkage::LLVMAppendingLinkage {
            // SAFETY: appending tables (`llvm.used`, ctors...) have no uses
            // and no handle to them exists outside this function.
            unsafe { LLVMDeleteGlobal(g) };
        }
    }
    for a in alias_list(m) {
        replace_with_declaration(m, a, &mut dead)?;
    }
    for g in global_list(m) {
        if !is_declaration(g) && Some(g) != dead {
            drop_definition(m, g, &mut dead)?;
        }
    }
    for f in function_list(m) {
        if !all_kept.contains(&f) && !is_declaration(f) {
            drop_definition(m, f, &mut dead)?;
        }
    }
    for &f in kept.iter().flat_map(|unit| &unit[1..]) {
        // SAFETY: `f` is a live definition of `m`, used only by its unit's
        // functions (the plan checked it): internal linkage (with the
        // default visibility it has) keeps it out of the symbol table.
        unsafe {
            LLVMSetLinkage(f, LLVMLinkage::LLVMInternalLinkage);
            LLVMSetComdat(f, std::ptr::null_mut());
        }
    }
    let mut targets = HashSet::new();
    for (unit, wanted) in kept.iter().zip(functions) {
        let target = unit[0];
        targets.insert(target);
        set_name(target, wanted.body);
        let decl = declare_like(m, target, wanted.function);
        // SAFETY: `target` and `decl` are live globals of `m` with the same
        // type; afterwards `target` is a plain external definition without
        // a comdat (its copy is the only one).
        unsafe {
            LLVMReplaceAllUsesWith(target, decl);
            LLVMSetLinkage(target, LLVMLinkage::LLVMExternalLinkage);
            LLVMSetVisibility(target, LLVMVisibility::LLVMDefaultVisibility);
            LLVMSetComdat(target, std::ptr::null_mut());
        }
    }
    // Declarations without uses only cost parsing and symbol-table time in
    // later stages: drop them (the bodies' references are all uses).
    for f in function_list(m) {
        // SAFETY: `f` is a live function of `m`; an unused declaration can
        // be erased and no handle to it survives.
        unsafe {
            if !targets.contains(&f) && is_declaration(f) && LLVMGetFirstUse(f).is_null() {
                LLVMDeleteFunction(f);
            }
        }
    }
    for g in global_list(m) {
        // SAFETY: as above, for global variables.
        unsafe {
            if is_declaration(g) && LLVMGetFirstUse(g).is_null() {
                LLVMDeleteGlobal(g);
            }
        }
    }
    Ok(())
}

/// Parses a prepared module (from [`plan`]) into `context` and keeps only
/// its data: global variables with their initializers (including the
/// constructor and destructor tables) and aliases of variables. Functions
/// and their aliases become declarations.
pub fn globals_unit<'ctx>(
    context: &'ctx Context,
    name: &str,
    bitcode: &[u8],
) -> Result<Module<'ctx>, String> {
    let module = parse(context, name, bitcode)?;
    let m = module.as_mut_ptr();
    let mut dead = None;
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

/// The functions of `m` that can run at exit: destructors in
/// `llvm.global_dtors` and direct function arguments of calls to the C
/// library's exit-handler registrations.
fn exit_handlers(m: LLVMModuleRef) -> HashSet<LLVMValueRef> {
    const REGISTRARS: [&str; 3] = ["atexit", "__cxa_atexit", "on_exit"];
    let mut found = HashSet::new();
    let as_function = |v: LLVMValueRef| -> Option<LLVMValueRef> {
        if v.is_null() {
            return None;
        }
        // SAFETY: `v` is a live value; the query only inspects it.
        let f = unsafe { LLVMIsAFunction(v) };
        (!f.is_null()).then_some(f)
    };
    for g in global_list(m) {
        if name_of(g) != "llvm.global_dtors" || is_declaration(g) {
            continue;
        }
        // SAFETY: a defined global has an initializer; the table is an
        // array of { i32, ptr, ptr } whose operands are read, never kept.
        unsafe {
            let table = LLVMGetInitializer(g);
            let n = u32::try_from(LLVMGetNumOperands(table)).unwrap_or(0);
            for i in 0..n {
                let entry = LLVMGetOperand(table, i);
                if !LLVMIsAConstantStruct(entry).is_null() && LLVMGetNumOperands(entry) >= 2 {
                    found.extend(as_function(LLVMGetOperand(entry, 1)));
                }
            }
        }
    }
    for f in function_list(m) {
        // SAFETY: walking the blocks and instructions of a live function;
        // call operands are only inspected.
        unsafe {
            let mut block = LLVMGetFirstBasicBlock(f);
            while !block.is_null() {
                let mut inst = LLVMGetFirstInstruction(block);
                while !inst.is_null() {
                    let is_call =
                        !LLVMIsACallInst(inst).is_null() || !LLVMIsAInvokeInst(inst).is_null();
                    if is_call && LLVMGetNumArgOperands(inst) > 0 {
                        let callee = as_function(LLVMGetCalledValue(inst));
                        if callee.is_some_and(|c| REGISTRARS.contains(&name_of(c).as_str())) {
                            found.extend(as_function(LLVMGetOperand(inst, 0)));
                        }
                    }
                    inst = LLVMGetNextInstruction(inst);
                }
                block = LLVMGetNextBasicBlock(block);
            }
        }
    }
    found
}

fn parse<'ctx>(context: &'ctx Context, name: &str, bytes: &[u8]) -> Result<Module<'ctx>, String> {
    let buffer = MemoryBuffer::create_from_memory_range_copy(bytes, name);
    context
        .create_module_from_ir(buffer)
        .map_err(|e| e.to_string().trim_end().to_owned())
}

fn parse_verified<'ctx>(
    context: &'ctx Context,
    sink: &DiagnosticSink,
    name: &str,
    bytes: &[u8],
) -> Result<Module<'ctx>, PartitionError> {
    let module = parse(context, name, bytes).map_err(PartitionError::Parse)?;
    let errors = sink.take_errors();
    if !errors.is_empty() {
        return Err(PartitionError::Parse(format!(
            "{name}: error: {}",
            errors.join("\n")
        )));
    }
    module
        .verify()
        .map_err(|e| PartitionError::Verify(e.to_string().trim_end().to_owned()))?;
    Ok(module)
}

fn collect(
    first: LLVMValueRef,
    next: unsafe extern "C" fn(LLVMValueRef) -> LLVMValueRef,
) -> Vec<LLVMValueRef> {
    let mut out = Vec::new();
    let mut v = first;
    while !v.is_null() {
        out.push(v);
        // SAFETY: `v` is a live element of its module's list.
        v = unsafe { next(v) };
    }
    out
}

fn function_list(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    // SAFETY: `m` is a live module.
    collect(unsafe { LLVMGetFirstFunction(m) }, LLVMGetNextFunction)
}

fn global_list(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    // SAFETY: `m` is a live module.
    collect(unsafe { LLVMGetFirstGlobal(m) }, LLVMGetNextGlobal)
}

fn alias_list(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    // SAFETY: `m` is a live module.
    collect(
        unsafe { LLVMGetFirstGlobalAlias(m) },
        LLVMGetNextGlobalAlias,
    )
}

fn ifuncs(m: LLVMModuleRef) -> Vec<LLVMValueRef> {
    // SAFETY: `m` is a live module.
    collect(
        unsafe { LLVMGetFirstGlobalIFunc(m) },
        LLVMGetNextGlobalIFunc,
    )
}

fn name_of(v: LLVMValueRef) -> String {
    let mut len = 0usize;
    // SAFETY: `v` is a live value; LLVM returns a pointer to `len` bytes
    // that stay valid until the value is renamed, copied out at once.
    let ptr = unsafe { LLVMGetValueName2(v, &mut len) };
    if ptr.is_null() || len == 0 {
        return String::new();
    }
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    String::from_utf8_lossy(bytes).into_owned()
}

fn set_name(v: LLVMValueRef, name: &str) {
    // SAFETY: `v` is a live value; LLVM copies `name` (length given, so no
    // NUL terminator is needed).
    unsafe { LLVMSetValueName2(v, name.as_ptr().cast::<c_char>(), name.len()) };
}

fn linkage_of(v: LLVMValueRef) -> LLVMLinkage {
    // SAFETY: `v` is a live global value.
    unsafe { LLVMGetLinkage(v) }
}

fn is_declaration(v: LLVMValueRef) -> bool {
    // SAFETY: `v` is a live global value.
    unsafe { LLVMIsDeclaration(v) != 0 }
}

/// The function an alias stands for, if it aliases a function.
fn aliased_function(alias: LLVMValueRef) -> Option<LLVMValueRef> {
    // SAFETY: `alias` is a live alias; `LLVMIsAFunction` only inspects.
    let f = unsafe { LLVMIsAFunction(LLVMAliasGetAliasee(alias)) };
    (!f.is_null()).then_some(f)
}

/// A new external declaration called `name` with `old`'s value type (and,
/// for functions, calling convention and attributes; for variables,
/// constness, thread-local mode and alignment).
fn declare_like(m: LLVMModuleRef, old: LLVMValueRef, name: &str) -> LLVMValueRef {
    // Names from LLVM cannot hold NUL, except through escapes: drop them.
    let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
    // SAFETY: `old` is a live global of `m`; every call below only reads it
    // or creates/configures the new global of `m`.
    unsafe {
        let value_type = LLVMGlobalGetValueType(old);
        let is_fn_type = LLVMGetTypeKind(value_type) == LLVMTypeKind::LLVMFunctionTypeKind;
        if is_fn_type {
            let decl = LLVMAddFunction(m, cname.as_ptr(), value_type);
            if !LLVMIsAFunction(old).is_null() {
                LLVMSetFunctionCallConv(decl, LLVMGetFunctionCallConv(old));
                let n_params = LLVMCountParams(old);
                let indices =
                    std::iter::once(LLVMAttributeFunctionIndex).chain(0..=n_params as c_uint);
                for idx in indices {
                    let n = LLVMGetAttributeCountAtIndex(old, idx);
                    let mut attrs = vec![std::ptr::null_mut(); n as usize];
                    LLVMGetAttributesAtIndex(old, idx, attrs.as_mut_ptr());
                    for attr in attrs {
                        LLVMAddAttributeAtIndex(decl, idx, attr);
                    }
                }
            }
            decl
        } else {
            let addr_space = LLVMGetPointerAddressSpace(LLVMTypeOf(old));
            let decl = LLVMAddGlobalInAddressSpace(m, value_type, cname.as_ptr(), addr_space);
            if !LLVMIsAGlobalVariable(old).is_null() {
                LLVMSetGlobalConstant(decl, LLVMIsGlobalConstant(old));
                LLVMSetThreadLocalMode(decl, LLVMGetThreadLocalMode(old));
                LLVMSetAlignment(decl, LLVMGetAlignment(old));
            }
            decl
        }
    }
}

/// Replaces the definition `old` by an external declaration of the same
/// name and type, then deletes `old` (an alias cannot be deleted through
/// LLVM's C API: it is made private, unused and pointed at a private dummy,
/// which the optimizer removes).
fn replace_with_declaration(
    m: LLVMModuleRef,
    old: LLVMValueRef,
    dead: &mut Option<LLVMValueRef>,
) -> Result<(), String> {
    let name = name_of(old);
    if name.is_empty() {
        return Err("an unnamed global cannot be split out (plan the module first)".into());
    }
    set_name(old, "");
    let decl = declare_like(m, old, &name);
    // SAFETY: `old` and `decl` are live globals of `m` of the same pointer
    // type. After the RAUW nothing uses `old`; it is deleted with the API
    // matching its kind (checked with the `LLVMIsA*` queries), and no handle
    // to it survives (the module was parsed by our caller).
    unsafe {
        LLVMReplaceAllUsesWith(old, decl);
        if !LLVMIsAFunction(old).is_null() {
            LLVMDeleteFunction(old);
        } else if !LLVMIsAGlobalVariable(old).is_null() {
            LLVMDeleteGlobal(old);
        } else if !LLVMIsAGlobalAlias(old).is_null() {
            let dummy = *dead.get_or_insert_with(|| {
                let i8t = LLVMInt8TypeInContext(LLVMGetModuleContext(m));
                let g = LLVMAddGlobal(m, i8t, c"".as_ptr());
                LLVMSetInitializer(g, LLVMConstInt(i8t, 0, 0));
                LLVMSetLinkage(g, LLVMLinkage::LLVMPrivateLinkage);
                g
            });
            LLVMAliasSetAliasee(old, dummy);
            LLVMSetLinkage(old, LLVMLinkage::LLVMPrivateLinkage);
            LLVMSetVisibility(old, LLVMVisibility::LLVMDefaultVisibility);
        } else {
            return Err(format!(
                "cannot split out '{name}': unsupported kind of global"
            ));
        }
    }
    Ok(())
}
