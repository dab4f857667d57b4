//! `orc-ir-run`: a minimal `lli` on this crate, used by its tests and
//! benchmarks, and the reference for how the facade wires `orc run PROG.ll`
//! (the same dylib layout as the facade's `Jit`: `host` with the process,
//! libm and `-l` libraries; `main` for lookups; `main.impl` for code).
//!
//! ```text
//! orc-ir-run [--eager] [--threads N] [--opt O0|O1|O2|O3] [--pipeline P]
//!            [-l LIB]... [--stats] [--dump llvm-ir|asm] PROG.ll|PROG.bc [--] [ARG...]
//! ```
//!
//! Exit status: `main`'s, or 1 when the IR is invalid or cannot be loaded,
//! or 70 when a lazily compiled function fails to compile.

use std::ffi::{c_char, c_int, CString};
use std::sync::Arc;
use std::time::Instant;

use orc_core::lazy::LazyReexportsManager;
use orc_core::link::ObjectLinkingLayer;
use orc_core::{
    Dispatcher, DynamicLibrarySearchGenerator, ExecutionSession, InPlaceDispatcher,
    ThreadPoolDispatcher,
};
use orc_llvm::{LlvmCompiler, LlvmConfig, LlvmLayer};
use orc_llvm_ir::{IrProgram, IrTarget, LoadMode};

struct Options {
    mode: LoadMode,
    threads: usize,
    config: LlvmConfig,
    libraries: Vec<String>,
    stats: bool,
    file: String,
    args: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: orc-ir-run [--eager] [--threads N] [--opt O0..O3] [--pipeline P] [-l LIB]... \
         [--stats] [--dump llvm-ir|asm] PROG.ll|PROG.bc [--] [ARG...]"
    );
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut opts = Options {
        mode: LoadMode::Lazy,
        threads: 0,
        config: LlvmConfig::default(),
        libraries: Vec::new(),
        stats: false,
        file: String::new(),
        args: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--eager" => opts.mode = LoadMode::Eager,
            "--threads" => opts.threads = value().parse().unwrap_or_else(|_| usage()),
            "--opt" => opts.config.opt_level = value().parse().unwrap_or_else(|_| usage()),
            "--pipeline" => opts.config.pipeline = Some(value()),
            "-l" => opts.libraries.push(value()),
            "--stats" => opts.stats = true,
            "--dump" => match value().as_str() {
                "llvm-ir" => opts.config.capture_ir = true,
                "asm" => opts.config.capture_asm = true,
                _ => usage(),
            },
            "--" => {
                opts.args.extend(args.by_ref());
            }
            _ if opts.file.is_empty() && !arg.starts_with('-') => opts.file = arg,
            _ if !opts.file.is_empty() => opts.args.push(arg),
            _ => usage(),
        }
    }
    if opts.file.is_empty() {
        usage()
    }
    opts
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("{message}");
    std::process::exit(1)
}

/// The library a `-l NAME` names: a path, a soname, or `libNAME.so`.
fn library_path(name: &str) -> String {
    if name.contains('/') || name.contains(".so") {
        name.to_owned()
    } else {
        format!("lib{name}.so")
    }
}

