//! Intrinsics that become libcalls, emit no code, give hints, trap, or
//! otherwise stand apart (i1 forms, fpclass, frames).

use super::*;

/// The libcalls of `f`, as (symbol, parameter types, return types).
fn libcalls(f: &Built) -> Vec<(String, Vec<Type>, Vec<Type>)> {
    f.calls
        .iter()
        .map(|(s, sig)| {
            assert_eq!(sig.call_conv, CallConv::SystemV, "{s}");
            (
                s.clone(),
                sig.params.iter().map(|p| p.value_type).collect(),
                sig.returns.iter().map(|p| p.value_type).collect(),
            )
        })
        .collect()
}

#[test]
fn memory_intrinsics_call_libc() {
    use types::{I32, I64, I8};
    let cases: &[(&str, &[A], &str, &[Type])] = &[
        (
            "llvm.memcpy.p0.p0.i64",
            &[A::P(I64), A::P(I64), A::P(I64), A::C(I8, 0)],
            "memcpy",
            &[I64, I64, I64],
        ),
        (
            "llvm.memcpy.p0.p0.i32",
            &[A::P(I64), A::P(I64), A::P(I32), A::C(I8, 1)],
            "memcpy",
            &[I64, I64, I64],
        ),
        (
            "llvm.memcpy.inline.p0.p0.i64",
            &[A::P(I64), A::P(I64), A::C(I64, 16), A::C(I8, 0)],
            "memcpy",
            &[I64, I64, I64],
        ),
        (
            "llvm.memmove.p0.p0.i64",
            &[A::P(I64), A::P(I64), A::P(I64), A::C(I8, 0)],
            "memmove",
            &[I64, I64, I64],
        ),
        (
            "llvm.memset.p0.i64",
            &[A::P(I64), A::P(I8), A::P(I64), A::C(I8, 0)],
            "memset",
            &[I64, I32, I64],
        ),
        (
            "llvm.memset.inline.p0.i32",
            &[A::P(I64), A::C(I8, 0xff), A::C(I32, 8), A::C(I8, 0)],
            "memset",
            &[I64, I32, I64],
        ),
    ];
    for &(name, args, symbol, params) in cases {
        let f = check(name, args, &[]);
        assert_eq!(
            libcalls(&f),
            vec![(symbol.to_owned(), params.to_vec(), vec![I64])],
            "{name}"
        );
        let ops = opcodes(&f.func);
        assert_eq!(
            ops.iter().filter(|&&o| o == Opcode::Call).count(),
            1,
            "{name}"
        );
        // The length and memset's byte are zero-extended.
        if params != [I64, I64, I64] || name.ends_with("i32") {
            assert!(ops.contains(&Opcode::Uextend), "{name}: {ops:?}");
        }
    }
}

/// A libm intrinsic test: the name, argument types, result type, then the
/// libcall symbol, parameter types and return type, and how many calls.
type LibmCase = (
    &'static str,
    &'static [Type],
    Type,
    &'static str,
    &'static [Type],
    Type,
    usize,
);

