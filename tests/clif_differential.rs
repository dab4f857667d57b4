//! Differential testing of Cranelift IR execution: random CLIF functions
//! (`support::clifgen`) run under `cranelift-interpreter`, as native
//! Cranelift code, and translated to LLVM IR and compiled by LLVM; results
//! and traps must agree (`support::differential`).
//!
//! Every run tries the fixed regression seeds and then `ORC_FUZZ_CASES`
//! cases (default 300) from seed `ORC_FUZZ_SEED` (default 0). A soak:
//!
//! ```text
//! ORC_FUZZ_CASES=5000 ORC_FUZZ_SEED=1000000 cargo test --release --test clif_differential
//! ```
//!
//! The run prints a summary (cases, inputs, agreements, skipped by
//! construct, disagreements); a disagreement prints its seed, the CLIF of
//! the case and the inputs with each runner's verdict, and fails the test.

mod support;

use support::differential::{Harness, Summary};

/// Seeds that once found a disagreement; always tried.
const REGRESSION_SEEDS: &[u64] = &[];

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

#[test]
fn random_clif_agrees_across_interpreter_cranelift_and_llvm() {
    let cases = env_u64("ORC_FUZZ_CASES", 300);
    let start = env_u64("ORC_FUZZ_SEED", 0);
    let mut harness = Harness::new();
    let mut summary = Summary::default();
    for seed in REGRESSION_SEEDS.iter().copied().chain(start..start + cases) {
        harness.run_seed(seed, &mut summary);
    }
    print!("{summary}");
    for report in summary.disagreements.iter().take(10) {
        println!("{report}");
    }
    assert!(
        summary.disagreements.is_empty(),
        "{} disagreements (the first ten are printed above)",
        summary.disagreements.len()
    );
    assert!(summary.agreements > 0, "no input ran");
}
