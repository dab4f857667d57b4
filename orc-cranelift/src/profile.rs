//! Profiling instrumentation for tiering: tier-0 code bumps a per-function
//! counter on entry and on every loop back-edge, so a tier manager can see
//! both functions called often and functions entered once that loop hot,
//! and calls the manager out of line when the count reaches a trip value.
//!
//! The count is carried in a register through the function (an extra block
//! parameter on every block): entry loads the counter once, adds one and
//! stores it; each back-edge adds one to the register and stores it, with no
//! load, so a tight loop gets no dependency through memory. After each
//! store the new count is compared with the trip value (an immediate); when
//! it is reached, a cold block calls the trip handler with the context and
//! the counter's address, then reloads the counter (the handler may reset
//! it) and continues with that value. The call goes through
//! [`orc_core::TripCounter::preserve_all_trip`] in the `preserve_all`
//! convention where the host has that routine: it clobbers no register, so
//! values live across a loop's back-edge stay in registers on the hot path
//! (a System V call there made the register allocator spill and reload
//! them every iteration). So the manager hears of a hot function
//! at once, from the thread running it, and no thread has to poll. Counts
//! are approximate by design: recursive frames and racing threads overwrite
//! each other's stores, which only delays a trip. Frontends do nothing for
//! it; the layer applies it to the functions its counter provider names.
//!
//! On x86-64, for System V functions, the entry count and its check are
//! not compiled into the function: the compiler puts an
//! [`orc_core::EntryThunk`] in front of the body (under the function's
//! symbol) and the body only loads the counter, if it has loops. A function
//! without loops then compiles exactly as unprofiled, which halves the
//! compile time of small functions (the check's cold call block used to
//! double their blocks, register allocation and emission).

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::dominator_tree::DominatorTree;
use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    self, types, AbiParam, Block, InstBuilder, InstructionData, MemFlagsData, Value,
};
use cranelift_codegen::isa::CallConv;
use orc_core::TripCounter;

