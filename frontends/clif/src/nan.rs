//! NaN canonicalization as a rewrite of CLIF, for files that
//! `set enable_nan_canonicalization=true`.
//!
//! Cranelift's own pass runs only when its compiler's flag is set, and the
//! tier-0 compiler is shared by every module of a JIT. This rewrite gives
//! the same semantics per module: after every instruction whose result can
//! be a NaN made by arithmetic (the rounding and arithmetic operations,
//! `fma`, `sqrt`, promotions and demotions; not `fneg`, `fabs` and
//! `fcopysign`, which only touch the sign), a NaN result is replaced by the
//! canonical quiet NaN of its type (sign clear, only the top significand
//! bit set).

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::immediates::{Ieee128, Ieee16, Ieee32, Ieee64};
use cranelift_codegen::ir::{types, Function, Inst, InstBuilder, MemFlagsData, Opcode, Type};

/// Rewrites `func` so float arithmetic never yields a non-canonical NaN.
pub fn canonicalize_nans(func: &mut Function) {
    let mut pos = FuncCursor::new(func);
    while pos.next_block().is_some() {
        while let Some(inst) = pos.next_inst() {
            if makes_nans(pos.func.dfg.insts[inst].opcode()) {
                canonicalize_result(&mut pos, inst);
            }
        }
    }
}

fn makes_nans(opcode: Opcode) -> bool {
    use Opcode::*;
    matches!(
        opcode,
        Fadd | Fsub
            | Fmul
            | Fdiv
            | Fmin
            | Fmax
            | Fma
            | Sqrt
            | Ceil
            | Floor
            | Trunc
            | Nearest
            | Fpromote
            | Fdemote
            | FvpromoteLow
            | Fvdemote
    )
}

/// Inserts, after `inst`, a select of the canonical NaN when its result is
/// a NaN, and makes the select define the value `inst` defined, so every
/// use sees the canonical result. Leaves the cursor on `inst`.
fn canonicalize_result(pos: &mut FuncCursor, inst: Inst) {
    let val = pos.func.dfg.first_result(inst);
    let ty = pos.func.dfg.value_type(val);
    if canonical_nan_lane(ty).is_none() {
        return;
    }
    let raw = pos.func.dfg.replace_result(val, ty);
    // Insert before the next instruction (a block always ends in a
    // terminator, which `inst` is not: it defines a value).
    if pos.next_inst().is_none() {
        return;
    }
    let is_nan = pos.ins().fcmp(FloatCC::Unordered, raw, raw);
    if ty.is_vector() {
        let lane = ty.lane_type();
        let nan = scalar_nan(pos, lane);
        let nan = pos.ins().splat(ty, nan);
        let mask = pos.ins().bitcast(ty, MemFlagsData::new(), is_nan);
        pos.ins().with_result(val).bitselect(mask, nan, raw);
    } else {
        let nan = scalar_nan(pos, ty);
        pos.ins().with_result(val).select(is_nan, nan, raw);
    }
    pos.prev_inst();
}

fn canonical_nan_lane(ty: Type) -> Option<Type> {
    match ty.lane_type() {
        t @ (types::F16 | types::F32 | types::F64 | types::F128) => Some(t),
        _ => None,
    }
}

fn scalar_nan(pos: &mut FuncCursor, ty: Type) -> cranelift_codegen::ir::Value {
    match ty {
        types::F16 => pos.ins().f16const(Ieee16::NAN),
        types::F32 => pos.ins().f32const(Ieee32::NAN),
        types::F64 => pos.ins().f64const(Ieee64::NAN),
        _ => {
            let c = pos.func.dfg.constants.insert(Ieee128::NAN.into());
            pos.ins().f128const(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::settings;
    use cranelift_reader::parse_functions;

    #[test]
    fn arithmetic_results_are_selected_through_a_nan_check() {
        let mut funcs = parse_functions(
            "function %f(f64, f64, f32x4) -> f64, f64, f32x4 {\n\
             block0(v0: f64, v1: f64, v2: f32x4):\n\
                 v3 = fadd v0, v1\n\
                 v4 = fneg v3\n\
                 v5 = fmul v2, v2\n\
                 return v3, v4, v5\n\
             }",
        )
        .unwrap();
        let func = &mut funcs[0];
        canonicalize_nans(func);
        let flags = settings::Flags::new(settings::builder());
        cranelift_codegen::verify_function(func, &flags).expect("still verifies");
        let text = func.display().to_string();
        assert_eq!(text.matches("fcmp uno").count(), 2, "{text}");
        assert!(text.contains("select"), "{text}");
        assert!(text.contains("bitselect"), "{text}");
        assert!(text.contains("f64const +NaN"), "{text}");
        // fneg still reads the canonicalized sum.
        let v3_def = text.lines().find(|l| l.contains("v3 = select")).is_some();
        assert!(v3_def, "{text}");
    }
}
