//! `orc link`: this project's `llvm-jitlink`. Links relocatable objects and
//! static archives into one JIT dylib of a fresh session, the way `ld` would
//! link them into an executable, then runs the program in this process.
//!
//! The dylib `main` holds the objects (plus the archive members they pull
//! in, chosen as a static linker chooses them) and links against `host`,
//! which holds this file's replacement for `exit` and then every symbol of
//! the process, including the `-l` libraries (`dlopen`ed globally first).
//! Every defined symbol is looked up up front, so the whole program is
//! linked (and every undefined reference reported) before anything runs.
//!
//! Teardown invariant: JIT'd exit handlers and finalizers run exactly once,
//! before the code is unmapped and before stdio is flushed, whether the
//! entry point returns or the program calls `exit`: the `exit` JIT'd code
//! calls ends the session (running them) and then calls libc's `exit`,
//! which runs the host's own exit handlers and flushes stdio, as in a
//! gcc-linked program. The session to end lives in [`TEARDOWN`] while the
//! program runs; whoever takes it out ends it.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::libsearch::LibrarySearch;
use clap::Args;
use orc::core::link::{
    load_library, select_archive_members, Archive, LibraryFile, LoadedLibrary, ObjectFile,
    ObjectLinkingLayer,
};
use orc::core::{
    absolute_symbols, DynamicLibrarySearchGenerator, Error, ExecutionSession, ExecutorAddr,
    ExecutorSymbolDef, JitDylib, JitDylibLookupFlags, SymbolFlags, SymbolLookupSet, SymbolMap,
    SymbolState,
};

/// Link ELF objects and archives in memory and run them (like llvm-jitlink)
///
/// Options and inputs come in any order before `--`, as with `ld`; what
/// follows `--` is the program's argv[1..]. The exit status is the entry
/// point's return value, or `exit`'s argument; 1 if linking fails.
#[derive(Args, Debug)]
pub(crate) struct LinkArgs {
    /// The function to call as `int SYM(int argc, char **argv, char **envp)`.
    #[arg(long, value_name = "SYM", default_value = "main")]
    entry: String,
    /// Link against library NAME, searched as `gcc -lNAME` would.
    #[arg(short = 'l', value_name = "NAME")]
    libraries: Vec<String>,
    /// Search DIR for `-l` libraries before the compiler's and system's.
    #[arg(short = 'L', value_name = "DIR")]
    library_dirs: Vec<PathBuf>,
    /// Link (materializing every symbol) but run nothing.
    #[arg(long)]
    noexec: bool,
    /// Print the time of each phase on stderr.
    #[arg(long)]
    show_times: bool,
    /// Run the program in an executor process (`orc executor`): a crash
    /// ends only it, reported with its signal (exit status 128 + N).
    #[arg(long)]
    oop: bool,
    #[command(flatten)]
    remote: super::RemoteArgs,
    #[command(flatten)]
    debug: super::DebugArgs,
    /// Print the machine code of every linked object on stderr,
    /// disassembled where it was loaded (`asm`, the one dump a link has).
    #[arg(long, value_enum, value_name = "asm")]
    dump: Option<LinkDump>,
    /// Relocatable objects and static archives (`.a`); shared objects are
    /// loaded like `-l` libraries.
    #[arg(required = true, value_name = "OBJ_OR_ARCHIVE")]
    inputs: Vec<PathBuf>,
    /// Arguments for the program: argv[1..] (argv[0] is the first object).
    #[arg(last = true, value_name = "ARG")]
    program_args: Vec<OsString>,
}

/// What `orc link --dump` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LinkDump {
    /// Machine code, disassembled at its final addresses.
    Asm,
}

impl LinkArgs {
    /// Whether the program runs in a child executor (`--oop`).
    pub(crate) fn oop(&self) -> bool {
        self.oop
    }
}

/// Runs `orc link`; returns the process exit status (unless the program
/// calls `exit`, which ends the process from [`exit_from_jit`]).
pub(crate) fn link(args: &LinkArgs) -> i32 {
    let mut times = Times::new(args.show_times);
    let spec = match args.remote.spec() {
        Ok(Some(spec)) => Some(spec),
        Ok(None) if args.oop => Some(orc::oop::ExecutorSpec::Child(
            orc::oop::ExecutorCommand::this_executable(&[orc::oop::EXECUTOR_ARG]),
        )),
        Ok(None) => None,
        Err(e) => return error(&e),
    };
    if let Some(spec) = spec {
        if let Err(e) = orc::oop::start(&spec) {
            return error(&e.to_string());
        }
    }
    let es = ExecutionSession::new();
    // Failures reach us through the lookups, which say it better.
    es.set_error_reporter(|_| {});
    match prepare(&es, args, &mut times) {
        Ok(Some(program)) => program.run(es, times),
        Ok(None) => {
            let res = es.end_session();
            times.lap("teardown");
            times.print();
            match res {
                Ok(()) => 0,
                Err(e) => error(&describe(&e)),
            }
        }
        Err(message) => {
            // Nothing JIT'd ran: ending only frees the memory.
            let _ = es.end_session();
            error(&message)
        }
    }
}

