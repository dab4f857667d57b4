//! `orc run PROG.ll|PROG.bc`: our `lli`. The module is split into units
//! (globals, then one per function: compiled on first call) or compiled
//! whole with `--eager`; `llvm.global_ctors` run first, then
//! `main(argc, argv, envp)`, then exit handlers and `llvm.global_dtors`,
//! and the process exits with main's status.

use std::ffi::{c_char, c_int, c_void, CString};

use orc::Tier;
use orc_core::link::{load_library, LibraryFile, LoadedLibrary};

use super::libsearch::LibrarySearch;
use orc_llvm::{LlvmConfig, LlvmOptLevel};
use orc_llvm_ir::{IrProgram, IrTarget, LoadMode};

use super::{print_stats, RunArgs};

/// An error with its causes, `: `-separated (dlopen's reason included).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Loads `--load` files, then `-l NAME` libraries like `gcc ... -lNAME` would find them; shared
/// ones are opened with global visibility so generators see them. Archives
/// are not supported for IR programs.
fn load_libraries(args: &RunArgs) -> Result<Vec<libloading::Library>, String> {
    let mut loaded = Vec::new();
    for path in &args.load {
        if !path.is_file() {
            return Err(format!("--load {}: no such file", path.display()));
        }
        match load_library(&LibraryFile::Shared(path.clone()))
            .map_err(|e| format!("--load {}: {}", path.display(), error_chain(&e)))?
        {
            LoadedLibrary::Shared(lib) => loaded.push(lib),
            LoadedLibrary::Archive(_) => {}
        }
    }
    let names = &args.libs;
    let search = LibrarySearch::new(args.lib_dirs.clone());
    for name in names {
        let files = search.find(name).map_err(|e| format!("-l{name}: {e}"))?;
        for file in files {
            match &file {
                LibraryFile::Shared(_) => {
                    match load_library(&file).map_err(|e| format!("-l{name}: {e}"))? {
                        LoadedLibrary::Shared(lib) => loaded.push(lib),
                        LoadedLibrary::Archive(_) => {}
                    }
                }
                LibraryFile::Archive(path) => {
                    return Err(format!(
                        "-l{name}: {} is a static archive; IR programs need a shared library",
                        path.display()
                    ))
                }
            }
        }
    }
    Ok(loaded)
}

/// What `add_tiered` reported, for `--stats` at the end.
static TIERED_REPORT: std::sync::Mutex<Option<orc::llvm_ir::TieredIrReport>> =
    std::sync::Mutex::new(None);

/// Which functions ran in tier 1 only (the translation to CLIF did not
/// take them: found at load when eager, at first call when lazy).
fn print_tiered_ir_stats(jit: &orc::Jit) {
    let Some(report) = TIERED_REPORT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        return;
    };
    let mut tier1_only = report.tier1_only;
    // A lazy load tiers every function; those without CLIF fell back.
    let fallbacks = jit
        .tiered_if_created()
        .map(|l| l.fallbacks())
        .unwrap_or_default();
    let tiered = report.tiered - fallbacks.len().min(report.tiered);
    tier1_only.extend(fallbacks);
    for (function, why) in &tier1_only {
        eprintln!("orc: stats: '{function}' runs in tier 1 only: its IR uses {why}, which the translation to CLIF does not cover");
    }
    eprintln!(
        "orc: stats: IR functions: {} tiered, {} in tier 1 only",
        tiered,
        tier1_only.len()
    );
}

/// The tier of IR programs when neither `--tier` nor `ORC_TIER` says:
/// adaptive, chosen by `cargo bench --bench ir_tiers` (session 13, one run,
/// times against lli-19): on 1,500 functions each called once it starts in
/// 0.18x (tier 1 alone: 0.25x, over the 0.2x; tier 0: 0.15x); on
/// CPU-bound kernels of about a second its total is 1.11x (tier 1: 1.05x,
/// tier 0: 1.64x); a program calling one function of 1,500 starts in
/// 0.08-0.10x in every tier.
const DEFAULT_TIER: Tier = Tier::Adaptive;

