//! Typed function handles: every argument and result type, signature
//! checks, threads, redefinition and tier-up, and the JIT's end.

mod embed_common;

use embed_common::{define, jit, TIERS};
use orc::{Error, Func, Tier};

const TYPES: &str = r#"
function %inc_i8(i8) -> i8 {
block0(v0: i8):
    v91 = iconst.i8 1
    v1 = iadd v0, v91
    return v1
}
function %inc_i16(i16) -> i16 {
block0(v0: i16):
    v91 = iconst.i16 1
    v1 = iadd v0, v91
    return v1
}
function %inc_i32(i32) -> i32 {
block0(v0: i32):
    v91 = iconst.i32 1
    v1 = iadd v0, v91
    return v1
}
function %inc_i64(i64) -> i64 {
block0(v0: i64):
    v91 = iconst.i64 1
    v1 = iadd v0, v91
    return v1
}
function %half_f32(f32) -> f32 {
block0(v0: f32):
    v1 = f32const 0x1.0p-1
    v2 = fmul v0, v1
    return v2
}
function %half_f64(f64) -> f64 {
block0(v0: f64):
    v1 = f64const 0x1.0p-1
    v2 = fmul v0, v1
    return v2
}
function %not(i8) -> i8 {
block0(v0: i8):
    v91 = iconst.i8 1
    v1 = bxor v0, v91
    return v1
}
function %load(i64) -> i64 {
block0(v0: i64):
    v1 = load.i64 v0
    return v1
}
function %store(i64, i64) {
block0(v0: i64, v1: i64):
    store v1, v0
    return
}
function %next(i64) -> i64 {
block0(v0: i64):
    v91 = iconst.i64 8
    v1 = iadd v0, v91
    return v1
}
function %mixed(i64, f64) -> i64 {
block0(v0: i64, v1: f64):
    v2 = fcvt_to_sint.i64 v1
    v3 = imul v0, v2
    return v3
}
function %sum8(i64, i32, i16, i8, i64, i64, i64, i64) -> i64 {
block0(v0: i64, v1: i32, v2: i16, v3: i8, v4: i64, v5: i64, v6: i64, v7: i64):
    v8 = sextend.i64 v1
    v9 = sextend.i64 v2
    v10 = sextend.i64 v3
    v11 = iadd v0, v8
    v12 = iadd v11, v9
    v13 = iadd v12, v10
    v14 = iadd v13, v4
    v15 = iadd v14, v5
    v16 = iadd v15, v6
    v17 = iadd v16, v7
    return v17
}
function %answer() -> i64 {
block0:
    v0 = iconst.i64 42
    return v0
}
"#;

#[test]
fn every_argument_and_result_type() -> Result<(), Error> {
    for tier in TIERS {
        let jit = jit(tier);
        define(&jit, TYPES)?;
        assert_eq!(jit.function::<(i8,), i8>("inc_i8")?.call((-2,))?, -1);
        assert_eq!(jit.function::<(u8,), u8>("inc_i8")?.call((255,))?, 0);
        assert_eq!(jit.function::<(i16,), i16>("inc_i16")?.call((-300,))?, -299);
        assert_eq!(
            jit.function::<(u16,), u16>("inc_i16")?.call((65_000,))?,
            65_001
        );
        assert_eq!(
            jit.function::<(i32,), i32>("inc_i32")?.call((i32::MAX,))?,
            i32::MIN
        );
        assert_eq!(jit.function::<(u32,), u32>("inc_i32")?.call((7,))?, 8);
        assert_eq!(jit.function::<(i64,), i64>("inc_i64")?.call((-1,))?, 0);
        assert_eq!(
            jit.function::<(u64,), u64>("inc_i64")?
                .call((u64::MAX - 1,))?,
            u64::MAX
        );
        assert_eq!(jit.function::<(usize,), usize>("inc_i64")?.call((9,))?, 10);
        assert_eq!(jit.function::<(isize,), isize>("inc_i64")?.call((-9,))?, -8);
        assert_eq!(jit.function::<(f32,), f32>("half_f32")?.call((3.0,))?, 1.5);
        assert_eq!(
            jit.function::<(f64,), f64>("half_f64")?.call((-5.0,))?,
            -2.5
        );
        let not = jit.function::<(bool,), bool>("not")?;
        assert!(!not.call((true,))?);
        assert!(not.call((false,))?);
        let values = [11i64, 22];
        let load = jit.function::<(*const i64,), i64>("load")?;
        assert_eq!(load.call((values.as_ptr(),))?, 11);
        let next = jit.function::<(*const i64,), *const i64>("next")?;
        let second = next.call((values.as_ptr(),))?;
        assert_eq!(load.call((second,))?, 22);
        let mut cell = 0i64;
        let store = jit.function::<(*mut i64, i64), ()>("store")?;
        store.call((&mut cell, 99))?;
        assert_eq!(cell, 99, "tier {tier}");
        assert_eq!(
            jit.function::<(i64, f64), i64>("mixed")?.call((6, 7.9))?,
            42
        );
        let sum8 = jit.function::<(i64, i32, i16, i8, i64, i64, i64, i64), i64>("sum8")?;
        assert_eq!(sum8.call((1, -2, 300, -4, 5, 6, 7, 8))?, 321);
        assert_eq!(jit.function::<(), i64>("answer")?.call(())?, 42);
    }
    Ok(())
}

