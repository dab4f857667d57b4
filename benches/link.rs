//! `cargo bench --bench link`: the wall time of `orc link --noexec` against
//! `llvm-jitlink-19 -noexec` on the same object sets, in one run.
//!
//! Two sets, compiled with `gcc -O2 -c` into the target's tmp directory:
//! the `calc` test program (`tests/link_cli/calc/`, its 23 used files as
//! objects) and a generated program of 2,000 functions over 20 objects
//! (cross-object calls, switch tables, function-pointer tables, static data,
//! string literals, printf). Both tools get the same inputs, libm as a path
//! (llvm-jitlink cannot expand the `libm.so` linker script `-lm` finds).
//! Each command runs `RUNS` times, alternating, and the median wall time of
//! each is compared. Without `--bench` (as under `cargo test --benches`)
//! it does nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod stats;
use stats::*;

const ORC: &str = env!("CARGO_BIN_EXE_orc");
const LLVM_JITLINK: &str = "llvm-jitlink-19";
const LIBM: &str = "/lib/x86_64-linux-gnu/libm.so.6";
const RUNS: usize = 31;

/// Generated program size.
const N_FILES: usize = 20;
const FUNCS_PER_FILE: usize = 100;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("link bench: run it with `cargo bench --bench link`");
        return;
    }
    if let Err(message) = run() {
        eprintln!("link bench: error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-link");
    let calc = build_calc(&root.join("calc"))?;
    let generated = build_generated(&root.join("generated"))?;
    println!("median wall time of {RUNS} runs each, same inputs for both tools:");
    for (name, dir, objects) in [
        ("calc, 23 objects", root.join("calc"), calc),
        (
            "generated, 2000 functions in 20 objects",
            root.join("generated"),
            generated,
        ),
    ] {
        let mut inputs: Vec<String> = objects;
        inputs.push(LIBM.into());
        let mut orc_args = vec!["link".to_owned(), "--noexec".to_owned()];
        orc_args.extend(inputs.iter().cloned());
        let mut llvm_args = vec!["-noexec".to_owned()];
        llvm_args.extend(inputs.iter().cloned());
        let (orc, llvm) = compare(&dir, (ORC, &orc_args), (LLVM_JITLINK, &llvm_args))?;
        println!(
            "{name}: orc link --noexec: {:.2} ms, llvm-jitlink-19 -noexec: {:.2} ms, ratio X/Y {:.2}",
            ms(orc),
            ms(llvm),
            orc.as_secs_f64() / llvm.as_secs_f64()
        );
    }
    Ok(())
}

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}

/// Runs both commands once to check they succeed, then `RUNS` times each,
/// alternating; returns the medians.
fn compare(
    dir: &Path,
    a: (&str, &[String]),
    b: (&str, &[String]),
) -> Result<(Duration, Duration), String> {
    let mut times_a = Vec::with_capacity(RUNS);
    let mut times_b = Vec::with_capacity(RUNS);
    for round in 0..=RUNS {
        let ta = time_once(dir, a.0, a.1)?;
        let tb = time_once(dir, b.0, b.1)?;
        if round > 0 {
            times_a.push(ta);
            times_b.push(tb);
        }
    }
    Ok((median(times_a), median(times_b)))
}

