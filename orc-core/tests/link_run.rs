//! End-to-end linker tests: C and C++ compiled at test time by gcc, g++ and
//! clang-19 in several configurations, linked into this process and called.

mod common;

use std::collections::HashSet;
use std::ffi::{c_char, c_int, CStr};

use common::*;
use orc_core::link::{select_archive_members, Archive, LinkSet, ObjectFile};
use orc_core::SymbolFlags;

fn link(objects: &[ObjectFile]) -> LinkSet {
    LinkSet::link(objects, &host_symbol).unwrap_or_else(|e| panic!("link failed: {e}"))
}

#[test]
fn cross_object_calls_and_data() {
    for tc in TOOLCHAINS {
        let what = tc.describe();
        let set = link(&[compile(tc, "calls_a.c"), compile(tc, "calls_b.c")]);
        let sym = |n: &str| {
            set.lookup(n)
                .unwrap_or_else(|| panic!("{n} missing ({what})"))
        };
        // SAFETY: the signatures match calls_a.c / calls_b.c.
        unsafe {
            let a_sum: extern "C" fn(c_int) -> c_int = func(sym("a_sum"));
            assert_eq!(a_sum(10), 45, "{what}");
            let a_switch: extern "C" fn(c_int) -> c_int = func(sym("a_switch"));
            let got: Vec<c_int> = (-1..9).map(|x| a_switch(x)).collect();
            assert_eq!(got, vec![-1, 11, 22, 33, 44, 55, 66, 77, 88, -1], "{what}");
            let a_name_len: extern "C" fn() -> c_int = func(sym("a_name_len"));
            assert_eq!(a_name_len(), 8, "{what}");
            let a_bump: extern "C" fn() -> c_int = func(sym("a_bump"));
            assert_eq!(a_bump(), 4207, "{what}");
            assert_eq!(a_bump(), 4309, "{what}");
            let b_counter: extern "C" fn() -> c_int = func(sym("b_counter"));
            assert_eq!(b_counter(), 43, "{what}");
            let a_bss: extern "C" fn() -> c_int = func(sym("a_bss"));
            assert_eq!(a_bss(), 2016, "{what}");
            let a_common: extern "C" fn(c_int) -> c_int = func(sym("a_common"));
            assert_eq!(
                a_common(1234),
                1234,
                "{what}: both objects must share the common symbol"
            );
            let a_apply: extern "C" fn(c_int, c_int, c_int) -> c_int = func(sym("a_apply"));
            assert_eq!(
                (a_apply(0, 6, 7), a_apply(1, 6, 7), a_apply(2, 6, 7)),
                (13, -1, 42),
                "{what}"
            );
            let a_greeting: extern "C" fn() -> *const c_char = func(sym("a_greeting"));
            assert_eq!(
                CStr::from_ptr(a_greeting()).to_str().unwrap(),
                "hello from a",
                "{what}"
            );
            let a_fn_ptr: extern "C" fn() -> extern "C" fn(c_int) -> c_int = func(sym("a_fn_ptr"));
            assert_eq!(
                a_fn_ptr() as usize as u64,
                sym("a_switch").value(),
                "{what}: function pointer identity"
            );
        }
    }
}

#[test]
fn symbol_flags_from_visibility_and_binding() {
    let obj = compile(&GCC_O2_PIC, "visibility.c");
    let flags = |n: &str| {
        obj.defined_symbols()
            .iter()
            .find(|d| d.name == n)
            .unwrap_or_else(|| panic!("{n} not defined"))
            .flags
    };
    assert!(!flags("hidden_fn").is_exported());
    assert!(flags("protected_fn").is_exported());
    assert!(
        !flags("internal_fn").is_exported(),
        "STV_INTERNAL is defined but not exported"
    );
    assert_eq!(
        flags("weak_fn"),
        SymbolFlags::EXPORTED | SymbolFlags::CALLABLE | SymbolFlags::WEAK
    );
    let weak_missing = obj
        .undefined_symbols()
        .iter()
        .find(|u| u.name == "weak_missing")
        .unwrap();
    assert!(weak_missing.weak);
    for tc in TOOLCHAINS {
        let set = link(&[compile(tc, "visibility.c")]);
        // SAFETY: int vis_sum(void).
        let vis_sum: extern "C" fn() -> c_int = unsafe { func(set.lookup("vis_sum").unwrap()) };
        assert_eq!(
            vis_sum(),
            10,
            "{}: an unresolved weak reference is null",
            tc.describe()
        );
    }
}

