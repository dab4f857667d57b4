//! What the translation supports, decided without LLVM: signatures and
//! calling conventions, value types, stack slots, global values and
//! opcodes. `translate_function` runs [`check_function`] before emitting
//! anything, and its lowering covers every instruction accepted here.
//!
//! The rule for ABI questions is to accept only what provably lowers to the
//! same registers and stack slots under Cranelift's x86-64 System V ABI and
//! LLVM's: arguments that fit in registers or in 8-byte stack slots, and
//! returns in at most two integer and two vector registers.

use cranelift_codegen::ir::{self, types, ArgumentPurpose, GlobalValueData, Opcode, Type};
use cranelift_codegen::isa::CallConv;

use super::simd;

/// Integer argument registers of System V (rdi, rsi, rdx, rcx, r8, r9).
const INT_ARG_REGS: usize = 6;
/// Vector argument registers of System V (xmm0-xmm7).
const VEC_ARG_REGS: usize = 8;

/// The first unsupported thing in `func`, described as in
/// [`super::TranslateError::Unsupported`].
pub(super) fn check_function(func: &ir::Function) -> Result<(), String> {
    check_signature(&func.signature, "signature")?;
    for (_, data) in func.dfg.signatures.iter() {
        check_signature(data, "call signature")?;
    }
    for (_, slot) in func.sized_stack_slots.iter() {
        if slot.align_shift > 12 {
            return Err(format!("stack slot alignment 2^{}", slot.align_shift));
        }
    }
    if !func.dynamic_stack_slots.is_empty() {
        return Err("dynamic stack slots".into());
    }
    for (_, gv) in func.global_values.iter() {
        match gv {
            GlobalValueData::Symbol { tls: true, .. } => {
                return Err("thread-local symbol".into());
            }
            GlobalValueData::DynScaleTargetConst { .. } => {
                return Err("global value dyn_scale_target_const".into());
            }
            GlobalValueData::Load { global_type, .. }
            | GlobalValueData::IAddImm { global_type, .. } => check_type(*global_type)?,
            _ => {}
        }
    }
    for block in func.layout.blocks() {
        for &param in func.dfg.block_params(block) {
            check_type(func.dfg.value_type(param))?;
        }
        for inst in func.layout.block_insts(block) {
            check_inst(func, inst)?;
        }
    }
    Ok(())
}

/// A value type the translation handles: integers i8..i128, f32, f64 and
/// 128-bit vectors of those.
pub(super) fn check_type(ty: Type) -> Result<(), String> {
    if ty == types::INVALID {
        return Ok(());
    }
    let ok = if ty.is_vector() && !ty.is_dynamic_vector() {
        ty.bits() == 128 && scalar_ok(ty.lane_type()) && ty.lane_type() != types::I128
    } else {
        scalar_ok(ty)
    };
    if ok {
        Ok(())
    } else {
        Err(format!("type {ty}"))
    }
}

fn scalar_ok(ty: Type) -> bool {
    matches!(
        ty,
        types::I8 | types::I16 | types::I32 | types::I64 | types::I128 | types::F32 | types::F64
    )
}

/// Calling conventions that are System V on x86-64 in Cranelift, or, for
/// `tail`, are where [`check_signature`] allows: Cranelift's `tail` passes
/// arguments in System V's registers, saves the same registers and returns
/// the first integer in `rax` and floats in `xmm0`, `xmm1`; it differs in
/// who pops stack arguments and in where a second integer result goes
/// (`rcx`), which `check_signature` rules out.
pub(super) fn call_conv_ok(cc: CallConv) -> bool {
    matches!(cc, CallConv::SystemV | CallConv::Fast | CallConv::Tail)
}

