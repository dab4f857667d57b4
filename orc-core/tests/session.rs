//! The session model end to end, with units that "materialize" by handing
//! out made-up addresses or addresses of Rust functions.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use orc_core::{
    absolute_symbols, reexports, symbol_aliases, DynamicLibrarySearchGenerator, Error,
    ExecutionSession, ExecutorAddr, ExecutorSymbolDef, JitDylibLookupFlags, SymbolAliasMap,
    SymbolAliasMapEntry, SymbolFlags, SymbolLookupFlags, SymbolLookupSet, SymbolMap, SymbolState,
};
use parking_lot::Mutex;
use support::*;

fn abs(
    es: &ExecutionSession,
    name: &str,
    addr: u64,
    flags: SymbolFlags,
) -> Box<dyn orc_core::MaterializationUnit> {
    let mut map = SymbolMap::new();
    map.insert(
        es.intern(name),
        ExecutorSymbolDef::new(ExecutorAddr(addr), flags),
    );
    absolute_symbols(map)
}

/// The libA/libB/main example of ORC's design document.
#[test]
fn link_order_binds_to_first_definition() {
    let es = ExecutionSession::new();
    let lib_a = es.create_jit_dylib("libA").unwrap();
    let lib_b = es.create_jit_dylib("libB").unwrap();
    let main = es.create_jit_dylib("main").unwrap();
    main.set_link_order(&[&lib_a, &lib_b]).unwrap();

    lib_a
        .define(abs(&es, "foo", 0xa000, SymbolFlags::EXPORTED), None)
        .unwrap();
    // The same name in another dylib is fine.
    lib_b
        .define(abs(&es, "foo", 0xb000, SymbolFlags::EXPORTED), None)
        .unwrap();
    lib_b
        .define(abs(&es, "bar", 0xb010, SymbolFlags::EXPORTED), None)
        .unwrap();

    assert_eq!(
        main.lookup_symbol("foo").unwrap().addr,
        ExecutorAddr(0xa000)
    );
    assert_eq!(
        main.lookup_symbol("bar").unwrap().addr,
        ExecutorAddr(0xb010)
    );

    // `foo` twice in libA is a duplicate definition naming it.
    let err = lib_a
        .define(abs(&es, "foo", 0xa100, SymbolFlags::EXPORTED), None)
        .unwrap_err();
    match &err {
        Error::DuplicateDefinition { dylib, symbol } => {
            assert_eq!(&**dylib, "libA");
            assert_eq!(symbol.as_str(), "foo");
        }
        other => panic!("expected DuplicateDefinition, got {other}"),
    }
    assert!(err.to_string().contains("'foo'"));
    // The session is still usable and the first definition stands.
    assert_eq!(
        main.lookup_symbol("foo").unwrap().addr,
        ExecutorAddr(0xa000)
    );

    // Reordering switches the binding for later lookups of a fresh dylib.
    let main2 = es.create_jit_dylib("main2").unwrap();
    main2.set_link_order(&[&lib_b, &lib_a]).unwrap();
    assert_eq!(
        main2.lookup_symbol("foo").unwrap().addr,
        ExecutorAddr(0xb000)
    );
    es.end_session().unwrap();
}

#[test]
fn duplicate_dylib_names_are_an_error() {
    let es = ExecutionSession::new();
    let a = es.create_jit_dylib("a").unwrap();
    assert!(
        matches!(es.create_jit_dylib("a"), Err(Error::DuplicateJitDylib { name }) if name == "a")
    );
    assert_eq!(es.jit_dylib("a"), Some(a));
    assert_eq!(es.jit_dylib("b"), None);
}

#[test]
fn hidden_symbols_are_invisible_from_other_dylibs() {
    let es = ExecutionSession::new();
    let lib = es.create_jit_dylib("lib").unwrap();
    let main = es.create_jit_dylib("main").unwrap();
    main.add_to_link_order(&lib).unwrap();
    lib.define(abs(&es, "hidden", 0x10, SymbolFlags::NONE), None)
        .unwrap();
    // From inside the dylib (matching all symbols) it is found...
    assert_eq!(
        lib.lookup_symbol("hidden").unwrap().addr,
        ExecutorAddr(0x10)
    );
    // ...from outside it is not.
    assert!(
        matches!(main.lookup_symbol("hidden"), Err(Error::SymbolsNotFound { symbols }) if symbols[0].as_str() == "hidden")
    );
}

