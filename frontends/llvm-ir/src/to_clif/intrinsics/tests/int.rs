//! Integer intrinsics: min/max, saturation, shifts, bit counts, overflow,
//! vectors and reductions, against Rust references in the interpreter.

use super::*;

/// A binary integer intrinsic against `reference(x, y, bits)` for every
/// scalar type in `tys`.
pub(super) fn int_binary(base: &str, tys: &[Type], reference: IntBinRef) {
    let mut rng = Rng(0x1234);
    for &ty in tys {
        let name = format!("llvm.{base}.{}", suffix(ty));
        let f = check(&name, &[A::P(ty), A::P(ty)], &[ty]);
        let xs = int_inputs(ty.bits(), &mut rng);
        let ys = int_inputs(ty.bits(), &mut rng);
        for &x in &xs {
            for &y in &ys {
                let got = dv_int(&ret(&f, &[int_dv(ty, x), int_dv(ty, y)])[0]);
                let want = sext(reference(x, y, ty.bits()), ty.bits());
                assert_eq!(got, want, "{name}({x}, {y})");
            }
        }
    }
}

/// A unary integer intrinsic (with `extra` constant arguments, such as
/// `is_zero_poison`) against `reference(x, bits)`.
pub(super) fn int_unary(base: &str, tys: &[Type], extra: &[A], reference: fn(i128, u32) -> i128) {
    let mut rng = Rng(0x9876);
    for &ty in tys {
        let name = format!("llvm.{base}.{}", suffix(ty));
        let mut args = vec![A::P(ty)];
        args.extend_from_slice(extra);
        let f = check(&name, &args, &[ty]);
        for x in int_inputs(ty.bits(), &mut rng) {
            let got = dv_int(&ret(&f, &[int_dv(ty, x)])[0]);
            let want = sext(reference(x, ty.bits()), ty.bits());
            assert_eq!(got, want, "{name}({x})");
        }
    }
}

pub(super) fn smin_of(bits: u32) -> i128 {
    sext(1i128 << (bits - 1), bits)
}

pub(super) fn smax_of(bits: u32) -> i128 {
    if bits == 128 {
        i128::MAX
    } else {
        (1i128 << (bits - 1)) - 1
    }
}

