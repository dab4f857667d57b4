//! Vectors: 64-bit ones in the low half of a 128-bit value, wider ones
//! as 128-bit chunks, lane-wise conversions and shuffles.

use super::*;

impl Tr<'_, '_> {
    pub(super) fn wide_constant(
        &mut self,
        c: LLVMValueRef,
        chunk: Type,
        n: usize,
    ) -> R<Vec<Value>> {
        let per = chunk.lane_count();
        let mut out = Vec::new();
        for k in 0..n as u32 {
            let mut v = self.zero(chunk);
            for l in 0..per {
                let e = ll::aggregate_element(c, k * per + l);
                if e.is_null() {
                    return err(c);
                }
                let x = self.scalar(e)?;
                v = self.b.ins().insertlane(v, x, l as u8);
            }
            out.push(v);
        }
        Ok(out)
    }

    pub(super) fn vector_constant(&mut self, c: LLVMValueRef, t: LLVMTypeRef) -> R<Value> {
        let ty = vtype(t)?;
        let lane = ty.lane_type();
        let n = ll::vector_size(t);
        let mut bytes = Vec::new();
        let mut general = false;
        for i in 0..n {
            let e = ll::aggregate_element(c, i);
            if e.is_null() {
                return err(c);
            }
            let mask_lane = is_i1(ll::type_of(e));
            match self.constant_bytes(e, lane) {
                Some(b) if mask_lane => {
                    let on = b.first() == Some(&1);
                    bytes.extend(vec![if on { 0xff } else { 0 }; lane.bytes() as usize]);
                }
                Some(b) => bytes.extend(b),
                None => {
                    general = true;
                    break;
                }
            }
        }
        if !general {
            bytes.resize(16, 0);
            let k = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
            return Ok(self.b.ins().vconst(ty, k));
        }
        let mut v = self.zero(ty);
        for i in 0..n {
            let e = ll::aggregate_element(c, i);
            let x = self.scalar(e)?;
            v = self.b.ins().insertlane(v, x, i as u8);
        }
        Ok(v)
    }

    /// A 64-bit vector loaded or received as an `f64`, as its value type.
    pub(super) fn widen(&mut self, x: Value, storage: Type) -> Value {
        let v = self.b.ins().scalar_to_vector(types::F64X2, x);
        self.cast_bits(v, repr(storage))
    }

    /// The low 64 bits of a vector value, as an `f64`.
    pub(super) fn narrow(&mut self, v: Value) -> Value {
        let v = self.cast_bits(v, types::F64X2);
        self.b.ins().extractlane(v, 0)
    }

