//! On-stack replacement derived from CLIF (`orc_cranelift::osr`): which
//! loops qualify, what their state is, and a frame that moves from a
//! checked loop to a published entry mid-loop computes what it would have.
//! The entries here are compiled by Cranelift too, so the test needs no
//! LLVM: what it checks is the transform, not the tier.

use std::sync::atomic::Ordering;

use cranelift_codegen::ir::{self, condcodes::IntCC, types, AbiParam, InstBuilder, UserFuncName};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_codegen::settings;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use orc_core::link::ObjectLinkingLayer;
use orc_core::{ExecutionSession, SymbolFlags, TieredFunctions};
use orc_cranelift::osr::{add_osr_checks, osr_entry, osr_loops};
use orc_cranelift::{
    testcase_name_resolver, CraneliftCompiler, CraneliftConfig, CraneliftLayer, FunctionModule,
};
use target_lexicon::PointerWidth;

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

fn frontend_config() -> TargetFrontendConfig {
    TargetFrontendConfig {
        default_call_conv: CallConv::SystemV,
        pointer_width: PointerWidth::U64,
        page_size_align_log2: 12,
    }
}

fn verify(func: &ir::Function) {
    let flags = settings::Flags::new(settings::builder());
    if let Err(e) = cranelift_codegen::verify_function(func, &flags) {
        panic!("{}\n{e}", func.display());
    }
}

/// `sum(n) = k + sum over i < n of i * k`, with `k = 3n` computed before
/// the loop and used both in it and after it.
fn sum_function() -> ir::Function {
    let mut sig = ir::Signature::new(CallConv::SystemV);
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I64));
    let mut func = ir::Function::with_name_signature(UserFuncName::testcase("sum"), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    let header = b.create_block();
    let body = b.create_block();
    let exit = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.append_block_param(header, types::I64); // i
    b.append_block_param(header, types::I64); // acc
    b.switch_to_block(entry);
    let n = b.block_params(entry)[0];
    let k = b.ins().imul_imm_s(n, 3);
    let zero = b.ins().iconst(types::I64, 0);
    b.ins().jump(header, &[zero.into(), zero.into()]);
    b.switch_to_block(header);
    let i = b.block_params(header)[0];
    let acc = b.block_params(header)[1];
    let more = b.ins().icmp(IntCC::SignedLessThan, i, n);
    b.ins().brif(more, body, &[], exit, &[]);
    b.switch_to_block(body);
    let term = b.ins().imul(i, k);
    let acc2 = b.ins().iadd(acc, term);
    let i2 = b.ins().iadd_imm_s(i, 1);
    b.ins().jump(header, &[i2.into(), acc2.into()]);
    b.switch_to_block(exit);
    let result = b.ins().iadd(acc, k);
    b.ins().return_(&[result]);
    b.seal_all_blocks();
    b.finalize(frontend_config());
    func
}

fn expected_sum(n: i64) -> i64 {
    3 * n + (0..n).map(|i| i * 3 * n).sum::<i64>()
}

#[test]
fn a_loop_state_is_its_header_parameters_then_what_the_loop_uses_from_before_it() {
    let func = sum_function();
    let loops = osr_loops(&func);
    assert_eq!(loops.len(), 1, "{}", func.display());
    let header = loops[0].header;
    let params = func.dfg.block_params(header);
    assert_eq!(&loops[0].state[..2], params);
    // Then n (the loop's bound) and k, in value order.
    let n = func.dfg.block_params(func.layout.entry_block().unwrap())[0];
    assert_eq!(loops[0].state.len(), 4);
    assert_eq!(loops[0].state[2], n);
    let entry = osr_entry(&func, &loops[0]);
    verify(&entry);
    assert_eq!(entry.signature.params.len(), 4);
    assert!(
        entry.layout.blocks().count() < func.layout.blocks().count() + 1,
        "the old entry block is gone"
    );
    let mut checked = func.clone();
    add_osr_checks(&mut checked, &loops, 0x1000);
    verify(&checked);
}

