//! On-stack replacement derived from Cranelift IR, for any frontend.
//!
//! A loop's *state* is what is live at its header: the header's block
//! parameters, then every other value live into the header (defined before
//! the loop and used on some path from the header), in value order. Given
//! it, two transforms make OSR work without the frontend doing anything:
//! - [`add_osr_checks`] (tier 0): at the top of each loop header, the code
//!   reads the loop's [`orc_core::OsrSlot`]; once an entry is published
//!   there, the frame bumps the slot's transfer count, calls the entry with
//!   the state and returns what it returns;
//! - [`osr_entry`] (for tier 1): a copy of the function whose entry block
//!   takes the state as parameters and jumps to the header; the code before
//!   the loop becomes unreachable and is removed.
//!
//! A loop is eligible ([`osr_loops`]) when every non-parameter state value
//! is defined outside what the header reaches: then the entry's SSA stays
//! valid with the state substituted. An inner loop using a value its outer
//! loop redefines is not eligible (its outer loop is). Functions with
//! stack slots are not either: memory is state the entry cannot copy, and
//! so are the `tail` convention, special-purpose parameters, exception
//! edges and more state than [`MAX_STATE`] values.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::dominator_tree::DominatorTree;
use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir::{
    self, types, AbiParam, ArgumentPurpose, Block, BlockArg, InstBuilder, InstructionData,
    MemFlagsData, Value,
};
use cranelift_codegen::isa::CallConv;

/// The most values a loop's state may have for the loop to be eligible.
pub const MAX_STATE: usize = 32;

/// A loop that can be entered from the middle: its header and its state
/// (the header's parameters first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsrLoop {
    /// The loop's header block.
    pub header: Block,
    /// The values live into the header: its parameters, then the rest in
    /// value order.
    pub state: Vec<Value>,
}

/// The eligible loops of `func`, in layout order of their headers. The
/// same function always gives the same loops.
pub fn osr_loops(func: &ir::Function) -> Vec<OsrLoop> {
    if !function_is_eligible(func) {
        return Vec::new();
    }
    let cfg = ControlFlowGraph::with_function(func);
    let domtree = DominatorTree::with_function(func, &cfg);
    let live_in = live_in_sets(func);
    let mut loops = Vec::new();
    for header in func.layout.blocks() {
        let is_header = cfg
            .pred_iter(header)
            .any(|pred| domtree.block_dominates(header, pred.block));
        if !is_header {
            continue;
        }
        let params = func.dfg.block_params(header);
        let mut rest: Vec<Value> = live_in[&header]
            .iter()
            .copied()
            .filter(|v| !params.contains(v))
            .collect();
        rest.sort();
        if params.len() + rest.len() > MAX_STATE {
            continue;
        }
        let reached = reachable_from(func, header);
        let defined_inside = |v: Value| match func.dfg.value_def(v) {
            ir::ValueDef::Result(inst, _) => func
                .layout
                .inst_block(inst)
                .is_some_and(|b| reached.contains(&b)),
            ir::ValueDef::Param(block, _) => reached.contains(&block),
            ir::ValueDef::Union(..) => true,
        };
        if rest.iter().any(|&v| defined_inside(v)) {
            continue;
        }
        let mut state = params.to_vec();
        state.extend(rest);
        loops.push(OsrLoop { header, state });
    }
    loops
}

/// Adds the OSR check of each of `loops` (from [`osr_loops`] on this
/// `func`, unchanged since) at the top of its header: loop `n` reads the
/// slot at `slots + n * OsrSlot::SIZE`. The slots must stay at that
/// address as long as the code can run.
pub fn add_osr_checks(func: &mut ir::Function, loops: &[OsrLoop], slots: u64) {
    let returns = func.signature.returns.clone();
    for (n, lp) in loops.iter().enumerate() {
        let slot = slots + n as u64 * orc_core::OsrSlot::SIZE;
        let mut sig = ir::Signature::new(CallConv::SystemV);
        sig.params = lp
            .state
            .iter()
            .map(|&v| AbiParam::new(func.dfg.value_type(v)))
            .collect();
        sig.returns = returns.clone();
        let sig = func.import_signature(sig);
        let cont = func.dfg.make_block();
        let enter = func.dfg.make_block();
        func.layout.insert_block_after(cont, lp.header);
        let body: Vec<ir::Inst> = func.layout.block_insts(lp.header).collect();
        for inst in body {
            func.layout.remove_inst(inst);
            func.layout.append_inst(inst, cont);
        }
        func.layout.append_block(enter);
        func.layout.set_cold(enter);
        let flags = MemFlagsData::trusted();
        let mut pos = FuncCursor::new(func).at_bottom(lp.header);
        let addr = pos.ins().iconst(types::I64, slot as i64);
        let entry = pos
            .ins()
            .load(types::I64, flags, addr, orc_core::OsrSlot::ENTRY_OFFSET);
        pos.ins().brif(entry, enter, &[], cont, &[]);
        pos.goto_bottom(enter);
        let count = pos
            .ins()
            .load(types::I64, flags, addr, orc_core::OsrSlot::TRANSFERS_OFFSET);
        let count = pos.ins().iadd_imm_s(count, 1);
        pos.ins()
            .store(flags, count, addr, orc_core::OsrSlot::TRANSFERS_OFFSET);
        let call = pos.ins().call_indirect(sig, entry, &lp.state);
        let results = pos.func.dfg.inst_results(call).to_vec();
        pos.ins().return_(&results);
    }
}

