//! 128-bit SIMD: every instruction with a vector operand or result. The
//! lane-wise operations map to LLVM's vector instructions and intrinsics;
//! the ones LLVM lacks a generic form of are built from shuffles, widening
//! and clamping with Cranelift's exact lane semantics (`shuffle` and
//! `swizzle` lanes out of range are zero, narrowing saturates, shift
//! amounts are masked to the lane width, comparisons give all-ones lanes).
//!
//! Invariant: [`supports`] lists exactly what [`Fx::simd`] lowers; the
//! check runs first, so an unlisted instruction never reaches LLVM.

use cranelift_codegen::ir::{self, types, Endianness, InstructionData, Opcode, Type};
use inkwell::types::{BasicType, BasicTypeEnum, VectorType};
use inkwell::values::{BasicValue, BasicValueEnum, InstructionOpcode as Op, IntValue, VectorValue};
use inkwell::IntPredicate;

use super::float::{canonicalized, float_predicate};
use super::function::{Fail, Fx, Res};
use super::int::int_predicate;

/// Whether the SIMD lowering covers `inst` (which has a vector operand or
/// result).
pub(super) fn supports(func: &ir::Function, inst: ir::Inst) -> bool {
    use Opcode as O;
    let dfg = &func.dfg;
    let data = &dfg.insts[inst];
    let opcode = data.opcode();
    let big =
        |flags: ir::MemFlags| dfg.mem_flags[flags].explicit_endianness() == Some(Endianness::Big);
    match data {
        InstructionData::Load { flags, .. } | InstructionData::Store { flags, .. }
            if big(*flags) =>
        {
            return false
        }
        _ => {}
    }
    if opcode == O::Bitcast {
        if let InstructionData::LoadNoOffset { flags, .. } = data {
            if big(*flags) {
                return false;
            }
        }
    }
    if opcode == O::Shuffle {
        // Lanes of 32 and more select zero in Cranelift: supported too.
        return true;
    }
    let ctrl = dfg.ctrl_typevar(inst);
    let lane = ctrl.lane_type();
    let listed = match opcode {
        O::Jump
        | O::Brif
        | O::BrTable
        | O::Return
        | O::Call
        | O::CallIndirect
        | O::Load
        | O::Store
        | O::Select
        | O::SelectSpectreGuard
        | O::Nop
        | O::Vconst
        | O::Splat
        | O::Extractlane
        | O::Insertlane
        | O::Swizzle
        | O::Iadd
        | O::Isub
        | O::Ineg
        | O::Iabs
        | O::Band
        | O::Bor
        | O::Bxor
        | O::Bnot
        | O::Smin
        | O::Smax
        | O::Umin
        | O::Umax
        | O::UaddSat
        | O::SaddSat
        | O::UsubSat
        | O::SsubSat
        | O::AvgRound
        | O::Popcnt
        | O::Ishl
        | O::Ushr
        | O::Sshr
        | O::Icmp
        | O::Fcmp
        | O::Bitselect
        | O::VanyTrue
        | O::VallTrue
        | O::VhighBits
        | O::SwidenLow
        | O::SwidenHigh
        | O::UwidenLow
        | O::UwidenHigh
        | O::Snarrow
        | O::Unarrow
        | O::Uunarrow
        | O::IaddPairwise
        | O::SqmulRoundSat
        | O::Fadd
        | O::Fsub
        | O::Fmul
        | O::Fdiv
        | O::Sqrt
        | O::Fneg
        | O::Fabs
        | O::Fcopysign
        | O::Fmin
        | O::Fmax
        | O::Ceil
        | O::Floor
        | O::Trunc
        | O::Nearest
        | O::Fma
        | O::FcvtFromSint
        | O::FcvtFromUint
        | O::FcvtToSintSat
        | O::FcvtToUintSat
        | O::FvpromoteLow
        | O::Fvdemote
        | O::Bitcast
        | O::ScalarToVector
        | O::Bmask
        | O::Uload8x8
        | O::Sload8x8
        | O::Uload16x4
        | O::Sload16x4
        | O::Uload32x2
        | O::Sload32x2 => true,
        O::Imul => lane != types::I8,
        O::X86Pshufb | O::X86Pmaddubsw | O::Blendv => true,
        O::X86Pmulhrsw => ctrl == types::I16X8,
        O::X86Cvtt2dq => dfg.value_type(dfg.inst_args(inst)[0]) == types::F32X4,
        _ => false,
    };
    listed
        && match opcode {
            // A lane mask of the same shape only.
            O::Bmask => {
                let from = dfg.value_type(dfg.inst_args(inst)[0]);
                let to = dfg.value_type(dfg.inst_results(inst)[0]);
                from.is_vector() && to.is_vector() && from.lane_count() == to.lane_count()
            }
            _ => true,
        }
}