#[test]
fn missing_required_and_weakly_referenced_symbols() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    jd.define(abs(&es, "here", 0x10, SymbolFlags::EXPORTED), None)
        .unwrap();
    let mut set = SymbolLookupSet::new();
    set.add(es.intern("here"), SymbolLookupFlags::RequiredSymbol);
    set.add(es.intern("gone"), SymbolLookupFlags::WeaklyReferencedSymbol);
    let map = es
        .lookup(&jd.search_order().unwrap(), set, SymbolState::Ready)
        .unwrap();
    assert_eq!(map.len(), 1);
    assert!(map.contains_key(&es.intern("here")));

    let err = jd.lookup(&["here", "nope", "also_nope"]).unwrap_err();
    match err {
        Error::SymbolsNotFound { symbols } => {
            let names: Vec<&str> = symbols.iter().map(|s| s.as_str()).collect();
            assert_eq!(names, ["also_nope", "nope"]);
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn strong_overrides_weak_and_first_weak_wins() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let weak = SymbolFlags::EXPORTED | SymbolFlags::WEAK;

    // Two weak definitions: the first stays, the second is discarded.
    let first = simple_unit(&es, "first", &[], 0x100);
    let first = support::TestUnit {
        symbols: flags(&es, &[("w", weak), ("only_first", SymbolFlags::EXPORTED)]),
        ..first
    };
    let first_discards = first.discarded.clone();
    jd.define(first.boxed(), None).unwrap();
    let second = TestUnit::new(
        "second",
        flags(&es, &[("w", weak), ("x", SymbolFlags::EXPORTED)]),
        |r| resolve_and_emit(&r, 0x200),
    );
    let second_discards = second.discarded.clone();
    jd.define(second.boxed(), None).unwrap();
    assert_eq!(*second_discards.lock(), vec![es.intern("w")]);
    assert!(first_discards.lock().is_empty());
    // first resolves names in order: only_first=0x100, w=0x110.
    assert_eq!(jd.lookup_symbol("w").unwrap().addr, ExecutorAddr(0x110));

    // A strong definition overrides a weak one not yet looked up.
    let weak_unit = TestUnit::new(
        "weak",
        flags(&es, &[("s", weak), ("t", SymbolFlags::EXPORTED)]),
        |r| resolve_and_emit(&r, 0x300),
    );
    let weak_discards = weak_unit.discarded.clone();
    jd.define(weak_unit.boxed(), None).unwrap();
    jd.define(abs(&es, "s", 0x400, SymbolFlags::EXPORTED), None)
        .unwrap();
    assert_eq!(*weak_discards.lock(), vec![es.intern("s")]);
    assert_eq!(jd.lookup_symbol("s").unwrap().addr, ExecutorAddr(0x400));
    // The weak unit still defines its other symbol (t is its only one now).
    assert_eq!(jd.lookup_symbol("t").unwrap().addr, ExecutorAddr(0x300));

    // A strong definition of a weak symbol already materialized is a
    // duplicate.
    assert!(matches!(
        jd.define(abs(&es, "w", 0x500, SymbolFlags::EXPORTED), None),
        Err(Error::DuplicateDefinition { .. })
    ));
}

/// A unit remembers the names it was defined with; one it lost (to a
/// strong definition that was later removed and defined again elsewhere)
/// must not come back to it when it is finally materialized.
#[test]
fn a_unit_does_not_reclaim_a_name_it_lost() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let weak = SymbolFlags::EXPORTED | SymbolFlags::WEAK;
    let owned = Arc::new(Mutex::new(Vec::new()));
    let seen = owned.clone();
    let weak_unit = TestUnit::new(
        "weak",
        flags(&es, &[("s", weak), ("t", SymbolFlags::EXPORTED)]),
        move |r| {
            seen.lock().extend(r.symbols().into_keys());
            resolve_and_emit(&r, 0x300)
        },
    );
    jd.define(weak_unit.boxed(), None).unwrap();
    let overriding = jd.create_resource_tracker().unwrap();
    jd.define(
        abs(&es, "s", 0x400, SymbolFlags::EXPORTED),
        Some(&overriding),
    )
    .unwrap();
    overriding.remove().unwrap();
    jd.define(abs(&es, "s", 0x500, SymbolFlags::EXPORTED), None)
        .unwrap();
    assert_eq!(jd.lookup_symbol("t").unwrap().addr, ExecutorAddr(0x300));
    assert_eq!(*owned.lock(), vec![es.intern("t")]);
    assert_eq!(jd.lookup_symbol("s").unwrap().addr, ExecutorAddr(0x500));
}

