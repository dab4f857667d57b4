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
    let buffer = module.write_bitcode_to_memory();
    Ok(PartitionPlan {
        bitcode: Arc::from(buffer.as_slice()),
        functions,
        function_aliases,
        has_data,
        has_initializers,
        ifuncs: ifunc_names,
    })
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
    let module = parse_lazily(context, name, bitcode)?;
    let m = module.as_mut_ptr();
    let kept = kept_functions(m, name, function, members)?;
    for &f in &kept {
        materialize(m, f);
    }
    // SAFETY: `module` was parsed just above; no handle to any of its
    // globals exists outside this call. The other function bodies are
    // still unread: they are deleted unread, which is what makes this
    // cheap (only the unit's own bodies are ever parsed).
    unsafe { keep_only_function(m, name, function, members, body_name)? };
    Ok(module)
}

/// The definitions of `function` (first) and `members` in `m`.
fn kept_functions(
    m: LLVMModuleRef,
    name: &str,
    function: &str,
    members: &[String],
) -> Result<Vec<LLVMValueRef>, String> {
    let defs: HashMap<String, LLVMValueRef> = function_list(m)
        .into_iter()
        .filter(|&f| !is_declaration(f))
        .map(|f| (name_of(f), f))
        .collect();
    std::iter::once(function)
        .chain(members.iter().map(String::as_str))
        .map(|wanted| {
            defs.get(wanted)
                .copied()
                .ok_or_else(|| format!("module '{name}' does not define function '{wanted}'"))
        })
        .collect()
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

/// The edit of [`function_unit`] on `m`: keeps `function`'s body as
/// `body_name` and the `members` as internal functions, every other
/// definition becomes a declaration, appending tables are dropped, and so
/// are declarations nothing uses.
///
/// # Safety
/// `m` is a live module and no caller holds a handle to any of its globals
/// (they may be deleted).
unsafe fn keep_only_function(
    m: LLVMModuleRef,
    name: &str,
    function: &str,
    members: &[String],
    body_name: &str,
) -> Result<(), String> {
    let kept = kept_functions(m, name, function, members)?;
    let target = kept[0];
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
            replace_with_declaration(m, g, &mut dead)?;
        }
    }
    for f in function_list(m) {
        if !kept.contains(&f) && !is_declaration(f) {
            replace_with_declaration(m, f, &mut dead)?;
        }
    }
    for &f in &kept[1..] {
        // SAFETY: `f` is a live definition of `m`, used only by this unit's
        // functions (the plan checked it): internal linkage (with the
        // default visibility it has) keeps it out of the symbol table.
        unsafe {
            LLVMSetLinkage(f, LLVMLinkage::LLVMInternalLinkage);
            LLVMSetComdat(f, std::ptr::null_mut());
        }
    }
    set_name(target, body_name);
    let decl = declare_like(m, target, function);
    // SAFETY: `target` and `decl` are live globals of `m` with the same
    // type; afterwards `target` is a plain external definition without a
    // comdat (its copy is the only one).
    unsafe {
        LLVMReplaceAllUsesWith(target, decl);
        LLVMSetLinkage(target, LLVMLinkage::LLVMExternalLinkage);
        LLVMSetVisibility(target, LLVMVisibility::LLVMDefaultVisibility);
        LLVMSetComdat(target, std::ptr::null_mut());
    }
    // Declarations without uses only cost parsing and symbol-table time in
    // later stages: drop them (the body's references are all uses).
    for f in function_list(m) {
        // SAFETY: `f` is a live function of `m`; an unused declaration can
        // be erased and no handle to it survives.
        unsafe {
            if f != target && is_declaration(f) && LLVMGetFirstUse(f).is_null() {
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
            replace_with_declaration(m, f, &mut dead)?;
        }
    }
    for g in global_list(m) {
        if !is_declaration(g) && linkage_of(g) == LLVMLinkage::LLVMAvailableExternallyLinkage {
            replace_with_declaration(m, g, &mut dead)?;
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