#[test]
fn libm_intrinsics_call_libm() {
    use types::{F32, F32X4, F64, F64X2, I32, I64};
    let cases: &[LibmCase] = &[
        ("llvm.sin.f64", &[F64], F64, "sin", &[F64], F64, 1),
        ("llvm.sin.f32", &[F32], F32, "sinf", &[F32], F32, 1),
        ("llvm.cos.v4f32", &[F32X4], F32X4, "cosf", &[F32], F32, 4),
        ("llvm.exp.f64", &[F64], F64, "exp", &[F64], F64, 1),
        ("llvm.exp2.f32", &[F32], F32, "exp2f", &[F32], F32, 1),
        ("llvm.exp10.f64", &[F64], F64, "exp10", &[F64], F64, 1),
        ("llvm.log.v2f64", &[F64X2], F64X2, "log", &[F64], F64, 2),
        ("llvm.log2.f64", &[F64], F64, "log2", &[F64], F64, 1),
        ("llvm.log10.f32", &[F32], F32, "log10f", &[F32], F32, 1),
        ("llvm.tan.f64", &[F64], F64, "tan", &[F64], F64, 1),
        ("llvm.pow.f64", &[F64, F64], F64, "pow", &[F64, F64], F64, 1),
        (
            "llvm.pow.v4f32",
            &[F32X4, F32X4],
            F32X4,
            "powf",
            &[F32, F32],
            F32,
            4,
        ),
        (
            "llvm.ldexp.f64.i32",
            &[F64, I32],
            F64,
            "ldexp",
            &[F64, I32],
            F64,
            1,
        ),
        (
            "llvm.ldexp.f32.i32",
            &[F32, I32],
            F32,
            "ldexpf",
            &[F32, I32],
            F32,
            1,
        ),
        ("llvm.lround.i64.f64", &[F64], I64, "lround", &[F64], I64, 1),
        (
            "llvm.lround.i32.f32",
            &[F32],
            I32,
            "lroundf",
            &[F32],
            I64,
            1,
        ),
        (
            "llvm.llround.i64.f64",
            &[F64],
            I64,
            "llround",
            &[F64],
            I64,
            1,
        ),
        ("llvm.lrint.i64.f64", &[F64], I64, "lrint", &[F64], I64, 1),
        (
            "llvm.llrint.i64.f32",
            &[F32],
            I64,
            "llrintf",
            &[F32],
            I64,
            1,
        ),
    ];
    for &(name, args, result, symbol, params, ret_ty, n) in cases {
        let args: Vec<A> = args.iter().map(|&t| A::P(t)).collect();
        let f = check(name, &args, &[result]);
        let want = vec![(symbol.to_owned(), params.to_vec(), vec![ret_ty]); n];
        assert_eq!(libcalls(&f), want, "{name}");
        let ops = opcodes(&f.func);
        assert_eq!(
            ops.iter().filter(|&&o| o == Opcode::Call).count(),
            n,
            "{name}"
        );
    }
}

// ------------------------------------------------- markers, hints, traps

#[test]
fn markers_emit_no_code() {
    use types::{I64, I8};
    let cases: &[(&str, &[A])] = &[
        ("llvm.lifetime.start.p0", &[A::C(I64, 16), A::P(I64)]),
        ("llvm.lifetime.end.p0", &[A::C(I64, 16), A::P(I64)]),
        ("llvm.dbg.value", &[A::P(I64)]),
        ("llvm.dbg.declare", &[]),
        ("llvm.experimental.noalias.scope.decl", &[]),
        (
            "llvm.invariant.end.p0",
            &[A::P(I64), A::C(I64, 8), A::P(I64)],
        ),
        ("llvm.sideeffect", &[]),
        (
            "llvm.pseudoprobe",
            &[A::C(I64, 1), A::C(I64, 2), A::C(I64, 0), A::C(I64, 0)],
        ),
        ("llvm.donothing", &[]),
        ("llvm.assume", &[A::P(I8)]),
        (
            "llvm.prefetch.p0",
            &[A::P(I64), A::C(I64, 0), A::C(I64, 3), A::C(I64, 1)],
        ),
        ("llvm.clear_cache", &[A::P(I64), A::P(I64)]),
    ];
    for &(name, args) in cases {
        let f = check(name, args, &[]);
        let ops: Vec<Opcode> = opcodes(&f.func)
            .into_iter()
            .filter(|&o| o != Opcode::Iconst)
            .collect();
        assert_eq!(ops, [Opcode::Return], "{name}");
        assert!(f.calls.is_empty());
    }
}

