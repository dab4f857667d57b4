//! Laziness with Rust functions as the "compiled" bodies: stubs, the
//! call-through path with many arguments, concurrency, failure, repointing.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use orc_core::lazy::{IndirectStubsManager, LazyReexportsManager};
use orc_core::{
    Error, ExecutionSession, ExecutorAddr, ExecutorSymbolDef, JitDylib, SymbolAliasMap,
    SymbolAliasMapEntry, SymbolFlags, SymbolMap,
};
use support::*;

extern "C" fn add_ints(
    a: i64,
    b: i64,
    c: i64,
    d: i64,
    e: i64,
    f: i64,
    g: i64,
    h: i64,
    i: i64,
    j: i64,
    k: i64,
    l: i64,
) -> i64 {
    a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i + 10 * j + 11 * k + 12 * l
}

#[allow(clippy::too_many_arguments)]
extern "C" fn mix(
    a: f64,
    x: i64,
    b: f64,
    y: i64,
    c: f64,
    z: i64,
    d: f64,
    w: i64,
    e: f64,
    f: f64,
    g: f64,
    h: f64,
    i: f64,
    j: f64,
    v: i64,
    u: i64,
    t: i64,
) -> f64 {
    a + 2.0 * b
        + 3.0 * c
        + 4.0 * d
        + 5.0 * e
        + 6.0 * f
        + 7.0 * g
        + 8.0 * h
        + 9.0 * i
        + 10.0 * j
        + (x + 2 * y + 3 * z + 4 * w + 5 * v + 6 * u + 7 * t) as f64 * 0.5
}

extern "C" fn plus_one(x: f64) -> f64 {
    x + 1.0
}

extern "C" fn plus_ten(x: f64) -> f64 {
    x + 10.0
}

extern "C" fn failure_handler(_x: f64) -> f64 {
    -1.0
}

const CALLABLE: SymbolFlags = SymbolFlags::EXPORTED.union(SymbolFlags::CALLABLE);

/// A body unit resolving `name` to a Rust function, counting materializations.
fn body_unit(
    es: &ExecutionSession,
    name: &str,
    f: *const u8,
    delay_ms: u64,
    count: Arc<AtomicUsize>,
) -> TestUnit {
    let sym = es.intern(name);
    let f = ExecutorAddr::from_ptr(f);
    TestUnit::new(
        &format!("body of {name}"),
        [(sym.clone(), CALLABLE)].into(),
        move |r| {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(delay_ms));
            let def = ExecutorSymbolDef::new(f, CALLABLE);
            r.notify_resolved(&SymbolMap::from([(sym, def)])).unwrap();
            r.notify_emitted().unwrap();
        },
    )
}

struct Setup {
    es: ExecutionSession,
    main: JitDylib,
    bodies: JitDylib,
    lazy: Arc<LazyReexportsManager>,
}

fn setup() -> Setup {
    let es = ExecutionSession::new();
    let main = es.create_jit_dylib("main").unwrap();
    let bodies = es.create_jit_dylib("main.impl").unwrap();
    let lazy = LazyReexportsManager::new(&es).unwrap();
    Setup {
        es,
        main,
        bodies,
        lazy,
    }
}

impl Setup {
    fn reexport(&self, names: &[&str]) {
        let aliases: SymbolAliasMap = names
            .iter()
            .map(|n| {
                (
                    self.es.intern(n),
                    SymbolAliasMapEntry {
                        aliasee: self.es.intern(n),
                        flags: CALLABLE,
                    },
                )
            })
            .collect();
        self.main
            .define(self.lazy.lazy_reexports(&self.bodies, aliases), None)
            .unwrap();
    }
}

