//! `orc link` end to end: the C and C++ sources under `tests/link_cli/` are
//! compiled at test time with gcc/g++ (a missing compiler fails the test,
//! saying which), then linked and run both by `orc link` and by gcc, and
//! the two runs must print the same stdout and exit with the same status.
//!
//! The main subject is `calc/`, a 25-file program (tokenizer, parser,
//! evaluator, bytecode compiler and VM, hash map, arena, sorting with qsort
//! callbacks, libm, static tables of function pointers...) of which six
//! files go into `libsupport.a`: four are pulled in on demand (one only by
//! another member) and two must not be, since linking either would fail.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod native;
use native::{tool, Outcome, ORC};

/// The `calc` sources that go into `libsupport.a` rather than on the
/// command line.
const ARCHIVE_MEMBERS: &[&str] = &[
    "rng",
    "crc32",
    "bigint",
    "bigfmt",
    "unused_matrix",
    "unused_dup",
];

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/link_cli")
}

fn work_dir(name: &str) -> PathBuf {
    native::work_dir("link_cli", name)
}

/// Compiles `src` (relative to `tests/link_cli/`) with gcc or g++ into
/// `dir` as `STEM.o` and returns the object's file name.
fn compile(dir: &Path, src: &str, flags: &[&str]) -> String {
    let compiler = if src.ends_with(".cpp") { "g++" } else { "gcc" };
    compile_with(compiler, dir, src, flags)
}

fn compile_with(compiler: &str, dir: &Path, src: &str, flags: &[&str]) -> String {
    let path = sources().join(src);
    let stem = Path::new(src).file_stem().unwrap().to_str().unwrap();
    let object = format!("{stem}.o");
    let mut args = vec!["-c", "-g0", "-Wall"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[path.to_str().unwrap(), "-o", &object]);
    tool(dir, compiler, &args);
    object
}

struct Run {
    outcome: Outcome,
    stderr: String,
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Run {
    let (outcome, stderr) = native::run(dir, program, args);
    Run { outcome, stderr }
}

fn orc_link(dir: &Path, args: &[&str]) -> Run {
    let mut full = vec!["link"];
    full.extend_from_slice(args);
    run(dir, ORC, &full)
}

/// `calc` built with one set of flags: objects, archive, gcc's executable.
struct Calc {
    dir: PathBuf,
    objects: Vec<String>,
}

impl Calc {
    fn build(name: &str, compiler: &str, flags: &[&str]) -> Calc {
        let dir = work_dir(name);
        let mut sources: Vec<String> = std::fs::read_dir(sources().join("calc"))
            .expect("list tests/link_cli/calc")
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".c"))
            .collect();
        sources.sort();
        let mut objects = Vec::new();
        let mut members = Vec::new();
        for src in &sources {
            let object = compile_with(compiler, &dir, &format!("calc/{src}"), flags);
            if ARCHIVE_MEMBERS.contains(&src.trim_end_matches(".c")) {
                members.push(object);
            } else {
                objects.push(object);
            }
        }
        assert_eq!(members.len(), ARCHIVE_MEMBERS.len());
        let mut ar_args = vec!["rcs", "libsupport.a"];
        ar_args.extend(members.iter().map(String::as_str));
        tool(&dir, "ar", &ar_args);
        let mut gcc_args: Vec<&str> = objects.iter().map(String::as_str).collect();
        gcc_args.extend_from_slice(&["libsupport.a", "-lm", "-no-pie", "-o", "calc-gcc"]);
        tool(&dir, "gcc", &gcc_args);
        Calc { dir, objects }
    }

    /// calc compiled by gcc at `opt` (`-O0` or `-O2`), built once.
    fn at(opt: &str) -> &'static Calc {
        static O0: OnceLock<Calc> = OnceLock::new();
        static O2: OnceLock<Calc> = OnceLock::new();
        match opt {
            "-O0" => O0.get_or_init(|| Calc::build("calc-O0", "gcc", &["-O0"])),
            _ => O2.get_or_init(|| Calc::build("calc-O2", "gcc", &["-O2"])),
        }
    }

    fn objects(&self) -> Vec<&str> {
        self.objects.iter().map(String::as_str).collect()
    }

    /// The gcc-linked program's run with `args`.
    fn gcc(&self, args: &[&str]) -> Outcome {
        run(&self.dir, self.dir.join("calc-gcc").to_str().unwrap(), args).outcome
    }
}

/// The argument sets calc is run with (its own options after `--`).
const CALC_ARGS: &[&[&str]] = &[
    &[],
    &[
        "-s",
        "7",
        "arith",
        "libm",
        "-e",
        "print 2 * 21",
        "-e",
        "let = 1",
    ],
    &["-v", "loop", "branch", "newton", "divzero"],
];

