//! The object-linking layer on the session: objects as units of a dylib,
//! linked on first lookup, initializers run explicitly, finalizers and exit
//! handlers on tracker removal and session end.

mod common;

use std::sync::Arc;

use common::*;
use orc_core::link::{ObjectFile, ObjectLinkingLayer};
use orc_core::{DynamicLibrarySearchGenerator, ExecutionSession, JitDylib, ThreadPoolDispatcher};

fn setup(es: &ExecutionSession) -> (Arc<ObjectLinkingLayer>, JitDylib) {
    let layer = ObjectLinkingLayer::new(es);
    let host = es.create_jit_dylib("host").unwrap();
    // The test's own `log_event` first, then everything in the process.
    let mut map = orc_core::SymbolMap::new();
    map.insert(
        es.intern("log_event"),
        orc_core::ExecutorSymbolDef::new(
            host_symbol("log_event").unwrap(),
            orc_core::SymbolFlags::EXPORTED,
        ),
    );
    host.define(orc_core::absolute_symbols(map), None).unwrap();
    host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))
        .unwrap();
    let main = es.create_jit_dylib("main").unwrap();
    main.add_to_link_order(&host).unwrap();
    (layer, main)
}

fn add(layer: &ObjectLinkingLayer, jd: &JitDylib, tc: &Toolchain, name: &str) {
    layer
        .add(jd, compile(tc, name), None)
        .unwrap_or_else(|e| panic!("add {name}: {e}"));
}

#[test]
fn objects_link_on_lookup_including_cycles() {
    for tc in TOOLCHAINS {
        let es = ExecutionSession::new();
        let (layer, main) = setup(&es);
        add(&layer, &main, tc, "cycle_even.c");
        add(&layer, &main, tc, "cycle_odd.c");
        add(&layer, &main, tc, "calls_a.c");
        add(&layer, &main, tc, "calls_b.c");
        // SAFETY: int is_even(unsigned) / int a_sum(int).
        unsafe {
            let is_even: extern "C" fn(u32) -> i32 = func(layer.lookup(&main, "is_even").unwrap());
            assert_eq!((is_even(10), is_even(7)), (1, 0), "{}", tc.describe());
            let a_sum: extern "C" fn(i32) -> i32 = func(layer.lookup(&main, "a_sum").unwrap());
            assert_eq!(a_sum(10), 45);
            let a_common: extern "C" fn(i32) -> i32 =
                func(layer.lookup(&main, "a_common").unwrap());
            assert_eq!(
                a_common(99),
                99,
                "{}: one common symbol for the dylib",
                tc.describe()
            );
        }
        es.end_session().unwrap();
    }
}