#[test]
fn hints_give_their_values() {
    use types::{I32, I64, I8};
    let f = check("llvm.expect.i64", &[A::P(I64), A::C(I64, 1)], &[I64]);
    for x in [0, 1, -1, i64::MIN, 42] {
        assert_eq!(ret(&f, &[DataValue::I64(x)]), [DataValue::I64(x)]);
    }
    let f = check("llvm.expect.i1", &[A::P(I8), A::C(I8, 0)], &[I8]);
    assert_eq!(ret(&f, &[DataValue::I8(1)]), [DataValue::I8(1)]);
    let f = check(
        "llvm.expect.with.probability.i32",
        &[A::P(I32), A::C(I32, 7), A::P(types::F64)],
        &[I32],
    );
    assert_eq!(
        ret(&f, &[DataValue::I32(-9), float_dv(types::F64, 0.9)]),
        [DataValue::I32(-9)]
    );
    let f = check("llvm.is.constant.i32", &[A::P(I32)], &[I8]);
    assert_eq!(ret(&f, &[DataValue::I32(3)]), [DataValue::I8(0)]);
    for (min, want) in [(0, -1), (1, 0)] {
        for ty in [I64, I32] {
            let name = format!("llvm.objectsize.{}.p0", suffix(ty));
            let args = [A::P(I64), A::C(I8, min), A::C(I8, 0), A::C(I8, 0)];
            let f = check(&name, &args, &[ty]);
            let got = dv_int(&ret(&f, &[DataValue::I64(0x1000)])[0]);
            assert_eq!(got, want, "{name} min={min}");
        }
    }
    let f = check(
        "llvm.invariant.start.p0",
        &[A::C(I64, 8), A::P(I64)],
        &[I64],
    );
    assert_eq!(ret(&f, &[DataValue::I64(0x1000)]), [DataValue::I64(0)]);
    let f = check("llvm.launder.invariant.group.p0", &[A::P(I64)], &[I64]);
    assert_eq!(ret(&f, &[DataValue::I64(0x1234)]), [DataValue::I64(0x1234)]);
}

#[test]
fn traps_end_the_block() {
    // After a trap the builder is in a fresh block where the test's
    // `return` lands: `check` verifies that it is well formed.
    let f = check("llvm.trap", &[], &[]);
    assert!(matches!(run(&f, &[]), Err(CraneliftTrap::User(c)) if c == TRAP_CODE));
    assert_eq!(f.func.layout.blocks().count(), 2);
    let f = check("llvm.ubsantrap", &[A::C(types::I8, 7)], &[]);
    let seven = ir::TrapCode::unwrap_user(7);
    assert!(matches!(run(&f, &[]), Err(CraneliftTrap::User(c)) if c == seven));
    let f = check("llvm.ubsantrap", &[A::C(types::I8, 0)], &[]);
    assert!(matches!(run(&f, &[]), Err(CraneliftTrap::User(c)) if c == TRAP_CODE));
    // `debugtrap` is a breakpoint: execution may go on after it.
    let f = check("llvm.debugtrap", &[], &[]);
    assert_eq!(opcodes(&f.func), [Opcode::Debugtrap, Opcode::Return]);
    assert!(matches!(run(&f, &[]), Err(CraneliftTrap::Debug)));
}

#[test]
fn vectors_other_than_128_bits_are_errors() {
    let cases: &[(&str, &[A], Type)] = &[
        (
            "llvm.smin.v2i32",
            &[A::P(types::I32X2), A::P(types::I32X2)],
            types::I32X2,
        ),
        ("llvm.fabs.v2f32", &[A::P(types::F32X2)], types::F32X2),
        ("llvm.ctpop.v8i8", &[A::P(types::I8X8)], types::I8X8),
        (
            "llvm.vector.reduce.add.v2i32",
            &[A::P(types::I32X2)],
            types::I32,
        ),
        ("llvm.sin.v2f32", &[A::P(types::F32X2)], types::F32X2),
    ];
    for &(name, args, result) in cases {
        let e = build(name, args, &[result]).err();
        let e = e.unwrap_or_else(|| panic!("{name} was accepted"));
        assert!(e.starts_with(&format!("intrinsic {name}")), "{e}");
    }
}