/// Checks that `sig` lowers to the same registers and stack slots in
/// Cranelift and LLVM; `what` names it in errors ("signature", "call
/// signature").
pub(super) fn check_signature(sig: &ir::Signature, what: &str) -> Result<(), String> {
    if !call_conv_ok(sig.call_conv) {
        return Err(format!("call convention {}", sig.call_conv));
    }
    let mut ints = 0;
    let mut vecs = 0;
    for p in &sig.params {
        check_type(p.value_type).map_err(|t| format!("{t} in {what}"))?;
        match p.purpose {
            ArgumentPurpose::Normal | ArgumentPurpose::VMContext => {}
            ArgumentPurpose::StructReturn => return Err(format!("sret parameter in {what}")),
            ArgumentPurpose::StructArgument(_) => {
                return Err(format!("struct argument in {what}"));
            }
        }
        let ty = p.value_type;
        if ty == types::I128 {
            // Cranelift splits an i128 between a register and the stack when
            // one register is left; LLVM does not: only all-register cases.
            ints += 2;
            if ints > INT_ARG_REGS {
                return Err(format!("i128 parameter on the stack in {what}"));
            }
        } else if ty.is_vector() {
            vecs += 1;
            if vecs > VEC_ARG_REGS {
                return Err(format!("vector parameter on the stack in {what}"));
            }
        } else if ty.is_float() {
            vecs += 1;
        } else {
            ints += 1;
        }
    }
    if sig.call_conv == CallConv::Tail && (ints > INT_ARG_REGS || vecs > VEC_ARG_REGS) {
        // The `tail` callee pops its stack arguments; a System V one not.
        return Err(format!(
            "call convention tail with stack arguments in {what}"
        ));
    }
    let mut ret_ints = 0;
    let mut ret_vecs = 0;
    for r in &sig.returns {
        check_type(r.value_type).map_err(|t| format!("{t} in {what}"))?;
        if r.purpose != ArgumentPurpose::Normal {
            return Err(format!("special return value in {what}"));
        }
        let ty = r.value_type;
        if ty == types::I128 {
            ret_ints += 2;
        } else if ty.is_vector() || ty.is_float() {
            ret_vecs += 1;
        } else {
            ret_ints += 1;
        }
    }
    // `tail` returns vectors in xmm0-xmm7, LLVM's C convention 128-bit
    // vectors in xmm0-xmm3 and scalar floats in xmm0-xmm1 (then it demotes
    // the rest to memory): they agree on up to four, scalar floats first.
    let tail_xmm_ok = sig.call_conv == CallConv::Tail
        && ret_vecs <= 4
        && sig
            .returns
            .iter()
            .filter(|r| r.value_type.is_vector() || r.value_type.is_float())
            .skip(2)
            .all(|r| r.value_type.is_vector());
    if ret_ints > 2 || (ret_vecs > 2 && !tail_xmm_ok) {
        return Err(format!(
            "{} return values in {what} (a return area)",
            sig.returns.len()
        ));
    }
    if sig.call_conv == CallConv::Tail && ret_ints > 1 {
        return Err(format!(
            "call convention tail with {ret_ints} integer result registers in {what}"
        ));
    }
    if sig.returns.iter().any(|r| r.value_type == types::I128) && sig.returns.len() > 1 {
        return Err(format!("i128 among several return values in {what}"));
    }
    Ok(())
}

fn check_inst(func: &ir::Function, inst: ir::Inst) -> Result<(), String> {
    let dfg = &func.dfg;
    let data = &dfg.insts[inst];
    let opcode = data.opcode();
    for &arg in dfg.inst_args(inst) {
        check_type(dfg.value_type(arg))?;
    }
    for &res in dfg.inst_results(inst) {
        check_type(dfg.value_type(res))?;
    }
    let ctrl = dfg.ctrl_typevar(inst);
    let vector = ctrl.is_vector()
        || dfg
            .inst_args(inst)
            .iter()
            .any(|&a| dfg.value_type(a).is_vector())
        || dfg
            .inst_results(inst)
            .iter()
            .any(|&r| dfg.value_type(r).is_vector());
    if vector {
        return if simd::supports(func, inst) {
            Ok(())
        } else {
            Err(format!("{opcode} on {}", vector_type_of(func, inst)))
        };
    }
    if !scalar_opcode_ok(opcode) {
        return Err(opcode.to_string());
    }
    if let Some(callee) = return_call_signature(func, data) {
        // LLVM's `musttail` needs the caller's and the callee's prototypes
        // to be the same.
        if !same_prototype(&func.signature, callee) {
            return Err(format!("{opcode} to a function of another signature"));
        }
    }
    let i128_ok = !matches!(
        opcode,
        Opcode::FcvtToSint
            | Opcode::FcvtToUint
            | Opcode::FcvtToSintSat
            | Opcode::FcvtToUintSat
            | Opcode::FcvtFromSint
            | Opcode::FcvtFromUint
            | Opcode::AtomicRmw
            | Opcode::AtomicCas
            | Opcode::AtomicLoad
            | Opcode::AtomicStore
            // Cranelift's x86-64 backend has none of these on i128, and
            // LLVM would call compiler-rt helpers the JIT may not find.
            | Opcode::Udiv
            | Opcode::Sdiv
            | Opcode::Urem
            | Opcode::Srem
            | Opcode::Umulhi
            | Opcode::Smulhi
            | Opcode::UmulOverflow
            | Opcode::SmulOverflow
    );
    let has_i128 = ctrl == types::I128
        || dfg
            .inst_args(inst)
            .iter()
            .chain(dfg.inst_results(inst))
            .any(|&v| dfg.value_type(v) == types::I128);
    if has_i128 && !i128_ok {
        return Err(format!("{opcode} on i128"));
    }
    if let ir::InstructionData::Load { flags, .. }
    | ir::InstructionData::Store { flags, .. }
    | ir::InstructionData::LoadNoOffset { flags, .. }
    | ir::InstructionData::StoreNoOffset { flags, .. }
    | ir::InstructionData::AtomicRmw { flags, .. }
    | ir::InstructionData::AtomicCas { flags, .. } = data
    {
        let big = dfg.mem_flags[*flags].explicit_endianness() == Some(ir::Endianness::Big);
        if big && matches!(opcode, Opcode::AtomicRmw | Opcode::AtomicCas) {
            return Err(format!("big-endian {opcode}"));
        }
    }
    Ok(())
}

