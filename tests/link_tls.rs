//! Thread-local storage under `orc link`: the TLS corpus programs
//! (`tests/ir_corpus/tls/`, C with threads started before and after main
//! first touches its thread-locals, and `tests/ir_corpus/tls_cxx/`, C++
//! `thread_local` objects with constructors and destructors, dynamic
//! initialization across files) compiled at test time by gcc/g++ and
//! clang-19/clang++-19 in every TLS model, linked by `orc link` and by the
//! compiler, must print the same and exit with the same status. (The same
//! programs' IR runs under `orc run` in `tests/ir_corpus.rs`.) Also C++
//! inline and template thread-locals in COMDAT groups (`tests/link_tls/`).

mod native;

use std::path::{Path, PathBuf};

use native::{same_as_native, work_dir};

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ir_corpus")
        .join(rel)
}

/// Models, as flags.
const MODELS: &[(&str, &[&str])] = &[
    (
        "global-dynamic",
        &["-O2", "-fPIC", "-ftls-model=global-dynamic"],
    ),
    (
        "local-dynamic",
        &["-O2", "-fPIC", "-ftls-model=local-dynamic"],
    ),
    (
        "initial-exec",
        &["-O2", "-fPIC", "-ftls-model=initial-exec"],
    ),
    ("local-exec", &["-O2", "-fPIE", "-ftls-model=local-exec"]),
    ("tls-descriptors", &["-O2", "-fPIC", "-mtls-dialect=gnu2"]),
    ("no-pic", &["-O2", "-fno-PIC"]),
    ("pie-O0", &["-O0", "-fPIE"]),
    // Vectorized code: TLS operands in VEX-encoded instructions.
    ("avx2-O3", &["-O3", "-mavx2", "-fPIE"]),
];

/// Whether this machine runs the model's code (AVX2 for `avx2-O3`).
fn runs_here(model: &str) -> bool {
    model != "avx2-O3" || std::arch::is_x86_feature_detected!("avx2")
}

/// The same flags for every file.
fn flags_for(flags: &'static [&'static str]) -> impl Fn(&Path) -> Vec<&'static str> {
    move |_: &Path| flags.to_vec()
}

#[test]
fn c_thread_locals_in_every_model() {
    let sources = [corpus("tls/main.c"), corpus("tls/counters.c")];
    for compiler in ["gcc", "clang-19"] {
        for &(model, flags) in MODELS.iter().filter(|m| runs_here(m.0)) {
            let dir = work_dir("link_tls", &format!("c-{compiler}-{model}"));
            let native = same_as_native(&dir, compiler, &sources, &flags_for(flags), &[], &["2"]);
            assert!(
                native.stdout.contains("worker-6 hits=1200"),
                "{}",
                native.stdout
            );
        }
    }
}

#[test]
fn cxx_thread_local_objects_in_every_model() {
    let sources = [corpus("tls_cxx/main.cpp"), corpus("tls_cxx/registry.cpp")];
    for compiler in ["g++", "clang++-19"] {
        for &(model, flags) in MODELS.iter().filter(|m| runs_here(m.0)) {
            let dir = work_dir("link_tls", &format!("cxx-{compiler}-{model}"));
            let native = same_as_native(
                &dir,
                compiler,
                &sources,
                &flags_for(flags),
                &["-lstdc++"],
                &["3"],
            );
            assert_eq!(
                native.stdout.matches("destroy global").count(),
                4,
                "{}",
                native.stdout
            );
        }
    }
}

/// C++ inline and template thread-locals, defined in COMDAT groups by both
/// files (one copy kept, the other file's references bound to it).
#[test]
fn cxx_inline_and_template_thread_locals() {
    let dir_of = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/link_tls");
    let sources = [dir_of.join("inline_a.cpp"), dir_of.join("inline_b.cpp")];
    for compiler in ["g++", "clang++-19"] {
        for &(model, flags) in MODELS.iter().filter(|m| runs_here(m.0)) {
            let dir = work_dir("link_tls", &format!("inline-{compiler}-{model}"));
            let native = same_as_native(
                &dir,
                compiler,
                &sources,
                &flags_for(flags),
                &["-lstdc++"],
                &[],
            );
            assert_eq!(
                native.stdout,
                "thread init-t-b 105 218\nmain init-a-b 6 20\n"
            );
        }
    }
}
