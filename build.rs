//! Links the `orc` binary for a fast start. It carries LLVM statically
//! (about 100 MB), and what a start costs is mostly page faults on it:
//! - `-no-pie`: as a PIE, every start would spend milliseconds applying
//!   relative relocations to LLVM's data, which tier-0 runs never use.
//!   JIT'd code does not care where the binary lives.
//! - `-z keep-text-section-prefix`: the linker keeps the static
//!   constructors (`.text.startup.*`, LLVM has ~400 of them) together in
//!   one output section instead of scattering them through 35 MB of
//!   `.text`, so running them faults in fewer pages (`orc --version`: 717
//!   page faults before, 677 after; about 0.2 ms).
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,keep-text-section-prefix");
    println!("cargo:rerun-if-changed=build.rs");
}