impl<'ctx> Fx<'_, 'ctx> {
    /// Lowers an instruction with a vector operand or result.
    pub(super) fn simd(
        &mut self,
        inst: ir::Inst,
        opcode: Opcode,
        data: &InstructionData,
    ) -> Res<()> {
        use Opcode as O;
        match opcode {
            O::Load | O::Store | O::Call | O::CallIndirect => {
                return self.lower(inst, opcode, data);
            }
            O::Select | O::SelectSpectreGuard
                if !self.vty(self.func.dfg.inst_args(inst)[0]).is_vector() =>
            {
                return self.lower(inst, opcode, data);
            }
            _ => {}
        }
        let dfg = &self.func.dfg;
        let args = dfg.inst_args(inst).to_vec();
        // The result's type: for most instructions the controlling type,
        // but not for widening, narrowing or extending loads.
        let ctrl = dfg
            .inst_results(inst)
            .first()
            .map(|&r| dfg.value_type(r))
            .unwrap_or_else(|| dfg.ctrl_typevar(inst));
        let arg = |i: usize| -> Res<BasicValueEnum<'ctx>> {
            let v = args
                .get(i)
                .ok_or_else(|| Fail::Invalid(format!("{opcode} lacks operand {i}")))?;
            self.val(*v)
        };
        let varg = |i: usize| -> Res<VectorValue<'ctx>> {
            match arg(i)? {
                BasicValueEnum::VectorValue(v) => Ok(v),
                _ => Err(Fail::Invalid(format!(
                    "operand {i} of {opcode} is not a vector"
                ))),
            }
        };
        let bin = |op: Op| -> Res<BasicValueEnum<'ctx>> {
            Ok(self.b.build_binop(op, arg(0)?, arg(1)?, "")?)
        };
        let intr = |name: &str, n: usize| -> Res<BasicValueEnum<'ctx>> {
            let vals: Vec<BasicValueEnum<'ctx>> = (0..n).map(&arg).collect::<Res<_>>()?;
            self.call_intrinsic(name, &[vals[0].get_type()], &vals)
        };
        let i32c = |x: u64| self.ctx.i32_type().const_int(x, false);
        let v: BasicValueEnum<'ctx> = match (opcode, *data) {
            (
                O::Vconst,
                InstructionData::UnaryConst {
                    constant_handle, ..
                },
            ) => {
                let bytes = dfg.constants.get(constant_handle).as_slice().to_vec();
                self.bytes_const(&bytes, ctrl)?
            }
            (O::Splat, _) => self
                .splat(self.ty(ctrl).into_vector_type(), arg(0)?)?
                .into(),
            (O::ScalarToVector, _) => {
                let vt = self.ty(ctrl).into_vector_type();
                self.b
                    .build_insert_element(vt.const_zero(), arg(0)?, i32c(0), "")?
                    .into()
            }
            (O::Extractlane, InstructionData::BinaryImm8 { imm, .. }) => self
                .b
                .build_extract_element(varg(0)?, i32c(u64::from(imm)), "")?,
            (O::Insertlane, InstructionData::TernaryImm8 { imm, .. }) => self
                .b
                .build_insert_element(varg(0)?, arg(1)?, i32c(u64::from(imm)), "")?
                .into(),
            (O::Shuffle, InstructionData::Shuffle { imm, .. }) => {
                let mask = dfg.immediates.get(imm).map(|c| c.as_slice().to_vec());
                let mask = mask.ok_or_else(|| Fail::Invalid("shuffle without a mask".into()))?;
                self.shuffle_bytes(varg(0)?, varg(1)?, &mask)?.into()
            }
            (O::Swizzle, _) => self.swizzle(varg(0)?, varg(1)?)?.into(),
            (O::Iadd, _) => bin(Op::Add)?,
            (O::Isub, _) => bin(Op::Sub)?,
            (O::Imul, _) => bin(Op::Mul)?,
            (O::Band, _) => bin(Op::And)?,
            (O::Bor, _) => bin(Op::Or)?,
            (O::Bxor, _) => bin(Op::Xor)?,
            (O::Fadd, _) => bin(Op::FAdd)?,
            (O::Fsub, _) => bin(Op::FSub)?,
            (O::Fmul, _) => bin(Op::FMul)?,
            (O::Fdiv, _) => bin(Op::FDiv)?,
            (O::Bnot, _) => {
                let x = varg(0)?;
                let ones = self.all_ones_like(x)?;
                self.b.build_xor(x, ones, "")?.into()
            }
            (O::Ineg, _) => self.b.build_int_neg(varg(0)?, "")?.into(),
            (O::Fneg, _) => self.b.build_float_neg(varg(0)?, "")?.into(),
            (O::Iabs, _) => {
                let x = arg(0)?;
                let f = self.ctx.bool_type().const_zero().into();
                self.call_intrinsic("llvm.abs", &[x.get_type()], &[x, f])?
            }
            (O::Smin, _) => intr("llvm.smin", 2)?,
            (O::Smax, _) => intr("llvm.smax", 2)?,
            (O::Umin, _) => intr("llvm.umin", 2)?,
            (O::Umax, _) => intr("llvm.umax", 2)?,
            (O::UaddSat, _) => intr("llvm.uadd.sat", 2)?,
            (O::SaddSat, _) => intr("llvm.sadd.sat", 2)?,
            (O::UsubSat, _) => intr("llvm.usub.sat", 2)?,
            (O::SsubSat, _) => intr("llvm.ssub.sat", 2)?,
            (O::Popcnt, _) => intr("llvm.ctpop", 1)?,
            (O::Sqrt, _) => intr("llvm.sqrt", 1)?,
            (O::Fabs, _) => intr("llvm.fabs", 1)?,
            (O::Ceil, _) => intr("llvm.ceil", 1)?,
            (O::Floor, _) => intr("llvm.floor", 1)?,
            (O::Trunc, _) => intr("llvm.trunc", 1)?,
            (O::Nearest, _) => intr("llvm.roundeven", 1)?,
            (O::Fmin, _) => intr("llvm.minimum", 2)?,
            (O::Fmax, _) => intr("llvm.maximum", 2)?,
            (O::Fcopysign, _) => intr("llvm.copysign", 2)?,
            (O::Fma, _) => intr("llvm.fma", 3)?,
            (O::AvgRound, _) => {
                // (x + y + 1) >> 1 without losing the carry: in twice the width.
                let (x, y) = (varg(0)?, varg(1)?);
                let wide = self.widen_type(x.get_type())?;
                let xw = self.b.build_int_z_extend(x, wide, "")?;
                let yw = self.b.build_int_z_extend(y, wide, "")?;
                let s = self.b.build_int_add(xw, yw, "")?;
                let one = self.splat_int(wide, 1)?;
                let s = self.b.build_int_add(s, one, "")?;
                let s = self.b.build_right_shift(s, one, false, "")?;
                self.b.build_int_truncate(s, x.get_type(), "")?.into()
            }
            (O::Ishl | O::Ushr | O::Sshr, _) => {
                let x = varg(0)?;
                let lane_bits = ctrl.lane_bits();
                let amt = self.int(args[1])?;
                let lane_ty = x.get_type().get_element_type().into_int_type();
                let amt = self.b.build_int_cast_sign_flag(amt, lane_ty, false, "")?;
                let amt = self.b.build_and(
                    amt,
                    lane_ty.const_int(u64::from(lane_bits - 1), false),
                    "",
                )?;
                let amt = self.splat(x.get_type(), amt.into())?;
                match opcode {
                    O::Ishl => self.b.build_left_shift(x, amt, "")?.into(),
                    O::Ushr => self.b.build_right_shift(x, amt, false, "")?.into(),
                    _ => self.b.build_right_shift(x, amt, true, "")?.into(),
                }
            }
            (O::Icmp, InstructionData::IntCompare { cond, .. }) => {
                let c = self
                    .b
                    .build_int_compare(int_predicate(cond), varg(0)?, varg(1)?, "")?;
                self.b
                    .build_int_s_extend(c, self.ty(ctrl).into_vector_type(), "")?
                    .into()
            }
            (O::Fcmp, InstructionData::FloatCompare { cond, .. }) => {
                let x = varg(0)?;
                let c = self
                    .b
                    .build_float_compare(float_predicate(cond), x, varg(1)?, "")?;
                let int_vt = self.int_vector_like(x.get_type())?;
                self.b.build_int_s_extend(c, int_vt, "")?.into()
            }
            (O::Bitselect, _) => {
                let vt = self.ty(ctrl);
                let c = self.as_ints(arg(0)?)?;
                let x = self.as_ints(arg(1)?)?;
                let y = self.as_ints(arg(2)?)?;
                let a = self.b.build_and(c, x, "")?;
                let nc = self.b.build_xor(c, self.all_ones_like(c)?, "")?;
                let o = self.b.build_and(nc, y, "")?;
                let r = self.b.build_or(a, o, "")?;
                self.b.build_bit_cast(r, vt, "")?
            }
            (O::Select | O::SelectSpectreGuard, _) => {
                let c = self.as_ints(arg(0)?)?;
                let zero = c.get_type().const_zero();
                let m = self.b.build_int_compare(IntPredicate::NE, c, zero, "")?;
                self.b.build_select(m, arg(1)?, arg(2)?, "")?
            }
            (O::VanyTrue | O::VallTrue, _) => {
                let x = self.as_ints(arg(0)?)?;
                let zero = x.get_type().const_zero();
                let m = self.b.build_int_compare(IntPredicate::NE, x, zero, "")?;
                let name = if opcode == O::VanyTrue {
                    "llvm.vector.reduce.or"
                } else {
                    "llvm.vector.reduce.and"
                };
                let r = self
                    .call_intrinsic(name, &[m.get_type().into()], &[m.into()])?
                    .into_int_value();
                self.b.build_int_z_extend(r, self.ctx.i8_type(), "")?.into()
            }
            (O::VhighBits, _) => {
                let x = self.as_ints(arg(0)?)?;
                let zero = x.get_type().const_zero();
                let m = self.b.build_int_compare(IntPredicate::SLT, x, zero, "")?;
                let n = x.get_type().get_size();
                let bits = super::abi::int_type(&self.ctx, n);
                let b = self.b.build_bit_cast(m, bits, "")?.into_int_value();
                let t = self.ty(ctrl).into_int_type();
                self.b.build_int_cast_sign_flag(b, t, false, "")?.into()
            }
            (O::Bmask, _) => {
                let x = self.as_ints(arg(0)?)?;
                let zero = x.get_type().const_zero();
                let m = self.b.build_int_compare(IntPredicate::NE, x, zero, "")?;
                let t = self.ty(ctrl);
                match t {
                    BasicTypeEnum::VectorType(vt) => self.b.build_int_s_extend(m, vt, "")?.into(),
                    _ => return Err(Fail::Unsupported(format!("bmask to {ctrl}"))),
                }
            }
            (O::SwidenLow | O::SwidenHigh | O::UwidenLow | O::UwidenHigh, _) => {
                let x = varg(0)?;
                let high = matches!(opcode, O::SwidenHigh | O::UwidenHigh);
                let half = self.half(x, high)?;
                let t = self.ty(ctrl).into_vector_type();
                if matches!(opcode, O::SwidenLow | O::SwidenHigh) {
                    self.b.build_int_s_extend(half, t, "")?.into()
                } else {
                    self.b.build_int_z_extend(half, t, "")?.into()
                }
            }
            (O::Snarrow | O::Unarrow | O::Uunarrow, _) => {
                let (x, y) = (varg(0)?, varg(1)?);
                let both = self.concat(x, y)?;
                let out = self.ty(ctrl).into_vector_type();
                let out_lane = out.get_element_type().into_int_type().get_bit_width();
                let wide_vt = both.get_type();
                let (lo, hi): (i128, i128) = match opcode {
                    O::Snarrow => (-(1i128 << (out_lane - 1)), (1i128 << (out_lane - 1)) - 1),
                    _ => (0, (1i128 << out_lane) - 1),
                };
                let lo_v = self.splat_int(wide_vt, lo as u64)?;
                let hi_v = self.splat_int(wide_vt, hi as u64)?;
                let (maxf, minf) = if opcode == O::Uunarrow {
                    ("llvm.umax", "llvm.umin")
                } else {
                    ("llvm.smax", "llvm.smin")
                };
                let t = [wide_vt.as_basic_type_enum()];
                let c = self.call_intrinsic(maxf, &t, &[both.into(), lo_v.into()])?;
                let c = self.call_intrinsic(minf, &t, &[c, hi_v.into()])?;
                self.b
                    .build_int_truncate(c.into_vector_value(), out, "")?
                    .into()
            }
            (O::IaddPairwise, _) => {
                let (x, y) = (varg(0)?, varg(1)?);
                let n = x.get_type().get_size();
                let evens: Vec<u32> = (0..n).map(|i| 2 * i).collect();
                let odds: Vec<u32> = (0..n).map(|i| 2 * i + 1).collect();
                let e = self.shuffle(x, y, &evens)?;
                let o = self.shuffle(x, y, &odds)?;
                self.b.build_int_add(e, o, "")?.into()
            }
            (O::SqmulRoundSat, _) => {
                let (x, y) = (varg(0)?, varg(1)?);
                let vt = x.get_type();
                let bits = vt.get_element_type().into_int_type().get_bit_width();
                let wide = self.widen_type(vt)?;
                let xw = self.b.build_int_s_extend(x, wide, "")?;
                let yw = self.b.build_int_s_extend(y, wide, "")?;
                let p = self.b.build_int_mul(xw, yw, "")?;
                let round = self.splat_int(wide, 1u64 << (bits - 2))?;
                let p = self.b.build_int_add(p, round, "")?;
                let sh = self.splat_int(wide, u64::from(bits - 1))?;
                let p = self.b.build_right_shift(p, sh, true, "")?;
                let lo = self.splat_int(wide, (-(1i64 << (bits - 1))) as u64)?;
                let hi = self.splat_int(wide, ((1i64 << (bits - 1)) - 1) as u64)?;
                let t = [wide.as_basic_type_enum()];
                let c = self.call_intrinsic("llvm.smax", &t, &[p.into(), lo.into()])?;
                let c = self.call_intrinsic("llvm.smin", &t, &[c, hi.into()])?;
                self.b
                    .build_int_truncate(c.into_vector_value(), vt, "")?
                    .into()
            }
            (O::FcvtFromSint | O::FcvtFromUint, _) => {
                let t = self.ty(ctrl).into_vector_type();
                let x = varg(0)?;
                let op = if opcode == O::FcvtFromSint {
                    Op::SIToFP
                } else {
                    Op::UIToFP
                };
                self.b.build_cast(op, x, t, "")?
            }
            (O::FcvtToSintSat | O::FcvtToUintSat, _) => {
                let t = self.ty(ctrl);
                let x = arg(0)?;
                let name = if opcode == O::FcvtToSintSat {
                    "llvm.fptosi.sat"
                } else {
                    "llvm.fptoui.sat"
                };
                self.call_intrinsic(name, &[t, x.get_type()], &[x])?
            }
            (O::FvpromoteLow, _) => {
                let x = varg(0)?;
                let low = self.half(x, false)?;
                let t = self.ty(ctrl).into_vector_type();
                self.b.build_float_ext(low, t, "")?.into()
            }
            (O::Fvdemote, _) => {
                let x = varg(0)?;
                let f32x2 = self.ctx.f32_type().vec_type(2);
                let d = self.b.build_float_trunc(x, f32x2, "")?;
                let zero = f32x2.const_zero();
                self.shuffle(d, zero, &[0, 1, 2, 3])?.into()
            }
            (O::Bitcast, _) => self.b.build_bit_cast(arg(0)?, self.ty(ctrl), "")?,
            (O::X86Pshufb, _) => {
                self.call_intrinsic("llvm.x86.ssse3.pshuf.b.128", &[], &[arg(0)?, arg(1)?])?
            }
            (O::X86Pmulhrsw, _) => {
                self.call_intrinsic("llvm.x86.ssse3.pmul.hr.sw.128", &[], &[arg(0)?, arg(1)?])?
            }
            // Cranelift's operands are (signed, unsigned); the instruction's
            // are (unsigned, signed).
            (O::X86Pmaddubsw, _) => {
                self.call_intrinsic("llvm.x86.ssse3.pmadd.ub.sw.128", &[], &[arg(1)?, arg(0)?])?
            }
            (O::X86Cvtt2dq, _) => {
                self.call_intrinsic("llvm.x86.sse2.cvttps2dq", &[], &[arg(0)?])?
            }
            (O::Blendv, _) => {
                let c = self.as_ints(arg(0)?)?;
                let zero = c.get_type().const_zero();
                let m = self.b.build_int_compare(IntPredicate::SLT, c, zero, "")?;
                self.b.build_select(m, arg(1)?, arg(2)?, "")?
            }
            (
                O::Uload8x8
                | O::Sload8x8
                | O::Uload16x4
                | O::Sload16x4
                | O::Uload32x2
                | O::Sload32x2,
                InstructionData::Load {
                    arg: addr,
                    flags,
                    offset,
                    ..
                },
            ) => {
                let half: Type = match opcode {
                    O::Uload8x8 | O::Sload8x8 => types::I8X8,
                    O::Uload16x4 | O::Sload16x4 => types::I16X4,
                    _ => types::I32X2,
                };
                let ptr = self.address(addr, i64::from(offset))?;
                let lanes = half.lane_count();
                let lane_ty = super::abi::int_type(&self.ctx, half.lane_bits());
                let vt = lane_ty.vec_type(lanes);
                let v = self.b.build_load(vt, ptr, "")?;
                if let Some(i) = v.as_instruction_value() {
                    let data = dfg.mem_flags[flags];
                    i.set_alignment(if data.aligned() { 8 } else { 1 })
                        .map_err(|e| Fail::Invalid(format!("load alignment: {e}")))?;
                    if self.may_fault(flags, addr, i64::from(offset), 8) {
                        self.keep_access(Some(i))?;
                    }
                }
                let t = self.ty(ctrl).into_vector_type();
                let signed = matches!(opcode, O::Sload8x8 | O::Sload16x4 | O::Sload32x2);
                if signed {
                    self.b
                        .build_int_s_extend(v.into_vector_value(), t, "")?
                        .into()
                } else {
                    self.b
                        .build_int_z_extend(v.into_vector_value(), t, "")?
                        .into()
                }
            }
            _ => return Err(Fail::Unsupported(format!("{opcode} on {ctrl}"))),
        };
        let v = if self.config.nan_canonicalization && canonicalized(opcode) {
            self.canonicalize_nan(v)?
        } else {
            v
        };
        self.def(inst, &[v])
    }

    /// A vector of `vt` with every lane `x`.
    fn splat(&self, vt: VectorType<'ctx>, x: BasicValueEnum<'ctx>) -> Res<VectorValue<'ctx>> {
        let i32t = self.ctx.i32_type();
        let one = self
            .b
            .build_insert_element(vt.get_poison(), x, i32t.const_zero(), "")?;
        let zeros = i32t.vec_type(vt.get_size()).const_zero();
        Ok(self
            .b
            .build_shuffle_vector(one, vt.get_poison(), zeros, "")?)
    }

    /// A constant integer vector of `vt` with every lane `x` (truncated).
    fn splat_int(&self, vt: VectorType<'ctx>, x: u64) -> Res<VectorValue<'ctx>> {
        let lane = vt.get_element_type().into_int_type().const_int(x, false);
        let lanes: Vec<IntValue<'ctx>> = (0..vt.get_size()).map(|_| lane).collect();
        Ok(VectorType::const_vector(&lanes))
    }

    /// The integer vector with `vt`'s lane count and lane width.
    fn int_vector_like(&self, vt: VectorType<'ctx>) -> Res<VectorType<'ctx>> {
        let bits = match vt.get_element_type() {
            BasicTypeEnum::FloatType(f) if f == self.ctx.f32_type() => 32,
            BasicTypeEnum::FloatType(_) => 64,
            BasicTypeEnum::IntType(i) => i.get_bit_width(),
            _ => return Err(Fail::Invalid("vector of neither ints nor floats".into())),
        };
        Ok(super::abi::int_type(&self.ctx, bits).vec_type(vt.get_size()))
    }

    /// `v` as an integer vector of the same shape.
    fn as_ints(&self, v: BasicValueEnum<'ctx>) -> Res<VectorValue<'ctx>> {
        let vt = v.get_type().into_vector_type();
        let it = self.int_vector_like(vt)?;
        Ok(self.b.build_bit_cast(v, it, "")?.into_vector_value())
    }

    fn all_ones_like(&self, v: VectorValue<'ctx>) -> Res<VectorValue<'ctx>> {
        let vt = v.get_type();
        let lane = vt.get_element_type().into_int_type().const_all_ones();
        let lanes: Vec<IntValue<'ctx>> = (0..vt.get_size()).map(|_| lane).collect();
        Ok(VectorType::const_vector(&lanes))
    }

    /// The vector type with lanes twice as wide (same lane count).
    fn widen_type(&self, vt: VectorType<'ctx>) -> Res<VectorType<'ctx>> {
        let bits = vt.get_element_type().into_int_type().get_bit_width();
        Ok(super::abi::int_type(&self.ctx, bits * 2).vec_type(vt.get_size()))
    }

    /// `shufflevector x, y, mask`.
    fn shuffle(
        &self,
        x: VectorValue<'ctx>,
        y: VectorValue<'ctx>,
        mask: &[u32],
    ) -> Res<VectorValue<'ctx>> {
        let i32t = self.ctx.i32_type();
        let m: Vec<IntValue<'ctx>> = mask
            .iter()
            .map(|&i| i32t.const_int(u64::from(i), false))
            .collect();
        Ok(self
            .b
            .build_shuffle_vector(x, y, VectorType::const_vector(&m), "")?)
    }

    /// The low or high half of `x`'s lanes.
    fn half(&self, x: VectorValue<'ctx>, high: bool) -> Res<VectorValue<'ctx>> {
        let n = x.get_type().get_size();
        let start = if high { n / 2 } else { 0 };
        let mask: Vec<u32> = (start..start + n / 2).collect();
        self.shuffle(x, x, &mask)
    }

    /// The lanes of `x` followed by those of `y`.
    fn concat(&self, x: VectorValue<'ctx>, y: VectorValue<'ctx>) -> Res<VectorValue<'ctx>> {
        let n = x.get_type().get_size();
        let mask: Vec<u32> = (0..2 * n).collect();
        self.shuffle(x, y, &mask)
    }

    /// A 16-byte constant as a vector of type `ty`.
    fn bytes_const(&self, bytes: &[u8], ty: Type) -> Res<BasicValueEnum<'ctx>> {
        if bytes.len() != 16 {
            return Err(Fail::Invalid(format!(
                "vector constant of {} bytes",
                bytes.len()
            )));
        }
        let i8t = self.ctx.i8_type();
        let lanes: Vec<IntValue<'ctx>> = bytes
            .iter()
            .map(|&b| i8t.const_int(u64::from(b), false))
            .collect();
        let v = VectorType::const_vector(&lanes);
        Ok(self.b.build_bit_cast(v, self.ty(ty), "")?)
    }

    /// Cranelift's `shuffle` on i8x16: mask lanes 0-15 pick from `x`, 16-31
    /// from `y`, larger ones give zero.
    fn shuffle_bytes(
        &self,
        x: VectorValue<'ctx>,
        y: VectorValue<'ctx>,
        mask: &[u8],
    ) -> Res<VectorValue<'ctx>> {
        let picks: Vec<u32> = mask.iter().map(|&m| u32::from(m.min(31))).collect();
        let s = self.shuffle(x, y, &picks)?;
        if mask.iter().all(|&m| m < 32) {
            return Ok(s);
        }
        let zero = s.get_type().const_zero();
        let keep: Vec<u32> = mask
            .iter()
            .enumerate()
            .map(|(i, &m)| if m < 32 { i as u32 } else { 16 })
            .collect();
        self.shuffle(s, zero, &keep)
    }

    /// Cranelift's `swizzle`: lane i is `x[idx[i]]`, or zero when
    /// `idx[i] >= 16` (pshufb after saturating the index's high bit).
    fn swizzle(&self, x: VectorValue<'ctx>, idx: VectorValue<'ctx>) -> Res<VectorValue<'ctx>> {
        let vt = idx.get_type();
        let bias = self.splat_int(vt, 0x70)?;
        let idx = self.call_intrinsic("llvm.uadd.sat", &[vt.into()], &[idx.into(), bias.into()])?;
        Ok(self
            .call_intrinsic("llvm.x86.ssse3.pshuf.b.128", &[], &[x.into(), idx])?
            .into_vector_value())
    }
}
