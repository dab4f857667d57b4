//! Integer instructions: constants, arithmetic with Cranelift's trapping
//! division, masked shifts and rotates, bit operations and counts,
//! comparisons, selects, width changes and the overflow family.
//!
//! Invariant: no LLVM instruction here can produce poison or UB where
//! Cranelift is defined: no `nsw`/`nuw`, shift amounts are masked to the
//! width, `udiv`/`sdiv`/`urem`/`srem` are guarded (zero divisor traps with
//! `INTEGER_DIVISION_BY_ZERO`, `sdiv MIN, -1` with `INTEGER_OVERFLOW`,
//! `srem MIN, -1` is 0), and count intrinsics are called with
//! `is_zero_poison = false`.

use cranelift_codegen::ir::{self, condcodes::IntCC, InstructionData, Opcode, TrapCode};
use inkwell::types::IntType;
use inkwell::values::InstructionOpcode as Op;
use inkwell::values::{BasicValueEnum, IntValue};
use inkwell::IntPredicate;

use super::function::{Fail, Fx, Res};

/// The LLVM predicate of a CLIF integer condition.
pub(super) fn int_predicate(cc: IntCC) -> IntPredicate {
    match cc {
        IntCC::Equal => IntPredicate::EQ,
        IntCC::NotEqual => IntPredicate::NE,
        IntCC::SignedLessThan => IntPredicate::SLT,
        IntCC::SignedGreaterThanOrEqual => IntPredicate::SGE,
        IntCC::SignedGreaterThan => IntPredicate::SGT,
        IntCC::SignedLessThanOrEqual => IntPredicate::SLE,
        IntCC::UnsignedLessThan => IntPredicate::ULT,
        IntCC::UnsignedGreaterThanOrEqual => IntPredicate::UGE,
        IntCC::UnsignedGreaterThan => IntPredicate::UGT,
        IntCC::UnsignedLessThanOrEqual => IntPredicate::ULE,
    }
}