#[test]
fn process_generator_with_allow_predicate() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let allow: orc_core::AllowPredicate = Arc::new(|name: &str| name != "strcmp");
    jd.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(Some(
        allow,
    ))))
    .unwrap();
    let strlen_addr = jd.lookup_symbol("strlen").unwrap().addr;
    let expected = libc::strlen as *const u8;
    // The dynamic linker may hand out a different (IFUNC-resolved) entry
    // than Rust's reference, so call through the address instead.
    assert!(!strlen_addr.is_null());
    // SAFETY: the generator found `strlen` in this process; it has the
    // C signature size_t strlen(const char *).
    let strlen: extern "C" fn(*const libc::c_char) -> usize =
        unsafe { std::mem::transmute(strlen_addr.to_ptr::<u8>()) };
    assert_eq!(strlen(c"hello".as_ptr()), 5);
    assert!(!expected.is_null());
    // The predicate denies strcmp even though the process has it.
    assert!(matches!(
        jd.lookup_symbol("strcmp"),
        Err(Error::SymbolsNotFound { .. })
    ));
    // Names the process lacks are not found.
    assert!(matches!(
        jd.lookup_symbol("no_such_symbol_anywhere_42"),
        Err(Error::SymbolsNotFound { .. })
    ));
}

#[test]
fn dynamic_library_generator_errors_name_the_path() {
    match DynamicLibrarySearchGenerator::load("/nonexistent/libnothing.so", None) {
        Err(Error::DynamicLibrary { path, message }) => {
            assert_eq!(path, "/nonexistent/libnothing.so");
            assert!(!message.is_empty());
        }
        other => panic!(
            "expected a DynamicLibrary error, got {:?}",
            other.map(|_| ())
        ),
    }
    // A real library from the system loads and resolves.
    let libm = DynamicLibrarySearchGenerator::load("libm.so.6", None).unwrap();
    assert!(libm.address_of("cos").is_some());
}

extern "C" fn rust_target() -> i32 {
    42
}

