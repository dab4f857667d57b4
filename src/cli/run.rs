//! `orc run FILE.kal`: check the whole file, then define every function and
//! run the top-level expressions in order. Runtime failures name the source
//! line once (`FILE:LINE:COL: error: ...`): a call of an `extern` defined
//! nowhere (at the call; status 70 when found by a lazy call, 1 otherwise)
//! and a stack overflow (at the top-level expression; status 70).

use orc::core::{Error, ExecutorAddr};
use orc::{KaleidoscopeError, KaleidoscopeJit};

use super::{print_stats, RunArgs};

pub(crate) fn run(args: &RunArgs) -> i32 {
    let path = super::source::name(&args.file);
    let source = match super::source::read_text(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("orc: error: {e}");
            return 1;
        }
    };
    let program = match orc_kaleidoscope::parse_and_check(&source) {
        Ok(p) => p,
        Err(diags) => {
            for d in &diags {
                eprintln!("{}", d.render(&path));
            }
            return 1;
        }
    };
    let jit = match with_runtime_errors(args.jit.builder()).build() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("orc: error: cannot start the JIT: {e}");
            return 1;
        }
    };
    let mut kjit = KaleidoscopeJit::new(jit);
    report_runtime_errors(&kjit, &path);
    let status = run_program(&mut kjit, &program, args.jit.print_results, &path);
    if args.jit.stats {
        print_stats(kjit.jit());
        if kjit.jit().tier_manager().is_some() {
            let osr: Vec<(String, u64)> = kjit
                .osr_transfers()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect();
            let total: u64 = osr.iter().map(|(_, n)| n).sum();
            let detail: Vec<String> = osr
                .iter()
                .map(|(body, n)| format!("{} {n}", body.trim_end_matches("$t0")))
                .collect();
            eprintln!(
                "orc: stats: on-stack replacement: {total} frames moved to tier 1{}{}",
                if detail.is_empty() { "" } else { ": " },
                detail.join(", ")
            );
        }
    }
    // The program is done. A Kaleidoscope program registers no finalizers
    // or exit handlers, so there is nothing left to run: exit now instead
    // of tearing the JIT down and waiting for background tier-up compiles
    // whose code would never run.
    orc::host::flush_stdout();
    // SAFETY: `_exit` ends the process without running atexit handlers or
    // static destructors (which could race with a compile thread); every
    // output stream was flushed just above.
    unsafe { libc::_exit(status) }
}

fn run_program(
    kjit: &mut KaleidoscopeJit,
    program: &orc_kaleidoscope::Program,
    print: bool,
    path: &str,
) -> i32 {
    if let Err(e) = kjit.add_program(program) {
        match &e {
            KaleidoscopeError::Jit(err) => match kjit.locate_error(err, None) {
                Some(located) => eprintln!("{}", located.render(path)),
                None => eprintln!("orc: error: {path}: {e}"),
            },
            _ => eprintln!("orc: error: {path}: {e}"),
        }
        return 1;
    }
    overflow::install();
    for expr in program.top_level_exprs() {
        let span = expr.proto.span;
        overflow::set_running(Some(&format!(
            "{path}:{}:{}: error: stack overflow: the recursion is too deep \
             (in this top-level expression)\n",
            span.line, span.col
        )));
        let result = kjit.run_top_level(expr);
        overflow::set_running(None);
        match result {
            Ok(value) if print => orc::host::print_result(value),
            Ok(_) => {}
            Err(e) => {
                match kjit.locate_error(&e, Some(expr)) {
                    Some(located) => eprintln!("{}", located.render(path)),
                    None => eprintln!(
                        "{}:{}:{}: error: {e}",
                        path, expr.proto.span.line, expr.proto.span.col
                    ),
                }
                return 1;
            }
        }
    }
    0
}

/// The exit status of a program whose lazy compile failed (as without a
/// failure handler: [`orc::core::lazy::LAZY_COMPILE_FAILURE_EXIT_CODE`]).
const LAZY_FAILURE_STATUS: i32 = orc::core::lazy::LAZY_COMPILE_FAILURE_EXIT_CODE;

/// Where a failed lazy call continues: the error was reported (placed in
/// the source) just before; the program ends with status 70, its output
/// flushed.
extern "C" fn exit_after_lazy_failure() -> f64 {
    orc::host::flush_stdout();
    // SAFETY: `_exit` ends the process without running atexit handlers or
    // static destructors (which could race with compile threads); stdout
    // was flushed just above and stderr is unbuffered.
    unsafe { libc::_exit(LAZY_FAILURE_STATUS) }
}

/// A Kaleidoscope driver's JIT: a failed lazy call ends the program after
/// [`report_runtime_errors`]'s reporter has placed it in the source.
pub(crate) fn with_runtime_errors(builder: orc::JitBuilder) -> orc::JitBuilder {
    builder.lazy_failure_handler(ExecutorAddr::from_ptr(exit_after_lazy_failure as *const u8))
}