#[test]
fn a_signature_mismatch_names_both_signatures() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    define(&jit, TYPES)?;
    let cases: [(Result<(), Error>, &str, &str); 4] = [
        (
            jit.function::<(i64,), i64>("mixed").map(drop),
            "(i64) -> i64",
            "(i64, f64) -> i64",
        ),
        (
            jit.function::<(i64, f64), f64>("mixed").map(drop),
            "(i64, f64) -> f64",
            "(i64, f64) -> i64",
        ),
        (
            jit.function::<(i64, i64), ()>("store").map(drop),
            "(i64, i64) system_v",
            "(i64, i64) fast",
        ),
        (
            jit.function::<(f32,), f64>("half_f64").map(drop),
            "(f32) -> f64",
            "(f64) -> f64",
        ),
    ];
    for (i, (result, expected, found)) in cases.into_iter().enumerate() {
        if i == 2 {
            // The one that matches.
            assert!(result.is_ok(), "{result:?}");
            continue;
        }
        match result {
            Err(Error::SignatureMismatch(m)) => {
                assert!(m.expected.starts_with(expected), "{m}");
                assert!(m.found.starts_with(found), "{m}");
                let message = m.to_string();
                assert!(
                    message.contains(expected) && message.contains(found),
                    "{message}"
                );
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }
    match jit.function::<(), i64>("nowhere") {
        Err(Error::SymbolNotFound { names }) => assert_eq!(names, ["nowhere"]),
        other => panic!("expected a missing symbol, got {other:?}"),
    }
    Ok(())
}

fn send_sync_static<T: Send + Sync + 'static>(t: T) -> T {
    t
}

#[test]
fn handles_are_shared_by_threads() -> Result<(), Error> {
    for tier in TIERS {
        let jit = jit(tier);
        define(&jit, TYPES)?;
        let mixed = send_sync_static(jit.function::<(i64, f64), i64>("mixed")?);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let mixed = mixed.clone();
                std::thread::spawn(move || {
                    for i in 0..500i64 {
                        assert_eq!(mixed.call((i, t as f64)).expect("call"), i * t);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
    }
    Ok(())
}

const V1: &str = r#"
function %f(i64) -> i64 {
block0(v0: i64):
    v91 = iconst.i64 1
    v1 = iadd v0, v91
    return v1
}
function %g(i64) -> i64 {
    fn0 = %f(i64) -> i64
block0(v0: i64):
    v1 = call fn0(v0)
    v92 = iconst.i64 10
    v2 = imul v1, v92
    return v2
}
"#;

const V2: &str = r#"
function %f(i64) -> i64 {
block0(v0: i64):
    v91 = iconst.i64 2
    v1 = iadd v0, v91
    return v1
}
"#;

#[test]
fn handles_survive_redefinition_and_tier_up() -> Result<(), Error> {
    for tier in TIERS {
        let jit = jit(tier);
        define(&jit, V1)?;
        let f: Func<(i64,), i64> = jit.function("f")?;
        let g: Func<(i64,), i64> = jit.function("g")?;
        assert_eq!(f.call((1,))?, 2);
        assert_eq!(g.call((1,))?, 20);
        define(&jit, V2)?;
        // Handles made before the redefinition, and callers compiled
        // before it, see the new body.
        assert_eq!(f.call((1,))?, 3);
        assert_eq!(g.call((1,))?, 30);
        if tier == Tier::Adaptive {
            // Threshold 10, promoted on this thread: well past it, both are
            // in tier 1, and the handles still work.
            for i in 0..100 {
                assert_eq!(g.call((i,))?, (i + 2) * 10);
            }
            let stats = jit.tiered().stats();
            for name in ["f", "g"] {
                let s = stats.iter().find(|s| s.name == name).expect("stats");
                assert_eq!(s.tier, Some(orc::core::CodeTier::One), "{name}: {s:?}");
            }
            define(&jit, V1)?;
            assert_eq!(g.call((1,))?, 20);
        }
    }
    Ok(())
}

#[test]
fn handles_fail_once_the_jit_is_dropped() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    define(&jit, TYPES)?;
    let f = jit.function::<(i64,), i64>("inc_i64")?;
    assert_eq!(f.call((1,))?, 2);
    drop(jit);
    assert!(matches!(f.call((1,)), Err(Error::JitDropped)));
    Ok(())
}

static SLOW_STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn slow(x: i64) -> i64 {
    SLOW_STARTED.store(true, std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(200));
    x + 1
}

#[test]
fn dropping_the_jit_waits_for_calls_in_flight() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    jit.define_host_function("slow", slow as extern "C" fn(i64) -> i64)?;
    define(
        &jit,
        "function %calls_slow(i64) -> i64 {\n    sig0 = (i64) -> i64 system_v\n    fn0 = %slow sig0\nblock0(v0: i64):\n    v1 = call fn0(v0)\n    v2 = iconst.i64 1\n    v3 = iadd v1, v2\n    return v3\n}\n",
    )?;
    let f = jit.function::<(i64,), i64>("calls_slow")?;
    let g = f.clone();
    let caller = std::thread::spawn(move || g.call((1,)));
    while !SLOW_STARTED.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // The call is inside `slow`, with JIT'd code to return to: the drop
    // must wait for it before unmapping anything.
    drop(jit);
    assert_eq!(caller.join().expect("caller thread")?, 3);
    assert!(matches!(f.call((1,)), Err(Error::JitDropped)));
    Ok(())
}
