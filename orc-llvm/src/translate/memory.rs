//! Memory: loads and stores with their flags (the narrow and extending
//! forms, big-endian as byte swaps on x86-64, `aligned` as natural
//! alignment, anything else as alignment 1), stack slots (allocas in the
//! entry block) and `stack_addr`, global values (`symbol_value` chains of
//! symbols, `vmctx`, loads and `iadd_imm`), atomics (all sequentially
//! consistent, as Cranelift's are), fences, and the frame and return
//! address.
//!
//! An access without `notrap` may fault in Cranelift's code, and that fault
//! is behaviour: it is kept by making the LLVM access volatile (LLVM would
//! otherwise delete an unused load or a dead store). Frontends mark the
//! accesses that cannot fault `notrap` (`MemFlagsData::trusted()`), and
//! those are optimized freely, as are accesses inside a stack slot: an
//! address known to be a slot's plus a constant is a `getelementptr` on
//! the slot's alloca, so LLVM can promote the slot to registers.
//!
//! Addresses are CLIF integers (i64 on x86-64) converted with `inttoptr`
//! at each access; offsets are added with wrapping arithmetic, never with
//! `inbounds`.

use cranelift_codegen::ir::{
    self, ArgumentPurpose, AtomicRmwOp, Endianness, GlobalValueData, InstructionData, MemFlags,
    Opcode,
};
use inkwell::module::Linkage;
use inkwell::types::{BasicType, BasicTypeEnum};
use inkwell::values::{BasicValue, BasicValueEnum, IntValue, PointerValue};
use inkwell::{AddressSpace, AtomicOrdering, AtomicRMWBinOp};

use super::function::{Fail, Fx, Res};