#[test]
fn objects_link_on_a_thread_pool() {
    let pool = ThreadPoolDispatcher::new(2).unwrap();
    let es = ExecutionSession::with_dispatcher(Arc::new(pool));
    let (layer, main) = setup(&es);
    add(&layer, &main, &GCC_O2_PIC, "cycle_even.c");
    add(&layer, &main, &GCC_O2_PIC, "cycle_odd.c");
    add(&layer, &main, &GCC_O2_PIC, "libc_use.c");
    add(&layer, &main, &GCC_O2_PIC, "libm_use.c");
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (layer, main) = (layer.clone(), main.clone());
            std::thread::spawn(move || {
                let name = if i % 2 == 0 {
                    "is_odd"
                } else {
                    "sort_and_check"
                };
                layer.lookup(&main, name).unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // SAFETY: int sort_and_check(int).
    let sort: extern "C" fn(i32) -> i32 =
        unsafe { func(layer.lookup(&main, "sort_and_check").unwrap()) };
    assert_eq!(sort(100), 1);
    es.end_session().unwrap();
}

#[test]
fn first_weak_definition_wins_for_every_object() {
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    add(&layer, &main, &GCC_O2_PIC, "weak_a.c");
    add(&layer, &main, &GCC_O2_PIC, "weak_b.c");
    // SAFETY: int f(void).
    unsafe {
        let b: extern "C" fn() -> i32 = func(layer.lookup(&main, "call_weak_b").unwrap());
        assert_eq!(
            b(),
            1,
            "weak_b.c's reference binds to weak_a.c's definition"
        );
        let a: extern "C" fn() -> i32 = func(layer.lookup(&main, "call_weak_a").unwrap());
        assert_eq!(a(), 1);
    }
    es.end_session().unwrap();
}

#[test]
fn initializers_finalizers_and_exit_handlers_follow_the_tracker() {
    let _guard = serial();
    load_stdcxx();
    for tc in TOOLCHAINS {
        let what = tc.describe();
        take_log();
        let es = ExecutionSession::new();
        let (layer, main) = setup(&es);
        let tracker = main.create_resource_tracker().unwrap();
        layer
            .add(&main, compile(tc, "cxx_ctors.cpp"), Some(&tracker))
            .unwrap();
        layer
            .add(&main, compile(tc, "ctors.c"), Some(&tracker))
            .unwrap();
        assert!(
            take_log().is_empty(),
            "{what}: nothing runs before it is asked"
        );
        // SAFETY: the initializers only call log_event and atexit.
        unsafe { layer.run_initializers(&main).unwrap() };
        let init = take_log();
        assert_eq!(
            &init[..3],
            &[1, 2, 3],
            "{what}: objects initialize in add order: {init:?}"
        );
        assert_eq!(init.len(), 8, "{what}: {init:?}");
        // SAFETY: void touch_function_static(void).
        let touch: extern "C" fn() =
            unsafe { func(layer.lookup(&main, "touch_function_static").unwrap()) };
        touch();
        take_log();
        tracker.remove().unwrap();
        let fini = take_log();
        // Exit handlers newest first across both objects, then finalizers.
        assert_eq!(&fini[..5], &[-100, -400, -3, -2, -1], "{what}: {fini:?}");
        assert!(
            fini[5..].contains(&-300) && fini[5..].contains(&-1001),
            "{what}: {fini:?}"
        );
        assert!(main.lookup_symbol("cxx_value").is_err());
        es.end_session().unwrap();
    }
}

#[test]
fn session_end_runs_exit_handlers() {
    let _guard = serial();
    load_stdcxx();
    take_log();
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    add(&layer, &main, &GCC_O2_PIC, "cxx_ctors.cpp");
    // SAFETY: C++ constructors that call log_event.
    unsafe { layer.run_initializers(&main).unwrap() };
    assert_eq!(take_log(), vec![1, 2, 3]);
    es.end_session().unwrap();
    assert_eq!(take_log(), vec![-3, -2, -1]);
}

#[test]
fn comdat_groups_are_kept_once_per_dylib_and_exceptions_cross_objects() {
    let _guard = serial();
    load_stdcxx();
    for tc in TOOLCHAINS {
        let es = ExecutionSession::new();
        let (layer, main) = setup(&es);
        add(&layer, &main, tc, "cxx_throw.cpp");
        add(&layer, &main, tc, "cxx_catch.cpp");
        take_log();
        // SAFETY: int catch_it(int).
        let catch_it: extern "C" fn(i32) -> i32 =
            unsafe { func(layer.lookup(&main, "catch_it").unwrap()) };
        assert_eq!(catch_it(4), 8, "{}", tc.describe());
        assert_eq!(take_log(), vec![7]);
        es.end_session().unwrap();
    }
}

#[test]
fn link_errors_fail_the_lookup_and_the_session_stays_usable() {
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    add(&layer, &main, &GCC_O2_PIC, "undefined.c");
    let err = layer.lookup(&main, "call_nowhere").unwrap_err().to_string();
    assert!(err.contains("undefined symbol defined_nowhere"), "{err}");
    assert!(err.contains("undefined.c"), "{err}");
    // A strong duplicate is refused at add time.
    add(&layer, &main, &GCC_O2_PIC, "calls_b.c");
    let dup = layer
        .add(&main, compile(&GCC_O2_PIC, "dup.c"), None)
        .unwrap_err();
    assert!(
        dup.to_string()
            .contains("duplicate definition of symbol 'counter'"),
        "{dup}"
    );
    // Bad bytes are refused at add time.
    let bad = layer
        .add_bytes(&main, "junk.o", b"\x7fELF junk".to_vec(), None)
        .unwrap_err();
    assert!(bad.to_string().contains("junk.o"), "{bad}");
    // SAFETY: int b_add(int, int).
    let add_fn: extern "C" fn(i32, i32) -> i32 =
        unsafe { func(layer.lookup(&main, "b_add").unwrap()) };
    assert_eq!(add_fn(20, 22), 42);
    es.end_session().unwrap();
}

#[test]
fn adding_and_removing_through_trackers() {
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    let bytes = compile_bytes(&GCC_O2_PIC, "calls_b.c", &[]);
    for _ in 0..500 {
        let tracker = main.create_resource_tracker().unwrap();
        let obj = ObjectFile::parse("calls_b.c", bytes.clone()).unwrap();
        layer.add(&main, obj, Some(&tracker)).unwrap();
        // SAFETY: int b_add(int, int).
        let add_fn: extern "C" fn(i32, i32) -> i32 =
            unsafe { func(layer.lookup(&main, "b_add").unwrap()) };
        assert_eq!(add_fn(1, 2), 3);
        tracker.remove().unwrap();
        assert!(
            main.lookup_symbol("b_add").is_err(),
            "removed with its tracker"
        );
    }
    es.end_session().unwrap();
}

#[test]
fn removing_an_object_before_its_initializers_ran_forgets_them() {
    let _guard = serial();
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    let tracker = main.create_resource_tracker().unwrap();
    layer
        .add(&main, compile(&GCC_O2_PIC, "ctors.c"), Some(&tracker))
        .unwrap();
    tracker.remove().unwrap();
    add(&layer, &main, &GCC_O2_PIC, "cycle_even.c");
    take_log();
    // SAFETY: nothing with initializers is left.
    unsafe { layer.run_initializers(&main).unwrap() };
    assert!(take_log().is_empty());
    es.end_session().unwrap();
}

/// Regression: with the in-place dispatcher, an object whose externals live
/// in two not-yet-linked objects, one of which uses the other, deadlocked:
/// the first of the two blocked on a lookup of the second, whose
/// materialization was queued behind it on the same thread.
#[test]
fn in_place_dispatcher_links_objects_started_together() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let es = ExecutionSession::new();
        let (layer, main) = setup(&es);
        add(&layer, &main, &GCC_O2_PIC, "fan_out.c");
        add(&layer, &main, &GCC_O2_PIC, "arch_one.c");
        add(&layer, &main, &GCC_O2_PIC, "arch_two.c");
        let res = layer.lookup(&main, "fan_out").map(|addr| {
            // SAFETY: int fan_out(int).
            let f: extern "C" fn(i32) -> i32 = unsafe { func(addr) };
            f(1)
        });
        let _ = tx.send(res.map_err(|e| e.to_string()));
        es.end_session().unwrap();
    });
    let res = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("linking three objects on the in-place dispatcher deadlocked");
    assert_eq!(res, Ok((1 + 3) * 2 + (1 + 3)));
}

