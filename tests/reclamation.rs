//! Old bodies are freed only when no thread can still be running them:
//! a thread parked inside a function's old body keeps that code mapped
//! across a redefinition, and the memory is freed once it leaves.

use std::sync::{Barrier, OnceLock};

use orc::{Jit, KaleidoscopeJit};
use orc_core::{absolute_symbols, ExecutorAddr, ExecutorSymbolDef, SymbolFlags, SymbolMap};
use orc_kaleidoscope::{parse_program, Item};

static ENTERED: OnceLock<Barrier> = OnceLock::new();
static RELEASE: OnceLock<Barrier> = OnceLock::new();

/// A host function that parks its caller until the test releases it.
extern "C" fn park(x: f64) -> f64 {
    ENTERED.get().unwrap().wait();
    RELEASE.get().unwrap().wait();
    x
}

#[test]
fn redefinition_waits_for_threads_inside_the_old_body() {
    ENTERED.set(Barrier::new(2)).unwrap();
    RELEASE.set(Barrier::new(2)).unwrap();
    let jit = Jit::builder().build().unwrap();
    let es = jit.session().clone();
    let flags = SymbolFlags::EXPORTED | SymbolFlags::CALLABLE;
    let def = ExecutorSymbolDef::new(ExecutorAddr::from_ptr(park as *const u8), flags);
    jit.host_dylib()
        .define(
            absolute_symbols(SymbolMap::from([(es.intern("park"), def)])),
            None,
        )
        .unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.eval("extern park(x);\ndef f(x) park(x) + 1;").unwrap();
    let stub = kjit.function::<(f64,)>("f").unwrap().address();
    let reclaimer = kjit.jit().reclaimer().clone();

    let inside = std::thread::spawn({
        let reclaimer = reclaimer.clone();
        move || {
            let _pinned = reclaimer.pin();
            // SAFETY: `f` is a Kaleidoscope function of one f64.
            let f: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(stub.to_ptr::<u8>()) };
            f(5.0)
        }
    });
    // The other thread is now inside the old body of `f` (in `park`).
    ENTERED.get().unwrap().wait();
    let new_f = match parse_program("def f(x) x + 100;").unwrap().items.remove(0) {
        Item::Def(func) => func,
        other => panic!("unexpected {other:?}"),
    };
    kjit.define(&new_f).unwrap();
    assert_eq!(
        reclaimer.n_pending(),
        1,
        "the old body is retired, not freed"
    );
    // New callers get the new body at once.
    assert_eq!(kjit.function::<(f64,)>("f").unwrap().call((1.0,)), 101.0);
    assert_eq!(reclaimer.n_pending(), 1);
    // Let the parked thread return through the old body's code.
    RELEASE.get().unwrap().wait();
    assert_eq!(inside.join().unwrap(), 6.0);
    reclaimer.collect();
    assert_eq!(reclaimer.n_pending(), 0, "freed once nobody can be inside");
}
