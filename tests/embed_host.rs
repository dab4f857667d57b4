//! Host functions: registered in one call from a Rust `extern "C" fn`,
//! called from CLIF and through typed handles, signature-checked.

mod embed_common;

use embed_common::{define, jit, TIERS};
use orc::{Error, Tier};

extern "C" fn scale(x: i64, factor: f64) -> i64 {
    (x as f64 * factor) as i64
}

extern "C" fn mix(a: i8, b: u16, c: i32, d: u64, e: f32, f: bool, g: *const i64, h: i64) -> f64 {
    // SAFETY: the tests pass a valid pointer.
    let g = unsafe { *g };
    f64::from(a)
        + f64::from(b)
        + f64::from(c)
        + d as f64
        + f64::from(e)
        + f64::from(u8::from(f))
        + g as f64
        + h as f64
}

static COUNTER: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

extern "C" fn bump() {
    COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

const USES_SCALE: &str = r#"
function %twice_scaled(i64) -> i64 {
    sig0 = (i64, f64) -> i64 system_v
    sig1 = () system_v
    fn0 = %scale sig0
    fn1 = %bump sig1
block0(v0: i64):
    v1 = f64const 0x1.8p0
    v2 = call fn0(v0, v1)
    call fn1()
    v3 = iadd v2, v2
    return v3
}
"#;

#[test]
fn host_functions_are_one_call_and_callable_from_clif() -> Result<(), Error> {
    for tier in TIERS {
        let jit = jit(tier);
        jit.define_host_function("scale", scale as extern "C" fn(i64, f64) -> i64)?;
        jit.define_host_function("bump", bump as extern "C" fn())?;
        define(&jit, USES_SCALE)?;
        let before = COUNTER.load(std::sync::atomic::Ordering::SeqCst);
        let f = jit.function::<(i64,), i64>("twice_scaled")?;
        assert_eq!(f.call((10,))?, 30);
        assert!(COUNTER.load(std::sync::atomic::Ordering::SeqCst) > before);
        // And through a typed handle, checked against the Rust type.
        assert_eq!(
            jit.function::<(i64, f64), i64>("scale")?.call((4, 2.5))?,
            10
        );
        assert!(matches!(
            jit.function::<(i64,), i64>("scale"),
            Err(Error::SignatureMismatch(_))
        ));
    }
    Ok(())
}

#[test]
fn eight_parameters_of_every_kind() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    type Mix = extern "C" fn(i8, u16, i32, u64, f32, bool, *const i64, i64) -> f64;
    jit.define_host_function("mix", mix as Mix)?;
    let f = jit.function::<(i8, u16, i32, u64, f32, bool, *const i64, i64), f64>("mix")?;
    let seven = 7i64;
    assert_eq!(f.call((-1, 2, -3, 4, 0.5, true, &seven, 100))?, 110.5);
    Ok(())
}

#[test]
fn an_import_with_another_signature_is_refused() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    jit.define_host_function("scale", scale as extern "C" fn(i64, f64) -> i64)?;
    let wrong = USES_SCALE.replace("sig0 = (i64, f64) -> i64", "sig0 = (i64, i64) -> i64");
    let wrong = wrong.replace("v1 = f64const 0x1.8p0", "v1 = iconst.i64 2");
    jit.define_host_function("bump", bump as extern "C" fn())?;
    match define(&jit, &wrong) {
        Err(Error::SignatureMismatch(m)) => {
            assert_eq!(m.function, "scale");
            assert!(m.expected.starts_with("(i64, f64) -> i64"), "{m}");
            assert!(m.found.starts_with("(i64, i64) -> i64"), "{m}");
            assert!(m.context.contains("twice_scaled"), "{m}");
        }
        other => panic!("expected a signature mismatch, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_host_function_defined_twice_is_an_error() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    jit.define_host_function("bump", bump as extern "C" fn())?;
    let again = jit.define_host_function("bump", bump as extern "C" fn());
    match again {
        Err(Error::Core(e)) => assert!(e.to_string().contains("duplicate definition"), "{e}"),
        other => panic!("expected a duplicate definition, got {other:?}"),
    }
    Ok(())
}

extern "C" fn checked_sqrt(x: f64) -> f64 {
    if x < 0.0 {
        // SAFETY: nothing in this frame needs dropping.
        unsafe { orc::embed::raise(7, "sqrt of a negative number") };
        return f64::NAN;
    }
    x.sqrt()
}

const USES_SQRT: &str = r#"
function %hyp(f64, f64) -> f64 {
    sig0 = (f64) -> f64 system_v
    fn0 = %checked_sqrt sig0
block0(v0: f64, v1: f64):
    v2 = fmul v0, v0
    v3 = fmul v1, v1
    v4 = fsub v2, v3
    v5 = call fn0(v4)
    v6 = fadd v5, v5
    return v6
}
"#;

#[test]
fn a_host_function_raises_a_trap_through_jit_frames() -> Result<(), Error> {
    for tier in TIERS {
        let jit = jit(tier);
        jit.define_host_function("checked_sqrt", checked_sqrt as extern "C" fn(f64) -> f64)?;
        define(&jit, USES_SQRT)?;
        let hyp = jit.function::<(f64, f64), f64>("hyp")?;
        for _ in 0..20 {
            assert_eq!(hyp.call((5.0, 3.0))?, 8.0);
            match hyp.call((3.0, 5.0)) {
                Err(Error::Trap(trap)) => {
                    assert_eq!(trap.kind, orc::TrapKind::Raised { code: 7 });
                    assert_eq!(trap.to_string(), "sqrt of a negative number");
                }
                other => panic!("expected a raised trap, got {other:?}"),
            }
        }
        assert!(!orc::core::trap::in_jit_call());
    }
    // Outside any handle call, raising does nothing.
    assert!(checked_sqrt(-1.0).is_nan());
    Ok(())
}
