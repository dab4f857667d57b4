//! Thread-local storage in linked objects, in process: every TLS model of
//! every toolchain, from a thread that existed before the link, the
//! linking thread and one started after; each sees its own copies,
//! initialized from `.tdata` and zeroed for `.tbss`, including through
//! another object. Unloading frees the module; linking again gives fresh
//! copies to the same threads.

mod common;

use std::sync::mpsc;

use common::*;
use orc_core::link::{LinkSet, ObjectFile};
use orc_core::ExecutorAddr;

/// TLS models as extra flags (local dynamic in `tls_use.c` names tls.c's
/// variables: each object is its own TLS module, so those accesses are
/// moved to thunks).
const MODELS: &[(&str, &[&str])] = &[
    ("default", &[]),
    ("global-dynamic", &["-ftls-model=global-dynamic"]),
    ("local-dynamic", &["-ftls-model=local-dynamic"]),
    ("initial-exec", &["-ftls-model=initial-exec"]),
    ("local-exec", &["-ftls-model=local-exec"]),
    ("descriptors", &["-mtls-dialect=gnu2"]),
];

fn link(tc: &Toolchain, model: &[&str]) -> LinkSet {
    let use_model: &[&str] = if model.contains(&"-ftls-model=local-dynamic") {
        &[]
    } else {
        model
    };
    let objects = [("tls.c", model), ("tls_use.c", use_model)]
        .map(|(src, extra)| ObjectFile::parse(src, compile_bytes(tc, src, extra)).unwrap());
    LinkSet::link(&objects, &host_symbol)
        .unwrap_or_else(|e| panic!("{} {model:?}: {e}", tc.describe()))
}

/// The functions of one link, as plain addresses (sendable to threads).
#[derive(Clone, Copy)]
struct Api {
    bump: usize,
    zeroed: usize,
    rec_sum: usize,
    addr: usize,
    array_sum: usize,
    use_counter: usize,
    use_zero_add: usize,
}

impl Api {
    fn of(set: &LinkSet) -> Api {
        let f = |n: &str| {
            set.lookup(n)
                .unwrap_or_else(|| panic!("{n} missing"))
                .value() as usize
        };
        Api {
            bump: f("tls_bump"),
            zeroed: f("tls_zeroed"),
            rec_sum: f("tls_rec_sum"),
            addr: f("tls_counter_addr"),
            array_sum: f("tls_array_sum"),
            use_counter: f("use_counter"),
            use_zero_add: f("use_zero_add"),
        }
    }

    /// Runs the same sequence on the calling thread: its own copies start
    /// from the initial values. Returns the results and the address of
    /// this thread's `tls_counter`.
    fn exercise(self) -> (Vec<i64>, usize) {
        // SAFETY: the signatures match tls.c and tls_use.c; the link is
        // alive while the test calls them.
        unsafe {
            let bump: extern "C" fn(i32) -> i32 = func(ExecutorAddr(self.bump as u64));
            let zeroed: extern "C" fn() -> i64 = func(ExecutorAddr(self.zeroed as u64));
            let rec_sum: extern "C" fn() -> i32 = func(ExecutorAddr(self.rec_sum as u64));
            let addr: extern "C" fn() -> *mut i32 = func(ExecutorAddr(self.addr as u64));
            let array_sum: extern "C" fn() -> i32 = func(ExecutorAddr(self.array_sum as u64));
            let use_counter: extern "C" fn() -> i32 = func(ExecutorAddr(self.use_counter as u64));
            let use_zero_add: extern "C" fn(i64) -> i64 =
                func(ExecutorAddr(self.use_zero_add as u64));
            let mut out = vec![i64::from(*addr())];
            out.push(bump(1).into());
            out.push(bump(2).into());
            out.push(zeroed());
            out.push(use_counter().into());
            out.push(use_zero_add(4));
            out.push(zeroed());
            out.push(rec_sum().into());
            out.push(rec_sum().into());
            *addr() += 100;
            out.push(use_counter().into());
            out.push(array_sum().into());
            (out, addr() as usize)
        }
    }
}

