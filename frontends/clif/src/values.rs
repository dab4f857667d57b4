//! Argument and result slots shared by the host and the test trampoline.
//!
//! A call through the trampoline (see [`crate::trampoline`]) passes one
//! 16-byte slot per argument, little-endian, and gets the results back in
//! the same slots. Every value Cranelift can pass by value fits: integers up
//! to i128, floats up to f128 and vectors up to 128 bits. These functions
//! convert between [`DataValue`]s and slots and check each value's type
//! against the signature, so a mismatch is an error instead of a wrong call.

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{types, AbiParam, Signature, Type};

/// Bytes in one argument or result slot.
pub const SLOT_BYTES: usize = 16;

/// Why values could not be converted to or from slots.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValuesError {
    /// The number of values differs from the signature's.
    #[error("expected {expected} {what}, got {got}")]
    Arity {
        /// `arguments` or `results`.
        what: &'static str,
        /// What the signature declares.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A value's type differs from the signature's.
    #[error("{what} {index} has type {got}, the signature declares {expected}")]
    Type {
        /// `argument` or `result`.
        what: &'static str,
        /// Its position, from 0.
        index: usize,
        /// The declared type.
        expected: Type,
        /// The given value's type.
        got: Type,
    },
    /// The signature has a type that does not fit a slot.
    #[error("{what} {index} has type {ty}, which cannot be passed in a 16-byte slot")]
    Unsupported {
        /// `argument` or `result`.
        what: &'static str,
        /// Its position, from 0.
        index: usize,
        /// The type.
        ty: Type,
    },
}

/// The number of slots a call with `sig` needs: enough for its arguments
/// and for its results, and at least one.
pub fn slot_count(sig: &Signature) -> usize {
    sig.params.len().max(sig.returns.len()).max(1)
}

/// Whether a value of type `ty` can travel in a slot.
pub fn fits_slot(ty: Type) -> bool {
    let scalar = matches!(
        ty,
        types::I8
            | types::I16
            | types::I32
            | types::I64
            | types::I128
            | types::F16
            | types::F32
            | types::F64
            | types::F128
    );
    let vector = ty.is_vector() && !ty.is_dynamic_vector() && matches!(ty.bytes(), 2 | 4 | 8 | 16);
    scalar || vector
}

/// Checks that `sig`'s parameters and results all fit slots.
pub fn check_signature(sig: &Signature) -> Result<(), ValuesError> {
    let check = |what: &'static str, params: &[AbiParam]| {
        params.iter().enumerate().try_for_each(|(index, p)| {
            if fits_slot(p.value_type) {
                Ok(())
            } else {
                Err(ValuesError::Unsupported {
                    what,
                    index,
                    ty: p.value_type,
                })
            }
        })
    };
    check("argument", &sig.params)?;
    check("result", &sig.returns)
}

/// The slots for a call of `sig` with `args`: one per argument, and as many
/// as [`slot_count`] in all (the extra ones zero).
pub fn encode_args(args: &[DataValue], sig: &Signature) -> Result<Vec<u128>, ValuesError> {
    check_signature(sig)?;
    if args.len() != sig.params.len() {
        return Err(ValuesError::Arity {
            what: "arguments",
            expected: sig.params.len(),
            got: args.len(),
        });
    }
    let mut slots = vec![0u128; slot_count(sig)];
    for (index, (arg, param)) in args.iter().zip(&sig.params).enumerate() {
        let expected = param.value_type;
        if !same_slot_type(arg.ty(), expected) {
            return Err(ValuesError::Type {
                what: "argument",
                index,
                expected,
                got: arg.ty(),
            });
        }
        let mut bytes = [0u8; SLOT_BYTES];
        arg.write_to_slice_le(&mut bytes);
        slots[index] = u128::from_le_bytes(bytes);
    }
    Ok(slots)
}

/// The results of a call of `sig`, read from the first slots of `slots`.
pub fn decode_results(slots: &[u128], sig: &Signature) -> Result<Vec<DataValue>, ValuesError> {
    check_signature(sig)?;
    if slots.len() < sig.returns.len() {
        return Err(ValuesError::Arity {
            what: "results",
            expected: sig.returns.len(),
            got: slots.len(),
        });
    }
    Ok(sig
        .returns
        .iter()
        .zip(slots)
        .map(|(ret, slot)| DataValue::read_from_slice_le(&slot.to_le_bytes(), ret.value_type))
        .collect())
}

/// Whether a value of type `got` may fill a slot declared `expected`: the
/// same type, or vectors of the same size (a [`DataValue`] vector does not
/// know its lanes).
fn same_slot_type(got: Type, expected: Type) -> bool {
    got == expected || (got.is_vector() && expected.is_vector() && got.bytes() == expected.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
    use cranelift_codegen::isa::CallConv;

    fn sig(params: &[Type], returns: &[Type]) -> Signature {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        sig.returns
            .extend(returns.iter().map(|&t| AbiParam::new(t)));
        sig
    }

    #[test]
    fn arguments_are_little_endian_one_per_slot() {
        let s = sig(&[types::I8, types::I128, types::F64], &[types::I32]);
        let slots = encode_args(
            &[
                DataValue::I8(-1),
                DataValue::I128(-2),
                DataValue::F64(Ieee64::with_bits(0x7ff8_0000_0000_0001)),
            ],
            &s,
        )
        .unwrap();
        assert_eq!(slots, vec![0xff, u128::MAX - 1, 0x7ff8_0000_0000_0001]);
    }

    #[test]
    fn results_round_trip_bit_for_bit() {
        let s = sig(&[], &[types::F32, types::I16X8, types::I64]);
        let nan = 0x7fc0_1234u32;
        let lanes: u128 = 0x0001_0002_0003_0004_0005_0006_0007_0008;
        let got = decode_results(&[u128::from(nan), lanes, 0xffff_ffff_0000_0000], &s).unwrap();
        assert!(got[0].bitwise_eq(&DataValue::F32(Ieee32::with_bits(nan))));
        assert_eq!(got[1], DataValue::V128(lanes.to_le_bytes()));
        assert_eq!(got[2], DataValue::I64(0xffff_ffff_0000_0000u64 as i64));
    }

    #[test]
    fn slot_count_covers_arguments_and_results() {
        assert_eq!(slot_count(&sig(&[], &[])), 1);
        assert_eq!(slot_count(&sig(&[types::I8; 3], &[types::I8])), 3);
        assert_eq!(slot_count(&sig(&[types::I8], &[types::I8; 4])), 4);
    }

    #[test]
    fn mismatches_are_errors() {
        let s = sig(&[types::I32], &[]);
        assert_eq!(
            encode_args(&[], &s),
            Err(ValuesError::Arity {
                what: "arguments",
                expected: 1,
                got: 0
            })
        );
        assert_eq!(
            encode_args(&[DataValue::I64(1)], &s),
            Err(ValuesError::Type {
                what: "argument",
                index: 0,
                expected: types::I32,
                got: types::I64
            })
        );
        let wide = sig(&[types::I32X8], &[]);
        assert!(matches!(
            encode_args(&[DataValue::I32(0)], &wide),
            Err(ValuesError::Unsupported { index: 0, .. })
        ));
        assert!(matches!(
            decode_results(&[], &sig(&[], &[types::I8])),
            Err(ValuesError::Arity {
                what: "results",
                ..
            })
        ));
    }
}
