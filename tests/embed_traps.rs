//! Traps in JIT'd code are errors naming the trap and the function, in
//! tier-0 and tier-1 code, repeatedly and from several threads, and the
//! process stays usable.

mod embed_common;

use embed_common::{define, jit};
use orc::{Error, Func, Jit, Tier, TrapKind};

const TRAPS: &str = r#"
function %div(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = sdiv v0, v1
    return v2
}
function %to_int(f64) -> i64 {
block0(v0: f64):
    v1 = fcvt_to_sint.i64 v0
    return v1
}
function %unreachable(i64) -> i64 {
block0(v0: i64):
    brif v0, block1, block2
block1:
    trap user3
block2:
    return v0
}
function %deref(i64) -> i64 {
block0(v0: i64):
    v1 = load.i64 v0
    return v1
}
function %recurse(i64) -> i64 {
    fn0 = %recurse(i64) -> i64
block0(v0: i64):
    v1 = iconst.i64 1
    v2 = iadd v0, v1
    v3 = call fn0(v2)
    v4 = isub v0, v3
    return v4
}
"#;

struct Handles {
    div: Func<(i64, i64), i64>,
    to_int: Func<(f64,), i64>,
    unreachable: Func<(i64,), i64>,
    deref: Func<(*const i64,), i64>,
    recurse: Func<(i64,), i64>,
}

fn handles(jit: &Jit) -> Result<Handles, Error> {
    define(jit, TRAPS)?;
    Ok(Handles {
        div: jit.function("div")?,
        to_int: jit.function("to_int")?,
        unreachable: jit.function("unreachable")?,
        deref: jit.function("deref")?,
        recurse: jit.function("recurse")?,
    })
}

/// Asserts `result` is a trap of `kind` in `function`.
#[track_caller]
fn assert_trap<T: std::fmt::Debug>(result: Result<T, Error>, kind: TrapKind, function: &str) {
    match result {
        Err(Error::Trap(trap)) => {
            assert_eq!(trap.kind, kind, "{trap}");
            assert_eq!(trap.function_name(), Some(function), "{trap}");
            let message = trap.to_string();
            assert!(message.contains(function), "{message}");
        }
        other => panic!("expected a {kind} trap in {function}, got {other:?}"),
    }
}

/// Every kind once, and a normal call of each function after it.
fn every_kind(h: &Handles) {
    assert_trap(h.div.call((7, 0)), TrapKind::IntegerDivisionByZero, "div");
    assert_trap(h.div.call((i64::MIN, -1)), TrapKind::IntegerOverflow, "div");
    assert_eq!(h.div.call((-7, 2)).expect("div"), -3);
    assert_trap(
        h.to_int.call((f64::NAN,)),
        TrapKind::BadConversionToInteger,
        "to_int",
    );
    assert_trap(h.to_int.call((1e30,)), TrapKind::IntegerOverflow, "to_int");
    assert_eq!(h.to_int.call((-2.5,)).expect("to_int"), -2);
    assert_trap(
        h.unreachable.call((1,)),
        TrapKind::Unreachable(Some(3)),
        "unreachable",
    );
    assert_eq!(h.unreachable.call((0,)).expect("unreachable"), 0);
    assert_trap(
        h.deref.call((std::ptr::null(),)),
        TrapKind::MemoryFault { address: 0 },
        "deref",
    );
    let x = 5i64;
    assert_eq!(h.deref.call((&x,)).expect("deref"), 5);
    assert_trap(h.recurse.call((0,)), TrapKind::StackOverflow, "recurse");
}

#[test]
fn each_kind_in_tier0_and_tier1_twenty_times() -> Result<(), Error> {
    for tier in [Tier::Zero, Tier::One] {
        let jit = jit(tier);
        let h = handles(&jit)?;
        for _ in 0..20 {
            every_kind(&h);
        }
        assert!(!orc::core::trap::in_jit_call());
    }
    Ok(())
}

#[test]
fn traps_from_several_threads_at_once() -> Result<(), Error> {
    for tier in [Tier::Zero, Tier::One] {
        let jit = jit(tier);
        let h = std::sync::Arc::new(handles(&jit)?);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        every_kind(&h);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a thread died");
        }
    }
    Ok(())
}

#[test]
fn traps_after_tier_up() -> Result<(), Error> {
    let jit = jit(Tier::Adaptive);
    let h = handles(&jit)?;
    // Threshold 10, promoted on the calling thread: the later rounds run
    // tier-1 code (the stack overflow's frames are counted too).
    for _ in 0..20 {
        every_kind(&h);
    }
    let stats = jit.tiered().stats();
    let div = stats.iter().find(|s| s.name == "div").expect("div");
    assert_eq!(div.tier, Some(orc::core::CodeTier::One), "{div:?}");
    Ok(())
}

#[test]
fn a_trap_leaves_the_thread_pinned_nowhere() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    let h = handles(&jit)?;
    assert_trap(h.div.call((1, 0)), TrapKind::IntegerDivisionByZero, "div");
    // The pin was released: a redefinition's old body can be freed.
    define(
        &jit,
        "function %div(i64, i64) -> i64 {\nblock0(v0: i64, v1: i64):\n    v2 = udiv v0, v1\n    return v2\n}\n",
    )?;
    assert_eq!(h.div.call((9, 3))?, 3);
    jit.reclaimer().collect();
    assert_eq!(jit.reclaimer().n_pending(), 0);
    Ok(())
}

#[test]
fn a_bus_error_is_its_own_kind() -> Result<(), Error> {
    // A page of a file truncated under its mapping: reading it is SIGBUS.
    let path = std::env::temp_dir().join(format!("orc-embed-sigbus-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("temp file");
    file.set_len(4096).expect("grow");
    use std::os::fd::AsRawFd;
    // SAFETY: maps one page of a file we own, read-only; unmapped below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    file.set_len(0).expect("truncate");
    for tier in [Tier::Zero, Tier::One] {
        let jit = jit(tier);
        let h = handles(&jit)?;
        for _ in 0..3 {
            assert_trap(
                h.deref.call((page.cast::<i64>().cast_const(),)),
                TrapKind::BusError {
                    address: page as u64,
                },
                "deref",
            );
        }
    }
    // SAFETY: our mapping, no longer used.
    unsafe { libc::munmap(page, 4096) };
    let _ = std::fs::remove_file(&path);
    Ok(())
}