/// What `exercise` returns on a thread's first use.
const EXPECTED: &[i64] = &[41, 42, 44, 6, 88, 10, 10, 8 + 4 + 116, 9 + 8 + 116, 288, 3];

#[test]
fn every_model_from_threads_before_and_after_the_link() {
    for tc in TOOLCHAINS {
        for &(model, flags) in MODELS {
            let what = format!("{} {model}", tc.describe());
            // A thread that exists before the link, waiting for work; it
            // stays alive until the late thread is done, so their copies
            // must differ.
            let (send, recv) = mpsc::channel::<Api>();
            let (result_send, result_recv) = mpsc::channel();
            let (done_send, done_recv) = mpsc::channel::<()>();
            let early = std::thread::spawn(move || {
                if let Ok(api) = recv.recv() {
                    result_send.send(api.exercise()).unwrap();
                    let _ = done_recv.recv();
                }
            });
            let set = link(tc, flags);
            let api = Api::of(&set);
            send.send(api).unwrap();
            let (main_results, main_addr) = api.exercise();
            let (early_results, early_addr) = result_recv.recv().unwrap();
            let (late_results, late_addr) =
                std::thread::spawn(move || api.exercise()).join().unwrap();
            done_send.send(()).unwrap();
            early.join().unwrap();
            assert_eq!(main_results, EXPECTED, "{what}: linking thread");
            assert_eq!(
                early_results, EXPECTED,
                "{what}: thread from before the link"
            );
            assert_eq!(late_results, EXPECTED, "{what}: thread from after the link");
            assert!(
                main_addr != early_addr && main_addr != late_addr && early_addr != late_addr,
                "{what}: threads share a copy"
            );
            // The linking thread's copies persist across calls.
            let again = api.exercise().0;
            assert_eq!(again[0], 144, "{what}");
        }
    }
}

#[test]
fn unloading_and_linking_again_gives_fresh_copies() {
    let (send, recv) = mpsc::channel::<Api>();
    let (back, results) = mpsc::channel::<Vec<i64>>();
    let worker = std::thread::spawn(move || {
        for api in recv {
            back.send(api.exercise().0).unwrap();
        }
    });
    for round in 0..3 {
        let set = link(&GCC_O2_PIC, &["-ftls-model=initial-exec"]);
        let api = Api::of(&set);
        send.send(api).unwrap();
        assert_eq!(results.recv().unwrap(), EXPECTED, "round {round}: worker");
        assert_eq!(api.exercise().0, EXPECTED, "round {round}: this thread");
        drop(set);
    }
    drop(send);
    worker.join().unwrap();
}

/// Moved exec-model instructions keep the flags and every register they
/// do not write, on a thread's first access (slow path) and later ones.
#[test]
fn moved_instructions_keep_flags_and_registers() {
    let obj =
        ObjectFile::parse("tls_regs.s", compile_bytes(&GCC_O2_PIC, "tls_regs.s", &[])).unwrap();
    let set = LinkSet::link(&[obj], &host_symbol).unwrap();
    let flags = set.lookup("tls_flags_kept").unwrap().value() as usize;
    let regs = set.lookup("tls_registers_kept").unwrap().value() as usize;
    let check = move || {
        // SAFETY: the signatures of tls_regs.s.
        unsafe {
            let flags: extern "C" fn(i32, i32) -> i32 = func(ExecutorAddr(flags as u64));
            let regs: extern "C" fn() -> i32 = func(ExecutorAddr(regs as u64));
            // The first call of a fresh thread takes the slow path.
            assert_eq!(regs(), 0, "registers, first access");
            assert_eq!(regs(), 0, "registers");
            assert_eq!((flags(1, 2), flags(2, 1), flags(-5, -5)), (1, 0, 0));
        }
    };
    let flags_first = move || {
        // SAFETY: as above.
        let flags: extern "C" fn(i32, i32) -> i32 = unsafe { func(ExecutorAddr(flags as u64)) };
        assert_eq!((flags(1, 2), flags(2, 1)), (1, 0), "flags, first access");
    };
    for _ in 0..3 {
        std::thread::spawn(check).join().unwrap();
        std::thread::spawn(flags_first).join().unwrap();
    }
    check();
}