#[test]
fn lookup_yields_the_stub_without_materializing_the_body() {
    let s = setup();
    let count = counter();
    s.bodies
        .define(
            body_unit(&s.es, "f", plus_one as *const u8, 0, count.clone()).boxed(),
            None,
        )
        .unwrap();
    s.reexport(&["f"]);
    let stub = s.main.lookup_symbol("f").unwrap().addr;
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "looking up the stub compiles nothing"
    );
    assert_eq!(s.lazy.stub_address(&s.main, &s.es.intern("f")), Some(stub));
    // SAFETY: the stub stands for `plus_one`, extern "C" fn(f64) -> f64.
    let f: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(stub.to_ptr::<u8>()) };
    assert_eq!(f(1.5), 2.5);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // The stub now jumps straight to the body.
    assert_eq!(
        s.lazy.current_target(&s.main, &s.es.intern("f")).unwrap(),
        ExecutorAddr::from_ptr(plus_one as *const u8)
    );
    assert_eq!(f(2.0), 3.0);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // The stub address is canonical: later lookups give the same one.
    assert_eq!(s.main.lookup_symbol("f").unwrap().addr, stub);
}

#[test]
fn call_through_preserves_every_argument_register_and_stack_arguments() {
    let s = setup();
    s.bodies
        .define(
            body_unit(&s.es, "ints", add_ints as *const u8, 0, counter()).boxed(),
            None,
        )
        .unwrap();
    s.bodies
        .define(
            body_unit(&s.es, "mix", mix as *const u8, 0, counter()).boxed(),
            None,
        )
        .unwrap();
    s.reexport(&["ints", "mix"]);
    let ints = s.main.lookup_symbol("ints").unwrap().addr;
    type Ints = extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
    // SAFETY: the stub stands for `add_ints`, which has this signature.
    let ints: Ints = unsafe { std::mem::transmute(ints.to_ptr::<u8>()) };
    let want = add_ints(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    assert_eq!(
        ints(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
        want,
        "first call, through the trampoline"
    );
    assert_eq!(
        ints(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
        want,
        "resolved call"
    );
    let mixed = s.main.lookup_symbol("mix").unwrap().addr;
    type Mix = extern "C" fn(
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        i64,
        f64,
        f64,
        f64,
        f64,
        f64,
        f64,
        i64,
        i64,
        i64,
    ) -> f64;
    // SAFETY: the stub stands for `mix`, which has this signature.
    let mixed: Mix = unsafe { std::mem::transmute(mixed.to_ptr::<u8>()) };
    let args = (
        1.25, 1, 2.5, 2, 3.75, 3, 4.0, 4, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 5, 6, 7,
    );
    let want = mix(
        args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8, args.9, args.10,
        args.11, args.12, args.13, args.14, args.15, args.16,
    );
    let got = mixed(
        args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7, args.8, args.9, args.10,
        args.11, args.12, args.13, args.14, args.15, args.16,
    );
    assert_eq!(got, want);
}

#[test]
fn sixteen_threads_first_call_at_once_compile_once() {
    let s = setup();
    let count = counter();
    s.bodies
        .define(
            body_unit(&s.es, "slow", plus_one as *const u8, 50, count.clone()).boxed(),
            None,
        )
        .unwrap();
    s.reexport(&["slow"]);
    let stub = s.main.lookup_symbol("slow").unwrap().addr.0;
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                // SAFETY: the stub stands for `plus_one`.
                let f: extern "C" fn(f64) -> f64 =
                    unsafe { std::mem::transmute(stub as usize as *const u8) };
                barrier.wait();
                f(t as f64)
            })
        })
        .collect();
    for (t, th) in threads.into_iter().enumerate() {
        assert_eq!(th.join().unwrap(), t as f64 + 1.0);
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn failed_lazy_compile_jumps_to_the_handler_and_others_keep_working() {
    let s = setup();
    let reports = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let rep = reports.clone();
    s.es.set_error_reporter(move |e| rep.lock().push(e.to_string()));
    s.lazy
        .call_through()
        .set_failure_handler(Some(ExecutorAddr::from_ptr(failure_handler as *const u8)));
    let broken = s.es.intern("broken");
    s.bodies
        .define(
            TestUnit::new("broken body", [(broken, CALLABLE)].into(), |r| {
                r.fail(Error::other("syntax error in broken"))
            })
            .boxed(),
            None,
        )
        .unwrap();
    s.bodies
        .define(
            body_unit(&s.es, "fine", plus_ten as *const u8, 0, counter()).boxed(),
            None,
        )
        .unwrap();
    s.reexport(&["broken", "fine"]);
    // SAFETY: both stubs stand for f64 -> f64 functions (or the handler).
    let broken: extern "C" fn(f64) -> f64 =
        unsafe { std::mem::transmute(s.main.lookup_symbol("broken").unwrap().addr.to_ptr::<u8>()) };
    // SAFETY: as above.
    let fine: extern "C" fn(f64) -> f64 =
        unsafe { std::mem::transmute(s.main.lookup_symbol("fine").unwrap().addr.to_ptr::<u8>()) };
    assert_eq!(broken(1.0), -1.0);
    assert_eq!(fine(1.0), 11.0);
    let all = reports.lock().join("\n");
    assert!(
        all.contains("lazy compile of 'broken' failed") && all.contains("syntax error in broken"),
        "{all}"
    );
}

#[test]
fn redefinition_repoints_the_stub_for_every_caller() {
    let s = setup();
    let rt = s.bodies.create_resource_tracker().unwrap();
    s.bodies
        .define(
            body_unit(&s.es, "f", plus_one as *const u8, 0, counter()).boxed(),
            Some(&rt),
        )
        .unwrap();
    s.reexport(&["f"]);
    let stub = s.main.lookup_symbol("f").unwrap().addr;
    // SAFETY: the stub stands for an f64 -> f64 function throughout.
    let f: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(stub.to_ptr::<u8>()) };
    assert_eq!(f(1.0), 2.0);
    // Hot redefinition: drop the old body, define a new one, make the stub
    // lazy again; the next call materializes the new body.
    rt.remove().unwrap();
    s.bodies
        .define(
            body_unit(&s.es, "f", plus_ten as *const u8, 0, counter()).boxed(),
            None,
        )
        .unwrap();
    s.lazy.reset_to_lazy(&s.main, &s.es.intern("f")).unwrap();
    assert_eq!(f(1.0), 11.0);
    // An eager repoint works too.
    s.lazy
        .redirect(
            &s.main,
            &s.es.intern("f"),
            ExecutorAddr::from_ptr(plus_one as *const u8),
        )
        .unwrap();
    assert_eq!(f(1.0), 2.0);
}

