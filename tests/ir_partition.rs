//! What lazy partitioning must survive in real clang/clang++ output (issue
//! 22, "Must have" 1), and the lli-compatible behaviour of `orc run` (item
//! 4). Each program under `tests/ir_partition/` is compiled at test time
//! with clang-19/clang++-19 (several files joined with `llvm-link-19`) and
//! natively; `orc run` lazily (`--lazy-units reachable` and `function`,
//! and with two compile threads) and eagerly must print the same and exit
//! with the same status as the native binary, with nothing on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use orc_test_support::{build_program, describe, run, scratch};

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir_partition")
}

/// Compiles `sources` at `opt` to one IR file named `test.ext` and to a
/// native binary linked with `libs`; returns (ir, binary).
fn build(test: &str, sources: &[&str], opt: &str, ext: &str, libs: &[&str]) -> (PathBuf, PathBuf) {
    let sources: Vec<PathBuf> = sources.iter().map(|s| source_dir().join(s)).collect();
    let p = build_program(&scratch("ir-partition"), test, &sources, &[opt], ext, libs);
    (p.ir, p.native)
}

/// `orc run OPTIONS ir -- args`.
fn orc(options: &[&str], ir: &Path, args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_orc"))
        .arg("run")
        .args(options)
        .arg(ir)
        .arg("--")
        .args(args))
}

/// The program built from `sources` at each of `opts` behaves natively
/// (exit `status`, the same stdout) under every loading mode, for each
/// argument list in `runs` (with its expected status).
fn same_as_native(test: &str, sources: &[&str], opts: &[&str], ext: &str, runs: &[(&[&str], i32)]) {
    same_as_native_with(test, sources, opts, ext, runs, &[]);
}