fn time_once(dir: &Path, program: &str, args: &[String]) -> Result<Duration, String> {
    let start = Instant::now();
    let out = Command::new(program)
        .env("ORC_NO_CACHE", "1")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(elapsed)
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Compiles `sources` with `gcc -O2 -c` in `dir`, two at a time; returns
/// the object names.
fn compile_all(dir: &Path, sources: &[PathBuf]) -> Result<Vec<String>, String> {
    let mut objects = Vec::new();
    for pair in sources.chunks(2) {
        let mut children = Vec::new();
        for src in pair {
            let stem = src.file_stem().unwrap().to_string_lossy();
            let object = format!("{stem}.o");
            let child = Command::new("gcc")
                .args(["-O2", "-g0", "-c"])
                .arg(src)
                .args(["-o", &object])
                .current_dir(dir)
                .spawn()
                .map_err(|e| format!("cannot run gcc (is it installed?): {e}"))?;
            children.push((child, src));
            objects.push(object);
        }
        for (child, src) in children {
            let status = child.wait_with_output().map_err(|e| e.to_string())?.status;
            if !status.success() {
                return Err(format!("gcc failed on {}", src.display()));
            }
        }
    }
    Ok(objects)
}

/// The calc test program's objects (without the two archive members it
/// never uses).
fn build_calc(dir: &Path) -> Result<Vec<String>, String> {
    fresh_dir(dir)?;
    let src_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/link_cli/calc");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src_dir)
        .map_err(|e| format!("cannot list {}: {e}", src_dir.display()))?
        .map(|e| e.map(|e| e.path()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    sources.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.ends_with(".c") && !name.starts_with("unused_")
    });
    sources.sort();
    compile_all(dir, &sources)
}

/// Writes and compiles the generated program: file `k` defines
/// `f_k_0..f_k_99`, each a switch over its argument calling functions of
/// other files, with a static table, a table of function pointers and a
/// printf of a string literal.
fn build_generated(dir: &Path) -> Result<Vec<String>, String> {
    fresh_dir(dir)?;
    let total = N_FILES * FUNCS_PER_FILE;
    let name = |idx: usize| format!("f_{}_{}", idx / FUNCS_PER_FILE, idx % FUNCS_PER_FILE);
    let mut sources = Vec::new();
    for file in 0..N_FILES {
        let mut c = String::from("#include <stdio.h>\n#include <string.h>\n\n");
        let _ = writeln!(c, "extern int gen_counter;");
        if file == 0 {
            let _ = writeln!(c, "int gen_counter;");
        }
        let first = file * FUNCS_PER_FILE;
        let callees: Vec<usize> = (first..first + FUNCS_PER_FILE)
            .flat_map(|i| [(i * 7 + 13) % total, (i * 31 + 101) % total])
            .collect();
        for callee in &callees {
            let _ = writeln!(c, "int {}(int);", name(*callee));
        }
        let _ = writeln!(
            c,
            "static const int table_{file}[16] = {{{}}};",
            (0..16)
                .map(|v| ((v * 37 + file) % 101).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(c, "static int state_{file};");
        for j in 0..FUNCS_PER_FILE {
            let i = first + j;
            let (a, b) = (name((i * 7 + 13) % total), name((i * 31 + 101) % total));
            let _ = writeln!(
                c,
                "int {}(int x) {{\n  if (x <= 0) return table_{file}[(unsigned)x & 15];\n  \
                 switch (x % 8) {{\n  case 0: return {a}(x - 1) + {j};\n  \
                 case 1: return {b}(x - 2) ^ table_{file}[x & 15];\n  \
                 case 2: state_{file} += x; return state_{file};\n  \
                 case 3: gen_counter++; return {a}(x / 2) * 3;\n  \
                 case 4: return (int)strlen(\"{}:{j}\") + {b}(x - 3);\n  \
                 case 5: printf(\"%s %d\\n\", \"{}\", x); return x;\n  \
                 case 6: return {a}(x - 4) - {b}(x - 5);\n  \
                 default: return x * {j} + table_{file}[(x >> 3) & 15];\n  }}\n}}",
                name(i),
                name(i),
                name(i),
            );
        }
        let _ = writeln!(
            c,
            "int (*const dispatch_{file}[])(int) = {{{}}};",
            (first..first + FUNCS_PER_FILE)
                .map(name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        if file == 0 {
            let _ = writeln!(
                c,
                "int main(int argc, char **argv) {{\n  (void)argv;\n  \
                 return dispatch_0[argc % {FUNCS_PER_FILE}](argc * 8) & 0x7f;\n}}"
            );
        }
        let path = dir.join(format!("gen{file:02}.c"));
        std::fs::write(&path, c).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        sources.push(path);
    }
    compile_all(dir, &sources)
}
