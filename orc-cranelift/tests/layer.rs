//! Tier 0 end to end: Cranelift IR -> object -> the core's linker -> a call.

use std::sync::Arc;

use cranelift_codegen::ir::{types, InstBuilder};
use orc_core::link::ObjectLinkingLayer;
use orc_core::{DynamicLibrarySearchGenerator, Error, ExecutionSession, JitDylib};
use orc_cranelift::{CraneliftCompiler, CraneliftConfig, CraneliftLayer, FnModule};

mod support;
use support::{callable, define_fn, define_loop, define_with, never_called, profile_only};

struct Jit {
    es: ExecutionSession,
    jd: JitDylib,
    layer: Arc<CraneliftLayer>,
}

fn jit() -> Jit {
    let es = ExecutionSession::new();
    let jd = es.create_jit_dylib("main").unwrap();
    let host = es.create_jit_dylib("host").unwrap();
    host.add_generator(Arc::new(
        DynamicLibrarySearchGenerator::load("libm.so.6", None).unwrap(),
    ))
    .unwrap();
    jd.add_to_link_order(&host).unwrap();
    let objects = ObjectLinkingLayer::new(&es);
    let layer = CraneliftLayer::new(
        CraneliftCompiler::new(CraneliftConfig::default()).unwrap(),
        objects,
    );
    Jit { es, jd, layer }
}

fn call(jd: &JitDylib, name: &str, x: f64) -> f64 {
    let addr = jd.lookup_symbol(name).unwrap().addr;
    // SAFETY: every function these tests define is f64 -> f64.
    let f: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    f(x)
}

#[test]
fn many_functions_in_one_object_call_each_other_and_libm() {
    let j = jit();
    let module = FnModule::new(
        "mod",
        vec![("leaf".into(), callable()), ("caller".into(), callable())],
        |m| {
            define_fn(m, "leaf", 2.0, &[])?;
            define_fn(m, "caller", 1.0, &["leaf", "sqrt"])
        },
    );
    j.layer.add(&j.jd, module, None).unwrap();
    assert_eq!(
        j.layer.stats().modules,
        0,
        "nothing compiled before the lookup"
    );
    // caller(16) = 16 + leaf(16) + sqrt(16) = 16 + 32 + 4.
    assert_eq!(call(&j.jd, "caller", 16.0), 52.0);
    assert_eq!(call(&j.jd, "leaf", 3.0), 6.0);
    let stats = j.layer.stats();
    assert_eq!(stats.modules, 1);
    assert_eq!(stats.functions.len(), 2);
    j.es.end_session().unwrap();
}

#[test]
fn one_function_per_object_links_by_name_across_objects() {
    let j = jit();
    // a calls b calls c, each its own object; c is added last.
    j.layer
        .add(
            &j.jd,
            FnModule::new("a", vec![("a".into(), callable())], |m| {
                define_fn(m, "a", 1.0, &["b"])
            }),
            None,
        )
        .unwrap();
    j.layer
        .add(
            &j.jd,
            FnModule::new("b", vec![("b".into(), callable())], |m| {
                define_fn(m, "b", 10.0, &["c"])
            }),
            None,
        )
        .unwrap();
    j.layer
        .add(
            &j.jd,
            FnModule::new("c", vec![("c".into(), callable())], |m| {
                define_fn(m, "c", 100.0, &[])
            }),
            None,
        )
        .unwrap();
    assert_eq!(call(&j.jd, "a", 1.0), 111.0);
    assert_eq!(j.layer.stats().modules, 3);
    j.es.end_session().unwrap();
}

#[test]
fn a_failed_compile_fails_only_its_symbols() {
    let j = jit();
    j.es.set_error_reporter(|_| {});
    j.layer
        .add(
            &j.jd,
            FnModule::new("bad", vec![("bad".into(), callable())], |_| {
                Err("frontend says no".into())
            }),
            None,
        )
        .unwrap();
    j.layer
        .add(
            &j.jd,
            FnModule::new("good", vec![("good".into(), callable())], |m| {
                define_fn(m, "good", 3.0, &[])
            }),
            None,
        )
        .unwrap();
    let err = j.jd.lookup_symbol("bad").unwrap_err();
    assert!(matches!(&err, Error::FailedToMaterialize { .. }), "{err}");
    assert!(err.to_string().contains("frontend says no"), "{err}");
    assert_eq!(call(&j.jd, "good", 2.0), 6.0);
    assert_eq!(j.layer.stats().failures, 1);
    j.es.end_session().unwrap();
}