#[test]
fn aliases_and_reexports_share_the_target_address() {
    let es = ExecutionSession::new();
    let lib = es.create_jit_dylib("lib").unwrap();
    let main = es.create_jit_dylib("main").unwrap();
    let target = ExecutorAddr::from_ptr(rust_target as *const u8);
    let mut map = SymbolMap::new();
    map.insert(
        es.intern("impl"),
        ExecutorSymbolDef::new(target, SymbolFlags::EXPORTED | SymbolFlags::CALLABLE),
    );
    lib.define(absolute_symbols(map), None).unwrap();

    let mut aliases = SymbolAliasMap::new();
    aliases.insert(
        es.intern("alias"),
        SymbolAliasMapEntry {
            aliasee: es.intern("impl"),
            flags: SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
        },
    );
    lib.define(symbol_aliases(aliases), None).unwrap();

    let mut re = SymbolAliasMap::new();
    re.insert(
        es.intern("reexported"),
        SymbolAliasMapEntry {
            aliasee: es.intern("alias"),
            flags: SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
        },
    );
    re.insert(
        es.intern("unused"),
        SymbolAliasMapEntry {
            aliasee: es.intern("missing"),
            flags: SymbolFlags::EXPORTED,
        },
    );
    main.define(reexports(&lib, re), None).unwrap();

    let a = lib.lookup_symbol("alias").unwrap().addr;
    let r = main.lookup_symbol("reexported").unwrap().addr;
    assert_eq!(a, target);
    assert_eq!(r, target);
    // SAFETY: the address is `rust_target`'s.
    let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(r.to_ptr::<u8>()) };
    assert_eq!(f(), 42);
    // The unrequested re-export was handed back, and fails only when asked.
    es.set_error_reporter(|_| {});
    let err = main.lookup_symbol("unused").unwrap_err();
    match &err {
        Error::FailedToMaterialize { symbols, cause } => {
            assert_eq!(symbols[0].to_string(), "main:unused");
            assert!(
                matches!(&**cause, Error::SymbolsNotFound { symbols } if symbols[0].as_str() == "missing")
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn tracker_remove_then_redefine() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let rt = jd.create_resource_tracker().unwrap();
    jd.define(abs(&es, "f", 0x1000, SymbolFlags::EXPORTED), Some(&rt))
        .unwrap();
    jd.define(abs(&es, "g", 0x2000, SymbolFlags::EXPORTED), None)
        .unwrap();
    assert_eq!(jd.lookup_symbol("f").unwrap().addr, ExecutorAddr(0x1000));
    rt.remove().unwrap();
    assert!(rt.is_defunct());
    assert!(matches!(
        jd.lookup_symbol("f"),
        Err(Error::SymbolsNotFound { .. })
    ));
    // Other trackers' symbols are untouched.
    assert_eq!(jd.lookup_symbol("g").unwrap().addr, ExecutorAddr(0x2000));
    // Removing twice is fine; defining under a removed tracker is not.
    rt.remove().unwrap();
    assert!(matches!(
        jd.define(abs(&es, "f", 0x1, SymbolFlags::EXPORTED), Some(&rt)),
        Err(Error::ResourceTrackerDefunct { .. })
    ));
    // The name can be defined again.
    let rt2 = jd.create_resource_tracker().unwrap();
    jd.define(abs(&es, "f", 0x3000, SymbolFlags::EXPORTED), Some(&rt2))
        .unwrap();
    assert_eq!(jd.lookup_symbol("f").unwrap().addr, ExecutorAddr(0x3000));
}

#[test]
fn tracker_transfer_merges_definitions() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let a = jd.create_resource_tracker().unwrap();
    let b = jd.create_resource_tracker().unwrap();
    jd.define(abs(&es, "x", 0x10, SymbolFlags::EXPORTED), Some(&a))
        .unwrap();
    jd.define(abs(&es, "y", 0x20, SymbolFlags::EXPORTED), Some(&b))
        .unwrap();
    a.transfer_to(&b).unwrap();
    a.remove().unwrap();
    assert_eq!(jd.lookup_symbol("x").unwrap().addr, ExecutorAddr(0x10));
    b.remove().unwrap();
    assert!(jd.lookup(&["x"]).is_err());
    assert!(jd.lookup(&["y"]).is_err());
    let other = es.create_jit_dylib("other").unwrap();
    let c = other.create_resource_tracker().unwrap();
    let d = jd.create_resource_tracker().unwrap();
    assert!(matches!(
        c.transfer_to(&d),
        Err(Error::TrackerDylibMismatch { .. })
    ));
}

#[test]
fn resource_managers_free_on_removal() {
    use orc_core::{JitDylib, ResourceKey, ResourceManager};
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, u64)>>);
    impl ResourceManager for Recorder {
        fn handle_remove_resources(
            &self,
            dylib: &JitDylib,
            key: ResourceKey,
        ) -> orc_core::Result<()> {
            self.0.lock().push((dylib.name().to_owned(), key.value()));
            Ok(())
        }
        fn handle_transfer_resources(&self, _: &JitDylib, _: ResourceKey, _: ResourceKey) {}
    }
    let es = ExecutionSession::new();
    let rec = Arc::new(Recorder::default());
    es.register_resource_manager(rec.clone());
    let jd = es.create_jit_dylib("main").unwrap();
    let rt = jd.create_resource_tracker().unwrap();
    rt.remove().unwrap();
    assert_eq!(*rec.0.lock(), vec![("main".to_owned(), rt.key().value())]);
    let default = jd.default_resource_tracker().unwrap();
    es.end_session().unwrap();
    assert!(rec
        .0
        .lock()
        .contains(&("main".to_owned(), default.key().value())));
}

#[test]
fn materialization_is_lazy_and_whole_unit() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let unit = simple_unit(&es, "u", &["a", "b"], 0x100);
    let count = unit.materialized.clone();
    jd.define(unit.boxed(), None).unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "defining does not materialize"
    );
    assert_eq!(jd.lookup_symbol("b").unwrap().addr, ExecutorAddr(0x110));
    assert_eq!(jd.lookup_symbol("a").unwrap().addr, ExecutorAddr(0x100));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let table = jd.symbol_table().unwrap();
    assert!(table
        .iter()
        .all(|(_, _, state, failed)| *state == SymbolState::Ready && !failed));
}

