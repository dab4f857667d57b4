//! `orc run FILE.kal`: check the whole file, then define every function and
//! run the top-level expressions in order. Runtime failures name the source
//! line once (`FILE:LINE:COL: error: ...`): a call of an `extern` defined
//! nowhere (at the call; status 70 when found by a lazy call, 1 otherwise)
//! and a trap of the program's code, such as a stack overflow (at the
//! top-level expression, through the trap machinery of `orc_core::trap`
//! that embedders get too; status 70).

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
    if args.file.as_os_str() != "-" {
        kjit.set_source_file(&args.file);
    }
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
    for expr in program.top_level_exprs() {
        match kjit.run_top_level(expr) {
            Ok(value) if print => orc::host::print_result(value),
            Ok(_) => {}
            Err(e) => {
                orc::host::flush_stdout();
                if let Some((report, status)) = orc::oop::executor_end() {
                    if let Some(report) = report {
                        eprintln!("{path}: error: {report}");
                    }
                    return status;
                }
                eprintln!("{}", render_error(kjit, &e, expr, path));
                return if matches!(e, Error::Trap(_)) {
                    LAZY_FAILURE_STATUS
                } else {
                    1
                };
            }
        }
    }
    0
}

/// A top-level expression's runtime error, placed in the source
/// (`FILE:LINE:COL: error: ...`): a call that cannot be linked at the
/// call, anything else (a trap of its code) at the expression. A stack
/// overflow says so in source terms; other traps name the function.
pub(crate) fn render_error(
    kjit: &KaleidoscopeJit,
    e: &Error,
    expr: &orc_kaleidoscope::Function,
    path: &str,
) -> String {
    let (line, col) = (expr.proto.span.line, expr.proto.span.col);
    match e {
        Error::Trap(trap) if trap.kind == orc::core::TrapKind::StackOverflow => format!(
            "{path}:{line}:{col}: error: stack overflow: the recursion is too deep \
             (in this top-level expression)"
        ),
        Error::Trap(trap) => format!("{path}:{line}:{col}: error: {trap}"),
        _ => match kjit.locate_error(e, Some(expr)) {
            Some(located) => located.render(path),
            None => format!("{path}:{line}:{col}: error: {e}"),
        },
    }
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
            // A tier-up that could not publish because the executor had
            // ended (its crash is reported where it happened) is no news.
            _ if orc::oop::executor().is_some_and(|x| x.is_dead()) => {}
            _ => eprintln!("orc: JIT session error: {err}"),
        });
}
