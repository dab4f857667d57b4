//! Float intrinsics: the scalar and vector family, powi, saturating
//! conversions and reductions, against Rust references.

use super::*;

/// The scalar float `DataValue` of type `ty` (`f32` or `f64`) holding `x`
/// (rounded to `f32` for `f32`).
#[allow(clippy::cast_possible_truncation)]
pub(super) fn float_dv(ty: Type, x: f64) -> DataValue {
    if ty == types::F32 {
        DataValue::F32(Ieee32::with_float(x as f32))
    } else {
        DataValue::F64(Ieee64::with_float(x))
    }
}

/// The float a scalar `DataValue` holds (exactly, as `f64`).
pub(super) fn dv_float(v: &DataValue) -> f64 {
    match *v {
        DataValue::F32(x) => f64::from(f32::from_bits(x.bits())),
        DataValue::F64(x) => f64::from_bits(x.bits()),
        ref other => panic!("not a float: {other}"),
    }
}

/// The float vector `DataValue` of type `ty` with these lanes.
#[allow(clippy::cast_possible_truncation)]
pub(super) fn float_vec_dv(ty: Type, lanes: &[f64]) -> DataValue {
    let mut bytes = Vec::new();
    for &l in lanes {
        if ty.lane_type() == types::F32 {
            bytes.extend_from_slice(&(l as f32).to_le_bytes());
        } else {
            bytes.extend_from_slice(&l.to_le_bytes());
        }
    }
    DataValue::V128(bytes.try_into().unwrap())
}

