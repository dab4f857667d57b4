//! Data-driven tests over the shared sample programs: every `NAME.kal`
//! parses, checks, lowers to verified CLIF and a host object, and (in the
//! reference interpreter) prints `NAME.out`; every `errors/NAME.kal` fails
//! with a diagnostic containing `errors/NAME.err`. New files join by
//! themselves.

mod interp;
#[allow(dead_code)]
mod support;

use cranelift_module::Module;
use orc_kaleidoscope::{build_function, parse_and_check, render_all, Item, LowerOptions};
use support::{files_with_ext, host_module, programs_dir};

/// Enough interpreter steps for every sample except the heavy end of
/// `mandel.kal` (its 300x300 checksum), which is compared up to where the
/// fuel runs out.
const FUEL: u64 = 20_000_000;

fn file_name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn the_samples_folder_is_not_empty() {
    assert!(files_with_ext(&programs_dir(), "kal").len() >= 6);
    assert!(files_with_ext(&programs_dir().join("errors"), "kal").len() >= 7);
}

#[test]
fn every_program_checks_and_the_interpreter_prints_its_out_file() {
    for (path, src) in files_with_ext(&programs_dir(), "kal") {
        let name = file_name(&path);
        let program = parse_and_check(&src)
            .unwrap_or_else(|diags| panic!("{name} fails:\n{}", render_all(&name, &diags)));
        let expected = std::fs::read_to_string(path.with_extension("out"))
            .unwrap_or_else(|err| panic!("{name}: no .out file: {err}"));
        let run = interp::run(&program, FUEL);
        if run.finished {
            assert_eq!(run.stdout, expected, "{name}: output differs");
        } else {
            eprintln!("{name}: interpreter ran out of fuel; compared a prefix");
            assert!(
                expected.starts_with(&run.stdout) && run.stdout.len() > 100,
                "{name}: output differs before the fuel ran out:\n{}",
                run.stdout
            );
        }
    }
}

#[test]
fn every_error_program_fails_where_its_err_file_says() {
    let dir = programs_dir().join("errors");
    for (path, src) in files_with_ext(&dir, "kal") {
        let name = file_name(&path);
        let expected = std::fs::read_to_string(path.with_extension("err"))
            .unwrap_or_else(|err| panic!("{name}: no .err file: {err}"));
        let diags = match parse_and_check(&src) {
            Ok(_) => panic!("{name} should fail"),
            Err(diags) => diags,
        };
        let first = diags[0].render(&name);
        assert!(
            first.starts_with(&format!("{name}:")) && first.contains(expected.trim()),
            "{name}: got `{first}`, expected it to contain `{}`",
            expected.trim()
        );
    }
}

#[test]
fn every_program_lowers_to_verified_clif_and_an_object() {
    for (path, src) in files_with_ext(&programs_dir(), "kal") {
        let name = file_name(&path);
        let program = parse_and_check(&src).expect("checked above");
        let mut module = host_module(&name);
        let mut defined = Vec::new();
        for item in &program.items {
            let (Item::Def(func) | Item::Expr(func)) = item else {
                continue;
            };
            let mut lowered =
                build_function(&mut module, func).unwrap_or_else(|err| panic!("{name}: {err:?}"));
            if let Err(errors) = cranelift_codegen::verify_function(&lowered.ctx.func, module.isa())
            {
                panic!(
                    "{name}: {} fails verification:\n{errors}\n{}",
                    func.proto.name,
                    lowered.clif()
                );
            }
            module
                .define_function(lowered.id, &mut lowered.ctx)
                .unwrap_or_else(|err| panic!("{name}: {}: {err:?}", func.proto.name));
            defined.push(func.proto.name.clone());
        }
        let bytes = module.finish().emit().expect("object emission");
        assert!(!bytes.is_empty(), "{name}: empty object");
        // Definitions and imports appear by name in the symbol table.
        for symbol in defined.iter().map(String::as_str).chain(
            program
                .externs()
                .map(|p| p.name.as_str())
                .filter(|n| *n == "printd" || *n == "putchard"),
        ) {
            assert!(
                contains(&bytes, symbol.as_bytes()),
                "{name}: object lacks symbol {symbol}"
            );
        }
    }
}

#[test]
fn lower_program_defines_functions_then_top_level_expressions_in_source_order() {
    let src = std::fs::read_to_string(programs_dir().join("recursion.kal")).unwrap();
    let program = parse_and_check(&src).unwrap();
    let mut module = host_module("recursion");
    let options = LowerOptions { capture_clif: true };
    let symbols = orc_kaleidoscope::lower_program(&mut module, &program, &options).unwrap();
    let names: Vec<_> = symbols
        .iter()
        .map(|s| (s.name.as_str(), s.is_top_level))
        .collect();
    assert_eq!(
        names,
        [
            ("fib", false),
            ("ack", false),
            ("even", false),
            ("odd", false),
            ("__anon_expr_0", true),
            ("__anon_expr_1", true),
            ("__anon_expr_2", true),
            ("__anon_expr_3", true),
        ]
    );
    assert!(symbols
        .iter()
        .all(|s| s.clif.as_deref().is_some_and(|c| c.contains("function"))));
    assert!(!module.finish().emit().unwrap().is_empty());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
