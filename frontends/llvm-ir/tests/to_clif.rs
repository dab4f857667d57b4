//! The LLVM IR to CLIF translation (`to_clif`) on C compiled by clang-19
//! at test time: every function of a corpus of constructs translates and
//! verifies at -O0 and -O2, or is refused for a documented reason; the
//! names it asks for are the module's functions, declarations and vararg
//! thunks.

use std::path::{Path, PathBuf};
use std::process::Command;

use cranelift_codegen::ir;
use orc_llvm_ir::to_clif::{translate_module, ClifNames, Translated};

#[derive(Default)]
struct Names {
    functions: Vec<String>,
    symbols: Vec<String>,
}

impl ClifNames for Names {
    fn function(&mut self, name: &str) -> ir::UserExternalName {
        self.functions.push(name.to_owned());
        ir::UserExternalName::new(0, self.functions.len() as u32 - 1)
    }
    fn symbol(&mut self, name: &str) -> ir::UserExternalName {
        self.symbols.push(name.to_owned());
        ir::UserExternalName::new(1, self.symbols.len() as u32 - 1)
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/to_clif_c")
}

/// `file` compiled to bitcode with `opt` (`-O0`, `-O2`).
fn bitcode(file: &Path, opt: &str, extra: &[&str]) -> Vec<u8> {
    let dir = orc_test_support::scratch("to-clif");
    let out = dir.join("out.bc");
    orc_test_support::check(
        Command::new(orc_test_support::clang_for(file))
            .args([opt, "-c", "-emit-llvm", "-fno-discard-value-names"])
            .args(extra)
            .arg(file)
            .arg("-o")
            .arg(&out),
    );
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn translate(bc: &[u8], names: &mut Names) -> Vec<Translated> {
    let plan = orc_llvm::partition::plan("corpus", bc, "t").expect("plans");
    translate_module("corpus", &plan.bitcode, names).expect("parses")
}

fn translated_ok(fs: &[Translated]) -> Vec<&str> {
    fs.iter()
        .filter(|t| t.result.is_ok())
        .map(|t| t.name.as_str())
        .collect()
}

#[test]
fn every_corpus_function_translates_and_verifies() {
    for opt in ["-O0", "-O2"] {
        let mut names = Names::default();
        let fs = translate(
            &bitcode(&corpus_dir().join("corpus.c"), opt, &[]),
            &mut names,
        );
        assert!(fs.len() > 40, "{opt}: {} functions", fs.len());
        let failures: Vec<String> = fs
            .iter()
            .filter_map(|t| t.result.as_ref().err())
            .map(|e| format!("{e}"))
            .collect();
        assert!(
            failures.is_empty(),
            "{opt}: untranslatable:\n{}",
            failures.join("\n")
        );
        for t in fs.iter().filter(|t| t.result.is_ok()) {
            let f = &t.result.as_ref().unwrap().func;
            use cranelift_codegen::settings::Configurable;
            let mut flags = cranelift_codegen::settings::builder();
            flags.set("preserve_frame_pointers", "true").unwrap();
            let isa = cranelift_codegen::isa::lookup_by_name("x86_64")
                .unwrap()
                .finish(cranelift_codegen::settings::Flags::new(flags))
                .unwrap();
            cranelift_codegen::verify_function(f, &*isa)
                .unwrap_or_else(|e| panic!("{opt} {}: {e}\n{}", t.name, f.display()));
        }
        // Calls: module functions by name, libc through symbols, variadic
        // callees through their thunks.
        assert!(names.functions.iter().any(|n| n == "twice"), "{opt}");
        assert!(
            names.symbols.iter().any(|n| n == "__orc_va.snprintf"),
            "{opt}"
        );
        assert!(names.symbols.iter().any(|n| n == "fmod"), "{opt}");
        // The computed goto's table has a tier-0 copy of block indices.
        let goto = fs.iter().find(|t| t.name == "computed_goto").unwrap();
        let goto = goto.result.as_ref().unwrap();
        assert!(!goto.osr_safe, "{opt}");
        assert_eq!(goto.data.len(), 1, "{opt}");
        let table = &goto.data[0];
        assert!(
            table.symbol.ends_with("$t0.computed_goto"),
            "{}",
            table.symbol
        );
        let ids: Vec<u64> = table
            .bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(ids.len(), 3);
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 3, "{ids:?}");
        assert!(ids.iter().all(|&i| (1..=3).contains(&i)), "{ids:?}");
        let plain = fs.iter().find(|t| t.name == "add_l").unwrap();
        assert!(plain.result.as_ref().unwrap().osr_safe);
    }
}

#[test]
fn unsupported_constructs_are_named_and_do_not_stop_the_others() {
    let src = std::env::temp_dir().join(format!("orc-to-clif-refused-{}.c", std::process::id()));
    std::fs::write(
        &src,
        r#"
#include <setjmp.h>
static jmp_buf env;
int uses_setjmp(int x) { if (setjmp(env)) return 1; return x; }
int uses_asm(int x) { int y; __asm__("mov %1, %0" : "=r"(y) : "r"(x)); return y; }
int dynamic_alloca(int n) { volatile char buf[n]; buf[0] = 1; return buf[0] + n; }
long double long_double(long double x) { return x * 2; }
int mutable_table(const unsigned char *code) {
    static void *tbl[] = { &&a, &&b };
    int acc = 0;
    goto *tbl[*code++];
a: acc++; goto *tbl[*code++];
b: tbl[0] = &&b; return acc;
}
int fine(int x) { return x + 1; }
"#,
    )
    .unwrap();
    for opt in ["-O0", "-O2"] {
        let mut names = Names::default();
        let fs = translate(&bitcode(&src, opt, &[]), &mut names);
        assert_eq!(translated_ok(&fs), ["fine"], "{opt}");
        let reason = |f: &str| {
            fs.iter()
                .find(|t| t.name == f)
                .unwrap()
                .result
                .as_ref()
                .unwrap_err()
                .reason
                .clone()
        };
        assert!(
            reason("uses_setjmp").contains("returns_twice"),
            "{}",
            reason("uses_setjmp")
        );
        assert!(
            reason("uses_asm").contains("inline asm"),
            "{}",
            reason("uses_asm")
        );
        assert!(
            reason("dynamic_alloca").contains("alloca"),
            "{}",
            reason("dynamic_alloca")
        );
        assert!(
            reason("long_double").contains("x86_fp80"),
            "{}",
            reason("long_double")
        );
        assert!(
            reason("mutable_table").contains("block addresses"),
            "{}",
            reason("mutable_table")
        );
    }
    let _ = std::fs::remove_file(&src);
}

#[test]
fn bad_bitcode_is_an_error() {
    let mut names = Names::default();
    let err = translate_module("junk", b"not bitcode", &mut names).unwrap_err();
    assert!(!err.is_empty());
}

/// Why a function of a real program may stay out of tier 0.
fn documented(reason: &str) -> bool {
    reason.starts_with("intrinsic llvm.")
        || reason.contains("(not 64 or 128 bits)")
        || reason.contains("returns_twice")
        || reason.starts_with("inline asm")
        || reason.starts_with("dynamic alloca")
        || reason.contains("x86_fp80")
        || reason.contains("invoke ")
        || reason.contains("landingpad")
}

#[test]
fn the_c_programs_of_the_ir_tests_translate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ir_c");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    let mut total = 0;
    for file in &files {
        for opt in ["-O0", "-O2"] {
            let mut names = Names::default();
            let fs = translate(&bitcode(file, opt, &[]), &mut names);
            total += fs.len();
            for t in &fs {
                if let Err(e) = &t.result {
                    eprintln!("{} {opt}: {e}", file.display());
                    assert!(documented(&e.reason), "{} {opt}: {e}", file.display());
                }
            }
        }
    }
    assert!(total > 50, "{total}");
}

