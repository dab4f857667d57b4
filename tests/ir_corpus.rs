//! The corpus of real C and C++ programs (`tests/ir_corpus/`), compiled at
//! test time with clang-19 / clang++-19 at `-O0` and `-O2` to LLVM IR
//! (multi-file programs joined with `llvm-link-19`) and to a native binary
//! with the same compiler and flags. Each IR program runs under
//! `orc run --tier T` for every tier in [`TIERS`], lazily and with
//! `--eager`, and must print exactly what the native binary prints and exit
//! with its status.
//!
//! What the programs exercise between them: computed goto through a static
//! table of label addresses and direct threading (`vm.c`); variadic
//! definitions with `va_copy`, `printf` of doubles, `setjmp`/`longjmp` and
//! `exit()` from deep recursion (`json.c`); small and large structs passed
//! and returned by value, function-pointer tables and `qsort` (`numeric.c`);
//! several files joined with `llvm-link-19` and C constructors/destructors
//! with priorities (`text/`); an `ifunc`, aliases, a weak definition,
//! atomics, overflow and bit builtins and variable-length arrays
//! (`alloc.c`); C++ exceptions across frames, rethrow,
//! destructors on unwind and static constructors with `init_priority`
//! (`calc.cpp`); `thread_local` with `std::thread` and exceptions crossing
//! threads (`workers.cpp`); `__thread` variables of two files from threads
//! started before and after main touches them (`tls/`) and C++
//! `thread_local` objects with constructors and destructors across files
//! (`tls_cxx/`), the corpus `tests/link_tls.rs` also runs under `orc link`.
//!
//! `-ffp-contract=off`: see `tests/ir_programs.rs` (a JIT targeting the
//! host's FMA would otherwise fuse what the baseline native binary does
//! not, and the printed bits would differ).
//!
//! Each program takes a size argument; the test runs a small size
//! ([`Program::args`]); the benchmark sizes are in `tests/ir_corpus/README.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orc_test_support::{build_program, scratch};

/// The tiers every program runs under, each lazily and eagerly.
/// `adaptive` promotes on the thread whose code turned hot
/// (`--tier-up-threads 0`), so which functions reach tier 1 is the same at
/// every run, and at least one must; `adaptive-bg` is adaptive tiering as
/// users run it, with a background tier-up thread racing the program.
const TIERS: &[&str] = &["0", "1", "adaptive", "adaptive-bg"];

/// The tiers every program also runs under out of process (`--oop`,
/// lazily): the code in an executor process, every lazy compile and
/// tier-up trip a call back into the controller.
const OOP_TIERS: &[&str] = &["0", "adaptive"];

/// Under `--tier adaptive`: a threshold low enough that the programs' hot
/// functions really are recompiled by LLVM during the test's short runs.
const ADAPTIVE_THRESHOLD: &str = "50";

/// How long one run may take before it is killed and reported as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

struct Program {
    name: &'static str,
    /// Sources under tests/ir_corpus/; several are joined with llvm-link-19.
    sources: &'static [&'static str],
    cxx: bool,
    /// The small size the test runs.
    args: &'static [&'static str],
    /// The native program's exit status (checked, so a broken program is
    /// noticed before blaming the JIT).
    status: i32,
    /// Whether `main` returns, so that `orc run --stats` prints its
    /// statistics (a program that calls `exit()` ends before).
    returns: bool,
}

const PROGRAMS: &[Program] = &[
    Program {
        name: "vm",
        sources: &["vm.c"],
        cxx: false,
        args: &["1"],
        status: 49,
        returns: true,
    },
    Program {
        name: "json",
        sources: &["json.c"],
        cxx: false,
        args: &["30"],
        status: 3,
        returns: false,
    },
    Program {
        name: "numeric",
        sources: &["numeric.c"],
        cxx: false,
        args: &["24"],
        status: 0,
        returns: true,
    },
    Program {
        name: "text",
        sources: &[
            "text/main.c",
            "text/regex.c",
            "text/format.c",
            "text/ctors.c",
        ],
        cxx: false,
        args: &["3"],
        status: 20,
        returns: true,
    },
    Program {
        name: "alloc",
        sources: &["alloc.c"],
        cxx: false,
        args: &["2000"],
        status: 0,
        returns: true,
    },
    Program {
        name: "calc",
        sources: &["calc.cpp"],
        cxx: true,
        args: &["18"],
        status: 8,
        returns: true,
    },
    Program {
        name: "workers",
        sources: &["workers.cpp"],
        cxx: true,
        args: &["20000"],
        status: 0,
        returns: true,
    },
    Program {
        name: "tls",
        sources: &["tls/main.c", "tls/counters.c"],
        cxx: false,
        args: &["2"],
        status: 48,
        returns: true,
    },
    Program {
        name: "tls_cxx",
        sources: &["tls_cxx/main.cpp", "tls_cxx/registry.cpp"],
        cxx: true,
        args: &["300"],
        status: 7,
        returns: true,
    },
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir_corpus")
}

