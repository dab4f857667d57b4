//! The test trampoline: one System V function that calls any Cranelift
//! signature with its arguments and results in memory.
//!
//! The host cannot call an arbitrary CLIF signature (i128, vectors, the
//! `tail` convention, several results) from Rust. Like Cranelift's own test
//! runner, orc compiles a small function per signature,
//! `trampoline(callee: i64, values: i64)`, that loads each argument from its
//! 16-byte slot at `values` (little-endian, see [`crate::values`]), calls
//! `callee` with `call_indirect` in the signature's convention, and stores
//! each result back into the slots from the first one. The host then calls
//! the trampoline as `extern "C" fn(*const u8, *mut u128)` with a buffer of
//! [`crate::values::slot_count`] slots, 16-byte aligned.

use cranelift_codegen::ir::{
    types, AbiParam, Endianness, Function, InstBuilder, MemFlagsData, Signature, UserFuncName,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use crate::values::{check_signature, ValuesError, SLOT_BYTES};

/// The trampoline's own signature: `(callee: i64, values: i64)` in the
/// System V convention, no results.
pub fn signature() -> Signature {
    let mut sig = Signature::new(CallConv::SystemV);
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig
}

/// Builds the trampoline for functions of signature `sig`, named `%name`
/// (a test-case name, so its symbol is `name`). Fails when a parameter or
/// result type does not fit a slot.
pub fn build(sig: &Signature, name: &str) -> Result<Function, ValuesError> {
    check_signature(sig)?;
    let mut func = Function::with_name_signature(UserFuncName::testcase(name), signature());
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let (callee, values) = (b.block_params(block)[0], b.block_params(block)[1]);
    // The slots are host memory the caller owns for the call: aligned to 16
    // and never trapping.
    let flags = MemFlagsData::trusted().with_endianness(Endianness::Little);
    let args: Vec<_> = sig
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| b.ins().load(p.value_type, flags, values, slot_offset(i)))
        .collect();
    let sig_ref = b.import_signature(sig.clone());
    let call = b.ins().call_indirect(sig_ref, callee, &args);
    let results = b.inst_results(call).to_vec();
    for (i, r) in results.into_iter().enumerate() {
        b.ins().store(flags, r, values, slot_offset(i));
    }
    b.ins().return_(&[]);
    // The trampoline passes pointers as i64: it is for 64-bit hosts.
    b.finalize(TargetFrontendConfig {
        default_call_conv: CallConv::SystemV,
        pointer_width: target_lexicon::PointerWidth::U64,
        page_size_align_log2: 12,
    });
    Ok(func)
}

fn slot_offset(index: usize) -> i32 {
    // Signatures have far fewer than 2^27 parameters: the verifier and the
    // ABI limit them long before.
    i32::try_from(index * SLOT_BYTES).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::settings;

    fn verify(func: &Function) {
        let flags = settings::Flags::new(settings::builder());
        cranelift_codegen::verify_function(func, &flags).expect("the trampoline verifies");
    }

    #[test]
    fn loads_each_argument_and_stores_each_result() {
        let mut sig = Signature::new(CallConv::Tail);
        sig.params.push(AbiParam::new(types::I128));
        sig.params.push(AbiParam::new(types::F32X4));
        sig.returns.push(AbiParam::new(types::I8));
        sig.returns.push(AbiParam::new(types::F64));
        sig.returns.push(AbiParam::new(types::I64));
        let func = build(&sig, "t").unwrap();
        verify(&func);
        let text = func.display().to_string();
        assert!(text.starts_with("function %t(i64, i64) system_v"), "{text}");
        assert!(
            text.contains("load.i128 notrap aligned little v1"),
            "{text}"
        );
        assert!(
            text.contains("load.f32x4 notrap aligned little v1+16"),
            "{text}"
        );
        assert!(text.contains("tail"), "{text}");
        assert_eq!(text.matches("store ").count(), 3, "{text}");
        assert!(text.contains("v1+32"), "{text}");
    }

    #[test]
    fn empty_signature_calls_and_returns() {
        let func = build(&Signature::new(CallConv::SystemV), "none").unwrap();
        verify(&func);
        let text = func.display().to_string();
        assert!(text.contains("call_indirect"), "{text}");
        assert!(!text.contains("load"), "{text}");
    }

    #[test]
    fn unsupported_types_are_errors() {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.returns.push(AbiParam::new(types::I64X4));
        assert!(matches!(
            build(&sig, "wide"),
            Err(ValuesError::Unsupported { what: "result", .. })
        ));
    }
}
