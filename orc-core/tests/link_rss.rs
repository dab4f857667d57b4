//! Adding and removing the same object 10,000 times keeps the resident
//! memory flat: mappings, unwind registrations and exit-handler records are
//! all released, by the engine alone and through the session's trackers.
//! Alone in its test binary so nothing else moves the RSS.

mod common;

use std::sync::Arc;

use common::*;
use orc_core::link::{LinkSet, ObjectFile, ObjectLinkingLayer};
use orc_core::{DynamicLibrarySearchGenerator, ExecutionSession};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm resident field");
    pages * orc_core::memory::page_size() as u64
}

/// Runs `cycle` 200 times to warm up, then 10,000 times, and asserts the
/// resident memory grew by less than 2 MiB.
fn assert_flat(what: &str, mut cycle: impl FnMut()) {
    for _ in 0..200 {
        cycle();
    }
    let before = resident_bytes();
    for _ in 0..10_000 {
        cycle();
    }
    let after = resident_bytes();
    let growth = after.saturating_sub(before);
    println!("{what}: resident {before} -> {after} bytes");
    assert!(
        growth < 2 << 20,
        "{what}: resident memory grew by {growth} bytes over 10,000 links ({before} -> {after})"
    );
}

/// One test function, so the two measurements never run concurrently.
#[test]
fn link_and_remove_ten_thousand_times_keeps_rss_flat() {
    let _guard = serial();
    let bytes = compile_bytes(&GCC_O2_PIC, "ctors.c", &[]);

    assert_flat("engine", || {
        // Parse every time too, so the whole path is measured.
        let obj = ObjectFile::parse("ctors.c", bytes.clone()).unwrap();
        let set = LinkSet::link(&[obj], &host_symbol).unwrap();
        // SAFETY: the initializers and finalizers only call log_event and
        // atexit (recorded per link).
        unsafe {
            set.run_initializers();
            set.shut_down();
        }
        drop(set);
        take_log();
    });

    // The same through the session: a tracker per add, removed each time.
    let es = ExecutionSession::new();
    let layer = ObjectLinkingLayer::new(&es);
    let main = es.create_jit_dylib("main").unwrap();
    let mut map = orc_core::SymbolMap::new();
    map.insert(
        es.intern("log_event"),
        orc_core::ExecutorSymbolDef::new(
            host_symbol("log_event").unwrap(),
            orc_core::SymbolFlags::EXPORTED,
        ),
    );
    main.define(orc_core::absolute_symbols(map), None).unwrap();
    main.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))
        .unwrap();
    assert_flat("layer", || {
        let tracker = main.create_resource_tracker().unwrap();
        let obj = ObjectFile::parse("ctors.c", bytes.clone()).unwrap();
        layer.add(&main, obj, Some(&tracker)).unwrap();
        // SAFETY: as above.
        unsafe { layer.run_initializers(&main).unwrap() };
        tracker.remove().unwrap();
        take_log();
    });
    es.end_session().unwrap();
}
