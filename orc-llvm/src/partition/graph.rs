//! The reference graph of a module being split: which unit owns each local
//! function (call-graph dominators), what each unit's code refers to, and
//! which functions can run at exit.

use inkwell::llvm_sys::core::*;
use inkwell::llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};
use inkwell::llvm_sys::LLVMLinkage;
use std::collections::{HashMap, HashSet};

use super::ir::*;
use super::*;

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
pub(super) fn unit_owners(m: LLVMModuleRef) -> HashMap<LLVMValueRef, LLVMValueRef> {
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
pub(super) fn dominators(preds: &[Vec<usize>]) -> (Vec<usize>, Vec<usize>) {
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
pub(super) fn references(
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
pub(super) struct Refs {
    /// Units (indices).
    units: HashSet<usize>,
    /// Globals (ids of [`ReferenceWalk`]).
    globals: HashSet<usize>,
    /// Constants already visited (shared subexpressions are walked once).
    constants: HashSet<LLVMValueRef>,
}

/// Finds the functions and globals values refer to, numbering the globals
/// as it meets them.
pub(super) struct ReferenceWalk<'a> {
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
pub(super) fn direct_callers(f: LLVMValueRef) -> Option<HashSet<LLVMValueRef>> {
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

/// The functions of `m` that can run at exit: destructors in
/// `llvm.global_dtors` and direct function arguments of calls to the C
/// library's exit-handler registrations (thread exit included).
pub(super) fn exit_handlers(m: LLVMModuleRef) -> HashSet<LLVMValueRef> {
    const REGISTRARS: [&str; 5] = [
        "atexit",
        "__cxa_atexit",
        "on_exit",
        "__cxa_thread_atexit",
        "__cxa_thread_atexit_impl",
    ];
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

/// Where the addresses of `f`'s blocks are used: the global variables whose
/// initializers hold one (directly or inside constants) and the functions
/// whose code does. Empty for a function without `blockaddress` uses.
/// Found through use lists: `blockaddress(@f, ...)` constants are users of
/// `f`, and their users lead (through other constants) to instructions and
/// global variables.
pub(super) fn block_address_holders(f: LLVMValueRef) -> (Vec<LLVMValueRef>, HashSet<LLVMValueRef>) {
    let mut globals = Vec::new();
    let mut functions = HashSet::new();
    let mut stack = Vec::new();
    let mut seen = HashSet::new();
    for user in users(f) {
        // SAFETY: the users of a live function are live; only inspected.
        if unsafe { !LLVMIsABlockAddress(user).is_null() } && seen.insert(user) {
            stack.push(user);
        }
    }
    while let Some(c) = stack.pop() {
        for user in users(c) {
            // SAFETY: users of live constants are live values; they, their
            // blocks and functions are only inspected.
            unsafe {
                if !LLVMIsAInstruction(user).is_null() {
                    let block = LLVMGetInstructionParent(user);
                    if !block.is_null() {
                        functions.insert(LLVMGetBasicBlockParent(block));
                    }
                } else if !LLVMIsAGlobalVariable(user).is_null() {
                    if seen.insert(user) {
                        globals.push(user);
                    }
                } else if !LLVMIsAConstant(user).is_null()
                    && LLVMIsAGlobalValue(user).is_null()
                    && seen.insert(user)
                {
                    stack.push(user);
                }
            }
        }
    }
    functions.remove(&f);
    (globals, functions)
}

/// Whether some `blockaddress` constant refers to one of `f`'s blocks.
pub(super) fn has_block_addresses(f: LLVMValueRef) -> bool {
    users(f)
        .into_iter()
        // SAFETY: the users of a live function are live values.
        .any(|user| unsafe { !LLVMIsABlockAddress(user).is_null() })
}

/// The units that must be compiled together because of block addresses,
/// and the global variables each unit defines.
///
/// A `blockaddress(@f, %bb)` is only meaningful in a module that defines
/// `f`: so a global variable holding one (a computed-goto jump table) is
/// defined in `f`'s unit (a declaration everywhere else), and units whose
/// code or shared global refers to each other's blocks form one group.
/// Returns, for each unit, its partners (the other units of its group,
/// ascending) and the names of the global variables it defines.
pub(super) fn block_address_groups(
    m: LLVMModuleRef,
    owners: &HashMap<LLVMValueRef, LLVMValueRef>,
    unit_index: &HashMap<LLVMValueRef, usize>,
    n_units: usize,
) -> (Vec<Vec<usize>>, Vec<Vec<String>>) {
    let unit_of = |f: LLVMValueRef| owners.get(&f).and_then(|r| unit_index.get(r)).copied();
    let mut parent: Vec<usize> = (0..n_units).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut global_owner: Vec<(LLVMValueRef, usize)> = Vec::new();
    let mut owner_of: HashMap<LLVMValueRef, usize> = HashMap::new();
    for f in function_list(m) {
        let Some(unit) = unit_of(f) else { continue };
        if !has_block_addresses(f) {
            continue;
        }
        let (globals, code) = block_address_holders(f);
        for g in code {
            if let Some(other) = unit_of(g) {
                let (a, b) = (find(&mut parent, unit), find(&mut parent, other));
                parent[a] = b;
            }
        }
        for g in globals {
            if is_declaration(g) {
                continue;
            }
            match owner_of.get(&g) {
                Some(&other) => {
                    let (a, b) = (find(&mut parent, unit), find(&mut parent, other));
                    parent[a] = b;
                }
                None => {
                    owner_of.insert(g, unit);
                    global_owner.push((g, unit));
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for u in 0..n_units {
        let root = find(&mut parent, u);
        groups.entry(root).or_default().push(u);
    }
    let mut partners = vec![Vec::new(); n_units];
    for members in groups.values().filter(|g| g.len() > 1) {
        for &u in members {
            partners[u] = members.iter().copied().filter(|&v| v != u).collect();
        }
    }
    let mut data = vec![Vec::new(); n_units];
    for (g, unit) in global_owner {
        data[unit].push(name_of(g));
    }
    (partners, data)
}