/// The lanes of a float vector `DataValue` of type `ty`.
pub(super) fn dv_float_lanes(ty: Type, v: &DataValue) -> Vec<f64> {
    let DataValue::V128(bytes) = v else {
        panic!("not a 128-bit vector: {v}")
    };
    if ty.lane_type() == types::F32 {
        bytes
            .chunks(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect()
    } else {
        bytes
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

/// The interesting floats: signed zeros, halves (rounding ties), the
/// largest non-integers, infinities, NaN, subnormals, extremes.
pub(super) fn float_inputs(ty: Type, rng: &mut Rng) -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        3.5,
        -0.3,
        0.7,
        123.456,
        -7.25,
        1e-10,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    if ty == types::F32 {
        v.extend([
            0.499_999_97,
            -0.499_999_97,
            8_388_607.5,
            -8_388_607.5,
            16_777_217.0,
            f64::from(f32::MAX),
            f64::from(f32::MIN),
            f64::from(f32::MIN_POSITIVE),
            1e-45,
            -1e-45,
        ]);
    } else {
        v.extend([
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            9_007_199_254_740_993.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            1e300,
        ]);
    }
    #[allow(clippy::cast_precision_loss)]
    v.extend((0..12).map(|_| {
        let m = (rng.next() % 2_000_001) as f64 / 1000.0 - 1000.0;
        if rng.next() % 2 == 0 {
            m
        } else {
            m * 1e6
        }
    }));
    v
}

/// Whether two results agree: both NaN, or the same bits (so `-0.0` and
/// `0.0` differ); with `loose_zero`, also `-0.0` for `0.0`.
pub(super) fn same_float(a: f64, b: f64, loose_zero: bool) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits() || (loose_zero && a == 0.0 && b == 0.0)
}

/// A float reference, for each of the two types.
pub(super) type FloatRef = (fn(&[f32]) -> f32, fn(&[f64]) -> f64);

/// The reference `$body` over the argument slice `$a`, for `f32` and `f64`.
macro_rules! both {
    (|$a:ident| $body:expr) => {
        (|$a: &[f32]| -> f32 { $body }, |$a: &[f64]| -> f64 { $body })
    };
}

/// LLVM's `minimum`: NaN-propagating, `-0.0 < 0.0`.
macro_rules! minimum {
    ($x:expr, $y:expr) => {{
        let (x, y) = ($x, $y);
        if x.is_nan() || y.is_nan() {
            x + y
        } else if x == y {
            if x.is_sign_negative() {
                x
            } else {
                y
            }
        } else {
            x.min(y)
        }
    }};
}

/// LLVM's `maximum`.
macro_rules! maximum {
    ($x:expr, $y:expr) => {{
        let (x, y) = ($x, $y);
        if x.is_nan() || y.is_nan() {
            x + y
        } else if x == y {
            if x.is_sign_positive() {
                x
            } else {
                y
            }
        } else {
            x.max(y)
        }
    }};
}

/// The float intrinsics run in the interpreter: base name, arity,
/// reference, whether the sign of a zero result may differ.
pub(super) fn float_cases() -> Vec<(&'static str, usize, FloatRef, bool)> {
    vec![
        ("fabs", 1, both!(|a| a[0].abs()), false),
        ("sqrt", 1, both!(|a| a[0].sqrt()), false),
        ("floor", 1, both!(|a| a[0].floor()), false),
        ("ceil", 1, both!(|a| a[0].ceil()), false),
        ("trunc", 1, both!(|a| a[0].trunc()), false),
        ("rint", 1, both!(|a| a[0].round_ties_even()), false),
        ("nearbyint", 1, both!(|a| a[0].round_ties_even()), false),
        ("roundeven", 1, both!(|a| a[0].round_ties_even()), false),
        ("round", 1, both!(|a| a[0].round()), false),
        ("canonicalize", 1, both!(|a| a[0]), false),
        ("copysign", 2, both!(|a| a[0].copysign(a[1])), false),
        ("minnum", 2, both!(|a| a[0].min(a[1])), true),
        ("maxnum", 2, both!(|a| a[0].max(a[1])), true),
        ("minimum", 2, both!(|a| minimum!(a[0], a[1])), false),
        ("maximum", 2, both!(|a| maximum!(a[0], a[1])), false),
        ("fma", 3, both!(|a| a[0].mul_add(a[1], a[2])), false),
        ("fmuladd", 3, both!(|a| a[0] * a[1] + a[2]), false),
    ]
}

/// The reference of `case` for the lane type of `ty` on `args`.
#[allow(clippy::cast_possible_truncation)]
pub(super) fn float_ref(r: &FloatRef, ty: Type, args: &[f64]) -> f64 {
    if ty.lane_type() == types::F32 {
        let a: Vec<f32> = args.iter().map(|&x| x as f32).collect();
        f64::from((r.0)(&a))
    } else {
        (r.1)(args)
    }
}

/// The argument tuples of an `n`-ary float test: every pair for binary
/// operations, a sample for ternary ones.
pub(super) fn float_arg_sets(n: usize, xs: &[f64], rng: &mut Rng) -> Vec<Vec<f64>> {
    let pick = |rng: &mut Rng| xs[usize::try_from(rng.next()).unwrap() % xs.len()];
    match n {
        1 => xs.iter().map(|&x| vec![x]).collect(),
        2 => xs
            .iter()
            .flat_map(|&x| xs.iter().map(move |&y| vec![x, y]))
            .collect(),
        _ => (0..1500)
            .map(|_| (0..n).map(|_| pick(rng)).collect())
            .collect(),
    }
}

pub(super) fn float_suffix(ty: Type) -> String {
    if ty.is_vector() {
        format!("v{}f{}", ty.lane_count(), ty.lane_bits())
    } else {
        format!("f{}", ty.bits())
    }
}

#[test]
fn float_scalars() {
    let mut rng = Rng(11);
    for (base, n, reference, loose_zero) in float_cases() {
        for ty in [types::F32, types::F64] {
            let name = format!("llvm.{base}.{}", float_suffix(ty));
            let f = check(&name, &vec![A::P(ty); n], &[ty]);
            let xs = float_inputs(ty, &mut rng);
            for args in float_arg_sets(n, &xs, &mut rng) {
                let dvs: Vec<DataValue> = args.iter().map(|&x| float_dv(ty, x)).collect();
                let got = dv_float(&ret(&f, &dvs)[0]);
                let want = float_ref(&reference, ty, &args);
                assert!(
                    same_float(got, want, loose_zero),
                    "{name}{args:?}: got {got:e}, want {want:e}"
                );
            }
        }
    }
}

#[test]
fn float_vectors() {
    let mut rng = Rng(12);
    for (base, n, reference, loose_zero) in float_cases() {
        for ty in [types::F32X4, types::F64X2] {
            let name = format!("llvm.{base}.{}", float_suffix(ty));
            let f = check(&name, &vec![A::P(ty); n], &[ty]);
            let xs = float_inputs(ty.lane_type(), &mut rng);
            let lanes = ty.lane_count() as usize;
            let sets = float_arg_sets(n, &xs, &mut rng);
            for chunk in sets.chunks(lanes) {
                if chunk.len() < lanes {
                    continue;
                }
                let dvs: Vec<DataValue> = (0..n)
                    .map(|i| {
                        let l: Vec<f64> = chunk.iter().map(|args| args[i]).collect();
                        float_vec_dv(ty, &l)
                    })
                    .collect();
                let got = dv_float_lanes(ty, &ret(&f, &dvs)[0]);
                for (lane, args) in chunk.iter().enumerate() {
                    let want = float_ref(&reference, ty, args);
                    assert!(
                        same_float(got[lane], want, loose_zero),
                        "{name} lane {lane} {args:?}: got {:e}, want {want:e}",
                        got[lane]
                    );
                }
            }
        }
    }
}

#[test]
fn powi_matches_compiler_rt() {
    let mut rng = Rng(13);
    let exponents: Vec<i32> = (-40..=40)
        .chain([i32::MIN, i32::MIN + 1, i32::MAX, 1000, -1000, 1 << 20])
        .collect();
    for ty in [types::F32, types::F64] {
        let name = format!("llvm.powi.{}.i32", float_suffix(ty));
        let f = check(&name, &[A::P(ty), A::P(types::I32)], &[ty]);
        for x in float_inputs(ty, &mut rng) {
            for &e in &exponents {
                let got = dv_float(&ret(&f, &[float_dv(ty, x), DataValue::I32(e)])[0]);
                #[allow(clippy::cast_possible_truncation)]
                let want = if ty == types::F32 {
                    f64::from(std::hint::black_box(x as f32).powi(std::hint::black_box(e)))
                } else {
                    std::hint::black_box(x).powi(std::hint::black_box(e))
                };
                assert!(
                    same_float(got, want, false),
                    "{name}({x:e}, {e}): got {got:e}, want {want:e}"
                );
            }
        }
    }
}

#[test]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn saturating_float_to_int() {
    let mut rng = Rng(14);
    for fty in [types::F32, types::F64] {
        for ity in [types::I8, types::I16, types::I32, types::I64] {
            for signed in [true, false] {
                let op = if signed { "fptosi" } else { "fptoui" };
                let name = format!("llvm.{op}.sat.{}.{}", suffix(ity), float_suffix(fty));
                let f = check(&name, &[A::P(fty)], &[ity]);
                for x in float_inputs(fty, &mut rng) {
                    let x = if fty == types::F32 {
                        f64::from(x as f32)
                    } else {
                        x
                    };
                    // Rust's `as` saturates and maps NaN to 0, as LLVM does.
                    let want: i128 = match (ity.bits(), signed) {
                        (8, true) => (x as i8).into(),
                        (16, true) => (x as i16).into(),
                        (32, true) => (x as i32).into(),
                        (64, true) => (x as i64).into(),
                        (8, false) => (x as u8).into(),
                        (16, false) => (x as u16).into(),
                        (32, false) => (x as u32).into(),
                        _ => (x as u64).into(),
                    };
                    let got = dv_int(&ret(&f, &[float_dv(fty, x)])[0]);
                    assert_eq!(got, sext(want, ity.bits()), "{name}({x:e})");
                }
            }
        }
    }
}