/// What a run did: its exit status (or the signal that ended it), its
/// standard output and standard error.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: String,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with its output in files (no pipe to fill up), killing it
/// after [`RUN_TIMEOUT`].
fn run(mut cmd: Command, dir: &Path, tag: &str) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let out_path = dir.join(format!("{tag}.stdout"));
    let err_path = dir.join(format!("{tag}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(signal)) => format!("signal {signal}"),
                (None, None) => format!("{status}"),
            };
        }
        if start.elapsed() > RUN_TIMEOUT {
            // Where every thread waits, for whoever looks into it (kept
            // with the scratch directory of a failed test), when gdb is
            // there to tell.
            let stacks = dir.join(format!("{tag}.hang-backtraces"));
            let told = Command::new("gdb")
                .args(["-p", &child.id().to_string(), "-batch", "-nx"])
                .args(["-ex", "thread apply all bt 20"])
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&stacks).unwrap())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            let _ = child.kill();
            let _ = child.wait();
            break format!(
                "hung (killed after {RUN_TIMEOUT:?}{})",
                if told {
                    format!("; its threads' backtraces: {}", stacks.display())
                } else {
                    String::new()
                }
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Outcome {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

/// Compiles the program at one opt level: (IR file, native binary).
fn build(prog: &Program, opt: &str, dir: &Path) -> (PathBuf, PathBuf) {
    let sources: Vec<PathBuf> = prog.sources.iter().map(|s| corpus_dir().join(s)).collect();
    let tag = format!("{}{opt}", prog.name);
    let built = build_program(
        dir,
        &tag,
        &sources,
        &[opt, "-ffp-contract=off", "-g0"],
        "ll",
        &[],
    );
    (built.ir, built.native)
}

fn orc_command(prog: &Program, ir: &Path, tier: &str, eager: bool, oop: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orc"));
    cmd.env_remove("ORC_TIER")
        .env_remove("ORC_TIER_THRESHOLD")
        .arg("run");
    if oop {
        cmd.arg("--oop");
    }
    match tier {
        "adaptive" => {
            // Promotions compile on the thread whose code turned hot (no
            // tier-up thread), so which functions reach tier 1 before the
            // program ends does not depend on timing; the statistics show
            // that some did.
            cmd.args(["--tier", "adaptive", "--tier-threshold", ADAPTIVE_THRESHOLD])
                .args(["--tier-up-threads", "0", "--stats"]);
        }
        "adaptive-bg" => {
            cmd.args(["--tier", "adaptive", "--tier-threshold", ADAPTIVE_THRESHOLD]);
        }
        _ => {
            cmd.args(["--tier", tier]);
        }
    }
    if eager {
        cmd.arg("--eager");
    }
    if prog.cxx {
        cmd.args(["-l", "stdc++"]);
    }
    cmd.args(["-l", "m"]).arg(ir).arg("--").args(prog.args);
    cmd
}

/// The start and end of a long text, for failure messages (a failed lazy
/// compile names every symbol of its unit before saying what went wrong).
fn excerpt(text: &str) -> String {
    const HEAD: usize = 300;
    const TAIL: usize = 900;
    if text.len() <= HEAD + TAIL {
        return text.to_string();
    }
    let mut head = HEAD;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - TAIL;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{} [... {} bytes ...] {}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

/// The first line where two outputs differ.
fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}: native {e:?}, orc {a:?}", i + 1);
        }
    }
    format!(
        "native has {} lines, orc {}",
        expected.lines().count(),
        actual.lines().count()
    )
}

/// What is wrong with a run's standard error, if anything: it must be
/// empty, except for the statistics adaptive runs ask for, which must show
/// that some function was promoted to tier 1.
fn stderr_problem(prog: &Program, tier: &str, stderr: &str) -> Option<String> {
    if tier != "adaptive" {
        return (!stderr.is_empty()).then(|| "stderr is not empty".to_string());
    }
    if stderr.lines().any(|l| !l.starts_with("orc: stats: ")) {
        return Some("stderr has more than statistics".to_string());
    }
    if !prog.returns {
        return None;
    }
    // "orc: stats: N functions, M promoted to tier 1; ...; T trips"
    let summary = stderr.lines().find(|l| l.contains(" promoted to tier 1; "));
    let promoted = summary
        .and_then(|l| l.split(" promoted to tier 1; ").next())
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    match promoted {
        None => Some("no tiering statistics on stderr".to_string()),
        Some(0) => Some(format!(
            "no function was promoted to tier 1 (threshold {ADAPTIVE_THRESHOLD}): {}",
            summary.unwrap_or_default()
        )),
        Some(_) => None,
    }
}

