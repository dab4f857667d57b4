//! Integer instructions translated to LLVM IR agree with Cranelift's
//! interpreter and native Cranelift code on edge values, traps included.

mod translate_support;

use cranelift_codegen::data_value::DataValue;
use translate_support::{Harness, Outcome};

fn i8s() -> Vec<i8> {
    vec![0, 1, -1, 2, 7, 8, 9, i8::MIN, i8::MAX, 0x55, -0x56]
}
fn i16s() -> Vec<i16> {
    vec![0, 1, -1, 15, 16, 17, i16::MIN, i16::MAX, 0x1234]
}
fn i32s() -> Vec<i32> {
    vec![
        0,
        1,
        -1,
        2,
        31,
        32,
        33,
        100,
        -7,
        i32::MIN,
        i32::MAX,
        0x1234_5678,
    ]
}
fn i64s() -> Vec<i64> {
    vec![
        0,
        1,
        -1,
        3,
        63,
        64,
        65,
        -9,
        i64::MIN,
        i64::MAX,
        0x0123_4567_89ab_cdef,
    ]
}
fn i128s() -> Vec<i128> {
    vec![
        0,
        1,
        -1,
        127,
        128,
        129,
        i128::MIN,
        i128::MAX,
        0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        -(1 << 64),
    ]
}

fn pairs<T: Copy>(xs: &[T], f: impl Fn(T) -> DataValue) -> Vec<Vec<DataValue>> {
    let mut out = Vec::new();
    for &a in xs {
        for &b in xs {
            out.push(vec![f(a), f(b)]);
        }
    }
    out
}

fn singles<T: Copy>(xs: &[T], f: impl Fn(T) -> DataValue) -> Vec<Vec<DataValue>> {
    xs.iter().map(|&a| vec![f(a)]).collect()
}

/// Binary operations named `OP` instantiated for one type.
fn binary_ops(ty: &str, ops: &[&str]) -> String {
    ops.iter()
        .map(|op| {
            format!(
                "function %{op}_{ty}({ty}, {ty}) -> {ty} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = {op} v0, v1\n    return v2\n}}\n"
            )
        })
        .collect()
}

fn unary_ops(ty: &str, ops: &[&str]) -> String {
    ops.iter()
        .map(|op| {
            format!(
                "function %{op}_{ty}({ty}) -> {ty} {{\nblock0(v0: {ty}):\n    v1 = {op} v0\n    return v1\n}}\n"
            )
        })
        .collect()
}

const BINARY: &[&str] = &[
    "iadd", "isub", "imul", "umulhi", "smulhi", "udiv", "sdiv", "urem", "srem", "band", "bor",
    "bxor", "ishl", "ushr", "sshr", "rotl", "rotr", "smin", "smax", "umin", "umax",
];
const UNARY: &[&str] = &[
    "ineg", "iabs", "bnot", "clz", "ctz", "cls", "popcnt", "bitrev", "bswap",
];

fn run_type(
    ty: &str,
    inputs2: Vec<Vec<DataValue>>,
    inputs1: Vec<Vec<DataValue>>,
    binary: &[&str],
    unary: &[&str],
) {
    let text = binary_ops(ty, binary) + &unary_ops(ty, unary);
    let h = Harness::new(&text);
    for op in binary {
        h.check(&format!("{op}_{ty}"), &inputs2);
    }
    for op in unary {
        h.check(&format!("{op}_{ty}"), &inputs1);
    }
    h.end();
}

#[test]
fn i8_operations_agree() {
    let unary: Vec<&str> = UNARY.iter().copied().filter(|o| *o != "bswap").collect();
    run_type(
        "i8",
        pairs(&i8s(), DataValue::I8),
        singles(&i8s(), DataValue::I8),
        BINARY,
        &unary,
    );
}

#[test]
fn i16_operations_agree() {
    run_type(
        "i16",
        pairs(&i16s(), DataValue::I16),
        singles(&i16s(), DataValue::I16),
        BINARY,
        UNARY,
    );
}

#[test]
fn i32_operations_agree() {
    run_type(
        "i32",
        pairs(&i32s(), DataValue::I32),
        singles(&i32s(), DataValue::I32),
        BINARY,
        UNARY,
    );
}

