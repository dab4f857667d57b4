//! Many threads against one session: each unit materializes exactly once,
//! every result is right, and removal while others look up is safe.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orc_core::{
    absolute_symbols, ExecutionSession, ExecutorAddr, ExecutorSymbolDef, SymbolFlags,
    SymbolLookupSet, SymbolMap, SymbolState, ThreadPoolDispatcher,
};
use support::*;

const N_UNITS: usize = 64;
const SYMS_PER_UNIT: usize = 4;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn sym_name(unit: usize, i: usize) -> String {
    format!("u{unit}_s{i}")
}

#[test]
fn eight_threads_thousand_lookups_each_materialize_once() {
    let pool = Arc::new(ThreadPoolDispatcher::new(4).unwrap());
    let es = ExecutionSession::with_dispatcher(pool);
    let jd = es.create_jit_dylib("main").unwrap();
    let counts: Vec<Arc<AtomicUsize>> = (0..N_UNITS).map(|_| counter()).collect();
    for (u, count) in counts.iter().enumerate() {
        let names: Vec<String> = (0..SYMS_PER_UNIT).map(|i| sym_name(u, i)).collect();
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let count = count.clone();
        let base = 0x10_0000 * (u as u64 + 1);
        let unit = TestUnit::new(&format!("unit{u}"), exported(&es, &refs), move |r| {
            count.fetch_add(1, Ordering::SeqCst);
            // Slow, so lookups pile up on symbols being materialized.
            std::thread::sleep(Duration::from_millis(3));
            resolve_and_emit(&r, base);
        });
        jd.define(unit.boxed(), None).unwrap();
    }
    let order = jd.search_order().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let es = es.clone();
            let order = order.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                for _ in 0..1000 {
                    let picks: Vec<(usize, usize)> = (0..3)
                        .map(|_| {
                            (
                                (rng.next() as usize) % N_UNITS,
                                (rng.next() as usize) % SYMS_PER_UNIT,
                            )
                        })
                        .collect();
                    let set: SymbolLookupSet = picks
                        .iter()
                        .map(|(u, i)| es.intern(&sym_name(*u, *i)))
                        .collect();
                    let map = es.lookup(&order, set, SymbolState::Ready).expect("lookup");
                    for (u, i) in picks {
                        // Symbols are resolved in name order: s0..s3.
                        let want = 0x10_0000 * (u as u64 + 1) + 16 * i as u64;
                        assert_eq!(map[&es.intern(&sym_name(u, i))].addr, ExecutorAddr(want));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("lookup thread panicked");
    }
    for (u, count) in counts.iter().enumerate() {
        let n = count.load(Ordering::SeqCst);
        assert!(n <= 1, "unit {u} materialized {n} times");
    }
    // With 24,000 random picks over 64 units, every unit was surely hit.
    assert!(counts.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    es.end_session().unwrap();
}

#[test]
fn async_lookups_from_many_threads_all_complete() {
    let es = ExecutionSession::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(3).unwrap()));
    let jd = es.create_jit_dylib("main").unwrap();
    let count = counter();
    let c = count.clone();
    jd.define(
        TestUnit::new("shared", exported(&es, &["shared"]), move |r| {
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            resolve_and_emit(&r, 0x7000);
        })
        .boxed(),
        None,
    )
    .unwrap();
    let done = counter();
    let (tx, rx) = std::sync::mpsc::channel();
    let order = jd.search_order().unwrap();
    let name = es.intern("shared");
    for _ in 0..64 {
        let (done, tx, name) = (done.clone(), tx.clone(), name.clone());
        es.lookup_async(
            &order,
            SymbolLookupSet::from_names([name.clone()]),
            SymbolState::Ready,
            move |r| {
                let addr = r.map(|m| m[&name].addr);
                if addr.as_ref().ok() == Some(&ExecutorAddr(0x7000)) {
                    done.fetch_add(1, Ordering::SeqCst);
                }
                tx.send(()).unwrap();
            },
        );
    }
    for _ in 0..64 {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("every async lookup completes");
    }
    assert_eq!(done.load(Ordering::SeqCst), 64);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn removing_trackers_while_other_threads_look_up() {
    let es = ExecutionSession::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(2).unwrap()));
    let jd = es.create_jit_dylib("main").unwrap();
    let mut stable = SymbolMap::new();
    for i in 0..16 {
        stable.insert(
            es.intern(&format!("stable{i}")),
            ExecutorSymbolDef::new(ExecutorAddr(0x1000 + i), SymbolFlags::EXPORTED),
        );
    }
    jd.define(absolute_symbols(stable), None).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (es, jd, stop) = (es.clone(), jd.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) || rounds < 200 {
                let rt = jd.create_resource_tracker().unwrap();
                let unit = simple_unit(&es, "volatile", &["volatile"], 0x5000);
                jd.define(unit.boxed(), Some(&rt)).unwrap();
                // Sometimes materialized, sometimes not, then removed.
                if rounds % 2 == 0 {
                    let _ = jd.lookup_symbol("volatile");
                }
                rt.remove().unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let lookers: Vec<_> = (0..4)
        .map(|t| {
            let jd = jd.clone();
            std::thread::spawn(move || {
                for k in 0..2000u64 {
                    let i = (k + t) % 16;
                    let def = jd.lookup_symbol(&format!("stable{i}")).unwrap();
                    assert_eq!(def.addr, ExecutorAddr(0x1000 + i));
                    // The volatile symbol is either there (right address) or
                    // not found / removed mid-lookup: never anything else.
                    match jd.lookup_symbol("volatile") {
                        Ok(def) => assert_eq!(def.addr, ExecutorAddr(0x5000)),
                        Err(orc_core::Error::SymbolsNotFound { .. })
                        | Err(orc_core::Error::SymbolsRemoved { .. }) => {}
                        Err(orc_core::Error::FailedToMaterialize { .. }) => {}
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
            })
        })
        .collect();
    for l in lookers {
        l.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(churn.join().unwrap() >= 200);
    es.end_session().unwrap();
}

#[test]
fn blocking_lookup_inside_a_pool_worker_does_not_deadlock() {
    // One worker: unit `outer` runs on it and blocks on `inner`, whose
    // materialization is queued behind it on the same worker.
    let es = ExecutionSession::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(1).unwrap()));
    let jd = es.create_jit_dylib("main").unwrap();
    jd.define(simple_unit(&es, "inner", &["inner"], 0x100).boxed(), None)
        .unwrap();
    let jd2 = jd.clone();
    jd.define(
        TestUnit::new("outer", exported(&es, &["outer"]), move |r| {
            let inner = jd2.lookup_symbol("inner").expect("inner");
            let addr = inner.addr.offset(0x1000);
            let name = r.session().intern("outer");
            let flags = SymbolFlags::EXPORTED;
            r.notify_resolved(&SymbolMap::from([(
                name,
                ExecutorSymbolDef::new(addr, flags),
            )]))
            .unwrap();
            r.notify_emitted().unwrap();
        })
        .boxed(),
        None,
    )
    .unwrap();
    assert_eq!(
        jd.lookup_symbol("outer").unwrap().addr,
        ExecutorAddr(0x1100)
    );
    es.end_session().unwrap();
}

#[test]
fn a_panicking_unit_fails_its_waiters_and_the_pool_survives() {
    let es = ExecutionSession::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(1).unwrap()));
    let reports = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let rep = reports.clone();
    es.set_error_reporter(move |e| rep.lock().push(e.to_string()));
    let jd = es.create_jit_dylib("main").unwrap();
    jd.define(
        TestUnit::new("panicky", exported(&es, &["boom"]), |_r| panic!("unit bug")).boxed(),
        None,
    )
    .unwrap();
    jd.define(simple_unit(&es, "fine", &["fine"], 0x40).boxed(), None)
        .unwrap();
    let err = jd.lookup_symbol("boom").unwrap_err();
    assert!(err.to_string().contains("abandoned"), "{err}");
    // The single worker survived and still materializes.
    assert_eq!(jd.lookup_symbol("fine").unwrap().addr, ExecutorAddr(0x40));
    assert_eq!(reports.lock().len(), 1);
    es.end_session().unwrap();
}

