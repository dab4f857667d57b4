//! Float instructions: constants, IEEE arithmetic (no fast-math flags, no
//! contraction), `fmin`/`fmax` as `llvm.minimum`/`llvm.maximum` (NaN
//! propagating, -0 < +0), rounding, comparisons with every `FloatCC`,
//! conversions (trapping and saturating) and bitcasts.
//!
//! With `TranslateConfig::nan_canonicalization`, the results of the
//! instructions Cranelift's NaN canonicalization pass covers are replaced by
//! the canonical NaN when they are NaN (the same list as that pass).
//! Conversions to integers never produce poison: `fcvt_to_*int` traps before
//! an out-of-range `fptosi`/`fptoui` (NaN: `BAD_CONVERSION_TO_INTEGER`, out
//! of range: `INTEGER_OVERFLOW`), and the `_sat` forms use
//! `llvm.fpto*i.sat`.

use cranelift_codegen::ir::{self, condcodes::FloatCC, InstructionData, Opcode, TrapCode};
use inkwell::types::BasicTypeEnum;
use inkwell::values::InstructionOpcode as Op;
use inkwell::values::{BasicValueEnum, FloatValue};
use inkwell::FloatPredicate;

use super::function::{Fail, Fx, Res};

/// The LLVM predicate of a CLIF float condition.
pub(super) fn float_predicate(cc: FloatCC) -> FloatPredicate {
    match cc {
        FloatCC::Ordered => FloatPredicate::ORD,
        FloatCC::Unordered => FloatPredicate::UNO,
        FloatCC::Equal => FloatPredicate::OEQ,
        FloatCC::NotEqual => FloatPredicate::UNE,
        FloatCC::OrderedNotEqual => FloatPredicate::ONE,
        FloatCC::UnorderedOrEqual => FloatPredicate::UEQ,
        FloatCC::LessThan => FloatPredicate::OLT,
        FloatCC::LessThanOrEqual => FloatPredicate::OLE,
        FloatCC::GreaterThan => FloatPredicate::OGT,
        FloatCC::GreaterThanOrEqual => FloatPredicate::OGE,
        FloatCC::UnorderedOrLessThan => FloatPredicate::ULT,
        FloatCC::UnorderedOrLessThanOrEqual => FloatPredicate::ULE,
        FloatCC::UnorderedOrGreaterThan => FloatPredicate::UGT,
        FloatCC::UnorderedOrGreaterThanOrEqual => FloatPredicate::UGE,
    }
}

/// Whether Cranelift's NaN canonicalization rewrites `opcode`'s result.
pub(super) fn canonicalized(opcode: Opcode) -> bool {
    matches!(
        opcode,
        Opcode::Ceil
            | Opcode::Floor
            | Opcode::Nearest
            | Opcode::Sqrt
            | Opcode::Trunc
            | Opcode::Fdemote
            | Opcode::Fpromote
            | Opcode::FvpromoteLow
            | Opcode::Fvdemote
            | Opcode::Fadd
            | Opcode::Fdiv
            | Opcode::Fmax
            | Opcode::Fmin
            | Opcode::Fmul
            | Opcode::Fsub
            | Opcode::Fma
    )
}

