//! Control flow of generated functions: a region is a sequence of
//! statements, each an operation or a nested construct: `brif` diamonds
//! with block arguments (an arm may return early or trap), `br_table`
//! with block arguments, bounded counted loops, direct and indirect
//! calls to the second function, stack-slot accesses and conditional traps.
//!
//! Invariant: every loop runs at most `MAX_TRIPS` times per entry and
//! loops nest at most `MAX_DEPTH` deep, and nothing else jumps backwards,
//! so every generated function terminates.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, BlockArg, BlockCall, InstBuilder, JumpTableData, TrapCode, Type, Value,
};

use super::builder::{FloatClass, FnGen};

/// How deep constructs nest.
const MAX_DEPTH: u32 = 3;
/// The largest trip count of a loop.
const MAX_TRIPS: u32 = 5;

/// Generates a region at nesting `depth` into the current block, which is
/// open (unterminated) before and after.
pub(super) fn region(g: &mut FnGen<'_, '_, '_>, depth: u32) {
    let n = g.range(1, 10);
    for _ in 0..n {
        if !g.spend() {
            return;
        }
        let nested = depth < MAX_DEPTH;
        match g.range(0, 21) {
            0..=6 => super::int_ops::op(g),
            7..=9 | 19 | 20 => super::float_ops::op(g),
            10 if nested => diamond(g, depth),
            11 if nested => switch(g, depth),
            12 if nested => counted_loop(g, depth),
            13 => call(g),
            14 | 15 => super::memory::op(g),
            16 => conditional_trap(g),
            _ => super::int_ops::op(g),
        }
    }
}

/// Values for block arguments of the types `tys`.
fn args_for(g: &mut FnGen<'_, '_, '_>, tys: &[Type]) -> Vec<BlockArg> {
    tys.iter().map(|&ty| BlockArg::Value(g.val(ty))).collect()
}

/// Random block-parameter types (none to two).
fn param_types(g: &mut FnGen<'_, '_, '_>) -> Vec<Type> {
    let n = g.range(0, 2);
    (0..n).map(|_| g.any_ty()).collect()
}

/// Adds parameters of `tys` to `block`.
fn add_params(g: &mut FnGen<'_, '_, '_>, block: cranelift_codegen::ir::Block, tys: &[Type]) {
    for &ty in tys {
        g.b.append_block_param(block, ty);
    }
}

/// Assigns `block`'s parameters to variables. Float parameters count as
/// inexact: their arguments come from several places.
fn take_params(g: &mut FnGen<'_, '_, '_>, block: cranelift_codegen::ir::Block) {
    let params = g.b.block_params(block).to_vec();
    for p in params {
        g.set(p, FloatClass::Inexact);
    }
}

/// Ends the current block by returning values of the signature's types.
fn early_return(g: &mut FnGen<'_, '_, '_>) {
    let tys: Vec<Type> =
        g.b.func
            .signature
            .returns
            .iter()
            .map(|p| p.value_type)
            .collect();
    let rets: Vec<Value> = tys.iter().map(|&ty| g.val(ty)).collect();
    g.b.ins().return_(&rets);
}

/// `brif` to two arms with their own parameters; the then-arm jumps to
/// the merge block, the else-arm jumps there too, or returns, or traps.
fn diamond(g: &mut FnGen<'_, '_, '_>, depth: u32) {
    let cond_ty = g.int_ty();
    let cond = g.val(cond_ty);
    let then_b = g.b.create_block();
    let else_b = g.b.create_block();
    let merge = g.b.create_block();
    let then_tys = param_types(g);
    let else_tys = param_types(g);
    let merge_tys = param_types(g);
    add_params(g, then_b, &then_tys);
    add_params(g, else_b, &else_tys);
    add_params(g, merge, &merge_tys);
    let then_args = args_for(g, &then_tys);
    let else_args = args_for(g, &else_tys);
    g.b.ins().brif(cond, then_b, &then_args, else_b, &else_args);

    g.b.switch_to_block(then_b);
    take_params(g, then_b);
    region(g, depth + 1);
    let args = args_for(g, &merge_tys);
    g.b.ins().jump(merge, &args);

    g.b.switch_to_block(else_b);
    take_params(g, else_b);
    region(g, depth + 1);
    match g.range(0, 9) {
        0 => early_return(g),
        1 => {
            let code = TrapCode::unwrap_user(g.range(1, 100) as u8);
            g.b.ins().trap(code);
        }
        _ => {
            let args = args_for(g, &merge_tys);
            g.b.ins().jump(merge, &args);
        }
    }

    g.b.switch_to_block(merge);
    take_params(g, merge);
}

