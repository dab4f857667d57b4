//! The IR frontend in-process: located diagnostics for invalid IR, what the
//! lazy split compiles and when (small callees with their caller, nothing
//! unreachable), promoted local names, eager loading, and a function that
//! fails inside LLVM failing alone, even when compiled speculatively.

use std::sync::Arc;

use orc_core::lazy::LazyReexportsManager;
use orc_core::link::ObjectLinkingLayer;
use orc_core::{DynamicLibrarySearchGenerator, ExecutionSession, JitDylib};
use orc_llvm::{LlvmCompiler, LlvmConfig, LlvmLayer};
use orc_llvm_ir::{body_symbol, IrError, IrProgram, IrTarget, LoadMode, SpeculationLimits};

struct Jit {
    es: ExecutionSession,
    main: JitDylib,
    bodies: JitDylib,
    layer: Arc<LlvmLayer>,
    lazy: Arc<LazyReexportsManager>,
    objects: Arc<ObjectLinkingLayer>,
}

impl Jit {
    fn new() -> Jit {
        let es = ExecutionSession::new();
        let host = es.create_jit_dylib("host").unwrap();
        host.add_generator(Arc::new(DynamicLibrarySearchGenerator::process(None)))
            .unwrap();
        let main = es.create_jit_dylib("main").unwrap();
        main.add_to_link_order(&host).unwrap();
        let bodies = es.create_jit_dylib("main.impl").unwrap();
        bodies.set_link_order(&[&main, &host]).unwrap();
        let objects = ObjectLinkingLayer::new(&es);
        let layer = LlvmLayer::new(
            LlvmCompiler::new(LlvmConfig::default()).unwrap(),
            objects.clone(),
        );
        let lazy = LazyReexportsManager::new(&es).unwrap();
        Jit {
            es,
            main,
            bodies,
            layer,
            lazy,
            objects,
        }
    }

    fn add(&self, program: &IrProgram, mode: LoadMode) -> Result<(), IrError> {
        let target = IrTarget {
            layer: &self.layer,
            lazy: &self.lazy,
            main: &self.main,
            bodies: &self.bodies,
        };
        program.add(&target, mode, None)
    }

    fn init(&self) {
        // SAFETY: the test modules' constructors only store to their own
        // globals.
        unsafe { self.objects.run_initializers(&self.bodies) }.unwrap();
    }

    fn call_i32(&self, name: &str, x: i32) -> i32 {
        let addr = self.main.lookup_symbol(name).unwrap().addr;
        // SAFETY: every function called this way is `i32 (i32)`.
        let f: extern "C" fn(i32) -> i32 = unsafe { std::mem::transmute(addr.to_ptr::<u8>()) };
        f(x)
    }

    fn compiled(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .layer
            .stats()
            .functions
            .into_iter()
            .map(|f| f.name)
            .collect();
        names.sort();
        names
    }
}

const PROGRAM: &str = r#"
@counter = global i32 0
@table = constant [2 x ptr] [ptr @double_it, ptr @helper]
@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @init, ptr null }]

@twice = alias i32 (i32), ptr @double_it

define internal void @init() {
  store i32 1000, ptr @counter
  ret void
}

define internal i32 @helper(i32 %x) {
  %c = load i32, ptr @counter
  %r = add i32 %x, %c
  ret i32 %r
}

define i32 @double_it(i32 %x) {
  %r = mul i32 %x, 2
  ret i32 %r
}

define i32 @entry(i32 %x) {
  %p = getelementptr [2 x ptr], ptr @table, i64 0, i64 1
  %f = load ptr, ptr %p
  %a = call i32 %f(i32 %x)
  %b = call i32 @twice(i32 %a)
  ret i32 %b
}

define i32 @unused(i32 %x) {
  ret i32 %x
}
"#;

#[test]
fn lazy_mode_compiles_data_now_and_each_function_on_first_call() {
    let jit = Jit::new();
    let program = IrProgram::parse("prog.ll", PROGRAM).unwrap();
    assert!(program.has_initializers());
    assert!(program.defines("entry") && !program.defines("helper"));
    jit.add(&program, LoadMode::Lazy).unwrap();
    assert_eq!(jit.layer.stats().modules, 1, "only the data unit so far");
    jit.init();
    // helper(5) = 1005 through the table, then doubled through the alias.
    assert_eq!(jit.call_i32("entry", 5), 2010);
    assert_eq!(jit.call_i32("twice", 4), 8);
    let compiled = jit.compiled();
    assert!(compiled.contains(&body_symbol("entry")), "{compiled:?}");
    assert!(compiled.contains(&body_symbol("double_it")), "{compiled:?}");
    assert!(!compiled.contains(&body_symbol("unused")), "{compiled:?}");
    assert!(
        compiled.iter().any(|n| n.contains("helper")),
        "{compiled:?}"
    );
    jit.es.end_session().unwrap();
}