#[test]
fn common_symbols_are_flagged() {
    let obj = compile(&GCC_O2_PIC, "calls_a.c");
    let common = obj
        .defined_symbols()
        .iter()
        .find(|d| d.name == "shared_common")
        .unwrap();
    assert!(common.flags.is_common());
}

#[test]
fn libc_calls_and_qsort_callback() {
    for tc in TOOLCHAINS {
        let what = tc.describe();
        let set = link(&[compile(tc, "libc_use.c"), compile(tc, "libm_use.c")]);
        // SAFETY: signatures from libc_use.c.
        unsafe {
            let sort: extern "C" fn(c_int) -> c_int = func(set.lookup("sort_and_check").unwrap());
            assert_eq!(sort(1000), 1, "{what}");
            let format: extern "C" fn(*mut c_char, c_int, c_int) -> c_int =
                func(set.lookup("format_number").unwrap());
            let mut buf = [0 as c_char; 64];
            assert_eq!(format(buf.as_mut_ptr(), 64, 42), 11, "{what}");
            assert_eq!(
                CStr::from_ptr(buf.as_ptr()).to_str().unwrap(),
                "value=42 ok"
            );
            let hello: extern "C" fn() -> c_int = func(set.lookup("say_hello").unwrap());
            assert_eq!(hello(), 24, "{what}");
            let libm: extern "C" fn(f64) -> f64 = func(set.lookup("call_libm").unwrap());
            assert_eq!(libm(16.0), 5.0, "{what}");
        }
    }
}

#[test]
fn c_constructors_destructors_and_atexit_in_order() {
    let _guard = serial();
    for tc in TOOLCHAINS {
        let what = tc.describe();
        take_log();
        let set = link(&[compile(tc, "ctors.c")]);
        // SAFETY: the initializers only call log_event and atexit.
        unsafe { set.run_initializers() };
        let init = take_log();
        assert_eq!(init.len(), 5, "{what}: {init:?}");
        let pos = |v: i32| {
            init.iter()
                .position(|&e| e == v)
                .unwrap_or_else(|| panic!("{what}: {v} missing: {init:?}"))
        };
        assert!(
            pos(101) < pos(200) && pos(200) < pos(300),
            "{what}: priorities: {init:?}"
        );
        assert!(
            pos(1002) < pos(1001),
            "{what}: .ctors runs last to first: {init:?}"
        );
        assert_eq!(set.objects()[0].pending_atexit_handlers(), 1, "{what}");
        // SAFETY: as above.
        unsafe { set.shut_down() };
        let fini = take_log();
        assert_eq!(
            fini.first(),
            Some(&-400),
            "{what}: atexit handlers run before finalizers: {fini:?}"
        );
        let pos = |v: i32| {
            fini.iter()
                .position(|&e| e == v)
                .unwrap_or_else(|| panic!("{what}: {v} missing: {fini:?}"))
        };
        assert!(
            pos(-1001) < pos(-1002),
            "{what}: .dtors runs first to last: {fini:?}"
        );
        assert!(fini.contains(&-300), "{what}");
        assert_eq!(set.objects()[0].pending_atexit_handlers(), 0);
    }
}

#[test]
fn cxx_static_constructors_and_destructors() {
    let _guard = serial();
    load_stdcxx();
    for tc in TOOLCHAINS {
        let what = tc.describe();
        take_log();
        let set = link(&[compile(tc, "cxx_ctors.cpp")]);
        // SAFETY: C++ initializers of cxx_ctors.cpp.
        unsafe { set.run_initializers() };
        assert_eq!(take_log(), vec![1, 2, 3], "{what}");
        // SAFETY: signatures from cxx_ctors.cpp.
        unsafe {
            let value: extern "C" fn() -> c_int = func(set.lookup("cxx_value").unwrap());
            assert_eq!(value(), 6, "{what}");
            let touch: extern "C" fn() = func(set.lookup("touch_function_static").unwrap());
            touch();
            touch();
        }
        assert_eq!(take_log(), vec![100], "{what}");
        assert_eq!(
            set.objects()[0].pending_atexit_handlers(),
            4,
            "{what}: destructors go to __cxa_atexit"
        );
        // SAFETY: destructors of cxx_ctors.cpp.
        unsafe { set.shut_down() };
        assert_eq!(take_log(), vec![-100, -3, -2, -1], "{what}");
    }
}

