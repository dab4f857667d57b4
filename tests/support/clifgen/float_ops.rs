//! Float operations of generated functions: arithmetic, `fma`, min/max,
//! square root, rounding, sign operations, comparisons, `select`,
//! promotion and demotion, conversions to integers (trapping and
//! saturating) and from integers, and bit casts both ways.
//!
//! Each result carries its [`FloatClass`]: arithmetic may make a NaN whose
//! bits are the implementation's choice, so its result is inexact unless
//! NaN canonicalization is on; sign operations and `select` keep their
//! operands' class; the sign source of `fcopysign` and the operand of a
//! float-to-integer `bitcast` are always exact; laundering (any NaN
//! replaced by the canonical one) makes a value exact.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};

use super::builder::{FloatClass, FnGen};

/// Every float comparison.
const FLOAT_CCS: [FloatCC; 14] = [
    FloatCC::Ordered,
    FloatCC::Unordered,
    FloatCC::Equal,
    FloatCC::NotEqual,
    FloatCC::OrderedNotEqual,
    FloatCC::UnorderedOrEqual,
    FloatCC::LessThan,
    FloatCC::LessThanOrEqual,
    FloatCC::GreaterThan,
    FloatCC::GreaterThanOrEqual,
    FloatCC::UnorderedOrLessThan,
    FloatCC::UnorderedOrLessThanOrEqual,
    FloatCC::UnorderedOrGreaterThan,
    FloatCC::UnorderedOrGreaterThanOrEqual,
];

/// The integer types a float converts from.
const CONVERT_INT_TYPES: [Type; 4] = [types::I8, types::I16, types::I32, types::I64];

/// Generates one float operation and assigns its result.
pub(super) fn op(g: &mut FnGen<'_, '_, '_>) {
    let ty = g.float_ty();
    let (v, class) = match g.range(0, 15) {
        0..=2 => arith(g, ty),
        3 | 13 => {
            let x = g.val(ty);
            let choice = g.range(0, 4);
            let ins = g.b.ins();
            let v = match choice {
                0 => ins.sqrt(x),
                1 => ins.ceil(x),
                2 => ins.floor(x),
                3 => ins.trunc(x),
                _ => ins.nearest(x),
            };
            (v, FloatClass::Inexact)
        }
        4 => {
            let x = g.val(ty);
            let y = g.val(ty);
            let z = g.val(ty);
            (g.b.ins().fma(x, y, z), FloatClass::Inexact)
        }
        5 => sign(g, ty),
        6 => {
            let cc = g.pick(&FLOAT_CCS);
            let x = g.val(ty);
            let y = g.val(ty);
            (g.b.ins().fcmp(cc, x, y), FloatClass::Exact)
        }
        7 => {
            let c_ty = g.int_ty();
            let c = g.val(c_ty);
            let (x, cx) = g.val_class(ty);
            let (y, cy) = g.val_class(ty);
            (g.b.ins().select(c, x, y), cx.and(cy))
        }
        8 => {
            if ty == types::F32 {
                let x = g.val(types::F32);
                (g.b.ins().fpromote(types::F64, x), FloatClass::Inexact)
            } else {
                let x = g.val(types::F64);
                (g.b.ins().fdemote(types::F32, x), FloatClass::Inexact)
            }
        }
        9 => to_int(g, ty),
        10 => {
            let int_ty = g.pick(&CONVERT_INT_TYPES);
            let x = g.val(int_ty);
            let v = if g.chance(1, 2) {
                g.b.ins().fcvt_from_uint(ty, x)
            } else {
                g.b.ins().fcvt_from_sint(ty, x)
            };
            (v, FloatClass::Exact)
        }
        11 => bitcast(g, ty),
        14 => {
            // Laundering makes an inexact value exact, so arithmetic
            // results reach bit casts, memory and `fcopysign`'s sign.
            let x = g.val(ty);
            (g.launder(x), FloatClass::Exact)
        }
        _ => (g.constant(ty), FloatClass::Exact),
    };
    g.set(v, class);
}

fn arith(g: &mut FnGen<'_, '_, '_>, ty: Type) -> (Value, FloatClass) {
    let x = g.val(ty);
    let y = g.val(ty);
    let choice = g.range(0, 5);
    let ins = g.b.ins();
    let v = match choice {
        0 => ins.fadd(x, y),
        1 => ins.fsub(x, y),
        2 => ins.fmul(x, y),
        3 => ins.fdiv(x, y),
        4 => ins.fmin(x, y),
        _ => ins.fmax(x, y),
    };
    (v, FloatClass::Inexact)
}

/// `fneg`, `fabs` or `fcopysign` (whose sign source is exact: the sign of
/// an inexact NaN is not determined).
fn sign(g: &mut FnGen<'_, '_, '_>, ty: Type) -> (Value, FloatClass) {
    let (x, class) = g.val_class(ty);
    let v = match g.range(0, 2) {
        0 => g.b.ins().fneg(x),
        1 => g.b.ins().fabs(x),
        _ => {
            let y = g.exact_val(ty);
            g.b.ins().fcopysign(x, y)
        }
    };
    (v, class)
}

/// A conversion to `i32` or `i64` (the widths Cranelift's x86-64 backend
/// converts to; narrower ones panic in its emitter): trapping (NaN and
/// out-of-range inputs trap) or saturating.
fn to_int(g: &mut FnGen<'_, '_, '_>, ty: Type) -> (Value, FloatClass) {
    let x = g.val(ty);
    let choice = g.range(0, 3);
    let int_ty = g.pick(&[types::I32, types::I64]);
    let ins = g.b.ins();
    let v = match choice {
        0 => ins.fcvt_to_uint(int_ty, x),
        1 => ins.fcvt_to_sint(int_ty, x),
        2 => ins.fcvt_to_uint_sat(int_ty, x),
        _ => ins.fcvt_to_sint_sat(int_ty, x),
    };
    (v, FloatClass::Exact)
}

/// A bit cast between a float and the integer of its width, either way.
fn bitcast(g: &mut FnGen<'_, '_, '_>, ty: Type) -> (Value, FloatClass) {
    let int_ty = if ty == types::F32 {
        types::I32
    } else {
        types::I64
    };
    if g.chance(1, 2) {
        let x = g.val(int_ty);
        (
            g.b.ins().bitcast(ty, MemFlagsData::new(), x),
            FloatClass::Exact,
        )
    } else {
        let x = g.exact_val(ty);
        (
            g.b.ins().bitcast(int_ty, MemFlagsData::new(), x),
            FloatClass::Exact,
        )
    }
}
