//! What Cranelift's x86-64 backend panics on, with the settings of orc's
//! tier-0 compiler, instead of compiling it or returning an error.
//!
//! A panic in a compile is caught by the session, but it abandons the whole
//! module with a backtrace on stderr and no useful message. The facade asks
//! [`tier0_obstacle`] first and reports the function as not compilable by
//! tier 0, naming the reason; the trampoline builder refuses signatures
//! Cranelift cannot call. Each entry here was found by a run test that
//! made Cranelift 0.135 panic.

use cranelift_codegen::ir::{types, Function, InstructionData, Opcode, Signature};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::Flags;

/// Why compiling `func` with `flags` would make Cranelift's x86-64
/// backend panic; `None` when nothing known would.
pub fn tier0_obstacle(func: &Function, flags: &Flags) -> Option<String> {
    let signatures = std::iter::once(&func.signature).chain(func.dfg.signatures.values());
    for sig in signatures {
        if let Some(reason) = signature_obstacle(sig, flags) {
            return Some(reason);
        }
    }
    let insts = func
        .layout
        .blocks()
        .flat_map(|block| func.layout.block_insts(block));
    for inst in insts {
        let op = func.dfg.insts[inst].opcode();
        if matches!(op, Opcode::ReturnCall | Opcode::ReturnCallIndirect)
            && !flags.preserve_frame_pointers()
        {
            return Some(format!(
                "{op} needs preserve_frame_pointers, which the tier-0 compiler does not set"
            ));
        }
        let narrow_result = matches!(func.dfg.insts[inst], InstructionData::Unary { .. })
            && matches!(
                op,
                Opcode::FcvtToSint
                    | Opcode::FcvtToUint
                    | Opcode::FcvtToSintSat
                    | Opcode::FcvtToUintSat
            )
            && matches!(func.dfg.ctrl_typevar(inst), types::I8 | types::I16);
        if narrow_result {
            let ty = func.dfg.ctrl_typevar(inst);
            return Some(format!(
                "{op} to {ty} has no x86-64 lowering in Cranelift (convert to i32 and reduce)"
            ));
        }
    }
    None
}

/// Why Cranelift's x86-64 backend would panic on a call or function of
/// signature `sig` with `flags`: i128 parameters or results outside the
/// `tail` convention need `enable_llvm_abi_extensions`.
pub fn signature_obstacle(sig: &Signature, flags: &Flags) -> Option<String> {
    let i128_abi = sig.call_conv != CallConv::Tail
        && !flags.enable_llvm_abi_extensions()
        && sig
            .params
            .iter()
            .chain(&sig.returns)
            .any(|p| p.value_type == types::I128);
    i128_abi.then(|| {
        format!(
            "i128 in the {} convention needs enable_llvm_abi_extensions, which the tier-0 compiler does not set (use the tail convention or i64 halves)",
            sig.call_conv
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_reader::parse_functions;

    fn flags(set: &[&str]) -> Flags {
        let mut b = settings::builder();
        for name in set {
            b.set(name, "true").unwrap();
        }
        Flags::new(b)
    }

    fn func(text: &str) -> Function {
        parse_functions(text).unwrap().remove(0)
    }

    #[test]
    fn tail_calls_need_frame_pointers() {
        let f =
            func("function %f() tail {\n    fn0 = %f() tail\nblock0:\n    return_call fn0()\n}\n");
        assert_eq!(
            tier0_obstacle(&f, &flags(&[])).as_deref(),
            Some(
                "return_call needs preserve_frame_pointers, which the tier-0 compiler does not set"
            )
        );
        assert_eq!(
            tier0_obstacle(&f, &flags(&["preserve_frame_pointers"])),
            None
        );
    }

    #[test]
    fn i128_outside_tail_needs_abi_extensions() {
        let f = func("function %f(i128) -> i128 system_v {\nblock0(v0: i128):\n    return v0\n}\n");
        let reason = tier0_obstacle(&f, &flags(&[])).unwrap();
        assert!(
            reason.starts_with("i128 in the system_v convention"),
            "{reason}"
        );
        assert_eq!(
            tier0_obstacle(&f, &flags(&["enable_llvm_abi_extensions"])),
            None
        );
        let tail = func("function %f(i128) -> i128 tail {\nblock0(v0: i128):\n    return v0\n}\n");
        assert_eq!(tier0_obstacle(&tail, &flags(&[])), None);
        let caller = func("function %g() {\n    sig0 = (i128) system_v\nblock0:\n    return\n}\n");
        assert!(tier0_obstacle(&caller, &flags(&[])).is_some());
    }

    #[test]
    fn narrow_float_to_int_conversions_have_no_lowering() {
        let f = func("function %f(f32) -> i16 {\nblock0(v0: f32):\n    v1 = fcvt_to_sint_sat.i16 v0\n    return v1\n}\n");
        let reason = tier0_obstacle(&f, &flags(&[])).unwrap();
        assert!(reason.starts_with("fcvt_to_sint_sat to i16"), "{reason}");
        let wide = func("function %f(f32) -> i32 {\nblock0(v0: f32):\n    v1 = fcvt_to_sint_sat.i32 v0\n    return v1\n}\n");
        assert_eq!(tier0_obstacle(&wide, &flags(&[])), None);
    }
}