impl<'ctx> Fx<'_, 'ctx> {
    /// The allocas of the stack slots, at the current (entry) position.
    pub(super) fn create_stack_slots(&mut self) -> Res<()> {
        for (slot, data) in self.func.sized_stack_slots.iter() {
            let t = self.ctx.i8_type().array_type(data.size);
            let p = self.b.build_alloca(t, &slot.to_string())?;
            if let Some(i) = p.as_instruction() {
                i.set_alignment(1u32 << data.align_shift)
                    .map_err(|e| Fail::Invalid(format!("alignment of {slot}: {e}")))?;
            }
            self.slots.insert(slot, p);
        }
        Ok(())
    }

    /// CLIF address `base + offset` as a pointer. An address known to
    /// point into a stack slot becomes a `getelementptr` on its alloca, so
    /// LLVM can promote the slot to registers (`inttoptr` would make it
    /// escape).
    pub(super) fn address(&self, base: ir::Value, offset: i64) -> Res<PointerValue<'ctx>> {
        let base = self.func.dfg.resolve_aliases(base);
        if let Some(&(ptr, known, _)) = self.addrs.get(&base) {
            let i8t = self.ctx.i8_type();
            let off = self
                .ctx
                .i64_type()
                .const_int(known.wrapping_add(offset) as u64, true);
            // SAFETY: a `getelementptr` (without `inbounds`) on `i8` with one
            // i64 index is well-formed IR for any pointer and index: it only
            // computes `ptr + off`, exactly the CLIF address; inkwell marks
            // GEPs unsafe because ill-typed indices abort LLVM, and these
            // are not.
            let p = unsafe { self.b.build_gep(i8t, ptr, &[off], "")? };
            return Ok(p);
        }
        self.address_of_int(self.int(base)?, offset)
    }

    /// Integer address `base + offset` as a pointer.
    pub(super) fn address_of_int(
        &self,
        base: IntValue<'ctx>,
        offset: i64,
    ) -> Res<PointerValue<'ctx>> {
        let base = if offset == 0 {
            base
        } else {
            let off = base.get_type().const_int(offset as u64, true);
            self.b.build_int_add(base, off, "")?
        };
        Ok(self
            .b
            .build_int_to_ptr(base, self.ctx.ptr_type(AddressSpace::default()), "")?)
    }

    /// Loads `ty` from `ptr` honouring `flags` (alignment, endianness); a
    /// load that `may_fault` is kept (see the module docs).
    pub(super) fn load_typed(
        &self,
        ptr: PointerValue<'ctx>,
        ty: ir::Type,
        flags: MemFlags,
        may_fault: bool,
    ) -> Res<BasicValueEnum<'ctx>> {
        let data = self.func.dfg.mem_flags[flags];
        let big = data.explicit_endianness() == Some(Endianness::Big);
        let llty = self.ty(ty);
        let access_ty: BasicTypeEnum<'ctx> = if big && !ty.is_vector() {
            super::abi::int_type(&self.ctx, ty.bits()).into()
        } else {
            llty
        };
        let v = self.b.build_load(access_ty, ptr, "")?;
        self.set_align(v, ty, data.aligned())?;
        if may_fault {
            self.keep_access(v.as_instruction_value())?;
        }
        if big && !ty.is_vector() {
            let swapped = self.bswap(v.into_int_value())?;
            return Ok(self.b.build_bit_cast(swapped, llty, "")?);
        }
        Ok(v)
    }

    /// Stores `v` (of CLIF type `ty`) to `ptr` honouring `flags`; a store
    /// that `may_fault` is kept.
    pub(super) fn store_typed(
        &self,
        ptr: PointerValue<'ctx>,
        v: BasicValueEnum<'ctx>,
        ty: ir::Type,
        flags: MemFlags,
        may_fault: bool,
    ) -> Res<()> {
        let data = self.func.dfg.mem_flags[flags];
        let big = data.explicit_endianness() == Some(Endianness::Big);
        let v = if big && !ty.is_vector() {
            let it = super::abi::int_type(&self.ctx, ty.bits());
            let bits = self.b.build_bit_cast(v, it, "")?.into_int_value();
            self.bswap(bits)?.into()
        } else {
            v
        };
        let st = self.b.build_store(ptr, v)?;
        st.set_alignment(if data.aligned() { ty.bytes() } else { 1 })
            .map_err(|e| Fail::Invalid(format!("store alignment: {e}")))?;
        if may_fault {
            self.keep_access(Some(st))?;
        }
        Ok(())
    }

    /// Whether an access of `bytes` at `base + offset` with `flags` may
    /// fault: not when flagged `notrap`, nor when it lies inside a stack
    /// slot.
    pub(super) fn may_fault(
        &self,
        flags: MemFlags,
        base: ir::Value,
        offset: i64,
        bytes: u32,
    ) -> bool {
        if self.func.dfg.mem_flags[flags].notrap() {
            return false;
        }
        let base = self.func.dfg.resolve_aliases(base);
        match self.addrs.get(&base) {
            Some(&(_, known, size)) => {
                let start = i128::from(known) + i128::from(offset);
                !(start >= 0 && start + i128::from(bytes) <= i128::from(size))
            }
            None => true,
        }
    }

    /// Makes an access that may trap volatile: LLVM deletes unused loads
    /// and dead stores, and so would drop the fault Cranelift's code takes.
    /// Accesses flagged `notrap` stay plain, free to be optimized.
    pub(super) fn keep_access(
        &self,
        inst: Option<inkwell::values::InstructionValue<'ctx>>,
    ) -> Res<()> {
        if let Some(i) = inst {
            i.set_volatile(true)
                .map_err(|e| Fail::Invalid(format!("volatile access: {e}")))?;
        }
        Ok(())
    }

    fn set_align(&self, v: BasicValueEnum<'ctx>, ty: ir::Type, aligned: bool) -> Res<()> {
        if let Some(i) = v.as_instruction_value() {
            i.set_alignment(if aligned { ty.bytes() } else { 1 })
                .map_err(|e| Fail::Invalid(format!("load alignment: {e}")))?;
        }
        Ok(())
    }

    /// The value of global value `gv` (an address or a loaded value).
    pub(super) fn global_value(&self, gv: ir::GlobalValue) -> Res<IntValue<'ctx>> {
        let i64t = self.ctx.i64_type();
        match &self.func.global_values[gv] {
            GlobalValueData::VMContext => {
                let i = self
                    .func
                    .signature
                    .special_param_index(ArgumentPurpose::VMContext)
                    .ok_or_else(|| Fail::Invalid("vmctx used without a vmctx parameter".into()))?;
                let p = self
                    .f
                    .get_nth_param(i as u32)
                    .ok_or_else(|| Fail::Invalid("vmctx parameter missing".into()))?;
                Ok(p.into_int_value())
            }
            GlobalValueData::Symbol { name, offset, .. } => {
                let sym = self.resolve(name)?;
                let ptr = if let Some(f) = self.module.get_function(&sym) {
                    f.as_global_value().as_pointer_value()
                } else if let Some(g) = self.module.get_global(&sym) {
                    g.as_pointer_value()
                } else {
                    let g = self.module.add_global(self.ctx.i8_type(), None, &sym);
                    g.set_linkage(Linkage::External);
                    g.as_pointer_value()
                };
                let addr = self.b.build_ptr_to_int(ptr, i64t, "")?;
                let off = offset.bits();
                if off == 0 {
                    Ok(addr)
                } else {
                    Ok(self
                        .b
                        .build_int_add(addr, i64t.const_int(off as u64, true), "")?)
                }
            }
            GlobalValueData::Load {
                base,
                offset,
                global_type,
                flags,
            } => {
                let base = self.global_value(*base)?;
                let ptr = self.address_of_int(base, i64::from(*offset))?;
                let may_fault = !self.func.dfg.mem_flags[*flags].notrap();
                Ok(self
                    .load_typed(ptr, *global_type, *flags, may_fault)?
                    .into_int_value())
            }
            GlobalValueData::IAddImm { base, offset, .. } => {
                let base = self.global_value(*base)?;
                let off = base.get_type().const_int(offset.bits() as u64, true);
                Ok(self.b.build_int_add(base, off, "")?)
            }
            GlobalValueData::DynScaleTargetConst { .. } => Err(Fail::Unsupported(
                "global value dyn_scale_target_const".into(),
            )),
        }
    }

    /// The symbol name of an external name, through the resolver.
    pub(super) fn resolve(&self, name: &ir::ExternalName) -> Res<String> {
        (self.names)(self.func, name).ok_or_else(|| {
            Fail::Invalid(format!(
                "external name {} does not resolve to a symbol",
                name.display(Some(&self.func.params))
            ))
        })
    }

    /// Lowers `inst` if it is a memory instruction.
    pub(super) fn memory_op(
        &mut self,
        inst: ir::Inst,
        opcode: Opcode,
        data: &InstructionData,
    ) -> Res<Option<Vec<BasicValueEnum<'ctx>>>> {
        let dfg = &self.func.dfg;
        let ctrl = dfg.ctrl_typevar(inst);
        let i64t = self.ctx.i64_type();
        let seq = AtomicOrdering::SequentiallyConsistent;
        let v: BasicValueEnum<'ctx> = match (opcode, *data) {
            (
                Opcode::Load
                | Opcode::Uload8
                | Opcode::Sload8
                | Opcode::Uload16
                | Opcode::Sload16
                | Opcode::Uload32
                | Opcode::Sload32,
                InstructionData::Load {
                    arg, flags, offset, ..
                },
            ) => {
                let ptr = self.address(arg, i64::from(offset))?;
                let (mem_ty, signed) = match opcode {
                    Opcode::Uload8 => (ir::types::I8, false),
                    Opcode::Sload8 => (ir::types::I8, true),
                    Opcode::Uload16 => (ir::types::I16, false),
                    Opcode::Sload16 => (ir::types::I16, true),
                    Opcode::Uload32 => (ir::types::I32, false),
                    Opcode::Sload32 => (ir::types::I32, true),
                    _ => (ctrl, false),
                };
                let may_fault = self.may_fault(flags, arg, i64::from(offset), mem_ty.bytes());
                let v = self.load_typed(ptr, mem_ty, flags, may_fault)?;
                if mem_ty == ctrl {
                    v
                } else {
                    let t = self.ty(ctrl).into_int_type();
                    self.b
                        .build_int_cast_sign_flag(v.into_int_value(), t, signed, "")?
                        .into()
                }
            }
            (
                Opcode::Store | Opcode::Istore8 | Opcode::Istore16 | Opcode::Istore32,
                InstructionData::Store {
                    args,
                    flags,
                    offset,
                    ..
                },
            ) => {
                let ptr = self.address(args[1], i64::from(offset))?;
                let mut v = self.val(args[0])?;
                let mut ty = self.vty(args[0]);
                let narrow = match opcode {
                    Opcode::Istore8 => Some(ir::types::I8),
                    Opcode::Istore16 => Some(ir::types::I16),
                    Opcode::Istore32 => Some(ir::types::I32),
                    _ => None,
                };
                if let Some(n) = narrow {
                    let t = self.ty(n).into_int_type();
                    v = self.b.build_int_truncate(v.into_int_value(), t, "")?.into();
                    ty = n;
                }
                let may_fault = self.may_fault(flags, args[1], i64::from(offset), ty.bytes());
                self.store_typed(ptr, v, ty, flags, may_fault)?;
                return Ok(Some(vec![]));
            }
            (
                Opcode::StackAddr,
                InstructionData::StackAddr {
                    stack_slot, offset, ..
                },
            ) => {
                let slot = *self
                    .slots
                    .get(&stack_slot)
                    .ok_or_else(|| Fail::Invalid(format!("unknown stack slot {stack_slot}")))?;
                if ctrl == ir::types::I64 {
                    let result = dfg.inst_results(inst)[0];
                    let size = self.func.sized_stack_slots[stack_slot].size;
                    self.addrs.insert(result, (slot, i64::from(offset), size));
                }
                let addr = self.b.build_ptr_to_int(slot, i64t, "")?;
                let off = i64t.const_int(i64::from(offset) as u64, true);
                let addr = self.b.build_int_add(addr, off, "")?;
                let t = self.ty(ctrl).into_int_type();
                self.b.build_int_cast_sign_flag(addr, t, false, "")?.into()
            }
            (Opcode::SymbolValue, InstructionData::UnaryGlobalValue { global_value, .. }) => {
                self.global_value(global_value)?.into()
            }
            (Opcode::AtomicLoad, InstructionData::LoadNoOffset { arg, .. }) => {
                let ptr = self.address(arg, 0)?;
                let v = self.b.build_load(self.ty(ctrl), ptr, "")?;
                let i = v
                    .as_instruction_value()
                    .ok_or_else(|| Fail::Invalid("atomic load folded".into()))?;
                i.set_alignment(ctrl.bytes())
                    .and_then(|()| i.set_atomic_ordering(seq))
                    .map_err(|e| Fail::Invalid(format!("atomic load: {e}")))?;
                v
            }
            (Opcode::AtomicStore, InstructionData::StoreNoOffset { args, .. }) => {
                let ptr = self.address(args[1], 0)?;
                let v = self.val(args[0])?;
                let st = self.b.build_store(ptr, v)?;
                st.set_alignment(self.vty(args[0]).bytes())
                    .and_then(|()| st.set_atomic_ordering(seq))
                    .map_err(|e| Fail::Invalid(format!("atomic store: {e}")))?;
                return Ok(Some(vec![]));
            }
            (Opcode::AtomicRmw, InstructionData::AtomicRmw { args, op, .. }) => {
                let ptr = self.address(args[0], 0)?;
                let x = self.int(args[1])?;
                let op = match op {
                    AtomicRmwOp::Add => AtomicRMWBinOp::Add,
                    AtomicRmwOp::Sub => AtomicRMWBinOp::Sub,
                    AtomicRmwOp::And => AtomicRMWBinOp::And,
                    AtomicRmwOp::Nand => AtomicRMWBinOp::Nand,
                    AtomicRmwOp::Or => AtomicRMWBinOp::Or,
                    AtomicRmwOp::Xor => AtomicRMWBinOp::Xor,
                    AtomicRmwOp::Xchg => AtomicRMWBinOp::Xchg,
                    AtomicRmwOp::Umin => AtomicRMWBinOp::UMin,
                    AtomicRmwOp::Umax => AtomicRMWBinOp::UMax,
                    AtomicRmwOp::Smin => AtomicRMWBinOp::Min,
                    AtomicRmwOp::Smax => AtomicRMWBinOp::Max,
                };
                self.b.build_atomicrmw(op, ptr, x, seq)?.into()
            }
            (Opcode::AtomicCas, InstructionData::AtomicCas { args, .. }) => {
                let ptr = self.address(args[0], 0)?;
                let (e, r) = (self.int(args[1])?, self.int(args[2])?);
                let pair = self.b.build_cmpxchg(ptr, e, r, seq, seq)?;
                self.b.build_extract_value(pair, 0, "")?
            }
            (Opcode::Fence, _) => {
                self.b.build_fence(seq, false, "")?;
                return Ok(Some(vec![]));
            }
            (Opcode::GetStackPointer, _) => {
                // llvm.read_register.i64(metadata !{!"rsp"})
                let f = self.intrinsic("llvm.read_register", &[i64t.into()])?;
                let name = self.ctx.metadata_string("rsp");
                let node = self.ctx.metadata_node(&[name.into()]);
                let call = self.b.build_call(f, &[node.into()], "")?;
                call.try_as_basic_value()
                    .basic()
                    .ok_or_else(|| Fail::Invalid("read_register returned nothing".into()))?
            }
            (Opcode::GetFramePointer | Opcode::GetReturnAddress, _) => {
                let name = if opcode == Opcode::GetFramePointer {
                    "llvm.frameaddress"
                } else {
                    "llvm.returnaddress"
                };
                let ptr_ty = self.ctx.ptr_type(AddressSpace::default());
                let types: Vec<BasicTypeEnum<'ctx>> = if opcode == Opcode::GetFramePointer {
                    vec![ptr_ty.as_basic_type_enum()]
                } else {
                    vec![]
                };
                let zero = self.ctx.i32_type().const_zero();
                let p = self.call_intrinsic(name, &types, &[zero.into()])?;
                self.b
                    .build_ptr_to_int(p.into_pointer_value(), i64t, "")?
                    .into()
            }
            _ => return Ok(None),
        };
        Ok(Some(vec![v]))
    }
}
