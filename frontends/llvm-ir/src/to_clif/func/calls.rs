//! Calls, signatures (SysV attributes), intrinsics and variadic
//! definitions.

use super::*;

impl Tr<'_, '_> {
    /// The signature every reference to function `f` declares it with:
    /// its own type and attributes (none when not expressible).
    pub(super) fn canonical_sig(&mut self, f: LLVMValueRef) -> ir::Signature {
        if let Some(sig) = self.sigs.get(&f) {
            return sig.clone();
        }
        let sig = signature(
            self.info,
            ll::global_value_type(f),
            &|i, k| ll::fn_attr(f, i, k),
            None,
        )
        .map(|s| s.sig)
        .unwrap_or_else(|_| ir::Signature::new(CallConv::SystemV));
        self.sigs.insert(f, sig.clone());
        sig
    }

    /// A reference to function `f` (its vararg thunk when `thunk`) with
    /// its canonical signature.
    pub(super) fn function_ref(&mut self, f: LLVMValueRef, thunk: bool) -> ir::FuncRef {
        let sig = self.canonical_sig(f);
        let name = ll::name(f);
        if thunk {
            self.import(false, &vararg_thunk_symbol(&name), sig)
        } else {
            let defined = ll::is_declaration(f) == 0
                && ll::linkage(f) != LLVMLinkage::LLVMAvailableExternallyLinkage;
            self.import(defined, &name, sig)
        }
    }

    pub(super) fn import(&mut self, defined: bool, name: &str, sig: ir::Signature) -> ir::FuncRef {
        let key = (defined, name.to_owned());
        if let Some(list) = self.imports.get(&key) {
            if let Some((_, f)) = list.iter().find(|(s, _)| *s == sig) {
                return *f;
            }
        }
        let ext = if defined {
            self.names.function(name)
        } else {
            self.names.symbol(name)
        };
        let fref = import_function(&mut self.b, ext, sig.clone());
        self.imports.entry(key).or_default().push((sig, fref));
        fref
    }

    pub(super) fn global(&mut self, name: &str) -> ir::GlobalValue {
        if let Some(&g) = self.globals.get(name) {
            return g;
        }
        let ext = self.names.symbol(name);
        let r = self.b.func.declare_imported_user_function(ext);
        let g = self
            .b
            .func
            .create_global_value(ir::GlobalValueData::Symbol {
                name: ir::ExternalName::User(r),
                offset: ir::immediates::Imm64::new(0),
                colocated: false,
                tls: false,
            });
        self.globals.insert(name.to_owned(), g);
        g
    }

    pub(super) fn call(&mut self, i: LLVMValueRef) -> R<()> {
        let callee = ll::called_value(i);
        let fty = ll::called_type(i);
        let k = &self.info.kinds;
        if !ll::is_a_inline_asm(callee).is_null() {
            return Err(format!("inline asm: {}", ll::print(i)));
        }
        let direct = !ll::is_a_function(callee).is_null();
        let cname = if direct {
            ll::name(callee)
        } else {
            String::new()
        };
        if direct && cname.starts_with("llvm.") {
            return self.intrinsic(i, &cname);
        }
        let returns_twice = ll::call_attr(i, u32::MAX, k.returns_twice).is_some()
            || (direct
                && (ll::fn_attr(callee, u32::MAX, k.returns_twice).is_some()
                    || RETURNS_TWICE.contains(&cname.as_str())));
        if returns_twice {
            return Err(format!(
                "a call to a returns_twice function: {}",
                ll::print(i)
            ));
        }
        let nargs = ll::num_arg_operands(i);
        let named = ll::count_param_types(fty);
        let variadic = ll::is_vararg_type(fty) != 0;
        if variadic && !direct {
            return Err(format!("an indirect variadic call: {}", ll::print(i)));
        }
        let extra: Vec<LLVMTypeRef> = (named..nargs)
            .map(|a| ll::type_of(ll::operand(i, a)))
            .collect();
        let attr = |idx: u32, kind: u32| {
            ll::call_attr(i, idx, kind).or_else(|| {
                if direct {
                    ll::fn_attr(callee, idx, kind)
                } else {
                    None
                }
            })
        };
        let sig = signature(self.info, fty, &attr, variadic.then_some(extra.as_slice()))?;
        let mut args = Vec::new();
        for a in 0..nargs {
            let x = ll::operand(i, a);
            let vals = self.operand(x)?;
            args.extend(self.abi_out(vals, ll::type_of(x))?);
        }
        let same_type = direct && ll::global_value_type(callee) == fty;
        let call = if direct && !variadic && same_type && self.canonical_sig(callee) == sig.sig {
            let fref = self.function_ref(callee, false);
            self.b.ins().call(fref, &args)
        } else if direct {
            // Through the address: one symbol has one signature in a
            // module, and calls of a variadic thunk differ.
            let fref = self.function_ref(callee, variadic);
            let p = self.b.ins().func_addr(types::I64, fref);
            let sref = self.b.import_signature(sig.sig);
            self.b.ins().call_indirect(sref, p, &args)
        } else {
            let p = self.scalar(callee)?;
            let sref = self.b.import_signature(sig.sig);
            self.b.ins().call_indirect(sref, p, &args)
        };
        let results = self.b.inst_results(call).to_vec();
        if !results.is_empty() {
            let mut results = self.abi_in(results, ll::type_of(i))?;
            if is_i1(ll::type_of(i)) {
                results[0] = self.b.ins().band_imm_u(results[0], 1);
            }
            self.def(i, results);
        }
        Ok(())
    }

