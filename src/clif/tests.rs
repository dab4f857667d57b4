//! `ClifProgram` through its API: calls with every kind of value through
//! the trampoline, one trampoline per signature, argument checking, file
//! settings, and functions a tier cannot compile, under tiers 0 and 1.

use orc_clif::{ClifFile, DataValue};
use orc_cranelift::codegen::ir::immediates::{Ieee32, Ieee64};
use orc_cranelift::codegen::ir::types;
use orc_cranelift::OptLevel;

use super::{ClifProgram, ClifRunError, Unavailable};
use crate::{Jit, Tier};

const PROGRAM: &str = "
function %mixed(i128, i32x4, f64) -> i128, i32x4, f64 tail {
block0(v0: i128, v1: i32x4, v2: f64):
    v3 = iconst.i64 1
    v4 = uextend.i128 v3
    v5 = iadd v0, v4
    v6 = iadd v1, v1
    v7 = fneg v2
    return v5, v6, v7
}

function %add(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = iadd v0, v1
    return v2
}

function %sub(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = isub v0, v1
    return v2
}

function %abs_via_libc(i64) -> i64 {
    fn0 = %labs(i64) -> i64 system_v
block0(v0: i64):
    v1 = call fn0(v0)
    return v1
}

function %spin(i64) -> i64 tail {
    fn0 = %spin(i64) -> i64 tail
block0(v0: i64):
    brif v0, block1, block2
block1:
    v1 = iconst.i64 1
    v2 = isub v0, v1
    return_call fn0(v2)
block2:
    return v0
}
";

fn load(text: &str, tier: Tier) -> ClifProgram {
    let file = ClifFile::parse("test.clif", text).unwrap();
    ClifProgram::load(&file, Jit::builder().tier(tier)).unwrap()
}

fn call(
    program: &ClifProgram,
    symbol: &str,
    args: &[DataValue],
) -> Result<Vec<DataValue>, ClifRunError> {
    // SAFETY: the functions of these test programs compute on their
    // arguments only and do not trap for these arguments.
    unsafe { program.call(symbol, args) }
}

fn i32x4(lanes: [i32; 4]) -> DataValue {
    let mut bytes = [0u8; 16];
    for (chunk, lane) in bytes.chunks_exact_mut(4).zip(lanes) {
        chunk.copy_from_slice(&lane.to_le_bytes());
    }
    DataValue::V128(bytes)
}

#[test]
fn wide_vector_and_several_results_round_trip() {
    let program = load(PROGRAM, Tier::Zero);
    let got = call(
        &program,
        "mixed",
        &[
            DataValue::I128(u64::MAX.into()),
            i32x4([1, -2, i32::MAX, 0]),
            DataValue::F64(Ieee64::with_bits(0x7ff8_0000_0000_0005)),
        ],
    )
    .unwrap();
    assert_eq!(got[0], DataValue::I128(1 << 64));
    assert_eq!(got[1], i32x4([2, -4, -2, 0]));
    assert!(got[2].bitwise_eq(&DataValue::F64(Ieee64::with_bits(0xfff8_0000_0000_0005))));
}

#[test]
fn one_trampoline_per_signature() {
    let program = load(PROGRAM, Tier::Zero);
    let args = [DataValue::I64(7), DataValue::I64(5)];
    assert_eq!(
        call(&program, "add", &args).unwrap(),
        vec![DataValue::I64(12)]
    );
    assert_eq!(
        call(&program, "sub", &args).unwrap(),
        vec![DataValue::I64(2)]
    );
    assert_eq!(
        call(&program, "add", &args).unwrap(),
        vec![DataValue::I64(12)]
    );
    let stats = program.jit().cranelift_layer().stats();
    let trampolines = stats
        .functions
        .iter()
        .filter(|f| f.name.contains("trampoline"))
        .count();
    assert_eq!(trampolines, 1);
}

#[test]
fn host_functions_are_called_by_name() {
    for tier in [Tier::Zero, Tier::One] {
        let program = load(PROGRAM, tier);
        let got = call(&program, "abs_via_libc", &[DataValue::I64(-9)]).unwrap();
        assert_eq!(got, vec![DataValue::I64(9)], "tier {tier}");
    }
}