/// Regression: finalizers ran in reverse *link* order (an object linked as
/// a dependency of an earlier one finished first), not in reverse of the
/// order initializers ran in (add order), as `.fini_array` does in `ld`'s
/// output.
#[test]
fn finalizers_run_in_reverse_add_order() {
    let _guard = serial();
    take_log();
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    for name in ["fini_order_a.c", "fini_order_b.c", "fini_order_c.c"] {
        add(&layer, &main, &GCC_O2_PIC, name);
    }
    // SAFETY: the initializers only call log_event.
    unsafe { layer.run_initializers(&main).unwrap() };
    assert_eq!(take_log(), vec![1, 2, 3]);
    es.end_session().unwrap();
    assert_eq!(take_log(), vec![-3, -2, -1]);
}

/// Regression: every symbol of an object depended on every symbol it
/// referenced, and the session's transitive waiting sets grew with the
/// number of symbols: 800 functions calling each other across 10 objects
/// took 12 s to link in a release build (2,000 across 20, minutes). With
/// dependencies through one anchor per object it takes milliseconds.
#[test]
fn many_symbols_calling_across_objects_link_quickly() {
    let es = ExecutionSession::new();
    let (layer, main) = setup(&es);
    let n_objects = 10;
    for k in 0..n_objects {
        let defines = [
            format!("-DFILE_ID={k}"),
            format!("-DNEXT1={}", (k + 1) % n_objects),
            format!("-DNEXT2={}", (k + 3) % n_objects),
        ];
        let defines: Vec<&str> = defines.iter().map(String::as_str).collect();
        let bytes = compile_bytes(&GCC_O2_PIC, "many_calls.c", &defines);
        let object = ObjectFile::parse(format!("many_calls_{k}.o"), bytes).unwrap();
        layer.add(&main, object, None).unwrap();
    }
    let names: Vec<String> = (0..n_objects)
        .flat_map(|k| (0..80).map(move |j| format!("f_{k}_{j}")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let start = std::time::Instant::now();
    let found = main.lookup(&names).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(found.len(), 800);
    assert!(
        elapsed < std::time::Duration::from_secs(10),
        "linking 800 functions took {elapsed:?}"
    );
    // SAFETY: int f_0_5(int).
    let f: extern "C" fn(i32) -> i32 = unsafe { func(layer.lookup(&main, "f_0_5").unwrap()) };
    assert_eq!(f(10), 720);
    es.end_session().unwrap();
}

/// A unit that links its object into an existing responsibility, as the
/// compile layers do ([`ObjectLinkingLayer::emit`]).
struct EmitUnit {
    name: String,
    symbols: orc_core::SymbolFlagsMap,
    layer: Arc<ObjectLinkingLayer>,
    object: ObjectFile,
}

impl orc_core::MaterializationUnit for EmitUnit {
    fn name(&self) -> &str {
        &self.name
    }
    fn symbols(&self) -> orc_core::SymbolFlagsMap {
        self.symbols.clone()
    }
    fn materialize(self: Box<Self>, r: orc_core::MaterializationResponsibility) {
        self.layer.emit(r, self.object);
    }
    fn discard(&mut self, _dylib: &JitDylib, name: &orc_core::SymbolName) {
        self.symbols.remove(name);
    }
}

/// Objects emitted for responsibilities that own only some of their
/// symbols: the first to bring a COMDAT group defines its weak symbols
/// (the typeinfo both objects carry, and the hidden
/// `DW.ref.__gxx_personality_v0` of PIC code), so a later object that drops
/// its copy binds to them instead of failing with an undefined symbol.
#[test]
fn emitted_objects_bind_to_the_first_copy_of_a_comdat_group() {
    let _guard = serial();
    load_stdcxx();
    for tc in TOOLCHAINS {
        let es = ExecutionSession::new();
        let (layer, main) = setup(&es);
        let callable = orc_core::SymbolFlags::EXPORTED | orc_core::SymbolFlags::CALLABLE;
        for (file, symbol) in [
            ("cxx_catch.cpp", "catch_it"),
            ("cxx_throw.cpp", "_Z7throweri"),
        ] {
            let unit = EmitUnit {
                name: file.to_owned(),
                symbols: [(es.intern(symbol), callable)].into_iter().collect(),
                layer: layer.clone(),
                object: compile(tc, file),
            };
            main.define(Box::new(unit), None).unwrap();
        }
        take_log();
        // Looking `catch_it` up links its object first; its reference to
        // `thrower` links the other, whose COMDAT copies are dropped.
        // SAFETY: int catch_it(int).
        let catch_it: extern "C" fn(i32) -> i32 = unsafe {
            func(
                layer
                    .lookup(&main, "catch_it")
                    .unwrap_or_else(|e| panic!("{}: {e}", tc.describe())),
            )
        };
        assert_eq!(catch_it(4), 8, "{}", tc.describe());
        assert_eq!(take_log(), vec![7]);
        es.end_session().unwrap();
    }
}
