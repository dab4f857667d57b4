//! The statistics every bench uses, in one place: medians and minima of
//! timings, rounds in which the compared commands take turns, and the
//! sign test for paired rounds. Benches include it with `mod stats;`
//! (and orc-lox's with a `#[path]`).
//!
//! It also names the Kaleidoscope programs the tiering benches share
//! ([`kal_programs`]) and generates the large C program of the IR benches
//! ([`large_c_program`]).
//!
//! On a shared machine, a figure is the median (or the minimum, the run
//! least disturbed by other work) of several runs, and configurations
//! compared with each other run in the same rounds, taking turns, so a
//! change of load hits all of them alike.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// A C program (for clang-19) of `n` functions of assorted shapes (loops, switches,
/// structs, calls, strings, floats) of which `main` calls only the first,
/// or with `call_all` every one once (a start-up that runs much code once,
/// as an interpreter's initialization does).
pub(crate) fn large_c_program(n: usize, call_all: bool) -> String {
    let mut c = String::from(
        "#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n\
         struct pt { long x, y; double w; };\n",
    );
    for i in 0..n {
        let _ = writeln!(c, "long f{i}(long a, long b);");
    }
    for i in 0..n {
        let next = (i * 7 + 3) % n;
        let _ = match i % 5 {
            0 => writeln!(
                c,
                "long f{i}(long a, long b) {{\n  long s = 0;\n  for (long k = 0; k < a; k++) {{\n    \
                 s += (k * {m}) ^ (b >> (k & 7));\n    if (s > 1000000) s -= b * {m};\n  }}\n  \
                 return a > 1000000 ? f{next}(s, b) : s;\n}}",
                m = i + 3
            ),
            1 => writeln!(
                c,
                "long f{i}(long a, long b) {{\n  switch ((a + {i}) % 9) {{\n  case 0: return a * b + {i};\n  \
                 case 1: return a - b;\n  case 2: return (a << 3) | b;\n  case 3: return a / (b | 1);\n  \
                 case 4: return a % (b | 1) + {i};\n  case 5: return a > 1000000 ? f{next}(b, a) : a - 5;\n  \
                 case 6: return a ^ (b * 31);\n  case 7: return -a;\n  default: return a + b + {i};\n  }}\n}}"
            ),
            2 => writeln!(
                c,
                "long f{i}(long a, long b) {{\n  struct pt p = {{a, b, a * 0.5 + b}};\n  \
                 struct pt q[4];\n  for (int k = 0; k < 4; k++) {{ q[k].x = p.x + k; q[k].y = p.y * k; \
                 q[k].w = p.w / (k + 1); }}\n  double t = 0;\n  for (int k = 0; k < 4; k++) t += q[k].w * q[k].x;\n  \
                 return (long)t + q[3].y + {i};\n}}"
            ),
            3 => writeln!(
                c,
                "long f{i}(long a, long b) {{\n  char buf[64];\n  snprintf(buf, sizeof buf, \"%ld-%ld-{i}\", a, b);\n  \
                 size_t n = strlen(buf);\n  long h = {i};\n  for (size_t k = 0; k < n; k++) h = h * 31 + buf[k];\n  \
                 if (h == 42) puts(buf);\n  return h;\n}}"
            ),
            _ => writeln!(
                c,
                "long f{i}(long a, long b) {{\n  double x = a, y = b;\n  for (int k = 0; k < 8; k++) {{\n    \
                 x = x * 0.5 + y / (k + 1.0);\n    y = y - x * 0.25 + {i}.0;\n  }}\n  \
                 long *v = malloc(sizeof(long) * 8);\n  for (int k = 0; k < 8; k++) v[k] = (long)(x + k * y);\n  \
                 long s = 0;\n  for (int k = 0; k < 8; k++) s += v[k];\n  free(v);\n  return s;\n}}"
            ),
        };
    }
    if call_all {
        c.push_str("int main(void) {\n  long s = 0;\n");
        for i in 0..n {
            let _ = writeln!(c, "  s += f{i}({}, 3);", i % 7);
        }
        c.push_str("  printf(\"%ld\\n\", s);\n  return 0;\n}\n");
    } else {
        c.push_str("int main(void) { printf(\"%ld\\n\", f0(3, 4)); return 0; }\n");
    }
    c
}

/// Runs `cmd` to its end; panics with its stderr unless it succeeded.
pub(crate) fn check(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` once (output discarded): its wall time and how it ended.
pub(crate) fn time_status(mut cmd: Command) -> (Duration, std::process::ExitStatus) {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (start.elapsed(), status)
}

/// [`time_status`] of a command that must succeed.
pub(crate) fn time_once(cmd: Command) -> Duration {
    let shown = format!("{cmd:?}");
    let (t, status) = time_status(cmd);
    assert!(status.success(), "{shown} failed: {status}");
    t
}
