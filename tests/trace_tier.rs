//! `--trace-tier` logs every tier change as it happens: compiles, hot and
//! queued functions, promotions, OSR entries and released bodies.

use std::process::{Command, Output};

use orc_test_support::run_with_stdin;

fn orc(args: &[&str], stdin: &str) -> Output {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_orc"))
            .args(args)
            .env_remove("ORC_TIER")
            .env_remove("ORC_TRACE_TIER"),
        stdin,
    )
}

/// The trace lines (`orc: tier T ms: EVENT`) as (time, event).
fn events(stderr: &str) -> Vec<(f64, String)> {
    stderr
        .lines()
        // The REPL's prompts (`ready> `) share the line.
        .filter_map(|l| l.split_once("orc: tier ").map(|(_, e)| e))
        .map(|l| {
            let (time, event) = l.split_once(" ms: ").expect("a time");
            (time.trim().parse().expect("a number"), event.to_owned())
        })
        .collect()
}

fn position(events: &[(f64, String)], prefix: &str) -> usize {
    events
        .iter()
        .position(|(_, e)| e.starts_with(prefix))
        .unwrap_or_else(|| panic!("no event '{prefix}...' in {events:#?}"))
}

/// A loop too long to finish in tier 0: counted, queued, compiled by
/// tier 1 (with its OSR entry), promoted; the running frame moves by OSR
/// and the tier-0 body is released. Promotions run on the program's
/// thread (`--tier-up-threads 0`), so the order is fixed.
#[test]
fn a_hot_loop_is_traced_from_compile_to_osr() {
    let program = "def count(n) var s = 0 in (for i = 0, i < n in s = s + i) * 0 + s;\n\
                   count(2000000);\n";
    let out = orc(
        &[
            "run",
            "-",
            "--tier",
            "adaptive",
            "--tier-up-threads",
            "0",
            "--print-results",
            "--trace-tier",
        ],
        program,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The same result as tier 0 alone.
    let plain = orc(&["run", "-", "--tier", "0", "--print-results"], program);
    assert_eq!(out.stdout, plain.stdout, "{plain:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Evaluated to 2000001"),
        "{out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events = events(&stderr);
    let order = [
        "compiled count$t0 (tier 0",
        "hot count$t0 (count ",
        "queued count$t0 for tier 1",
        "compiled count$t1 (tier 1",
        "compiled count$t1$osr0 (tier 1",
        "promoted count v0 to tier 1",
        "released count v0 tier 0 body",
        "OSR entered count loop 0",
    ];
    let at: Vec<usize> = order.iter().map(|p| position(&events, p)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{stderr}");
    // Times are since start, in order.
    assert!(events.windows(2).all(|w| w[0].0 <= w[1].0), "{stderr}");
    // Every line is an event: nothing else went to stderr.
    assert_eq!(events.len(), stderr.lines().count(), "{stderr}");
}

/// A redefinition in the REPL compiles a new version and releases the old
/// body; without the flag nothing is logged.
#[test]
fn a_redefinition_releases_the_old_body_and_no_flag_logs_nothing() {
    let session = "def f(x) x + 1;\nf(1);\ndef f(x) x + 2;\nf(1);\n";
    let out = orc(&["repl", "--trace-tier"], session);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events = events(&stderr);
    let first = position(&events, "compiled f$t0 (tier 0");
    let second = position(&events, "compiled f$t0.1 (tier 0");
    let released = position(&events, "released f v0 tier 0 body");
    assert!(first < second && second < released, "{stderr}");

    let quiet = orc(&["repl"], session);
    assert_eq!(quiet.status.code(), Some(0), "{quiet:?}");
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("orc: tier "),
        "{quiet:?}"
    );
}
