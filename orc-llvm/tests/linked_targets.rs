//! orc-llvm links LLVM's x86-64 target alone (see `src/native_target.rs`):
//! the other targets' libraries, and their static constructors run at
//! every process start, stay out of binaries that use it.

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
fn initializing_every_target_initializes_x86_64() {
    use orc_llvm::inkwell::targets::{InitializationConfig, Target};
    Target::initialize_all(&InitializationConfig::default());
    assert!(Target::from_name("x86-64").is_some());
    assert!(Target::from_name("aarch64").is_none());
}
