//! The statistics every bench uses, in one place: medians and minima of
//! timings, rounds in which the compared commands take turns, and the
//! sign test for paired rounds. Benches include it with `mod stats;`
//! (and orc-lox's with a `#[path]`).
//!
//! It also names the Kaleidoscope programs the tiering benches share
//! ([`kal_programs`]).
//!
//! On a shared machine, a figure is the median (or the minimum, the run
//! least disturbed by other work) of several runs, and configurations
//! compared with each other run in the same rounds, taking turns, so a
//! change of load hits all of them alike.

#![allow(dead_code)]

use std::time::Duration;

/// The median (the upper one of an even count); zero for no values.
pub(crate) fn median(values: impl IntoIterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = values.into_iter().collect();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The median of floating-point values (NaN for none).
pub(crate) fn median_f64(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The fastest: the figure least disturbed by other work.
pub(crate) fn best(values: impl IntoIterator<Item = Duration>) -> Duration {
    values.into_iter().min().unwrap_or_default()
}

/// The smallest floating-point value (infinity for none).
pub(crate) fn min_f64(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(f64::INFINITY, f64::min)
}

/// Milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `rounds` rounds in which each of `n` configurations is timed once
/// by `time(config)`, in turn; returns each configuration's times in round
/// order.
pub(crate) fn rounds(
    rounds: usize,
    n: usize,
    mut time: impl FnMut(usize) -> Duration,
) -> Vec<Vec<Duration>> {
    let mut times = vec![Vec::with_capacity(rounds); n];
    for _ in 0..rounds {
        for (k, t) in times.iter_mut().enumerate() {
            t.push(time(k));
        }
    }
    times
}

/// [`rounds`], reduced to each configuration's median.
pub(crate) fn median_of_rounds(
    rounds_: usize,
    n: usize,
    time: impl FnMut(usize) -> Duration,
) -> Vec<Duration> {
    rounds(rounds_, n, time).into_iter().map(median).collect()
}

/// The one-sided sign test's p-value for `won` wins in `n` paired rounds:
/// the chance of at least that many if neither configuration were faster.
pub(crate) fn sign_test_p(won: usize, n: usize) -> f64 {
    let mut choose = 1.0f64; // C(n, k), from k = 0
    let mut tail = 0.0;
    for k in 0..=n {
        if k >= won {
            tail += choose;
        }
        choose = choose * (n - k) as f64 / (k + 1) as f64;
    }
    tail / 2f64.powi(n as i32)
}

/// The tiering benches' Kaleidoscope programs (`benches/kal/*.kal`), by
/// name.
pub(crate) fn kal_programs() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/kal");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "kal"))
        .collect();
    files.sort();
    files
}
