//! `orc run PROG.clif [--entry NAME]`: loads a CLIF file, calls its entry
//! function (`main` unless `--entry` names another; it takes no
//! arguments) and exits with its integer result, or 0 when it returns none.

use orc::clif::{ClifProgram, ClifRunError};
use orc_clif::{ClifFile, DataValue};

use super::{print_stats, RunArgs};

pub(crate) fn run_clif(args: &RunArgs) -> i32 {
    let path = super::source::name(&args.file);
    let text = match super::source::read_text(&args.file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("orc: error: {e}");
            return 1;
        }
    };
    let file = match ClifFile::parse(&path, &text) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("orc: error: {e}");
            return 65;
        }
    };
    let program = match ClifProgram::load(&file, args.jit.builder()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("orc: error: {path}: {e}");
            return 1;
        }
    };
    let entry = args.entry.as_deref().unwrap_or("main");
    let status = match run_entry(&program, entry) {
        Ok(status) => status,
        Err(ClifRunError::Trap(trap)) => {
            orc::host::flush_stdout();
            eprintln!("orc: error: {path}: {trap}");
            // As a trap killed by SIGILL/SIGFPE/SIGSEGV would, but reported.
            70
        }
        Err(e) => {
            eprintln!("orc: error: {path}: {e}");
            1
        }
    };
    orc::host::flush_stdout();
    if args.jit.stats {
        print_stats(program.jit());
    }
    status
}

fn run_entry(program: &ClifProgram, entry: &str) -> Result<i32, ClifRunError> {
    let sig = program
        .signature(entry)
        .ok_or_else(|| ClifRunError::NoFunction(entry.to_owned()))?;
    if !sig.params.is_empty() {
        return Err(ClifRunError::Values {
            symbol: entry.to_owned(),
            source: orc_clif::ValuesError::Arity {
                what: "arguments",
                expected: 0,
                got: sig.params.len(),
            },
        });
    }
    // SAFETY: `call`'s contract (the code stays in memory it may use; traps
    // are caught) is about the program's own code, which only its
    // author can vouch for, as with `lli` running a `.ll` file; the entry
    // takes no arguments, so there is nothing of ours it could misuse.
    let results = unsafe { program.call(entry, &[]) }?;
    Ok(match results.first() {
        Some(DataValue::I8(v)) => i32::from(*v),
        Some(DataValue::I16(v)) => i32::from(*v),
        Some(DataValue::I32(v)) => *v,
        Some(DataValue::I64(v)) => *v as i32,
        _ => 0,
    })
}
