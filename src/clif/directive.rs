//! Run directives on a [`ClifProgram`], with the semantics of Cranelift's
//! own runner: a directive calls the function it follows; results are
//! compared bit for bit (so NaN payloads and signed zeros count), with as
//! many values as the function returns; `!=` inverts the comparison; a
//! bare `; run` asks for a non-zero integer result; a `print:` shows the
//! results. Values are displayed as directives write
//! them, vectors lane by lane.

use orc_clif::{ClifFunction, Comparison, DataValue, Directive, RunCommand};
use orc_cranelift::codegen::ir::{AbiParam, Type};

use super::{ClifProgram, ClifRunError};

impl ClifProgram {
    /// Runs `directive`, which follows `func` in its file, and says how it
    /// went.
    ///
    /// # Safety
    ///
    /// As for [`Self::call`]: the directive calls `func` with its
    /// arguments.
    pub unsafe fn run_directive(&self, func: &ClifFunction, directive: &Directive) -> Outcome {
        let (invocation, expected) = match &directive.command {
            RunCommand::Print(inv) => (inv, None),
            RunCommand::Run(inv, cmp, values) => (inv, Some((cmp, values))),
        };
        // SAFETY: forwarded to our caller (see `# Safety`).
        let got = match unsafe { self.call(&func.symbol, &invocation.args) } {
            Ok(got) => got,
            Err(e) => return Outcome::Error(e),
        };
        let Some((cmp, expected)) = expected else {
            return Outcome::Printed(format!(
                "%{}({}) -> {}",
                func.symbol,
                DisplayValues::new(&invocation.args, &types(&func.func.signature.params)),
                DisplayValues::new(&got, &types(&func.func.signature.returns))
            ));
        };
        let equal = if directive.text == "run" {
            // A bare `; run` asks for a non-zero result. The reader encodes
            // it as `!= 0` with an i8 zero, which never equals a wider
            // integer bit for bit, so compare the value instead.
            got.len() == 1 && is_zero(&got[0])
        } else {
            got.len() == expected.len() && got.iter().zip(expected).all(|(a, b)| a.bitwise_eq(b))
        };
        let passed = match cmp {
            Comparison::Equals => equal,
            Comparison::NotEquals => !equal,
        };
        if passed {
            Outcome::Passed
        } else {
            Outcome::Failed { got }
        }
    }
}

fn is_zero(value: &DataValue) -> bool {
    matches!(
        value,
        DataValue::I8(0)
            | DataValue::I16(0)
            | DataValue::I32(0)
            | DataValue::I64(0)
            | DataValue::I128(0)
    )
}

fn types(params: &[AbiParam]) -> Vec<Type> {
    params.iter().map(|p| p.value_type).collect()
}

/// How a directive went.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// A `run:` whose comparison held.
    Passed,
    /// A `print:`: the call and its results, as Cranelift prints them.
    Printed(String),
    /// A `run:` whose comparison failed, with the results the call gave.
    Failed {
        /// The results.
        got: Vec<DataValue>,
    },
    /// The call could not be made.
    Error(ClifRunError),
}

/// Values as a run directive writes them: `1, 0x2, 0x1.8p1`; several in
/// brackets; a vector, when its type is known, as `[l0 l1 ...]` lane by
/// lane (a [`DataValue`] vector holds only bytes).
#[derive(Debug, Clone, Copy)]
pub struct DisplayValues<'a> {
    values: &'a [DataValue],
    types: &'a [Type],
}

impl<'a> DisplayValues<'a> {
    /// `values`, the i-th of type `types[i]` (vectors of unknown type are
    /// shown as one 128-bit number).
    pub fn new(values: &'a [DataValue], types: &'a [Type]) -> Self {
        DisplayValues { values, types }
    }
}

impl std::fmt::Display for DisplayValues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let several = self.values.len() != 1;
        if several {
            f.write_str("[")?;
        }
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match (v, self.types.get(i)) {
                (DataValue::V128(bytes), Some(ty)) if ty.is_vector() && ty.bytes() == 16 => {
                    write_lanes(f, bytes, *ty)?
                }
                _ => write!(f, "{v}")?,
            }
        }
        if several {
            f.write_str("]")?;
        }
        Ok(())
    }
}

fn write_lanes(f: &mut std::fmt::Formatter<'_>, bytes: &[u8; 16], ty: Type) -> std::fmt::Result {
    let lane = ty.lane_type();
    let width = lane.bytes() as usize;
    f.write_str("[")?;
    for (i, chunk) in bytes.chunks_exact(width).enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{}", DataValue::read_from_slice_le(chunk, lane))?;
    }
    f.write_str("]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use orc_cranelift::codegen::ir::immediates::Ieee32;
    use orc_cranelift::codegen::ir::types;

    #[test]
    fn vectors_show_their_lanes() {
        let mut bytes = [0u8; 16];
        for (i, lane) in bytes.chunks_exact_mut(4).enumerate() {
            lane.copy_from_slice(&(i as i32 - 1).to_le_bytes());
        }
        let values = [DataValue::V128(bytes), DataValue::I8(-3)];
        let shown = DisplayValues::new(&values, &[types::I32X4, types::I8]).to_string();
        assert_eq!(shown, "[[-1 0 1 2], -3]");
        let untyped = DisplayValues::new(&values[..1], &[]).to_string();
        assert_eq!(untyped, "0x000000020000000100000000ffffffff");
    }

    #[test]
    fn one_value_has_no_brackets() {
        let values = [DataValue::F32(Ieee32::with_bits(0x3fc0_0000))];
        assert_eq!(
            DisplayValues::new(&values, &[types::F32]).to_string(),
            "0x1.800000p0"
        );
    }
}
