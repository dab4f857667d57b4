//! Integer intrinsics (min/max, `abs`, overflow, saturation, bit counts,
//! byte and bit order, funnel shifts) and the vector reductions.

use cranelift_codegen::ir::{self, condcodes::IntCC, types, InstBuilder};

use super::{float, Cx, Res};

/// A CLIF operation on two values.
type Op2 = fn(&mut Cx<'_, '_, '_>, ir::Value, ir::Value) -> ir::Value;

/// Translates the integer intrinsics and the reductions; `Ok(None)` for
/// other names.
pub(super) fn translate(cx: &mut Cx<'_, '_, '_>) -> Res {
    let base = cx.base;
    if let Some(op) = base.strip_prefix("vector.reduce.") {
        return reduce(cx, op).map(|v| Some(vec![v]));
    }
    if let Some(op) = base.strip_suffix(".with.overflow") {
        return overflow(cx, op).map(Some);
    }
    let v = match base {
        "smin" => minmax(cx, IntCC::SignedLessThan, |cx, x, y| cx.b.ins().smin(x, y))?,
        "smax" => minmax(cx, IntCC::SignedGreaterThan, |cx, x, y| {
            cx.b.ins().smax(x, y)
        })?,
        "umin" => minmax(cx, IntCC::UnsignedLessThan, |cx, x, y| {
            cx.b.ins().umin(x, y)
        })?,
        "umax" => minmax(cx, IntCC::UnsignedGreaterThan, |cx, x, y| {
            cx.b.ins().umax(x, y)
        })?,
        "abs" => {
            // (x, is_int_min_poison): iabs wraps MIN to MIN either way.
            cx.arity(2, 1)?;
            let x = cx.arg(0);
            int_ty(cx, x)?;
            cx.b.ins().iabs(x)
        }
        "uadd.sat" | "usub.sat" | "sadd.sat" | "ssub.sat" => {
            cx.arity(2, 1)?;
            let (x, y) = (cx.arg(0), cx.arg(1));
            let ty = same_int_ty(cx, &[x, y])?;
            if matches!(ty, types::I8X16 | types::I16X8) {
                match base {
                    "uadd.sat" => cx.b.ins().uadd_sat(x, y),
                    "usub.sat" => cx.b.ins().usub_sat(x, y),
                    "sadd.sat" => cx.b.ins().sadd_sat(x, y),
                    _ => cx.b.ins().ssub_sat(x, y),
                }
            } else {
                cx.lanewise(ty, &[x, y], &mut |cx, a| {
                    Ok(saturating(cx, base, a[0], a[1]))
                })?
            }
        }
        "ushl.sat" | "sshl.sat" => {
            cx.arity(2, 1)?;
            let (x, y) = (cx.arg(0), cx.arg(1));
            let ty = same_int_ty(cx, &[x, y])?;
            let signed = base == "sshl.sat";
            cx.lanewise(ty, &[x, y], &mut |cx, a| {
                Ok(shl_sat(cx, signed, a[0], a[1]))
            })?
        }
        "ctlz" | "cttz" => {
            // (x, is_zero_poison): clz/ctz give the width at zero.
            cx.arity(2, 1)?;
            let x = cx.arg(0);
            let ty = int_ty(cx, x)?;
            let lead = base == "ctlz";
            cx.lanewise(ty, &[x], &mut |cx, a| {
                Ok(if lead {
                    cx.b.ins().clz(a[0])
                } else {
                    cx.b.ins().ctz(a[0])
                })
            })?
        }
        "ctpop" => {
            cx.arity(1, 1)?;
            let x = cx.arg(0);
            let ty = int_ty(cx, x)?;
            if ty == types::I8X16 || !ty.is_vector() {
                cx.b.ins().popcnt(x)
            } else {
                cx.lanewise(ty, &[x], &mut |cx, a| Ok(cx.b.ins().popcnt(a[0])))?
            }
        }
        "bswap" => {
            cx.arity(1, 1)?;
            let x = cx.arg(0);
            let ty = int_ty(cx, x)?;
            if ty.lane_bits() < 16 {
                return Err(cx.err(format!("bswap of {ty}")));
            }
            cx.lanewise(ty, &[x], &mut |cx, a| Ok(cx.b.ins().bswap(a[0])))?
        }
        "bitreverse" => {
            cx.arity(1, 1)?;
            let x = cx.arg(0);
            let ty = int_ty(cx, x)?;
            cx.lanewise(ty, &[x], &mut |cx, a| Ok(cx.b.ins().bitrev(a[0])))?
        }
        "fshl" | "fshr" => {
            cx.arity(3, 1)?;
            let (x, y, s) = (cx.arg(0), cx.arg(1), cx.arg(2));
            let ty = same_int_ty(cx, &[x, y, s])?;
            let left = base == "fshl";
            cx.lanewise(ty, &[x, y, s], &mut |cx, a| {
                Ok(funnel(cx, left, a[0], a[1], a[2]))
            })?
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![v]))
}

/// The integer intrinsics on `i1` (an `i8` holding 0 or 1, where 1 reads
/// as -1 when signed): min/max are `and`/`or`, `abs`, `ctpop` and
/// `bitreverse` are the identity, and the reductions fold with
/// `and`/`or`/`xor`. Anything else on `i1` is `Err`.
pub(super) fn translate_i1(cx: &mut Cx<'_, '_, '_>) -> Res {
    let base = cx.base;
    let unsupported = || cx.err("on i1");
    if let Some(op) = base.strip_prefix("vector.reduce.") {
        let op = match op {
            "or" | "umax" | "smin" => "or",
            "and" | "umin" | "smax" | "mul" => "and",
            "xor" | "add" => "xor",
            _ => return Err(unsupported()),
        };
        return reduce(cx, op).map(|v| Some(vec![v]));
    }
    let v = match base {
        "smin" | "umax" | "smax" | "umin" => {
            cx.arity(2, 1)?;
            let (x, y) = (cx.arg(0), cx.arg(1));
            same_int_ty(cx, &[x, y])?;
            if matches!(base, "smin" | "umax") {
                cx.b.ins().bor(x, y)
            } else {
                cx.b.ins().band(x, y)
            }
        }
        "abs" | "ctpop" | "bitreverse" => {
            cx.arity(if base == "abs" { 2 } else { 1 }, 1)?;
            int_ty(cx, cx.arg(0))?;
            cx.arg(0)
        }
        _ => return Err(unsupported()),
    };
    Ok(Some(vec![v]))
}

/// The type of `v`, which must be an integer or a 128-bit vector of
/// integers.
fn int_ty(cx: &Cx<'_, '_, '_>, v: ir::Value) -> Result<ir::Type, String> {
    let ty = cx.ty(v);
    if ty.lane_type().is_int() && (!ty.is_vector() || ty.bits() == 128) {
        Ok(ty)
    } else {
        Err(cx.err(format!("type {ty}")))
    }
}

/// The common integer type of `vs`.
fn same_int_ty(cx: &Cx<'_, '_, '_>, vs: &[ir::Value]) -> Result<ir::Type, String> {
    let ty = int_ty(cx, vs[0])?;
    for &v in &vs[1..] {
        if cx.ty(v) != ty {
            return Err(cx.err(format!("mixed types {ty} and {}", cx.ty(v))));
        }
    }
    Ok(ty)
}

/// `smin` and its kin: Cranelift's instruction up to 64 bits and for
/// vectors, a compare and select for `i128`.
fn minmax(cx: &mut Cx<'_, '_, '_>, cc: IntCC, op: Op2) -> Result<ir::Value, String> {
    cx.arity(2, 1)?;
    let (x, y) = (cx.arg(0), cx.arg(1));
    let ty = same_int_ty(cx, &[x, y])?;
    if ty == types::I128 {
        let pick_x = cx.b.ins().icmp(cc, x, y);
        Ok(cx.b.ins().select(pick_x, x, y))
    } else {
        Ok(op(cx, x, y))
    }
}

/// `{s,u}{add,sub,mul}.with.overflow`: the wrapped result and the
/// overflow bit.
fn overflow(cx: &mut Cx<'_, '_, '_>, op: &str) -> Result<Vec<ir::Value>, String> {
    cx.arity(2, 2)?;
    let (x, y) = (cx.arg(0), cx.arg(1));
    let ty = same_int_ty(cx, &[x, y])?;
    if ty.is_vector() {
        return Err(cx.err("vector overflow intrinsics"));
    }
    if cx.call.results[1] != types::I8 {
        return Err(cx.err(format!("overflow bit of type {}", cx.call.results[1])));
    }
    if ty == types::I128 && op.ends_with("mul") {
        // Cranelift's x86-64 backend does not lower i128 overflow products.
        return Err(cx.err("i128 multiplication with overflow"));
    }
    let (r, of) = match op {
        "sadd" => cx.b.ins().sadd_overflow(x, y),
        "uadd" => cx.b.ins().uadd_overflow(x, y),
        "ssub" => cx.b.ins().ssub_overflow(x, y),
        "usub" => cx.b.ins().usub_overflow(x, y),
        "smul" => cx.b.ins().smul_overflow(x, y),
        "umul" => cx.b.ins().umul_overflow(x, y),
        _ => return Err(cx.err("unknown overflow operation")),
    };
    Ok(vec![r, of])
}

/// The signed saturation bound in the direction of `x`'s sign: `MIN` if
/// `x < 0`, else `MAX` (`(x >> (w-1)) ^ MAX`).
fn signed_bound(cx: &mut Cx<'_, '_, '_>, x: ir::Value) -> ir::Value {
    let ty = cx.ty(x);
    let w = ty.bits();
    let sh = cx.b.ins().iconst(types::I64, i64::from(w - 1));
    let sign = cx.b.ins().sshr(x, sh);
    let max = cx.int_const(ty, i128::MAX >> (128 - w));
    cx.b.ins().bxor(sign, max)
}

/// A saturating scalar add or subtract (`uadd.sat`...): the overflow
/// form, with the bound selected where it overflowed.
fn saturating(cx: &mut Cx<'_, '_, '_>, op: &str, x: ir::Value, y: ir::Value) -> ir::Value {
    let ty = cx.ty(x);
    let (r, of, bound) = match op {
        "uadd.sat" => {
            let (r, of) = cx.b.ins().uadd_overflow(x, y);
            (r, of, cx.int_const(ty, -1))
        }
        "usub.sat" => {
            let (r, of) = cx.b.ins().usub_overflow(x, y);
            (r, of, cx.int_const(ty, 0))
        }
        "sadd.sat" => {
            // An overflowing sum has the sign of both operands.
            let (r, of) = cx.b.ins().sadd_overflow(x, y);
            (r, of, signed_bound(cx, x))
        }
        _ => {
            // An overflowing difference goes the way of `x`'s sign.
            let (r, of) = cx.b.ins().ssub_overflow(x, y);
            (r, of, signed_bound(cx, x))
        }
    };
    cx.b.ins().select(of, bound, r)
}

/// `ushl.sat`/`sshl.sat` of scalars: the shift, or the bound if shifting
/// back does not give `x` (an amount of at least the width is poison).
fn shl_sat(cx: &mut Cx<'_, '_, '_>, signed: bool, x: ir::Value, s: ir::Value) -> ir::Value {
    let ty = cx.ty(x);
    let r = cx.b.ins().ishl(x, s);
    let (back, bound) = if signed {
        (cx.b.ins().sshr(r, s), signed_bound(cx, x))
    } else {
        (cx.b.ins().ushr(r, s), cx.int_const(ty, -1))
    };
    let lost = cx.b.ins().icmp(IntCC::NotEqual, back, x);
    cx.b.ins().select(lost, bound, r)
}

/// A scalar funnel shift: `fshl(x, y, s)` is the high half of `x:y`
/// shifted left by `s % w`, `fshr` the low half shifted right. A rotate
/// when both inputs are the same value; otherwise two shifts, the second
/// split in a shift by one and one by `w - 1 - s % w` so that no shift
/// is by `w` (Cranelift takes amounts modulo the width).
fn funnel(
    cx: &mut Cx<'_, '_, '_>,
    left: bool,
    x: ir::Value,
    y: ir::Value,
    s: ir::Value,
) -> ir::Value {
    if x == y {
        return if left {
            cx.b.ins().rotl(x, s)
        } else {
            cx.b.ins().rotr(x, s)
        };
    }
    let ty = cx.ty(x);
    let w = i128::from(ty.bits());
    let mask = cx.int_const(ty, w - 1);
    let sm = cx.b.ins().band(s, mask);
    let inv = cx.b.ins().bxor(sm, mask); // w - 1 - sm
    let one = cx.b.ins().iconst(types::I64, 1);
    if left {
        let hi = cx.b.ins().ishl(x, sm);
        let y1 = cx.b.ins().ushr(y, one);
        let lo = cx.b.ins().ushr(y1, inv);
        cx.b.ins().bor(hi, lo)
    } else {
        let lo = cx.b.ins().ushr(y, sm);
        let x1 = cx.b.ins().ishl(x, one);
        let hi = cx.b.ins().ishl(x1, inv);
        cx.b.ins().bor(hi, lo)
    }
}

/// `llvm.vector.reduce.OP`: the lanes folded in order.
fn reduce(cx: &mut Cx<'_, '_, '_>, op: &str) -> Result<ir::Value, String> {
    let ordered = matches!(op, "fadd" | "fmul");
    let (start, v) = if ordered {
        cx.arity(2, 1)?;
        (Some(cx.arg(0)), cx.arg(1))
    } else {
        cx.arity(1, 1)?;
        (None, cx.arg(0))
    };
    let ty = cx.ty(v);
    let lane = ty.lane_type();
    let float = matches!(lane, types::F32 | types::F64);
    let int = lane.is_int() && lane != types::I128;
    let known_int = matches!(
        op,
        "add" | "mul" | "and" | "or" | "xor" | "smin" | "smax" | "umin" | "umax"
    );
    let known_float = matches!(
        op,
        "fadd" | "fmul" | "fmin" | "fmax" | "fminimum" | "fmaximum"
    );
    if !ty.is_vector()
        || ty.bits() != 128
        || !((int && known_int) || (float && known_float))
        || cx.call.results[0] != lane
        || start.is_some_and(|s| cx.ty(s) != lane)
    {
        return Err(cx.err(format!("reduction {op} of {ty}")));
    }
    let mut acc = start;
    for i in 0..ty.lane_count() {
        let i = u8::try_from(i).map_err(|_| cx.err("too many lanes"))?;
        let x = cx.b.ins().extractlane(v, i);
        let Some(a) = acc else {
            acc = Some(x);
            continue;
        };
        let ins = cx.b.ins();
        acc = Some(match op {
            "add" => ins.iadd(a, x),
            "mul" => ins.imul(a, x),
            "and" => ins.band(a, x),
            "or" => ins.bor(a, x),
            "xor" => ins.bxor(a, x),
            "smin" => ins.smin(a, x),
            "smax" => ins.smax(a, x),
            "umin" => ins.umin(a, x),
            "umax" => ins.umax(a, x),
            "fadd" => ins.fadd(a, x),
            "fmul" => ins.fmul(a, x),
            "fminimum" => ins.fmin(a, x),
            "fmaximum" => ins.fmax(a, x),
            "fmin" => float::minnum(cx, a, x),
            _ => float::maxnum(cx, a, x),
        });
    }
    acc.ok_or_else(|| cx.err("empty vector"))
}