#[test]
fn i1_operations_read_1_as_minus_1_when_signed() {
    // As LLVM's i1: smin(1, 0) is 1 (-1 < 0), smax(1, 0) is 0.
    let i8t = types::I8;
    type BoolRef = fn(bool, bool) -> bool;
    let refs: [(&str, BoolRef); 4] = [
        ("smin", |a, b| a || b),
        ("smax", |a, b| a && b),
        ("umin", |a, b| a && b),
        ("umax", |a, b| a || b),
    ];
    for (op, reference) in refs {
        let name = format!("llvm.{op}.i1");
        let f = check(&name, &[A::P(i8t), A::P(i8t)], &[i8t]);
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            let got = ret(&f, &[DataValue::I8(a.into()), DataValue::I8(b.into())]);
            let want = DataValue::I8(reference(a, b).into());
            assert_eq!(got, [want], "{name}({a}, {b})");
        }
    }
    let f = check("llvm.abs.i1", &[A::P(i8t), A::C(i8t, 0)], &[i8t]);
    assert_eq!(ret(&f, &[DataValue::I8(1)]), [DataValue::I8(1)]);
    // Reductions of i1 lanes (each lane an i8 holding 0 or 1).
    let v = types::I8X16;
    for (op, any) in [
        ("or", true),
        ("umax", true),
        ("smin", true),
        ("and", false),
        ("smax", false),
    ] {
        let name = format!("llvm.vector.reduce.{op}.v16i1");
        let f = check(&name, &[A::P(v)], &[i8t]);
        let mut lanes = vec![0i128; 16];
        lanes[5] = 1;
        let got = ret(&f, &[vec_dv(v, &lanes)]);
        assert_eq!(got, [DataValue::I8(any.into())], "{name} of one set lane");
    }
    // Signed readings the translation does not model are errors.
    for (name, args, results) in [
        ("llvm.sadd.sat.i1", vec![A::P(i8t), A::P(i8t)], vec![i8t]),
        (
            "llvm.smul.with.overflow.i1",
            vec![A::P(i8t), A::P(i8t)],
            vec![i8t, i8t],
        ),
        ("llvm.fptosi.sat.i1.f64", vec![A::P(types::F64)], vec![i8t]),
    ] {
        let e = build(name, &args, &results).err();
        assert!(
            e.is_some_and(|e| e.starts_with(&format!("intrinsic {name}"))),
            "{name}"
        );
    }
}

#[test]
fn saturating_shifts_of_vectors() {
    let mut rng = Rng(21);
    for ty in INT_VECTORS {
        let w = ty.lane_bits();
        for signed in [false, true] {
            let name = format!(
                "llvm.{}shl.sat.{}",
                if signed { "s" } else { "u" },
                suffix(ty)
            );
            let f = check(&name, &[A::P(ty), A::P(ty)], &[ty]);
            for _ in 0..20 {
                let xs: Vec<i128> = (0..ty.lane_count()).map(|_| rng.int(w)).collect();
                let ss: Vec<i128> = (0..ty.lane_count())
                    .map(|_| i128::from(rng.next() % u64::from(w)))
                    .collect();
                let got = dv_lanes(ty, &ret(&f, &[vec_dv(ty, &xs), vec_dv(ty, &ss)])[0]);
                for i in 0..xs.len() {
                    let (x, s) = (xs[i], ss[i]);
                    let want = if signed {
                        let r = sext(x << s, w);
                        if r >> s == x {
                            r
                        } else if x < 0 {
                            smin_of(w)
                        } else {
                            smax_of(w)
                        }
                    } else {
                        let r = (zext(x, w) << s) & umax_of(w);
                        sext(u2i(if r >> s == zext(x, w) { r } else { umax_of(w) }), w)
                    };
                    assert_eq!(got[i], want, "{name} lane {i}: {x} << {s}");
                }
            }
        }
    }
}

/// The `is.fpclass` classes of the float with these bits.
fn fpclass_of(bits: u64, f32: bool) -> u32 {
    let (x, quiet) = if f32 {
        let b = u32::try_from(bits).unwrap();
        (f64::from(f32::from_bits(b)), b & 0x0040_0000 != 0)
    } else {
        (f64::from_bits(bits), bits & (1 << 51) != 0)
    };
    let neg = x.is_sign_negative();
    // Subnormal f32s are normal f64s: classify in the source type.
    let category = if f32 {
        f32::from_bits(u32::try_from(bits).unwrap()).classify()
    } else {
        x.classify()
    };
    use std::num::FpCategory::*;
    let bit = match (category, neg) {
        (Nan, _) => usize::from(quiet),
        (Infinite, true) => 2,
        (Normal, true) => 3,
        (Subnormal, true) => 4,
        (Zero, true) => 5,
        (Zero, false) => 6,
        (Subnormal, false) => 7,
        (Normal, false) => 8,
        (Infinite, false) => 9,
    };
    1 << bit
}

