//! Out-of-process execution (`--oop`) through the `orc` binary: a crash of
//! the JIT'd program ends only the executor, which the controller reports
//! with the conventional status (128 + signal); the program's own exit
//! status passes through; the REPL starts a new executor after a crash
//! and keeps every earlier definition; the executor does not outlive its
//! controller. (The corpus and the Kaleidoscope programs also run with
//! `--oop`: `tests/ir_corpus.rs`, `tests/kaleidoscope_programs.rs`. The
//! protocol over TCP: `executor/tests/executor.rs`.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orc_test_support::{build_source, run, run_with_stdin, scratch, text};

const ORC: &str = env!("CARGO_BIN_EXE_orc");

/// Ends as its first argument says: `segv`, `abort`, `exit` (status 7),
/// `overflow` (unbounded recursion), else returns 3. Prints first.
const ENDINGS: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int deep(volatile int n) { volatile char pad[256]; pad[0] = (char)n; return deep(n + 1) + pad[0]; }
int main(int argc, char **argv) {
  const char *how = argc > 1 ? argv[1] : "";
  printf("before %s\n", how);
  fflush(stdout);
  if (!strcmp(how, "segv")) { volatile int *p = 0; *p = 1; }
  if (!strcmp(how, "abort")) abort();
  if (!strcmp(how, "exit")) { printf("buffered\n"); exit(7); }
  if (!strcmp(how, "overflow")) return deep(0);
  return 3;
}
"#;

/// (argument, expected status, expected report on stderr)
const CASES: &[(&str, i32, Option<&str>)] = &[
    ("segv", 128 + 11, Some("killed by signal 11")),
    ("abort", 128 + 6, Some("killed by signal 6")),
    ("overflow", 128 + 11, Some("killed by signal 11")),
    ("exit", 7, None),
    ("return", 3, None),
];

fn object(dir: &Path, c: &Path) -> std::path::PathBuf {
    let obj = dir.join("endings.o");
    let out = run(Command::new("clang-19")
        .args(["-O1", "-c", "-o"])
        .arg(&obj)
        .arg(c));
    assert!(out.status.success(), "clang-19 -c: {}", text(&out.stderr));
    obj
}

