//! Memory: loads and stores (leaf by leaf for aggregates), atomics, and
//! `getelementptr`.

use super::*;

impl Tr<'_, '_> {
    pub(super) fn load(&mut self, i: LLVMValueRef) -> R<()> {
        if let Some(&var) = self.promoted.get(&ll::operand(i, 0)) {
            let v = self.b.use_var(var);
            self.def(i, vec![v]);
            return Ok(());
        }
        let t = ll::type_of(i);
        let p = self.scalar(ll::operand(i, 0))?;
        let flags = MemFlagsData::new();
        if ll::ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic {
            let ty = scalar_type(t)?;
            let it = atomic_int(ty).ok_or_else(|| ll::print(i))?;
            let mut v = self.b.ins().atomic_load(it, flags, p);
            if it != ty {
                v = self.b.ins().bitcast(ty, MemFlagsData::new(), v);
            }
            self.def(i, vec![v]);
            return Ok(());
        }
        let mut vals = Vec::new();
        let align = ll::alignment(i);
        let plain = ll::is_volatile(i) == 0;
        for (lt, off) in leaves(self.info.td, t)? {
            let flags = access_flags(plain, align, lt, off);
            if is_half(lt) {
                let x = self.b.ins().load(types::F64, flags, p, off as i32);
                vals.push(self.widen(x, lt));
            } else {
                vals.push(self.b.ins().load(lt, flags, p, off as i32));
            }
        }
        if is_i1(t) {
            vals[0] = self.b.ins().band_imm_u(vals[0], 1);
        }
        self.def(i, vals);
        Ok(())
    }

    pub(super) fn store(&mut self, i: LLVMValueRef) -> R<()> {
        if let Some(&var) = self.promoted.get(&ll::operand(i, 1)) {
            let v = self.scalar(ll::operand(i, 0))?;
            self.b.def_var(var, v);
            return Ok(());
        }
        let x = ll::operand(i, 0);
        let t = ll::type_of(x);
        let vals = self.operand(x)?;
        let p = self.scalar(ll::operand(i, 1))?;
        let flags = MemFlagsData::new();
        if ll::ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic {
            let ty = scalar_type(t)?;
            let it = atomic_int(ty).ok_or_else(|| ll::print(i))?;
            let mut v = vals[0];
            if it != ty {
                v = self.b.ins().bitcast(it, MemFlagsData::new(), v);
            }
            self.b.ins().atomic_store(flags, v, p);
            return Ok(());
        }
        let align = ll::alignment(i);
        let plain = ll::is_volatile(i) == 0;
        for ((lt, off), v) in leaves(self.info.td, t)?.into_iter().zip(vals) {
            let flags = access_flags(plain, align, lt, off);
            let v = if is_half(lt) { self.narrow(v) } else { v };
            self.b.ins().store(flags, v, p, off as i32);
        }
        Ok(())
    }

    pub(super) fn atomic_rmw(&mut self, i: LLVMValueRef) -> R<()> {
        use LLVMAtomicRMWBinOp::*;
        let p = self.scalar(ll::operand(i, 0))?;
        let x = self.scalar(ll::operand(i, 1))?;
        let ty = scalar_type(ll::type_of(i))?;
        if !ty.is_int() || ty == types::I128 {
            return err(i);
        }
        let op = match ll::rmw_op(i) {
            LLVMAtomicRMWBinOpXchg => AtomicRmwOp::Xchg,
            LLVMAtomicRMWBinOpAdd => AtomicRmwOp::Add,
            LLVMAtomicRMWBinOpSub => AtomicRmwOp::Sub,
            LLVMAtomicRMWBinOpAnd => AtomicRmwOp::And,
            LLVMAtomicRMWBinOpNand => AtomicRmwOp::Nand,
            LLVMAtomicRMWBinOpOr => AtomicRmwOp::Or,
            LLVMAtomicRMWBinOpXor => AtomicRmwOp::Xor,
            LLVMAtomicRMWBinOpMax => AtomicRmwOp::Smax,
            LLVMAtomicRMWBinOpMin => AtomicRmwOp::Smin,
            LLVMAtomicRMWBinOpUMax => AtomicRmwOp::Umax,
            LLVMAtomicRMWBinOpUMin => AtomicRmwOp::Umin,
            _ => return err(i),
        };
        let v = self.b.ins().atomic_rmw(ty, MemFlagsData::new(), op, p, x);
        self.def(i, vec![v]);
        Ok(())
    }