#[test]
fn is_fpclass_tests_the_bits() {
    let mut rng = Rng(31);
    let masks: Vec<i64> = (0..10)
        .map(|b| 1 << b)
        .chain([0, 0b11, 0x204, 0x1f8, 0x3ff, 0x90, 0x60, 0x3fc, 0x1, 0x108])
        .collect();
    for ty in [types::F32, types::F64] {
        let is32 = ty == types::F32;
        let mut inputs: Vec<u64> = float_inputs(ty, &mut rng)
            .into_iter()
            .map(|x| {
                if is32 {
                    #[allow(clippy::cast_possible_truncation)]
                    u64::from((x as f32).to_bits())
                } else {
                    x.to_bits()
                }
            })
            .collect();
        if is32 {
            inputs.extend([
                0x7f80_0001,
                0xff80_0001,
                0x7fc0_0000,
                0xffc0_0001,
                0x0000_0001,
                0x807f_ffff,
            ]);
        } else {
            inputs.extend([
                0x7ff0_0000_0000_0001,
                0xfff0_0000_0000_0001,
                0x7ff8_0000_0000_0000,
                0xfff8_0000_0000_0001,
                0x0000_0000_0000_0001,
                0x800f_ffff_ffff_ffff,
            ]);
        }
        for &mask in &masks {
            let name = format!("llvm.is.fpclass.{}", float_suffix(ty));
            let f = check(&name, &[A::P(ty), A::C(types::I32, mask)], &[types::I8]);
            for &bits in &inputs {
                let arg = if is32 {
                    DataValue::F32(Ieee32::with_bits(u32::try_from(bits).unwrap()))
                } else {
                    DataValue::F64(Ieee64::with_bits(bits))
                };
                let want = i64::from(fpclass_of(bits, is32)) & mask != 0;
                let got = ret(&f, &[arg]);
                assert_eq!(
                    got,
                    [DataValue::I8(want.into())],
                    "{name}({bits:#x}, {mask:#x})"
                );
            }
        }
    }
}

#[test]
fn frexp_calls_libm_with_a_slot() {
    for (ty, symbol) in [(types::F64, "frexp"), (types::F32, "frexpf")] {
        let name = format!("llvm.frexp.{}.i32", float_suffix(ty));
        let f = check(&name, &[A::P(ty)], &[ty, types::I32]);
        assert_eq!(
            libcalls(&f),
            [(symbol.to_owned(), vec![ty, types::I64], vec![ty])],
            "{name}"
        );
        let ops = opcodes(&f.func);
        for op in [Opcode::StackAddr, Opcode::Call, Opcode::Load] {
            assert!(ops.contains(&op), "{name}: {ops:?}");
        }
    }
}

#[test]
fn pointers_and_frames() {
    let i64t = types::I64;
    let f = check("llvm.ptrmask.p0.i64", &[A::P(i64t), A::P(i64t)], &[i64t]);
    let got = ret(&f, &[DataValue::I64(0x1237), DataValue::I64(-16)]);
    assert_eq!(got, [DataValue::I64(0x1230)]);
    for (name, op) in [
        ("llvm.frameaddress.p0", Opcode::GetFramePointer),
        ("llvm.returnaddress", Opcode::GetReturnAddress),
    ] {
        let f = check(name, &[A::C(types::I32, 0)], &[i64t]);
        assert!(opcodes(&f.func).contains(&op), "{name}");
        let e = build(name, &[A::C(types::I32, 1)], &[i64t]).err();
        assert_eq!(e.unwrap(), format!("intrinsic {name}: other than level 0"));
    }
}

#[test]
fn vector_reverse() {
    for ty in INT_VECTORS {
        let name = format!("llvm.vector.reverse.{}", suffix(ty));
        let f = check(&name, &[A::P(ty)], &[ty]);
        let lanes: Vec<i128> = (0..ty.lane_count())
            .map(|i| i128::from(i) * 3 - 7)
            .collect();
        let got = dv_lanes(ty, &ret(&f, &[vec_dv(ty, &lanes)])[0]);
        let want: Vec<i128> = lanes.iter().rev().copied().collect();
        assert_eq!(got, want, "{name}");
    }
    let f = check(
        "llvm.vector.reverse.v4f32",
        &[A::P(types::F32X4)],
        &[types::F32X4],
    );
    let got = dv_float_lanes(
        types::F32X4,
        &ret(
            &f,
            &[float_vec_dv(types::F32X4, &[1.0, -0.0, 2.5, f64::INFINITY])],
        )[0],
    );
    assert_eq!(got, [f64::INFINITY, 2.5, -0.0, 1.0]);
}
