//! orc-llvm links LLVM's x86-64 target alone, and no Polly (see
//! `src/native_target.rs`): the other targets' libraries and Polly, whose
//! static constructors would run at every process start, stay out of
//! binaries that use it.

#![cfg(target_arch = "x86_64")]

use object::{Object, ObjectSymbol};

/// The names of the symbols this test binary defines.
fn defined_symbols() -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let bytes = std::fs::read(&exe).expect("the test binary reads");
    let file = object::File::parse(&*bytes).expect("the test binary parses as an object");
    file.symbols()
        .filter(|s| s.is_definition())
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .collect()
}

#[test]
fn only_the_x86_64_target_is_linked() {
    // Make sure LLVM is linked in and initialized, as any user does.
    let host = orc_llvm::host_target().expect("the host target initializes");
    assert!(host.triple.starts_with("x86_64"), "{}", host.triple);

    let defined = defined_symbols();
    assert!(
        defined.iter().any(|s| s == "LLVMInitializeX86Target"),
        "the x86-64 target should be linked"
    );
    let others: Vec<&String> = defined
        .iter()
        .filter(|s| {
            s.starts_with("LLVMInitialize")
                && s.ends_with("Target")
                && s.as_str() != "LLVMInitializeX86Target"
        })
        .collect();
    assert!(
        others.is_empty(),
        "other LLVM targets are linked: {others:?}"
    );
}

#[test]
fn polly_is_not_linked() {
    // Compile through the pass pipeline, as every user does: the pass
    // builder is what used to pull Polly in.
    use orc_core::SymbolFlags;
    use orc_llvm::{FnLlvmModule, LlvmCompiler, LlvmConfig};
    let compiler = LlvmCompiler::new(LlvmConfig::default()).expect("a compiler");
    let module = FnLlvmModule::new(
        "seven",
        vec![(
            "seven".into(),
            SymbolFlags::EXPORTED | SymbolFlags::CALLABLE,
        )],
        |ctx| {
            let m = ctx.create_module("seven");
            let i32t = ctx.i32_type();
            let f = m.add_function("seven", i32t.fn_type(&[], false), None);
            let b = ctx.create_builder();
            b.position_at_end(ctx.append_basic_block(f, "entry"));
            b.build_return(Some(&i32t.const_int(7, false)))
                .map_err(|e| e.to_string())?;
            Ok(m)
        },
    );
    let compiled = compiler.compile(module).expect("the module compiles");
    assert!(compiled.functions[0].code_size > 0);

    let defined = defined_symbols();
    assert!(
        defined
            .iter()
            .any(|s| s.starts_with("_ZN4llvm11PassBuilder")),
        "the pass builder should be linked"
    );
    let polly: Vec<&String> = defined
        .iter()
        .filter(|s| s.starts_with("_ZN5polly"))
        .take(5)
        .collect();
    assert!(polly.is_empty(), "Polly is linked: {polly:?} ...");
}

#[test]
fn initializing_every_target_initializes_x86_64() {
    use orc_llvm::inkwell::targets::{InitializationConfig, Target};
    Target::initialize_all(&InitializationConfig::default());
    assert!(Target::from_name("x86-64").is_some());
    assert!(Target::from_name("aarch64").is_none());
}