#[test]
fn calc_matches_gcc_at_o0_and_o2() {
    for opt in ["-O0", "-O2"] {
        let calc = Calc::at(opt);
        assert!(calc.objects.len() + ARCHIVE_MEMBERS.len() >= 20);
        for args in CALC_ARGS {
            let expected = calc.gcc(args);
            let mut link_args = calc.objects();
            link_args.extend_from_slice(&["libsupport.a", "-lm", "--"]);
            link_args.extend_from_slice(args);
            let got = orc_link(&calc.dir, &link_args);
            assert_eq!(
                got.outcome, expected,
                "calc {opt} {args:?}: orc link differs from gcc; stderr:\n{}",
                got.stderr
            );
            assert_ne!(expected.status, 0, "calc exits non-zero");
            assert!(expected.stdout.lines().count() > 10, "{}", expected.stdout);
        }
    }
}

/// clang emits other relocations and sections than gcc; gcc still links
/// the reference executable. (With -fno-PIC, calc's references to libc's
/// writable `stderr` are far from the low 2 GiB its own 32-bit absolute
/// relocations need: the linker moves those instructions to thunks.)
#[test]
fn calc_compiled_by_clang_matches_gcc_link() {
    for (name, flags) in [
        ("calc-clang-O2", &["-O2"][..]),
        ("calc-clang-O0-pic", &["-O0", "-fPIC"]),
        ("calc-clang-O2-no-pic", &["-O2", "-fno-PIC"]),
    ] {
        let calc = Calc::build(name, "clang-19", flags);
        for args in CALC_ARGS {
            let expected = calc.gcc(args);
            let mut link_args = calc.objects();
            link_args.extend_from_slice(&["libsupport.a", "-lm", "--"]);
            link_args.extend_from_slice(args);
            let got = orc_link(&calc.dir, &link_args);
            assert_eq!(
                got.outcome, expected,
                "{name} {args:?}; stderr:\n{}",
                got.stderr
            );
        }
    }
}

#[test]
fn options_and_inputs_in_any_order() {
    let calc = Calc::at("-O2");
    let args = ["-s", "3", "vars", "primes"];
    let expected = calc.gcc(&args);
    let objects = calc.objects();
    let (first, rest) = objects.split_at(objects.len() / 2);
    let dir_flag = format!("-L{}", calc.dir.display());
    let dir = calc.dir.to_str().unwrap();
    let orders: Vec<Vec<&str>> = vec![
        // Libraries and the archive before the objects.
        [&["-lm", "libsupport.a"][..], &objects].concat(),
        // `-l m` with a space, options between the objects.
        [
            first,
            &["-l", "m", "--entry", "main"],
            rest,
            &["libsupport.a"],
        ]
        .concat(),
        // The archive found by -l in a -L directory, both spellings.
        [&[dir_flag.as_str(), "-lsupport"][..], &objects, &["-lm"]].concat(),
        [&objects[..], &["-L", dir, "-l", "support", "-l", "m"]].concat(),
    ];
    for order in orders {
        let mut link_args = order.clone();
        link_args.push("--");
        link_args.extend_from_slice(&args);
        let got = orc_link(&calc.dir, &link_args);
        assert_eq!(
            got.outcome, expected,
            "orc link {order:?}; stderr:\n{}",
            got.stderr
        );
    }
}

#[test]
fn show_times_reports_every_phase_on_stderr() {
    let calc = Calc::at("-O2");
    let mut link_args = vec!["--show-times"];
    link_args.extend(calc.objects());
    link_args.extend_from_slice(&["libsupport.a", "-lm"]);
    let got = orc_link(&calc.dir, &link_args);
    assert_eq!(got.outcome, calc.gcc(&[]));
    for phase in [
        "parse/add",
        "link+materialize",
        "initializers",
        "run",
        "teardown",
        "total",
    ] {
        assert!(
            got.stderr.contains(&format!("orc: time: {phase} ")),
            "no {phase} time in:\n{}",
            got.stderr
        );
    }
}

