//! 128-bit SIMD instructions translated to LLVM IR agree with Cranelift's
//! interpreter and native code on vectors of edge lanes.

mod translate_support;

use cranelift_codegen::data_value::DataValue;
use translate_support::Harness;

/// Vectors made of edge lanes of `bits`-bit integers.
fn int_vectors(bits: u32) -> Vec<DataValue> {
    let lanes = 128 / bits;
    let edge: Vec<u128> = {
        let mask = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        let min = 1u128 << (bits - 1);
        vec![
            0,
            1,
            mask,
            min,
            min - 1,
            2,
            0x55 & mask,
            mask - 1,
            7,
            min + 1,
        ]
    };
    let mut out = Vec::new();
    for rot in 0..edge.len() {
        let mut v = 0u128;
        for l in 0..lanes {
            let x = edge[(rot + l as usize * 3) % edge.len()];
            v |= x << (l * bits);
        }
        out.push(DataValue::V128(v.to_le_bytes()));
    }
    out
}

fn f32_vectors() -> Vec<DataValue> {
    let edge = [
        0.0f32,
        -0.0,
        1.5,
        -2.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3e9,
        -3e9,
        0.5,
        2.5,
        -1.0,
    ];
    (0..edge.len())
        .map(|r| {
            let mut b = [0u8; 16];
            for l in 0..4 {
                b[l * 4..l * 4 + 4].copy_from_slice(&edge[(r + l * 5) % edge.len()].to_le_bytes());
            }
            DataValue::V128(b)
        })
        .collect()
}

fn f64_vectors() -> Vec<DataValue> {
    let edge = [
        0.0f64,
        -0.0,
        1.5,
        -2.5,
        f64::NAN,
        f64::INFINITY,
        1e19,
        -1e19,
        0.5,
        4294967296.5,
    ];
    (0..edge.len())
        .map(|r| {
            let mut b = [0u8; 16];
            for l in 0..2 {
                b[l * 8..l * 8 + 8].copy_from_slice(&edge[(r + l * 3) % edge.len()].to_le_bytes());
            }
            DataValue::V128(b)
        })
        .collect()
}

fn pairs(xs: &[DataValue]) -> Vec<Vec<DataValue>> {
    xs.iter()
        .flat_map(|a| {
            xs.iter()
                .map(|b| vec![a.clone(), b.clone()])
                .collect::<Vec<_>>()
        })
        .collect()
}

fn singles(xs: &[DataValue]) -> Vec<Vec<DataValue>> {
    xs.iter().map(|a| vec![a.clone()]).collect()
}

fn binary(ty: &str, op: &str, out: &str) -> String {
    format!("function %{op}_{ty}({ty}, {ty}) -> {out} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = {op} v0, v1\n    return v2\n}}\n")
}

fn unary(ty: &str, op: &str, out: &str) -> String {
    format!("function %{op}_{ty}({ty}) -> {out} {{\nblock0(v0: {ty}):\n    v1 = {op} v0\n    return v1\n}}\n")
}

fn check_all(h: &Harness, two: &[Vec<DataValue>], one: &[Vec<DataValue>]) {
    for f in h.funcs.clone() {
        let name = translate_support::symbol(&f);
        match f.signature.params.len() {
            2 => h.check(&name, two),
            1 => h.check(&name, one),
            _ => h.check(&name, &[vec![]]),
        }
    }
}

