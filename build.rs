//! Links the `orc` binary as a position-dependent executable. It carries
//! LLVM statically (about 100 MB): as a PIE, every start would spend
//! milliseconds applying relative relocations to LLVM's data, which tier-0
//! runs never use. JIT'd code does not care where the binary lives.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