fn error(message: &str) -> i32 {
    eprintln!("orc: error: {message}");
    1
}

/// Phase timings for `--show-times` (always taken; printed on request).
struct Times {
    show: bool,
    last: Instant,
    phases: Vec<(&'static str, Duration)>,
}

impl Times {
    fn new(show: bool) -> Self {
        Times {
            show,
            last: Instant::now(),
            phases: Vec::new(),
        }
    }

    /// Records the time since the previous lap as `phase`.
    fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.phases.push((phase, now - self.last));
        self.last = now;
    }

    fn print(&self) {
        if !self.show {
            return;
        }
        let ms = |t: Duration| t.as_secs_f64() * 1e3;
        for (phase, t) in &self.phases {
            eprintln!("orc: time: {phase:<18} {:>10.3} ms", ms(*t));
        }
        let total = self.phases.iter().map(|(_, t)| *t).sum();
        eprintln!("orc: time: {:<18} {:>10.3} ms", "total", ms(total));
    }
}

/// What ending the running program needs.
struct Teardown {
    session: ExecutionSession,
    times: Times,
}

/// The running program's teardown; see the module docs.
static TEARDOWN: Mutex<Option<Teardown>> = Mutex::new(None);

fn take_teardown() -> Option<Teardown> {
    TEARDOWN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

impl Teardown {
    /// Ends the session (running the program's exit handlers and
    /// finalizers) and prints the times.
    fn run(mut self) -> Result<(), String> {
        self.times.lap("run");
        super::run_ir::run_thread_local_destructors_on_main();
        let res = self.session.end_session();
        self.times.lap("teardown");
        self.times.print();
        res.map_err(|e| describe(&e))
    }
}

/// The `exit` JIT'd code calls: ends the session, then exits through libc
/// (which flushes stdio). An `exit` from an exit handler (the session is
/// already ending) goes straight to libc.
extern "C" fn exit_from_jit(status: c_int) -> ! {
    if let Some(Err(message)) = take_teardown().map(Teardown::run) {
        error(&message);
    }
    orc::host::flush_stdout();
    // SAFETY: exit never returns, so no JIT'd frame below this one is
    // returned into after its code was unmapped; libc runs the host's exit
    // handlers and flushes stdio.
    unsafe { libc::exit(status) }
}

/// The inputs, read and parsed, and the `-l` libraries, loaded.
struct Inputs {
    objects: Vec<ObjectFile>,
    archives: Vec<Archive>,
    /// Kept loaded until the process exits, as a program's libraries are.
    libraries: Vec<LoadedLibrary>,
    /// The path of the first object, the program's argv[0].
    first_object: PathBuf,
}

fn load_inputs(args: &LinkArgs) -> Result<Inputs, String> {
    let mut inputs = Inputs {
        objects: Vec::new(),
        archives: Vec::new(),
        libraries: Vec::new(),
        first_object: PathBuf::new(),
    };
    for path in &args.inputs {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        if bytes.starts_with(b"!<arch>\n") {
            let archive = Archive::parse(name, &bytes).map_err(|e| e.to_string())?;
            inputs.archives.push(archive);
        } else if is_shared_object(&bytes) {
            let lib = load_library(&LibraryFile::Shared(path.clone())).map_err(|e| chain(&e))?;
            inputs.libraries.push(lib);
        } else {
            let object = ObjectFile::parse(name, bytes).map_err(|e| e.to_string())?;
            if inputs.objects.is_empty() {
                inputs.first_object = path.clone();
            }
            inputs.objects.push(object);
        }
    }
    if !args.libraries.is_empty() {
        let search = LibrarySearch::new(args.library_dirs.iter().cloned());
        for name in &args.libraries {
            for file in search.find(name).map_err(|e| e.to_string())? {
                match load_library(&file).map_err(|e| chain(&e))? {
                    LoadedLibrary::Archive(archive) => inputs.archives.push(archive),
                    shared => inputs.libraries.push(shared),
                }
            }
        }
    }
    if inputs.objects.is_empty() {
        return Err("no relocatable object among the inputs".into());
    }
    Ok(inputs)
}

/// An ELF file of type `ET_DYN` (a shared object).
fn is_shared_object(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF") && bytes.get(16..18) == Some(&[3, 0][..])
}

/// The program, linked, ready to initialize and run.
struct Program {
    layer: Arc<ObjectLinkingLayer>,
    main: JitDylib,
    entry: ExecutorAddr,
    argv: Vec<CString>,
    libraries: Vec<LoadedLibrary>,
}

/// Loads the inputs into a new dylib of `es` and links everything. `None`
/// under `--noexec`.
fn prepare(
    es: &ExecutionSession,
    args: &LinkArgs,
    times: &mut Times,
) -> Result<Option<Program>, String> {
    let fail = |e: Error| describe(&e);
    let Inputs {
        objects,
        archives,
        libraries,
        first_object,
    } = load_inputs(args)?;
    let layer = ObjectLinkingLayer::new(es);
    if args.dump == Some(LinkDump::Asm) {
        layer.add_plugin(Arc::new(orc::asm::AsmDumpPlugin::to_stderr()));
    }
    if args.debug.debugger() {
        layer.add_plugin(Arc::new(orc::core::debug::GdbJitPlugin));
    }
    if args.debug.perf() {
        layer.add_plugin(Arc::new(orc::core::debug::PerfPlugin::new()));
    }
    let host = es.create_jit_dylib("host").map_err(fail)?;
    let exit_def = ExecutorSymbolDef::new(
        ExecutorAddr::from_ptr(exit_from_jit as *const u8),
        SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
    );
    // Thread-local destructors of the main thread run before the teardown
    // (glibc would run them at exit, after the code is gone).
    let thread_atexit = ExecutorSymbolDef::new(
        ExecutorAddr::from_ptr(super::run_ir::thread_atexit_for_this_thread()),
        SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
    );
    let overrides = SymbolMap::from([
        (es.intern("exit"), exit_def),
        (es.intern("__cxa_thread_atexit"), thread_atexit),
        (es.intern("__cxa_thread_atexit_impl"), thread_atexit),
    ]);
    // In an executor the program's `exit` and thread-exit destructors are
    // its C library's: the process is the program's alone.
    if orc::oop::executor().is_none() {
        host.define(absolute_symbols(overrides), None)
            .map_err(fail)?;
    }
    host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))
        .map_err(fail)?;
    let main = es.create_jit_dylib("main").map_err(fail)?;
    main.add_to_link_order(&host).map_err(fail)?;

    let members = select_archive_members(&objects, &archives);
    let objects: Vec<ObjectFile> = objects.into_iter().chain(members).collect();
    add_objects(&layer, &main, &objects)?;
    times.lap("parse/add");

    materialize_all(es, &main, &objects)?;
    times.lap("link+materialize");
    if args.noexec {
        // Like a program's, the libraries stay loaded until the process
        // exits (unloading them could run their destructors early).
        std::mem::forget(libraries);
        return Ok(None);
    }

    let entry = find_entry(es, &main, &args.entry)?;
    let argv = std::iter::once(first_object.as_os_str())
        .chain(args.program_args.iter().map(|a| a.as_os_str()))
        .map(|a| CString::new(a.as_bytes()).map_err(|_| format!("argument {a:?} contains NUL")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Program {
        layer,
        main,
        entry,
        argv,
        libraries,
    }))
}

