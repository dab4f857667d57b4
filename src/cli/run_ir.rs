//! `orc run PROG.ll|PROG.bc`: our `lli`. The module is split into units
//! (globals, then one per function: compiled on first call) or compiled
//! whole with `--eager`; `llvm.global_ctors` run first, then
//! `main(argc, argv, envp)`, then exit handlers and `llvm.global_dtors`,
//! and the process exits with main's status.

use std::ffi::{c_char, c_int, CString};

use orc::Tier;
use orc_core::link::{load_library, LibraryFile, LibrarySearch, LoadedLibrary};
use orc_llvm::{LlvmConfig, LlvmOptLevel};
use orc_llvm_ir::{IrProgram, IrTarget, LoadMode};

use super::{print_stats, RunArgs};

/// Loads `-l NAME` libraries like `gcc ... -lNAME` would find them; shared
/// ones are opened with global visibility so generators see them. Archives
/// are not supported for IR programs.
fn load_libraries(names: &[String]) -> Result<Vec<libloading::Library>, String> {
    let search = LibrarySearch::new(Vec::new());
    let mut loaded = Vec::new();
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

pub(crate) fn run_ir(args: &RunArgs) -> i32 {
    let path = super::source::name(&args.file);
    // LLVM IR has no tier 0 yet: running it in tier 1 when another tier
    // was asked for would hide that.
    let asked = match args.jit.tier {
        Some(tier) => Some((tier, "--tier")),
        None => std::env::var("ORC_TIER")
            .ok()
            .and_then(|t| t.parse::<Tier>().ok())
            .map(|tier| (tier, "ORC_TIER")),
    };
    if let Some((tier @ (Tier::Zero | Tier::Adaptive), origin)) = asked {
        eprintln!(
            "orc: error: {path}: LLVM IR runs only in tier 1 ({origin} {tier} asked for tier 0 code, \
             which IR programs do not have yet); use --tier 1"
        );
        return 1;
    }
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
    let _libraries = match load_libraries(&args.libs) {
        Ok(libs) => libs,
        Err(e) => {
            eprintln!("orc: error: {e}");
            return 1;
        }
    };
    let jit = match args.jit.builder().tier(Tier::One).llvm_config(llvm).build() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("orc: error: cannot start the JIT: {e}");
            return 1;
        }
    };
    let status = match run_main(&jit, &program, args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("orc: error: {path}: {e}");
            1
        }
    };
    orc::host::flush_stdout();
    if args.jit.stats {
        print_stats(&jit);
    }
    // Exit handlers and global destructors run when the code's tracker is
    // removed: do it while the stubs in `main` still exist.
    if let Err(e) = jit
        .bodies_dylib()
        .default_resource_tracker()
        .and_then(|t| t.remove())
    {
        eprintln!("orc: error at exit: {e}");
    }
    orc::host::flush_stdout();
    status
}

fn run_main(jit: &orc::Jit, program: &IrProgram, args: &RunArgs) -> Result<i32, String> {
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
    program
        .add(&target, mode, None)
        .map_err(|e| e.to_string())?;
    // From here until `main` returns, an `exit` from the program tears it
    // down there (constructors may call `exit` too).
    let exit_teardown = ExitTeardown::arm(jit)?;
    // SAFETY: running the program's constructors is what running the
    // program means; the user asked for it.
    unsafe { jit.object_layer().run_initializers(jit.bodies_dylib()) }
        .map_err(|e| e.to_string())?;
    let entry = jit
        .lookup("main")
        .map_err(|e| format!("no main function: {e}"))?;
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
static EXIT_TRACKER: std::sync::Mutex<Option<orc_core::ResourceTracker>> =
    std::sync::Mutex::new(None);

fn set_exit_tracker(tracker: Option<orc_core::ResourceTracker>) {
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
        set_exit_tracker(Some(tracker));
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
/// `exit` (the C library has run the main thread's `thread_local`
/// destructors by then), removing the code's tracker runs the program's
/// exit handlers and global destructors, as a native `exit` would, before
/// the process ends. After `main` returns there is nothing to do here.
extern "C" fn teardown_at_exit() {
    let tracker = EXIT_TRACKER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(tracker) = tracker {
        orc::host::flush_stdout();
        if let Err(e) = tracker.remove() {
            eprintln!("orc: error at exit: {e}");
        }
        orc::host::flush_stdout();
    }
}

/// Runs the destructors the main thread registered for its `thread_local`
/// objects (`__cxa_thread_atexit`), as `exit` does before the exit
/// handlers: they are JIT code, which is gone once the tracker is removed.
/// glibc's `__call_tls_dtors` (what `exit` calls) empties the list, so the
/// process's own exit finds nothing more to run.
fn run_thread_local_destructors() {
    // SAFETY: `dlvsym` reads the two NUL-terminated names; a non-null
    // result is glibc's `void __call_tls_dtors(void)`, which `exit` calls
    // on this thread the same way.
    unsafe {
        let f = libc::dlvsym(
            libc::RTLD_DEFAULT,
            c"__call_tls_dtors".as_ptr(),
            c"GLIBC_PRIVATE".as_ptr(),
        );
        if !f.is_null() {
            let f: extern "C" fn() = std::mem::transmute(f);
            f();
        }
    }
}