#[test]
fn i64_operations_agree() {
    run_type(
        "i64",
        pairs(&i64s(), DataValue::I64),
        singles(&i64s(), DataValue::I64),
        BINARY,
        UNARY,
    );
}

#[test]
fn i128_operations_agree() {
    // Cranelift's x86-64 backend has no i128 division or multiply-high.
    let binary: Vec<&str> = BINARY
        .iter()
        .copied()
        .filter(|o| !["udiv", "sdiv", "urem", "srem", "umulhi", "smulhi"].contains(o))
        .collect();
    // Cranelift takes i128 parameters only with its LLVM ABI extensions:
    // the functions take and return halves.
    let mut text = String::new();
    for op in &binary {
        text += &format!("function %{op}_i128(i64, i64, i64, i64) -> i64, i64 {{\nblock0(v0: i64, v1: i64, v2: i64, v3: i64):\n    v4 = iconcat v0, v1\n    v5 = iconcat v2, v3\n    v6 = {op} v4, v5\n    v7, v8 = isplit v6\n    return v7, v8\n}}\n");
    }
    for op in UNARY {
        text += &format!("function %{op}_i128(i64, i64) -> i64, i64 {{\nblock0(v0: i64, v1: i64):\n    v4 = iconcat v0, v1\n    v6 = {op} v4\n    v7, v8 = isplit v6\n    return v7, v8\n}}\n");
    }
    let halves = |x: i128| [DataValue::I64(x as i64), DataValue::I64((x >> 64) as i64)];
    let mut inputs2 = Vec::new();
    for a in i128s() {
        for b in i128s() {
            inputs2.push([halves(a), halves(b)].concat());
        }
    }
    let inputs1: Vec<Vec<DataValue>> = i128s().into_iter().map(|a| halves(a).to_vec()).collect();
    let h = Harness::new(&text);
    for op in &binary {
        h.check(&format!("{op}_i128"), &inputs2);
    }
    for op in UNARY {
        h.check(&format!("{op}_i128"), &inputs1);
    }
    h.end();
}

#[test]
fn division_traps_carry_cranelift_codes() {
    let h = Harness::new(&binary_ops("i32", &["sdiv", "udiv", "srem"]));
    let zero = vec![DataValue::I32(5), DataValue::I32(0)];
    let overflow = vec![DataValue::I32(i32::MIN), DataValue::I32(-1)];
    // INTEGER_DIVISION_BY_ZERO is 4 on the wire (reserved codes start at 1).
    let code = |o: Outcome| match o {
        Outcome::Trap(c) => c,
        other => panic!("expected a trap, got {other:?}"),
    };
    let div0 = code(h.run_native("sdiv_i32", true, &zero));
    let ovf = code(h.run_native("sdiv_i32", true, &overflow));
    assert_eq!(
        div0,
        Some(
            cranelift_codegen::ir::TrapCode::INTEGER_DIVISION_BY_ZERO
                .as_raw()
                .get()
        )
    );
    assert_eq!(
        ovf,
        Some(
            cranelift_codegen::ir::TrapCode::INTEGER_OVERFLOW
                .as_raw()
                .get()
        )
    );
    match h.run_native("srem_i32", true, &overflow) {
        Outcome::Values(v) => assert_eq!(v, vec![DataValue::I32(0)]),
        other => panic!("srem MIN, -1 must be 0, got {other:?}"),
    }
    h.end();
}

