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

/// The tier of IR programs when neither `--tier` nor `ORC_TIER` says.
const DEFAULT_TIER: Tier = Tier::One;

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
        if !matches!(e, orc_core::Error::FailedToMaterialize { .. }) {
            eprintln!("orc: error: {e}");
        }
    });
    let status = match run_main(&jit, &program, tier, args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("orc: error: {path}: {e}");
            1
        }
    };
    orc::host::flush_stdout();
    if args.jit.stats {
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
    // Promotions in flight link against the program's data: let them
    // finish (no new ones start) before the teardown removes it.
    if let Some(tiers) = jit.tier_manager() {
        tiers.shutdown();
    }
    // Exit handlers and global destructors run as `exit` would run them,
    // all before any code goes: a tiered program's code is under a tracker
    // per function version, and a handler may call into any of them.
    // SAFETY: the program's own handlers, registered by its code, run
    // where its `exit` would run them.
    unsafe { jit.object_layer().run_exit_handlers(jit.bodies_dylib()) };
    // Then the code goes, while the stubs in `main` still exist.
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
    if tier == Tier::One {
        program
            .add(&target, mode, None)
            .map_err(|e| e.to_string())?;
    } else {
        let report = orc::llvm_ir::add_tiered(jit, program, mode).map_err(|e| e.to_string())?;
        if args.jit.stats {
            for (function, why) in &report.tier1_only {
                eprintln!("orc: stats: '{function}' runs in tier 1 only: its IR uses {why}, which the translation to CLIF does not cover");
            }
            eprintln!(
                "orc: stats: IR functions: {} tiered, {} in tier 1 only",
                report.tiered,
                report.tier1_only.len()
            );
        }
    }
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
    Ok(main_fn(argc, argv.as_ptr(), envp))
}