pub(crate) fn run_ir(args: &RunArgs) -> i32 {
    let path = super::source::name(&args.file);
    let tier = match args.jit.tier {
        Some(tier) => tier,
        None => std::env::var("ORC_TIER")
            .ok()
            .and_then(|t| t.parse::<Tier>().ok())
            .unwrap_or(DEFAULT_TIER),
    };
    let loaded = match super::source::read(&args.file) {
        Ok(bytes) => IrProgram::parse(super::source::name(&args.file), bytes),
        Err(e) => {
            eprintln!("orc: error: {e}");
            return 1;
        }
    };
    let program = match loaded {
        Ok(p) if args.lazy_units == super::LazyUnits::Function => {
            p.with_speculation(orc_llvm_ir::SpeculationLimits::NONE)
        }
        Ok(p) => p,
        // LLVM's diagnostic already reads `FILE:LINE:COL: error: ...`.
        Err(e @ orc_llvm_ir::IrError::Invalid(_)) => {
            eprintln!("{e}");
            return 1;
        }
        Err(e) => {
            eprintln!("orc: error: {e}");
            return 1;
        }
    };
    // Like lli: code generation only, unless an IR pipeline is asked for.
    let llvm = match args.jit.llvm_opt_level {
        Some(level) => LlvmConfig {
            opt_level: level,
            ..LlvmConfig::default()
        },
        None => LlvmConfig::codegen_only(LlvmOptLevel::O2),
    };
    let _libraries = match load_libraries(args) {
        Ok(libs) => libs,
        Err(e) => {
            eprintln!("orc: error: {e}");
            return 1;
        }
    };
    let jit = match args.jit.builder().tier(tier).llvm_config(llvm).build() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("orc: error: cannot start the JIT: {e}");
            return 1;
        }
    };
    // A failed compile or link reaches the lookup or the lazy call that
    // waited for it, which reports it once: the session need not.
    jit.session().set_error_reporter(|e| {
        // Once the executor has ended (the program called `exit`), a
        // tier-up still compiling cannot publish: nothing to report.
        let ended = orc::oop::executor().is_some_and(|x| x.is_dead());
        if !ended && !matches!(e, orc_core::Error::FailedToMaterialize { .. }) {
            eprintln!("orc: error: {e}");
        }
    });
    let status = match run_main(&jit, &program, tier, args) {
        Ok(status) => status,
        Err(e) => {
            // A dead executor is reported just below, once.
            if orc::oop::executor_end().is_none() {
                eprintln!("orc: error: {path}: {e}");
            }
            1
        }
    };
    if let Some((report, status)) = orc::oop::executor_end() {
        // The program crashed its executor, or called `exit` there.
        if let Some(report) = report {
            eprintln!("orc: error: {path}: {report}");
        }
        return status;
    }
    orc::host::flush_stdout();
    if args.jit.stats {
        print_tiered_ir_stats(&jit);
        print_stats(&jit);
        if let (Some(layer), Some(_)) = (jit.tiered_if_created(), jit.tier_manager()) {
            let stats = layer.stats();
            let moved: Vec<String> = stats
                .iter()
                .filter(|f| f.osr_transfers > 0)
                .map(|f| format!("{} {}", f.name, f.osr_transfers))
                .collect();
            let total: u64 = stats.iter().map(|f| f.osr_transfers).sum();
            eprintln!(
                "orc: stats: on-stack replacement: {total} frames moved to tier 1{}{}",
                if moved.is_empty() { "" } else { ": " },
                moved.join(", ")
            );
        }
    }
    // Exit handlers and global destructors run, then the code goes, while
    // the stubs in `main` still exist.
    match jit.bodies_dylib().default_resource_tracker() {
        Ok(tracker) => tear_down(&exit_state(&jit, tracker)),
        Err(e) => eprintln!("orc: error at exit: {e}"),
    }
    if let Some(executor) = orc::oop::executor() {
        // The executor ends as `exit(status)` ends a program: its C exit
        // handlers run, its streams are flushed.
        if let Some((report, status)) = executor.exit(status).map(orc::oop::describe_end) {
            if let Some(report) = report {
                eprintln!("orc: error: {path}: {report}");
            }
            return status;
        }
    }
    status
}