/// Adds each object to `main`; a strong symbol defined twice names both
/// objects.
fn add_objects(
    layer: &ObjectLinkingLayer,
    main: &JitDylib,
    objects: &[ObjectFile],
) -> Result<(), String> {
    for (idx, object) in objects.iter().enumerate() {
        match layer.add(main, object.clone(), None) {
            Ok(()) => {}
            Err(Error::DuplicateDefinition { symbol, .. }) => {
                let first = objects[..idx]
                    .iter()
                    .find(|o| {
                        o.defined_symbols()
                            .iter()
                            .any(|d| d.name == symbol.as_str())
                    })
                    .map_or("another input", |o| o.name());
                return Err(format!(
                    "duplicate symbol {symbol}: defined in {first} and in {}",
                    object.name()
                ));
            }
            Err(e) => return Err(format!("{}: {}", object.name(), describe(&e))),
        }
    }
    Ok(())
}

/// Looks up every symbol the objects define, so every object is linked
/// (and every undefined reference found) now. One lookup per object keeps
/// the lookup sets small (building one deduplicates names pairwise).
fn materialize_all(
    es: &ExecutionSession,
    main: &JitDylib,
    objects: &[ObjectFile],
) -> Result<(), String> {
    let order = vec![(main.clone(), JitDylibLookupFlags::MatchAllSymbols)];
    let mut seen = HashSet::new();
    for object in objects {
        let set: SymbolLookupSet = object
            .defined_symbols()
            .iter()
            .filter(|d| seen.insert(d.name.as_str()))
            .map(|d| es.intern(&d.name))
            .collect();
        if !set.is_empty() {
            es.lookup(&order, set, SymbolState::Ready)
                .map_err(|e| describe(&e))?;
        }
    }
    Ok(())
}

