//! Calls: `call` and `call_indirect` with Cranelift's System V lowering of
//! the signature (see `abi.rs`), `return_call` and `return_call_indirect`
//! as LLVM `musttail` calls (a guaranteed tail call, so recursion through
//! them runs in constant stack as in Cranelift; `check` allows them only
//! between functions of the same prototype), and `func_addr`. Callees are external
//! declarations named by the `NameResolver` (an existing function of the
//! module with the same name is reused if its type matches).

use cranelift_codegen::ir::{self, InstructionData, Opcode};
use inkwell::module::Linkage;
use inkwell::values::LLVMTailCallKind;
use inkwell::values::{BasicMetadataValueEnum, BasicValueEnum, CallSiteValue, FunctionValue};
use inkwell::AddressSpace;

use super::abi;
use super::function::{add_function_over_data, Fail, Fx, Res};

impl<'ctx> Fx<'_, 'ctx> {
    /// The LLVM function a `FuncRef` names, declared if new.
    pub(super) fn callee(&self, fref: ir::FuncRef) -> Res<FunctionValue<'ctx>> {
        let ext = &self.func.dfg.ext_funcs[fref];
        let sig = &self.func.dfg.signatures[ext.signature];
        let name = self.resolve(&ext.name)?;
        let fn_type = abi::fn_type(&self.ctx, sig);
        if let Some(f) = self.module.get_function(&name) {
            if f.get_type() != fn_type {
                return Err(Fail::Invalid(format!(
                    "callee '{name}' is already declared with another type"
                )));
            }
            return Ok(f);
        }
        let f = add_function_over_data(self.module, &name, fn_type).map_err(Fail::Invalid)?;
        f.set_linkage(Linkage::External);
        abi::add_attributes(&self.ctx, f, sig);
        Ok(f)
    }

    /// Lowers `inst` if it is a call or `func_addr`.
    pub(super) fn call_op(
        &mut self,
        inst: ir::Inst,
        opcode: Opcode,
        data: &InstructionData,
    ) -> Res<Option<Vec<BasicValueEnum<'ctx>>>> {
        let dfg = &self.func.dfg;
        let args = dfg.inst_args(inst);
        let vals = |vs: &[ir::Value]| -> Res<Vec<BasicMetadataValueEnum<'ctx>>> {
            vs.iter().map(|&v| Ok(self.val(v)?.into())).collect()
        };
        let (call, sig) = match (opcode, *data) {
            (Opcode::Call | Opcode::ReturnCall, InstructionData::Call { func_ref, .. }) => {
                let f = self.callee(func_ref)?;
                let sig = &dfg.signatures[dfg.ext_funcs[func_ref].signature];
                (self.b.build_call(f, &vals(args)?, "")?, sig)
            }
            (
                Opcode::CallIndirect | Opcode::ReturnCallIndirect,
                InstructionData::CallIndirect { sig_ref, .. },
            ) => {
                let sig = &dfg.signatures[sig_ref];
                let (&callee, rest) = args
                    .split_first()
                    .ok_or_else(|| Fail::Invalid("call_indirect without a callee".into()))?;
                let ptr = self.b.build_int_to_ptr(
                    self.int(callee)?,
                    self.ctx.ptr_type(AddressSpace::default()),
                    "",
                )?;
                let fn_type = abi::fn_type(&self.ctx, sig);
                (
                    self.b.build_indirect_call(fn_type, ptr, &vals(rest)?, "")?,
                    sig,
                )
            }
            (Opcode::FuncAddr, InstructionData::FuncAddr { func_ref, .. }) => {
                let f = self.callee(func_ref)?;
                let ptr = f.as_global_value().as_pointer_value();
                let addr = self.b.build_ptr_to_int(ptr, self.ctx.i64_type(), "")?;
                return Ok(Some(vec![addr.into()]));
            }
            _ => return Ok(None),
        };
        abi::add_call_attributes(&self.ctx, call, sig);
        if matches!(opcode, Opcode::ReturnCall | Opcode::ReturnCallIndirect) {
            call.set_tail_call_kind(LLVMTailCallKind::LLVMTailCallKindMustTail);
            match call.try_as_basic_value().basic() {
                Some(v) => self.b.build_return(Some(&v))?,
                None => self.b.build_return(None)?,
            };
            return Ok(Some(Vec::new()));
        }
        self.call_results(call, sig.returns.len()).map(Some)
    }

    /// Lowers a `return_call` or `return_call_indirect`: a `musttail`
    /// call whose value is returned as is.
    pub(super) fn return_call(
        &mut self,
        inst: ir::Inst,
        opcode: Opcode,
        data: &InstructionData,
    ) -> Res<()> {
        self.call_op(inst, opcode, data)?;
        Ok(())
    }

    /// The CLIF results of a call returning `n` values.
    fn call_results(&self, call: CallSiteValue<'ctx>, n: usize) -> Res<Vec<BasicValueEnum<'ctx>>> {
        if n == 0 {
            return Ok(vec![]);
        }
        let v = call
            .try_as_basic_value()
            .basic()
            .ok_or_else(|| Fail::Invalid("call returned nothing".into()))?;
        if n == 1 {
            return Ok(vec![v]);
        }
        let s = v.into_struct_value();
        (0..n)
            .map(|i| Ok(self.b.build_extract_value(s, i as u32, "")?))
            .collect()
    }
}
