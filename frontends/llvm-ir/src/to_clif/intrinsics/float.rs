//! Floating-point intrinsics: the `fabs`/`sqrt`/`floor` family, min/max,
//! `fma`/`fmuladd`, and the libm functions (`pow`, `sin`...).

use cranelift_codegen::ir::{
    self,
    condcodes::{FloatCC, IntCC},
    types, InstBuilder,
};

use super::{Cx, Res};

/// A CLIF operation on one value.
type Op1 = fn(&mut Cx<'_, '_, '_>, ir::Value) -> ir::Value;
/// A CLIF operation on two values.
type Op2 = fn(&mut Cx<'_, '_, '_>, ir::Value, ir::Value) -> ir::Value;

/// The libm functions of one double argument that LLVM has intrinsics for.
const LIBM_UNARY: &[&str] = &[
    "exp", "exp2", "exp10", "log", "log2", "log10", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "tanh",
];

/// Translates the floating-point intrinsics; `Ok(None)` for other names.
pub(super) fn translate(cx: &mut Cx<'_, '_, '_>) -> Res {
    let base = cx.base;
    let v = match base {
        "fabs" => unary(cx, |cx, x| cx.b.ins().fabs(x))?,
        "sqrt" => unary(cx, |cx, x| cx.b.ins().sqrt(x))?,
        "floor" => unary(cx, |cx, x| cx.b.ins().floor(x))?,
        "ceil" => unary(cx, |cx, x| cx.b.ins().ceil(x))?,
        "trunc" => unary(cx, |cx, x| cx.b.ins().trunc(x))?,
        // The default rounding mode: to nearest, ties to even.
        "nearbyint" | "rint" | "roundeven" => unary(cx, |cx, x| cx.b.ins().nearest(x))?,
        "round" => unary(cx, round_half_away)?,
        "canonicalize" => {
            cx.arity(1, 1)?;
            float_ty(cx, cx.arg(0))?;
            cx.arg(0)
        }
        "copysign" => binary(cx, copysign)?,
        "minimum" => binary(cx, |cx, x, y| cx.b.ins().fmin(x, y))?,
        "maximum" => binary(cx, |cx, x, y| cx.b.ins().fmax(x, y))?,
        "minnum" => binary(cx, minnum)?,
        "maxnum" => binary(cx, maxnum)?,
        "fma" => {
            cx.arity(3, 1)?;
            same_float_ty(cx, &[cx.arg(0), cx.arg(1), cx.arg(2)])?;
            let args = [cx.arg(0), cx.arg(1), cx.arg(2)];
            // Without FMA hardware Cranelift calls `fma`/`fmaf` itself.
            cx.b.ins().fma(args[0], args[1], args[2])
        }
        "fmuladd" => {
            // LangRef allows the unfused form; it matches clang's
            // -ffp-contract=off native code.
            cx.arity(3, 1)?;
            same_float_ty(cx, &[cx.arg(0), cx.arg(1), cx.arg(2)])?;
            let (x, y, z) = (cx.arg(0), cx.arg(1), cx.arg(2));
            let m = cx.b.ins().fmul(x, y);
            cx.b.ins().fadd(m, z)
        }
        "pow" | "atan2" => {
            cx.arity(2, 1)?;
            let ty = same_float_ty(cx, &[cx.arg(0), cx.arg(1)])?;
            let symbol = libm_name(base, ty);
            let args = [cx.arg(0), cx.arg(1)];
            let lane = ty.lane_type();
            cx.lanewise(ty, &args, &mut |cx, a| Ok(libm(cx, &symbol, a, lane)))?
        }
        _ if LIBM_UNARY.contains(&base) => {
            cx.arity(1, 1)?;
            let ty = float_ty(cx, cx.arg(0))?;
            let symbol = libm_name(base, ty);
            let lane = ty.lane_type();
            cx.lanewise(ty, &[cx.arg(0)], &mut |cx, a| {
                Ok(libm(cx, &symbol, a, lane))
            })?
        }
        "powi" => {
            cx.arity(2, 1)?;
            let ty = float_ty(cx, cx.arg(0))?;
            let n = cx.arg(1);
            let nt = cx.ty(n);
            if ty.is_vector() || !nt.is_int() || nt.is_vector() || nt.bits() > 32 {
                return Err(cx.err(format!("powi of {ty} by {nt}")));
            }
            powi(cx, cx.arg(0), n)
        }
        "ldexp" => {
            cx.arity(2, 1)?;
            let ty = float_ty(cx, cx.arg(0))?;
            let e = cx.arg(1);
            if ty.is_vector() || cx.ty(e) != types::I32 {
                return Err(cx.err(format!("ldexp of {ty} by {}", cx.ty(e))));
            }
            libm(cx, &libm_name("ldexp", ty), &[cx.arg(0), e], ty)
        }
        "lround" | "llround" | "lrint" | "llrint" => {
            cx.arity(1, 1)?;
            let ty = float_ty(cx, cx.arg(0))?;
            let rt = cx.call.results[0];
            let ok = rt.lane_count() == ty.lane_count()
                && matches!(rt.lane_type(), types::I32 | types::I64);
            if !ok {
                return Err(cx.err(format!("{base} of {ty} to {rt}")));
            }
            // `long` and `long long` are both 64 bits in SysV.
            let symbol = libm_name(base, ty);
            let rlane = rt.lane_type();
            cx.lanewise(rt, &[cx.arg(0)], &mut |cx, a| {
                let r = cx
                    .libcall(&symbol, a, Some(types::I64))
                    .ok_or_else(|| cx.err("no result"))?;
                Ok(if rlane == types::I64 {
                    r
                } else {
                    cx.b.ins().ireduce(rlane, r)
                })
            })?
        }
        "is.fpclass" => {
            cx.arity(2, 1)?;
            let ty = float_ty(cx, cx.arg(0))?;
            let mask = cx.const_of(cx.arg(1));
            let Some(mask) = mask.filter(|_| !ty.is_vector()) else {
                return Err(cx.err(format!("of {ty} with a variable or vector test")));
            };
            is_fpclass(cx, cx.arg(0), mask)
        }
        "frexp" => {
            // { fraction, exponent } = frexp(x, &exponent)
            if cx.call.args.len() != 1 || cx.call.results.len() != 2 {
                return Err(cx.err("expected 1 argument and 2 results"));
            }
            let ty = float_ty(cx, cx.arg(0))?;
            if ty.is_vector() || cx.call.results != [ty, types::I32] {
                return Err(cx.err(format!("of {ty} to {:?}", cx.call.results)));
            }
            let slot = cx.b.create_sized_stack_slot(ir::StackSlotData::new(
                ir::StackSlotKind::ExplicitSlot,
                4,
                2,
            ));
            let addr = cx.b.ins().stack_addr(types::I64, slot, 0);
            let fraction = libm(cx, &libm_name("frexp", ty), &[cx.arg(0), addr], ty);
            let exponent =
                cx.b.ins()
                    .load(types::I32, ir::MemFlagsData::trusted(), addr, 0);
            return Ok(Some(vec![fraction, exponent]));
        }
        "fptosi.sat" | "fptoui.sat" => {
            cx.arity(1, 1)?;
            let ty = float_ty(cx, cx.arg(0))?;
            let rt = cx.call.results[0];
            let ok = rt.lane_count() == ty.lane_count()
                && matches!(
                    rt.lane_type(),
                    types::I8 | types::I16 | types::I32 | types::I64
                );
            if !ok || ty.is_vector() {
                return Err(cx.err(format!("{base} of {ty} to {rt}")));
            }
            let x = cx.arg(0);
            let signed = base == "fptosi.sat";
            if rt.bits() >= 32 {
                if signed {
                    cx.b.ins().fcvt_to_sint_sat(rt, x)
                } else {
                    cx.b.ins().fcvt_to_uint_sat(rt, x)
                }
            } else {
                // The x86-64 backend converts to 32 or 64 bits only (it
                // panics on narrower ones): convert to i32, clamp, narrow.
                let bits = rt.bits();
                let wide = if signed {
                    let w = cx.b.ins().fcvt_to_sint_sat(types::I32, x);
                    let hi = cx.b.ins().iconst(types::I32, (1i64 << (bits - 1)) - 1);
                    let lo = cx.int_const(types::I32, -(1i128 << (bits - 1)));
                    let w = cx.b.ins().smin(w, hi);
                    cx.b.ins().smax(w, lo)
                } else {
                    let w = cx.b.ins().fcvt_to_uint_sat(types::I32, x);
                    let hi = cx.b.ins().iconst(types::I32, (1i64 << bits) - 1);
                    cx.b.ins().umin(w, hi)
                };
                cx.b.ins().ireduce(rt, wide)
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![v]))
}

/// The type of `v`, which must be `f32`, `f64` or a 128-bit vector of
/// them.
fn float_ty(cx: &Cx<'_, '_, '_>, v: ir::Value) -> Result<ir::Type, String> {
    let ty = cx.ty(v);
    if matches!(ty.lane_type(), types::F32 | types::F64) && (!ty.is_vector() || ty.bits() == 128) {
        Ok(ty)
    } else {
        Err(cx.err(format!("type {ty}")))
    }
}

/// The common float type of `vs`.
fn same_float_ty(cx: &Cx<'_, '_, '_>, vs: &[ir::Value]) -> Result<ir::Type, String> {
    let ty = float_ty(cx, vs[0])?;
    for &v in &vs[1..] {
        if cx.ty(v) != ty {
            return Err(cx.err(format!("mixed types {ty} and {}", cx.ty(v))));
        }
    }
    Ok(ty)
}

/// A unary float intrinsic computed by `op`.
fn unary(cx: &mut Cx<'_, '_, '_>, op: Op1) -> Result<ir::Value, String> {
    cx.arity(1, 1)?;
    let x = cx.arg(0);
    float_ty(cx, x)?;
    Ok(op(cx, x))
}

/// A binary float intrinsic computed by `op`.
fn binary(cx: &mut Cx<'_, '_, '_>, op: Op2) -> Result<ir::Value, String> {
    cx.arity(2, 1)?;
    let (x, y) = (cx.arg(0), cx.arg(1));
    same_float_ty(cx, &[x, y])?;
    Ok(op(cx, x, y))
}

/// The libm name of `f` for the lane type of `ty` (`sin`, `sinf`).
fn libm_name(f: &str, ty: ir::Type) -> String {
    if ty.lane_type() == types::F32 {
        format!("{f}f")
    } else {
        f.to_owned()
    }
}

/// Calls the libm function `symbol` returning `ret`.
fn libm(cx: &mut Cx<'_, '_, '_>, symbol: &str, args: &[ir::Value], ret: ir::Type) -> ir::Value {
    cx.libcall(symbol, args, Some(ret))
        .expect("a libcall with a return type has a result")
}

/// The integer type with the lanes of the float type `ty`.
fn int_of(ty: ir::Type) -> ir::Type {
    let lane = if ty.lane_type() == types::F32 {
        types::I32
    } else {
        types::I64
    };
    lane.by(ty.lane_count()).unwrap_or(lane)
}

/// `x` with the sign of `y`.
fn copysign(cx: &mut Cx<'_, '_, '_>, x: ir::Value, y: ir::Value) -> ir::Value {
    let ty = cx.ty(x);
    if !ty.is_vector() {
        return cx.b.ins().fcopysign(x, y);
    }
    let it = int_of(ty);
    let flags = super::vector_flags();
    let xi = cx.b.ins().bitcast(it, flags, x);
    let yi = cx.b.ins().bitcast(it, flags, y);
    let sign = cx.int_const(it, 1i128 << (it.lane_bits() - 1));
    let mag = cx.b.ins().band_not(xi, sign);
    let sgn = cx.b.ins().band(yi, sign);
    let r = cx.b.ins().bor(mag, sgn);
    cx.b.ins().bitcast(ty, flags, r)
}

/// A float constant of type `ty` (splatted for vectors).
fn fconst(cx: &mut Cx<'_, '_, '_>, ty: ir::Type, v: f64) -> ir::Value {
    let s = if ty.lane_type() == types::F32 {
        #[allow(clippy::cast_possible_truncation)] // the constants are exact in f32
        cx.b.ins().f32const(v as f32)
    } else {
        cx.b.ins().f64const(v)
    };
    cx.splat_if(ty, s)
}

/// Rounds to the nearest integer, ties away from zero (C's `round`):
/// `t = trunc(x)`; if `|x - t| >= 0.5` (exact: the fraction of `x`) then
/// `t + copysign(1, x)`, else `t`. NaN and infinities give `t` (the
/// comparison is false), which is `x`.
fn round_half_away(cx: &mut Cx<'_, '_, '_>, x: ir::Value) -> ir::Value {
    let ty = cx.ty(x);
    let t = cx.b.ins().trunc(x);
    let frac = cx.b.ins().fsub(x, t);
    let frac = cx.b.ins().fabs(frac);
    let half = fconst(cx, ty, 0.5);
    let up = cx.b.ins().fcmp(FloatCC::GreaterThanOrEqual, frac, half);
    let one = fconst(cx, ty, 1.0);
    let step = copysign(cx, one, x);
    let away = cx.b.ins().fadd(t, step);
    cx.select_cmp(up, away, t)
}

/// IEEE minNum: a NaN operand yields the other one.
pub(super) fn minnum(cx: &mut Cx<'_, '_, '_>, x: ir::Value, y: ir::Value) -> ir::Value {
    let m = cx.b.ins().fmin(x, y);
    num_of(cx, x, y, m)
}

/// IEEE maxNum: a NaN operand yields the other one.
pub(super) fn maxnum(cx: &mut Cx<'_, '_, '_>, x: ir::Value, y: ir::Value) -> ir::Value {
    let m = cx.b.ins().fmax(x, y);
    num_of(cx, x, y, m)
}

/// `m` (the NaN-propagating min or max of `x` and `y`) with NaN operands
/// replaced: `x` NaN gives `y`, `y` NaN gives `x`.
fn num_of(cx: &mut Cx<'_, '_, '_>, x: ir::Value, y: ir::Value, m: ir::Value) -> ir::Value {
    let x_nan = cx.b.ins().fcmp(FloatCC::Unordered, x, x);
    let y_nan = cx.b.ins().fcmp(FloatCC::Unordered, y, y);
    let r = cx.select_cmp(y_nan, x, m);
    cx.select_cmp(x_nan, y, r)
}

/// `x` to the integer power `n` as compiler-rt's and libgcc's `__powidf2`
/// compute it (square and multiply over the bits of `|n|`, the reciprocal
/// for negative `n`), unrolled over the 32 bits of `n`; the squares past
/// the highest bit are never used, so the result is the loop's.
fn powi(cx: &mut Cx<'_, '_, '_>, x: ir::Value, n: ir::Value) -> ir::Value {
    let ty = cx.ty(x);
    let n = if cx.ty(n) == types::I32 {
        n
    } else {
        cx.b.ins().sextend(types::I32, n)
    };
    let neg = cx.b.ins().icmp_imm_s(IntCC::SignedLessThan, n, 0);
    let minus = cx.b.ins().ineg(n);
    let m = cx.b.ins().select(neg, minus, n); // |n| as unsigned
    let one = fconst(cx, ty, 1.0);
    let mut y = one;
    let mut p = x;
    for bit in 0..32 {
        if bit > 0 {
            p = cx.b.ins().fmul(p, p);
        }
        let set = cx.b.ins().band_imm_u(m, 1i64 << bit);
        let yp = if bit == 0 { p } else { cx.b.ins().fmul(y, p) };
        y = cx.b.ins().select(set, yp, y);
    }
    let inv = cx.b.ins().fdiv(one, y);
    cx.b.ins().select(neg, inv, y)
}

/// `llvm.is.fpclass(x, mask)` of a scalar: whether `x` is in one of the
/// classes of `mask` (bit 0 signalling NaN, 1 quiet NaN, 2 -inf,
/// 3 -normal, 4 -subnormal, 5 -0, 6 +0, 7 +subnormal, 8 +normal, 9 +inf),
/// from the bits of `x`.
fn is_fpclass(cx: &mut Cx<'_, '_, '_>, x: ir::Value, mask: i64) -> ir::Value {
    let ty = cx.ty(x);
    let it = int_of(ty);
    let w = it.bits();
    let mant = if ty == types::F32 { 23 } else { 52 };
    let exp_mask = ((1i128 << (w - 1 - mant)) - 1) << mant; // the bits of +inf
    let quiet = exp_mask | (1i128 << (mant - 1));
    let min_normal = 1i128 << mant;
    let bits = cx.b.ins().bitcast(it, ir::MemFlagsData::new(), x);
    let magnitude = cx.int_const(it, i128::MAX >> (128 - w));
    let abs = cx.b.ins().band(bits, magnitude);
    let neg = cx.b.ins().icmp_imm_s(IntCC::SignedLessThan, bits, 0);
    let pos =
        cx.b.ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, bits, 0);
    let cmp = |cx: &mut Cx<'_, '_, '_>, cc: IntCC, k: i128| {
        let k = cx.int_const(it, k);
        cx.b.ins().icmp(cc, abs, k)
    };
    // (class test, sign test: None for NaN, else the bit of the negative
    // class and of the positive one)
    let mut terms: Vec<ir::Value> = Vec::new();
    if mask & 0b11 == 0b11 {
        terms.push(cmp(cx, IntCC::UnsignedGreaterThan, exp_mask));
    } else if mask & 0b01 != 0 {
        let nan = cmp(cx, IntCC::UnsignedGreaterThan, exp_mask);
        let signalling = cmp(cx, IntCC::UnsignedLessThan, quiet);
        terms.push(cx.b.ins().band(nan, signalling));
    } else if mask & 0b10 != 0 {
        terms.push(cmp(cx, IntCC::UnsignedGreaterThanOrEqual, quiet));
    }
    // The signed classes: (bit of the negative one, of the positive one).
    for (neg_bit, pos_bit, class) in [(2, 9, 0), (3, 8, 1), (4, 7, 2), (5, 6, 3)] {
        let (n, p) = (mask >> neg_bit & 1 != 0, mask >> pos_bit & 1 != 0);
        if !n && !p {
            continue;
        }
        let t = match class {
            0 => cmp(cx, IntCC::Equal, exp_mask),
            1 => {
                // min_normal <= abs < exp_mask
                let k = cx.int_const(it, min_normal);
                let off = cx.b.ins().isub(abs, k);
                let range = cx.int_const(it, exp_mask - min_normal);
                cx.b.ins().icmp(IntCC::UnsignedLessThan, off, range)
            }
            2 => {
                // 0 < abs < min_normal
                let one = cx.int_const(it, 1);
                let off = cx.b.ins().isub(abs, one);
                let range = cx.int_const(it, min_normal - 1);
                cx.b.ins().icmp(IntCC::UnsignedLessThan, off, range)
            }
            _ => cmp(cx, IntCC::Equal, 0),
        };
        terms.push(match (n, p) {
            (true, true) => t,
            (true, false) => cx.b.ins().band(t, neg),
            _ => cx.b.ins().band(t, pos),
        });
    }
    let mut out = match terms.first() {
        Some(&t) => t,
        None => return cx.b.ins().iconst(types::I8, 0),
    };
    for &t in &terms[1..] {
        out = cx.b.ins().bor(out, t);
    }
    out
}