#[test]
fn archive_members_that_are_not_needed_are_not_linked() {
    let calc = Calc::at("-O2");
    // Each unused member fails the link when given directly...
    let mut with_matrix = calc.objects();
    with_matrix.extend_from_slice(&["unused_matrix.o", "libsupport.a", "-lm"]);
    let got = orc_link(&calc.dir, &with_matrix);
    assert_eq!(got.outcome.status, 1, "{}", got.stderr);
    assert!(
        got.stderr.contains("unused_matrix.o") && got.stderr.contains("never_defined_anywhere"),
        "{}",
        got.stderr
    );
    let mut with_dup = calc.objects();
    with_dup.extend_from_slice(&["unused_dup.o", "libsupport.a", "-lm"]);
    let got = orc_link(&calc.dir, &with_dup);
    assert_eq!(got.outcome.status, 1, "{}", got.stderr);
    assert!(
        got.stderr.contains("duplicate symbol strbuf_new") && got.stderr.contains("unused_dup.o"),
        "{}",
        got.stderr
    );
    // ... and the members that are needed come only from the archive (the
    // calc tests show bigfmt.o, needed only by bigint.o, linked too).
    let mut no_lib = calc.objects();
    no_lib.push("-lm");
    let got = orc_link(&calc.dir, &no_lib);
    assert_eq!(got.outcome.status, 1);
    // Which missing symbol is reported first is not specified; it must be
    // one that only the archive defines.
    let missing = got
        .stderr
        .split("undefined symbol ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no undefined symbol reported: {}", got.stderr));
    let nm = std::process::Command::new("nm")
        .args(["-g", "--defined-only"])
        .arg(calc.dir.join("libsupport.a"))
        .output()
        .expect("nm (binutils) is needed by this test");
    let archive_symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(
        archive_symbols
            .lines()
            .any(|l| l.split_whitespace().last() == Some(missing)),
        "{missing} is not an archive symbol: {}",
        got.stderr
    );
}

#[test]
fn entry_point_and_program_arguments() {
    let dir = work_dir("entry");
    let object = compile(&dir, "entry.c", &["-O2"]);
    let got = orc_link(&dir, &[&object, "--", "a", "b c", "--", "-v"]);
    assert_eq!(
        got.outcome,
        Outcome {
            stdout: "main: argc=5\nmain: argv[0]=entry.o\nmain: argv[1]=a\n\
                     main: argv[2]=b c\nmain: argv[3]=--\nmain: argv[4]=-v\n"
                .into(),
            status: 5,
        },
        "{}",
        got.stderr
    );
    for entry in [&["--entry", "alt_entry"][..], &["--entry=alt_entry"]] {
        let mut args = entry.to_vec();
        args.extend_from_slice(&[&object, "--", "x"]);
        let got = orc_link(&dir, &args);
        assert_eq!(
            got.outcome,
            Outcome {
                stdout: "alt_entry: argc=2\nalt_entry: argv[0]=entry.o\nalt_entry: argv[1]=x\n"
                    .into(),
                status: 42,
            },
            "{}",
            got.stderr
        );
    }
}

#[test]
fn noexec_links_everything_and_runs_nothing() {
    let dir = work_dir("noexec");
    let object = compile(&dir, "noexec.c", &["-O2"]);
    let got = orc_link(&dir, &["--noexec", &object]);
    assert_eq!(
        got.outcome,
        Outcome {
            stdout: String::new(),
            status: 0
        },
        "{}",
        got.stderr
    );
    // It does link: an undefined reference fails, even one main never
    // reaches at run time.
    let undefined = compile(&dir, "undefined.c", &["-O2"]);
    let got = orc_link(&dir, &[&undefined, "--noexec"]);
    assert_eq!(got.outcome.status, 1);
    assert!(
        got.stderr.contains("function_defined_nowhere"),
        "{}",
        got.stderr
    );
    let calc = Calc::at("-O0");
    let mut args = vec!["--noexec"];
    args.extend(calc.objects());
    args.extend_from_slice(&["libsupport.a", "-lm"]);
    let got = orc_link(&calc.dir, &args);
    assert_eq!(got.outcome.stdout, "");
    assert_eq!(got.outcome.status, 0, "{}", got.stderr);
}

#[test]
fn exit_from_jit_code_runs_handlers_and_flushes_like_gcc() {
    for opt in ["-O0", "-O2"] {
        let dir = work_dir(&format!("exit{opt}"));
        let main = compile(&dir, "exit_main.c", &[opt]);
        let helper = compile(&dir, "exit_helper.c", &[opt]);
        tool(&dir, "gcc", &[&main, &helper, "-o", "exit-gcc"]);
        let expected = run(&dir, dir.join("exit-gcc").to_str().unwrap(), &["a"]).outcome;
        assert_eq!(expected.status, 3);
        for line in [
            "main: 1 arguments, output not yet flushed",
            "atexit handler registered first",
            "helper destructor",
        ] {
            assert!(expected.stdout.contains(line), "{}", expected.stdout);
        }
        let got = orc_link(&dir, &[&main, &helper, "--", "a"]);
        assert_eq!(got.outcome, expected, "{opt}; stderr:\n{}", got.stderr);
    }
}

