//! Adding and removing the same object 10,000 times keeps the resident
//! memory flat: mappings, unwind registrations and exit-handler records are
//! all released. Alone in its test binary so nothing else moves the RSS.

mod common;

use common::*;
use orc_core::link::{LinkSet, ObjectFile};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm resident field");
    pages * orc_core::memory::page_size() as u64
}

#[test]
fn link_and_remove_ten_thousand_times_keeps_rss_flat() {
    let _guard = serial();
    let bytes = compile_bytes(&GCC_O2_PIC, "ctors.c", &[]);
    let cycle = || {
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
    };
    for _ in 0..200 {
        cycle();
    }
    let before = resident_bytes();
    for _ in 0..10_000 {
        cycle();
    }
    let after = resident_bytes();
    let growth = after.saturating_sub(before);
    assert!(
        growth < 2 << 20,
        "resident memory grew by {growth} bytes over 10,000 links ({before} -> {after})"
    );
}
