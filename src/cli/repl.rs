//! `orc repl`: the tutorial's loop on stdin. Prompts `ready> ` on stderr,
//! accepts definitions (redefinitions too), prints each expression's value
//! as `Evaluated to %f` and keeps going after errors in the input. A
//! runtime failure (a lazy call of an `extern` defined nowhere, a stack
//! overflow) is reported at its input line (`<stdin>:LINE:COL`) and ends
//! the session with status 70, as under `orc run`. With `--oop` a crash of
//! the code ends only its executor: the crash is reported at the line, a
//! new executor starts with every definition intact, and the loop goes on.

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
            ReplEvent::Item(Item::Expr(expr)) => match kjit.run_top_level(&expr) {
                Ok(v) => {
                    orc::host::print_result(v);
                    orc::host::flush_stdout();
                }
                Err(e) => {
                    orc::host::flush_stdout();
                    let (line, col) = (expr.proto.span.line, expr.proto.span.col);
                    match (orc::oop::executor_end(), orc::oop::executor()) {
                        // The program crashed its executor: say how, start
                        // a new one (same code and data) and go on.
                        (Some((report, status)), Some(executor)) => {
                            let end = report.unwrap_or_else(|| {
                                format!("the program exited with status {status}")
                            });
                            eprintln!("<stdin>:{line}:{col}: error: {end}");
                            match executor.restart() {
                                Ok(()) => eprintln!(
                                    "orc: started a new executor (pid {})",
                                    executor.pid().unwrap_or_default()
                                ),
                                Err(e) => {
                                    eprintln!("orc: error: cannot start a new executor: {e}");
                                    std::process::exit(70);
                                }
                            }
                        }
                        _ => eprintln!("{}", super::run::render_error(kjit, &e, &expr, "<stdin>")),
                    }
                }
            },
        }
    }
}