/// `br_table` on an `i32` (often masked to a few bits so the cases are
/// taken) to one to four target blocks and a default, each with block
/// arguments, all meeting in a merge block.
fn switch(g: &mut FnGen<'_, '_, '_>, depth: u32) {
    let mut index = g.val(types::I32);
    if g.chance(2, 3) {
        let mask = g.pick(&[1i64, 3, 7]);
        index = g.b.ins().band_imm_s(index, mask);
    }
    let n_targets = g.range(1, 4) as usize;
    let merge = g.b.create_block();
    let merge_tys = param_types(g);
    add_params(g, merge, &merge_tys);
    let mut targets = Vec::new();
    for _ in 0..=n_targets {
        let block = g.b.create_block();
        let tys = param_types(g);
        add_params(g, block, &tys);
        targets.push((block, tys));
    }
    let mut calls = Vec::new();
    // The table may name a target more than once, with other arguments.
    for _ in 0..g.range(1, 5) {
        let (block, tys) = targets[g.range(0, n_targets as u32) as usize].clone();
        let args = args_for(g, &tys);
        calls.push(BlockCall::new(block, args, &mut g.b.func.dfg.value_lists));
    }
    let (def_block, def_tys) = targets[n_targets].clone();
    let def_args = args_for(g, &def_tys);
    let def = BlockCall::new(def_block, def_args, &mut g.b.func.dfg.value_lists);
    let jt = g.b.create_jump_table(JumpTableData::new(def, &calls));
    g.b.ins().br_table(index, jt);

    for (block, _) in targets {
        g.b.switch_to_block(block);
        take_params(g, block);
        region(g, depth + 1);
        let args = args_for(g, &merge_tys);
        g.b.ins().jump(merge, &args);
    }
    g.b.switch_to_block(merge);
    take_params(g, merge);
}

/// A loop counting an `i32` from zero (a header parameter) up to a
/// constant of at most `MAX_TRIPS`; the body is a region, the counter
/// visible to it. The exit is a block with its own parameter.
fn counted_loop(g: &mut FnGen<'_, '_, '_>, depth: u32) {
    let trips = g.range(1, MAX_TRIPS);
    let header = g.b.create_block();
    let exit = g.b.create_block();
    let counter = g.b.append_block_param(header, types::I32);
    let exit_ty = g.int_ty();
    g.b.append_block_param(exit, exit_ty);
    let zero = g.b.ins().iconst(types::I32, 0);
    g.b.ins().jump(header, &[BlockArg::Value(zero)]);

    g.b.switch_to_block(header);
    if g.chance(1, 2) {
        g.set(counter, FloatClass::Exact);
    }
    region(g, depth + 1);
    let next = g.b.ins().iadd_imm_s(counter, 1);
    let again =
        g.b.ins()
            .icmp_imm_s(IntCC::SignedLessThan, next, i64::from(trips));
    let out = g.val(exit_ty);
    g.b.ins().brif(
        again,
        header,
        &[BlockArg::Value(next)],
        exit,
        &[BlockArg::Value(out)],
    );
    g.b.switch_to_block(exit);
    take_params(g, exit);
}

/// A call to the second function, direct or through `func_addr` and
/// `call_indirect`, with random arguments; the results go to variables.
fn call(g: &mut FnGen<'_, '_, '_>) {
    let Some(callee) = g.callee else {
        return super::int_ops::op(g);
    };
    let sig_ref = g.b.func.dfg.ext_funcs[callee].signature;
    let sig = g.b.func.dfg.signatures[sig_ref].clone();
    // The callee takes its parameters as exact values (they are its
    // inputs), so float arguments must be exact.
    let args: Vec<Value> = sig
        .params
        .iter()
        .map(|p| {
            if p.value_type.is_float() {
                g.exact_val(p.value_type)
            } else {
                g.val(p.value_type)
            }
        })
        .collect();
    let inst = if g.chance(1, 3) {
        let addr = g.b.ins().func_addr(types::I64, callee);
        g.b.ins().call_indirect(sig_ref, addr, &args)
    } else {
        g.b.ins().call(callee, &args)
    };
    let results = g.b.inst_results(inst).to_vec();
    for r in results {
        g.set(r, FloatClass::Inexact);
    }
}

/// `trapnz`/`trapz` on a comparison with a constant, so it fires for some
/// inputs and not others; a user code or a reserved one.
fn conditional_trap(g: &mut FnGen<'_, '_, '_>) {
    let ty = g.pick(&[types::I8, types::I16, types::I32, types::I64]);
    let x = g.val(ty);
    let k = g.edge_bits(ty.bits());
    let cc = if g.chance(1, 2) {
        IntCC::Equal
    } else {
        IntCC::NotEqual
    };
    let cond =
        g.b.ins()
            .icmp_imm_s(cc, x, super::builder::sext_imm(k, ty.bits()));
    let code = if g.chance(1, 2) {
        TrapCode::unwrap_user(g.range(1, 100) as u8)
    } else {
        g.pick(&[
            TrapCode::INTEGER_OVERFLOW,
            TrapCode::INTEGER_DIVISION_BY_ZERO,
            TrapCode::BAD_CONVERSION_TO_INTEGER,
        ])
    };
    // Either way the trap fires exactly when x == k.
    if cc == IntCC::Equal {
        g.b.ins().trapnz(cond, code);
    } else {
        g.b.ins().trapz(cond, code);
    }
}