#[test]
fn failure_through_a_dependency_chain_names_the_failed_symbol() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let jd2 = jd.clone();
    // `a` depends on `b`; `b` fails after `a` has emitted.
    let b_mr: Arc<Mutex<Option<orc_core::MaterializationResponsibility>>> = Arc::default();
    let slot = b_mr.clone();
    jd.define(
        TestUnit::new("b-unit", exported(&es, &["b"]), move |r| {
            *slot.lock() = Some(r)
        })
        .boxed(),
        None,
    )
    .unwrap();
    let es2 = es.clone();
    jd.define(
        TestUnit::new("a-unit", exported(&es, &["a"]), move |r| {
            // Resolve b first (as a linker would) so it is materializing.
            let order = jd2.search_order().unwrap();
            es2.lookup_async(
                &order,
                SymbolLookupSet::from_names([es2.intern("b")]),
                SymbolState::Resolved,
                |_| {},
            );
            r.add_dependencies(&es2.intern("a"), &[(jd2.clone(), es2.intern("b"))])
                .unwrap();
            resolve_and_emit(&r, 0x100);
        })
        .boxed(),
        None,
    )
    .unwrap();
    let result: Arc<Mutex<Option<orc_core::Result<SymbolMap>>>> = Arc::default();
    let out = result.clone();
    es.lookup_async(
        &jd.search_order().unwrap(),
        SymbolLookupSet::from_names([es.intern("a")]),
        SymbolState::Ready,
        move |r| *out.lock() = Some(r),
    );
    assert!(
        result.lock().is_none(),
        "a is emitted but not ready while b is pending"
    );
    let table = jd.symbol_table().unwrap();
    assert!(table
        .iter()
        .any(|(n, _, s, _)| n.as_str() == "a" && *s == SymbolState::Emitted));
    let reported = Arc::new(Mutex::new(Vec::new()));
    let rep = reported.clone();
    es.set_error_reporter(move |e| rep.lock().push(e.to_string()));
    let b = b_mr.lock().take().expect("b is materializing");
    b.fail(Error::other("b exploded"));
    let res = result.lock().take().expect("the query on a completed");
    let err = res.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("main:b"), "error names b: {msg}");
    assert!(msg.contains("b exploded"), "error carries the cause: {msg}");
    assert_eq!(reported.lock().len(), 1);
    // Later lookups of both fail the same way; the rest of the dylib works.
    assert!(jd
        .lookup_symbol("a")
        .unwrap_err()
        .to_string()
        .contains("main:b"));
    assert!(jd
        .lookup_symbol("b")
        .unwrap_err()
        .to_string()
        .contains("b exploded"));
    jd.define(abs(&es, "c", 0x1, SymbolFlags::EXPORTED), None)
        .unwrap();
    assert_eq!(jd.lookup_symbol("c").unwrap().addr, ExecutorAddr(0x1));
}

#[test]
fn emitting_with_an_already_failed_dependency_fails() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    es.set_error_reporter(|_| {});
    jd.define(
        TestUnit::new("bad", exported(&es, &["bad"]), |r| {
            r.fail(Error::other("nope"))
        })
        .boxed(),
        None,
    )
    .unwrap();
    assert!(jd.lookup_symbol("bad").is_err());
    let (jd2, es2) = (jd.clone(), es.clone());
    let emit_result: Arc<Mutex<Option<orc_core::Result<()>>>> = Arc::default();
    let out = emit_result.clone();
    jd.define(
        TestUnit::new("user", exported(&es, &["user"]), move |r| {
            r.add_dependencies_for_all(&[(jd2, es2.intern("bad"))])
                .unwrap();
            r.notify_resolved(&addresses(&r, 0x10)).unwrap();
            *out.lock() = Some(r.notify_emitted());
        })
        .boxed(),
        None,
    )
    .unwrap();
    let err = jd.lookup_symbol("user").unwrap_err();
    assert!(err.to_string().contains("main:bad"), "{err}");
    assert!(emit_result.lock().take().unwrap().is_err());
}

#[test]
fn cyclic_dependencies_become_ready_together() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let (jd_a, jd_b, es_a, es_b) = (jd.clone(), jd.clone(), es.clone(), es.clone());
    let ready: Arc<Mutex<Vec<String>>> = Arc::default();
    // x depends on y, y depends on x: each unit resolves, looks up the other
    // (Resolved), records the dependency and emits.
    jd.define(
        TestUnit::new("x", exported(&es, &["x"]), move |r| {
            r.notify_resolved(&addresses(&r, 0x100)).unwrap();
            let order = jd_a.search_order().unwrap();
            es_a.lookup(
                &order,
                SymbolLookupSet::from_names([es_a.intern("y")]),
                SymbolState::Resolved,
            )
            .unwrap();
            r.add_dependencies(&es_a.intern("x"), &[(jd_a.clone(), es_a.intern("y"))])
                .unwrap();
            r.notify_emitted().unwrap();
        })
        .boxed(),
        None,
    )
    .unwrap();
    jd.define(
        TestUnit::new("y", exported(&es, &["y"]), move |r| {
            r.notify_resolved(&addresses(&r, 0x200)).unwrap();
            let order = jd_b.search_order().unwrap();
            es_b.lookup(
                &order,
                SymbolLookupSet::from_names([es_b.intern("x")]),
                SymbolState::Resolved,
            )
            .unwrap();
            r.add_dependencies(&es_b.intern("y"), &[(jd_b.clone(), es_b.intern("x"))])
                .unwrap();
            r.notify_emitted().unwrap();
        })
        .boxed(),
        None,
    )
    .unwrap();
    let out = ready.clone();
    es.lookup_async(
        &jd.search_order().unwrap(),
        SymbolLookupSet::from_names([es.intern("x")]),
        SymbolState::Ready,
        move |r| out.lock().push(format!("{:?}", r.map(|m| m.len()))),
    );
    assert_eq!(*ready.lock(), vec!["Ok(1)".to_owned()]);
    let table = jd.symbol_table().unwrap();
    assert!(
        table.iter().all(|(_, _, s, _)| *s == SymbolState::Ready),
        "{table:?}"
    );
}