#[test]
fn removing_the_reexport_frees_its_stub() {
    let s = setup();
    s.bodies
        .define(
            body_unit(&s.es, "g", plus_one as *const u8, 0, counter()).boxed(),
            None,
        )
        .unwrap();
    let rt = s.main.create_resource_tracker().unwrap();
    let aliases: SymbolAliasMap = [(
        s.es.intern("g"),
        SymbolAliasMapEntry {
            aliasee: s.es.intern("g"),
            flags: CALLABLE,
        },
    )]
    .into();
    s.main
        .define(s.lazy.lazy_reexports(&s.bodies, aliases), Some(&rt))
        .unwrap();
    s.main.lookup_symbol("g").unwrap();
    assert_eq!(s.lazy.stubs().n_live(), 1);
    assert_eq!(s.lazy.call_through().n_live(), 1);
    rt.remove().unwrap();
    assert_eq!(s.lazy.stubs().n_live(), 0);
    assert_eq!(s.lazy.call_through().n_live(), 0);
    assert!(s.lazy.stub_address(&s.main, &s.es.intern("g")).is_none());
}

/// The tracker of a lazy re-export is removed after its materialization
/// was queued but before it ran: the removal finds no stubs yet, so the
/// unit must free the ones it makes when resolving is refused.
#[test]
fn stubs_made_after_their_tracker_was_removed_are_freed() {
    let workers = Arc::new(orc_core::ThreadPoolDispatcher::new(1).unwrap());
    let es = ExecutionSession::with_dispatcher(workers.clone());
    let main = es.create_jit_dylib("main").unwrap();
    let bodies = es.create_jit_dylib("main.impl").unwrap();
    let lazy = LazyReexportsManager::new(&es).unwrap();
    let rt = main.create_resource_tracker().unwrap();
    let aliases: SymbolAliasMap = ["g", "h"]
        .iter()
        .map(|n| {
            let entry = SymbolAliasMapEntry {
                aliasee: es.intern(n),
                flags: CALLABLE,
            };
            (es.intern(n), entry)
        })
        .collect();
    main.define(lazy.lazy_reexports(&bodies, aliases), Some(&rt))
        .unwrap();
    // Hold the only worker until the tracker is gone.
    let gate = Arc::new(Barrier::new(2));
    let held = gate.clone();
    orc_core::Dispatcher::dispatch(
        &*workers,
        orc_core::Task::new("hold", move || {
            held.wait();
        }),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let order = main.search_order().unwrap();
    let names = orc_core::SymbolLookupSet::from_names([es.intern("g")]);
    es.lookup_async(&order, names, orc_core::SymbolState::Ready, move |res| {
        let _ = tx.send(res);
    });
    rt.remove().unwrap();
    gate.wait();
    let res = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(res.is_err(), "the lookup of a removed re-export fails");
    // The worker runs tasks in order: once this one ran, so did the
    // materialization queued before it.
    let (done, finished) = std::sync::mpsc::channel();
    orc_core::Dispatcher::dispatch(
        &*workers,
        orc_core::Task::new("after", move || {
            let _ = done.send(());
        }),
    );
    finished.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(lazy.stubs().n_live(), 0);
    assert_eq!(lazy.call_through().n_live(), 0);
    assert!(lazy.stub_address(&main, &es.intern("g")).is_none());
}

#[test]
fn stub_pool_grows_by_pages_and_reuses_released_stubs() {
    let pool = IndirectStubsManager::new();
    let target = ExecutorAddr::from_ptr(plus_one as *const u8);
    let ids: Vec<_> = (0..1500)
        .map(|_| pool.create_stub(target).unwrap())
        .collect();
    assert_eq!(pool.n_live(), 1500);
    let pages = pool.n_pages();
    assert!((2..=2 * (1500 / 512 + 1)).contains(&pages), "{pages}");
    for id in &ids[..100] {
        pool.release(*id);
    }
    for _ in 0..100 {
        pool.create_stub(target).unwrap();
    }
    assert_eq!(pool.n_pages(), pages, "released stubs are reused");
    // A stub is found again from its address, and only from its start.
    for id in &ids[100..] {
        let addr = pool.address(*id).unwrap();
        assert_eq!(pool.stub_at(addr), Some(*id));
        assert_eq!(pool.stub_at(addr.offset(1)), None);
    }
    assert_eq!(pool.stub_at(target), None);
    // Every stub jumps to its target.
    // SAFETY: each stub's target is `plus_one`.
    let f: extern "C" fn(f64) -> f64 =
        unsafe { std::mem::transmute(pool.address(ids[1499]).unwrap().to_ptr::<u8>()) };
    assert_eq!(f(41.0), 42.0);
}

/// Regression: a first call racing with a redefinition. While the
/// trampoline's lookup is in flight, the stub is repointed (the function
/// was redefined) and the old body disappears; the call must continue at
/// the new target instead of failing the process, and the trampoline must
/// not point the stub back at the old body.
#[test]
fn a_redefinition_racing_with_the_first_call_wins() {
    let s = setup();
    let lazy = s.lazy.clone();
    let (main, es) = (s.main.clone(), s.es.clone());
    let name = s.es.intern("raced");
    s.bodies
        .define(
            TestUnit::new("raced body", [(name.clone(), CALLABLE)].into(), move |r| {
                // The redefinition lands while this body is being compiled.
                let new = ExecutorAddr::from_ptr(plus_ten as *const u8);
                lazy.redirect(&main, &es.intern("raced"), new).unwrap();
                r.fail(Error::other("the old definition was removed"));
            })
            .boxed(),
            None,
        )
        .unwrap();
    s.reexport(&["raced"]);
    // SAFETY: the stub stands for f64 -> f64 functions throughout.
    let f: extern "C" fn(f64) -> f64 =
        unsafe { std::mem::transmute(s.main.lookup_symbol("raced").unwrap().addr.to_ptr::<u8>()) };
    s.es.set_error_reporter(|_| {});
    assert_eq!(f(1.0), 11.0, "the call continued at the new definition");
    assert_eq!(
        s.lazy.current_target(&s.main, &name).unwrap(),
        ExecutorAddr::from_ptr(plus_ten as *const u8),
        "the stub keeps the redefinition"
    );
}
