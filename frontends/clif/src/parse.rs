//! Loading a CLIF file: its functions with their symbols, the `; run:` and
//! `; print:` directives that follow each, and the `set` flags that
//! matter to orc.
//!
//! Parsing is `cranelift-reader`'s; this module adds what a runner needs
//! that the reader does not keep: each directive's line (found from where
//! its comment sits in the text), the symbol each function defines (see
//! [`function_symbol`]) and a check that every name resolves to a symbol.

use std::collections::HashMap;

use cranelift_codegen::ir::{Function, UserFuncName};
use cranelift_codegen::settings::{self, Flags, OptLevel};
use cranelift_reader::{parse_run_command, parse_test, IsaSpec, ParseOptions, RunCommand};

use crate::error::ClifError;

/// A parsed CLIF file.
#[derive(Debug)]
pub struct ClifFile {
    /// The file's name for diagnostics, as given.
    pub name: String,
    /// The settings the file declares that orc honours.
    pub settings: FileSettings,
    /// The functions, in file order.
    pub functions: Vec<ClifFunction>,
}

/// One function of a file.
#[derive(Debug)]
pub struct ClifFunction {
    /// The symbol it defines.
    pub symbol: String,
    /// The function as parsed (names unchanged).
    pub func: Function,
    /// The line of its `function` keyword.
    pub line: usize,
    /// The run directives in and after it, in file order.
    pub directives: Vec<Directive>,
}

/// A `; run:` or `; print:` comment.
#[derive(Debug)]
pub struct Directive {
    /// Its line in the file.
    pub line: usize,
    /// The comment without its leading `;` and spaces.
    pub text: String,
    /// What it asks for, parsed against the function's signature.
    pub command: RunCommand,
}

/// The `set` flags of a file that orc honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    /// `set opt_level=...`, when the file sets it.
    pub opt_level: Option<OptLevel>,
    /// `set enable_nan_canonicalization=true`.
    pub nan_canonicalization: bool,
}

/// Settings that change what code means and that orc's compilers do not
/// take from a file; a file setting one of them to other than its default
/// is rejected rather than run with different semantics.
const UNSUPPORTED_SETTINGS: &[&str] = &[
    "enable_llvm_abi_extensions",
    "enable_multi_ret_implicit_sret",
];