pub(super) fn umax_of(bits: u32) -> u128 {
    if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

#[allow(clippy::cast_possible_wrap)]
pub(super) fn u2i(u: u128) -> i128 {
    u as i128
}

#[test]
fn min_max() {
    int_binary("smin", &INT_TYPES, |x, y, _| x.min(y));
    int_binary("smax", &INT_TYPES, |x, y, _| x.max(y));
    int_binary(
        "umin",
        &INT_TYPES,
        |x, y, w| u2i(zext(x, w).min(zext(y, w))),
    );
    int_binary(
        "umax",
        &INT_TYPES,
        |x, y, w| u2i(zext(x, w).max(zext(y, w))),
    );
}

#[test]
fn saturating_arithmetic() {
    int_binary("sadd.sat", &INT_TYPES, |x, y, w| {
        x.saturating_add(y).clamp(smin_of(w), smax_of(w))
    });
    int_binary("ssub.sat", &INT_TYPES, |x, y, w| {
        x.saturating_sub(y).clamp(smin_of(w), smax_of(w))
    });
    int_binary("uadd.sat", &INT_TYPES, |x, y, w| {
        u2i(zext(x, w).saturating_add(zext(y, w)).min(umax_of(w)))
    });
    int_binary("usub.sat", &INT_TYPES, |x, y, w| {
        u2i(zext(x, w).saturating_sub(zext(y, w)))
    });
}

#[test]
fn saturating_shifts() {
    // Amounts of at least the width are poison in LLVM; Cranelift takes
    // them modulo the width, and so does the reference.
    int_binary("ushl.sat", &INT_TYPES, |x, y, w| {
        let s = zext(y, w) % u128::from(w);
        let ux = zext(x, w);
        let r = (ux << s) & umax_of(w);
        if r >> s == ux {
            u2i(r)
        } else {
            u2i(umax_of(w))
        }
    });
    int_binary("sshl.sat", &INT_TYPES, |x, y, w| {
        let s = zext(y, w) % u128::from(w);
        let r = sext(x << s, w);
        if r >> s == x {
            r
        } else if x < 0 {
            smin_of(w)
        } else {
            smax_of(w)
        }
    });
}

/// `fshl`/`fshr` reference.
pub(super) fn funnel_ref(left: bool, x: i128, y: i128, s: i128, w: u32) -> i128 {
    let (ux, uy) = (zext(x, w), zext(y, w));
    let sm = zext(s, w) % u128::from(w);
    let m = umax_of(w);
    let r = if sm == 0 {
        if left {
            ux
        } else {
            uy
        }
    } else if left {
        ((ux << sm) | (uy >> (u128::from(w) - sm))) & m
    } else {
        ((uy >> sm) | (ux << (u128::from(w) - sm))) & m
    };
    u2i(r)
}

#[test]
fn funnel_shifts() {
    let mut rng = Rng(77);
    for left in [true, false] {
        let base = if left { "fshl" } else { "fshr" };
        for ty in INT_TYPES {
            let w = ty.bits();
            let name = format!("llvm.{base}.{}", suffix(ty));
            let f = check(&name, &[A::P(ty), A::P(ty), A::P(ty)], &[ty]);
            // The rotate form: both inputs the same value.
            let rot = check(&name, &[A::P(ty), A::Dup, A::P(ty)], &[ty]);
            let opcodes = opcodes(&rot.func);
            assert!(
                opcodes.contains(&if left { Opcode::Rotl } else { Opcode::Rotr }),
                "{name} of one value is a rotate: {opcodes:?}"
            );
            let xs = int_inputs(w, &mut rng);
            let amounts: Vec<i128> = (0..i128::from(w) + 2)
                .chain([-1, 3 * i128::from(w) + 5, smin_of(w)])
                .collect();
            for (i, &x) in xs.iter().enumerate() {
                let y = xs[(i * 7 + 3) % xs.len()];
                for &s in &amounts {
                    let args = [int_dv(ty, x), int_dv(ty, y), int_dv(ty, s)];
                    let got = dv_int(&ret(&f, &args)[0]);
                    let want = sext(funnel_ref(left, x, y, s, w), w);
                    assert_eq!(got, want, "{name}({x}, {y}, {s})");
                    let got = dv_int(&ret(&rot, &[int_dv(ty, x), int_dv(ty, s)])[0]);
                    let want = sext(funnel_ref(left, x, x, s, w), w);
                    assert_eq!(got, want, "{name}({x}, {x}, {s})");
                }
            }
        }
    }
}

#[test]
fn bit_counts_and_orders() {
    for poison in [0, 1] {
        let extra = [A::C(types::I8, poison)];
        int_unary("ctlz", &INT_TYPES, &extra, |x, w| {
            i128::from(zext(x, w).leading_zeros() - (128 - w))
        });
        int_unary("cttz", &INT_TYPES, &extra, |x, w| {
            i128::from(zext(x, w).trailing_zeros().min(w))
        });
        int_unary("abs", &INT_TYPES, &extra, |x, w| sext(x.wrapping_abs(), w));
    }
    int_unary("ctpop", &INT_TYPES, &[], |x, w| {
        i128::from(zext(x, w).count_ones())
    });
    int_unary("bitreverse", &INT_TYPES, &[], |x, w| {
        u2i(zext(x, w).reverse_bits() >> (128 - w))
    });
    int_unary("bswap", &INT_TYPES[1..], &[], |x, w| {
        u2i(zext(x, w).swap_bytes() >> (128 - w))
    });
}

/// The reference of a `*.with.overflow` intrinsic: `(x, y, bits)` to the
/// wrapped result and the overflow bit.
pub(super) type OverflowRef = fn(i128, i128, u32) -> (i128, bool);

/// The reference of a binary integer operation: `(x, y, bits)`.
pub(super) type IntBinRef = fn(i128, i128, u32) -> i128;

#[test]
fn overflow_intrinsics() {
    let mut rng = Rng(5);
    let ops: [(&str, OverflowRef); 6] = [
        ("sadd", |x, y, w| {
            let e = x.checked_add(y);
            (x.wrapping_add(y), e.is_none_or(|e| sext(e, w) != e))
        }),
        ("ssub", |x, y, w| {
            let e = x.checked_sub(y);
            (x.wrapping_sub(y), e.is_none_or(|e| sext(e, w) != e))
        }),
        ("smul", |x, y, w| {
            let e = x.checked_mul(y);
            (x.wrapping_mul(y), e.is_none_or(|e| sext(e, w) != e))
        }),
        ("uadd", |x, y, w| {
            let (a, b) = (zext(x, w), zext(y, w));
            let e = a.checked_add(b);
            (u2i(a.wrapping_add(b)), e.is_none_or(|e| e > umax_of(w)))
        }),
        ("usub", |x, y, w| {
            let (a, b) = (zext(x, w), zext(y, w));
            (u2i(a.wrapping_sub(b)), a < b)
        }),
        ("umul", |x, y, w| {
            let (a, b) = (zext(x, w), zext(y, w));
            let e = a.checked_mul(b);
            (u2i(a.wrapping_mul(b)), e.is_none_or(|e| e > umax_of(w)))
        }),
    ];
    for (op, reference) in ops {
        for ty in INT_TYPES {
            if ty == types::I128 && op.ends_with("mul") {
                continue; // Err, checked in unknown_and_malformed_calls_are_errors
            }
            let name = format!("llvm.{op}.with.overflow.{}", suffix(ty));
            let results = [ty, types::I8];
            let args = [A::P(ty), A::P(ty)];
            let (value, bit) = if ty == types::I128 {
                let value = check_keep(&name, &args, &results, &[0]);
                (value, Some(check_keep(&name, &args, &results, &[1])))
            } else {
                (check(&name, &args, &results), None)
            };
            let xs = int_inputs(ty.bits(), &mut rng);
            for &x in &xs {
                for &y in &xs {
                    let xy = [int_dv(ty, x), int_dv(ty, y)];
                    let mut out = ret(&value, &xy);
                    if let Some(bit) = &bit {
                        out.extend(ret(bit, &xy));
                    }
                    let (r, of) = reference(x, y, ty.bits());
                    assert_eq!(dv_int(&out[0]), sext(r, ty.bits()), "{name}({x}, {y})");
                    assert_eq!(dv_int(&out[1]), i128::from(of), "{name}({x}, {y}) overflow");
                }
            }
        }
    }
}

/// Integer vector types.
pub(super) const INT_VECTORS: [Type; 4] = [types::I8X16, types::I16X8, types::I32X4, types::I64X2];

/// The scalar reference of each integer intrinsic that works on vectors.
pub(super) type IntRef = fn(&[i128], u32) -> i128;

#[test]
fn integer_vectors_lane_by_lane() {
    let cases: &[(&str, usize, &[A], IntRef)] = &[
        ("smin", 2, &[], |a, _| a[0].min(a[1])),
        ("smax", 2, &[], |a, _| a[0].max(a[1])),
        ("umin", 2, &[], |a, w| u2i(zext(a[0], w).min(zext(a[1], w)))),
        ("umax", 2, &[], |a, w| u2i(zext(a[0], w).max(zext(a[1], w)))),
        ("abs", 1, &[A::C(types::I8, 0)], |a, _| a[0].wrapping_abs()),
        ("ctlz", 1, &[A::C(types::I8, 0)], |a, w| {
            i128::from(zext(a[0], w).leading_zeros() - (128 - w))
        }),
        ("cttz", 1, &[A::C(types::I8, 1)], |a, w| {
            i128::from(zext(a[0], w).trailing_zeros().min(w))
        }),
        ("ctpop", 1, &[], |a, w| {
            i128::from(zext(a[0], w).count_ones())
        }),
        ("bitreverse", 1, &[], |a, w| {
            u2i(zext(a[0], w).reverse_bits() >> (128 - w))
        }),
        ("uadd.sat", 2, &[], |a, w| {
            u2i(zext(a[0], w).saturating_add(zext(a[1], w)).min(umax_of(w)))
        }),
        ("usub.sat", 2, &[], |a, w| {
            u2i(zext(a[0], w).saturating_sub(zext(a[1], w)))
        }),
        ("sadd.sat", 2, &[], |a, w| {
            a[0].saturating_add(a[1]).clamp(smin_of(w), smax_of(w))
        }),
        ("ssub.sat", 2, &[], |a, w| {
            a[0].saturating_sub(a[1]).clamp(smin_of(w), smax_of(w))
        }),
        ("fshl", 3, &[], |a, w| funnel_ref(true, a[0], a[1], a[2], w)),
        ("fshr", 3, &[], |a, w| {
            funnel_ref(false, a[0], a[1], a[2], w)
        }),
    ];
    let mut rng = Rng(99);
    for &(base, n, extra, reference) in cases {
        for ty in INT_VECTORS {
            let w = ty.lane_bits();
            let name = format!("llvm.{base}.{}", suffix(ty));
            let mut args = vec![A::P(ty); n];
            args.extend_from_slice(extra);
            let f = check(&name, &args, &[ty]);
            let lanes = ty.lane_count() as usize;
            for _ in 0..20 {
                let inputs: Vec<Vec<i128>> = (0..n)
                    .map(|_| {
                        let pool = int_inputs(w, &mut rng);
                        (0..lanes)
                            .map(|_| pool[usize::try_from(rng.next() % 52).unwrap()])
                            .collect()
                    })
                    .collect();
                let dvs: Vec<DataValue> = inputs.iter().map(|l| vec_dv(ty, l)).collect();
                let got = dv_lanes(ty, &ret(&f, &dvs)[0]);
                for lane in 0..lanes {
                    let a: Vec<i128> = inputs.iter().map(|l| l[lane]).collect();
                    let want = sext(reference(&a, w), w);
                    assert_eq!(got[lane], want, "{name} lane {lane} of {inputs:?}");
                }
            }
        }
    }
    // bswap: lanes of 16 bits and more.
    for ty in [types::I16X8, types::I32X4, types::I64X2] {
        let name = format!("llvm.bswap.{}", suffix(ty));
        let f = check(&name, &[A::P(ty)], &[ty]);
        let lanes: Vec<i128> = (0..ty.lane_count())
            .map(|i| sext(0x0102_0304_0506_0708 * i128::from(i + 1), ty.lane_bits()))
            .collect();
        let got = dv_lanes(ty, &ret(&f, &[vec_dv(ty, &lanes)])[0]);
        let w = ty.lane_bits();
        let want: Vec<i128> = lanes
            .iter()
            .map(|&l| sext(u2i(zext(l, w).swap_bytes() >> (128 - w)), w))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn integer_reductions() {
    let ops: [(&str, IntBinRef); 9] = [
        ("add", |a, b, _| a.wrapping_add(b)),
        ("mul", |a, b, _| a.wrapping_mul(b)),
        ("and", |a, b, _| a & b),
        ("or", |a, b, _| a | b),
        ("xor", |a, b, _| a ^ b),
        ("smin", |a, b, _| a.min(b)),
        ("smax", |a, b, _| a.max(b)),
        ("umin", |a, b, w| u2i(zext(a, w).min(zext(b, w)))),
        ("umax", |a, b, w| u2i(zext(a, w).max(zext(b, w)))),
    ];
    let mut rng = Rng(3);
    for (op, reference) in ops {
        for ty in INT_VECTORS {
            let w = ty.lane_bits();
            let lane_ty = ty.lane_type();
            let name = format!("llvm.vector.reduce.{op}.{}", suffix(ty));
            let f = check(&name, &[A::P(ty)], &[lane_ty]);
            for _ in 0..30 {
                let lanes: Vec<i128> = (0..ty.lane_count()).map(|_| rng.int(w)).collect();
                let got = dv_int(&ret(&f, &[vec_dv(ty, &lanes)])[0]);
                let want = lanes[1..]
                    .iter()
                    .fold(lanes[0], |a, &b| sext(reference(a, b, w), w));
                assert_eq!(got, want, "{name}({lanes:?})");
            }
        }
    }
}