/// Ends the program: lets promotions in flight finish (they link against
/// its data), runs its exit handlers and global destructors as `exit`
/// would, all before any code goes (a tiered program's code is under a
/// tracker per function version, and a handler may call into any of them,
/// or a function nothing called before, which is compiled then), then
/// removes its code.
fn tear_down(state: &ExitState) {
    orc::host::flush_stdout();
    if let Some(tiers) = &state.tiers {
        tiers.shutdown();
    }
    // SAFETY: running the program's exit handlers and destructors is what
    // ending the program means, as `exit` does natively.
    unsafe { state.layer.run_exit_handlers(&state.bodies) };
    if let Err(e) = state.tracker.remove() {
        eprintln!("orc: error at exit: {e}");
    }
    orc::host::flush_stdout();
}

fn run_main(
    jit: &orc::Jit,
    program: &IrProgram,
    tier: Tier,
    args: &RunArgs,
) -> Result<i32, String> {
    let layer = jit.llvm_layer().map_err(|e| e.to_string())?;
    let target = IrTarget {
        layer,
        lazy: jit.lazy_reexports(),
        main: jit.main_dylib(),
        bodies: jit.bodies_dylib(),
    };
    let mode = if args.jit.eager {
        LoadMode::Eager
    } else {
        LoadMode::Lazy
    };
    // In an executor, `exit` and thread-exit destructors are its C
    // library's: the process is the program's alone.
    let oop = orc::oop::executor();
    if oop.is_none() {
        define_thread_atexit(jit)?;
    }
    if tier == Tier::One {
        program
            .add(&target, mode, None)
            .map_err(|e| e.to_string())?;
    } else {
        let report = orc::llvm_ir::add_tiered(jit, program, mode).map_err(|e| e.to_string())?;
        *TIERED_REPORT.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
    }
    // From here until `main` returns, an `exit` from the program tears it
    // down there (constructors may call `exit` too).
    let exit_teardown = if oop.is_none() {
        Some(ExitTeardown::arm(jit)?)
    } else {
        None
    };
    // SAFETY: running the program's constructors is what running the
    // program means; the user asked for it.
    unsafe { jit.object_layer().run_initializers(jit.bodies_dylib()) }
        .map_err(|e| e.to_string())?;
    let entry = match jit.lookup("main") {
        Ok(entry) => entry,
        Err(e) if program.defines("main") => {
            // `main` exists: compiling or linking it (or what it needs now)
            // failed, as a lazy call fails when the code runs.
            let mut cause = &e;
            while let orc_core::Error::FailedToMaterialize { cause: inner, .. } = cause {
                cause = inner;
            }
            eprintln!("orc: error: {cause}");
            return Ok(orc_core::lazy::LAZY_COMPILE_FAILURE_EXIT_CODE);
        }
        Err(e) => return Err(format!("no main function: {e}")),
    };
    if let Some(executor) = oop {
        let argv = std::iter::once(args.file.display().to_string())
            .chain(args.args.iter().cloned())
            .collect();
        return executor.run_main(entry.0, argv);
    }
    let argv_owned: Vec<CString> = std::iter::once(args.file.display().to_string())
        .chain(args.args.iter().cloned())
        .map(|a| CString::new(a).map_err(|_| "an argument contains a NUL byte".to_owned()))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const c_char> = argv_owned.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let argc = c_int::try_from(argv_owned.len()).unwrap_or(c_int::MAX);
    // SAFETY: a C `main` takes (int, char **, char **) and returns int; one
    // declaring fewer parameters ignores the rest in the C convention.
    let main_fn: extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int =
        unsafe { std::mem::transmute(entry.to_ptr::<u8>()) };
    // SAFETY: `environ` is the process's environment, valid for the call.
    let envp = unsafe { libc::environ } as *const *const c_char;
    let _inside = jit.enter();
    let status = main_fn(argc, argv.as_ptr(), envp);
    drop(exit_teardown);
    run_thread_local_destructors();
    Ok(status)
}

