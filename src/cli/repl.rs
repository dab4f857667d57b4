//! `orc repl`: the tutorial's loop on stdin. Prompts `ready> ` on stderr,
//! accepts definitions (redefinitions too), prints each expression's value
//! as `Evaluated to %f` and keeps going after errors in the input. A
//! runtime failure (a lazy call of an `extern` defined nowhere, a stack
//! overflow) is reported at its input line (`<stdin>:LINE:COL`) and ends
//! the session with status 70, as under `orc run`.

use std::io::BufRead;

use orc::KaleidoscopeJit;
use orc_kaleidoscope::{Item, ReplEvent, ReplSession};

use super::{print_stats, JitArgs};

pub(crate) fn repl(args: &JitArgs) -> i32 {
    let jit = match super::run::with_runtime_errors(args.builder()).build() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("orc: error: cannot start the JIT: {e}");
            return 1;
        }
    };
    let mut kjit = KaleidoscopeJit::new(jit);
    super::run::report_runtime_errors(&kjit, "<stdin>");
    let mut session = ReplSession::new();
    session.declare_host_function("putchard", 1);
    session.declare_host_function("printd", 1);
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("ready> ");
        let events = match lines.next() {
            Some(Ok(mut line)) => {
                line.push('\n');
                session.feed(&line)
            }
            Some(Err(e)) => {
                eprintln!("orc: error: reading stdin: {e}");
                break;
            }
            None => {
                let events = session.finish();
                handle(&mut kjit, events);
                break;
            }
        };
        handle(&mut kjit, events);
    }
    eprintln!();
    if args.stats {
        print_stats(kjit.jit());
    }
    0
}

fn handle(kjit: &mut KaleidoscopeJit, events: Vec<ReplEvent>) {
    for event in events {
        match event {
            ReplEvent::Error(d) => eprintln!("{}", d.render("<stdin>")),
            ReplEvent::Item(Item::Extern(_)) => {}
            ReplEvent::Item(Item::Def(func)) => {
                if let Err(e) = kjit.define(&func) {
                    let located = match &e {
                        orc::KaleidoscopeError::Jit(err) => kjit.locate_error(err, None),
                        _ => None,
                    };
                    match located {
                        Some(located) => eprintln!("{}", located.render("<stdin>")),
                        None => eprintln!(
                            "<stdin>:{}:{}: error: {e}",
                            func.proto.span.line, func.proto.span.col
                        ),
                    }
                }
            }
            ReplEvent::Item(Item::Expr(expr)) => match run_catching_traps(kjit, &expr) {
                Err(trap) => {
                    orc::host::flush_stdout();
                    eprintln!(
                        "<stdin>:{}:{}: error: {trap}",
                        expr.proto.span.line, expr.proto.span.col
                    );
                }
                Ok(Ok(v)) => {
                    orc::host::print_result(v);
                    orc::host::flush_stdout();
                }
                Ok(Err(e)) => match kjit.locate_error(&e, Some(&expr)) {
                    Some(located) => eprintln!("{}", located.render("<stdin>")),
                    None => eprintln!(
                        "<stdin>:{}:{}: error: {e}",
                        expr.proto.span.line, expr.proto.span.col
                    ),
                },
            },
        }
    }
}

/// Runs a top-level expression; a trap in its JIT'd code is an `Err`.
fn run_catching_traps(
    kjit: &mut KaleidoscopeJit,
    expr: &orc_kaleidoscope::Function,
) -> Result<orc_core::Result<f64>, orc::Trap> {
    let mut out = None;
    // SAFETY: (catch_traps) on a trap, the frames of `run_top_level` are
    // abandoned: the expression's tracker and the thread's pin are leaked
    // (its code stays mapped, and code retired later is freed only when
    // the JIT is), which the REPL accepts to keep running.
    unsafe { orc_core::catch_traps(|| out = Some(kjit.run_top_level(expr))) }?;
    Ok(out.unwrap_or_else(|| Err(orc_core::Error::other("the expression did not run"))))
}
