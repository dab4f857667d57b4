//! Profiling instrumentation for tiering: tier-0 code bumps a per-function
//! counter on entry and on every loop back-edge, so a tier manager can see
//! both functions called often and functions entered once that loop hot.
//!
//! The count is carried in a register through the function (an extra block
//! parameter on every block): entry loads the counter once, adds one and
//! stores it; each back-edge adds one to the register and stores it, with no
//! load, so a tight loop gets no dependency through memory. Counts are
//! approximate by design: recursive frames and racing threads overwrite
//! each other's stores, which only delays a tier-up. Frontends do nothing
//! for it; the layer applies it to the functions its counter provider
//! names.

use std::collections::HashMap;

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::dominator_tree::DominatorTree;
use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir::{
    self, types, Block, InstBuilder, InstructionData, MemFlagsData, Value,
};

/// Adds the counter bumps for the counter at `counter` to `func`. Returns
/// the number of back-edge sites instrumented.
pub(crate) fn instrument(func: &mut ir::Function, counter: u64) -> usize {
    let Some(entry) = func.layout.entry_block() else {
        return 0;
    };
    // Exception edges carry fixed parameters and jump tables may be
    // shared between branches: such functions count entries only.
    let has_special_edges = func.layout.blocks().any(|b| {
        func.layout.last_inst(b).is_some_and(|t| {
            matches!(
                func.dfg.insts[t],
                InstructionData::TryCall { .. }
                    | InstructionData::TryCallIndirect { .. }
                    | InstructionData::BranchTable { .. }
            )
        })
    });
    // Back-edges: a branch from a block to a block that dominates it.
    let cfg = ControlFlowGraph::with_function(func);
    let domtree = DominatorTree::with_function(func, &cfg);
    let blocks: Vec<Block> = func.layout.blocks().collect();
    let mut back_edge_sources = Vec::new();
    for &block in &blocks {
        let Some(term) = func.layout.last_inst(block) else {
            continue;
        };
        let dests = func.dfg.insts[term]
            .branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables);
        if dests
            .iter()
            .any(|d| domtree.dominates(d.block(&func.dfg.value_lists), block, &func.layout))
        {
            back_edge_sources.push(block);
        }
    }

    // Entry: load, add one, store; the result is the running count.
    let mut pos = FuncCursor::new(func);
    pos.goto_first_insertion_point(entry);
    let addr = pos.ins().iconst(types::I64, counter as i64);
    let old = pos.ins().load(types::I64, MemFlagsData::trusted(), addr, 0);
    let first = pos.ins().iadd_imm_s(old, 1);
    pos.ins().store(MemFlagsData::trusted(), first, addr, 0);
    if has_special_edges || back_edge_sources.is_empty() {
        return 0;
    }

    // Every other block receives the running count as a parameter.
    let mut running: HashMap<Block, Value> = HashMap::new();
    running.insert(entry, first);
    for &block in &blocks {
        if block != entry {
            let param = func.dfg.append_block_param(block, types::I64);
            running.insert(block, param);
        }
    }
    for &block in &blocks {
        let Some(term) = func.layout.last_inst(block) else {
            continue;
        };
        let current = running[&block];
        let mut bumped = current;
        if back_edge_sources.contains(&block) {
            let mut pos = FuncCursor::new(func);
            pos.goto_inst(term);
            let addr = pos.ins().iconst(types::I64, counter as i64);
            bumped = pos.ins().iadd_imm_s(current, 1);
            pos.ins().store(MemFlagsData::trusted(), bumped, addr, 0);
        }
        // A back-edge passes the bumped count, any other edge the current.
        let values: Vec<Value> = func.dfg.insts[term]
            .branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables)
            .iter()
            .map(|d| {
                let target = d.block(&func.dfg.value_lists);
                if domtree.dominates(target, block, &func.layout) {
                    bumped
                } else {
                    current
                }
            })
            .collect();
        let dfg = &mut func.dfg;
        let dests =
            dfg.insts[term].branch_destination_mut(&mut dfg.jump_tables, &mut dfg.exception_tables);
        for (dest, value) in dests.iter_mut().zip(values) {
            dest.append_argument(value, &mut dfg.value_lists);
        }
    }
    back_edge_sources.len()
}