/// The program's code and data while `main` runs: if the program calls
/// `exit`, [`teardown_at_exit`] removes them there.
struct ExitState {
    tracker: orc_core::ResourceTracker,
    layer: std::sync::Arc<orc_core::link::ObjectLinkingLayer>,
    bodies: orc_core::JitDylib,
    tiers: Option<std::sync::Arc<orc_core::TierManager>>,
}

fn exit_state(jit: &orc::Jit, tracker: orc_core::ResourceTracker) -> ExitState {
    ExitState {
        tracker,
        layer: jit.object_layer().clone(),
        bodies: jit.bodies_dylib().clone(),
        tiers: jit.tier_manager().cloned(),
    }
}

static EXIT_TRACKER: std::sync::Mutex<Option<ExitState>> = std::sync::Mutex::new(None);

fn set_exit_tracker(tracker: Option<ExitState>) {
    let mut slot = EXIT_TRACKER.lock().unwrap_or_else(|e| e.into_inner());
    *slot = tracker;
}

/// While alive, the program's code tracker is [`EXIT_TRACKER`] (and
/// [`teardown_at_exit`] is registered with the C library).
struct ExitTeardown;

impl ExitTeardown {
    fn arm(jit: &orc::Jit) -> Result<ExitTeardown, String> {
        let tracker = jit
            .bodies_dylib()
            .default_resource_tracker()
            .map_err(|e| e.to_string())?;
        set_exit_tracker(Some(exit_state(jit, tracker)));
        static REGISTER: std::sync::Once = std::sync::Once::new();
        // SAFETY: `teardown_at_exit` is an `extern "C" fn()` that stays
        // valid for the life of the process (it is part of this binary).
        REGISTER.call_once(|| unsafe {
            libc::atexit(teardown_at_exit);
        });
        Ok(ExitTeardown)
    }
}

impl Drop for ExitTeardown {
    fn drop(&mut self) {
        set_exit_tracker(None);
    }
}

/// Registered with the C library's `atexit`: when the program calls
/// `exit`, runs the main thread's `thread_local` destructors (if `exit` was
/// called there), then the program's exit handlers and global
/// destructors, and removes its code ([`tear_down`]): a native `exit`'s
/// order, before the process ends. After `main` returns there is nothing
/// to do here.
extern "C" fn teardown_at_exit() {
    let state = EXIT_TRACKER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(state) = state {
        let on_main = MAIN_THREAD.get().is_some_and(|&main| {
            // SAFETY: `pthread_self` and `pthread_equal` have no
            // preconditions.
            unsafe { libc::pthread_equal(main, libc::pthread_self()) != 0 }
        });
        if on_main {
            run_thread_local_destructors();
        }
        tear_down(&state);
    }
}

/// The main thread's `thread_local` destructors the program registered,
/// in registration order: `(destructor, object)`.
static MAIN_THREAD_DTORS: std::sync::Mutex<Vec<(usize, usize)>> = std::sync::Mutex::new(Vec::new());

/// The thread that runs `main`.
static MAIN_THREAD: std::sync::OnceLock<libc::pthread_t> = std::sync::OnceLock::new();

extern "C" {
    /// glibc's registration of a thread-exit destructor (what
    /// `__cxa_thread_atexit` calls).
    fn __cxa_thread_atexit_impl(
        dtor: extern "C" fn(*mut c_void),
        obj: *mut c_void,
        dso_symbol: *mut c_void,
    ) -> c_int;
}

/// The program's `__cxa_thread_atexit` (and `_impl`): a destructor of a
/// `thread_local` object. On other threads it goes to the C library and runs
/// when the thread exits, while the code is alive. On the main thread it is
/// kept here and run by [`run_thread_local_destructors`] when `main`
/// returns or the program calls `exit`, before the code goes away: the C
/// library would run it at the process's exit, after the teardown. (Running
/// the C library's own list early instead would also destroy the
/// thread-locals of the JIT itself, which the teardown still needs.)
extern "C" fn thread_atexit(
    dtor: extern "C" fn(*mut c_void),
    obj: *mut c_void,
    dso_symbol: *mut c_void,
) -> c_int {
    // SAFETY: `pthread_self` and `pthread_equal` have no preconditions.
    let on_main = MAIN_THREAD
        .get()
        .is_some_and(|&main| unsafe { libc::pthread_equal(main, libc::pthread_self()) } != 0);
    if on_main {
        let mut list = MAIN_THREAD_DTORS.lock().unwrap_or_else(|e| e.into_inner());
        list.push((dtor as usize, obj as usize));
        0
    } else {
        // SAFETY: forwarding the program's own arguments to the C library,
        // which is what `__cxa_thread_atexit` does.
        unsafe { __cxa_thread_atexit_impl(dtor, obj, dso_symbol) }
    }
}