/// Builds one program at one opt level and runs it in every mode; panics
/// with every mismatch.
fn corpus(name: &str, opt: &str) {
    let prog = PROGRAMS.iter().find(|p| p.name == name).unwrap();
    let dir = scratch(&format!("{name}{opt}"));
    let mut failures = String::new();
    {
        let (ir, bin) = build(prog, opt, &dir);
        let tag = opt.trim_start_matches('-');
        let mut native_cmd = Command::new(&bin);
        native_cmd.args(prog.args);
        let native = run(native_cmd, &dir, &format!("{tag}-native"));
        assert_eq!(
            native.status,
            format!("exit {}", prog.status),
            "{name} {opt}: the native program's exit status; stderr:\n{}",
            native.stderr
        );
        assert!(
            native.stdout.lines().count() >= 15,
            "{name} {opt}: the native program printed too little:\n{}",
            native.stdout
        );
        // Modes one after another: the test binary already runs two
        // programs at a time (one per core).
        let modes = TIERS
            .iter()
            .flat_map(|&tier| [(tier, false, false), (tier, true, false)])
            .chain(OOP_TIERS.iter().map(|&tier| (tier, false, true)));
        for (tier, eager, oop) in modes {
            let mode = format!(
                "{name} {opt} --tier {tier}{}{}",
                if eager { " --eager" } else { " (lazy)" },
                if oop { " --oop" } else { "" }
            );
            let cmd = orc_command(prog, &ir, tier, eager, oop);
            let out = run(
                cmd,
                &dir,
                &format!(
                    "{tag}-{tier}-{}{}",
                    if eager { "eager" } else { "lazy" },
                    if oop { "-oop" } else { "" }
                ),
            );
            let mut problems = Vec::new();
            if out.status != native.status {
                problems.push(format!("status {} (native: {})", out.status, native.status));
            }
            if out.stdout != native.stdout {
                problems.push(format!(
                    "stdout differs: {}",
                    first_difference(&native.stdout, &out.stdout)
                ));
            }
            if let Some(problem) = stderr_problem(prog, tier, &out.stderr) {
                problems.push(problem);
            }
            if !problems.is_empty() {
                let _ = writeln!(
                    failures,
                    "{mode}: {}\n  stderr: {}",
                    problems.join("; "),
                    excerpt(&out.stderr)
                );
            }
        }
    }
    assert!(failures.is_empty(), "{name}:\n{failures}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One test per program and opt level (`NAME::o0`, `NAME::o2`), so the
/// test harness's two threads share the work evenly.
macro_rules! corpus_test {
    ($test:ident, $program:literal) => {
        mod $test {
            #[test]
            fn o0() {
                super::corpus($program, "-O0");
            }
            #[test]
            fn o2() {
                super::corpus($program, "-O2");
            }
        }
    };
}

corpus_test!(vm_computed_goto_and_direct_threading, "vm");

corpus_test!(json_varargs_setjmp_and_exit_from_deep_recursion, "json");

corpus_test!(numeric_structs_by_value_and_function_pointers, "numeric");

corpus_test!(text_several_files_with_constructor_priorities, "text");

corpus_test!(alloc_ifunc_aliases_atomics_and_overflow_builtins, "alloc");

corpus_test!(calc_cxx_exceptions_and_static_constructors, "calc");

corpus_test!(workers_cxx_thread_local_with_threads, "workers");

corpus_test!(tls_c_thread_locals_across_files_and_threads, "tls");

corpus_test!(tls_cxx_thread_local_objects_across_files, "tls_cxx");

/// The check of adaptive runs reads the real `--stats` output: a
/// Kaleidoscope program with a hot loop has a promotion, one with nothing
/// hot has none, and other text on stderr is refused.
#[test]
fn adaptive_runs_are_checked_against_the_real_statistics() {
    let dir = scratch("stats-check");
    let prog = Program {
        name: "stats-check",
        sources: &[],
        cxx: false,
        args: &[],
        status: 0,
        returns: true,
    };
    let stats_of = |source: &str, tag: &str| {
        let file = dir.join(format!("{tag}.kal"));
        std::fs::write(&file, source).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orc"));
        cmd.env_remove("ORC_TIER")
            .env_remove("ORC_TIER_THRESHOLD")
            .args(["run", "--tier", "adaptive", "--tier-threshold"])
            .args([ADAPTIVE_THRESHOLD, "--tier-up-threads", "0", "--stats"])
            .arg(&file);
        let out = run(cmd, &dir, tag);
        assert_eq!(out.status, "exit 0", "{}", out.stderr);
        out.stderr
    };
    let hot = stats_of("def sum(n) for i = 0, i < n in 0;\nsum(100000);\n", "hot");
    assert_eq!(stderr_problem(&prog, "adaptive", &hot), None, "{hot}");
    let cold = stats_of("def one() 1;\none();\n", "cold");
    let problem = stderr_problem(&prog, "adaptive", &cold).unwrap_or_default();
    assert!(
        problem.contains("no function was promoted"),
        "{problem}\n{cold}"
    );
    let noisy = format!("{hot}warning: something\n");
    assert_eq!(
        stderr_problem(&prog, "adaptive", &noisy).as_deref(),
        Some("stderr has more than statistics")
    );
    assert_eq!(
        stderr_problem(&prog, "1", "orc: stats: x\n").as_deref(),
        Some("stderr is not empty")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