    pub(super) fn intrinsic(&mut self, i: LLVMValueRef, name: &str) -> R<()> {
        let base = |p: &str| name == p || name.starts_with(&format!("{p}."));
        if base("llvm.lifetime.start")
            || base("llvm.lifetime.end")
            || name.starts_with("llvm.dbg.")
            || base("llvm.va_end")
            || base("llvm.stackrestore")
            || base("llvm.experimental.noalias.scope.decl")
            || base("llvm.donothing")
            || base("llvm.sideeffect")
        {
            return Ok(());
        }
        if base("llvm.stacksave") {
            let v = self.b.ins().get_stack_pointer(types::I64);
            self.def(i, vec![v]);
            return Ok(());
        }
        if base("llvm.va_start") {
            let ap = self.scalar(ll::operand(i, 0))?;
            return self.va_start(ap);
        }
        if base("llvm.va_copy") {
            let dst = self.scalar(ll::operand(i, 0))?;
            let src = self.scalar(ll::operand(i, 1))?;
            for off in [0, 8, 16] {
                let x = self.b.ins().load(types::I64, MemFlagsData::new(), src, off);
                self.b.ins().store(MemFlagsData::new(), x, dst, off);
            }
            return Ok(());
        }
        if base("llvm.load.relative") {
            // ptr + sext(load i32 (ptr + offset)): relative lookup tables.
            let p = self.scalar(ll::operand(i, 0))?;
            let off = self.scalar(ll::operand(i, 1))?;
            let at = self.b.ins().iadd(p, off);
            let rel = self.b.ins().load(types::I32, MemFlagsData::new(), at, 0);
            let rel = self.b.ins().sextend(types::I64, rel);
            let v = self.b.ins().iadd(p, rel);
            self.def(i, vec![v]);
            return Ok(());
        }
        if name.starts_with("llvm.eh.") || base("llvm.threadlocal.address") {
            return Err(format!("intrinsic {name}"));
        }
        let nargs = ll::num_arg_operands(i);
        let mut args = Vec::new();
        if wide(ll::type_of(i)).is_some()
            || (0..nargs).any(|a| wide(ll::type_of(ll::operand(i, a))).is_some())
        {
            return self.wide_intrinsic(i, name);
        }
        for a in 0..nargs {
            let o = ll::operand(i, a);
            if ll::type_kind(ll::type_of(o)) == LLVMTypeKind::LLVMMetadataTypeKind {
                continue;
            }
            args.extend(self.operand(o)?);
        }
        let results: Vec<Type> = leaves(self.info.td, ll::type_of(i))?
            .into_iter()
            .map(|(t, _)| repr(t))
            .collect();
        let call = IntrinsicCall {
            name,
            args: &args,
            results: &results,
        };
        let mut host = Host {
            names: &mut *self.names,
        };
        let vals = intrinsics::translate(&mut self.b, &mut host, &call)?;
        if vals.len() != results.len() {
            return Err(format!("intrinsic {name}: wrong result count"));
        }
        if !vals.is_empty() {
            self.def(i, vals);
        }
        Ok(())
    }