#[test]
fn exit_from_a_constructor_like_gcc() {
    let dir = work_dir("exit-in-ctor");
    let other = compile(&dir, "exit_in_ctor_other.c", &["-O2"]);
    let main = compile(&dir, "exit_in_ctor.c", &["-O2"]);
    tool(&dir, "gcc", &[&other, &main, "-o", "exit-gcc"]);
    let expected = run(&dir, dir.join("exit-gcc").to_str().unwrap(), &[]).outcome;
    assert_eq!(expected.status, 7);
    assert!(expected.stdout.contains("handler"), "{}", expected.stdout);
    let got = orc_link(&dir, &[&other, &main]);
    assert_eq!(got.outcome, expected, "stderr:\n{}", got.stderr);
}

#[test]
fn cxx_static_constructors_destructors_and_iostream_like_gxx() {
    for opt in ["-O0", "-O2"] {
        let dir = work_dir(&format!("cxx{opt}"));
        let main = compile(&dir, "cxx_main.cpp", &[opt]);
        let registry = compile(&dir, "cxx_registry.cpp", &[opt]);
        tool(&dir, "g++", &[&main, &registry, "-o", "cxx-gxx"]);
        let gxx = dir.join("cxx-gxx");
        for (args, status) in [(&[][..], 4), (&["exit"][..], 5)] {
            let expected = run(&dir, gxx.to_str().unwrap(), args).outcome;
            assert_eq!(expected.status, status);
            assert!(expected.stdout.contains("destroy main.cpp global"));
            let mut link_args = vec![main.as_str(), &registry, "-lstdc++", "--"];
            link_args.extend_from_slice(args);
            let got = orc_link(&dir, &link_args);
            assert_eq!(
                got.outcome, expected,
                "{opt} {args:?}; stderr:\n{}",
                got.stderr
            );
        }
    }
}

/// Asserts `orc link args` fails with status 1 and an `orc: error:` line
/// containing every one of `needles`.
fn assert_link_error(dir: &Path, args: &[&str], needles: &[&str]) {
    let got = orc_link(dir, args);
    assert_eq!(
        got.outcome.status, 1,
        "orc link {args:?} should fail; stderr:\n{}",
        got.stderr
    );
    assert_eq!(got.outcome.stdout, "", "nothing runs");
    let line = got
        .stderr
        .lines()
        .find(|l| l.starts_with("orc: error: "))
        .unwrap_or_else(|| panic!("no `orc: error:` line in:\n{}", got.stderr));
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in {line:?}");
    }
}

#[test]
fn errors_name_the_file_or_symbol_and_exit_1() {
    let dir = work_dir("errors");
    let entry = compile(&dir, "entry.c", &["-O2"]);
    let undefined = compile(&dir, "undefined.c", &["-O2"]);
    let dup_a = compile(&dir, "dup_a.c", &["-O2"]);
    let dup_b = compile(&dir, "dup_b.c", &["-O2"]);
    std::fs::write(dir.join("text.o"), "not an object\n").unwrap();
    let bytes = std::fs::read(dir.join(&entry)).unwrap();
    std::fs::write(dir.join("truncated.o"), &bytes[..bytes.len() / 3]).unwrap();
    let mut wrong_type = bytes.clone();
    wrong_type[16] = 2; // ET_EXEC
    std::fs::write(dir.join("exec.o"), wrong_type).unwrap();

    assert_link_error(&dir, &["missing.o"], &["missing.o"]);
    assert_link_error(&dir, &[&entry, "missing.o"], &["missing.o"]);
    assert_link_error(&dir, &["text.o"], &["text.o"]);
    assert_link_error(&dir, &["truncated.o"], &["truncated.o"]);
    assert_link_error(&dir, &["exec.o"], &["exec.o"]);
    assert_link_error(
        &dir,
        &[&undefined],
        &["undefined.o", "undefined symbol function_defined_nowhere"],
    );
    assert_link_error(
        &dir,
        &[&entry, "-lno_such_library_anywhere"],
        &["-lno_such_library_anywhere", "not found"],
    );
    assert_link_error(
        &dir,
        &[
            "-L",
            "/nonexistent",
            "-l",
            "no_such_library_anywhere",
            &entry,
        ],
        &["-lno_such_library_anywhere"],
    );
    assert_link_error(
        &dir,
        &["--entry", "no_such_entry", &entry],
        &["no_such_entry"],
    );
    assert_link_error(
        &dir,
        &[&dup_a, &dup_b],
        &["duplicated_symbol", "dup_a.o", "dup_b.o"],
    );
    let calc = Calc::at("-O2");
    assert_link_error(&calc.dir, &["libsupport.a"], &["no relocatable object"]);
}