#[test]
fn arguments_are_checked_against_the_signature() {
    let program = load(PROGRAM, Tier::Zero);
    let err = call(&program, "add", &[DataValue::I64(1)]).unwrap_err();
    assert!(
        matches!(&err, ClifRunError::Values { symbol, .. } if symbol == "add"),
        "{err:?}"
    );
    let err = call(&program, "add", &[DataValue::I32(1), DataValue::I64(1)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function add: argument 0 has type i32, the signature declares i64"
    );
    let err = call(&program, "missing", &[]).unwrap_err();
    assert!(
        matches!(&err, ClifRunError::NoFunction(s) if s == "missing"),
        "{err:?}"
    );
}

#[test]
fn what_a_tier_cannot_compile_is_an_error_naming_it() {
    let program = load(PROGRAM, Tier::Zero);
    let err = call(&program, "spin", &[DataValue::I64(3)]).unwrap_err();
    match &err {
        ClifRunError::NotCompiled {
            symbol,
            reason: Unavailable::Tier0(reason),
        } => {
            assert_eq!(symbol, "spin");
            assert!(reason.contains("return_call"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The rest of the program still runs.
    assert_eq!(
        call(&program, "add", &[DataValue::I64(1), DataValue::I64(2)]).unwrap(),
        vec![DataValue::I64(3)]
    );
}

#[test]
fn tier1_runs_what_it_translates_and_names_what_it_does_not() {
    let program = load(PROGRAM, Tier::One);
    assert_eq!(
        call(&program, "sub", &[DataValue::I64(1), DataValue::I64(2)]).unwrap(),
        vec![DataValue::I64(-1)]
    );
    assert!(program.jit().llvm_layer_if_created().is_some());
    let file = ClifFile::parse("test.clif", PROGRAM).unwrap();
    for func in &file.functions {
        let translatable = orc_llvm::check_translatable(&func.func, &func.symbol).is_ok();
        let args: Vec<DataValue> = func
            .func
            .signature
            .params
            .iter()
            .map(|p| match p.value_type {
                types::I64 => DataValue::I64(3),
                types::I128 => DataValue::I128(3),
                types::F64 => DataValue::F64(Ieee64::with_float(1.5)),
                _ => i32x4([1, 2, 3, 4]),
            })
            .collect();
        let res = call(&program, &func.symbol, &args);
        match res {
            Ok(_) => assert!(translatable, "{} ran but is not translatable", func.symbol),
            Err(ClifRunError::NotCompiled {
                reason: Unavailable::Tier1(e),
                ..
            }) => {
                assert!(!translatable, "{}: {e}", func.symbol);
                assert!(e.to_string().contains("cannot translate"), "{e}");
            }
            Err(e) => panic!("{}: {e}", func.symbol),
        }
    }
}

const NAN_CANON: &str = "set enable_nan_canonicalization=true
function %mul(f32, f32) -> f32 {
block0(v0: f32, v1: f32):
    v2 = fmul v0, v1
    return v2
}
";

#[test]
fn nan_canonicalization_applies_in_both_tiers() {
    for tier in [Tier::Zero, Tier::One] {
        let program = load(NAN_CANON, tier);
        let nan = DataValue::F32(Ieee32::with_bits(0xffc0_1234));
        let got = call(
            &program,
            "mul",
            &[nan, DataValue::F32(Ieee32::with_float(2.0))],
        )
        .unwrap();
        assert!(
            got[0].bitwise_eq(&DataValue::F32(Ieee32::with_bits(0x7fc0_0000))),
            "tier {tier}: {got:?}"
        );
    }
}

#[test]
fn the_files_opt_level_applies_unless_the_builder_sets_one() {
    let text = "set opt_level=none\nfunction %f() {\nblock0:\n    return\n}\n";
    let file = ClifFile::parse("o.clif", text).unwrap();
    let program = ClifProgram::load(&file, Jit::builder().tier(Tier::Zero)).unwrap();
    assert_eq!(program.jit().config().opt_level, Some(OptLevel::None));
    let builder = Jit::builder()
        .tier(Tier::Zero)
        .opt_level(OptLevel::SpeedAndSize);
    let program = ClifProgram::load(&file, builder).unwrap();
    assert_eq!(
        program.jit().config().opt_level,
        Some(OptLevel::SpeedAndSize)
    );
}

#[test]
fn adaptive_is_refused_until_wired() {
    let file = ClifFile::parse("a.clif", PROGRAM).unwrap();
    let err = ClifProgram::load(&file, Jit::builder().tier(Tier::Adaptive)).unwrap_err();
    assert!(matches!(err, ClifRunError::AdaptiveNotYet), "{err:?}");
}

#[test]
fn what_cranelift_would_panic_on_is_reported_per_function() {
    let text = "
function %wide(i128) -> i128 system_v {
block0(v0: i128):
    return v0
}

function %narrow(f32) -> i8 {
block0(v0: f32):
    v1 = fcvt_to_sint_sat.i8 v0
    return v1
}

function %fine(i32) -> i32 {
block0(v0: i32):
    return v0
}
";
    let program = load(text, Tier::Zero);
    for (symbol, args, needle) in [
        (
            "wide",
            vec![DataValue::I128(1)],
            "enable_llvm_abi_extensions",
        ),
        (
            "narrow",
            vec![DataValue::F32(Ieee32::with_float(1.0))],
            "fcvt_to_sint_sat to i8",
        ),
    ] {
        let err = call(&program, symbol, &args).unwrap_err();
        assert!(
            matches!(&err, ClifRunError::NotCompiled { reason: Unavailable::Tier0(r), .. } if r.contains(needle)),
            "{symbol}: {err:?}"
        );
    }
    assert_eq!(
        call(&program, "fine", &[DataValue::I32(4)]).unwrap(),
        vec![DataValue::I32(4)]
    );
}

#[test]
fn a_bare_run_asks_for_a_non_zero_result() {
    let text = "
function %zero() -> i32 {
block0:
    v0 = iconst.i32 0
    return v0
}
; run

function %one() -> i64 {
block0:
    v0 = iconst.i64 1
    return v0
}
; run
";
    let file = ClifFile::parse("bare.clif", text).unwrap();
    let program = ClifProgram::load(&file, Jit::builder().tier(Tier::Zero)).unwrap();
    let outcome = |symbol: &str| {
        let func = file.function(symbol).unwrap();
        // SAFETY: both functions return a constant.
        unsafe { program.run_directive(func, &func.directives[0]) }
    };
    assert!(matches!(outcome("zero"), super::Outcome::Failed { .. }));
    assert!(matches!(outcome("one"), super::Outcome::Passed));
}
