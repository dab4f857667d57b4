//! Integer operations of generated functions: arithmetic, division and
//! remainder (with raw divisors, so zero and `MIN / -1` trap, or with
//! divisors made safe), shifts and rotates by any amount and of any amount
//! type, bit operations, bit counts, comparisons, `select`, extensions and
//! reductions, overflow arithmetic (flag results and the trapping form),
//! `bmask`, `iconcat`/`isplit`.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, TrapCode, Type, Value};

use super::builder::{sext_imm, FloatClass, FnGen};
use super::INT_TYPES;

/// Every integer comparison.
pub(super) const INT_CCS: [IntCC; 10] = [
    IntCC::Equal,
    IntCC::NotEqual,
    IntCC::SignedLessThan,
    IntCC::SignedGreaterThanOrEqual,
    IntCC::SignedGreaterThan,
    IntCC::SignedLessThanOrEqual,
    IntCC::UnsignedLessThan,
    IntCC::UnsignedGreaterThanOrEqual,
    IntCC::UnsignedGreaterThan,
    IntCC::UnsignedLessThanOrEqual,
];

/// Generates one integer operation and assigns its results.
pub(super) fn op(g: &mut FnGen<'_, '_, '_>) {
    let ty = g.int_ty();
    let v = match g.range(0, 16) {
        0..=2 => binary(g, ty),
        3 | 4 => divide(g, ty),
        5 => shift(g, ty),
        6 => unary(g, ty),
        7 => compare(g, ty),
        8 => {
            let c_ty = g.int_ty();
            let c = g.val(c_ty);
            let x = g.val(ty);
            let y = g.val(ty);
            match g.range(0, 3) {
                0 => g.b.ins().select_spectre_guard(c, x, y),
                1 => {
                    let mask = g.val(ty);
                    g.b.ins().bitselect(mask, x, y)
                }
                _ => g.b.ins().select(c, x, y),
            }
        }
        9 => convert(g, ty),
        10 => return overflow(g, ty),
        11 => with_imm(g, ty),
        12 => g.constant(ty),
        13 => return pair(g),
        14 => {
            let x = g.val(ty);
            let to = g.int_ty();
            g.b.ins().bmask(to, x)
        }
        _ => binary(g, ty),
    };
    g.set(v, FloatClass::Exact);
}

/// A constant `k` of `ty` (any width, `i128` sign-extended from 64 bits).
pub(super) fn int_const(g: &mut FnGen<'_, '_, '_>, ty: Type, k: i64) -> Value {
    if ty == types::I128 {
        let v = g.b.ins().iconst(types::I64, k);
        g.b.ins().sextend(types::I128, v)
    } else {
        g.iconst(ty, k as u64)
    }
}

/// A binary operation. On `i128`, only those Cranelift's x86-64 backend
/// lowers (not the high multiplies, nor min/max).
fn binary(g: &mut FnGen<'_, '_, '_>, ty: Type) -> Value {
    let x = g.val(ty);
    let y = g.val(ty);
    let choice = if ty == types::I128 {
        g.pick(&[0, 1, 2, 5, 6, 7, 8, 9, 10])
    } else {
        g.range(0, 15)
    };
    let ins = g.b.ins();
    match choice {
        0 => ins.iadd(x, y),
        1 => ins.isub(x, y),
        2 => ins.imul(x, y),
        3 => ins.umulhi(x, y),
        4 => ins.smulhi(x, y),
        5 => ins.band(x, y),
        6 => ins.bor(x, y),
        7 => ins.bxor(x, y),
        8 => ins.band_not(x, y),
        9 => ins.bor_not(x, y),
        10 => ins.bxor_not(x, y),
        11 => ins.smin(x, y),
        12 => ins.smax(x, y),
        13 => ins.umin(x, y),
        14 => ins.umax(x, y),
        _ => ins.iadd(x, y),
    }
}

/// Division or remainder. Two times in five the divisor is made positive
/// and odd (`y & MAX | 1`), so the quotient is computed; otherwise it is
/// raw (zero traps with `int_divz`, `MIN / -1` with `int_ovf`), and
/// sometimes the dividend is pinned to `MIN` or the divisor to -1. Not on
/// `i128`, which Cranelift's x86-64 backend does not divide.
fn divide(g: &mut FnGen<'_, '_, '_>, ty: Type) -> Value {
    let ty = if ty == types::I128 { types::I64 } else { ty };
    let mut x = g.val(ty);
    let mut y = g.val(ty);
    let min = sext_imm(1u64 << (ty.bits() - 1), ty.bits());
    match g.range(0, 5) {
        0 | 1 => {
            let max = sext_imm((1u64 << (ty.bits() - 1)) - 1, ty.bits());
            let mask = int_const(g, ty, max);
            let one = int_const(g, ty, 1);
            let masked = g.b.ins().band(y, mask);
            y = g.b.ins().bor(masked, one);
        }
        // The overflowing quotient `MIN / -1` needs both operands at
        // their edge: one of them is pinned there.
        2 => x = int_const(g, ty, min),
        3 => y = int_const(g, ty, -1),
        _ => {}
    }
    let choice = g.range(0, 3);
    let ins = g.b.ins();
    match choice {
        0 => ins.udiv(x, y),
        1 => ins.sdiv(x, y),
        2 => ins.urem(x, y),
        _ => ins.srem(x, y),
    }
}