#[test]
fn eager_mode_compiles_the_whole_module_at_once() {
    let jit = Jit::new();
    let program = IrProgram::parse("prog.ll", PROGRAM).unwrap();
    jit.add(&program, LoadMode::Eager).unwrap();
    assert_eq!(jit.layer.stats().modules, 1);
    jit.init();
    assert_eq!(jit.call_i32("entry", 5), 2010);
    assert_eq!(jit.call_i32("unused", 9), 9);
    assert_eq!(jit.layer.stats().modules, 1);
    jit.es.end_session().unwrap();
}

#[test]
fn local_names_of_two_modules_do_not_clash() {
    let jit = Jit::new();
    let module = |n: i32, f: &str| {
        format!(
            "define internal i32 @helper(i32 %x) {{\n  %r = add i32 %x, {n}\n  ret i32 %r\n}}\n\
             define i32 @{f}(i32 %x) {{\n  %r = call i32 @helper(i32 %x)\n  ret i32 %r\n}}\n"
        )
    };
    let one = IrProgram::parse("one.ll", module(1, "f1")).unwrap();
    let two = IrProgram::parse("two.ll", module(2, "f2")).unwrap();
    jit.add(&one, LoadMode::Lazy).unwrap();
    jit.add(&two, LoadMode::Lazy).unwrap();
    assert_eq!(jit.call_i32("f1", 10), 11);
    assert_eq!(jit.call_i32("f2", 10), 12);
    jit.es.end_session().unwrap();
}

