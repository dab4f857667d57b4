//! `orc run FILE.kal`: check the whole file, then define every function and
//! run the top-level expressions in order.

use orc::KaleidoscopeJit;

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
    let jit = match args.jit.builder().build() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("orc: error: cannot start the JIT: {e}");
            return 1;
        }
    };
    let mut kjit = KaleidoscopeJit::new(jit);
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
        eprintln!("orc: error: {path}: {e}");
        return 1;
    }
    for expr in program.top_level_exprs() {
        match kjit.run_top_level(expr) {
            Ok(value) if print => orc::host::print_result(value),
            Ok(_) => {}
            Err(e) => {
                eprintln!(
                    "{}:{}:{}: error: {e}",
                    path, expr.proto.span.line, expr.proto.span.col
                );
                return 1;
            }
        }
    }
    0
}