/// A shift or rotate; the amount has any integer type and is often an
/// edge value (the width, the width minus one, huge values).
fn shift(g: &mut FnGen<'_, '_, '_>, ty: Type) -> Value {
    let x = g.val(ty);
    let amount_ty = g.int_ty();
    let amount = if g.chance(1, 2) {
        g.val(amount_ty)
    } else if amount_ty == types::I128 {
        g.constant(amount_ty)
    } else {
        let k = g.edge_bits(amount_ty.bits());
        g.iconst(amount_ty, k)
    };
    let choice = g.range(0, 4);
    let ins = g.b.ins();
    match choice {
        0 => ins.ishl(x, amount),
        1 => ins.ushr(x, amount),
        2 => ins.sshr(x, amount),
        3 => ins.rotl(x, amount),
        _ => ins.rotr(x, amount),
    }
}

fn unary(g: &mut FnGen<'_, '_, '_>, ty: Type) -> Value {
    let x = g.val(ty);
    let choice = g.range(0, 8);
    let ins = g.b.ins();
    match choice {
        0 => ins.ineg(x),
        1 => ins.iabs(x),
        2 => ins.bnot(x),
        3 => ins.clz(x),
        4 => ins.cls(x),
        5 => ins.ctz(x),
        6 => ins.popcnt(x),
        7 if ty != types::I8 => ins.bswap(x),
        _ => ins.bitrev(x),
    }
}

fn compare(g: &mut FnGen<'_, '_, '_>, ty: Type) -> Value {
    let cc = g.pick(&INT_CCS);
    let x = g.val(ty);
    if ty != types::I128 && g.chance(1, 3) {
        let k = g.edge_bits(ty.bits());
        return g.b.ins().icmp_imm_s(cc, x, sext_imm(k, ty.bits()));
    }
    let y = g.val(ty);
    g.b.ins().icmp(cc, x, y)
}

/// An extension to a wider type or a reduction to a narrower one (a
/// copy when no other width is on that side).
fn convert(g: &mut FnGen<'_, '_, '_>, ty: Type) -> Value {
    let x = g.val(ty);
    let wider: Vec<Type> = INT_TYPES
        .iter()
        .copied()
        .filter(|t| t.bits() > ty.bits())
        .collect();
    let narrower: Vec<Type> = INT_TYPES
        .iter()
        .copied()
        .filter(|t| t.bits() < ty.bits())
        .collect();
    let extend = if wider.is_empty() {
        false
    } else if narrower.is_empty() {
        true
    } else {
        g.chance(1, 2)
    };
    if extend {
        let to = g.pick(&wider);
        if g.chance(1, 2) {
            g.b.ins().uextend(to, x)
        } else {
            g.b.ins().sextend(to, x)
        }
    } else {
        let to = g.pick(&narrower);
        g.b.ins().ireduce(to, x)
    }
}

/// Overflow arithmetic: a result and an `i8` flag, or (for `i32` and
/// `i64`) `uadd_overflow_trap`.
fn overflow(g: &mut FnGen<'_, '_, '_>, ty: Type) {
    let x = g.val(ty);
    let y = g.val(ty);
    if (ty == types::I32 || ty == types::I64) && g.chance(1, 5) {
        let code = TrapCode::unwrap_user(g.range(1, 100) as u8);
        let v = g.b.ins().uadd_overflow_trap(x, y, code);
        g.set(v, FloatClass::Exact);
        return;
    }
    let choice = g.range(0, 5);
    // No multiply with overflow flag on `i128` (the verifier's rule).
    let choice = if ty == types::I128 {
        choice % 4
    } else {
        choice
    };
    let ins = g.b.ins();
    let (v, of) = match choice {
        0 => ins.uadd_overflow(x, y),
        1 => ins.sadd_overflow(x, y),
        2 => ins.usub_overflow(x, y),
        3 => ins.ssub_overflow(x, y),
        4 => ins.umul_overflow(x, y),
        _ => ins.smul_overflow(x, y),
    };
    g.set(v, FloatClass::Exact);
    g.set(of, FloatClass::Exact);
}

/// An operation with an immediate operand (not on `i128`, whose
/// immediates are only 64 bits).
fn with_imm(g: &mut FnGen<'_, '_, '_>, ty: Type) -> Value {
    let ty = if ty == types::I128 { types::I64 } else { ty };
    let x = g.val(ty);
    let k = g.edge_bits(ty.bits());
    let k = sext_imm(k, ty.bits());
    let choice = g.range(0, 9);
    let ins = g.b.ins();
    match choice {
        0 => ins.iadd_imm_s(x, k),
        1 => ins.imul_imm_s(x, k),
        2 => ins.band_imm_s(x, k),
        3 => ins.bor_imm_s(x, k),
        4 => ins.bxor_imm_s(x, k),
        5 => ins.ishl_imm_s(x, k),
        6 => ins.ushr_imm_s(x, k),
        7 => ins.sshr_imm_s(x, k),
        8 => ins.rotl_imm_s(x, k),
        9 => ins.rotr_imm_s(x, k),
        _ => ins.iadd_imm_s(x, k),
    }
}

/// `isplit` of an `i128` or `iconcat` of two `i64`s.
fn pair(g: &mut FnGen<'_, '_, '_>) {
    if g.chance(1, 2) {
        let x = g.val(types::I128);
        let (lo, hi) = g.b.ins().isplit(x);
        g.set(lo, FloatClass::Exact);
        g.set(hi, FloatClass::Exact);
    } else {
        let lo = g.val(types::I64);
        let hi = g.val(types::I64);
        let v = g.b.ins().iconcat(lo, hi);
        g.set(v, FloatClass::Exact);
    }
}
