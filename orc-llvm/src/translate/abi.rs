//! Types and signatures: CLIF value types as LLVM types, and a CLIF
//! signature as an LLVM function type with the attributes that make its
//! x86-64 System V lowering equal to Cranelift's (`uext`/`sext` as
//! `zeroext`/`signext`; several results as a literal struct returned in
//! rax:rdx and xmm0:xmm1).
//!
//! Invariant: only signatures `check::check_signature` accepted reach this
//! file, so every type here is an integer, f32, f64 or a 128-bit vector.

use cranelift_codegen::ir::{self, types, ArgumentExtension, Type};
use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::context::ContextRef;
use inkwell::types::{BasicMetadataTypeEnum, BasicType, BasicTypeEnum, FunctionType, IntType};
use inkwell::values::FunctionValue;

/// The LLVM type of a CLIF value type (checked by `check::check_type`).
pub(super) fn llvm_type<'ctx>(ctx: &ContextRef<'ctx>, ty: Type) -> BasicTypeEnum<'ctx> {
    if ty.is_vector() {
        let lane = llvm_type(ctx, ty.lane_type());
        return match lane {
            BasicTypeEnum::IntType(t) => t.vec_type(ty.lane_count()).into(),
            BasicTypeEnum::FloatType(t) => t.vec_type(ty.lane_count()).into(),
            _ => unreachable!("lanes are integers or floats"),
        };
    }
    match ty {
        types::F32 => ctx.f32_type().into(),
        types::F64 => ctx.f64_type().into(),
        _ => int_type(ctx, ty.bits()).into(),
    }
}

/// The LLVM integer type of `bits` bits (nonzero).
pub(super) fn int_type<'ctx>(ctx: &ContextRef<'ctx>, bits: u32) -> IntType<'ctx> {
    match bits {
        8 => ctx.i8_type(),
        16 => ctx.i16_type(),
        32 => ctx.i32_type(),
        64 => ctx.i64_type(),
        128 => ctx.i128_type(),
        1 => ctx.bool_type(),
        _ => std::num::NonZeroU32::new(bits)
            .and_then(|n| ctx.custom_width_int_type(n).ok())
            .unwrap_or_else(|| ctx.i64_type()),
    }
}

/// The LLVM function type of `sig`: no result, one result, or a literal
/// struct of several.
pub(super) fn fn_type<'ctx>(ctx: &ContextRef<'ctx>, sig: &ir::Signature) -> FunctionType<'ctx> {
    let params: Vec<BasicMetadataTypeEnum<'ctx>> = sig
        .params
        .iter()
        .map(|p| llvm_type(ctx, p.value_type).into())
        .collect();
    match sig.returns.len() {
        0 => ctx.void_type().fn_type(&params, false),
        1 => llvm_type(ctx, sig.returns[0].value_type).fn_type(&params, false),
        _ => {
            let fields: Vec<BasicTypeEnum<'ctx>> = sig
                .returns
                .iter()
                .map(|r| llvm_type(ctx, r.value_type))
                .collect();
            ctx.struct_type(&fields, false).fn_type(&params, false)
        }
    }
}

/// The attributes of `sig`'s parameters and result, for a definition or a
/// declaration.
pub(super) fn add_attributes(ctx: &ContextRef<'_>, f: FunctionValue<'_>, sig: &ir::Signature) {
    for (i, p) in sig.params.iter().enumerate() {
        if let Some(attr) = extension_attribute(ctx, p.extension) {
            f.add_attribute(AttributeLoc::Param(i as u32), attr);
        }
    }
    if let [r] = sig.returns.as_slice() {
        if let Some(attr) = extension_attribute(ctx, r.extension) {
            f.add_attribute(AttributeLoc::Return, attr);
        }
    }
}

/// The attributes of a call site with signature `sig`.
pub(super) fn add_call_attributes(
    ctx: &ContextRef<'_>,
    call: inkwell::values::CallSiteValue<'_>,
    sig: &ir::Signature,
) {
    for (i, p) in sig.params.iter().enumerate() {
        if let Some(attr) = extension_attribute(ctx, p.extension) {
            call.add_attribute(AttributeLoc::Param(i as u32), attr);
        }
    }
    if let [r] = sig.returns.as_slice() {
        if let Some(attr) = extension_attribute(ctx, r.extension) {
            call.add_attribute(AttributeLoc::Return, attr);
        }
    }
}

fn extension_attribute(ctx: &ContextRef<'_>, ext: ArgumentExtension) -> Option<Attribute> {
    let name = match ext {
        ArgumentExtension::None => return None,
        ArgumentExtension::Uext => "zeroext",
        ArgumentExtension::Sext => "signext",
    };
    Some(ctx.create_enum_attribute(Attribute::get_named_enum_kind_id(name), 0))
}