#[test]
fn end_session_drops_units_and_generators() {
    struct DropFlag(Arc<AtomicUsize>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let dropped = counter();
    let flag = DropFlag(dropped.clone());
    jd.define(
        TestUnit::new("never-run", exported(&es, &["x"]), move |r| {
            let _keep = &flag;
            resolve_and_emit(&r, 1)
        })
        .boxed(),
        None,
    )
    .unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    es.end_session().unwrap();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the unmaterialized unit was freed"
    );
    // Interned names nobody holds are gone too.
    assert!(es.symbol_string_pool().len() <= 1);
}

/// Which thread each unit materialized on, by unit name.
type Places = Arc<parking_lot::Mutex<Vec<(&'static str, std::thread::ThreadId)>>>;

/// A unit `name` defining `name` that records where it materializes.
fn placed_unit(es: &ExecutionSession, name: &'static str, places: &Places) -> TestUnit {
    let places = places.clone();
    TestUnit::new(name, exported(es, &[name]), move |r| {
        places.lock().push((name, std::thread::current().id()));
        resolve_and_emit(&r, 0x1000);
    })
}

fn place_of(places: &Places, name: &str) -> std::thread::ThreadId {
    let places = places.lock();
    let found: Vec<_> = places.iter().filter(|(n, _)| *n == name).collect();
    assert_eq!(found.len(), 1, "{name} materialized once: {places:?}");
    found[0].1
}

#[test]
fn a_blocking_lookup_materializes_its_first_unit_on_the_waiting_thread() {
    let es = ExecutionSession::with_dispatcher(Arc::new(ThreadPoolDispatcher::new(2).unwrap()));
    let jd = es.create_jit_dylib("main").unwrap();
    let places = Places::default();
    for name in ["alone", "first", "second"] {
        jd.define(placed_unit(&es, name, &places).boxed(), None)
            .unwrap();
    }
    // What a unit starts while it materializes here (its link looking up
    // the stubs it calls, say) runs here as well: `chained` looks `tail`
    // up asynchronously and finishes in the callback.
    jd.define(placed_unit(&es, "tail", &places).boxed(), None)
        .unwrap();
    let (p, jd2) = (places.clone(), jd.clone());
    jd.define(
        TestUnit::new("chained", exported(&es, &["chained"]), move |r| {
            p.lock().push(("chained", std::thread::current().id()));
            let tail = r.session().intern("tail");
            r.session().lookup_async(
                &jd2.search_order().unwrap(),
                SymbolLookupSet::from_names([tail]),
                SymbolState::Ready,
                move |res| {
                    assert!(res.is_ok(), "{res:?}");
                    resolve_and_emit(&r, 0x2000);
                },
            );
        })
        .boxed(),
        None,
    )
    .unwrap();

    let here = std::thread::current().id();
    jd.lookup_symbol("alone").unwrap();
    assert_eq!(place_of(&places, "alone"), here);
    jd.lookup_symbol("chained").unwrap();
    assert_eq!(place_of(&places, "chained"), here);
    assert_eq!(place_of(&places, "tail"), here);
    // Two units in one lookup: one runs here, the other on a worker at the
    // same time.
    jd.lookup(&["first", "second"]).unwrap();
    let (first, second) = (place_of(&places, "first"), place_of(&places, "second"));
    assert!(
        (first == here) != (second == here),
        "exactly one of the two ran on the waiting thread: {places:?}"
    );
    es.end_session().unwrap();
}

#[test]
fn a_dispatcher_can_keep_every_materialization_on_its_threads() {
    /// A pool that does not let waiting threads run its work.
    struct PoolOnly(ThreadPoolDispatcher);
    impl orc_core::Dispatcher for PoolOnly {
        fn dispatch(&self, task: orc_core::Task) {
            self.0.dispatch(task)
        }
        fn shutdown(&self) {
            self.0.shutdown()
        }
        fn run_one_if_worker(&self) -> bool {
            self.0.run_one_if_worker()
        }
        fn caller_may_run(&self) -> bool {
            false
        }
    }
    let es = ExecutionSession::with_dispatcher(Arc::new(PoolOnly(
        ThreadPoolDispatcher::new(1).unwrap(),
    )));
    let jd = es.create_jit_dylib("main").unwrap();
    let places = Places::default();
    jd.define(placed_unit(&es, "elsewhere", &places).boxed(), None)
        .unwrap();
    jd.lookup_symbol("elsewhere").unwrap();
    assert_ne!(place_of(&places, "elsewhere"), std::thread::current().id());
    es.end_session().unwrap();
}
