//! Threads that Rust's std did not start have no alternate signal stack:
//! the first handle call gives them one (so a stack overflow is caught),
//! and their exit frees it (no mapping left behind per thread). One test
//! in its own process, so the count of mappings is its own.

mod embed_common;

use embed_common::{define, jit};
use orc::{Error, Func, Tier, TrapKind};

const RECURSE: &str = r#"
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

type Recurse = Func<(i64,), i64>;

extern "C" fn thread_main(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: `run_raw_thread` passes a live `Recurse` and joins before it
    // goes away.
    let f = unsafe { &*arg.cast::<Recurse>() };
    let mut altstack_before: libc::stack_t = unsafe_zeroed();
    // SAFETY: queries only.
    unsafe { libc::sigaltstack(std::ptr::null(), &mut altstack_before) };
    let ok = altstack_before.ss_flags & libc::SS_DISABLE != 0
        && matches!(f.call((0,)), Err(Error::Trap(t)) if t.kind == TrapKind::StackOverflow)
        && matches!(f.call((0,)), Err(Error::Trap(t)) if t.kind == TrapKind::StackOverflow);
    usize::from(ok) as *mut libc::c_void
}

fn unsafe_zeroed() -> libc::stack_t {
    // SAFETY: stack_t is plain data; all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Runs `thread_main` on a thread made by `pthread_create` (no altstack)
/// and returns whether it saw its traps.
fn run_raw_thread(f: &Recurse) -> bool {
    let mut thread: libc::pthread_t = 0;
    let arg = (f as *const Recurse).cast_mut().cast::<libc::c_void>();
    // SAFETY: a default-attribute thread running `thread_main` on `arg`,
    // joined below while `f` is alive.
    let rc = unsafe { libc::pthread_create(&mut thread, std::ptr::null(), thread_main, arg) };
    assert_eq!(rc, 0);
    let mut ret: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: joins the thread just created.
    assert_eq!(unsafe { libc::pthread_join(thread, &mut ret) }, 0);
    !ret.is_null()
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

#[test]
fn foreign_threads_get_and_free_an_altstack() -> Result<(), Error> {
    let jit = jit(Tier::Zero);
    define(&jit, RECURSE)?;
    let f: Recurse = jit.function("recurse")?;
    for _ in 0..3 {
        assert!(run_raw_thread(&f));
    }
    let before = mappings();
    for _ in 0..40 {
        assert!(run_raw_thread(&f));
    }
    let after = mappings();
    assert!(
        after < before + 10,
        "mappings grew from {before} to {after} over 40 threads"
    );
    Ok(())
}
