//! `orc test FILE.clif...`: runs every `; run:` and `; print:` directive of
//! the files under the chosen tier, with the semantics of Cranelift's own
//! test runner. Prints one line per failing directive (`FILE:LINE:
//! DIRECTIVE: got ..., expected ...`), `print:` results on stdout, and a
//! last line `N passed, M failed`. Exits with 0 when nothing failed, 1 when
//! a directive failed, 65 when a file could not be loaded.

use clap::Args;

use orc::clif::{ClifProgram, DisplayValues, Outcome};
use orc_clif::{ClifFile, RunCommand};

use super::JitArgs;

/// Arguments of `orc test`.
#[derive(Args, Debug)]
pub(crate) struct TestArgs {
    /// The CLIF files.
    #[arg(required = true)]
    pub(crate) files: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub(crate) jit: JitArgs,
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    bad_files: usize,
}

pub(crate) fn test_clif(args: &TestArgs) -> i32 {
    let mut tally = Tally::default();
    for path in &args.files {
        test_file(path, &args.jit, &mut tally);
    }
    orc::host::flush_stdout();
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.bad_files > 0 {
        65
    } else if tally.failed > 0 {
        1
    } else {
        0
    }
}

fn test_file(path: &std::path::Path, jit: &JitArgs, tally: &mut Tally) {
    let name = path.display().to_string();
    let loaded = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read '{name}': {e}"))
        .and_then(|text| ClifFile::parse(&name, &text).map_err(|e| e.to_string()));
    let file = match loaded {
        Ok(file) => file,
        Err(e) => {
            eprintln!("orc: error: {e}");
            tally.bad_files += 1;
            return;
        }
    };
    let program = match ClifProgram::load(&file, jit.builder()) {
        Ok(program) => program,
        Err(e) => {
            // Nothing in the file can run: every directive fails.
            eprintln!("orc: error: {name}: {e}");
            tally.failed += file.n_directives();
            return;
        }
    };
    for func in &file.functions {
        for directive in &func.directives {
            // SAFETY: `run_directive`'s contract (the function stays in
            // memory it may use and does not trap) is about the test
            // file's own code, which only its author can vouch for, as with
            // Cranelift's runner; orc checks the arguments against the
            // signature.
            let outcome = unsafe { program.run_directive(func, directive) };
            let at = format!("{name}:{}: {}", directive.line, directive.text);
            match outcome {
                Outcome::Passed => tally.passed += 1,
                Outcome::Printed(text) => {
                    println!("{text}");
                    tally.passed += 1;
                }
                Outcome::Failed { got } => {
                    let types: Vec<_> = func
                        .func
                        .signature
                        .returns
                        .iter()
                        .map(|r| r.value_type)
                        .collect();
                    let expected = match &directive.command {
                        RunCommand::Run(_, orc_clif::Comparison::NotEquals, values) => {
                            format!("anything but {}", DisplayValues::new(values, &types))
                        }
                        RunCommand::Run(_, _, values) => {
                            DisplayValues::new(values, &types).to_string()
                        }
                        RunCommand::Print(_) => String::new(),
                    };
                    let got = DisplayValues::new(&got, &types);
                    println!("{at}: got {got}, expected {expected}");
                    tally.failed += 1;
                }
                Outcome::Error(e) => {
                    println!("{at}: error: {e}");
                    tally.failed += 1;
                }
                _ => {
                    println!("{at}: unexpected outcome");
                    tally.failed += 1;
                }
            }
        }
    }
}
