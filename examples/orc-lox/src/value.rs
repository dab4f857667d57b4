//! NaN-boxed Lox values: one `u64` per value, as clox's `NAN_BOXING`.
//!
//! A value is a number when its quiet-NaN bits are not all set; otherwise
//! the low bits tag `nil`, `false`, `true` (and the VM-internal "undefined"
//! global marker), and with the sign bit set the low 48 bits are a pointer
//! to a heap object. JIT'd code can test and untag these with two or three
//! integer instructions; this layout is the contract between the
//! interpreter, the runtime helpers and the future tiers.

use std::io::Write as _;

use crate::object::{Obj, ObjRef};

/// Quiet-NaN bits: all set means "not a number" for the VM.
pub const QNAN: u64 = 0x7ffc_0000_0000_0000;
/// The sign bit: set (with [`QNAN`]) on object pointers.
pub const SIGN_BIT: u64 = 0x8000_0000_0000_0000;
/// Tag of `nil`.
pub const TAG_NIL: u64 = 1;
/// Tag of `false`.
pub const TAG_FALSE: u64 = 2;
/// Tag of `true`.
pub const TAG_TRUE: u64 = 3;
/// Tag of the internal "global not defined yet" marker.
pub const TAG_UNDEFINED: u64 = 4;

/// A Lox value (number, boolean, nil or object), NaN-boxed.
///
/// `==` on `Value` compares bits; Lox equality is [`Value::lox_equals`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Value(pub u64);

impl Value {
    /// `nil`.
    pub const NIL: Value = Value(QNAN | TAG_NIL);
    /// `false`.
    pub const FALSE: Value = Value(QNAN | TAG_FALSE);
    /// `true`.
    pub const TRUE: Value = Value(QNAN | TAG_TRUE);
    /// Marks a global slot whose variable has not been defined.
    pub(crate) const UNDEFINED: Value = Value(QNAN | TAG_UNDEFINED);

    /// A number.
    #[inline(always)]
    pub fn number(n: f64) -> Value {
        Value(n.to_bits())
    }

    /// A boolean.
    #[inline(always)]
    pub fn bool(b: bool) -> Value {
        if b {
            Value::TRUE
        } else {
            Value::FALSE
        }
    }

    #[inline(always)]
    pub(crate) fn obj(r: ObjRef) -> Value {
        Value(SIGN_BIT | QNAN | (r.0.expose_provenance() as u64))
    }

    /// Whether this is a number.
    #[inline(always)]
    pub fn is_number(self) -> bool {
        (self.0 & QNAN) != QNAN
    }

    /// The number (meaningful only when [`Value::is_number`]).
    #[inline(always)]
    pub fn as_number(self) -> f64 {
        f64::from_bits(self.0)
    }

    /// Whether this is `nil`.
    #[inline(always)]
    pub fn is_nil(self) -> bool {
        self == Value::NIL
    }

    /// Whether this is `true` or `false`.
    #[inline(always)]
    pub fn is_bool(self) -> bool {
        (self.0 | 1) == Value::TRUE.0
    }

    /// Whether this points to a heap object.
    #[inline(always)]
    pub fn is_obj(self) -> bool {
        (self.0 & (QNAN | SIGN_BIT)) == (QNAN | SIGN_BIT)
    }

    /// The object, if this is one.
    #[inline(always)]
    pub(crate) fn as_obj(self) -> Option<ObjRef> {
        if self.is_obj() {
            Some(self.obj_unchecked())
        } else {
            None
        }
    }

    /// The object pointer bits (the caller checked [`Value::is_obj`]).
    #[inline(always)]
    pub(crate) fn obj_unchecked(self) -> ObjRef {
        ObjRef(std::ptr::with_exposed_provenance_mut::<Obj>(
            (self.0 & !(SIGN_BIT | QNAN)) as usize,
        ))
    }

    /// Lox truthiness: `nil` and `false` are false, everything else true.
    #[inline(always)]
    pub fn is_falsey(self) -> bool {
        self == Value::NIL || self == Value::FALSE
    }

    /// Lox `==`: numbers by IEEE equality, everything else by identity
    /// (strings are interned, so equal strings are the same object).
    #[inline(always)]
    pub fn lox_equals(self, other: Value) -> bool {
        if self.is_number() && other.is_number() {
            self.as_number() == other.as_number()
        } else {
            self == other
        }
    }
}

/// Formats a number as C's `printf("%g")` does (clox prints with it).
pub fn format_number(x: f64) -> String {
    let mut buf = Vec::with_capacity(24);
    let _ = write_number(&mut buf, x);
    String::from_utf8(buf).unwrap_or_default()
}

/// Writes a number as C's `printf("%g")` does, without allocating.
pub fn write_number(out: &mut dyn std::io::Write, x: f64) -> std::io::Result<()> {
    if x.is_nan() {
        return out.write_all(if x.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
    }
    if x.is_infinite() {
        return out.write_all(if x < 0.0 { b"-inf" } else { b"inf" });
    }
    if x == 0.0 {
        return out.write_all(if x.is_sign_negative() { b"-0" } else { b"0" });
    }
    // Integers of at most six digits print as themselves.
    if x.fract() == 0.0 && x.abs() < 999_999.5 {
        return write!(out, "{}", x as i64);
    }
    let mut sci = [0u8; 40];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut sci[..]);
        write!(cursor, "{:.5e}", x)?;
        cursor.position() as usize
    };
    let sci = std::str::from_utf8(&sci[..len]).unwrap_or("0e0");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        write!(
            out,
            "{}e{}{:02}",
            strip_zeros(mantissa),
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    } else {
        let prec = (5 - exp) as usize;
        let mut fixed = [0u8; 40];
        let len = {
            let mut cursor = std::io::Cursor::new(&mut fixed[..]);
            write!(cursor, "{:.*}", prec, x)?;
            cursor.position() as usize
        };
        let fixed = std::str::from_utf8(&fixed[..len]).unwrap_or("0");
        out.write_all(strip_zeros(fixed).as_bytes())
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_g() {
        let cases = [
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.333333"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (1e100, "1e+100"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (999999.5, "1e+06"),
            (-0.0, "-0"),
            (f64::INFINITY, "inf"),
            (999999.0, "999999"),
            (-999999.0, "-999999"),
            (1000000.0, "1e+06"),
            (-12.0, "-12"),
            (0.5, "0.5"),
            (1e-300, "1e-300"),
            (-1.5e300, "-1.5e+300"),
            (123.456789, "123.457"),
        ];
        for (x, want) in cases {
            assert_eq!(format_number(x), want, "{x}");
        }
    }

    #[test]
    fn tags() {
        assert!(Value::NIL.is_falsey());
        assert!(Value::FALSE.is_falsey());
        assert!(!Value::TRUE.is_falsey());
        assert!(!Value::number(0.0).is_falsey());
        assert!(Value::TRUE.is_bool() && Value::FALSE.is_bool());
        assert!(!Value::NIL.is_bool());
        assert!(Value::number(f64::NAN).is_number());
        assert!(Value::number(-f64::NAN).is_number());
        assert!(!Value::NIL.is_number());
        assert!(!Value::number(f64::NAN).lox_equals(Value::number(f64::NAN)));
    }
}