#[test]
fn float_reductions() {
    let mut rng = Rng(15);
    let ops: [(&str, FloatRef); 6] = [
        ("fadd", both!(|a| a[0] + a[1])),
        ("fmul", both!(|a| a[0] * a[1])),
        ("fmin", both!(|a| a[0].min(a[1]))),
        ("fmax", both!(|a| a[0].max(a[1]))),
        ("fminimum", both!(|a| minimum!(a[0], a[1]))),
        ("fmaximum", both!(|a| maximum!(a[0], a[1]))),
    ];
    for (op, reference) in ops {
        let ordered = matches!(op, "fadd" | "fmul");
        for ty in [types::F32X4, types::F64X2] {
            let lane = ty.lane_type();
            let name = format!("llvm.vector.reduce.{op}.{}", float_suffix(ty));
            let args = if ordered {
                vec![A::P(lane), A::P(ty)]
            } else {
                vec![A::P(ty)]
            };
            let f = check(&name, &args, &[lane]);
            let xs = float_inputs(lane, &mut rng);
            for _ in 0..300 {
                let pick = |rng: &mut Rng| xs[usize::try_from(rng.next()).unwrap() % xs.len()];
                let start = pick(&mut rng);
                let lanes: Vec<f64> = (0..ty.lane_count()).map(|_| pick(&mut rng)).collect();
                let mut dvs = Vec::new();
                if ordered {
                    dvs.push(float_dv(lane, start));
                }
                dvs.push(float_vec_dv(ty, &lanes));
                let got = dv_float(&ret(&f, &dvs)[0]);
                // In order: the start value (if any), lane 0, lane 1...
                let mut acc = float_ref(
                    &both!(|a| a[0]),
                    lane,
                    &[if ordered { start } else { lanes[0] }],
                );
                let from = usize::from(!ordered);
                for &x in &lanes[from..] {
                    acc = float_ref(&reference, lane, &[acc, x]);
                }
                assert!(
                    same_float(got, acc, !op.ends_with("imum") && !ordered),
                    "{name}({start:e}, {lanes:?}): got {got:e}, want {acc:e}"
                );
            }
        }
    }
}
