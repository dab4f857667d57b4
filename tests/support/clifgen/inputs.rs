//! Argument values for generated functions, and the constants the
//! generator writes: edge values (zero, one, all ones, the signed limits,
//! powers of two, the float specials and conversion bounds, NaNs with
//! payloads, subnormals) half of the time, raw random bits otherwise.

use arbitrary::Unstructured;
use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{types, Signature};

/// `n` argument lists for a function of `sig`. The first list is all
/// zeros, so every case runs at least one plain input.
pub(super) fn generate(u: &mut Unstructured<'_>, sig: &Signature, n: usize) -> Vec<Vec<DataValue>> {
    let mut inputs = Vec::with_capacity(n);
    for i in 0..n {
        let args = sig
            .params
            .iter()
            .map(|p| {
                if i == 0 {
                    return zero(p.value_type);
                }
                match p.value_type {
                    types::I8 => DataValue::I8(int_bits(u, 8) as i8),
                    types::I16 => DataValue::I16(int_bits(u, 16) as i16),
                    types::I32 => DataValue::I32(int_bits(u, 32) as i32),
                    types::I64 => DataValue::I64(int_bits(u, 64) as i64),
                    types::I128 => {
                        let lo = int_bits(u, 64) as u128;
                        let hi = int_bits(u, 64) as u128;
                        DataValue::I128(((hi << 64) | lo) as i128)
                    }
                    types::F32 => DataValue::F32(Ieee32::with_bits(f32_bits(u))),
                    _ => DataValue::F64(Ieee64::with_bits(f64_bits(u))),
                }
            })
            .collect();
        inputs.push(args);
    }
    inputs
}

fn zero(ty: cranelift_codegen::ir::Type) -> DataValue {
    match ty {
        types::I8 => DataValue::I8(0),
        types::I16 => DataValue::I16(0),
        types::I32 => DataValue::I32(0),
        types::I64 => DataValue::I64(0),
        types::I128 => DataValue::I128(0),
        types::F32 => DataValue::F32(Ieee32::with_bits(0)),
        _ => DataValue::F64(Ieee64::with_bits(0)),
    }
}

/// An integer of `bits` bits (at most 64), zero-extended.
pub(super) fn int_bits(u: &mut Unstructured<'_>, bits: u32) -> u64 {
    let bits = bits.min(64);
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let sign = 1u64 << (bits - 1);
    let raw: u64 = u.arbitrary().unwrap_or(0);
    let v = match u.int_in_range(0u8..=15).unwrap_or(0) {
        0 => 0,
        1 => 1,
        2 => mask,              // -1
        3 => sign,              // signed minimum
        4 => sign - 1,          // signed maximum
        5 => (bits - 1) as u64, // the largest in-range shift amount
        6 => bits as u64,       // the smallest masked shift amount
        7 => 1u64 << (raw % bits as u64),
        8 => raw % 8,
        9 => 2,
        _ => raw,
    };
    v & mask
}

/// The bits of an `f32`: specials and conversion bounds half of the time.
pub(super) fn f32_bits(u: &mut Unstructured<'_>) -> u32 {
    let raw: u32 = u.arbitrary().unwrap_or(0);
    let specials: [f32; 22] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -2.5,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        2147483648.0,
        -2147483648.0,
        4294967296.0,
        9.223372e18,
        -9.223372e18,
        1.8446744e19,
        255.5,
        -128.5,
    ];
    match u.int_in_range(0u8..=7).unwrap_or(0) {
        0..=2 => u.choose(&specials).map(|f| f.to_bits()).unwrap_or(0),
        // NaNs: quiet or signalling, either sign, with a payload.
        3 => 0x7f80_0000 | (raw & 0x807f_ffff) | 1,
        4 => raw & 0x807f_ffff, // subnormals and zeros
        5 => ((raw % 1000) as f32 / 4.0).to_bits() ^ (raw & 0x8000_0000),
        _ => raw,
    }
}

/// The bits of an `f64`: specials and conversion bounds half of the time.
pub(super) fn f64_bits(u: &mut Unstructured<'_>) -> u64 {
    let raw: u64 = u.arbitrary().unwrap_or(0);
    let specials: [f64; 24] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -2.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        2147483647.5,
        -2147483648.5,
        4294967295.5,
        9223372036854775807.0,
        -9223372036854775808.0,
        18446744073709551615.0,
        255.5,
        -128.5,
        65535.9,
        -32768.9,
    ];
    match u.int_in_range(0u8..=7).unwrap_or(0) {
        0..=2 => u.choose(&specials).map(|f| f.to_bits()).unwrap_or(0),
        3 => 0x7ff0_0000_0000_0000 | (raw & 0x800f_ffff_ffff_ffff) | 1,
        4 => raw & 0x800f_ffff_ffff_ffff,
        5 => ((raw % 100_000) as f64 / 8.0).to_bits() ^ (raw & (1 << 63)),
        _ => raw,
    }
}