#[test]
fn integer_lanes_agree() {
    for (ty, bits) in [("i8x16", 8), ("i16x8", 16), ("i32x4", 32), ("i64x2", 64)] {
        let mut text = String::new();
        for op in [
            "iadd", "isub", "band", "bor", "bxor", "smin", "smax", "umin", "umax",
        ] {
            text += &binary(ty, op, ty);
        }
        if bits != 8 {
            text += &binary(ty, "imul", ty);
        }
        if bits <= 16 {
            for op in ["uadd_sat", "sadd_sat", "usub_sat", "ssub_sat", "avg_round"] {
                text += &binary(ty, op, ty);
            }
        }
        for op in ["ineg", "iabs", "bnot"] {
            text += &unary(ty, op, ty);
        }
        if bits == 8 {
            text += &unary(ty, "popcnt", ty);
        }
        for cc in ["eq", "ne", "slt", "uge", "sgt", "ule"] {
            text += &format!("function %icmp_{cc}_{ty}({ty}, {ty}) -> {ty} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = icmp {cc} v0, v1\n    return v2\n}}\n");
        }
        for op in ["ishl", "ushr", "sshr"] {
            for amt in [0, 1, bits - 1, bits, bits + 3, 200] {
                text += &format!("function %{op}_{amt}_{ty}({ty}) -> {ty} {{\nblock0(v0: {ty}):\n    v1 = iconst.i32 {amt}\n    v2 = {op} v0, v1\n    return v2\n}}\n");
            }
        }
        text += &format!("function %vany_{ty}({ty}) -> i8 {{\nblock0(v0: {ty}):\n    v1 = vany_true v0\n    return v1\n}}\n");
        text += &format!("function %vall_{ty}({ty}) -> i8 {{\nblock0(v0: {ty}):\n    v1 = vall_true v0\n    return v1\n}}\n");
        text += &format!("function %vhigh_{ty}({ty}) -> i32 {{\nblock0(v0: {ty}):\n    v1 = vhigh_bits.i32 v0\n    return v1\n}}\n");
        text += &format!("function %bitselect_{ty}({ty}, {ty}) -> {ty} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = icmp slt v0, v1\n    v3 = bitselect v2, v0, v1\n    return v3\n}}\n");
        text += &format!("function %lanes_{ty}({ty}, {ty}) -> {ty} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = extractlane v0, 1\n    v3 = insertlane v1, v2, 0\n    v4 = splat.{ty} v2\n    v5 = iadd v3, v4\n    return v5\n}}\n");
        let h = Harness::new(&text);
        let vs = int_vectors(bits);
        check_all(&h, &pairs(&vs), &singles(&vs));
        h.end();
    }
}

#[test]
fn widening_narrowing_and_shuffles_agree() {
    let text = "
function %swiden(i8x16) -> i16x8, i16x8 {
block0(v0: i8x16):
    v1 = swiden_low v0
    v2 = swiden_high v0
    return v1, v2
}
function %uwiden(i16x8) -> i32x4, i32x4 {
block0(v0: i16x8):
    v1 = uwiden_low v0
    v2 = uwiden_high v0
    return v1, v2
}
function %snarrow(i16x8, i16x8) -> i8x16 {
block0(v0: i16x8, v1: i16x8):
    v2 = snarrow v0, v1
    return v2
}
function %unarrow(i32x4, i32x4) -> i16x8 {
block0(v0: i32x4, v1: i32x4):
    v2 = unarrow v0, v1
    return v2
}
function %uunarrow(i64x2, i64x2) -> i32x4 {
block0(v0: i64x2, v1: i64x2):
    v2 = uunarrow v0, v1
    return v2
}
function %pairwise(i16x8, i16x8) -> i16x8 {
block0(v0: i16x8, v1: i16x8):
    v2 = iadd_pairwise v0, v1
    return v2
}
function %sqmul(i16x8, i16x8) -> i16x8 {
block0(v0: i16x8, v1: i16x8):
    v2 = sqmul_round_sat v0, v1
    return v2
}
function %shuffle(i8x16, i8x16) -> i8x16 {
block0(v0: i8x16, v1: i8x16):
    v2 = shuffle v0, v1, 0x1f1e1d1c1b1a19180706050403020100
    return v2
}
function %swizzle(i8x16, i8x16) -> i8x16 {
block0(v0: i8x16, v1: i8x16):
    v2 = swizzle v0, v1
    return v2
}
function %consts() -> i32x4 {
block0:
    v0 = vconst.i32x4 [1 -2 3 0x7fffffff]
    return v0
}
";
    let h = Harness::new(text);
    for (f, bits) in [
        ("swiden", 8),
        ("uwiden", 16),
        ("snarrow", 16),
        ("unarrow", 32),
        ("uunarrow", 64),
        ("pairwise", 16),
        ("sqmul", 16),
        ("shuffle", 8),
        ("swizzle", 8),
    ] {
        let vs = int_vectors(bits);
        let two = h.func(f).signature.params.len() == 2;
        h.check(f, &if two { pairs(&vs) } else { singles(&vs) });
    }
    h.check("consts", &[vec![]]);
    // Swizzle indices of 16 and more give zero lanes.
    let idx: [u8; 16] = [0, 15, 16, 17, 31, 32, 128, 255, 1, 2, 3, 4, 5, 6, 7, 8];
    let x: [u8; 16] = std::array::from_fn(|i| 0xa0 + i as u8);
    h.check("swizzle", &[vec![DataValue::V128(x), DataValue::V128(idx)]]);
    h.end();
}