impl<'ctx> Fx<'_, 'ctx> {
    /// Lowers `inst` if it is a scalar float instruction.
    pub(super) fn float_op(
        &mut self,
        inst: ir::Inst,
        opcode: Opcode,
        data: &InstructionData,
    ) -> Res<Option<Vec<BasicValueEnum<'ctx>>>> {
        let dfg = &self.func.dfg;
        let args = dfg.inst_args(inst);
        let ctrl = dfg.ctrl_typevar(inst);
        let arg = |i: usize| -> Res<BasicValueEnum<'ctx>> {
            let v = args
                .get(i)
                .ok_or_else(|| Fail::Invalid(format!("{opcode} lacks operand {i}")))?;
            self.val(*v)
        };
        let farg = |i: usize| -> Res<FloatValue<'ctx>> {
            match arg(i)? {
                BasicValueEnum::FloatValue(f) => Ok(f),
                _ => Err(Fail::Invalid(format!(
                    "operand {i} of {opcode} is not a float"
                ))),
            }
        };
        let v: BasicValueEnum<'ctx> = match (opcode, *data) {
            (Opcode::F32const, InstructionData::UnaryIeee32 { imm, .. }) => {
                let bits = self.ctx.i32_type().const_int(u64::from(imm.bits()), false);
                self.b.build_bit_cast(bits, self.ctx.f32_type(), "")?
            }
            (Opcode::F64const, InstructionData::UnaryIeee64 { imm, .. }) => {
                let bits = self.ctx.i64_type().const_int(imm.bits(), false);
                self.b.build_bit_cast(bits, self.ctx.f64_type(), "")?
            }
            (Opcode::Fadd | Opcode::Fsub | Opcode::Fmul | Opcode::Fdiv, _) => {
                let op = match opcode {
                    Opcode::Fadd => Op::FAdd,
                    Opcode::Fsub => Op::FSub,
                    Opcode::Fmul => Op::FMul,
                    _ => Op::FDiv,
                };
                self.b.build_binop(op, arg(0)?, arg(1)?, "")?
            }
            (Opcode::Fneg, _) => self.b.build_float_neg(farg(0)?, "")?.into(),
            (
                Opcode::Sqrt
                | Opcode::Fabs
                | Opcode::Ceil
                | Opcode::Floor
                | Opcode::Trunc
                | Opcode::Nearest,
                _,
            ) => {
                let name = match opcode {
                    Opcode::Sqrt => "llvm.sqrt",
                    Opcode::Fabs => "llvm.fabs",
                    Opcode::Ceil => "llvm.ceil",
                    Opcode::Floor => "llvm.floor",
                    Opcode::Trunc => "llvm.trunc",
                    _ => "llvm.roundeven",
                };
                let x = arg(0)?;
                self.call_intrinsic(name, &[x.get_type()], &[x])?
            }
            (Opcode::Fmin | Opcode::Fmax | Opcode::Fcopysign, _) => {
                let name = match opcode {
                    Opcode::Fmin => "llvm.minimum",
                    Opcode::Fmax => "llvm.maximum",
                    _ => "llvm.copysign",
                };
                let (x, y) = (arg(0)?, arg(1)?);
                self.call_intrinsic(name, &[x.get_type()], &[x, y])?
            }
            (Opcode::Fma, _) => {
                let (x, y, z) = (arg(0)?, arg(1)?, arg(2)?);
                self.call_intrinsic("llvm.fma", &[x.get_type()], &[x, y, z])?
            }
            (Opcode::Fcmp, InstructionData::FloatCompare { cond, .. }) => {
                let c =
                    self.b
                        .build_float_compare(float_predicate(cond), farg(0)?, farg(1)?, "")?;
                self.b.build_int_z_extend(c, self.ctx.i8_type(), "")?.into()
            }
            (Opcode::Fpromote, _) => {
                let t = self.ty(ctrl).into_float_type();
                self.b.build_float_ext(farg(0)?, t, "")?.into()
            }
            (Opcode::Fdemote, _) => {
                let t = self.ty(ctrl).into_float_type();
                self.b.build_float_trunc(farg(0)?, t, "")?.into()
            }
            (Opcode::FcvtFromSint | Opcode::FcvtFromUint, _) => {
                let t = self.ty(ctrl).into_float_type();
                let x = self.int(args[0])?;
                if opcode == Opcode::FcvtFromSint {
                    self.b.build_signed_int_to_float(x, t, "")?.into()
                } else {
                    self.b.build_unsigned_int_to_float(x, t, "")?.into()
                }
            }
            (Opcode::FcvtToSintSat | Opcode::FcvtToUintSat, _) => {
                let t = self.ty(ctrl);
                let x = arg(0)?;
                let name = if opcode == Opcode::FcvtToSintSat {
                    "llvm.fptosi.sat"
                } else {
                    "llvm.fptoui.sat"
                };
                self.call_intrinsic(name, &[t, x.get_type()], &[x])?
            }
            (Opcode::FcvtToSint | Opcode::FcvtToUint, _) => {
                self.fcvt_checked(opcode == Opcode::FcvtToSint, farg(0)?, ctrl)?
            }
            (Opcode::Bitcast, _) => {
                let t = self.ty(ctrl);
                self.b.build_bit_cast(arg(0)?, t, "")?
            }
            _ => return Ok(None),
        };
        let v = if self.config.nan_canonicalization && canonicalized(opcode) {
            self.canonicalize_nan(v)?
        } else {
            v
        };
        Ok(Some(vec![v]))
    }

    /// `v` with a NaN replaced by the canonical quiet NaN of its type
    /// (lane-wise for vectors).
    pub(super) fn canonicalize_nan(&self, v: BasicValueEnum<'ctx>) -> Res<BasicValueEnum<'ctx>> {
        let ty = v.get_type();
        let (bits, int_ty) = match ty {
            BasicTypeEnum::FloatType(f) if f == self.ctx.f32_type() => {
                (0x7fc0_0000, self.ctx.i32_type())
            }
            BasicTypeEnum::FloatType(_) => (0x7ff8_0000_0000_0000, self.ctx.i64_type()),
            BasicTypeEnum::VectorType(vt) => {
                let lane_is_f32 = vt.get_element_type() == self.ctx.f32_type().into();
                if lane_is_f32 {
                    (0x7fc0_0000, self.ctx.i32_type())
                } else {
                    (0x7ff8_0000_0000_0000, self.ctx.i64_type())
                }
            }
            _ => return Ok(v),
        };
        let canon_lane = int_ty.const_int(bits, false);
        let canon: BasicValueEnum<'ctx> = match ty {
            BasicTypeEnum::VectorType(vt) => {
                let lanes: Vec<_> = (0..vt.get_size()).map(|_| canon_lane).collect();
                inkwell::types::VectorType::const_vector(&lanes).into()
            }
            _ => canon_lane.into(),
        };
        let canon = self.b.build_bit_cast(canon, ty, "")?;
        let is_nan: BasicValueEnum<'ctx> = match v {
            BasicValueEnum::FloatValue(f) => self
                .b
                .build_float_compare(FloatPredicate::UNO, f, f, "")?
                .into(),
            BasicValueEnum::VectorValue(x) => self
                .b
                .build_float_compare(FloatPredicate::UNO, x, x, "")?
                .into(),
            _ => return Ok(v),
        };
        Ok(match is_nan {
            BasicValueEnum::IntValue(c) => self.b.build_select(c, canon, v, "")?,
            BasicValueEnum::VectorValue(c) => self.b.build_select(c, canon, v, "")?,
            _ => v,
        })
    }

    /// `fcvt_to_sint`/`fcvt_to_uint`: traps on NaN and out-of-range inputs,
    /// then converts (the conversion is in range, so never poison).
    fn fcvt_checked(
        &mut self,
        signed: bool,
        x: FloatValue<'ctx>,
        to: ir::Type,
    ) -> Res<BasicValueEnum<'ctx>> {
        let ft = x.get_type();
        let nan = self.b.build_float_compare(FloatPredicate::UNO, x, x, "")?;
        self.trap_if(nan, TrapCode::BAD_CONVERSION_TO_INTEGER)?;
        let n = to.bits() as i32;
        let t = self
            .call_intrinsic("llvm.trunc", &[ft.into()], &[x.into()])?
            .into_float_value();
        // Both bounds are powers of two, exact in f32 and f64.
        let (lo, hi) = if signed {
            (-(2f64.powi(n - 1)), 2f64.powi(n - 1))
        } else {
            (0.0, 2f64.powi(n))
        };
        let below = self
            .b
            .build_float_compare(FloatPredicate::OLT, t, ft.const_float(lo), "")?;
        let above = self
            .b
            .build_float_compare(FloatPredicate::OGE, t, ft.const_float(hi), "")?;
        let out = self.b.build_or(below, above, "")?;
        self.trap_if(out, TrapCode::INTEGER_OVERFLOW)?;
        let it = self.ty(to).into_int_type();
        Ok(if signed {
            self.b.build_float_to_signed_int(x, it, "")?.into()
        } else {
            self.b.build_float_to_unsigned_int(x, it, "")?.into()
        })
    }
}