#[test]
fn a_function_llvm_cannot_compile_fails_alone() {
    let src = r#"
define i32 @bad(i32 %x) {
  call void asm sideeffect "not_an_instruction", ""()
  ret i32 %x
}
define i32 @good(i32 %x) {
  %r = sub i32 %x, 1
  ret i32 %r
}
"#;
    let jit = Jit::new();
    let program = IrProgram::parse("asm.ll", src).unwrap();
    jit.add(&program, LoadMode::Lazy).unwrap();
    let err = jit
        .bodies
        .lookup_symbol(&body_symbol("bad"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not_an_instruction"), "{err}");
    assert_eq!(jit.call_i32("good", 10), 9);
    assert_eq!(jit.layer.stats().failures, 1);
    jit.es.end_session().unwrap();

    // Eagerly, the whole module is one unit: the error comes from `add`.
    let jit = Jit::new();
    let err = jit.add(&program, LoadMode::Eager).unwrap_err();
    assert!(matches!(err, IrError::Compile(_)), "{err}");
    jit.es.end_session().unwrap();
}

fn invalid(name: &str, bytes: &[u8]) -> orc_llvm_ir::IrDiagnostic {
    match IrProgram::parse(name, bytes) {
        Err(IrError::Invalid(d)) => d,
        other => panic!("expected invalid IR, got {other:?}"),
    }
}

#[test]
fn a_parse_error_has_the_file_line_and_column() {
    let d = invalid("bad.ll", b"define i32 @f() {\n  ret i32 %nope\n}\n");
    assert_eq!((d.line, d.col), (Some(2), Some(11)));
    let text = d.to_string();
    assert!(
        text.starts_with("bad.ll:2:11: error: use of undefined value '%nope'"),
        "{text}"
    );
}

#[test]
fn a_verifier_error_is_located_at_the_offending_instruction() {
    let src = "define double @f(double %x) {\nentry:\n  %y = fadd double %z, 1.0\n  %z = fadd double %x, 1.0\n  ret double %y\n}\n";
    let d = invalid("v.ll", src.as_bytes());
    assert!(d.message.contains("does not dominate"), "{}", d.message);
    assert_eq!((d.line, d.col), (Some(4), Some(3)), "{d:?}");
    assert!(
        d.to_string()
            .starts_with("v.ll:4:3: error: Instruction does not dominate"),
        "{d}"
    );
}

#[test]
fn garbage_bitcode_and_missing_files_are_errors() {
    let d = invalid(
        "x.bc",
        b"BC\xc0\xde\x35\x14\x00\x00\x05\x00\x00\x00\x62\x0c\x30\x24",
    );
    assert_eq!(d.line, None);
    assert!(d.to_string().starts_with("x.bc: error: "), "{d}");
    let err = IrProgram::load("/nonexistent/prog.ll").unwrap_err();
    assert!(matches!(err, IrError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/prog.ll"));
}

/// `entry` calls `mid` (which calls `leaf`) and a function it finds in a
/// table; `guarded` calls `cannot_select` (an AArch64 intrinsic) only for
/// big arguments; `unused` is referred to by nothing.
const CALL_TREE: &str = r#"
@ops = internal constant [1 x ptr] [ptr @via_table]

declare i32 @llvm.aarch64.crc32b(i32, i32)

define internal i32 @via_table(i32 %x) {
  %r = add i32 %x, 100
  ret i32 %r
}

define i32 @leaf(i32 %x) {
  %r = add i32 %x, 1
  ret i32 %r
}

define i32 @mid(i32 %x) {
  %r = call i32 @leaf(i32 %x)
  ret i32 %r
}

define i32 @entry(i32 %x) {
  %a = call i32 @mid(i32 %x)
  %f = load ptr, ptr @ops
  %b = call i32 %f(i32 %a)
  ret i32 %b
}

define i32 @unused(i32 %x) {
  %r = call i32 @leaf(i32 %x)
  ret i32 %r
}

define i32 @cannot_select(i32 %x) {
  %r = call i32 @llvm.aarch64.crc32b(i32 %x, i32 %x)
  ret i32 %r
}

define i32 @guarded(i32 %x) {
  %big = icmp sgt i32 %x, 1000
  br i1 %big, label %bad, label %fine
bad:
  %r = call i32 @cannot_select(i32 %x)
  ret i32 %r
fine:
  %s = add i32 %x, 2
  ret i32 %s
}
"#;

/// The source names of the compiled functions, sorted.
fn compiled_sources(jit: &Jit) -> Vec<String> {
    let mut names: Vec<String> = jit
        .compiled()
        .iter()
        .map(|n| {
            let n = n.strip_suffix("$t1").unwrap_or(n);
            n.rsplit('.').next().unwrap_or(n).to_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn lazy_mode_compiles_small_callees_with_their_caller_and_nothing_unreachable() {
    let jit = Jit::new();
    let program = IrProgram::parse("tree.ll", CALL_TREE).unwrap();
    jit.add(&program, LoadMode::Lazy).unwrap();
    assert_eq!(jit.layer.stats().modules, 1, "only the data unit so far");
    // leaf(1) = 2 through mid, then + 100 through the table.
    assert_eq!(jit.call_i32("entry", 1), 102);
    assert_eq!(jit.layer.stats().modules, 2, "one batch");
    assert_eq!(
        compiled_sources(&jit),
        ["entry", "leaf", "mid", "via_table"],
        "everything entry's code reaches, nothing else"
    );
    assert_eq!(jit.call_i32("mid", 5), 6);
    assert_eq!(jit.layer.stats().modules, 2, "mid was compiled already");
    assert_eq!(jit.call_i32("unused", 5), 6);
    assert_eq!(jit.layer.stats().modules, 3);
    assert!(compiled_sources(&jit).contains(&"unused".to_owned()));
    jit.es.end_session().unwrap();

    // Without speculation, each function is compiled on its own first call.
    let jit = Jit::new();
    let program = program.with_speculation(SpeculationLimits::NONE);
    jit.add(&program, LoadMode::Lazy).unwrap();
    assert_eq!(jit.call_i32("entry", 1), 102);
    assert_eq!(
        jit.layer.stats().modules,
        5,
        "data, entry, mid, leaf, via_table"
    );
    jit.es.end_session().unwrap();
}

#[test]
fn a_callee_that_cannot_be_compiled_fails_only_when_called_itself() {
    let jit = Jit::new();
    let program = IrProgram::parse("tree.ll", CALL_TREE).unwrap();
    jit.add(&program, LoadMode::Lazy).unwrap();
    // The batch of `guarded` and `cannot_select` fails; `guarded` is then
    // compiled alone.
    assert_eq!(jit.call_i32("guarded", 5), 7);
    let stats = jit.layer.stats();
    assert_eq!((stats.failures, stats.modules), (1, 2), "data and guarded");
    assert!(!compiled_sources(&jit).contains(&"cannot_select".to_owned()));
    let err = jit
        .bodies
        .lookup_symbol(&body_symbol("cannot_select"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Cannot select: intrinsic %llvm.aarch64.crc32b"),
        "{err}"
    );
    assert!(err.contains("'tree.ll:cannot_select'"), "{err}");
    // The rest of the program still compiles and runs.
    assert_eq!(jit.call_i32("entry", 1), 102);
    jit.es.end_session().unwrap();
}

/// Regression: a long `main` calling 2,000 small functions in turn used to
/// compile each of them as a unit of its own after the first batch (each
/// unit reads the whole module: quadratic, 43 s for 5,000), because only
/// the requested function's own callees were speculated on.
#[test]
fn a_long_function_calling_many_small_ones_compiles_them_in_a_few_batches() {
    let n = 2000;
    let mut src = String::new();
    for i in 0..n {
        src.push_str(&format!(
            "define i32 @f{i}(i32 %x) {{\n  %r = add i32 %x, 1\n  ret i32 %r\n}}\n"
        ));
    }
    src.push_str("define i32 @entry(i32 %x0) {\n");
    for i in 0..n {
        src.push_str(&format!("  %x{} = call i32 @f{i}(i32 %x{i})\n", i + 1));
    }
    src.push_str(&format!("  ret i32 %x{n}\n}}\n"));
    let jit = Jit::new();
    let program = IrProgram::parse("wide.ll", src).unwrap();
    jit.add(&program, LoadMode::Lazy).unwrap();
    assert_eq!(jit.call_i32("entry", 5), 2005);
    let stats = jit.layer.stats();
    assert_eq!(stats.functions_compiled, n + 1);
    // 2,000 units of 2 instructions, at most 2,048 instructions a batch.
    assert!(stats.modules <= 3, "{} modules", stats.modules);
    jit.es.end_session().unwrap();
}
