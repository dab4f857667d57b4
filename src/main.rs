//! The `orc` command-line tool. See `orc --help`.

mod cli;

fn main() {
    use clap::Parser;
    // `orc executor ...`: the process JIT'd code runs in under `--oop`.
    orc::oop::serve_if_executor();
    // A trap in JIT'd code that nothing catches (say a program's stack
    // overflow) is reported, with stdout flushed, instead of a crash.
    orc::core::trap::set_uncaught_trap_handler(Some(uncaught_trap));
    // A panic also flushes what the program printed before it.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        orc::host::flush_stdout();
        report(info);
    }));
    let cli = cli::Cli::parse();
    if cli.out_of_process() {
        // Before any thread starts: executors fork from a copy of this
        // process taken now (see `orc::oop::prepare`).
        if let Err(e) = orc::oop::prepare() {
            eprintln!("orc: warning: {e}; executors start slowly");
        }
    }
    let status = cli::main(cli);
    std::process::exit(status);
}

/// Flushes stdout, names the trap and exits with status 70 (runs in the
/// signal handler; the process ends here).
fn uncaught_trap(trap: &orc::Trap) {
    orc::host::flush_stdout();
    eprintln!("orc: error: {trap}");
    // SAFETY: `_exit` ends the process at once, as the signal would have;
    // every output stream was flushed just above.
    unsafe { libc::_exit(70) }
}