/// The OSR entry of `lp` (one of [`osr_loops`] of `func`): `func` with a new
/// entry block taking `lp.state` and jumping to the header, in the System V
/// convention, returning what `func` returns. Blocks the header does not
/// reach are removed.
pub fn osr_entry(func: &ir::Function, lp: &OsrLoop) -> ir::Function {
    let mut f = func.clone();
    let mut sig = ir::Signature::new(CallConv::SystemV);
    sig.params = lp
        .state
        .iter()
        .map(|&v| AbiParam::new(f.dfg.value_type(v)))
        .collect();
    sig.returns = func.signature.returns.clone();
    f.signature = sig;
    let entry = f.dfg.make_block();
    match f.layout.entry_block() {
        Some(old) => f.layout.insert_block(entry, old),
        None => f.layout.append_block(entry),
    }
    let params: Vec<Value> = lp
        .state
        .iter()
        .map(|&v| {
            let ty = f.dfg.value_type(v);
            f.dfg.append_block_param(entry, ty)
        })
        .collect();
    let n_header = f.dfg.num_block_params(lp.header);
    let subst: HashMap<Value, Value> = lp.state[n_header..]
        .iter()
        .copied()
        .zip(params[n_header..].iter().copied())
        .collect();
    let args: Vec<BlockArg> = params[..n_header]
        .iter()
        .map(|&v| BlockArg::Value(v))
        .collect();
    FuncCursor::new(&mut f)
        .at_bottom(entry)
        .ins()
        .jump(lp.header, &args);
    let reached = reachable_from(&f, lp.header);
    let blocks: Vec<Block> = f.layout.blocks().collect();
    for block in blocks {
        if block == entry {
            continue;
        }
        let insts: Vec<ir::Inst> = f.layout.block_insts(block).collect();
        if reached.contains(&block) {
            for inst in insts {
                f.dfg
                    .map_inst_values(inst, |v| *subst.get(&v).unwrap_or(&v));
            }
        } else {
            for inst in insts {
                f.layout.remove_inst(inst);
            }
            f.layout.remove_block(block);
        }
    }
    f
}

/// Whether OSR can apply to `func` at all (see the module docs).
fn function_is_eligible(func: &ir::Function) -> bool {
    let sig = &func.signature;
    matches!(sig.call_conv, CallConv::SystemV | CallConv::Fast)
        && sig
            .params
            .iter()
            .chain(&sig.returns)
            .all(|p| p.purpose == ArgumentPurpose::Normal)
        && func.sized_stack_slots.is_empty()
        && func.dynamic_stack_slots.is_empty()
        && !func.layout.blocks().any(|b| {
            func.layout.last_inst(b).is_some_and(|t| {
                matches!(
                    func.dfg.insts[t],
                    InstructionData::TryCall { .. } | InstructionData::TryCallIndirect { .. }
                )
            })
        })
}

/// The blocks reachable from `from` (itself included).
fn reachable_from(func: &ir::Function, from: Block) -> HashSet<Block> {
    let mut seen = HashSet::from([from]);
    let mut work = vec![from];
    while let Some(block) = work.pop() {
        for succ in successors(func, block) {
            if seen.insert(succ) {
                work.push(succ);
            }
        }
    }
    seen
}

fn successors(func: &ir::Function, block: Block) -> Vec<Block> {
    let Some(term) = func.layout.last_inst(block) else {
        return Vec::new();
    };
    func.dfg.insts[term]
        .branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables)
        .iter()
        .map(|call| call.block(&func.dfg.value_lists))
        .collect()
}

/// For each block, the values live at its start that it does not define
/// (its own parameters are not in it).
fn live_in_sets(func: &ir::Function) -> HashMap<Block, HashSet<Value>> {
    // Per block: the values it uses before (or without) defining them, and
    // the values it defines (parameters and results).
    let mut uses: HashMap<Block, HashSet<Value>> = HashMap::new();
    let mut defs: HashMap<Block, HashSet<Value>> = HashMap::new();
    for block in func.layout.blocks() {
        let mut u = HashSet::new();
        let mut d: HashSet<Value> = func.dfg.block_params(block).iter().copied().collect();
        for inst in func.layout.block_insts(block) {
            for v in func.dfg.inst_values(inst) {
                let v = func.dfg.resolve_aliases(v);
                if !d.contains(&v) {
                    u.insert(v);
                }
            }
            d.extend(func.dfg.inst_results(inst).iter().copied());
        }
        uses.insert(block, u);
        defs.insert(block, d);
    }
    let blocks: Vec<Block> = func.layout.blocks().collect();
    let mut live_in: HashMap<Block, HashSet<Value>> =
        blocks.iter().map(|&b| (b, uses[&b].clone())).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for &block in blocks.iter().rev() {
            let mut live_out = HashSet::new();
            for succ in successors(func, block) {
                // A successor's parameters are defined by the edge, not
                // live across it.
                let params = func.dfg.block_params(succ);
                live_out.extend(live_in[&succ].iter().filter(|v| !params.contains(v)));
            }
            let entry = live_in.get_mut(&block).expect("every block has a set");
            for v in live_out {
                if !defs[&block].contains(&v) && entry.insert(v) {
                    changed = true;
                }
            }
        }
    }
    live_in
}