fn main() {
    let opts = parse_args();
    let start = Instant::now();
    let program = IrProgram::load(&opts.file).unwrap_or_else(|e| fail(e));

    let dispatcher: Arc<dyn Dispatcher> = if opts.threads == 0 {
        Arc::new(InPlaceDispatcher)
    } else {
        Arc::new(ThreadPoolDispatcher::new(opts.threads).unwrap_or_else(|e| fail(e)))
    };
    let es = ExecutionSession::with_dispatcher(dispatcher);
    let host = es.create_jit_dylib("host").unwrap_or_else(|e| fail(e));
    host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))
        .unwrap_or_else(|e| fail(e));
    let libm = DynamicLibrarySearchGenerator::load("libm.so.6", None).unwrap_or_else(|e| fail(e));
    host.add_generator(Arc::new(libm))
        .unwrap_or_else(|e| fail(e));
    for lib in &opts.libraries {
        let generator = DynamicLibrarySearchGenerator::load(&library_path(lib), None)
            .unwrap_or_else(|e| fail(format!("orc-ir-run: error: -l {lib}: {e}")));
        host.add_generator(Arc::new(generator))
            .unwrap_or_else(|e| fail(e));
    }
    let main_jd = es.create_jit_dylib("main").unwrap_or_else(|e| fail(e));
    main_jd.add_to_link_order(&host).unwrap_or_else(|e| fail(e));
    let bodies = es.create_jit_dylib("main.impl").unwrap_or_else(|e| fail(e));
    bodies
        .set_link_order(&[&main_jd, &host])
        .unwrap_or_else(|e| fail(e));
    let objects = ObjectLinkingLayer::new(&es);
    let dump_ir = opts.config.capture_ir;
    let dump_asm = opts.config.capture_asm;
    let compiler = LlvmCompiler::new(opts.config).unwrap_or_else(|e| fail(e));
    let layer = LlvmLayer::new(compiler, objects.clone());
    if dump_ir || dump_asm {
        layer.set_observer(move |compiled| {
            for f in &compiled.functions {
                if let Some(ir) = &f.ir {
                    eprintln!("; optimized IR of {}\n{ir}", f.name);
                }
            }
            if let Some(asm) = &compiled.asm {
                eprintln!("; assembly of {}\n{asm}", compiled.name);
            }
        });
    }
    let lazy = LazyReexportsManager::new(&es).unwrap_or_else(|e| fail(e));

    let target = IrTarget {
        layer: &layer,
        lazy: &lazy,
        main: &main_jd,
        bodies: &bodies,
    };
    program
        .add(&target, opts.mode, None)
        .unwrap_or_else(|e| fail(e));
    // SAFETY: the initializers are the program's own static constructors,
    // run once before `main` as a C runtime would.
    unsafe { objects.run_initializers(&bodies) }.unwrap_or_else(|e| fail(e));
    let entry = main_jd
        .lookup_symbol("main")
        .unwrap_or_else(|e| fail(format!("orc-ir-run: error: no main: {e}")));

    let argv_owned: Vec<CString> = std::iter::once(opts.file.clone())
        .chain(opts.args.iter().cloned())
        .map(|a| CString::new(a).unwrap_or_else(|_| fail("argument contains NUL")))
        .collect();
    let mut argv: Vec<*const c_char> = argv_owned.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let argc = c_int::try_from(argv_owned.len()).unwrap_or(c_int::MAX);
    // SAFETY: `main` of a C program takes (int, char **, char **) and
    // returns int; programs declaring fewer parameters ignore the rest in
    // the C calling convention.
    let main_fn: extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int =
        unsafe { std::mem::transmute(entry.addr.to_ptr::<u8>()) };
    // SAFETY: `environ` is the process's environment, valid for the call.
    let envp = unsafe { libc::environ } as *const *const c_char;
    let status = main_fn(argc, argv.as_ptr(), envp);

    // SAFETY: fflush(NULL) flushes every C output stream.
    unsafe { libc::fflush(std::ptr::null_mut()) };
    if opts.stats {
        let stats = layer.stats();
        eprintln!(
            "orc-ir-run: {} modules ({} functions) compiled in {:.3} ms, {} failed; total {:.3} ms",
            stats.modules,
            stats.functions.len(),
            stats.total_time.as_secs_f64() * 1e3,
            stats.failures,
            start.elapsed().as_secs_f64() * 1e3,
        );
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "orc-ir-run: build {:.3} ms, verify {:.3} ms, optimize {:.3} ms, codegen {:.3} ms",
            ms(stats.phases.build),
            ms(stats.phases.verify),
            ms(stats.phases.optimize),
            ms(stats.phases.codegen),
        );
    }
    // Exit handlers and `llvm.global_dtors` run when the code's tracker is
    // removed: remove it first, while the stubs in `main` and the session
    // are still alive, then end the session.
    if let Err(e) = bodies
        .default_resource_tracker()
        .and_then(|tracker| tracker.remove())
    {
        eprintln!("orc-ir-run: error at exit: {e}");
    }
    if let Err(e) = es.end_session() {
        eprintln!("orc-ir-run: error at exit: {e}");
    }
    std::process::exit(status)
}