    pub(super) fn variadic_entry(&mut self, entry: Block) -> R<()> {
        self.b.append_block_params_for_function_params(entry);
        let regs = self.b.block_params(entry).to_vec();
        let slot =
            self.b
                .create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 176, 4));
        let area = self.b.ins().stack_addr(types::I64, slot, 0);
        for (k, &r) in regs.iter().enumerate() {
            let off = if k < 6 { 8 * k } else { 48 + 16 * (k - 6) };
            self.b.ins().store(MemFlagsData::new(), r, area, off as i32);
        }
        let (mut gp, mut fp, mut stack) = (0u32, 0u32, 0u32);
        let fp_base = self.b.ins().get_frame_pointer(types::I64);
        for pi in 0..ll::count_params(self.f) {
            let p = ll::param(self.f, pi);
            let t = ll::type_of(p);
            let ty = scalar_type(t)?;
            if ty.is_vector() || ty == types::I128 {
                return Err("variadic function with a vector or i128 parameter".into());
            }
            let v = if ty.is_float() {
                if fp < 8 {
                    let v = self
                        .b
                        .ins()
                        .load(ty, MemFlagsData::new(), area, (48 + 16 * fp) as i32);
                    fp += 1;
                    v
                } else {
                    let v =
                        self.b
                            .ins()
                            .load(ty, MemFlagsData::new(), fp_base, (16 + stack) as i32);
                    stack += 8;
                    v
                }
            } else if gp < 6 {
                let v = self
                    .b
                    .ins()
                    .load(ty, MemFlagsData::new(), area, (8 * gp) as i32);
                gp += 1;
                v
            } else {
                let v = self
                    .b
                    .ins()
                    .load(ty, MemFlagsData::new(), fp_base, (16 + stack) as i32);
                stack += 8;
                v
            };
            let v = if is_i1(t) {
                self.b.ins().band_imm_u(v, 1)
            } else {
                v
            };
            self.values.insert(p, vec![v]);
        }
        self.va = Some(VaInfo {
            save_area: area,
            gp_used: gp,
            fp_used: fp,
            stack_named: stack,
        });
        Ok(())
    }

    pub(super) fn va_start(&mut self, ap: Value) -> R<()> {
        let Some(va) = &self.va else {
            return Err("va_start in a function that is not variadic".into());
        };
        let (area, gp, fp, stack) = (va.save_area, va.gp_used, va.fp_used, va.stack_named);
        let gp_off = self.iconst(types::I32, 8 * gp as i64);
        let fp_off = self.iconst(types::I32, 48 + 16 * fp as i64);
        let frame = self.b.ins().get_frame_pointer(types::I64);
        let overflow = self.b.ins().iadd_imm_s(frame, 16 + stack as i64);
        let f = MemFlagsData::new();
        self.b.ins().store(f, gp_off, ap, 0);
        self.b.ins().store(f, fp_off, ap, 4);
        self.b.ins().store(f, overflow, ap, 8);
        self.b.ins().store(f, area, ap, 16);
        Ok(())
    }

    /// `va_arg` of a scalar integer, pointer, `float` or `double` from a
    /// SysV `va_list` (any function may read one it was given).
    pub(super) fn va_arg(&mut self, i: LLVMValueRef) -> R<()> {
        let ap = self.scalar(ll::operand(i, 0))?;
        let t = ll::type_of(i);
        let ty = scalar_type(t)?;
        if ty.is_vector() || ty == types::I128 {
            return Err(format!("va_arg of type {ty}: {}", ll::print(i)));
        }
        let (limit, step, field) = if ty.is_float() {
            (176, 16, 4)
        } else {
            (48, 8, 0)
        };
        let f = MemFlagsData::new().with_notrap().with_aligned();
        let offset = self.b.ins().load(types::I32, f, ap, field);
        let in_regs = self.b.ins().icmp_imm_s(
            IntCC::UnsignedLessThanOrEqual,
            offset,
            (limit - step) as i64,
        );
        let (regs, memory, join) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        let addr = self.b.append_block_param(join, types::I64);
        self.b.ins().brif(in_regs, regs, &[], memory, &[]);
        self.b.switch_to_block(regs);
        let area = self.b.ins().load(types::I64, f, ap, 16);
        let wide_offset = self.b.ins().uextend(types::I64, offset);
        let at = self.b.ins().iadd(area, wide_offset);
        let next = self.b.ins().iadd_imm_s(offset, step as i64);
        self.b.ins().store(f, next, ap, field);
        self.b.ins().jump(join, &[at.into()]);
        self.b.switch_to_block(memory);
        let overflow = self.b.ins().load(types::I64, f, ap, 8);
        let next = self.b.ins().iadd_imm_s(overflow, 8);
        self.b.ins().store(f, next, ap, 8);
        self.b.ins().jump(join, &[overflow.into()]);
        self.b.switch_to_block(join);
        let mut v = self
            .b
            .ins()
            .load(ty, MemFlagsData::new().with_notrap(), addr, 0);
        if is_i1(t) {
            v = self.b.ins().band_imm_u(v, 1);
        }
        self.def(i, vec![v]);
        Ok(())
    }
}