impl ClifFile {
    /// Parses `text`, naming it `name` in diagnostics.
    pub fn parse(name: &str, text: &str) -> Result<ClifFile, ClifError> {
        let test = parse_test(text, ParseOptions::default()).map_err(|e| ClifError::Parse {
            file: name.to_owned(),
            line: e.location.line_number,
            message: e.message,
        })?;
        let flags = match &test.isa_spec {
            IsaSpec::None(flags) => flags.clone(),
            IsaSpec::Some(isas) => match isas.first() {
                Some(isa) => isa.flags().clone(),
                None => Flags::new(settings::builder()),
            },
        };
        let settings = file_settings(name, text, &flags)?;
        let mut functions: Vec<ClifFunction> = Vec::with_capacity(test.functions.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (func, details) in test.functions {
            let line = details.location.line_number;
            let symbol = function_symbol(&func.name);
            if seen.insert(symbol.clone(), line).is_some() {
                return Err(ClifError::DuplicateSymbol {
                    file: name.to_owned(),
                    line,
                    symbol,
                });
            }
            check_function(name, line, &symbol, &func)?;
            let mut directives = Vec::new();
            for comment in &details.comments {
                let command = parse_run_command(comment.text, &func.signature).map_err(|e| {
                    ClifError::Directive {
                        file: name.to_owned(),
                        line: line_of(text, comment.text),
                        message: e.message,
                    }
                })?;
                if let Some(command) = command {
                    directives.push(Directive {
                        line: line_of(text, comment.text),
                        text: comment
                            .text
                            .trim_start_matches([';', ' '])
                            .trim_end()
                            .to_owned(),
                        command,
                    });
                }
            }
            functions.push(ClifFunction {
                symbol,
                func,
                line,
                directives,
            });
        }
        Ok(ClifFile {
            name: name.to_owned(),
            settings,
            functions,
        })
    }

    /// The function defining `symbol`.
    pub fn function(&self, symbol: &str) -> Option<&ClifFunction> {
        self.functions.iter().find(|f| f.symbol == symbol)
    }

    /// The number of run directives in the file.
    pub fn n_directives(&self) -> usize {
        self.functions.iter().map(|f| f.directives.len()).sum()
    }
}

/// The symbol a function called `name` defines: `foo` for `%foo`, `u0:3`
/// for `u0:3`.
pub fn function_symbol(name: &UserFuncName) -> String {
    match name {
        UserFuncName::User(user) => format!("u{}:{}", user.namespace, user.index),
        UserFuncName::Testcase(tc) => String::from_utf8_lossy(tc.raw()).into_owned(),
    }
}

/// The line `part` (a slice of `text`) starts on; 0 if it is not one.
fn line_of(text: &str, part: &str) -> usize {
    let start = text.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if at < start || at > start + text.len() {
        return 0;
    }
    text.as_bytes()[..at - start]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The settings orc honours; `text` tells whether the file sets the
/// optimization level (the flags cannot: `none` is also the default).
fn file_settings(file: &str, text: &str, flags: &Flags) -> Result<FileSettings, ClifError> {
    let defaults = Flags::new(settings::builder());
    for (value, default) in flags.iter().zip(defaults.iter()) {
        if UNSUPPORTED_SETTINGS.contains(&value.name)
            && value.value_string() != default.value_string()
        {
            return Err(ClifError::UnsupportedSetting {
                file: file.to_owned(),
                setting: format!("{}={}", value.name, value.value_string()),
            });
        }
    }
    let sets_opt_level = text
        .lines()
        .map(str::trim_start)
        .take_while(|l| !l.starts_with("function"))
        .any(|l| l.starts_with("set ") && l.contains("opt_level"));
    let opt_level = sets_opt_level.then(|| flags.opt_level());
    Ok(FileSettings {
        opt_level,
        nan_canonicalization: flags.enable_nan_canonicalization(),
    })
}

/// Rejects names that have no symbol.
fn check_function(file: &str, line: usize, symbol: &str, func: &Function) -> Result<(), ClifError> {
    let resolve = orc_cranelift::testcase_name_resolver();
    let names =
        func.dfg
            .ext_funcs
            .values()
            .map(|e| &e.name)
            .chain(func.global_values.values().filter_map(|gv| match gv {
                cranelift_codegen::ir::GlobalValueData::Symbol { name, .. } => Some(name),
                _ => None,
            }));
    for name in names {
        if resolve(func, name).is_none() {
            return Err(ClifError::UnsupportedName {
                file: file.to_owned(),
                line,
                function: symbol.to_owned(),
                name: name.display(Some(&func.params)).to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::data_value::DataValue;
    use cranelift_reader::Comparison;

    const FILE: &str = "test run
set opt_level=speed
target x86_64

function %add(i32, i32) -> i32 {
block0(v0: i32, v1: i32):
    v2 = iadd v0, v1
    return v2
}
; run: %add(1, 2) == 3
; run: %add(0xffffffff, 1) == 0

; not a directive
function %f() -> i8 {
block0:
    v0 = iconst.i8 1
    return v0
}
; print: %f()
; run
";

    #[test]
    fn directives_keep_their_lines_and_functions() {
        let file = ClifFile::parse("a.clif", FILE).unwrap();
        assert_eq!(file.settings.opt_level, Some(OptLevel::Speed));
        assert!(!file.settings.nan_canonicalization);
        let add = file.function("add").unwrap();
        assert_eq!(add.line, 5);
        let lines: Vec<_> = add.directives.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![10, 11]);
        assert_eq!(add.directives[1].text, "run: %add(0xffffffff, 1) == 0");
        match &add.directives[1].command {
            RunCommand::Run(inv, Comparison::Equals, expected) => {
                assert_eq!(inv.args, vec![DataValue::I32(-1), DataValue::I32(1)]);
                assert_eq!(expected, &vec![DataValue::I32(0)]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let f = file.function("f").unwrap();
        assert_eq!(f.directives.len(), 2);
        assert!(matches!(f.directives[0].command, RunCommand::Print(_)));
        assert_eq!(f.directives[1].line, 20);
        assert_eq!(file.n_directives(), 4);
    }

    #[test]
    fn function_names_map_to_symbols() {
        let text = "function u0:3() {\nblock0:\n    return\n}\nfunction %main() {\nblock0:\n    return\n}\n";
        let file = ClifFile::parse("n.clif", text).unwrap();
        let symbols: Vec<_> = file.functions.iter().map(|f| f.symbol.as_str()).collect();
        assert_eq!(symbols, vec!["u0:3", "main"]);
    }

    #[test]
    fn an_explicit_opt_level_is_kept_even_when_it_is_the_default() {
        let set = "set opt_level=none\nfunction %f() {\nblock0:\n    return\n}\n";
        let file = ClifFile::parse("o.clif", set).unwrap();
        assert_eq!(file.settings.opt_level, Some(OptLevel::None));
        let unset = "function %f() {\nblock0:\n    return\n}\n";
        assert_eq!(
            ClifFile::parse("o.clif", unset).unwrap().settings.opt_level,
            None
        );
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let err = ClifFile::parse("bad.clif", "function %f() {\nblock0:\n    v0 = bogus\n}\n")
            .unwrap_err();
        match &err {
            ClifError::Parse { file, line, .. } => {
                assert_eq!(file, "bad.clif");
                assert_eq!(*line, 3);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            err.to_string().starts_with("bad.clif:3: parse error:"),
            "{err}"
        );
    }

    #[test]
    fn bad_directives_are_errors_with_their_line() {
        let text =
            "function %f(i32) -> i32 {\nblock0(v0: i32):\n    return v0\n}\n; run: %f(1.5) == 1\n";
        let err = ClifFile::parse("d.clif", text).unwrap_err();
        assert!(
            matches!(err, ClifError::Directive { line: 5, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn duplicate_symbols_are_errors() {
        let text =
            "function %f() {\nblock0:\n    return\n}\nfunction %f() {\nblock0:\n    return\n}\n";
        let err = ClifFile::parse("dup.clif", text).unwrap_err();
        assert!(
            matches!(err, ClifError::DuplicateSymbol { line: 5, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn semantic_settings_orc_ignores_are_errors() {
        let text = "set enable_llvm_abi_extensions=true\nfunction %f() {\nblock0:\n    return\n}\n";
        let err = ClifFile::parse("s.clif", text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.clif: set enable_llvm_abi_extensions=true: orc does not support this setting"
        );
        let nan = "set enable_nan_canonicalization=true\nfunction %f() {\nblock0:\n    return\n}\n";
        assert!(
            ClifFile::parse("n.clif", nan)
                .unwrap()
                .settings
                .nan_canonicalization
        );
    }
}