#[test]
fn cxx_translates_or_names_what_stays_out() {
    for opt in ["-O0", "-O2"] {
        let bc = bitcode(
            &corpus_dir().join("cxx.cpp"),
            opt,
            &["-x", "c++", "-std=c++17"],
        );
        let mut names = Names::default();
        let fs = translate(&bc, &mut names);
        let ok = translated_ok(&fs).len();
        for t in &fs {
            if let Err(e) = &t.result {
                eprintln!("{opt}: {e}");
            }
        }
        assert!(ok * 3 > fs.len(), "{opt}: {ok} of {} translated", fs.len());
        for t in &fs {
            if let Err(e) = &t.result {
                assert!(
                    documented(&e.reason)
                        || e.reason.starts_with("resume ")
                        || e.reason.contains("thread-local"),
                    "{opt}: {e}"
                );
            }
        }
        // Exception handling stays out of tier 0.
        let catches = fs.iter().find(|t| t.name == "_Z7catchesi").unwrap();
        assert!(catches.result.is_err(), "{opt}");
    }
}

#[test]
fn locals_of_o0_code_live_in_ssa_values_unless_their_address_escapes() {
    let src = std::env::temp_dir().join(format!("orc-to-clif-locals-{}.c", std::process::id()));
    std::fs::write(
        &src,
        r#"
void take(int *p);
int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += i; return s; }
double mixed(double x, long k, _Bool b) { double r = x; char *p = 0; if (b) r += k; return r + (p == 0); }
int escapes(int x) { int y = x; take(&y); return y; }
"#,
    )
    .unwrap();
    let mut names = Names::default();
    let fs = translate(&bitcode(&src, "-O0", &[]), &mut names);
    let slots = |f: &str| {
        let t = fs.iter().find(|t| t.name == f).unwrap();
        t.result.as_ref().unwrap().func.sized_stack_slots.len()
    };
    assert_eq!(slots("sum"), 0);
    assert_eq!(slots("mixed"), 0);
    assert_eq!(slots("escapes"), 1);
    let _ = std::fs::remove_file(&src);
}