#[test]
fn cxx_exception_thrown_in_one_object_caught_in_another() {
    let _guard = serial();
    load_stdcxx();
    for tc in TOOLCHAINS {
        let what = tc.describe();
        take_log();
        let set = link(&[compile(tc, "cxx_throw.cpp"), compile(tc, "cxx_catch.cpp")]);
        // SAFETY: signatures from cxx_catch.cpp.
        unsafe {
            let catch_it: extern "C" fn(c_int) -> c_int = func(set.lookup("catch_it").unwrap());
            assert_eq!(catch_it(21), 42, "{what}");
            assert_eq!(
                take_log(),
                vec![7],
                "{what}: the guard's destructor ran during unwinding"
            );
            assert_eq!(catch_it(0), 0, "{what}");
            let catch_int: extern "C" fn() -> c_int = func(set.lookup("catch_int").unwrap());
            assert_eq!(catch_int(), 5, "{what}");
        }
    }
}

#[test]
fn cxx_standard_library_exceptions() {
    load_stdcxx();
    for tc in TOOLCHAINS {
        let what = tc.describe();
        let set = link(&[compile(tc, "cxx_std.cpp")]);
        // SAFETY: signatures from cxx_std.cpp.
        unsafe {
            let catch_std: extern "C" fn() -> c_int = func(set.lookup("catch_std").unwrap());
            assert_eq!(catch_std(), 42, "{what}");
            let len: extern "C" fn(*const c_char) -> c_int =
                func(set.lookup("string_len").unwrap());
            assert_eq!(len(c"twelve chars".as_ptr()), 12, "{what}");
        }
    }
}

extern "C-unwind" fn panicking_callback(x: c_int) {
    panic!("callback panicked with {x}");
}

#[test]
fn rust_panic_unwinds_through_jit_frame() {
    for tc in TOOLCHAINS {
        let what = tc.describe();
        let obj = ObjectFile::parse(
            "panic_through.c",
            compile_bytes(tc, "panic_through.c", &["-fexceptions"]),
        )
        .unwrap();
        let set = link(&[obj]);
        type Callback = extern "C-unwind" fn(c_int);
        // SAFETY: int call_back(void (*)(int), int), compiled with -fexceptions.
        let call_back: extern "C-unwind" fn(Callback, c_int) -> c_int =
            unsafe { func(set.lookup("call_back").unwrap()) };
        let result = std::panic::catch_unwind(|| call_back(panicking_callback, 3));
        let payload = result.expect_err("the panic must reach catch_unwind");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(msg, "callback panicked with 3", "{what}");
    }
}

#[test]
fn archive_members_are_pulled_on_demand() {
    let tc = &GCC_O2_PIC;
    let bytes = archive(tc, &["arch_unused.c", "arch_one.c", "arch_two.c"]);
    let ar = Archive::parse("libarch.a", &bytes).unwrap();
    assert_eq!(ar.members().len(), 3);
    let main = compile(tc, "archive_main.c");
    let pulled = select_archive_members(std::slice::from_ref(&main), std::slice::from_ref(&ar));
    let names: HashSet<String> = pulled.iter().map(|o| o.name().to_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.contains("arch_one") || n.contains("arch_two")),
        "{names:?}"
    );
    let mut objects = vec![main];
    objects.extend(pulled);
    let set = link(&objects);
    // SAFETY: int archive_entry(int).
    let entry: extern "C" fn(c_int) -> c_int =
        unsafe { func(set.lookup("archive_entry").unwrap()) };
    assert_eq!(entry(4), 14);
}

#[test]
fn comdat_groups_keep_one_copy() {
    load_stdcxx();
    // Both objects carry the typeinfo of MyError in COMDAT groups.
    let a = compile(&GCC_O2_PIC, "cxx_throw.cpp");
    let b = compile(&GCC_O2_PIC, "cxx_catch.cpp");
    let shared: HashSet<&str> = a.comdat_signatures().collect();
    assert!(
        b.comdat_signatures().any(|s| shared.contains(s)),
        "expected a shared COMDAT group"
    );
    let kept: HashSet<String> = a.comdat_signatures().map(str::to_owned).collect();
    let alloc = b.allocate(&kept).unwrap();
    assert!(
        alloc.symbols().keys().all(|n| !kept.contains(n)),
        "dropped groups define nothing"
    );
    assert!(
        alloc
            .external_symbols()
            .iter()
            .any(|u| kept.contains(&u.name)),
        "references go external"
    );
}
