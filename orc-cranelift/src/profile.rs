//! Profiling instrumentation for tiering: tier-0 code bumps a per-function
//! counter on entry and on every loop back-edge, so a tier manager can see
//! both functions called often and functions entered once that loop hot.
//!
//! The bump is a plain load / add / store of a 64-bit counter at a fixed
//! address (no atomic, no branch): a count lost to a race between threads
//! only delays a tier-up. Frontends do nothing for it; the layer applies it
//! to the functions its counter provider names.

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::dominator_tree::DominatorTree;
use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir::{self, types, InstBuilder, MemFlagsData};

/// Adds the counter bumps for the counter at `counter` to `func`. Returns
/// the number of back-edge sites instrumented.
pub(crate) fn instrument(func: &mut ir::Function, counter: u64) -> usize {
    let Some(entry) = func.layout.entry_block() else {
        return 0;
    };
    // Back-edges: a branch from a block to a block that dominates it.
    let cfg = ControlFlowGraph::with_function(func);
    let domtree = DominatorTree::with_function(func, &cfg);
    let mut sites = Vec::new();
    for block in func.layout.blocks() {
        let Some(term) = func.layout.last_inst(block) else {
            continue;
        };
        let dests = func.dfg.insts[term]
            .branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables);
        let loops_back = dests
            .iter()
            .any(|dest| domtree.dominates(dest.block(&func.dfg.value_lists), block, &func.layout));
        if loops_back {
            sites.push(term);
        }
    }
    let mut pos = FuncCursor::new(func);
    for term in &sites {
        pos.goto_inst(*term);
        bump(&mut pos, counter);
    }
    pos.goto_first_insertion_point(entry);
    bump(&mut pos, counter);
    sites.len()
}

fn bump(pos: &mut FuncCursor<'_>, counter: u64) {
    let addr = pos.ins().iconst(types::I64, counter as i64);
    let old = pos.ins().load(types::I64, MemFlagsData::trusted(), addr, 0);
    let new = pos.ins().iadd_imm_s(old, 1);
    pos.ins().store(MemFlagsData::trusted(), new, addr, 0);
}