/// Reports errors that do not come back from a call once, in source
/// terms: a failed lazy compile as `FILE:LINE:COL: error: ...` at the call
/// that cannot be linked. A failed materialization is not printed: it
/// reaches whoever looked the symbol up (a lazy call, a top-level
/// expression, an eager definition), which reports it.
pub(crate) fn report_runtime_errors(kjit: &KaleidoscopeJit, path: &str) {
    let sources = kjit.source_map();
    let path = path.to_owned();
    kjit.jit()
        .session()
        .set_error_reporter(move |err| match err {
            Error::FailedToMaterialize { .. } => {}
            Error::LazyCompileFailed { symbol, .. } => match sources.locate(err, None) {
                Some(located) => eprintln!("{}", located.render(&path)),
                None => {
                    let name: &str = symbol;
                    let name = name.split('$').next().unwrap_or(name);
                    eprintln!("{path}: error: cannot compile '{name}': {err}");
                }
            },
            _ => eprintln!("orc: JIT session error: {err}"),
        });
}

/// Runaway recursion in a program overflows the stack of the thread
/// running it. Without help that is Rust's "thread 'main' has overflowed
/// its stack" and an abort; with [`install`] and a message set for the
/// running top-level expression ([`set_running`]), it is that message
/// (`FILE:LINE:COL: error: stack overflow ...`, at the expression) and
/// exit status 70, the output so far flushed. A fault that is not a stack
/// overflow, or one outside a top-level expression, goes to the handler
/// that was there before (Rust's).
pub(crate) mod overflow {
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// The message for the running expression (no allocation: the signal
    /// handler reads it).
    static MESSAGE: [AtomicU8; 512] = [const { AtomicU8::new(0) }; 512];
    /// Its length; 0 when no top-level expression is running.
    static LEN: AtomicUsize = AtomicUsize::new(0);
    /// The handlers installed before ours, for faults that are not ours.
    static PREVIOUS: OnceLock<[libc::sigaction; 2]> = OnceLock::new();

    /// A fault this close to the stack pointer is the stack overflowing (a
    /// call or a frame's first store reaching the guard page).
    const NEAR_STACK_POINTER: usize = 64 << 10;

    /// Installs the handler for SIGSEGV and SIGBUS (once).
    pub(crate) fn install() {
        PREVIOUS.get_or_init(|| {
            let mut previous: [libc::sigaction; 2] =
                // SAFETY: `sigaction` is plain data; all-zero is a valid
                // value (SIG_DFL, empty mask, no flags).
                unsafe { std::mem::zeroed() };
            for (i, sig) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
                // SAFETY: as above.
                let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
                action.sa_sigaction = on_fault as extern "C" fn(_, _, _) as usize;
                // On the alternate stack Rust's runtime sets up for each
                // thread: the overflowed stack has no room left.
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                // SAFETY: a valid action for a valid signal; the previous
                // action is written to a local that outlives the call.
                unsafe {
                    libc::sigemptyset(&mut action.sa_mask);
                    libc::sigaction(sig, &action, &mut previous[i]);
                }
            }
            previous
        });
    }

    /// Sets the message for the top-level expression about to run, or
    /// clears it (`None`) once it has run. Call from the thread running it.
    pub(crate) fn set_running(message: Option<&str>) {
        LEN.store(0, Ordering::SeqCst);
        let Some(message) = message else {
            return;
        };
        let bytes = message.as_bytes();
        let len = bytes.len().min(MESSAGE.len());
        for (slot, &b) in MESSAGE.iter().zip(&bytes[..len]) {
            slot.store(b, Ordering::Relaxed);
        }
        LEN.store(len, Ordering::SeqCst);
    }

    extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        let len = LEN.load(Ordering::SeqCst);
        // SAFETY: the kernel passes a valid siginfo and ucontext to an
        // SA_SIGINFO handler; only plain fields are read.
        let overflow = unsafe {
            let fault = (*info).si_addr() as usize;
            let uc = &*(ctx as *const libc::ucontext_t);
            let sp = uc.uc_mcontext.gregs[libc::REG_RSP as usize] as usize;
            fault.abs_diff(sp) < NEAR_STACK_POINTER
        };
        if overflow && len > 0 {
            let mut buf = [0u8; 512];
            for (b, slot) in buf.iter_mut().zip(&MESSAGE[..len]) {
                *b = slot.load(Ordering::Relaxed);
            }
            // SAFETY: `write` and `_exit` are async-signal-safe; `fflush`
            // is not, but the process ends right after it and the thread
            // that overflowed was running program code, not stdio (the
            // lazy-failure exit makes the same trade).
            unsafe {
                libc::fflush(std::ptr::null_mut());
                libc::write(2, buf.as_ptr().cast(), len);
                libc::_exit(super::LAZY_FAILURE_STATUS)
            }
        }
        let Some(previous) = PREVIOUS.get() else {
            return;
        };
        let prev = &previous[usize::from(sig == libc::SIGBUS)];
        match prev.sa_sigaction {
            libc::SIG_DFL => {
                // Back to the default action; returning re-runs the
                // faulting instruction, which now ends the process.
                // SAFETY: restoring the default action of a valid signal.
                unsafe {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            libc::SIG_IGN => {}
            handler if prev.sa_flags & libc::SA_SIGINFO != 0 => {
                // SAFETY: the previous handler was installed as an
                // SA_SIGINFO handler with this signature; it gets the
                // arguments the kernel gave us.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(handler) };
                f(sig, info, ctx);
            }
            handler => {
                // SAFETY: a classic handler takes the signal number only.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                f(sig);
            }
        }
    }
}
