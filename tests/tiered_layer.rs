//! The tiered layer (`Jit::tiered`) with a frontend that writes only
//! Cranelift IR: the same functions under tier 0, tier 1 (translated to
//! LLVM IR) and adaptive tiering give the same results, lazily and
//! eagerly; redefinition reaches compiled callers in every tier; hot
//! functions are promoted; a frame looping in tier 0 moves to tier 1
//! (on-stack replacement derived from the CLIF).

use orc::core::{CodeTier, FuncId};
use orc::cranelift::codegen::ir::{
    self, condcodes::IntCC, types, AbiParam, InstBuilder, UserFuncName,
};
use orc::cranelift::codegen::isa::{CallConv, TargetFrontendConfig};
use orc::cranelift::frontend::{FunctionBuilder, FunctionBuilderContext};
use orc::{Jit, Tier, TieredLayer};

fn frontend_config() -> TargetFrontendConfig {
    TargetFrontendConfig {
        default_call_conv: CallConv::SystemV,
        pointer_width: target_lexicon::PointerWidth::U64,
        page_size_align_log2: 12,
    }
}

fn i64_sig(params: usize) -> ir::Signature {
    let mut sig = ir::Signature::new(CallConv::SystemV);
    sig.params = vec![AbiParam::new(types::I64); params];
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

/// `x * x` (or `x * x * x` when `cube`).
fn power(cube: bool) -> ir::Function {
    let mut func = ir::Function::with_name_signature(UserFuncName::default(), i64_sig(1));
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let x = b.block_params(entry)[0];
    let mut y = b.ins().imul(x, x);
    if cube {
        y = b.ins().imul(y, x);
    }
    b.ins().return_(&[y]);
    b.seal_all_blocks();
    b.finalize(frontend_config());
    func
}

/// `sum over i < n of callee(i)`, calling `callee` through the layer.
fn sum_of(layer: &TieredLayer, callee: FuncId) -> ir::Function {
    let mut func = ir::Function::with_name_signature(UserFuncName::default(), i64_sig(1));
    let name = func.declare_imported_user_function(layer.func_name(callee));
    let sig = func.import_signature(i64_sig(1));
    let callee = func.import_function(ir::ExtFuncData {
        name: ir::ExternalName::User(name),
        signature: sig,
        colocated: false,
        patchable: false,
    });
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let [entry, header, body, exit] = std::array::from_fn(|_| b.create_block());
    b.append_block_params_for_function_params(entry);
    b.append_block_param(header, types::I64);
    b.append_block_param(header, types::I64);
    b.switch_to_block(entry);
    let n = b.block_params(entry)[0];
    let zero = b.ins().iconst(types::I64, 0);
    b.ins().jump(header, &[zero.into(), zero.into()]);
    b.switch_to_block(header);
    let (i, acc) = (b.block_params(header)[0], b.block_params(header)[1]);
    let more = b.ins().icmp(IntCC::SignedLessThan, i, n);
    b.ins().brif(more, body, &[], exit, &[]);
    b.switch_to_block(body);
    let call = b.ins().call(callee, &[i]);
    let term = b.inst_results(call)[0];
    let acc2 = b.ins().iadd(acc, term);
    let i2 = b.ins().iadd_imm_s(i, 1);
    b.ins().jump(header, &[i2.into(), acc2.into()]);
    b.switch_to_block(exit);
    b.ins().return_(&[acc]);
    b.seal_all_blocks();
    b.finalize(frontend_config());
    func
}

fn jit(tier: Tier, lazy: bool, threshold: u64) -> Jit {
    Jit::builder()
        .tier(tier)
        .lazy(lazy)
        .tier_threshold(threshold)
        .tier_up_threads(0)
        .build()
        .unwrap()
}

fn call(jit: &Jit, id: FuncId, x: i64) -> i64 {
    let addr = jit.tiered().address(id).unwrap();
    let _inside = jit.enter();
    // SAFETY: every function these tests call through the layer is built
    // with `i64_sig(1)`, System V; the JIT (and so the code) outlives the
    // call, and the pin keeps released code mapped while it runs.
    let f: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    f(x)
}

fn sum_of_powers(n: i64, cube: bool) -> i64 {
    (0..n).map(|i| if cube { i * i * i } else { i * i }).sum()
}

const TIERS: [Tier; 3] = [Tier::Zero, Tier::One, Tier::Adaptive];

#[test]
fn functions_calling_each_other_give_the_same_results_in_every_tier() {
    for tier in TIERS {
        for lazy in [true, false] {
            let jit = jit(tier, lazy, 50);
            let layer = jit.tiered();
            let sq = layer.declare("sq").unwrap();
            let sum = layer.declare("sum_sq").unwrap();
            let sum_fn = sum_of(layer, sq);
            layer
                .define(vec![(sq, power(false)), (sum, sum_fn)])
                .unwrap();
            for n in [0, 1, 2, 10, 100, 1000] {
                assert_eq!(
                    call(&jit, sum, n),
                    sum_of_powers(n, false),
                    "{tier:?}, lazy {lazy}, n = {n}"
                );
            }
        }
    }
}

#[test]
fn a_redefinition_reaches_compiled_callers_in_every_tier() {
    for tier in TIERS {
        let jit = jit(tier, true, 50);
        let layer = jit.tiered();
        let p = layer.declare("p").unwrap();
        let sum = layer.declare("sum_p").unwrap();
        let sum_fn = sum_of(layer, p);
        layer
            .define(vec![(p, power(false)), (sum, sum_fn)])
            .unwrap();
        assert_eq!(call(&jit, sum, 100), sum_of_powers(100, false), "{tier:?}");
        layer.define(vec![(p, power(true))]).unwrap();
        assert_eq!(layer.functions().version(p).unwrap(), 1);
        assert_eq!(call(&jit, sum, 100), sum_of_powers(100, true), "{tier:?}");
        assert_eq!(call(&jit, p, 7), 343, "{tier:?}");
    }
}

#[test]
fn removed_functions_release_their_bodies_and_stubs_and_free_their_names() {
    for tier in TIERS {
        let jit = jit(tier, true, 20);
        let layer = jit.tiered();
        let stubs = || jit.lazy_reexports().stubs().n_live();
        let before = stubs();
        let mut sums = Vec::new();
        for round in 0..3 {
            let sq = layer.declare("sq").unwrap();
            let sum = layer.declare("sum_sq").unwrap();
            let sum_fn = sum_of(layer, sq);
            layer
                .define(vec![(sq, power(round % 2 == 1)), (sum, sum_fn)])
                .unwrap();
            // Hot enough to be promoted under adaptive tiering.
            sums.push(call(&jit, sum, 200));
            assert_eq!(layer.stats().len(), 2, "{tier:?}");
            assert!(stubs() > before, "{tier:?}");
            layer.remove(&[sq, sum]).unwrap();
            assert!(layer.stats().is_empty(), "{tier:?}");
            assert_eq!(stubs(), before, "{tier:?}: the stubs are released");
            assert!(layer.address(sq).is_err(), "{tier:?}");
            assert!(!layer.functions().is_defined(sum).unwrap(), "{tier:?}");
            // Removing again is harmless; an unknown id is an error.
            layer.remove(&[sq]).unwrap();
            assert!(layer.remove(&[FuncId::from_index(9999)]).is_err());
        }
        assert_eq!(
            sums,
            [
                sum_of_powers(200, false),
                sum_of_powers(200, true),
                sum_of_powers(200, false)
            ],
            "{tier:?}"
        );
    }
}

#[test]
fn hot_functions_are_promoted_to_tier_1_under_adaptive_tiering() {
    let jit = jit(Tier::Adaptive, true, 100);
    let layer = jit.tiered();
    let sq = layer.declare("sq").unwrap();
    let sum = layer.declare("sum_sq").unwrap();
    let sum_fn = sum_of(layer, sq);
    layer
        .define(vec![(sq, power(false)), (sum, sum_fn)])
        .unwrap();
    let tiers = |jit: &Jit| -> Vec<Option<CodeTier>> {
        jit.tiered().stats().iter().map(|s| s.tier).collect()
    };
    assert_eq!(call(&jit, sum, 3), sum_of_powers(3, false));
    assert_eq!(tiers(&jit), [Some(CodeTier::Zero); 2], "nothing hot yet");
    // Promotions run inside the trip (no tier-up threads).
    assert_eq!(call(&jit, sum, 5000), sum_of_powers(5000, false));
    assert_eq!(tiers(&jit), [Some(CodeTier::One); 2]);
    assert_eq!(call(&jit, sum, 5000), sum_of_powers(5000, false));
    assert!(layer.untranslated().is_empty());
}

#[test]
fn a_frame_looping_in_tier_0_moves_to_tier_1_code_at_its_next_iteration() {
    let jit = jit(Tier::Adaptive, true, 1000);
    let layer = jit.tiered();
    let sq = layer.declare("sq").unwrap();
    let sum = layer.declare("sum_sq").unwrap();
    let sum_fn = sum_of(layer, sq);
    layer
        .define(vec![(sq, power(false)), (sum, sum_fn)])
        .unwrap();
    // One call: the loop turns `sum_sq` hot, the promotion (inside the
    // trip) publishes its loop's entry, and the same frame moves there.
    let n = 200_000;
    assert_eq!(call(&jit, sum, n), sum_of_powers(n, false));
    let stats = layer.stats();
    assert_eq!(stats[sum.index() as usize].tier, Some(CodeTier::One));
    assert_eq!(stats[sum.index() as usize].osr_transfers, 1, "{stats:?}");
}

/// `x + 1`, with an (unused) imported signature in the `tail` convention
/// with two integer results, which Cranelift returns in `rax` and `rcx`
/// and LLVM's C convention in `rax` and `rdx`: the translation refuses it.
fn untranslatable() -> ir::Function {
    let mut func = ir::Function::with_name_signature(UserFuncName::default(), i64_sig(1));
    let mut two = i64_sig(1);
    two.call_conv = CallConv::Tail;
    two.returns = vec![AbiParam::new(types::I64); 2];
    func.import_signature(two);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let x = b.block_params(entry)[0];
    let y = b.ins().iadd_imm_s(x, 1);
    b.ins().return_(&[y]);
    b.seal_all_blocks();
    b.finalize(frontend_config());
    func
}

#[test]
fn a_function_the_translation_refuses_stays_in_tier_0_and_is_named() {
    let jit = jit(Tier::Adaptive, true, 10);
    let layer = jit.tiered();
    let odd = layer.declare("odd").unwrap();
    let sq = layer.declare("sq").unwrap();
    layer
        .define(vec![(odd, untranslatable()), (sq, power(false))])
        .unwrap();
    for x in 0..100 {
        assert_eq!(call(&jit, odd, x), x + 1);
        assert_eq!(call(&jit, sq, x), x * x);
    }
    let stats = layer.stats();
    assert_eq!(stats[odd.index() as usize].tier, Some(CodeTier::Zero));
    assert_eq!(stats[sq.index() as usize].tier, Some(CodeTier::One));
    let untranslated = layer.untranslated();
    assert_eq!(untranslated.len(), 1, "{untranslated:?}");
    assert_eq!(untranslated[0].0, "odd");
    assert!(
        untranslated[0]
            .1
            .contains("tail with 2 integer result registers"),
        "{untranslated:?}"
    );
}

#[test]
fn under_tier_1_an_untranslatable_function_is_an_error_naming_what() {
    let jit = jit(Tier::One, false, 10);
    let layer = jit.tiered();
    let odd = layer.declare("odd").unwrap();
    let err = layer.define(vec![(odd, untranslatable())]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("odd") && message.contains("tail with 2 integer result registers"),
        "{message}"
    );
    // The JIT goes on: another function still compiles and runs.
    let sq = layer.declare("sq").unwrap();
    layer.define(vec![(sq, power(false))]).unwrap();
    assert_eq!(call(&jit, sq, 9), 81);
}

/// A frontend's own tier-1 lowering: `x * x + 1000`, so the test can tell
/// its code from the translation's.
struct Marked;

impl orc::Tier1Lowering for Marked {
    fn lower(&self, functions: &[(FuncId, u32, String)]) -> Option<Box<dyn orc::llvm::LlvmModule>> {
        let symbols: Vec<String> = functions.iter().map(|(_, _, s)| s.clone()).collect();
        let flags = orc::core::SymbolFlags::EXPORTED | orc::core::SymbolFlags::CALLABLE;
        let module = orc::llvm::FnLlvmModule::new(
            symbols[0].clone(),
            symbols.iter().map(|s| (s.clone(), flags)).collect(),
            move |ctx| {
                let m = ctx.create_module("marked");
                let i64t = ctx.i64_type();
                let b = ctx.create_builder();
                for symbol in &symbols {
                    let f = m.add_function(symbol, i64t.fn_type(&[i64t.into()], false), None);
                    b.position_at_end(ctx.append_basic_block(f, "entry"));
                    let x = f.get_nth_param(0).unwrap().into_int_value();
                    let sq = b.build_int_mul(x, x, "sq").map_err(|e| e.to_string())?;
                    let marked = b
                        .build_int_add(sq, i64t.const_int(1000, false), "marked")
                        .map_err(|e| e.to_string())?;
                    b.build_return(Some(&marked)).map_err(|e| e.to_string())?;
                }
                Ok(m)
            },
        );
        Some(module)
    }
}

#[test]
fn a_frontend_lowering_hook_replaces_the_translation_for_tier_1_bodies() {
    // Tier 1: the hook's code from the start.
    let jit = jit(Tier::One, true, 10);
    let layer = jit.tiered();
    layer.set_tier1_lowering(Some(std::sync::Arc::new(Marked)));
    let sq = layer.declare("sq").unwrap();
    layer.define(vec![(sq, power(false))]).unwrap();
    assert_eq!(call(&jit, sq, 5), 1025);

    // Adaptive: tier-0 code (the CLIF) until promoted, then the hook's.
    let jit = jit_adaptive_with_hook();
    let layer = jit.tiered();
    let sq = layer.declare("sq").unwrap();
    layer.define(vec![(sq, power(false))]).unwrap();
    assert_eq!(call(&jit, sq, 5), 25);
    for _ in 0..20 {
        call(&jit, sq, 1);
    }
    assert_eq!(layer.stats()[0].tier, Some(CodeTier::One));
    assert_eq!(call(&jit, sq, 5), 1025);
}

fn jit_adaptive_with_hook() -> Jit {
    let jit = jit(Tier::Adaptive, true, 10);
    jit.tiered()
        .set_tier1_lowering(Some(std::sync::Arc::new(Marked)));
    jit
}