#[test]
fn a_crash_ends_only_the_executor_and_is_reported_with_its_signal() {
    let dir = scratch("oop-endings");
    let program = build_source(&dir, "endings", ENDINGS, false, &["-O1"]);
    let obj = object(&dir, &dir.join("endings.c"));
    let mut failures = Vec::new();
    for &(how, status, report) in CASES {
        let native = run(Command::new(&program.native).arg(how));
        let runs: [(&str, Vec<&std::ffi::OsStr>); 3] = [
            (
                "run --oop",
                vec!["run".as_ref(), "--oop".as_ref(), program.ir.as_os_str()],
            ),
            (
                "run --oop --tier 0",
                vec![
                    "run".as_ref(),
                    "--oop".as_ref(),
                    "--tier".as_ref(),
                    "0".as_ref(),
                    program.ir.as_os_str(),
                ],
            ),
            (
                "link --oop",
                vec!["link".as_ref(), "--oop".as_ref(), obj.as_os_str()],
            ),
        ];
        for (mode, args) in runs {
            let out = run(Command::new(ORC).args(&args).arg("--").arg(how));
            let stdout = text(&out.stdout);
            let stderr = text(&out.stderr);
            let mut problems = Vec::new();
            if out.status.code() != Some(status) {
                problems.push(format!("status {:?}, expected {status}", out.status));
            }
            // Output flushed before the end, and by `exit`, reaches stdout
            // as it does natively.
            if stdout != text(&native.stdout) {
                problems.push(format!(
                    "stdout {stdout:?}, native {:?}",
                    text(&native.stdout)
                ));
            }
            match report {
                Some(r) if !stderr.contains(r) => problems.push(format!("no '{r}' on stderr")),
                None if !stderr.is_empty() => problems.push("stderr is not empty".into()),
                _ => {}
            }
            if stderr.contains("panicked") {
                problems.push("the controller panicked".into());
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "orc {mode} -- {how}: {}\n  stderr: {stderr}",
                    problems.join("; ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_repl_starts_a_new_executor_after_a_crash_and_keeps_its_definitions() {
    // `deep` overflows the stack: a SIGSEGV of the executor. The
    // definitions before it (one redefined), and the data they computed
    // with, are there in the next executor.
    let input = "\
def fact(n) if n < 2 then 1 else n * fact(n - 1);
def twice(x) x * 2;
fact(5);
def twice(x) x * 3;
def deep(n) deep(n + 1) + deep(n - 1);
deep(0);
twice(fact(4));
putchard(65); putchard(10);
deep(1);
fact(6);
";
    for tier in ["0", "adaptive"] {
        let out = run_with_stdin(
            Command::new(ORC).args(["repl", "--oop", "--tier", tier, "--tier-threshold", "2"]),
            input,
        );
        let stdout = text(&out.stdout);
        let stderr = text(&out.stderr);
        assert_eq!(
            stdout,
            "Evaluated to 120.000000\nEvaluated to 72.000000\nAEvaluated to 0.000000\n\
             \nEvaluated to 0.000000\nEvaluated to 720.000000\n",
            "tier {tier}: stderr:\n{stderr}"
        );
        assert!(
            out.status.success(),
            "tier {tier}: {:?}\n{stderr}",
            out.status
        );
        assert_eq!(
            stderr.matches("killed by signal 11").count(),
            2,
            "tier {tier}: each crash reported once:\n{stderr}"
        );
        assert!(
            stderr.contains("<stdin>:6:1: error: the program was killed by signal 11"),
            "tier {tier}: the crash is placed at its line:\n{stderr}"
        );
        assert_eq!(
            stderr.matches("started a new executor").count(),
            2,
            "tier {tier}:\n{stderr}"
        );
    }
}

/// Prints its pid, then waits to be killed.
const SLEEPER: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) {
  printf("%d\n", (int)getpid());
  fflush(stdout);
  for (;;) sleep(1);
}
"#;

fn alive(pid: i32) -> bool {
    // A zombie (its new parent has not reaped it yet) is gone too.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[test]
fn the_executor_does_not_outlive_its_controller() {
    let dir = scratch("oop-orphans");
    let program = build_source(&dir, "sleeper", SLEEPER, false, &["-O1"]);
    let mut controller = Command::new(ORC)
        .args(["run", "--oop"])
        .arg(&program.ir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start orc");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(controller.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid: i32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no pid in {line:?}"));
    assert_ne!(
        pid as u32,
        controller.id(),
        "the program runs in another process"
    );
    assert!(alive(pid), "the executor runs the program");
    controller.kill().unwrap();
    controller.wait().unwrap();
    let start = Instant::now();
    while alive(pid) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "executor {pid} outlived its controller");
}

/// `orc executor --listen` with `secret`: the child and its address.
fn tcp_executor(
    secret: &str,
) -> (
    std::process::Child,
    String,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut child = Command::new(ORC)
        .args(["executor", "--listen", "127.0.0.1:0"])
        .env("ORC_EXECUTOR_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start orc executor");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, addr, out)
}

#[test]
fn an_executor_over_tcp_runs_a_program_and_refuses_strangers() {
    use std::io::{Read, Write};
    let dir = scratch("oop-tcp");
    let program = build_source(&dir, "endings", ENDINGS, false, &["-O1"]);
    let secret = "0123456789abcdef-the-session-secret";
    let (mut executor, addr, mut out) = tcp_executor(secret);
    // A controller without the secret is refused, and says so.
    let stranger = run(Command::new(ORC)
        .args(["run", "--tier", "0", "--executor", &addr])
        .arg(&program.ir)
        .env("ORC_EXECUTOR_SECRET", "not-the-secret-at-all")
        .args(["--", "return"]));
    assert!(!stranger.status.success(), "a stranger ran code");
    assert!(
        text(&stranger.stderr).contains("wrong secret"),
        "{}",
        text(&stranger.stderr)
    );
    // Garbage gets a refusal, not a crash.
    let mut raw = std::net::TcpStream::connect(&addr).unwrap();
    raw.write_all(&[9, 0, 0, 0, 0xff, 0xfe, 0xfd, 1, 2, 3, 4, 5, 6])
        .unwrap();
    let mut reply = Vec::new();
    let _ = raw.read_to_end(&mut reply);
    assert!(!reply.is_empty(), "garbage got no refusal");
    // The session: its lazy compiles are calls back over TCP; its output
    // is the executor's; its `exit` ends the executor.
    let good = run(Command::new(ORC)
        .args(["run", "--tier", "0", "--executor", &addr])
        .arg(&program.ir)
        .env("ORC_EXECUTOR_SECRET", secret)
        .args(["--", "exit"]));
    assert_eq!(good.status.code(), Some(7), "{}", text(&good.stderr));
    let mut printed = String::new();
    out.read_to_string(&mut printed).unwrap();
    assert_eq!(printed, "before exit\nbuffered\n");
    let status = executor.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    let mut log = String::new();
    executor
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(
        log.matches("refused").count(),
        2,
        "each refusal logged:\n{log}"
    );
    assert!(log.contains("wrong secret"), "{log}");
    // A crash there is reported here with its signal, as for a child.
    let (mut executor, addr, _out) = tcp_executor(secret);
    let crash = run(Command::new(ORC)
        .args(["link", "--executor", &addr])
        .arg(object(&dir, &dir.join("endings.c")))
        .env("ORC_EXECUTOR_SECRET", secret)
        .args(["--", "segv"]));
    assert_eq!(
        crash.status.code(),
        Some(128 + 11),
        "{}",
        text(&crash.stderr)
    );
    assert!(
        text(&crash.stderr).contains("killed by signal 11"),
        "{}",
        text(&crash.stderr)
    );
    assert_eq!(executor.wait().unwrap().code(), Some(128 + 11));
}

#[test]
fn kaleidoscope_runs_lazily_in_an_executor_over_tcp() {
    let kal =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/kaleidoscope/recursion.kal");
    let expected = std::fs::read_to_string(kal.with_extension("out")).unwrap();
    for tier in ["0", "1"] {
        let secret = "0123456789abcdef-another-secret";
        let (mut executor, addr, mut out) = tcp_executor(secret);
        let controller = run(Command::new(ORC)
            .args([
                "run",
                "--print-results",
                "--tier",
                tier,
                "--executor",
                &addr,
            ])
            .arg(&kal)
            .env("ORC_EXECUTOR_SECRET", secret));
        assert!(
            controller.status.success(),
            "tier {tier}: {}",
            text(&controller.stderr)
        );
        let mut printed = String::new();
        std::io::Read::read_to_string(&mut out, &mut printed).unwrap();
        let _ = executor.wait();
        // The values are printed here, the program's output there.
        let values: String = expected
            .lines()
            .filter(|l| l.starts_with("Evaluated to"))
            .map(|l| format!("{l}\n"))
            .collect();
        let rest: String = expected
            .lines()
            .filter(|l| !l.starts_with("Evaluated to"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(text(&controller.stdout), values, "tier {tier}");
        assert_eq!(printed, rest, "tier {tier}");
    }
    // Adaptive tiering needs shared memory, and says so.
    let (mut executor, addr, _out) = tcp_executor("0123456789abcdef-third-secret");
    let refused = run(Command::new(ORC)
        .args(["run", "--tier", "adaptive", "--executor", &addr])
        .arg(&kal)
        .env("ORC_EXECUTOR_SECRET", "0123456789abcdef-third-secret"));
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("adaptive tiering needs an executor on this machine"),
        "{}",
        text(&refused.stderr)
    );
    let _ = executor.kill();
    let _ = executor.wait();
}

#[test]
fn hot_code_is_promoted_to_tier_1_across_the_boundary() {
    // In place: the executor's thread waits on its first trip while the
    // controller compiles tier 1 and repoints the stubs in the shared
    // memory, so the promotions happen before the program goes on.
    let kal = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/kaleidoscope/mandel.kal");
    let out = run(Command::new(ORC)
        .args([
            "run",
            "--oop",
            "--tier",
            "adaptive",
            "--tier-threshold",
            "100",
        ])
        .args(["--tier-up-threads", "0", "--trace-tier"])
        .arg(&kal));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let trace = text(&out.stderr);
    assert!(
        trace.contains("promoted") && trace.contains(" hot "),
        "no promotion under --oop:\n{trace}"
    );
    let expected = std::fs::read_to_string(kal.with_extension("out")).unwrap();
    let printed: String = expected
        .lines()
        .filter(|l| !l.starts_with("Evaluated to"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(text(&out.stdout), printed);
}

#[test]
fn a_background_promotion_reaches_the_running_executor() {
    // In the background: the trip is a one-way report, the controller
    // compiles on its own thread while the program goes on. The REPL
    // waits for more input, so the test can wait for the promotion and
    // then call the promoted code. (A Kaleidoscope `for` runs its body
    // before it tests the end: n + 1 times.)
    use std::io::{BufRead, Write};
    let mut child = Command::new(ORC)
        .args([
            "repl",
            "--oop",
            "--tier",
            "adaptive",
            "--tier-threshold",
            "100",
        ])
        .arg("--trace-tier")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    stdin
        .write_all(
            b"def binary : 1 (x y) y;\n\
              def sum(n) var s = 0 in (for i = 0, i < n in s = s + i) : s;\n\
              sum(1000);\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("promoted sum") && l.contains("to tier 1"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no promotion within 60 s:\n{}", seen.join("\n"));
            }
        }
    }
    stdin.write_all(b"sum(100);\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(
        text(&out.stdout),
        "Evaluated to 500500.000000\nEvaluated to 5050.000000\n"
    );
}

/// Prints the scheduling policy and how many CPUs the process may run on.
const PLACEMENT: &str = r#"
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
int main(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  printf("policy %d, %d cpus\n", sched_getscheduler(0), CPU_COUNT(&set));
  return 0;
}
"#;

/// The controller forks the zygote as a batch task kept off its own CPU
/// (`ForkPlacement` in the executor crate); the program must not inherit
/// either: it runs under the policy and on the CPUs a native run has.
#[test]
fn the_program_runs_with_the_native_policy_and_cpus_out_of_process() {
    let dir = scratch("oop-placement");
    let program = build_source(&dir, "placement", PLACEMENT, false, &["-O1"]);
    let native = run(&mut Command::new(&program.native));
    assert!(native.status.success(), "native: {}", text(&native.stderr));
    for tier in ["0", "1"] {
        let out = run(Command::new(ORC)
            .args(["run", "--oop", "--tier", tier])
            .arg(&program.ir));
        assert!(out.status.success(), "--tier {tier}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            text(&native.stdout),
            "orc run --oop --tier {tier}"
        );
    }
}