    pub(super) fn cmpxchg(&mut self, i: LLVMValueRef) -> R<()> {
        let p = self.scalar(ll::operand(i, 0))?;
        let e = self.scalar(ll::operand(i, 1))?;
        let x = self.scalar(ll::operand(i, 2))?;
        let ty = self.b.func.dfg.value_type(e);
        if !ty.is_int() || ty == types::I128 {
            return err(i);
        }
        let old = self.b.ins().atomic_cas(MemFlagsData::new(), p, e, x);
        let ok = self.b.ins().icmp(IntCC::Equal, old, e);
        self.def(i, vec![old, ok]);
        Ok(())
    }

    pub(super) fn gep(&mut self, i: LLVMValueRef) -> R<Value> {
        let td = self.info.td;
        let mut p = self.scalar(ll::operand(i, 0))?;
        if self.b.func.dfg.value_type(p) != types::I64 {
            return Err(format!("vector getelementptr: {}", ll::print(i)));
        }
        let mut t = ll::gep_source_type(i);
        let n = ll::num_operands(i) as u32;
        let mut offset: i64 = 0;
        for k in 1..n {
            let idx = ll::operand(i, k);
            let scale;
            if k == 1 {
                scale = ll::abi_size(td, t) as i64;
            } else {
                match ll::type_kind(t) {
                    LLVMTypeKind::LLVMStructTypeKind => {
                        let field = ll::const_zext(idx) as u32;
                        offset += ll::offset_of(td, t, field) as i64;
                        t = ll::struct_elem(t, field);
                        continue;
                    }
                    LLVMTypeKind::LLVMArrayTypeKind | LLVMTypeKind::LLVMVectorTypeKind => {
                        t = ll::element_type(t);
                        scale = ll::abi_size(td, t) as i64;
                    }
                    _ => return err(i),
                }
            }
            if !ll::is_a_constant_int(idx).is_null() && ll::int_width(ll::type_of(idx)) <= 64 {
                offset = offset.wrapping_add(ll::const_sext(idx).wrapping_mul(scale));
                continue;
            }
            let x = self.scalar(idx)?;
            let xt = self.b.func.dfg.value_type(x);
            if xt.is_vector() {
                return Err(format!("vector getelementptr: {}", ll::print(i)));
            }
            let x = if is_i1(ll::type_of(idx)) {
                self.b.ins().ineg(x)
            } else {
                x
            };
            let x = match xt.bits().cmp(&64) {
                std::cmp::Ordering::Less => self.b.ins().sextend(types::I64, x),
                std::cmp::Ordering::Greater => self.b.ins().ireduce(types::I64, x),
                std::cmp::Ordering::Equal => x,
            };
            let scaled = if scale == 1 {
                x
            } else {
                self.b.ins().imul_imm_s(x, scale)
            };
            p = self.b.ins().iadd(p, scaled);
        }
        if offset != 0 {
            p = self.b.ins().iadd_imm_s(p, offset);
        }
        Ok(p)
    }
}

/// The flags of a plain access of a leaf of type `ty` at `off` from an
/// address aligned to `align`. A non-volatile access that faults is
/// undefined behaviour in LLVM, so it is `notrap` (which lets tier 1
/// treat it as the plain access it was); a volatile one keeps its trap.
pub(super) fn access_flags(plain: bool, align: u32, ty: Type, off: u64) -> MemFlagsData {
    let mut flags = MemFlagsData::new();
    if plain {
        flags = flags.with_notrap();
    }
    let size = ty.bytes() as u64;
    if size > 0 && align as u64 % size == 0 && off % size == 0 {
        flags = flags.with_aligned();
    }
    flags
}

/// The integer type atomics of `ty` use.
pub(super) fn atomic_int(ty: Type) -> Option<Type> {
    match ty {
        types::I8 | types::I16 | types::I32 | types::I64 => Some(ty),
        types::F32 => Some(types::I32),
        types::F64 => Some(types::I64),
        _ => None,
    }
}