/// The entry point's address; it must be a function the inputs define.
fn find_entry(es: &ExecutionSession, main: &JitDylib, entry: &str) -> Result<ExecutorAddr, String> {
    let name = es.intern(entry);
    let order = vec![(main.clone(), JitDylibLookupFlags::MatchAllSymbols)];
    let set = SymbolLookupSet::from_names([name.clone()]);
    let found = match es.lookup(&order, set, SymbolState::Ready) {
        Ok(mut map) => map.remove(&name),
        Err(Error::SymbolsNotFound { .. }) => None,
        Err(e) => return Err(describe(&e)),
    };
    match found {
        Some(def) if def.flags.is_callable() => Ok(def.addr),
        Some(_) => Err(format!("entry symbol {entry} is not a function")),
        None => Err(format!("entry symbol {entry} is not defined by any input")),
    }
}

type EntryFn = unsafe extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;

impl Program {
    /// Runs the initializers, calls the entry point, ends the session;
    /// returns the entry point's result. If the program calls `exit` (from
    /// an initializer too), this never returns.
    fn run(self, session: ExecutionSession, times: Times) -> i32 {
        *TEARDOWN.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Teardown { session, times });
        // SAFETY: the user asked for this program to be run; its initializers
        // run now, before its entry point, as in a gcc-linked executable.
        if let Err(e) = unsafe { self.layer.run_initializers(&self.main) } {
            let _ = take_teardown().map(Teardown::run);
            return error(&describe(&e));
        }
        if let Some(teardown) = TEARDOWN
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            teardown.times.lap("initializers");
        }
        let mut argv_ptrs: Vec<*mut c_char> = self
            .argv
            .iter()
            .map(|a| a.as_ptr().cast_mut())
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();
        let argc = c_int::try_from(self.argv.len()).unwrap_or(c_int::MAX);
        if let Some(executor) = orc::oop::executor() {
            return run_in_executor(executor, self.entry, &self.argv);
        }
        // SAFETY: the entry point is a function of the linked program
        // (checked callable), called as C's `main` with a NULL-terminated
        // argv whose strings outlive the call (kept until the process exits,
        // as the program may keep pointers into them) and the process
        // environment. Running it is what the user asked for.
        let status = unsafe {
            let entry = std::mem::transmute::<*const u8, EntryFn>(self.entry.to_ptr());
            entry(argc, argv_ptrs.as_mut_ptr(), libc::environ)
        };
        let res = take_teardown().map_or(Ok(()), Teardown::run);
        std::mem::forget(argv_ptrs);
        std::mem::forget(self.argv);
        std::mem::forget(self.libraries);
        match res {
            Ok(()) => status,
            Err(message) => error(&message),
        }
    }
}

/// Runs the entry point in the executor, then ends the session (its
/// finalizers run there) and the executor, as `exit(status)` would; returns
/// the executor's exit status, `128 + N` for a crash by signal `N`.
fn run_in_executor(
    executor: &orc::oop::JitExecutor,
    entry: ExecutorAddr,
    argv: &[std::ffi::CString],
) -> i32 {
    let args = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let status = match executor.run_main(entry.0, args) {
        Ok(status) => status,
        Err(e) => {
            let _ = take_teardown();
            return match orc::oop::executor_end() {
                // The program called `exit` (status as given) or crashed.
                Some((report, status)) => {
                    if let Some(report) = report {
                        eprintln!("orc: error: {report}");
                    }
                    status
                }
                None => error(&e),
            };
        }
    };
    if let Some(Err(message)) = take_teardown().map(Teardown::run) {
        error(&message);
    }
    match executor.exit(status).map(orc::oop::describe_end) {
        Some((report, status)) => {
            if let Some(report) = report {
                eprintln!("orc: error: {report}");
            }
            status
        }
        None => status,
    }
}

/// The innermost cause of a session error (a failed materialization's
/// reason names the object and symbol; the list of symbols it failed to
/// define does not help).
fn describe(e: &Error) -> String {
    match e {
        Error::FailedToMaterialize { cause, .. } => describe(cause),
        other => other.to_string(),
    }
}

/// A linker error with its sources.
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
