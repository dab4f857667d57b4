//! Every shared Kaleidoscope program (tests/programs/kaleidoscope/*.kal)
//! run twice, through the tier-0 path (lower_clif + CraneliftLayer) and the
//! tier-1 path (lower_llvm + LlvmLayer), in the facade's layout: bodies
//! `f$tN` in `main.impl`, lazy stubs `f` in `main`, host functions in
//! `host`. Every top-level expression must give the same bits, and the
//! output of `putchard`/`printd` must be the same byte for byte (and equal
//! to the program's `.out` file).

#[path = "layers/mod.rs"]
mod support;

use orc_kaleidoscope::{parse_and_check, Function, KaleidoscopeLlvmModule};
use orc_llvm::{LlvmCompiler, LlvmConfig};
use support::{programs, Session, Tier};

#[test]
fn every_shared_program_gives_the_same_values_and_output_under_both_tiers() {
    let programs = programs();
    assert!(programs.len() >= 6, "the shared programs folder is missing");
    for (name, src, path) in programs {
        let program = parse_and_check(&src).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let t0 = Session::new(Tier::Zero);
        let (values0, out0) = t0.run(&program);
        let t1 = Session::new(Tier::One);
        let (values1, out1) = t1.run(&program);
        assert_eq!(
            values0, values1,
            "{name}: top-level values differ between tiers"
        );
        assert_eq!(out0, out1, "{name}: output differs between tiers");
        let expected = std::fs::read_to_string(path.with_extension("out")).unwrap();
        assert_eq!(
            out1, expected,
            "{name}: tier-1 output differs from the .out file"
        );
        let stats = t1.llvm.stats();
        assert_eq!(stats.failures, 0, "{name}");
        assert!(stats.modules >= program.top_level_exprs().count(), "{name}");
        t0.es.end_session().unwrap();
        t1.es.end_session().unwrap();
    }
}

/// Programs where fused multiply-add or reassociation would change the
/// printed bits.
const FP_SENSITIVE: &str = "
def fma3(a b c) a * b + c;
def cancel(x) (x + 10000000000000000) - 10000000000000000;
def tiny(x) x * x * 0.0000001 * 10000000;
fma3(0.1, 10, 0 - 1);
fma3(1.0000001, 1.0000001, 0 - 1.0000002);
cancel(1.5);
tiny(0.3);
0 - 0;
";

#[test]
fn floating_point_is_bit_identical_and_never_fused() {
    let program = parse_and_check(FP_SENSITIVE).unwrap();
    let (values0, _) = Session::new(Tier::Zero).run(&program);
    let (values1, _) = Session::new(Tier::One).run(&program);
    assert_eq!(values0, values1);

    let compiler = LlvmCompiler::new(LlvmConfig {
        capture_asm: true,
        capture_ir: true,
        ..LlvmConfig::default()
    })
    .unwrap();
    let compiled = compiler
        .compile(KaleidoscopeLlvmModule::new(
            "fma3",
            program.functions().cloned().collect(),
        ))
        .unwrap();
    let asm = compiled.asm.unwrap();
    assert!(
        !asm.contains("fmadd") && !asm.contains("fmsub"),
        "fused multiply-add in:\n{asm}"
    );
    for f in &compiled.functions {
        let ir = f.ir.as_deref().unwrap();
        assert!(!ir.contains("contract") && !ir.contains("fast"), "{ir}");
        assert!(!ir.contains("alloca"), "mem2reg did not run:\n{ir}");
    }
}

#[test]
fn a_lowering_error_fails_only_its_unit() {
    // `f` calls `g` with two arguments after declaring it with one: the
    // module cannot be built; the next unit is unaffected.
    let src = "extern g(x); def f(x) g(x) + g(x, x); def h(x) x * 3;";
    let program = parse_and_check(src);
    // The checker rejects it; lower the unchecked AST directly.
    assert!(program.is_err());
    let program = orc_kaleidoscope::parse_program(src).unwrap();
    let t1 = Session::new(Tier::One);
    let funcs: Vec<Function> = program.functions().cloned().collect();
    t1.add_module("f", vec![funcs[0].clone()]);
    t1.add_module("h", vec![funcs[1].clone()]);
    let err = t1.bodies.lookup_symbol("f").unwrap_err().to_string();
    assert!(err.contains("'g' is used with 2 arguments"), "{err}");
    let addr = t1.bodies.lookup_symbol("h").unwrap().addr;
    // SAFETY: `h` is a one-parameter Kaleidoscope function.
    let h: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
    assert_eq!(h(2.0), 6.0);
    t1.es.end_session().unwrap();
}