#[test]
fn compares_selects_and_width_changes_agree() {
    let mut text = String::new();
    for cc in [
        "eq", "ne", "slt", "sge", "sgt", "sle", "ult", "uge", "ugt", "ule",
    ] {
        text += &format!(
            "function %icmp_{cc}(i32, i32) -> i8 {{\nblock0(v0: i32, v1: i32):\n    v2 = icmp {cc} v0, v1\n    return v2\n}}\n"
        );
    }
    text += "
function %sel(i32, i32) -> i32 {
block0(v0: i32, v1: i32):
    v2 = select v0, v0, v1
    v3 = select_spectre_guard v1, v2, v0
    return v3
}
function %ext(i32, i32) -> i64, i64 {
block0(v0: i32, v1: i32):
    v2 = uextend.i64 v0
    v3 = sextend.i64 v1
    v4 = ireduce.i16 v0
    v5 = sextend.i64 v4
    v6 = iadd v3, v5
    return v2, v6
}
function %bmask(i32, i32) -> i64 {
block0(v0: i32, v1: i32):
    v2 = bmask.i64 v0
    v3 = iconst.i64 0x1234
    v4 = bitselect v2, v3, v2
    return v4
}
function %wide(i64, i64) -> i64, i64 {
block0(v0: i64, v1: i64):
    v2 = iconcat v0, v1
    v3 = iconst.i64 3
    v4 = rotl v2, v3
    v5, v6 = isplit v4
    return v5, v6
}
function %shift_i64_by_i8(i64, i32) -> i64 {
block0(v0: i64, v1: i32):
    v2 = ireduce.i8 v1
    v3 = ishl v0, v2
    v4 = sshr v3, v1
    return v4
}
function %consts() -> i8, i16, i64, i128 {
block0:
    v0 = iconst.i8 -1
    v1 = iconst.i16 0x8000
    v2 = iconst.i64 -5
    v3 = sextend.i128 v2
    v4 = iconst.i64 1
    v5 = uextend.i128 v4
    v6 = iadd v3, v5
    v7 = ushr v6, v4
    v8, v9 = isplit v7
    v10 = uextend.i64 v0
    v11 = sextend.i64 v1
    v12 = iadd v10, v11
    v13 = iadd v12, v8
    return v13
}
";
    let h = Harness::new(&text.replace("-> i8, i16, i64, i128", "-> i64"));
    let inputs = pairs(&i32s(), DataValue::I32);
    for cc in [
        "eq", "ne", "slt", "sge", "sgt", "sle", "ult", "uge", "ugt", "ule",
    ] {
        h.check(&format!("icmp_{cc}"), &inputs);
    }
    for f in ["sel", "ext", "bmask", "shift_i64_by_i8"] {
        let inputs: Vec<Vec<DataValue>> = if f == "shift_i64_by_i8" {
            i64s()
                .into_iter()
                .flat_map(|a| {
                    i32s()
                        .into_iter()
                        .map(move |b| vec![DataValue::I64(a), DataValue::I32(b)])
                })
                .collect()
        } else {
            inputs.clone()
        };
        h.check(f, &inputs);
    }
    h.check("wide", &pairs(&i64s(), DataValue::I64));
    h.check("consts", &[vec![]]);
    h.end();
}

#[test]
fn overflow_arithmetic_agrees() {
    let mut text = String::new();
    for op in [
        "uadd_overflow",
        "sadd_overflow",
        "usub_overflow",
        "ssub_overflow",
        "umul_overflow",
        "smul_overflow",
    ] {
        for ty in ["i8", "i32", "i64"] {
            text += &format!(
                "function %{op}_{ty}({ty}, {ty}) -> {ty}, i8 {{\nblock0(v0: {ty}, v1: {ty}):\n    v2, v3 = {op} v0, v1\n    return v2, v3\n}}\n"
            );
        }
    }
    for op in [
        "uadd_overflow_cin",
        "sadd_overflow_cin",
        "usub_overflow_bin",
        "ssub_overflow_bin",
    ] {
        text += &format!(
            "function %{op}(i32, i32) -> i32, i8 {{\nblock0(v0: i32, v1: i32):\n    v2 = ireduce.i8 v1\n    v3, v4 = {op} v0, v1, v2\n    return v3, v4\n}}\n"
        );
    }
    text += "function %add_trap(i32, i32) -> i32 {\nblock0(v0: i32, v1: i32):\n    v2 = uadd_overflow_trap v0, v1, user1\n    return v2\n}\n";
    let h = Harness::new(&text);
    for op in [
        "uadd_overflow",
        "sadd_overflow",
        "usub_overflow",
        "ssub_overflow",
        "umul_overflow",
        "smul_overflow",
    ] {
        h.check(&format!("{op}_i8"), &pairs(&i8s(), DataValue::I8));
        h.check(&format!("{op}_i32"), &pairs(&i32s(), DataValue::I32));
        h.check(&format!("{op}_i64"), &pairs(&i64s(), DataValue::I64));
    }
    for op in [
        "uadd_overflow_cin",
        "sadd_overflow_cin",
        "usub_overflow_bin",
        "ssub_overflow_bin",
        "add_trap",
    ] {
        h.check(op, &pairs(&i32s(), DataValue::I32));
    }
    h.end();
}
