//! `lox`: run a Lox script, or a REPL without one.
//!
//! ```text
//! lox [--tier interp|0|1|adaptive] [--dump] [FILE]
//! ```
//! `--tier` picks the execution tier (default `adaptive`; see the crate
//! docs); `--dump` prints the compiled bytecode instead of running it.
//! Exit codes follow clox: 64 usage, 65 compile error, 70 runtime error,
//! 74 unreadable file.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use orc_lox::{InterpretResult, LoxJit, Tier, Vm};

const USAGE: &str = "Usage: lox [--tier interp|0|1|adaptive] [--dump] [path]";

fn main() -> ExitCode {
    let mut tier = Tier::Adaptive;
    let mut path = None;
    let mut dump = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--tier" || arg.starts_with("--tier=") {
            let value = match arg.strip_prefix("--tier=") {
                Some(v) => Some(v.to_string()),
                None => args.next(),
            };
            match value.as_deref().and_then(Tier::parse) {
                Some(t) => tier = t,
                None => {
                    eprintln!("lox: --tier must be one of interp, 0, 1, adaptive");
                    eprintln!("{USAGE}");
                    return ExitCode::from(64);
                }
            }
        } else if arg == "--dump" {
            dump = true;
        } else if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        } else if arg.starts_with("--") || path.is_some() {
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        } else {
            path = Some(arg);
        }
    }
    let mut vm = Vm::new();
    if tier != Tier::Interp && !dump {
        match LoxJit::new(tier) {
            Ok(jit) => vm.set_jit(jit),
            Err(e) => {
                eprintln!("lox: cannot start the JIT: {e}");
                return ExitCode::from(70);
            }
        }
    }
    if dump {
        let Some(p) = path else {
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        };
        return dump_file(&mut vm, &p);
    }
    match path {
        Some(p) => run_file(&mut vm, &p),
        None => repl(&mut vm),
    }
}

fn run_file(vm: &mut Vm, path: &str) -> ExitCode {
    let source = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => {
            // clox's messages: `fopen` fails, or (a directory) `fread` does.
            if std::fs::metadata(path).is_ok() {
                eprintln!("Could not read file \"{path}\".");
            } else {
                eprintln!("Could not open file \"{path}\".");
            }
            return ExitCode::from(74);
        }
    };
    let result = vm.interpret(&source);
    ExitCode::from(result.exit_code() as u8)
}

/// `--dump`: print the bytecode of every function instead of running.
fn dump_file(vm: &mut Vm, path: &str) -> ExitCode {
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("Could not open file \"{path}\".");
        return ExitCode::from(74);
    };
    match vm.disassemble(&String::from_utf8_lossy(&bytes)) {
        Some(listing) => {
            print!("{listing}");
            ExitCode::SUCCESS
        }
        None => ExitCode::from(65),
    }
}

fn repl(vm: &mut Vm) -> ExitCode {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    loop {
        print!("> ");
        let _ = std::io::stdout().flush();
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                println!();
                return ExitCode::SUCCESS;
            }
            Ok(_) => {
                // Errors were reported; the REPL keeps going either way.
                let _: InterpretResult = vm.interpret(&line);
                vm.flush();
            }
        }
    }
}