#[test]
fn resolved_lookups_complete_before_ready() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let held: Arc<Mutex<Option<orc_core::MaterializationResponsibility>>> = Arc::default();
    let slot = held.clone();
    jd.define(
        TestUnit::new("u", exported(&es, &["f"]), move |r| {
            r.notify_resolved(&addresses(&r, 0x40)).unwrap();
            *slot.lock() = Some(r);
        })
        .boxed(),
        None,
    )
    .unwrap();
    let order = jd.search_order().unwrap();
    let resolved = es
        .lookup(
            &order,
            SymbolLookupSet::from_names([es.intern("f")]),
            SymbolState::Resolved,
        )
        .unwrap();
    assert_eq!(resolved[&es.intern("f")].addr, ExecutorAddr(0x40));
    let got: Arc<Mutex<Option<usize>>> = Arc::default();
    let out = got.clone();
    es.lookup_async(
        &order,
        SymbolLookupSet::from_names([es.intern("f")]),
        SymbolState::Ready,
        move |r| *out.lock() = Some(r.unwrap().len()),
    );
    assert!(got.lock().is_none());
    held.lock().take().unwrap().notify_emitted().unwrap();
    assert_eq!(*got.lock(), Some(1));
}

#[test]
fn dropped_responsibility_fails_its_waiters() {
    let es = ExecutionSession::new();
    es.set_error_reporter(|_| {});
    let jd = es.create_jit_dylib("main").unwrap();
    jd.define(
        TestUnit::new("lazy-bones", exported(&es, &["f", "g"]), drop).boxed(),
        None,
    )
    .unwrap();
    let err = jd.lookup_symbol("f").unwrap_err();
    match &err {
        Error::FailedToMaterialize { symbols, cause } => {
            assert_eq!(symbols.len(), 2);
            assert!(matches!(**cause, Error::MaterializationAbandoned { .. }));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn responsibility_misuse_is_an_error_not_a_panic() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let out = errors.clone();
    let es2 = es.clone();
    jd.define(
        TestUnit::new("confused", exported(&es, &["f"]), move |r| {
            let mut log = out.lock();
            log.push(r.notify_emitted().unwrap_err().to_string());
            let mut wrong = SymbolMap::new();
            wrong.insert(
                es2.intern("not_mine"),
                ExecutorSymbolDef::new(ExecutorAddr(1), SymbolFlags::EXPORTED),
            );
            log.push(r.notify_resolved(&wrong).unwrap_err().to_string());
            log.push(
                r.notify_resolved(&SymbolMap::new())
                    .unwrap_err()
                    .to_string(),
            );
            r.notify_resolved(&addresses(&r, 0x10)).unwrap();
            log.push(
                r.notify_resolved(&addresses(&r, 0x10))
                    .unwrap_err()
                    .to_string(),
            );
            r.notify_emitted().unwrap();
            log.push(r.notify_emitted().unwrap_err().to_string());
        })
        .boxed(),
        None,
    )
    .unwrap();
    assert_eq!(jd.lookup_symbol("f").unwrap().addr, ExecutorAddr(0x10));
    let log = errors.lock();
    assert!(
        log[0].contains("emitted before it was resolved"),
        "{}",
        log[0]
    );
    assert!(
        log[1].contains("does not own") && log[1].contains("not_mine"),
        "{}",
        log[1]
    );
    assert!(
        log[2].contains("did not define") && log[2].contains('f'),
        "{}",
        log[2]
    );
    assert!(log[3].contains("resolved twice"), "{}", log[3]);
    assert!(log[4].contains("already emitted"), "{}", log[4]);
}

#[test]
fn delegate_replace_and_define_materializing() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let es2 = es.clone();
    let second_count = counter();
    let c2 = second_count.clone();
    jd.define(
        TestUnit::new("multi", exported(&es, &["a", "b", "c"]), move |r| {
            // c goes back as its own unit; b is delegated and finished
            // separately; a finishes here along with a discovered symbol.
            let c_unit = TestUnit::new("c-again", exported(&es2, &["c"]), move |r| {
                c2.fetch_add(1, Ordering::SeqCst);
                resolve_and_emit(&r, 0x300)
            });
            r.replace(c_unit.boxed()).unwrap();
            let b = r.delegate(&[es2.intern("b")]).unwrap();
            assert_eq!(b.symbols().len(), 1);
            r.define_materializing(&exported(&es2, &["extra"])).unwrap();
            assert!(matches!(
                r.define_materializing(&exported(&es2, &["b"])),
                Err(Error::DuplicateDefinition { .. })
            ));
            resolve_and_emit(&b, 0x200);
            resolve_and_emit(&r, 0x100);
        })
        .boxed(),
        None,
    )
    .unwrap();
    // `extra` does not exist until the unit runs, so it is looked up after.
    let map = jd.lookup(&["a", "b"]).unwrap();
    assert_eq!(map[&es.intern("a")].addr, ExecutorAddr(0x100));
    assert_eq!(jd.lookup_symbol("extra").unwrap().addr, ExecutorAddr(0x110));
    assert_eq!(map[&es.intern("b")].addr, ExecutorAddr(0x200));
    assert_eq!(
        second_count.load(Ordering::SeqCst),
        0,
        "c was not requested yet"
    );
    assert_eq!(jd.lookup_symbol("c").unwrap().addr, ExecutorAddr(0x300));
    assert_eq!(second_count.load(Ordering::SeqCst), 1);
}

#[test]
fn replace_with_a_waiting_query_materializes_at_once() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let es2 = es.clone();
    jd.define(
        TestUnit::new("first", exported(&es, &["f"]), move |r| {
            r.replace(simple_unit(&es2, "second", &["f"], 0x900).boxed())
                .unwrap();
        })
        .boxed(),
        None,
    )
    .unwrap();
    assert_eq!(jd.lookup_symbol("f").unwrap().addr, ExecutorAddr(0x900));
}

