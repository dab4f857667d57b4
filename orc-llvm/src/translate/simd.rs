//! 128-bit SIMD instructions. Not translated yet: every instruction on a
//! vector type is reported as unsupported, naming the opcode and type.

use cranelift_codegen::ir::{self, InstructionData};
use inkwell::values::BasicValueEnum;

use super::function::{Fail, Fx, Res};

/// Whether the SIMD lowering covers `inst` (which has a vector operand or
/// result).
pub(super) fn supports(_func: &ir::Function, _inst: ir::Inst) -> bool {
    false
}

impl<'ctx> Fx<'_, 'ctx> {
    /// Lowers an instruction with a vector operand or result.
    pub(super) fn simd(&mut self, inst: ir::Inst, data: &InstructionData) -> Res<()> {
        let _: Option<BasicValueEnum<'ctx>> = None;
        let ty = self.func.dfg.ctrl_typevar(inst);
        Err(Fail::Unsupported(format!("{} on {ty}", data.opcode())))
    }
}