#[test]
fn float_lanes_agree() {
    for (ty, vs, int) in [
        ("f32x4", f32_vectors(), "i32x4"),
        ("f64x2", f64_vectors(), "i64x2"),
    ] {
        let mut text = String::new();
        for op in ["fadd", "fsub", "fmul", "fdiv", "fmin", "fmax", "fcopysign"] {
            text += &binary(ty, op, ty);
        }
        for op in ["sqrt", "fneg", "fabs", "ceil", "floor", "trunc", "nearest"] {
            text += &unary(ty, op, ty);
        }
        for cc in ["eq", "ne", "lt", "uge", "uno", "one"] {
            text += &format!("function %fcmp_{cc}_{ty}({ty}, {ty}) -> {int} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = fcmp {cc} v0, v1\n    return v2\n}}\n");
        }
        text += &format!("function %fma_{ty}({ty}, {ty}) -> {ty} {{\nblock0(v0: {ty}, v1: {ty}):\n    v2 = fma v0, v1, v1\n    return v2\n}}\n");
        text += &format!("function %tosat_{ty}({ty}) -> {int} {{\nblock0(v0: {ty}):\n    v1 = fcvt_to_sint_sat.{int} v0\n    return v1\n}}\n");
        text += &format!("function %touat_{ty}({ty}) -> {int} {{\nblock0(v0: {ty}):\n    v1 = fcvt_to_uint_sat.{int} v0\n    return v1\n}}\n");
        text += &format!("function %from_{ty}({ty}) -> {ty} {{\nblock0(v0: {ty}):\n    v1 = bitcast.{int} v0\n    v2 = fcvt_from_sint.{ty} v1\n    return v2\n}}\n");
        let h = Harness::new(&text);
        check_all(&h, &pairs(&vs), &singles(&vs));
        h.end();
    }
    let text = "
function %promote(f32x4) -> f64x2 {
block0(v0: f32x4):
    v1 = fvpromote_low v0
    return v1
}
function %demote(f64x2) -> f32x4 {
block0(v0: f64x2):
    v1 = fvdemote v0
    return v1
}
";
    let h = Harness::new(text);
    h.check("promote", &singles(&f32_vectors()));
    h.check("demote", &singles(&f64_vectors()));
    h.end();
}

#[test]
fn vector_memory_agrees() {
    let text = "
function %mem(i8x16) -> i16x8, i8x16 {
    ss0 = explicit_slot 32, align = 16
block0(v0: i8x16):
    v1 = stack_addr.i64 ss0
    store v0, v1
    store v0, v1+16
    v2 = sload8x8 v1+3
    v3 = load.i8x16 v1+5
    return v2, v3
}
";
    let h = Harness::new(text);
    h.check("mem", &singles(&int_vectors(8)));
    h.end();
}

/// The x86-flavoured instructions, checked against native Cranelift (the
/// interpreter has none of them).
#[test]
fn x86_specific_instructions_agree() {
    let text = "
function %pshufb(i8x16, i8x16) -> i8x16 {
block0(v0: i8x16, v1: i8x16):
    v2 = x86_pshufb v0, v1
    return v2
}
function %pmulhrsw(i16x8, i16x8) -> i16x8 {
block0(v0: i16x8, v1: i16x8):
    v2 = x86_pmulhrsw v0, v1
    return v2
}
function %pmaddubsw(i8x16, i8x16) -> i16x8 {
block0(v0: i8x16, v1: i8x16):
    v2 = x86_pmaddubsw v0, v1
    return v2
}
function %cvtt2dq(f32x4) -> i32x4 {
block0(v0: f32x4):
    v1 = x86_cvtt2dq.i32x4 v0
    return v1
}
function %blendv(i32x4, i32x4, i32x4) -> i32x4 {
block0(v0: i32x4, v1: i32x4, v2: i32x4):
    v3 = blendv v0, v1, v2
    return v3
}
";
    let h = Harness::new(text);
    h.check("pshufb", &pairs(&int_vectors(8)));
    h.check("pmulhrsw", &pairs(&int_vectors(16)));
    h.check("pmaddubsw", &pairs(&int_vectors(8)));
    h.check("cvtt2dq", &singles(&f32_vectors()));
    let vs = int_vectors(32);
    let triples: Vec<Vec<DataValue>> = vs
        .iter()
        .map(|c| vec![c.clone(), vs[1].clone(), vs[3].clone()])
        .collect();
    h.check("blendv", &triples);
    h.end();
}