#[test]
fn removing_the_tracker_unlinks_and_allows_redefinition() {
    let j = jit();
    let rt = j.jd.create_resource_tracker().unwrap();
    j.layer
        .add(
            &j.jd,
            FnModule::new("v1", vec![("f".into(), callable())], |m| {
                define_fn(m, "f", 2.0, &[])
            }),
            Some(&rt),
        )
        .unwrap();
    assert_eq!(call(&j.jd, "f", 5.0), 10.0);
    rt.remove().unwrap();
    assert!(j.jd.lookup_symbol("f").is_err());
    j.layer
        .add(
            &j.jd,
            FnModule::new("v2", vec![("f".into(), callable())], |m| {
                define_fn(m, "f", 3.0, &[])
            }),
            None,
        )
        .unwrap();
    assert_eq!(call(&j.jd, "f", 5.0), 15.0);
    j.es.end_session().unwrap();
}

#[test]
fn profiled_functions_count_entries_and_back_edges() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LOOPING: AtomicU64 = AtomicU64::new(0);
    static UNUSED: AtomicU64 = AtomicU64::new(0);
    let j = jit();
    j.layer
        .set_counter_provider(profile_only("looping", &LOOPING, u64::MAX, never_called, 0));
    let module = FnModule::new(
        "loops",
        vec![("looping".into(), callable()), ("plain".into(), callable())],
        |m| {
            define_loop(m, "looping")?;
            define_fn(m, "plain", 2.0, &[])
        },
    );
    j.layer.add(&j.jd, module, None).unwrap();
    assert_eq!(call(&j.jd, "looping", 10.0), 45.0);
    // One entry plus one bump per iteration of the loop (10 back-edge
    // branches: the last one leaves the loop).
    assert_eq!(LOOPING.load(Ordering::Relaxed), 11);
    assert_eq!(call(&j.jd, "looping", 3.0), 3.0);
    assert_eq!(LOOPING.load(Ordering::Relaxed), 15);
    assert_eq!(call(&j.jd, "plain", 4.0), 8.0);
    assert_eq!(UNUSED.load(Ordering::Relaxed), 0);
    assert_eq!(
        LOOPING.load(Ordering::Relaxed),
        15,
        "unprofiled code bumps nothing"
    );
    j.es.end_session().unwrap();
}

#[test]
fn profiled_code_calls_the_trip_handler_and_continues_with_its_count() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static TRIPS: AtomicU64 = AtomicU64::new(0);
    static CONTEXT: AtomicU64 = AtomicU64::new(0);
    /// Records the trip and starts the count again from zero.
    extern "C" fn on_trip(context: u64, counter: u64) {
        CONTEXT.store(context, Ordering::SeqCst);
        TRIPS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the code passes the counter address it was given.
        unsafe { &*(counter as *const AtomicU64) }.store(0, Ordering::SeqCst);
    }
    let j = jit();
    j.layer
        .set_counter_provider(profile_only("looping", &COUNTER, 4, on_trip, 0xfeed));
    let module = FnModule::new("trips", vec![("looping".into(), callable())], |m| {
        define_loop(m, "looping")
    });
    j.layer.add(&j.jd, module, None).unwrap();
    // The loop computes the same result with the checks in place.
    assert_eq!(call(&j.jd, "looping", 10.0), 45.0);
    // 11 counts (entry + 10 back-edges): trips at 4, then 4 more after each
    // reset (the loop goes on with the count the handler left): 4, 8.
    assert_eq!(TRIPS.load(Ordering::SeqCst), 2);
    assert_eq!(COUNTER.load(Ordering::SeqCst), 3);
    assert_eq!(CONTEXT.load(Ordering::SeqCst), 0xfeed);
    // Entries count too: one call is one count.
    assert_eq!(call(&j.jd, "looping", 1.0), 0.0);
    // The entry's count (4) tripped and was reset; the loop's one back-edge
    // counted 1.
    assert_eq!(COUNTER.load(Ordering::SeqCst), 1);
    assert_eq!(TRIPS.load(Ordering::SeqCst), 3);
    j.es.end_session().unwrap();
}

