//! Float instructions translated to LLVM IR agree with Cranelift on edge
//! values (NaN, signed zeros, infinities, rounding ties, conversion
//! bounds), including the trapping and saturating conversions and NaN
//! canonicalization.

mod translate_support;

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use orc_llvm::TranslateConfig;
use translate_support::Harness;

fn f32s() -> Vec<f32> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        1.5,
        2.5,
        -2.5,
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        f32::MAX,
        2147483520.0,
        2147483648.0,
        -2147483648.0,
        -2147483904.0,
        4294967040.0,
        4294967296.0,
        -0.9,
        f32::from_bits(0x7fa0_0001),
    ]
}

fn f64s() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.5,
        -3.5,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        2147483647.9,
        2147483648.0,
        -2147483648.9,
        -2147483649.0,
        4294967295.5,
        4294967296.0,
        9223372036854774784.0,
        9223372036854775808.0,
        -9223372036854775808.0,
        18446744073709549568.0,
        18446744073709551616.0,
        -0.99,
        f64::from_bits(0x7ff4_0000_0000_0001),
    ]
}

fn f32v(x: f32) -> DataValue {
    DataValue::F32(Ieee32::with_bits(x.to_bits()))
}
fn f64v(x: f64) -> DataValue {
    DataValue::F64(Ieee64::with_bits(x.to_bits()))
}

fn pairs<T: Copy>(xs: &[T], f: impl Fn(T) -> DataValue) -> Vec<Vec<DataValue>> {
    xs.iter()
        .flat_map(|&a| xs.iter().map(|&b| vec![f(a), f(b)]).collect::<Vec<_>>())
        .collect()
}

fn text_for(ty: &str) -> String {
    let mut t = String::new();
    for op in ["fadd", "fsub", "fmul", "fdiv", "fmin", "fmax", "fcopysign"] {
        t += &format!("function %{op}_{ty}({ty}, {ty}) -> {ty} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = {op} v0, v1\n    return v2\n}}\n");
    }
    for op in ["sqrt", "fneg", "fabs", "ceil", "floor", "trunc", "nearest"] {
        t += &format!("function %{op}_{ty}({ty}) -> {ty} {{\nblock0(v0: {ty}):\n    v1 = {op} v0\n    return v1\n}}\n");
    }
    t += &format!("function %fma_{ty}({ty}, {ty}) -> {ty} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = fma v0, v1, v0\n    return v2\n}}\n");
    for cc in [
        "ord", "uno", "eq", "ne", "one", "ueq", "lt", "le", "gt", "ge", "ult", "ule", "ugt", "uge",
    ] {
        t += &format!("function %fcmp_{cc}_{ty}({ty}, {ty}) -> i8 {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = fcmp {cc} v0, v1\n    return v2\n}}\n");
    }
    for int in ["i8", "i16", "i32", "i64"] {
        for op in [
            "fcvt_to_sint",
            "fcvt_to_uint",
            "fcvt_to_sint_sat",
            "fcvt_to_uint_sat",
        ] {
            if int != "i32" && int != "i64" && !op.ends_with("sat") {
                continue;
            }
            t += &format!("function %{op}_{int}_{ty}({ty}) -> {int} {{\nblock0(v0: {ty}):\n    v1 = {op}.{int} v0\n    return v1\n}}\n");
        }
    }
    t
}

fn run(ty: &str, inputs2: Vec<Vec<DataValue>>, config: TranslateConfig) {
    let h = Harness::with_config(&text_for(ty), config);
    let inputs1: Vec<Vec<DataValue>> = inputs2
        .iter()
        .filter(|v| v[1] == v[0] || matches!(v[1], DataValue::F32(_) | DataValue::F64(_)))
        .map(|v| vec![v[0].clone()])
        .collect::<Vec<_>>();
    let mut inputs1 = inputs1;
    inputs1.dedup_by(|a, b| a == b);
    for f in h.funcs.clone() {
        let name = translate_support::symbol(&f);
        if f.signature.params.len() == 2 {
            h.check(&name, &inputs2);
        } else {
            h.check(&name, &inputs1);
        }
    }
    h.end();
}

#[test]
fn f32_operations_agree() {
    run("f32", pairs(&f32s(), f32v), TranslateConfig::default());
}

#[test]
fn f64_operations_agree() {
    run("f64", pairs(&f64s(), f64v), TranslateConfig::default());
}

