//! Scalar operations: arithmetic, comparisons, selects and casts.

use super::*;

impl Tr<'_, '_> {
    /// Instructions and constant expressions that compute a value from
    /// their operands.
    pub(super) fn compute(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Vec<Value>> {
        use LLVMOpcode::*;
        let t = ll::type_of(i);
        let n_ops = ll::num_operands(i).max(0) as u32;
        if wide(t).is_some() || (0..n_ops).any(|k| wide(ll::type_of(ll::operand(i, k))).is_some()) {
            return self.wide_op(op, i);
        }
        let v = match op {
            LLVMAdd | LLVMSub | LLVMMul | LLVMUDiv | LLVMSDiv | LLVMURem | LLVMSRem | LLVMShl
            | LLVMLShr | LLVMAShr | LLVMAnd | LLVMOr | LLVMXor => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = ll::operand(i, 1);
                let ty = vtype(t)?;
                if ty.is_vector() {
                    return self.vector_int_op(op, i, a, b, ty).map(|v| vec![v]);
                }
                let b = self.scalar(b)?;
                if ty == types::I128 && matches!(op, LLVMUDiv | LLVMSDiv | LLVMURem | LLVMSRem) {
                    // As LLVM's code generator does: compiler-rt/libgcc.
                    let name = match op {
                        LLVMUDiv => "__udivti3",
                        LLVMSDiv => "__divti3",
                        LLVMURem => "__umodti3",
                        _ => "__modti3",
                    };
                    // (i128, i128) -> i128 in SysV registers, as i64 pairs.
                    let mut sig = ir::Signature::new(CallConv::SystemV);
                    sig.params = vec![AbiParam::new(types::I64); 4];
                    sig.returns = vec![AbiParam::new(types::I64); 2];
                    let f = self.import(false, name, sig);
                    let (a_lo, a_hi) = self.b.ins().isplit(a);
                    let (b_lo, b_hi) = self.b.ins().isplit(b);
                    let call = self.b.ins().call(f, &[a_lo, a_hi, b_lo, b_hi]);
                    let r = self.b.inst_results(call).to_vec();
                    return Ok(vec![self.b.ins().iconcat(r[0], r[1])]);
                }
                let ins = self.b.ins();
                let mut r = match op {
                    LLVMAdd => ins.iadd(a, b),
                    LLVMSub => ins.isub(a, b),
                    LLVMMul => ins.imul(a, b),
                    LLVMUDiv => ins.udiv(a, b),
                    LLVMSDiv => ins.sdiv(a, b),
                    LLVMURem => ins.urem(a, b),
                    LLVMSRem => ins.srem(a, b),
                    LLVMShl => ins.ishl(a, b),
                    LLVMLShr => ins.ushr(a, b),
                    LLVMAShr => ins.sshr(a, b),
                    LLVMAnd => ins.band(a, b),
                    LLVMOr => ins.bor(a, b),
                    _ => ins.bxor(a, b),
                };
                if is_i1(t) && matches!(op, LLVMAdd | LLVMSub | LLVMMul | LLVMShl) {
                    r = self.b.ins().band_imm_u(r, 1);
                }
                r
            }
            LLVMFAdd | LLVMFSub | LLVMFMul | LLVMFDiv => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ins = self.b.ins();
                match op {
                    LLVMFAdd => ins.fadd(a, b),
                    LLVMFSub => ins.fsub(a, b),
                    LLVMFMul => ins.fmul(a, b),
                    _ => ins.fdiv(a, b),
                }
            }
            LLVMFRem => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ty = scalar_type(t)?;
                let name = match ty {
                    types::F32 => "fmodf",
                    types::F64 => "fmod",
                    _ => return err(i),
                };
                let mut sig = ir::Signature::new(CallConv::SystemV);
                sig.params = vec![AbiParam::new(ty); 2];
                sig.returns = vec![AbiParam::new(ty)];
                let f = self.import(false, name, sig);
                let call = self.b.ins().call(f, &[a, b]);
                self.b.inst_results(call)[0]
            }
            LLVMFNeg => {
                let a = self.scalar(ll::operand(i, 0))?;
                self.b.ins().fneg(a)
            }
            LLVMICmp => {
                let x = ll::operand(i, 0);
                let mut a = self.scalar(x)?;
                let mut b = self.scalar(ll::operand(i, 1))?;
                let (cc, signed) = int_cc(ll::icmp_pred(i));
                let xt = ll::type_of(x);
                if ll::type_kind(xt) == LLVMTypeKind::LLVMVectorTypeKind {
                    let lt = vtype(t)?;
                    let r = self.b.ins().icmp(cc, a, b);
                    self.mask_as(r, lt).ok_or_else(|| ll::print(i))?
                } else {
                    if signed && is_i1(xt) {
                        a = self.b.ins().ineg(a);
                        b = self.b.ins().ineg(b);
                    }
                    self.b.ins().icmp(cc, a, b)
                }
            }
            LLVMFCmp => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ty = vtype(t)?;
                match float_cc(ll::fcmp_pred(i)) {
                    Ok(cc) => {
                        let r = self.b.ins().fcmp(cc, a, b);
                        if ty.is_vector() {
                            self.mask_as(r, ty).ok_or_else(|| ll::print(i))?
                        } else {
                            r
                        }
                    }
                    Err(truth) => {
                        if ty.is_vector() {
                            let k = self.b.func.dfg.constants.insert(ConstantData::from(vec![
                                if truth {
                                    0xff
                                } else {
                                    0
                                };
                                16
                            ]));
                            self.b.ins().vconst(ty, k)
                        } else {
                            self.iconst(types::I8, truth as i64)
                        }
                    }
                }
            }
            LLVMSelect => {
                let c = ll::operand(i, 0);
                let cv = self.scalar(c)?;
                let a = self.operand(ll::operand(i, 1))?;
                let b = self.operand(ll::operand(i, 2))?;
                if ll::type_kind(ll::type_of(c)) == LLVMTypeKind::LLVMVectorTypeKind {
                    let ty = self.b.func.dfg.value_type(a[0]);
                    let mask = self.mask_as(cv, ty).ok_or_else(|| ll::print(i))?;
                    self.b.ins().bitselect(mask, a[0], b[0])
                } else {
                    let out = a
                        .iter()
                        .zip(&b)
                        .map(|(&x, &y)| self.b.ins().select(cv, x, y))
                        .collect();
                    return Ok(out);
                }
            }
            LLVMFreeze => return self.operand(ll::operand(i, 0)),
            LLVMTrunc | LLVMZExt | LLVMSExt | LLVMFPToUI | LLVMFPToSI | LLVMUIToFP | LLVMSIToFP
            | LLVMFPTrunc | LLVMFPExt | LLVMPtrToInt | LLVMIntToPtr | LLVMBitCast
            | LLVMAddrSpaceCast => self.cast(op, i)?,
            LLVMGetElementPtr => self.gep(i)?,
            LLVMExtractElement => {
                let v = self.scalar(ll::operand(i, 0))?;
                let idx = ll::operand(i, 1);
                if ll::is_a_constant_int(idx).is_null() {
                    return Err(format!("variable lane index: {}", ll::print(i)));
                }
                let k = ll::const_zext(idx);
                let ty = self.b.func.dfg.value_type(v);
                if k >= ty.lane_count() as u64 {
                    self.zero(vtype(t)?)
                } else {
                    let x = self.b.ins().extractlane(v, k as u8);
                    self.lane_to_scalar(x, t)
                }
            }
            LLVMInsertElement => {
                let v = self.scalar(ll::operand(i, 0))?;
                let x = self.scalar(ll::operand(i, 1))?;
                let idx = ll::operand(i, 2);
                if ll::is_a_constant_int(idx).is_null() {
                    return Err(format!("variable lane index: {}", ll::print(i)));
                }
                let k = ll::const_zext(idx);
                let ty = self.b.func.dfg.value_type(v);
                if k >= ty.lane_count() as u64 {
                    v
                } else {
                    let x = self.scalar_to_lane(x, ty.lane_type());
                    self.b.ins().insertlane(v, x, k as u8)
                }
            }
            LLVMShuffleVector => self.shuffle(i)?,
            _ => return err(i),
        };
        Ok(vec![v])
    }

    pub(super) fn cast(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Value> {
        use LLVMOpcode::*;
        let x = ll::operand(i, 0);
        let (from_t, to_t) = (ll::type_of(x), ll::type_of(i));
        let v = self.scalar(x)?;
        let from = self.b.func.dfg.value_type(v);
        let to = vtype(to_t)?;
        let vector = from.is_vector() || to.is_vector();
        if vector && op != LLVMBitCast {
            // A mask extended to lanes: all ones (sext) or one (zext).
            if matches!(op, LLVMSExt | LLVMZExt) && is_i1(ll::element_type(from_t)) {
                let m = self.mask_as(v, to).ok_or_else(|| ll::print(i))?;
                if op == LLVMSExt {
                    return Ok(m);
                }
                let one = self.iconst(to.lane_type(), 1);
                let ones = self.b.ins().splat(to, one);
                return Ok(self.b.ins().band(m, ones));
            }
            return self.vector_cast(op, i, v, from, to);
        }
        let ins = self.b.ins();
        Ok(match op {
            LLVMTrunc | LLVMPtrToInt => {
                let r = if from.bits() > to.bits() {
                    ins.ireduce(to, v)
                } else if from.bits() < to.bits() {
                    ins.uextend(to, v)
                } else {
                    v
                };
                if is_i1(to_t) {
                    self.b.ins().band_imm_u(r, 1)
                } else {
                    r
                }
            }
            LLVMIntToPtr => {
                if from.bits() > 64 {
                    ins.ireduce(to, v)
                } else if from.bits() < 64 {
                    ins.uextend(to, v)
                } else {
                    v
                }
            }
            LLVMZExt => {
                if from == to {
                    v
                } else {
                    ins.uextend(to, v)
                }
            }
            LLVMSExt => {
                let v = if is_i1(from_t) { ins.ineg(v) } else { v };
                if from == to {
                    v
                } else {
                    self.b.ins().sextend(to, v)
                }
            }
            LLVMFPToSI | LLVMFPToUI => {
                if to == types::I128 {
                    return Err(format!("conversion to i128: {}", ll::print(i)));
                }
                let signed = op == LLVMFPToSI;
                let wide = if to.bits() < 32 { types::I32 } else { to };
                let r = if signed {
                    ins.fcvt_to_sint_sat(wide, v)
                } else {
                    ins.fcvt_to_uint_sat(wide, v)
                };
                let r = if wide != to {
                    self.b.ins().ireduce(to, r)
                } else {
                    r
                };
                if is_i1(to_t) {
                    self.b.ins().band_imm_u(r, 1)
                } else {
                    r
                }
            }
            LLVMSIToFP | LLVMUIToFP => {
                if from == types::I128 {
                    return Err(format!("conversion from i128: {}", ll::print(i)));
                }
                let signed = op == LLVMSIToFP;
                let mut v = v;
                if is_i1(from_t) && signed {
                    v = ins.ineg(v);
                }
                if from.bits() < 32 {
                    v = if signed {
                        self.b.ins().sextend(types::I32, v)
                    } else {
                        self.b.ins().uextend(types::I32, v)
                    };
                }
                if signed {
                    self.b.ins().fcvt_from_sint(to, v)
                } else {
                    self.b.ins().fcvt_from_uint(to, v)
                }
            }
            LLVMFPTrunc => ins.fdemote(to, v),
            LLVMFPExt => ins.fpromote(to, v),
            LLVMBitCast | LLVMAddrSpaceCast => {
                let (from_s, to_s) = (scalar_type(from_t)?, scalar_type(to_t)?);
                if is_half(from_s) && !to.is_vector() {
                    let x = self.narrow(v);
                    return Ok(self.cast_bits(x, to));
                }
                if is_half(to_s) && !from.is_vector() {
                    let x = self.cast_bits(v, types::F64);
                    return Ok(self.widen(x, to_s));
                }
                let ins = self.b.ins();
                if from == to {
                    v
                } else if from.bits() == to.bits() {
                    ins.bitcast(to, little(), v)
                } else {
                    return err(i);
                }
            }
            _ => return err(i),
        })
    }
}