#[test]
fn an_inner_loop_using_what_its_outer_loop_redefines_does_not_qualify_but_the_outer_loop_does() {
    // for i < n { for j < i { acc += j } }: the inner loop reads `i`, a
    // parameter of the outer header, which the inner header reaches.
    let mut sig = ir::Signature::new(CallConv::SystemV);
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I64));
    let mut func = ir::Function::with_name_signature(UserFuncName::testcase("tri"), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let [entry, outer, inner_pre, inner, inner_body, outer_latch, exit] =
        std::array::from_fn(|_| b.create_block());
    b.append_block_params_for_function_params(entry);
    for _ in 0..2 {
        b.append_block_param(outer, types::I64); // i, acc
    }
    for _ in 0..2 {
        b.append_block_param(inner, types::I64); // j, acc
    }
    b.append_block_param(outer_latch, types::I64); // acc
    b.switch_to_block(entry);
    let n = b.block_params(entry)[0];
    let zero = b.ins().iconst(types::I64, 0);
    b.ins().jump(outer, &[zero.into(), zero.into()]);
    b.switch_to_block(outer);
    let (i, acc) = (b.block_params(outer)[0], b.block_params(outer)[1]);
    let more = b.ins().icmp(IntCC::SignedLessThan, i, n);
    b.ins().brif(more, inner_pre, &[], exit, &[]);
    b.switch_to_block(inner_pre);
    let zero2 = b.ins().iconst(types::I64, 0);
    b.ins().jump(inner, &[zero2.into(), acc.into()]);
    b.switch_to_block(inner);
    let (j, iacc) = (b.block_params(inner)[0], b.block_params(inner)[1]);
    let more = b.ins().icmp(IntCC::SignedLessThan, j, i);
    b.ins()
        .brif(more, inner_body, &[], outer_latch, &[iacc.into()]);
    b.switch_to_block(inner_body);
    let iacc2 = b.ins().iadd(iacc, j);
    let j2 = b.ins().iadd_imm_s(j, 1);
    b.ins().jump(inner, &[j2.into(), iacc2.into()]);
    b.switch_to_block(outer_latch);
    let acc2 = b.block_params(outer_latch)[0];
    let i2 = b.ins().iadd_imm_s(i, 1);
    b.ins().jump(outer, &[i2.into(), acc2.into()]);
    b.switch_to_block(exit);
    b.ins().return_(&[acc]);
    b.seal_all_blocks();
    b.finalize(frontend_config());
    let loops = osr_loops(&func);
    assert_eq!(loops.len(), 1, "{}", func.display());
    assert_eq!(loops[0].header, outer);
    verify(&osr_entry(&func, &loops[0]));
}

#[test]
fn a_function_with_a_stack_slot_has_no_eligible_loops() {
    let mut func = sum_function();
    func.create_sized_stack_slot(ir::StackSlotData::new(
        ir::StackSlotKind::ExplicitSlot,
        8,
        3,
    ));
    assert!(osr_loops(&func).is_empty());
}

/// Runs `sum` with its checks against an entry published before the call
/// (the frame moves at the first header visit) or never published.
fn run_sum(n: i64, publish: bool) -> (i64, u64) {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let layer = CraneliftLayer::new(
        CraneliftCompiler::new(CraneliftConfig::default()).unwrap(),
        ObjectLinkingLayer::new(&es),
    );
    let func = sum_function();
    let loops = osr_loops(&func);
    let slots = TieredFunctions::osr_slots(loops.len()).unwrap();
    let mut checked = func.clone();
    add_osr_checks(&mut checked, &loops, slots.as_ptr() as u64);
    let module = FunctionModule::new("sum", testcase_name_resolver())
        .with_function("sum", checked, CALLABLE)
        .with_function("sum$osr0", osr_entry(&func, &loops[0]), CALLABLE);
    layer.add(&jd, Box::new(module), None).unwrap();
    let entry = jd.lookup_symbol("sum$osr0").unwrap().addr;
    if publish {
        slots[0].entry.store(entry.value(), Ordering::Release);
    }
    let addr = jd.lookup_symbol("sum").unwrap().addr;
    // SAFETY: `sum` is compiled from `sum_function`'s `i64 -> i64`
    // System V signature; its code and the slots it reads live until
    // the session ends below.
    let f: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    let result = f(n);
    let transfers = slots[0].transfers.load(Ordering::Relaxed);
    es.end_session().unwrap();
    (result, transfers)
}

#[test]
fn a_frame_moves_to_a_published_entry_and_computes_the_same_result() {
    for n in [0, 1, 7, 1000] {
        assert_eq!(
            run_sum(n, false),
            (expected_sum(n), 0),
            "n = {n}, never published"
        );
        assert_eq!(run_sum(n, true), (expected_sum(n), 1), "n = {n}, published");
    }
}