#[test]
fn canonical_nans_are_bit_exact() {
    let config = TranslateConfig {
        nan_canonicalization: true,
    };
    let text = "
function %f(f64, f64) -> f64, f64 {
block0(v0: f64, v1: f64):
    v2 = fadd v0, v1
    v3 = sqrt v1
    return v2, v3
}
function %g(f32, f32) -> f32 {
block0(v0: f32, v1: f32):
    v2 = fmul v0, v1
    return v2
}
";
    let h = Harness::with_config(text, config);
    let nan_payload = f64::from_bits(0x7ff4_0000_0000_0001);
    let f32_payload = f32::from_bits(0xffc0_1234);
    for args in [
        vec![f64v(nan_payload), f64v(1.0)],
        vec![f64v(1.0), f64v(-1.0)],
        vec![f64v(-f64::NAN), f64v(nan_payload)],
    ] {
        match h.run_native("f", true, &args) {
            translate_support::Outcome::Values(v) => {
                for x in v {
                    if let DataValue::F64(x) = x {
                        if x.is_nan() {
                            assert_eq!(x.bits(), 0x7ff8_0000_0000_0000);
                        }
                    }
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    match h.run_native("g", true, &[f32v(f32_payload), f32v(2.0)]) {
        translate_support::Outcome::Values(v) => match v.as_slice() {
            [DataValue::F32(x)] => assert_eq!(x.bits(), 0x7fc0_0000),
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
    // Every NaN the translation returns is canonical, and the other values
    // are Cranelift's.
    let inputs = pairs(&f64s(), f64v);
    let canon = h.try_native("f", true, &inputs).unwrap();
    for (args, out) in inputs.iter().zip(canon) {
        let translate_support::Outcome::Values(v) = out else {
            panic!("f{args:?} did not return");
        };
        for x in &v {
            if let DataValue::F64(x) = x {
                assert!(
                    !x.is_nan() || x.bits() == 0x7ff8_0000_0000_0000,
                    "f{args:?} = {v:?}"
                );
            }
        }
    }
    h.check("f", &inputs);
    h.end();
}

#[test]
fn conversions_between_widths_and_ints_agree() {
    let text = "
function %promote(f32) -> f64 {
block0(v0: f32):
    v1 = fpromote.f64 v0
    return v1
}
function %demote(f64) -> f32 {
block0(v0: f64):
    v1 = fdemote.f32 v0
    return v1
}
function %from_ints(i64, i8) -> f64, f32 {
block0(v0: i64, v1: i8):
    v2 = fcvt_from_sint.f64 v0
    v3 = fcvt_from_uint.f32 v0
    v4 = fcvt_from_uint.f64 v1
    v5 = fcvt_from_sint.f32 v1
    v6 = fadd v2, v4
    v7 = fadd v3, v5
    return v6, v7
}
function %bits(f64, f32) -> i64, i32 {
block0(v0: f64, v1: f32):
    v2 = bitcast.i64 v0
    v3 = bitcast.i32 v1
    return v2, v3
}
function %fbits(f64, f64) -> f64 {
block0(v0: f64, v1: f64):
    v2 = band v0, v1
    v3 = bor v2, v1
    v4 = bxor v3, v0
    v5 = bnot v4
    v6 = bitselect v0, v5, v1
    return v6
}
function %consts() -> f64, f32 {
block0:
    v0 = f64const -0x1.8p3
    v1 = f32const +Inf
    return v0, v1
}
";
    let h = Harness::new(text);
    h.check(
        "promote",
        &f32s()
            .into_iter()
            .map(|x| vec![f32v(x)])
            .collect::<Vec<_>>(),
    );
    h.check(
        "demote",
        &f64s()
            .into_iter()
            .map(|x| vec![f64v(x)])
            .collect::<Vec<_>>(),
    );
    let ints = [0i64, 1, -1, i64::MIN, i64::MAX, 1 << 53, (1 << 53) + 1, 300];
    let mut inputs = Vec::new();
    for a in ints {
        for b in [0i8, 1, -1, i8::MIN, i8::MAX] {
            inputs.push(vec![DataValue::I64(a), DataValue::I8(b)]);
        }
    }
    h.check("from_ints", &inputs);
    let mut inputs = Vec::new();
    for a in f64s() {
        inputs.push(vec![f64v(a), f32v(a as f32)]);
    }
    h.check("bits", &inputs);
    h.check("consts", &[vec![]]);
    h.check("fbits", &pairs(&f64s(), f64v));
    h.end();
}