/// Counts trips and, like any real handler may, leaves garbage in every
/// register the System V convention lets it clobber.
extern "C" fn clobbering_trip(_context: u64, counter: u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    CLOBBERING_TRIPS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the code passes the counter address it was given.
    unsafe { &*(counter as *const AtomicU64) }.store(0, Ordering::SeqCst);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: writes only registers declared as clobbered outputs.
    unsafe {
        std::arch::asm!(
            "mov rax, -1", "mov rcx, -1", "mov rdx, -1", "mov rsi, -1", "mov rdi, -1",
            "mov r8, -1", "mov r9, -1", "mov r10, -1", "mov r11, -1",
            "pcmpeqd xmm0, xmm0", "pcmpeqd xmm1, xmm1", "pcmpeqd xmm2, xmm2",
            "pcmpeqd xmm3, xmm3", "pcmpeqd xmm4, xmm4", "pcmpeqd xmm5, xmm5",
            "pcmpeqd xmm6, xmm6", "pcmpeqd xmm7, xmm7",
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
        );
    }
}
static CLOBBERING_TRIPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[test]
fn every_argument_reaches_a_profiled_body_through_the_trip_path() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let j = jit();
    // Trip on every call, so each call goes through the handler first.
    j.layer
        .set_counter_provider(profile_only("mixed", &COUNTER, 1, clobbering_trip, 7));
    // mixed(i0..i7, x0..x9) = sum((k + 1) * i_k) + sum((k + 1) * x_k): 8
    // integers (6 in registers, 2 on the stack) and 10 doubles (8 in
    // registers, 2 on the stack), each with its own weight so a lost or
    // swapped argument changes the result.
    let mut params = vec![types::I64; 8];
    params.extend([types::F64; 10]);
    let module = FnModule::new("mixed", vec![("mixed".into(), callable())], move |m| {
        define_with(m, "mixed", &params, types::F64, |_, b, args| {
            let mut acc = b.ins().f64const(0.0);
            for (k, &arg) in args.iter().enumerate() {
                let weight = (k % 8 + 1) as f64 + if k >= 8 { 0.5 } else { 0.0 };
                let v = if k < 8 {
                    b.ins().fcvt_from_sint(types::F64, arg)
                } else {
                    arg
                };
                let w = b.ins().f64const(weight);
                let term = b.ins().fmul(v, w);
                acc = b.ins().fadd(acc, term);
            }
            b.ins().return_(&[acc]);
            Ok(())
        })
    });
    j.layer.add(&j.jd, module, None).unwrap();
    let addr = j.jd.lookup_symbol("mixed").unwrap().addr;
    type Mixed = extern "C" fn(
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        f64,
        f64,
        f64,
        f64,
        f64,
        f64,
        f64,
        f64,
        f64,
        f64,
    ) -> f64;
    // SAFETY: `mixed` was defined with exactly this signature.
    let mixed: Mixed = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    let ints = [3i64, -5, 7, 11, -13, 17, 19, -23];
    let floats = [
        0.5, 1.25, -2.0, 4.5, 8.75, -16.0, 32.5, 64.25, -128.0, 256.5,
    ];
    let expected: f64 = ints
        .iter()
        .enumerate()
        .map(|(k, &v)| v as f64 * (k + 1) as f64)
        .chain(
            floats
                .iter()
                .enumerate()
                .map(|(k, &v)| v * ((k + 8) % 8 + 1) as f64 + v * 0.5),
        )
        .sum();
    let before = CLOBBERING_TRIPS.load(Ordering::SeqCst);
    for _ in 0..3 {
        let got = mixed(
            ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6], ints[7], floats[0],
            floats[1], floats[2], floats[3], floats[4], floats[5], floats[6], floats[7], floats[8],
            floats[9],
        );
        assert_eq!(got, expected);
    }
    assert_eq!(CLOBBERING_TRIPS.load(Ordering::SeqCst) - before, 3);
    j.es.end_session().unwrap();
}

#[test]
fn calls_inside_a_module_count_entries_too() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LEAF: AtomicU64 = AtomicU64::new(0);
    let j = jit();
    j.layer
        .set_counter_provider(profile_only("leaf", &LEAF, u64::MAX, never_called, 0));
    let module = FnModule::new(
        "pair",
        vec![("leaf".into(), callable()), ("caller".into(), callable())],
        |m| {
            define_fn(m, "leaf", 2.0, &[])?;
            define_fn(m, "caller", 1.0, &["leaf"])
        },
    );
    j.layer.add(&j.jd, module, None).unwrap();
    // caller(x) = x + leaf(x) = 3x, calling leaf by its id in the module.
    assert_eq!(call(&j.jd, "caller", 5.0), 15.0);
    assert_eq!(call(&j.jd, "caller", 1.0), 3.0);
    assert_eq!(LEAF.load(Ordering::Relaxed), 2);
    assert_eq!(call(&j.jd, "leaf", 1.0), 2.0);
    assert_eq!(LEAF.load(Ordering::Relaxed), 3);
    j.es.end_session().unwrap();
}
