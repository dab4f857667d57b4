//! LLVM types as CLIF types: scalars, vectors, and the leaves of
//! aggregates with their offsets.

use super::*;

/// The CLIF type of an LLVM scalar or vector type.
pub(super) fn scalar_type(t: LLVMTypeRef) -> R<Type> {
    Ok(match ll::type_kind(t) {
        LLVMTypeKind::LLVMIntegerTypeKind => match ll::int_width(t) {
            1 | 8 => types::I8,
            16 => types::I16,
            32 => types::I32,
            64 => types::I64,
            128 => types::I128,
            w => return Err(format!("type i{w}")),
        },
        LLVMTypeKind::LLVMFloatTypeKind => types::F32,
        LLVMTypeKind::LLVMDoubleTypeKind => types::F64,
        LLVMTypeKind::LLVMPointerTypeKind => {
            if ll::pointer_space(t) != 0 {
                return Err(format!("address space {}", ll::pointer_space(t)));
            }
            types::I64
        }
        LLVMTypeKind::LLVMVectorTypeKind => {
            let n = ll::vector_size(t);
            let e = ll::element_type(t);
            let lane = match ll::type_kind(e) {
                LLVMTypeKind::LLVMIntegerTypeKind if ll::int_width(e) == 1 => {
                    // A mask: lanes as wide as 128 bits allow.
                    match n {
                        2 => types::I64,
                        4 => types::I32,
                        8 => types::I16,
                        16 => types::I8,
                        _ => return Err(format!("vector type <{n} x i1>")),
                    }
                }
                _ => scalar_type(e)?,
            };
            if lane.is_vector() || lane == types::I128 || !matches!(lane.bits() * n, 64 | 128) {
                return Err(format!("vector type <{n} x {}> (not 64 or 128 bits)", lane));
            }
            lane.by(n).ok_or("vector type")?
        }
        LLVMTypeKind::LLVMX86_FP80TypeKind => return Err("type x86_fp80".into()),
        LLVMTypeKind::LLVMHalfTypeKind => return Err("type half".into()),
        LLVMTypeKind::LLVMFP128TypeKind => return Err("type fp128".into()),
        k => return Err(format!("type {k:?}")),
    })
}

/// The type of values of storage type `ty`: a 64-bit vector is held in
/// the low half of a 128-bit one.
pub(super) fn repr(ty: Type) -> Type {
    if ty.is_vector() && ty.bits() == 64 {
        ty.lane_type().by(128 / ty.lane_bits()).unwrap_or(ty)
    } else {
        ty
    }
}

pub(super) fn is_half(ty: Type) -> bool {
    ty.is_vector() && ty.bits() == 64
}

/// The type of values of LLVM scalar or vector type `t`.
pub(super) fn vtype(t: LLVMTypeRef) -> R<Type> {
    scalar_type(t).map(repr)
}

/// The ABI type of a leaf: a 64-bit vector travels in an xmm register.
pub(super) fn abi_type(ty: Type) -> Type {
    if is_half(ty) {
        types::F64
    } else {
        ty
    }
}

/// A vector wider than 128 bits (and a multiple of it, at most 512): the
/// CLIF type of its 128-bit chunks and their number. Such a vector is
/// held as its chunks, like an aggregate.
pub(super) fn wide(t: LLVMTypeRef) -> Option<(Type, usize)> {
    if ll::type_kind(t) != LLVMTypeKind::LLVMVectorTypeKind {
        return None;
    }
    let e = ll::element_type(t);
    if is_i1(e) {
        return None;
    }
    let lane = scalar_type(e).ok()?;
    let bits = lane.bits() * ll::vector_size(t);
    if lane == types::I128 || bits <= 128 || bits % 128 != 0 || bits > 512 {
        return None;
    }
    Some((lane.by(128 / lane.bits())?, (bits / 128) as usize))
}

pub(super) fn is_aggregate(t: LLVMTypeRef) -> bool {
    matches!(
        ll::type_kind(t),
        LLVMTypeKind::LLVMStructTypeKind | LLVMTypeKind::LLVMArrayTypeKind
    )
}

pub(super) fn is_i1(t: LLVMTypeRef) -> bool {
    ll::type_kind(t) == LLVMTypeKind::LLVMIntegerTypeKind && ll::int_width(t) == 1
}

/// The most leaves an aggregate value may have.
pub(super) const MAX_LEAVES: usize = 64;

/// The scalar leaves of `t` with their byte offsets.
pub(super) fn leaves(td: LLVMTargetDataRef, t: LLVMTypeRef) -> R<Vec<(Type, u64)>> {
    let mut out = Vec::new();
    leaves_into(td, t, 0, &mut out)?;
    Ok(out)
}

pub(super) fn leaves_into(
    td: LLVMTargetDataRef,
    t: LLVMTypeRef,
    base: u64,
    out: &mut Vec<(Type, u64)>,
) -> R<()> {
    match ll::type_kind(t) {
        LLVMTypeKind::LLVMStructTypeKind => {
            for i in 0..ll::struct_count(t) {
                let off = ll::offset_of(td, t, i);
                leaves_into(td, ll::struct_elem(t, i), base + off, out)?;
            }
        }
        LLVMTypeKind::LLVMArrayTypeKind => {
            let e = ll::element_type(t);
            let size = ll::abi_size(td, e);
            let n = ll::array_len(t);
            if n > MAX_LEAVES as u64 {
                return Err(format!("aggregate value of {n} elements"));
            }
            for i in 0..n {
                leaves_into(td, e, base + i * size, out)?;
            }
        }
        LLVMTypeKind::LLVMVoidTypeKind => {}
        _ => match wide(t) {
            Some((chunk, n)) => {
                for k in 0..n {
                    out.push((chunk, base + 16 * k as u64));
                }
            }
            None => out.push((scalar_type(t)?, base)),
        },
    }
    if out.len() > MAX_LEAVES {
        return Err("aggregate value of too many elements".into());
    }
    Ok(())
}

/// The number of leaves of each element of aggregate `t`.
pub(super) fn element_leaf_counts(td: LLVMTargetDataRef, t: LLVMTypeRef) -> R<Vec<usize>> {
    match ll::type_kind(t) {
        LLVMTypeKind::LLVMStructTypeKind => (0..ll::struct_count(t))
            .map(|i| leaves(td, ll::struct_elem(t, i)).map(|l| l.len()))
            .collect(),
        LLVMTypeKind::LLVMArrayTypeKind => {
            let n = leaves(td, ll::element_type(t))?.len();
            Ok(vec![n; ll::array_len(t) as usize])
        }
        _ => Err("extractvalue/insertvalue on a non-aggregate".into()),
    }
}

pub(super) fn element_type_at(t: LLVMTypeRef, i: u32) -> LLVMTypeRef {
    if ll::type_kind(t) == LLVMTypeKind::LLVMStructTypeKind {
        ll::struct_elem(t, i)
    } else {
        ll::element_type(t)
    }
}

/// The leaf range of the element at `path` of aggregate `t`, and its type.
pub(super) fn leaf_range(
    td: LLVMTargetDataRef,
    mut t: LLVMTypeRef,
    path: &[u32],
) -> R<(std::ops::Range<usize>, LLVMTypeRef)> {
    let mut start = 0;
    for &i in path {
        let counts = element_leaf_counts(td, t)?;
        start += counts[..i as usize].iter().sum::<usize>();
        t = element_type_at(t, i);
    }
    let n = leaves(td, t)?.len();
    Ok((start..start + n, t))
}