/// The signature a `return_call` or `return_call_indirect` calls.
pub(super) fn return_call_signature<'f>(
    func: &'f ir::Function,
    data: &ir::InstructionData,
) -> Option<&'f ir::Signature> {
    match *data {
        ir::InstructionData::Call {
            opcode: Opcode::ReturnCall,
            func_ref,
            ..
        } => Some(&func.dfg.signatures[func.dfg.ext_funcs[func_ref].signature]),
        ir::InstructionData::CallIndirect {
            opcode: Opcode::ReturnCallIndirect,
            sig_ref,
            ..
        } => Some(&func.dfg.signatures[sig_ref]),
        _ => None,
    }
}

/// Whether two signatures translate to the same LLVM prototype (types and
/// extensions of parameters and results; conventions agree by `check`).
fn same_prototype(a: &ir::Signature, b: &ir::Signature) -> bool {
    let key = |p: &ir::AbiParam| (p.value_type, p.extension, p.purpose);
    a.params.iter().map(key).eq(b.params.iter().map(key))
        && a.returns.iter().map(key).eq(b.returns.iter().map(key))
}

/// The vector type an instruction works on, for messages.
fn vector_type_of(func: &ir::Function, inst: ir::Inst) -> Type {
    let dfg = &func.dfg;
    let ctrl = dfg.ctrl_typevar(inst);
    if ctrl.is_vector() {
        return ctrl;
    }
    dfg.inst_results(inst)
        .iter()
        .chain(dfg.inst_args(inst))
        .map(|&v| dfg.value_type(v))
        .find(|t| t.is_vector())
        .unwrap_or(ctrl)
}

/// Opcodes translated on scalar (non-vector) types.
fn scalar_opcode_ok(opcode: Opcode) -> bool {
    use Opcode as O;
    matches!(
        opcode,
        O::Jump
            | O::Brif
            | O::BrTable
            | O::Debugtrap
            | O::Trap
            | O::Trapz
            | O::Trapnz
            | O::Return
            | O::Call
            | O::CallIndirect
            | O::ReturnCall
            | O::ReturnCallIndirect
            | O::FuncAddr
            | O::Smin
            | O::Umin
            | O::Smax
            | O::Umax
            | O::Load
            | O::Store
            | O::Uload8
            | O::Sload8
            | O::Istore8
            | O::Uload16
            | O::Sload16
            | O::Istore16
            | O::Uload32
            | O::Sload32
            | O::Istore32
            | O::StackAddr
            | O::SymbolValue
            | O::GetFramePointer
            | O::GetStackPointer
            | O::GetReturnAddress
            | O::Iconst
            | O::F32const
            | O::F64const
            | O::Nop
            | O::Select
            | O::SelectSpectreGuard
            | O::Bitselect
            | O::Icmp
            | O::Iadd
            | O::Isub
            | O::Ineg
            | O::Iabs
            | O::Imul
            | O::Umulhi
            | O::Smulhi
            | O::Udiv
            | O::Sdiv
            | O::Urem
            | O::Srem
            | O::SaddOverflowCin
            | O::UaddOverflowCin
            | O::UaddOverflow
            | O::SaddOverflow
            | O::UsubOverflow
            | O::SsubOverflow
            | O::UmulOverflow
            | O::SmulOverflow
            | O::UaddOverflowTrap
            | O::SsubOverflowBin
            | O::UsubOverflowBin
            | O::Band
            | O::Bor
            | O::Bxor
            | O::Bnot
            | O::Rotl
            | O::Rotr
            | O::Ishl
            | O::Ushr
            | O::Sshr
            | O::Bitrev
            | O::Clz
            | O::Cls
            | O::Ctz
            | O::Bswap
            | O::Popcnt
            | O::Fcmp
            | O::Fadd
            | O::Fsub
            | O::Fmul
            | O::Fdiv
            | O::Sqrt
            | O::Fma
            | O::Fneg
            | O::Fabs
            | O::Fcopysign
            | O::Fmin
            | O::Fmax
            | O::Ceil
            | O::Floor
            | O::Trunc
            | O::Nearest
            | O::Bitcast
            | O::Bmask
            | O::Ireduce
            | O::Uextend
            | O::Sextend
            | O::Fpromote
            | O::Fdemote
            | O::FcvtToUint
            | O::FcvtToSint
            | O::FcvtToUintSat
            | O::FcvtToSintSat
            | O::FcvtFromUint
            | O::FcvtFromSint
            | O::Isplit
            | O::Iconcat
            | O::AtomicRmw
            | O::AtomicCas
            | O::AtomicLoad
            | O::AtomicStore
            | O::Fence
            | O::SequencePoint
    )
}