#[test]
fn side_effects_only_symbols_have_no_address() {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let ran = counter();
    let r2 = ran.clone();
    let init = SymbolFlags::MATERIALIZATION_SIDE_EFFECTS_ONLY;
    jd.define(
        TestUnit::new("init", flags(&es, &[("__init", init)]), move |r| {
            r2.fetch_add(1, Ordering::SeqCst);
            r.notify_resolved(&SymbolMap::new()).unwrap();
            r.notify_emitted().unwrap();
        })
        .boxed(),
        None,
    )
    .unwrap();
    let mut set = SymbolLookupSet::new();
    set.add(es.intern("__init"), SymbolLookupFlags::RequiredSymbol);
    let order = vec![(jd.clone(), JitDylibLookupFlags::MatchAllSymbols)];
    let map = es.lookup(&order, set, SymbolState::Ready).unwrap();
    assert!(map.is_empty());
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn end_session_with_work_in_flight() {
    let es = ExecutionSession::with_dispatcher(Arc::new(
        orc_core::ThreadPoolDispatcher::new(2).unwrap(),
    ));
    es.set_error_reporter(|_| {});
    let jd = es.create_jit_dylib("main").unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let late_result: Arc<Mutex<Option<String>>> = Arc::default();
    let out = late_result.clone();
    jd.define(
        TestUnit::new("slow", exported(&es, &["slow"]), move |r| {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            *out.lock() = Some(format!(
                "{:?}",
                r.notify_resolved(&addresses(&r, 0x10))
                    .map_err(|e| e.to_string())
            ));
        })
        .boxed(),
        None,
    )
    .unwrap();
    jd.define(simple_unit(&es, "never", &["never"], 0x20).boxed(), None)
        .unwrap();
    let es2 = es.clone();
    let jd2 = jd.clone();
    let waiter = std::thread::spawn(move || {
        jd2.lookup_symbol("slow")
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    started_rx.recv().unwrap();
    let ender = std::thread::spawn(move || es2.end_session());
    // Let the in-flight materialization finish against the ended session.
    std::thread::sleep(std::time::Duration::from_millis(50));
    release_tx.send(()).unwrap();
    ender.join().unwrap().unwrap();
    let waited = waiter.join().unwrap();
    assert_eq!(waited, Err("the execution session has ended".to_owned()));
    let late = late_result.lock().clone().unwrap();
    assert!(late.contains("the execution session has ended"), "{late}");
    assert!(es.has_ended());
    assert!(matches!(es.create_jit_dylib("x"), Err(Error::SessionEnded)));
    assert!(matches!(
        jd.lookup_symbol("never"),
        Err(Error::SessionEnded)
    ));
    es.end_session().unwrap();
}

#[test]
fn removing_a_dylib_fails_its_waiters_and_unlinks_it() {
    let es = ExecutionSession::new();
    let lib = es.create_jit_dylib("lib").unwrap();
    let main = es.create_jit_dylib("main").unwrap();
    main.add_to_link_order(&lib).unwrap();
    lib.define(abs(&es, "f", 0x10, SymbolFlags::EXPORTED), None)
        .unwrap();
    assert!(main.lookup_symbol("f").is_ok());
    es.remove_jit_dylib(&lib).unwrap();
    assert!(main.link_order().unwrap().is_empty());
    assert!(matches!(
        main.lookup_symbol("f"),
        Err(Error::SymbolsNotFound { .. })
    ));
    assert!(es.jit_dylib("lib").is_none());
    assert!(matches!(
        lib.define(abs(&es, "g", 1, SymbolFlags::EXPORTED), None),
        Err(Error::JitDylibRemoved { .. })
    ));
    // The name is free again.
    es.create_jit_dylib("lib").unwrap();
}

/// Regression: a unit whose shared dependency is an emitted symbol that
/// waits on one of the unit's own symbols must become ready as a whole.
/// (The group's wait set once kept the unit's own member, and members
/// emitted after it waited on it forever.)
#[test]
fn shared_dependency_waiting_on_the_group_itself_becomes_ready() {
    for names in [["x1", "x2", "x3"], ["x3", "x2", "x1"]] {
        let es = ExecutionSession::new();
        let jd = es.create_jit_dylib("main").unwrap();
        let held: Arc<Mutex<Option<orc_core::MaterializationResponsibility>>> = Arc::default();
        let slot = held.clone();
        jd.define(
            TestUnit::new("xs", exported(&es, &names), move |r| {
                r.notify_resolved(&addresses(&r, 0x100)).unwrap();
                *slot.lock() = Some(r);
            })
            .boxed(),
            None,
        )
        .unwrap();
        let (jd2, es2, first) = (jd.clone(), es.clone(), names[0]);
        jd.define(
            TestUnit::new("y", exported(&es, &["y"]), move |r| {
                r.notify_resolved(&addresses(&r, 0x200)).unwrap();
                r.add_dependencies_for_all(&[(jd2.clone(), es2.intern(first))])
                    .unwrap();
                r.notify_emitted().unwrap();
            })
            .boxed(),
            None,
        )
        .unwrap();
        let order = jd.search_order().unwrap();
        let all: SymbolLookupSet = names.iter().chain(&["y"]).map(|n| es.intern(n)).collect();
        let done: Arc<Mutex<Option<usize>>> = Arc::default();
        let out = done.clone();
        es.lookup_async(&order, all, SymbolState::Ready, move |r| {
            *out.lock() = Some(r.unwrap().len())
        });
        // y is emitted and waits on the group's first symbol; now the group
        // emits with a shared dependency on y.
        let xs = held.lock().take().unwrap();
        xs.add_dependencies_for_all(&[(jd.clone(), es.intern("y"))])
            .unwrap();
        xs.notify_emitted().unwrap();
        assert_eq!(
            *done.lock(),
            Some(4),
            "every symbol became ready ({names:?})"
        );
        let table = jd.symbol_table().unwrap();
        assert!(
            table.iter().all(|(_, _, s, _)| *s == SymbolState::Ready),
            "{table:?}"
        );
    }
}

#[test]
fn linker_errors_reach_the_session_user_structured() {
    use orc_core::link::{LinkError, ObjectLinkingLayer};
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let layer = ObjectLinkingLayer::new(&es);
    let err = layer
        .add_bytes(&jd, "truncated.o", b"\x7fELF\x02\x01".to_vec(), None)
        .unwrap_err();
    match &err {
        Error::Link(link) => assert!(matches!(**link, LinkError::Malformed { .. }), "{link}"),
        other => panic!("expected Error::Link, got {other:?}"),
    }
    assert!(err.to_string().contains("truncated.o"), "{err}");
    // The session is still usable.
    jd.define(abs(&es, "ok", 0x10, SymbolFlags::EXPORTED), None)
        .unwrap();
    assert_eq!(jd.lookup_symbol("ok").unwrap().addr, ExecutorAddr(0x10));
}