/// [`thread_atexit`] for a program whose `main` runs on this thread (what
/// `orc link` defines as `__cxa_thread_atexit` and `_impl`).
pub(crate) fn thread_atexit_for_this_thread() -> *const u8 {
    // SAFETY: `pthread_self` has no preconditions.
    let _ = MAIN_THREAD.set(unsafe { libc::pthread_self() });
    thread_atexit as extern "C" fn(_, _, _) -> c_int as *const u8
}

/// [`run_thread_local_destructors`] if this is the program's main thread
/// (as `exit` runs only the calling thread's).
pub(crate) fn run_thread_local_destructors_on_main() {
    // SAFETY: `pthread_self` and `pthread_equal` have no preconditions.
    let on_main = MAIN_THREAD
        .get()
        .is_some_and(|&main| unsafe { libc::pthread_equal(main, libc::pthread_self()) } != 0);
    if on_main {
        run_thread_local_destructors();
    }
}

/// Defines [`thread_atexit`] as `__cxa_thread_atexit` and
/// `__cxa_thread_atexit_impl` for the program.
fn define_thread_atexit(jit: &orc::Jit) -> Result<(), String> {
    // SAFETY: `pthread_self` has no preconditions.
    let _ = MAIN_THREAD.set(unsafe { libc::pthread_self() });
    let es = jit.host_dylib().session();
    let flags = orc_core::SymbolFlags::EXPORTED | orc_core::SymbolFlags::CALLABLE;
    let f = thread_atexit as extern "C" fn(_, _, _) -> c_int as *const u8;
    let def = orc_core::ExecutorSymbolDef::new(orc_core::ExecutorAddr::from_ptr(f), flags);
    let exit = program_exit as extern "C" fn(c_int) -> ! as *const u8;
    let exit = orc_core::ExecutorSymbolDef::new(orc_core::ExecutorAddr::from_ptr(exit), flags);
    let map = orc_core::SymbolMap::from([
        (es.intern("__cxa_thread_atexit"), def),
        (es.intern("__cxa_thread_atexit_impl"), def),
        (es.intern("exit"), exit),
    ]);
    jit.host_dylib()
        .define(orc_core::absolute_symbols(map), None)
        .map_err(|e| e.to_string())
}

/// The program's `exit`: tears the program down as [`teardown_at_exit`]
/// does, flushes stdio and ends the process at once. Not through libc's
/// `exit`: that would run the host's static destructors (LLVM's among
/// them) while a tier-up compile may still be running on another thread.
extern "C" fn program_exit(status: c_int) -> ! {
    teardown_at_exit();
    orc::host::flush_stdout();
    // SAFETY: `fflush(NULL)` flushes every C stdio stream; `_exit` ends the
    // process without returning into any JIT'd frame (whose code the
    // teardown may have unmapped) and without running static destructors
    // under threads still using what they destroy.
    unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::_exit(status)
    }
}

/// Runs the main thread's `thread_local` destructors (see
/// [`thread_atexit`]), last registered first, as the C library would.
fn run_thread_local_destructors() {
    loop {
        let next = MAIN_THREAD_DTORS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let Some((dtor, obj)) = next else { break };
        // SAFETY: `dtor` was registered by the program as a
        // `void (*)(void *)` for `obj`, and runs once, as it would at exit.
        let dtor: extern "C" fn(*mut c_void) = unsafe { std::mem::transmute(dtor) };
        dtor(obj as *mut c_void);
    }
}