fn same_as_native_with(
    test: &str,
    sources: &[&str],
    opts: &[&str],
    ext: &str,
    runs: &[(&[&str], i32)],
    libs: &[&str],
) {
    for opt in opts {
        let name = format!("{test}{opt}");
        let (ir, bin) = build(&name, sources, opt, ext, libs);
        let lib_options: Vec<String> = libs.iter().map(|l| format!("-l{l}")).collect();
        for &(args, status) in runs {
            let native = describe(&run(Command::new(&bin).args(args)));
            assert_eq!(
                native.0,
                Some(status),
                "{name} {args:?}: native exit status"
            );
            assert!(!native.1.is_empty(), "{name}: no output");
            for mode in [
                &[][..],
                &["--eager"][..],
                &["--lazy-units", "function"][..],
                &["--compile-threads", "2"][..],
            ] {
                let options: Vec<&str> = lib_options
                    .iter()
                    .map(String::as_str)
                    .chain(mode.iter().copied())
                    .collect();
                let out = orc(&options, &ir, args);
                assert_eq!(
                    describe(&out),
                    native,
                    "{name} {mode:?} {args:?}: orc differs from the native program; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    out.stderr.is_empty(),
                    "{name} {mode:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        if let Some(dir) = ir.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `blockaddress` tables (computed goto) are defined in their function's
/// unit; a function whose code holds another's block addresses (here
/// `main`, after inlining) is compiled with it.
#[test]
fn computed_goto_tables_live_with_their_function() {
    same_as_native(
        "cgoto",
        &["cgoto.c"],
        &["-O2", "-O0"],
        "ll",
        &[(&[], 42), (&["x", "y"], 44)],
    );
}

/// The same for a C++ inline function (`linkonce_odr`, its table in a
/// COMDAT group) defined by two files joined with `llvm-link-19`.
#[test]
fn computed_goto_in_an_inline_function_of_two_files() {
    same_as_native(
        "inline_goto",
        &["inline_goto_a.cpp", "inline_goto_b.cpp"],
        &["-O2", "-O0"],
        "ll",
        &[(&[], 19)],
    );
}

/// Exceptions thrown and caught in different units and files (the hidden
/// `DW.ref.__gxx_personality_v0` each object brings in its COMDAT group),
/// `linkonce_odr` inline functions, templates and function-local statics
/// defined by both files, vtables, private strings, internal and hidden
/// globals used by several units.
#[test]
fn exceptions_comdats_and_linkonce_odr_across_units() {
    same_as_native(
        "linkage",
        &["linkage_a.cpp", "linkage_b.cpp"],
        &["-O2", "-O0"],
        "ll",
        &[(&[], 6)],
    );
}

/// Aliases of functions (called and compared as pointers) and of
/// variables, and an ifunc called directly and through a pointer.
#[test]
fn aliases_and_ifuncs() {
    same_as_native(
        "alias",
        &["alias_ifunc.c"],
        &["-O2", "-O0"],
        "ll",
        &[(&[], 0)],
    );
}

/// C `__thread` (initialized, zeroed, arrays, structs, a pointer to a
/// thread's own copy) from threads created before and after main uses
/// them: emulated TLS in both modes.
#[test]
fn c_thread_locals_with_threads() {
    same_as_native("tls_c", &["tls_c.c"], &["-O2", "-O0"], "ll", &[(&[], 8)]);
}

/// C++ `thread_local` objects with constructors and destructors (run at
/// each thread's exit and at the main thread's), initialized and zeroed,
/// a template's `linkonce_odr` thread-local.
#[test]
fn cpp_thread_locals_with_constructors_and_destructors() {
    same_as_native(
        "tls_cpp",
        &["tls_cpp.cpp"],
        &["-O2", "-O0"],
        "ll",
        &[(&[], 1)],
    );
}

/// `constructor(N)`/`destructor(N)` priorities, `atexit` handlers from a
/// constructor and from main, and `exit()` called from a nested function
/// (the handlers and destructors still run, as natively).
#[test]
fn constructor_priorities_atexit_and_exit() {
    same_as_native(
        "ctors",
        &["ctors.c"],
        &["-O2"],
        "ll",
        &[(&[], 3), (&["7"], 7)],
    );
}

/// `exit()` from a constructor: the constructors already run registered
/// handlers, and the destructors still run, as natively.
#[test]
fn exit_from_a_constructor() {
    let (ir, bin) = build("ctors-exit", &["ctors.c"], "-O2", "ll", &[]);
    let native = describe(&run(Command::new(&bin).env("CTORS_EXIT", "1")));
    assert_eq!(native.0, Some(5));
    assert!(
        native.1.contains("exit from a constructor\n"),
        "{}",
        native.1
    );
    assert!(native.1.contains("dtor 101"), "{}", native.1);
    for mode in [&[][..], &["--eager"][..]] {
        let out = run(Command::new(env!("CARGO_BIN_EXE_orc"))
            .env("CTORS_EXIT", "1")
            .arg("run")
            .args(mode)
            .arg(&ir));
        assert_eq!(
            describe(&out),
            native,
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if let Some(dir) = ir.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Destructors of globals and `thread_local`s and an `atexit` handler call
/// functions nothing called before: a lazy run must have them compiled
/// (an exiting thread or the teardown cannot compile) and run them while
/// the code is alive.
#[test]
fn code_first_called_at_exit_or_thread_exit() {
    same_as_native(
        "teardown",
        &["teardown.cpp"],
        &["-O2", "-O0"],
        "ll",
        &[(&[], 0)],
    );
}

/// C++ dynamic initialization of two files joined with `llvm-link-19`
/// into bitcode: file order, `init_priority`, destructors in reverse, a
/// function-local static.
#[test]
fn cpp_static_initialization_order_across_files() {
    same_as_native(
        "init",
        &["init_a.cpp", "init_b.cpp"],
        &["-O2"],
        "bc",
        &[(&[], 0)],
    );
}

/// `-l NAME` loads a shared library the JIT process does not link; without
/// it the symbol is missing and the run fails naming it.
#[test]
fn shared_libraries_given_with_l() {
    same_as_native_with(
        "libcall",
        &["libcall.c"],
        &["-O2"],
        "ll",
        &[(&[], 60)],
        &["bz2"],
    );
    let (ir, _) = build("libcall-missing", &["libcall.c"], "-O2", "ll", &["bz2"]);
    for mode in [&[][..], &["--eager"][..]] {
        let out = orc(mode, &ir, &[]);
        assert_ne!(out.status.code(), Some(0), "{mode:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("undefined symbol BZ2_"),
            "{mode:?}: {stderr}"
        );
    }
    if let Some(dir) = ir.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The address of a thread-local in a constant (here a global's
/// initializer) has no emulated-TLS equivalent: a clear error naming the
/// variable, in both modes, before anything runs.
#[test]
fn thread_local_address_in_a_constant_is_a_clear_error() {
    let dir = scratch("tls-constant");
    let file = dir.join("tls_constant.ll");
    std::fs::write(
        &file,
        "@x = thread_local global i32 1\n\
         @p = global ptr @x\n\
         define i32 @main() {\n  ret i32 0\n}\n",
    )
    .unwrap();
    for mode in [&[][..], &["--eager"][..]] {
        let out = orc(mode, &file, &[]);
        assert_eq!(out.status.code(), Some(1), "{mode:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("thread-local variable 'x' has its address in a constant"),
            "{mode:?}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