/// Adds the counting and trip checks for `profile` to `func`; the handler
/// is called with `call_conv`. With `count_entries` false the entry is
/// counted elsewhere (by an [`orc_core::EntryThunk`] in front of the
/// function), and a function without loops is left as it is. Returns the
/// number of back-edge sites instrumented.
pub(crate) fn instrument(
    func: &mut ir::Function,
    profile: &TripCounter,
    call_conv: CallConv,
    count_entries: bool,
) -> usize {
    let Some(entry) = func.layout.entry_block() else {
        return 0;
    };
    let Some(first_inst) = func.layout.first_inst(entry) else {
        return 0;
    };
    // Exception edges carry fixed parameters: such functions count entries
    // only.
    let has_exception_edges = func.layout.blocks().any(|b| {
        func.layout.last_inst(b).is_some_and(|t| {
            matches!(
                func.dfg.insts[t],
                InstructionData::TryCall { .. } | InstructionData::TryCallIndirect { .. }
            )
        })
    });
    // Back-edges: a branch from a block to a block that dominates it. For
    // every block, which of its terminator's destinations are back-edges
    // (worked out before the function changes).
    let cfg = ControlFlowGraph::with_function(func);
    let domtree = DominatorTree::with_function(func, &cfg);
    let mut blocks: Vec<(Block, Vec<bool>)> = Vec::new();
    for block in func.layout.blocks() {
        let back: Vec<bool> = match func.layout.last_inst(block) {
            Some(term) => func.dfg.insts[term]
                .branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables)
                .iter()
                .map(|d| domtree.dominates(d.block(&func.dfg.value_lists), block, &func.layout))
                .collect(),
            None => Vec::new(),
        };
        blocks.push((block, back));
    }
    // Jump tables may be shared between branches, so a back-edge out of a
    // `br_table` cannot carry the count; one whose destinations all go
    // forward (a switch-dispatch loop's header: its cases jump back by
    // plain jumps) is no obstacle.
    let back_through_table = blocks.iter().any(|(block, back)| {
        back.contains(&true)
            && func
                .layout
                .last_inst(*block)
                .is_some_and(|t| matches!(func.dfg.insts[t], InstructionData::BranchTable { .. }))
    });
    // Each destination gets the count as an extra argument: a jump table
    // used by two `br_table`s would get it twice.
    let mut tables = std::collections::HashSet::new();
    let shared_table = func.layout.blocks().any(|b| {
        func.layout
            .last_inst(b)
            .is_some_and(|t| match func.dfg.insts[t] {
                InstructionData::BranchTable { table, .. } => !tables.insert(table),
                _ => false,
            })
    });
    let has_special_edges = has_exception_edges || back_through_table || shared_table;
    let n_back_edge_sites = blocks.iter().filter(|(_, b)| b.contains(&true)).count();
    let count_loops = !has_special_edges && n_back_edge_sites > 0;
    if !count_entries && !count_loops {
        return 0;
    }

    // With the preserve-all trip routine the call clobbers no register, so
    // the values a loop keeps in registers stay there on the hot path; the
    // plain handler call is the fallback where the host has no routine.
    let routine = TripCounter::preserve_all_trip();
    let (call_conv, n_params) = match routine {
        Some(_) => (CallConv::PreserveAll, 3),
        None => (call_conv, 2),
    };
    let mut sig = ir::Signature::new(call_conv);
    for _ in 0..n_params {
        sig.params.push(AbiParam::new(types::I64));
    }
    let trip = TripCall {
        sig: func.import_signature(sig),
        routine,
    };

    // Entry: the original entry block's instructions move to `body`; the
    // entry block itself counts and checks, and passes the count on.
    let body = func.dfg.make_block();
    func.layout.split_block(body, first_inst);
    let entry_count = func.dfg.append_block_param(body, types::I64);
    let mut pos = FuncCursor::new(func).at_bottom(entry);
    let addr = pos.ins().iconst(types::I64, profile.counter as i64);
    let old = pos.ins().load(types::I64, MemFlagsData::trusted(), addr, 0);
    if count_entries {
        let first = pos.ins().iadd_imm_s(old, 1);
        pos.ins().store(MemFlagsData::trusted(), first, addr, 0);
        check_trip(pos.func, entry, first, addr, body, profile, &trip);
    } else {
        // An entry thunk counted this entry already: start from its count.
        pos.ins().jump(body, &[old.into()]);
    }

    if !count_loops {
        return 0;
    }

    // Every other original block receives the running count as a
    // parameter; the original entry's code (now in `body`) starts with the
    // count the entry block passed.
    let mut running = std::collections::HashMap::new();
    for (block, _) in &mut blocks {
        if *block == entry {
            *block = body;
            running.insert(body, entry_count);
        } else {
            let param = func.dfg.append_block_param(*block, types::I64);
            running.insert(*block, param);
        }
    }
    for (block, back) in &blocks {
        let Some(term) = func.layout.last_inst(*block) else {
            continue;
        };
        let current = running[block];
        // The value passed along back-edges: the bumped count, or what the
        // trip handler left in the counter.
        let mut bumped = current;
        if back.contains(&true) {
            let mut pos = FuncCursor::new(func).at_inst(term);
            let addr = pos.ins().iconst(types::I64, profile.counter as i64);
            let next = pos.ins().iadd_imm_s(current, 1);
            pos.ins().store(MemFlagsData::trusted(), next, addr, 0);
            // The terminator moves to a new block after the check.
            let cont = func.dfg.make_block();
            func.layout.split_block(cont, term);
            bumped = func.dfg.append_block_param(cont, types::I64);
            check_trip(func, *block, next, addr, cont, profile, &trip);
        }
        let values: Vec<Value> = back
            .iter()
            .map(|&is_back| if is_back { bumped } else { current })
            .collect();
        let dfg = &mut func.dfg;
        let dests =
            dfg.insts[term].branch_destination_mut(&mut dfg.jump_tables, &mut dfg.exception_tables);
        // A table may hold one block call twice (its default is also an
        // entry): each distinct call gets the argument once, and the slots
        // that shared it share the extended call.
        let originals: Vec<ir::BlockCall> = dests.to_vec();
        for (i, value) in values.into_iter().enumerate() {
            match originals[..i].iter().position(|c| *c == originals[i]) {
                Some(first) => dests[i] = dests[first],
                None => dests[i].append_argument(value, &mut dfg.value_lists),
            }
        }
    }
    n_back_edge_sites
}

/// How the trip check calls out: the preserve-all routine (arguments
/// context, counter, handler) where there is one, else the handler itself.
struct TripCall {
    sig: ir::SigRef,
    routine: Option<u64>,
}

/// Ends `block` (whose last instruction stored `count`) with the trip
/// check: on to `cont(count)`, or through a cold block that calls the
/// handler, reloads the counter and goes on to `cont(reloaded)`.
fn check_trip(
    func: &mut ir::Function,
    block: Block,
    count: Value,
    addr: Value,
    cont: Block,
    profile: &TripCounter,
    trip: &TripCall,
) {
    let cold = func.dfg.make_block();
    func.layout.append_block(cold);
    func.layout.set_cold(cold);
    let mut pos = FuncCursor::new(func).at_bottom(block);
    let hot = pos.ins().icmp_imm_u(
        IntCC::UnsignedGreaterThanOrEqual,
        count,
        profile.trip as i64,
    );
    pos.ins().brif(hot, cold, &[], cont, &[count.into()]);
    pos.goto_bottom(cold);
    let handler = pos.ins().iconst(types::I64, profile.on_trip as i64);
    let context = pos.ins().iconst(types::I64, profile.context as i64);
    match trip.routine {
        Some(routine) => {
            let routine = pos.ins().iconst(types::I64, routine as i64);
            pos.ins()
                .call_indirect(trip.sig, routine, &[context, addr, handler]);
        }
        None => {
            pos.ins().call_indirect(trip.sig, handler, &[context, addr]);
        }
    }
    let reloaded = pos.ins().load(types::I64, MemFlagsData::trusted(), addr, 0);
    pos.ins().jump(cont, &[reloaded.into()]);
}