impl<'ctx> Fx<'_, 'ctx> {
    /// Lowers `inst` if it is a scalar integer instruction.
    pub(super) fn int_op(
        &mut self,
        inst: ir::Inst,
        opcode: Opcode,
        data: &InstructionData,
    ) -> Res<Option<Vec<BasicValueEnum<'ctx>>>> {
        let func = self.func;
        let dfg = &func.dfg;
        let args = dfg.inst_args(inst);
        let ctrl = dfg.ctrl_typevar(inst);
        if ctrl == ir::types::I64 {
            match (opcode, data) {
                (Opcode::Iconst, InstructionData::UnaryImm { imm, .. }) => {
                    self.consts.insert(dfg.inst_results(inst)[0], imm.bits());
                }
                (Opcode::Iadd, _) => self.track_address(dfg.inst_results(inst)[0], args),
                _ => {}
            }
        }
        let arg = |i: usize| -> Res<IntValue<'ctx>> {
            let v = args
                .get(i)
                .ok_or_else(|| Fail::Invalid(format!("{opcode} lacks operand {i}")))?;
            self.int(*v)
        };
        let bin = |op: Op| -> Res<Vec<BasicValueEnum<'ctx>>> {
            Ok(vec![self.b.build_binop(op, arg(0)?, arg(1)?, "")?])
        };
        // The bitwise operations also apply to floats, on their bits.
        if ctrl.is_float()
            && matches!(
                opcode,
                Opcode::Band | Opcode::Bor | Opcode::Bxor | Opcode::Bnot | Opcode::Bitselect
            )
        {
            return self.float_bits_op(opcode, args).map(Some);
        }
        let v: BasicValueEnum<'ctx> = match (opcode, *data) {
            (Opcode::Iconst, InstructionData::UnaryImm { imm, .. }) => {
                let t = self.ty(ctrl).into_int_type();
                // Cranelift's immediate is the value's bits, sign-extended
                // from 64 for i128.
                t.const_int(imm.bits() as u64, ctrl.bits() > 64).into()
            }
            (Opcode::Iadd, _) => return bin(Op::Add).map(Some),
            (Opcode::Isub, _) => return bin(Op::Sub).map(Some),
            (Opcode::Imul, _) => return bin(Op::Mul).map(Some),
            (Opcode::Band, _) => return bin(Op::And).map(Some),
            (Opcode::Bor, _) => return bin(Op::Or).map(Some),
            (Opcode::Bxor, _) => return bin(Op::Xor).map(Some),
            (Opcode::Bnot, _) => self.b.build_not(arg(0)?, "")?.into(),
            (Opcode::Ineg, _) => self.b.build_int_neg(arg(0)?, "")?.into(),
            (Opcode::Iabs, _) => {
                let x = arg(0)?;
                let f = self.ctx.bool_type().const_zero();
                self.call_intrinsic("llvm.abs", &[x.get_type().into()], &[x.into(), f.into()])?
            }
            (Opcode::Smin | Opcode::Smax | Opcode::Umin | Opcode::Umax, _) => {
                let name = match opcode {
                    Opcode::Smin => "llvm.smin",
                    Opcode::Smax => "llvm.smax",
                    Opcode::Umin => "llvm.umin",
                    _ => "llvm.umax",
                };
                let (x, y) = (arg(0)?, arg(1)?);
                self.call_intrinsic(name, &[x.get_type().into()], &[x.into(), y.into()])?
            }
            (Opcode::Umulhi | Opcode::Smulhi, _) => {
                let (x, y) = (arg(0)?, arg(1)?);
                let t = x.get_type();
                let wide = super::abi::int_type(&self.ctx, t.get_bit_width() * 2);
                let signed = opcode == Opcode::Smulhi;
                let xw = self.b.build_int_cast_sign_flag(x, wide, signed, "")?;
                let yw = self.b.build_int_cast_sign_flag(y, wide, signed, "")?;
                let p = self.b.build_int_mul(xw, yw, "")?;
                let sh = wide.const_int(u64::from(t.get_bit_width()), false);
                let hi = self.b.build_right_shift(p, sh, false, "")?;
                self.b.build_int_truncate(hi, t, "")?.into()
            }
            (Opcode::Udiv | Opcode::Sdiv | Opcode::Urem | Opcode::Srem, _) => {
                self.division(opcode, arg(0)?, arg(1)?)?.into()
            }
            (Opcode::Ishl | Opcode::Ushr | Opcode::Sshr, _) => {
                let x = arg(0)?;
                let amt = self.shift_amount(arg(1)?, x.get_type())?;
                match opcode {
                    Opcode::Ishl => self.b.build_left_shift(x, amt, "")?.into(),
                    Opcode::Ushr => self.b.build_right_shift(x, amt, false, "")?.into(),
                    _ => self.b.build_right_shift(x, amt, true, "")?.into(),
                }
            }
            (Opcode::Rotl | Opcode::Rotr, _) => {
                let x = arg(0)?;
                let amt = self.shift_amount(arg(1)?, x.get_type())?;
                let name = if opcode == Opcode::Rotl {
                    "llvm.fshl"
                } else {
                    "llvm.fshr"
                };
                self.call_intrinsic(
                    name,
                    &[x.get_type().into()],
                    &[x.into(), x.into(), amt.into()],
                )?
            }
            (Opcode::Clz | Opcode::Ctz, _) => {
                let x = arg(0)?;
                let name = if opcode == Opcode::Clz {
                    "llvm.ctlz"
                } else {
                    "llvm.cttz"
                };
                let f = self.ctx.bool_type().const_zero();
                self.call_intrinsic(name, &[x.get_type().into()], &[x.into(), f.into()])?
            }
            (Opcode::Cls, _) => {
                // Leading bits equal to the sign bit, not counting it:
                // ctlz(x ^ (x >> 1)) - 1.
                let x = arg(0)?;
                let t = x.get_type();
                let s = self
                    .b
                    .build_right_shift(x, t.const_int(1, false), true, "")?;
                let y = self.b.build_xor(x, s, "")?;
                let f = self.ctx.bool_type().const_zero();
                let n = self
                    .call_intrinsic("llvm.ctlz", &[t.into()], &[y.into(), f.into()])?
                    .into_int_value();
                self.b.build_int_sub(n, t.const_int(1, false), "")?.into()
            }
            (Opcode::Popcnt, _) => {
                let x = arg(0)?;
                self.call_intrinsic("llvm.ctpop", &[x.get_type().into()], &[x.into()])?
            }
            (Opcode::Bitrev, _) => {
                let x = arg(0)?;
                self.call_intrinsic("llvm.bitreverse", &[x.get_type().into()], &[x.into()])?
            }
            (Opcode::Bswap, _) => self.bswap(arg(0)?)?.into(),
            (Opcode::Bmask, _) => {
                let nz = self.nonzero(arg(0)?)?;
                let t = self.ty(ctrl).into_int_type();
                self.b.build_int_s_extend(nz, t, "")?.into()
            }
            (Opcode::Icmp, InstructionData::IntCompare { cond, .. }) => {
                let c = self
                    .b
                    .build_int_compare(int_predicate(cond), arg(0)?, arg(1)?, "")?;
                self.b.build_int_z_extend(c, self.ctx.i8_type(), "")?.into()
            }
            (Opcode::Select | Opcode::SelectSpectreGuard, _) => {
                let c = self.nonzero(arg(0)?)?;
                let (x, y) = (self.val(args[1])?, self.val(args[2])?);
                self.b.build_select(c, x, y, "")?
            }
            (Opcode::Bitselect, _) => {
                let (c, x, y) = (arg(0)?, arg(1)?, arg(2)?);
                let a = self.b.build_and(c, x, "")?;
                let nc = self.b.build_not(c, "")?;
                let o = self.b.build_and(nc, y, "")?;
                self.b.build_or(a, o, "")?.into()
            }
            (Opcode::Uextend | Opcode::Sextend | Opcode::Ireduce, _) => {
                let x = arg(0)?;
                let t = self.ty(ctrl).into_int_type();
                match opcode {
                    Opcode::Uextend => self.b.build_int_z_extend(x, t, "")?.into(),
                    Opcode::Sextend => self.b.build_int_s_extend(x, t, "")?.into(),
                    _ => self.b.build_int_truncate(x, t, "")?.into(),
                }
            }
            (Opcode::Iconcat, _) => {
                let (lo, hi) = (arg(0)?, arg(1)?);
                let half = lo.get_type().get_bit_width();
                let t = super::abi::int_type(&self.ctx, half * 2);
                let lo = self.b.build_int_z_extend(lo, t, "")?;
                let hi = self.b.build_int_z_extend(hi, t, "")?;
                let hi = self
                    .b
                    .build_left_shift(hi, t.const_int(u64::from(half), false), "")?;
                self.b.build_or(lo, hi, "")?.into()
            }
            (Opcode::Isplit, _) => {
                let x = arg(0)?;
                let w = x.get_type().get_bit_width();
                let t = super::abi::int_type(&self.ctx, w / 2);
                let lo = self.b.build_int_truncate(x, t, "")?;
                let sh = x.get_type().const_int(u64::from(w / 2), false);
                let hi = self.b.build_right_shift(x, sh, false, "")?;
                let hi = self.b.build_int_truncate(hi, t, "")?;
                return Ok(Some(vec![lo.into(), hi.into()]));
            }
            (
                Opcode::UaddOverflow
                | Opcode::SaddOverflow
                | Opcode::UsubOverflow
                | Opcode::SsubOverflow
                | Opcode::UmulOverflow
                | Opcode::SmulOverflow,
                _,
            ) => {
                let name = match opcode {
                    Opcode::UaddOverflow => "llvm.uadd.with.overflow",
                    Opcode::SaddOverflow => "llvm.sadd.with.overflow",
                    Opcode::UsubOverflow => "llvm.usub.with.overflow",
                    Opcode::SsubOverflow => "llvm.ssub.with.overflow",
                    Opcode::UmulOverflow => "llvm.umul.with.overflow",
                    _ => "llvm.smul.with.overflow",
                };
                let (r, o) = self.with_overflow(name, arg(0)?, arg(1)?)?;
                let o = self.b.build_int_z_extend(o, self.ctx.i8_type(), "")?;
                return Ok(Some(vec![r.into(), o.into()]));
            }
            (Opcode::UaddOverflowTrap, InstructionData::IntAddTrap { code, .. }) => {
                let (r, o) = self.with_overflow("llvm.uadd.with.overflow", arg(0)?, arg(1)?)?;
                self.trap_if(o, code)?;
                r.into()
            }
            (
                Opcode::SaddOverflowCin
                | Opcode::UaddOverflowCin
                | Opcode::SsubOverflowBin
                | Opcode::UsubOverflowBin,
                _,
            ) => {
                let name = match opcode {
                    Opcode::SaddOverflowCin => "llvm.sadd.with.overflow",
                    Opcode::UaddOverflowCin => "llvm.uadd.with.overflow",
                    Opcode::SsubOverflowBin => "llvm.ssub.with.overflow",
                    _ => "llvm.usub.with.overflow",
                };
                let (x, y, c) = (arg(0)?, arg(1)?, arg(2)?);
                let (r1, o1) = self.with_overflow(name, x, y)?;
                // The carry (borrow) counts when nonzero: add (sub) it as 0/1.
                let c = self.nonzero(c)?;
                let c = self.b.build_int_z_extend(c, x.get_type(), "")?;
                let (r2, o2) = self.with_overflow(name, r1, c)?;
                let o = self.b.build_or(o1, o2, "")?;
                let o = self.b.build_int_z_extend(o, self.ctx.i8_type(), "")?;
                return Ok(Some(vec![r2.into(), o.into()]));
            }
            _ => return Ok(None),
        };
        Ok(Some(vec![v]))
    }

    /// Records `result = slot address + constant` when `args` are one of
    /// each (see `Fx::address`).
    fn track_address(&mut self, result: ir::Value, args: &[ir::Value]) {
        let dfg = &self.func.dfg;
        let [a, b] = [dfg.resolve_aliases(args[0]), dfg.resolve_aliases(args[1])];
        let known = match (self.addrs.get(&a), self.consts.get(&b)) {
            (Some(&(p, off, size)), Some(&c)) => Some((p, off.wrapping_add(c), size)),
            _ => match (self.addrs.get(&b), self.consts.get(&a)) {
                (Some(&(p, off, size)), Some(&c)) => Some((p, off.wrapping_add(c), size)),
                _ => None,
            },
        };
        if let Some(k) = known {
            self.addrs.insert(result, k);
        }
    }

    /// A bitwise operation on float operands: on their bits, as the float.
    fn float_bits_op(
        &mut self,
        opcode: Opcode,
        args: &[ir::Value],
    ) -> Res<Vec<BasicValueEnum<'ctx>>> {
        let mut ints = Vec::new();
        let mut float_ty = None;
        for &a in args {
            let v = self.val(a)?;
            float_ty = Some(v.get_type());
            let it = super::abi::int_type(&self.ctx, self.vty(a).bits());
            ints.push(self.b.build_bit_cast(v, it, "")?.into_int_value());
        }
        let ft = float_ty.ok_or_else(|| Fail::Invalid(format!("{opcode} without operands")))?;
        let get = |i: usize| {
            ints.get(i)
                .copied()
                .ok_or_else(|| Fail::Invalid(format!("{opcode} lacks operand {i}")))
        };
        let r = match opcode {
            Opcode::Band => self.b.build_and(get(0)?, get(1)?, "")?,
            Opcode::Bor => self.b.build_or(get(0)?, get(1)?, "")?,
            Opcode::Bxor => self.b.build_xor(get(0)?, get(1)?, "")?,
            Opcode::Bnot => self.b.build_not(get(0)?, "")?,
            _ => {
                let (c, x, y) = (get(0)?, get(1)?, get(2)?);
                let a = self.b.build_and(c, x, "")?;
                let nc = self.b.build_not(c, "")?;
                let o = self.b.build_and(nc, y, "")?;
                self.b.build_or(a, o, "")?
            }
        };
        Ok(vec![self.b.build_bit_cast(r, ft, "")?])
    }

    /// `x op y` of an `llvm.*.with.overflow` intrinsic: (result, i1 flag).
    fn with_overflow(
        &self,
        name: &str,
        x: IntValue<'ctx>,
        y: IntValue<'ctx>,
    ) -> Res<(IntValue<'ctx>, IntValue<'ctx>)> {
        let pair = self
            .call_intrinsic(name, &[x.get_type().into()], &[x.into(), y.into()])?
            .into_struct_value();
        let r = self.b.build_extract_value(pair, 0, "")?.into_int_value();
        let o = self.b.build_extract_value(pair, 1, "")?.into_int_value();
        Ok((r, o))
    }

    /// A shift amount of any integer type, as `t` and masked to its width.
    pub(super) fn shift_amount(
        &self,
        amt: IntValue<'ctx>,
        t: IntType<'ctx>,
    ) -> Res<IntValue<'ctx>> {
        let amt = self.b.build_int_cast_sign_flag(amt, t, false, "")?;
        let mask = t.const_int(u64::from(t.get_bit_width() - 1), false);
        Ok(self.b.build_and(amt, mask, "")?)
    }

    /// Byte swap; the identity on i8.
    pub(super) fn bswap(&self, x: IntValue<'ctx>) -> Res<IntValue<'ctx>> {
        if x.get_type().get_bit_width() == 8 {
            return Ok(x);
        }
        Ok(self
            .call_intrinsic("llvm.bswap", &[x.get_type().into()], &[x.into()])?
            .into_int_value())
    }

    /// Cranelift's division and remainder, with its traps.
    fn division(
        &mut self,
        opcode: Opcode,
        x: IntValue<'ctx>,
        y: IntValue<'ctx>,
    ) -> Res<IntValue<'ctx>> {
        let t = x.get_type();
        let zero = self
            .b
            .build_int_compare(IntPredicate::EQ, y, t.const_zero(), "")?;
        self.trap_if(zero, TrapCode::INTEGER_DIVISION_BY_ZERO)?;
        let signed = matches!(opcode, Opcode::Sdiv | Opcode::Srem);
        if !signed {
            return Ok(if opcode == Opcode::Udiv {
                self.b.build_int_unsigned_div(x, y, "")?
            } else {
                self.b.build_int_unsigned_rem(x, y, "")?
            });
        }
        let minus_one = self
            .b
            .build_int_compare(IntPredicate::EQ, y, t.const_all_ones(), "")?;
        if opcode == Opcode::Sdiv {
            let min = min_signed(t);
            let is_min = self.b.build_int_compare(IntPredicate::EQ, x, min, "")?;
            let overflow = self.b.build_and(is_min, minus_one, "")?;
            self.trap_if(overflow, TrapCode::INTEGER_OVERFLOW)?;
            return Ok(self.b.build_int_signed_div(x, y, "")?);
        }
        // srem by -1 is 0; divide by 1 instead so MIN % -1 is never formed.
        let safe_y = self
            .b
            .build_select(minus_one, t.const_int(1, false), y, "")?
            .into_int_value();
        Ok(self.b.build_int_signed_rem(x, safe_y, "")?)
    }
}

/// The most negative value of `t`.
pub(super) fn min_signed(t: IntType<'_>) -> IntValue<'_> {
    let w = t.get_bit_width();
    if w <= 64 {
        t.const_int(1u64 << (w - 1), false)
    } else {
        t.const_int_arbitrary_precision(&[0, 1u64 << 63])
    }
}