/// The CLIF signature of function type `fty` whose attributes `attr`
/// gives (index 0 the return value, `i + 1` parameter `i`); `extra` are
/// the types of the variadic arguments of a call.
pub(super) fn signature(
    info: &ModuleInfo,
    fty: LLVMTypeRef,
    attr: &dyn Fn(u32, u32) -> Option<ll::LLVMAttributeRef>,
    extra: Option<&[LLVMTypeRef]>,
) -> R<SigInfo> {
    let k = &info.kinds;
    let mut sig = ir::Signature::new(CallConv::SystemV);
    let ret = ll::return_type(fty);
    let ret_leaves = leaves(info.td, ret)?;
    let (mut ints, mut floats) = (0, 0);
    for &(t, _) in &ret_leaves {
        if t.is_float() || t.is_vector() {
            floats += 1;
        } else if t == types::I128 {
            ints += 2;
        } else {
            ints += 1;
        }
    }
    if ints > 2 || floats > 2 {
        return Err("a return value passed in memory".into());
    }
    let ext = |i: u32| {
        if attr(i, k.zeroext).is_some() {
            ArgumentExtension::Uext
        } else if attr(i, k.signext).is_some() {
            ArgumentExtension::Sext
        } else {
            ArgumentExtension::None
        }
    };
    let ret_ext = ext(0);
    for &(t, _) in &ret_leaves {
        if t == types::I128 {
            // rax:rdx; Cranelift takes no i128 in signatures (without
            // its LLVM ABI extensions), two i64 are the same registers.
            sig.returns.push(AbiParam::new(types::I64));
            sig.returns.push(AbiParam::new(types::I64));
            continue;
        }
        let mut p = AbiParam::new(abi_type(t));
        if !is_aggregate(ret) && t.is_int() {
            p.extension = ret_ext;
        }
        sig.returns.push(p);
    }
    // Integer argument registers used so far (an i128 takes two, or goes
    // to the stack whole, 16-byte aligned, which two i64 would not).
    let mut gp = 0;
    let mut params = Vec::new();
    let mut all: Vec<LLVMTypeRef> = ll::param_types(fty);
    let named = all.len();
    if let Some(extra) = extra {
        all.extend_from_slice(extra);
    }
    for (i, &t) in all.iter().enumerate() {
        let idx = i as u32 + 1;
        let with_attrs = i < named || extra.is_some();
        if with_attrs && (attr(idx, k.inreg).is_some() || attr(idx, k.nest).is_some()) {
            return Err("an inreg or nest parameter".into());
        }
        let kind = if let (true, Some(a)) = (with_attrs, attr(idx, k.byval)) {
            let ty = ll::attr_type(a);
            let align = attr(idx, k.align).map(ll::attr_value).unwrap_or(0);
            if align > 8 || ll::abi_align(info.td, ty) > 8 {
                return Err("a byval parameter aligned to more than 8 bytes".into());
            }
            ParamKind::ByVal(ll::abi_size(info.td, ty) as u32)
        } else if with_attrs && attr(idx, k.sret).is_some() {
            ParamKind::Sret
        } else {
            ParamKind::Plain(if with_attrs {
                ext(idx)
            } else {
                ArgumentExtension::None
            })
        };
        match kind {
            ParamKind::ByVal(size) => {
                sig.params.push(AbiParam::special(
                    types::I64,
                    ArgumentPurpose::StructArgument(size),
                ));
                params.push(1);
            }
            ParamKind::Sret => {
                sig.params
                    .push(AbiParam::special(types::I64, ArgumentPurpose::StructReturn));
                params.push(1);
                gp += 1;
            }
            ParamKind::Plain(e) => {
                let l = leaves(info.td, t)?;
                let mut n = 0;
                for &(lt, _) in &l {
                    if lt == types::I128 {
                        if gp + 2 > 6 {
                            return Err("an i128 argument passed on the stack".into());
                        }
                        gp += 2;
                        sig.params.push(AbiParam::new(types::I64));
                        sig.params.push(AbiParam::new(types::I64));
                        n += 2;
                        continue;
                    }
                    if lt.is_int() {
                        gp += 1;
                    }
                    n += 1;
                    let mut p = AbiParam::new(abi_type(lt));
                    if !is_aggregate(t) && lt.is_int() {
                        p.extension = e;
                    }
                    sig.params.push(p);
                }
                params.push(n);
            }
        }
    }
    Ok(SigInfo { sig, params })
}

pub(super) fn import_function(
    b: &mut FunctionBuilder<'_>,
    name: ir::UserExternalName,
    sig: ir::Signature,
) -> ir::FuncRef {
    let r = b.func.declare_imported_user_function(name);
    let sig = b.import_signature(sig);
    b.import_function(ir::ExtFuncData {
        name: ir::ExternalName::User(r),
        signature: sig,
        colocated: false,
        patchable: false,
    })
}

pub(super) struct Host<'x> {
    pub(super) names: &'x mut dyn ClifNames,
}

impl IntrinsicHost for Host<'_> {
    fn libcall(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        symbol: &str,
        sig: ir::Signature,
    ) -> ir::FuncRef {
        let name = self.names.symbol(symbol);
        import_function(b, name, sig)
    }
}