    /// Values of LLVM type `t` as the ABI passes them.
    pub(super) fn abi_out(&mut self, vals: Vec<Value>, t: LLVMTypeRef) -> R<Vec<Value>> {
        let l = leaves(self.info.td, t)?;
        let mut out = Vec::with_capacity(vals.len());
        for (v, (lt, _)) in vals.into_iter().zip(l) {
            if is_half(lt) {
                out.push(self.narrow(v));
            } else if lt == types::I128 {
                let (lo, hi) = self.b.ins().isplit(v);
                out.extend([lo, hi]);
            } else {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Values of LLVM type `t` as the ABI passed them, as values.
    pub(super) fn abi_in(&mut self, vals: Vec<Value>, t: LLVMTypeRef) -> R<Vec<Value>> {
        let l = leaves(self.info.td, t)?;
        let mut vals = vals.into_iter();
        let mut out = Vec::with_capacity(l.len());
        for (lt, _) in l {
            let v = vals.next().ok_or("ABI values missing")?;
            if is_half(lt) {
                out.push(self.widen(v, lt));
            } else if lt == types::I128 {
                let hi = vals.next().ok_or("ABI values missing")?;
                out.push(self.b.ins().iconcat(v, hi));
            } else {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Operations on vectors wider than 128 bits, chunk by chunk.
    pub(super) fn wide_op(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Vec<Value>> {
        use LLVMOpcode::*;
        let t = ll::type_of(i);
        let unsupported = || format!("wide vector operation: {}", ll::print(i));
        match op {
            LLVMAdd | LLVMSub | LLVMMul | LLVMAnd | LLVMOr | LLVMXor | LLVMFAdd | LLVMFSub
            | LLVMFMul | LLVMFDiv => {
                let a = self.operand(ll::operand(i, 0))?;
                let b = self.operand(ll::operand(i, 1))?;
                if a.len() != b.len() {
                    return Err(unsupported());
                }
                let mut out = Vec::new();
                for (x, y) in a.into_iter().zip(b) {
                    let ty = self.b.func.dfg.value_type(x);
                    let ins = self.b.ins();
                    out.push(match op {
                        LLVMAdd => ins.iadd(x, y),
                        LLVMSub => ins.isub(x, y),
                        LLVMMul if ty != types::I8X16 => ins.imul(x, y),
                        LLVMAnd => ins.band(x, y),
                        LLVMOr => ins.bor(x, y),
                        LLVMXor => ins.bxor(x, y),
                        LLVMFAdd => ins.fadd(x, y),
                        LLVMFSub => ins.fsub(x, y),
                        LLVMFMul => ins.fmul(x, y),
                        LLVMFDiv => ins.fdiv(x, y),
                        _ => return Err(unsupported()),
                    });
                }
                Ok(out)
            }
            LLVMFNeg => {
                let a = self.operand(ll::operand(i, 0))?;
                Ok(a.into_iter().map(|x| self.b.ins().fneg(x)).collect())
            }
            LLVMFreeze => self.operand(ll::operand(i, 0)),
            LLVMBitCast => {
                let x = ll::operand(i, 0);
                let a = self.operand(x)?;
                match (wide(ll::type_of(x)), wide(t)) {
                    (Some((_, n)), Some((to, m))) if n == m => {
                        Ok(a.into_iter().map(|v| self.cast_bits(v, to)).collect())
                    }
                    _ => Err(unsupported()),
                }
            }
            LLVMSExt | LLVMZExt | LLVMTrunc => self.wide_resize(op, i),
            LLVMSIToFP | LLVMUIToFP | LLVMFPToSI | LLVMFPToUI => {
                let x = ll::operand(i, 0);
                let a = self.operand(x)?;
                let (Some((from, n)), Some((to, m))) = (wide(ll::type_of(x)), wide(t)) else {
                    return Err(unsupported());
                };
                if n != m {
                    return Err(unsupported());
                }
                let mut out = Vec::new();
                for v in a {
                    let ins = self.b.ins();
                    out.push(match (op, from, to) {
                        (LLVMSIToFP, types::I32X4, types::F32X4) => ins.fcvt_from_sint(to, v),
                        (LLVMUIToFP, types::I32X4, types::F32X4) => ins.fcvt_from_uint(to, v),
                        (LLVMFPToSI, types::F32X4, types::I32X4) => ins.fcvt_to_sint_sat(to, v),
                        (LLVMFPToUI, types::F32X4, types::I32X4) => ins.fcvt_to_uint_sat(to, v),
                        _ => return Err(unsupported()),
                    });
                }
                Ok(out)
            }
            LLVMExtractElement => {
                let x = ll::operand(i, 0);
                let a = self.operand(x)?;
                let idx = ll::operand(i, 1);
                let Some((chunk, n)) = wide(ll::type_of(x)) else {
                    return Err(unsupported());
                };
                if ll::is_a_constant_int(idx).is_null() || ll::int_width(ll::type_of(idx)) > 64 {
                    return Err(unsupported());
                }
                let per = chunk.lane_count() as u64;
                let k = ll::const_zext(idx);
                if k >= per * n as u64 {
                    return Ok(vec![self.zero(chunk.lane_type())]);
                }
                Ok(vec![self
                    .b
                    .ins()
                    .extractlane(a[(k / per) as usize], (k % per) as u8)])
            }
            LLVMInsertElement => {
                let mut a = self.operand(ll::operand(i, 0))?;
                let x = self.scalar(ll::operand(i, 1))?;
                let idx = ll::operand(i, 2);
                let Some((chunk, n)) = wide(t) else {
                    return Err(unsupported());
                };
                if ll::is_a_constant_int(idx).is_null() || ll::int_width(ll::type_of(idx)) > 64 {
                    return Err(unsupported());
                }
                let per = chunk.lane_count() as u64;
                let k = ll::const_zext(idx);
                if k < per * n as u64 {
                    let c = (k / per) as usize;
                    a[c] = self.b.ins().insertlane(a[c], x, (k % per) as u8);
                }
                Ok(a)
            }
            LLVMShuffleVector => {
                // Lane by lane: any mix of 128-bit and wider vectors.
                let (x, y) = (ll::operand(i, 0), ll::operand(i, 1));
                let a = self.operand(x)?;
                let b = self.operand(y)?;
                let n_in = ll::vector_size(ll::type_of(x));
                let lane = scalar_type(ll::element_type(t))?;
                if is_i1(ll::element_type(t)) || lane.is_vector() {
                    return Err(unsupported());
                }
                let per = 128 / lane.bits();
                let out_n = ll::num_mask_elements(i);
                let chunks = (out_n * lane.bits()).div_ceil(128) as usize;
                let chunk_ty = lane.by(per).ok_or_else(unsupported)?;
                let mut out: Vec<Value> = (0..chunks).map(|_| self.zero(chunk_ty)).collect();
                for j in 0..out_n {
                    let m = ll::mask_value(i, j);
                    if m < 0 || m as u32 >= 2 * n_in {
                        continue;
                    }
                    let (src, m) = if (m as u32) < n_in {
                        (&a, m as u32)
                    } else {
                        (&b, m as u32 - n_in)
                    };
                    let v = src[(m / per) as usize];
                    if self.b.func.dfg.value_type(v).lane_type() != lane {
                        return Err(unsupported());
                    }
                    let e = self.b.ins().extractlane(v, (m % per) as u8);
                    let c = (j / per) as usize;
                    out[c] = self.b.ins().insertlane(out[c], e, (j % per) as u8);
                }
                if chunks == 1 && wide(t).is_none() {
                    let ty = vtype(t)?;
                    return Ok(vec![self.cast_bits(out[0], ty)]);
                }
                Ok(out)
            }
            LLVMICmp | LLVMFCmp => {
                // The mask of a wide comparison is held as the mask chunks
                // of its operands (only selects and extensions take it).
                let a = self.operand(ll::operand(i, 0))?;
                let b = self.operand(ll::operand(i, 1))?;
                let mut out = Vec::new();
                for (x, y) in a.into_iter().zip(b) {
                    out.push(if op == LLVMICmp {
                        let (cc, _) = int_cc(ll::icmp_pred(i));
                        self.b.ins().icmp(cc, x, y)
                    } else {
                        match float_cc(ll::fcmp_pred(i)) {
                            Ok(cc) => self.b.ins().fcmp(cc, x, y),
                            Err(_) => return Err(unsupported()),
                        }
                    });
                }
                Ok(out)
            }
            LLVMSelect => {
                let c = ll::operand(i, 0);
                let cv = self.operand(c)?;
                let a = self.operand(ll::operand(i, 1))?;
                let b = self.operand(ll::operand(i, 2))?;
                if a.len() != b.len() {
                    return Err(unsupported());
                }
                let vector_cond = ll::type_kind(ll::type_of(c)) == LLVMTypeKind::LLVMVectorTypeKind;
                if vector_cond && cv.len() != a.len() {
                    return Err(unsupported());
                }
                let mut out = Vec::new();
                for (k, (x, y)) in a.into_iter().zip(b).enumerate() {
                    out.push(if vector_cond {
                        let ty = self.b.func.dfg.value_type(x);
                        let mask = self.cast_bits(cv[k], ty);
                        self.b.ins().bitselect(mask, x, y)
                    } else {
                        self.b.ins().select(cv[0], x, y)
                    });
                }
                Ok(out)
            }
            _ => Err(unsupported()),
        }
    }

    /// Integer vector extensions and truncations involving wide vectors.
    pub(super) fn wide_resize(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Vec<Value>> {
        use LLVMOpcode::*;
        let unsupported = || format!("wide vector operation: {}", ll::print(i));
        let x = ll::operand(i, 0);
        let t = ll::type_of(i);
        let mut vals = self.operand(x)?;
        let to_lane = scalar_type(ll::element_type(t))?;
        if is_i1(ll::element_type(ll::type_of(x))) {
            // A wide mask: chunks of the right lane width already.
            let Some((chunk, n)) = wide(t) else {
                return Err(unsupported());
            };
            if vals.len() != n || op == LLVMTrunc {
                return Err(unsupported());
            }
            let mut out = Vec::new();
            for v in vals {
                let v = self.cast_bits(v, chunk);
                if self.b.func.dfg.value_type(v).lane_bits() != chunk.lane_bits() {
                    return Err(unsupported());
                }
                out.push(if op == LLVMSExt {
                    v
                } else {
                    let one = self.iconst(chunk.lane_type(), 1);
                    let ones = self.b.ins().splat(chunk, one);
                    self.b.ins().band(v, ones)
                });
            }
            return Ok(out);
        }
        let mut lane_bits = self.b.func.dfg.value_type(vals[0]).lane_bits();
        if op == LLVMTrunc && (lane_bits != to_lane.bits() * 2 || vals.len() % 2 != 0) {
            // Lane by lane.
            let n = ll::vector_size(t);
            let per_in = 128 / lane_bits;
            let out_ty = match wide(t) {
                Some((chunk, _)) => chunk,
                None => vtype(t)?,
            };
            let per_out = out_ty.lane_count();
            let chunks = (n * to_lane.bits()).div_ceil(128) as usize;
            let mut out: Vec<Value> = (0..chunks).map(|_| self.zero(out_ty)).collect();
            for j in 0..n {
                let v = vals[(j / per_in) as usize];
                let e = self.b.ins().extractlane(v, (j % per_in) as u8);
                let e = self.b.ins().ireduce(to_lane, e);
                let c = (j / per_out) as usize;
                out[c] = self.b.ins().insertlane(out[c], e, (j % per_out) as u8);
            }
            return Ok(out);
        }
        if op == LLVMTrunc {
            let lane = to_lane.bytes();
            let mut mask = Vec::new();
            for k in 0..(16 / lane) {
                for byte in 0..lane {
                    mask.push((k * 2 * lane + byte) as u8);
                }
            }
            let mut out = Vec::new();
            for pair in vals.chunks(2) {
                let lo = self.cast_bits(pair[0], types::I8X16);
                let hi = self.cast_bits(pair[1], types::I8X16);
                let imm = self
                    .b
                    .func
                    .dfg
                    .immediates
                    .push(ConstantData::from(mask.clone()));
                let r = self.b.ins().shuffle(lo, hi, imm);
                out.push(self.cast_bits(r, to_lane.by(16 / lane).ok_or_else(unsupported)?));
            }
            return Ok(out);
        }
        while lane_bits < to_lane.bits() {
            let mut next = Vec::new();
            for v in vals {
                let ins = self.b.ins();
                let (lo, hi) = if op == LLVMSExt {
                    (ins.swiden_low(v), self.b.ins().swiden_high(v))
                } else {
                    (ins.uwiden_low(v), self.b.ins().uwiden_high(v))
                };
                next.push(lo);
                next.push(hi);
            }
            vals = next;
            lane_bits *= 2;
        }
        if lane_bits != to_lane.bits() {
            return Err(unsupported());
        }
        match wide(t) {
            Some((_, n)) if n == vals.len() => Ok(vals),
            _ => Err(unsupported()),
        }
    }

    /// An i1 lane as the translator's i1 (0 or 1 in an `i8`).
    pub(super) fn lane_to_scalar(&mut self, x: Value, t: LLVMTypeRef) -> Value {
        if is_i1(t) {
            let ty = self.b.func.dfg.value_type(x);
            let x = if ty.bits() > 8 {
                self.b.ins().ireduce(types::I8, x)
            } else {
                x
            };
            self.b.ins().band_imm_u(x, 1)
        } else {
            x
        }
    }

    /// An i1 scalar as a mask lane of type `lane`.
    pub(super) fn scalar_to_lane(&mut self, x: Value, lane: Type) -> Value {
        let xt = self.b.func.dfg.value_type(x);
        if xt == lane {
            // Masks are 0 or -1 per lane.
            if xt == types::I8 {
                return self.b.ins().ineg(x);
            }
            return x;
        }
        let n = self.b.ins().ineg(x);
        if lane.bits() > 8 {
            self.b.ins().sextend(lane, n)
        } else {
            n
        }
    }

    /// Mask `m` (all-ones or zero lanes) with the lanes of vector type
    /// `ty`, lane `k` for lane `k`: lanes twice as wide or half as wide are
    /// narrowed (their low halves) or widened (the low lanes, sign-extended).
    pub(super) fn mask_as(&mut self, m: Value, ty: Type) -> Option<Value> {
        let mt = self.b.func.dfg.value_type(m);
        if !mt.is_vector() || !ty.is_vector() {
            return None;
        }
        let (from, to) = (mt.lane_bits(), ty.lane_bits());
        let m = if from == to {
            m
        } else if from == 2 * to {
            let lane = to / 8;
            let mut bytes = Vec::new();
            for k in 0..mt.lane_count() {
                for byte in 0..lane {
                    bytes.push((k * 2 * lane + byte) as u8);
                }
            }
            bytes.resize(16, 0);
            let x = self.cast_bits(m, types::I8X16);
            let imm = self.b.func.dfg.immediates.push(ConstantData::from(bytes));
            self.b.ins().shuffle(x, x, imm)
        } else if 2 * from == to && mt.lane_type().is_int() {
            self.b.ins().swiden_low(m)
        } else {
            return None;
        };
        Some(self.cast_bits(m, ty))
    }

    /// `v` reinterpreted as a value of vector type `ty` of the same size.
    pub(super) fn cast_bits(&mut self, v: Value, ty: Type) -> Value {
        if self.b.func.dfg.value_type(v) == ty {
            v
        } else {
            self.b.ins().bitcast(ty, little(), v)
        }
    }

    pub(super) fn vector_int_op(
        &mut self,
        op: LLVMOpcode,
        i: LLVMValueRef,
        a: Value,
        b: LLVMValueRef,
        ty: Type,
    ) -> R<Value> {
        use LLVMOpcode::*;
        if matches!(op, LLVMShl | LLVMLShr | LLVMAShr) {
            // Cranelift shifts every lane by one scalar amount.
            let constant = !ll::is_a_constant(b).is_null();
            let e = if constant {
                ll::aggregate_element(b, 0)
            } else {
                std::ptr::null_mut()
            };
            let splat = constant
                && !e.is_null()
                && (0..ty.lane_count()).all(|k| ll::aggregate_element(b, k) == e);
            if !splat {
                return Err(format!("vector shift by a vector: {}", ll::print(i)));
            }
            let amount = self.scalar(e)?;
            let ins = self.b.ins();
            return Ok(match op {
                LLVMShl => ins.ishl(a, amount),
                LLVMLShr => ins.ushr(a, amount),
                _ => ins.sshr(a, amount),
            });
        }
        let b = self.scalar(b)?;
        if op == LLVMMul && ty == types::I8X16 {
            return Err(format!("i8 vector multiply: {}", ll::print(i)));
        }
        let ins = self.b.ins();
        Ok(match op {
            LLVMAdd => ins.iadd(a, b),
            LLVMSub => ins.isub(a, b),
            LLVMMul => ins.imul(a, b),
            LLVMAnd => ins.band(a, b),
            LLVMOr => ins.bor(a, b),
            LLVMXor => ins.bxor(a, b),
            _ => return Err(format!("vector division: {}", ll::print(i))),
        })
    }

    pub(super) fn shuffle(&mut self, i: LLVMValueRef) -> R<Value> {
        let a = self.scalar(ll::operand(i, 0))?;
        let b = self.scalar(ll::operand(i, 1))?;
        let ty = vtype(ll::type_of(i))?;
        let in_ty = self.b.func.dfg.value_type(a);
        if in_ty.lane_type() != ty.lane_type() {
            return Err(format!(
                "shufflevector changing the lane type: {}",
                ll::print(i)
            ));
        }
        let lane = ty.lane_type().bytes() as i32;
        let lanes = in_ty.lane_count() as i32;
        let n_in = ll::vector_size(ll::type_of(ll::operand(i, 0))) as i32;
        let n = ll::num_mask_elements(i);
        let mut mask = Vec::new();
        for k in 0..n {
            let m = ll::mask_value(i, k);
            let m = if m < 0 || m >= 2 * n_in {
                0
            } else if m >= n_in {
                m - n_in + lanes
            } else {
                m
            };
            for byte in 0..lane {
                mask.push((m * lane + byte) as u8);
            }
        }
        mask.resize(16, 0);
        let a8 = self.cast_bits(a, types::I8X16);
        let b8 = self.cast_bits(b, types::I8X16);
        let imm = self.b.func.dfg.immediates.push(ConstantData::from(mask));
        let r = self.b.ins().shuffle(a8, b8, imm);
        Ok(self.cast_bits(r, ty))
    }

    /// Lane-wise conversions Cranelift's x86-64 backend compiles.
    pub(super) fn vector_cast(
        &mut self,
        op: LLVMOpcode,
        i: LLVMValueRef,
        v: Value,
        from: Type,
        to: Type,
    ) -> R<Value> {
        use LLVMOpcode::*;
        let from_lanes = ll::vector_size(ll::type_of(ll::operand(i, 0)));
        let masks = is_i1(ll::element_type(ll::type_of(ll::operand(i, 0))));
        let ins = self.b.ins();
        Ok(match (op, from, to) {
            (LLVMSIToFP, types::I32X4, types::F32X4) => ins.fcvt_from_sint(to, v),
            (LLVMUIToFP, types::I32X4, types::F32X4) => ins.fcvt_from_uint(to, v),
            (LLVMFPToSI, types::F32X4, types::I32X4) => ins.fcvt_to_sint_sat(to, v),
            (LLVMFPToUI, types::F32X4, types::I32X4) => ins.fcvt_to_uint_sat(to, v),
            (LLVMFPExt, types::F32X4, types::F64X2) => ins.fvpromote_low(v),
            (LLVMFPTrunc, types::F64X2, types::F32X4) => ins.fvdemote(v),
            (LLVMSExt | LLVMZExt, _, _)
                if !masks
                    && from.lane_bits() * 2 == to.lane_bits()
                    && from_lanes == to.lane_count() =>
            {
                if op == LLVMSExt {
                    ins.swiden_low(v)
                } else {
                    ins.uwiden_low(v)
                }
            }
            (LLVMTrunc, _, _)
                if !masks
                    && from.lane_bits() == to.lane_bits() * 2
                    && from_lanes == from.lane_count() =>
            {
                // Keep the low half of each lane.
                let lane = to.lane_bits() / 8;
                let mut mask = Vec::new();
                for k in 0..from_lanes {
                    for byte in 0..lane {
                        mask.push((k * 2 * lane + byte) as u8);
                    }
                }
                mask.resize(16, 0);
                let x = self.cast_bits(v, types::I8X16);
                let imm = self.b.func.dfg.immediates.push(ConstantData::from(mask));
                let r = self.b.ins().shuffle(x, x, imm);
                self.cast_bits(r, to)
            }
            _ if !masks && !is_i1(ll::element_type(ll::type_of(i))) => {
                return self.lane_cast(op, i, v, from, to, from_lanes)
            }
            _ => return Err(format!("vector conversion: {}", ll::print(i))),
        })
    }

    /// A vector conversion lane by lane.
    pub(super) fn lane_cast(
        &mut self,
        op: LLVMOpcode,
        i: LLVMValueRef,
        v: Value,
        from: Type,
        to: Type,
        n: u32,
    ) -> R<Value> {
        use LLVMOpcode::*;
        let (fl, tl) = (from.lane_type(), to.lane_type());
        if n > to.lane_count() || n > from.lane_count() {
            return Err(format!("vector conversion: {}", ll::print(i)));
        }
        let mut out = self.zero(to);
        for k in 0..n as u8 {
            let x = self.b.ins().extractlane(v, k);
            let ins = self.b.ins();
            let y = match op {
                LLVMSExt => ins.sextend(tl, x),
                LLVMZExt => ins.uextend(tl, x),
                LLVMTrunc => ins.ireduce(tl, x),
                LLVMFPExt => ins.fpromote(tl, x),
                LLVMFPTrunc => ins.fdemote(tl, x),
                LLVMSIToFP | LLVMUIToFP => {
                    let x = if fl.bits() < 32 {
                        if op == LLVMSIToFP {
                            ins.sextend(types::I32, x)
                        } else {
                            ins.uextend(types::I32, x)
                        }
                    } else {
                        x
                    };
                    if op == LLVMSIToFP {
                        self.b.ins().fcvt_from_sint(tl, x)
                    } else {
                        self.b.ins().fcvt_from_uint(tl, x)
                    }
                }
                LLVMFPToSI | LLVMFPToUI => {
                    let wide_int = if tl.bits() < 32 { types::I32 } else { tl };
                    let r = if op == LLVMFPToSI {
                        ins.fcvt_to_sint_sat(wide_int, x)
                    } else {
                        ins.fcvt_to_uint_sat(wide_int, x)
                    };
                    if wide_int != tl {
                        self.b.ins().ireduce(tl, r)
                    } else {
                        r
                    }
                }
                _ => return Err(format!("vector conversion: {}", ll::print(i))),
            };
            out = self.b.ins().insertlane(out, y, k);
        }
        Ok(out)
    }

    /// An intrinsic on vectors wider than 128 bits: element-wise ones chunk
    /// by chunk, integer reductions by combining the chunks first.
    pub(super) fn wide_intrinsic(&mut self, i: LLVMValueRef, name: &str) -> R<()> {
        const ELEMENTWISE: &[&str] = &[
            "fmuladd",
            "fma",
            "fabs",
            "sqrt",
            "floor",
            "ceil",
            "trunc",
            "rint",
            "nearbyint",
            "round",
            "roundeven",
            "copysign",
            "minnum",
            "maxnum",
            "minimum",
            "maximum",
            "smax",
            "smin",
            "umax",
            "umin",
            "abs",
            "ctpop",
            "ctlz",
            "cttz",
            "bswap",
            "bitreverse",
            "fshl",
            "fshr",
            "sadd.sat",
            "uadd.sat",
            "ssub.sat",
            "usub.sat",
        ];
        const REDUCTIONS: &[&str] = &["add", "and", "or", "xor"];
        let refuse = || Err(format!("intrinsic {name} on vectors wider than 128 bits"));
        let rest = &name["llvm.".len()..];
        let nargs = ll::num_arg_operands(i);
        let t = ll::type_of(i);
        let mut chunked = Vec::new();
        let mut chunks = 0;
        for a in 0..nargs {
            let o = ll::operand(i, a);
            let vals = self.operand(o)?;
            if let Some((_, n)) = wide(ll::type_of(o)) {
                if chunks != 0 && chunks != n {
                    return refuse();
                }
                chunks = n;
            }
            chunked.push((wide(ll::type_of(o)).is_some(), vals));
        }
        let chunk_name = match narrowed_name(name, chunks) {
            Some((x, _)) if chunks > 0 => x,
            _ => return refuse(),
        };
        if let Some(op) = rest.strip_prefix("vector.reduce.") {
            let op = op.split('.').next().unwrap_or("");
            if !REDUCTIONS.contains(&op) || nargs != 1 || wide(t).is_some() {
                return refuse();
            }
            let vals = &chunked[0].1;
            let mut acc = vals[0];
            for &v in &vals[1..] {
                let ins = self.b.ins();
                acc = match op {
                    "add" => ins.iadd(acc, v),
                    "and" => ins.band(acc, v),
                    "or" => ins.bor(acc, v),
                    _ => ins.bxor(acc, v),
                };
            }
            let results = [vtype(t)?];
            let call = IntrinsicCall {
                name: &chunk_name,
                args: &[acc],
                results: &results,
            };
            let mut host = Host {
                names: &mut *self.names,
            };
            let out = intrinsics::translate(&mut self.b, &mut host, &call)?;
            self.def(i, out);
            return Ok(());
        }
        let base = rest.split('.').next().unwrap_or("");
        let base2 = rest.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
        if !ELEMENTWISE.contains(&base) && !ELEMENTWISE.contains(&base2.as_str()) {
            return refuse();
        }
        let Some((chunk_ty, n)) = wide(t) else {
            return refuse();
        };
        if n != chunks {
            return refuse();
        }
        let mut out = Vec::new();
        for k in 0..chunks {
            let args: Vec<Value> = chunked
                .iter()
                .map(|(is_wide, vals)| if *is_wide { vals[k] } else { vals[0] })
                .collect();
            let results = [chunk_ty];
            let call = IntrinsicCall {
                name: &chunk_name,
                args: &args,
                results: &results,
            };
            let mut host = Host {
                names: &mut *self.names,
            };
            let r = intrinsics::translate(&mut self.b, &mut host, &call)?;
            if r.len() != 1 {
                return refuse();
            }
            out.push(r[0]);
        }
        self.def(i, out);
        Ok(())
    }
}

/// `name` with its overloaded wide vector types (`.v8i32`) narrowed to
/// their 128-bit chunks (`.v4i32`), when they split into `chunks`.
pub(super) fn narrowed_name(name: &str, chunks: usize) -> Option<(String, usize)> {
    if chunks == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut changed = 0;
    for part in name.split('.') {
        let narrowed = part.strip_prefix('v').and_then(|p| {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            let elem = &p[digits.len()..];
            let n: usize = digits.parse().ok()?;
            if !matches!(elem, "i8" | "i16" | "i32" | "i64" | "f32" | "f64") || n % chunks != 0 {
                return None;
            }
            Some(format!("v{}{elem}", n / chunks))
        });
        match narrowed {
            Some(p) => {
                changed += 1;
                out.push(p);
            }
            None => out.push(part.to_owned()),
        }
    }
    (changed > 0).then(|| (out.join("."), changed))
}
