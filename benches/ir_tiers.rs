//! LLVM IR programs in each tier against `lli-19`, `lli-19
//! -jit-kind=orc-lazy` and native `gcc -O2` code, from one run (issue 22's
//! benchmark). Four parts:
//!
//! 1. **Start-up**: a large generated program (`ORC_BENCH_FUNCTIONS`
//!    functions, default 1500, about Lua's interpreter in IR size) whose
//!    `main` does almost nothing; whole-process wall time, median. Target:
//!    orc's default at most 0.2x lli.
//! 2. **Total time** of CPU-heavy runs (benches/ir/kernels.c with enough
//!    repetitions to run a second or more): whole process. Target: at most
//!    0.6x lli.
//! 3. **Steady state**: the same kernels' best time per run as measured
//!    inside the program (compiles excluded), each tier against the gcc -O2
//!    binary and the clang-19 -O2 one (the IR's own compiler: the code
//!    tier 1 can match; gcc's code is faster on some kernels, slower on
//!    others). Target: tier 1 within 1.1x native.
//! 4. **Compile throughput** per function of the tier-0 path (IR to CLIF
//!    translation plus Cranelift) against LLVM's `-O0` code generator,
//!    both in this process on the large program. Published anchors: TPDE
//!    10-20x faster than LLVM -O0, Cranelift about 3x.
//!
//! 5. **Object cache**: the start-up of the large program under `--tier 1
//!    --eager` with a cold cache (emptied before each run) and a warm one
//!    (filled by the run before). Target: warm at most 0.2x cold (issue
//!    26).
//!
//! Run with `cargo bench --bench ir_tiers`; `ORC_BENCH_RUNS` sets the runs
//! per command (default 5), `ORC_BENCH_REPS` the kernels' repetitions for
//! part 2 (default 12), `ORC_BENCH_PARTS` which parts run (default
//! `12345`). Every other part runs without the object cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod stats;
use stats::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A labelled command maker.
type Commands = Vec<(String, Box<dyn Fn() -> Command>)>;

/// The median wall time of each command over `runs` rounds, the commands
/// taking turns within a round.
fn median_times(runs: usize, commands: &Commands) -> Vec<Duration> {
    median_of_rounds(runs, commands.len(), |k| time_once((commands[k].1)()))
}

fn command(program: &str, args: &[&str], ir: &Path, prog_args: &[String]) -> Command {
    let mut c = Command::new(program);
    // Every run compiles (part 5 measures the object cache on its own).
    c.env("ORC_NO_CACHE", "1");
    c.args(args).arg(ir);
    if program.ends_with("orc") && !prog_args.is_empty() {
        c.arg("--");
    }
    c.args(prog_args).env_remove("ORC_TIER");
    c
}

/// The commands compared in parts 1 and 2: lli's two modes, then orc's.
fn jit_commands(ir: &Path, prog_args: &[String]) -> Commands {
    let orc = env!("CARGO_BIN_EXE_orc");
    let configs: [(&str, &str, &[&str]); 6] = [
        ("lli-19", "lli-19", &[]),
        ("lli-19 orc-lazy", "lli-19", &["-jit-kind=orc-lazy"]),
        ("orc (default)", orc, &["run"]),
        ("orc --tier 0", orc, &["run", "--tier", "0"]),
        ("orc --tier 1", orc, &["run", "--tier", "1"]),
        ("orc --tier adaptive", orc, &["run", "--tier", "adaptive"]),
    ];
    configs
        .into_iter()
        .map(|(label, program, args)| {
            let (ir, prog_args) = (ir.to_owned(), prog_args.to_vec());
            let make: Box<dyn Fn() -> Command> =
                Box::new(move || command(program, args, &ir, &prog_args));
            (label.to_owned(), make)
        })
        .collect()
}

fn print_against(label: &str, commands: &Commands, times: &[Duration]) {
    println!("{label}");
    let lli = times[0];
    for ((name, _), t) in commands.iter().zip(times) {
        println!(
            "  {name:<22} {:>9.1} ms {:>7.2}x lli",
            ms(*t),
            t.as_secs_f64() / lli.as_secs_f64()
        );
    }
}

/// Kernel name -> best microseconds, from kernels.c's output.
fn kernel_times(out: &[u8]) -> Vec<(String, f64)> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?.to_owned();
            let _check = w.next()?;
            Some((name, w.next()?.parse().ok()?))
        })
        .collect()
}

fn steady_state(ir: &Path, native: &Path, clang_native: &Path) {
    let orc = env!("CARGO_BIN_EXE_orc");
    let reps = "15".to_owned();
    let run = |mut c: Command| {
        let out = c.output().unwrap();
        assert!(out.status.success(), "{c:?}");
        kernel_times(&out.stdout)
    };
    let mut gcc = Command::new(native);
    gcc.arg(&reps);
    let native_t = run(gcc);
    println!("\n3. steady state (best run of each kernel, in-program clock; ratio to gcc -O2)");
    let mut clang = Command::new(clang_native);
    clang.arg(&reps);
    let mut columns = vec![
        ("gcc -O2".to_owned(), native_t.clone()),
        ("clang-19 -O2".to_owned(), run(clang)),
    ];
    for (label, args) in [
        ("lli-19", vec![]),
        ("orc --tier 1", vec!["run", "--tier", "1"]),
        ("orc --tier adaptive", vec!["run", "--tier", "adaptive"]),
        ("orc --tier 0", vec!["run", "--tier", "0"]),
    ] {
        let program = if label == "lli-19" { "lli-19" } else { orc };
        columns.push((
            label.to_owned(),
            run(command(program, &args, ir, std::slice::from_ref(&reps))),
        ));
    }
    print!("  {:<10}", "kernel");
    for (label, _) in &columns {
        print!(" {label:>20}");
    }
    println!();
    for (i, (kernel, base)) in native_t.iter().enumerate() {
        print!("  {kernel:<10}");
        for (_, t) in &columns {
            let us = t.get(i).map_or(f64::NAN, |(_, us)| *us);
            print!(" {:>11.0} us {:>4.2}x", us, us / base);
        }
        println!();
    }
    // The IR comes from clang: its own native binary is the code tier 1
    // can match; gcc's is the peer.
    let clang_t = columns[1].1.clone();
    let geo = |t: &[(String, f64)], base: &[(String, f64)]| {
        let ratios: Vec<f64> = t.iter().zip(base).map(|(a, b)| a.1 / b.1).collect();
        (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp()
    };
    for (label, t) in &columns[1..] {
        let worst = t
            .iter()
            .zip(&clang_t)
            .map(|(a, b)| (a.1 / b.1, a.0.as_str()))
            .fold((0.0, ""), |m, x| if x.0 > m.0 { x } else { m });
        println!(
            "  {label:<22} geometric mean {:.2}x gcc -O2, {:.2}x clang -O2 (worst {:.2}x clang, {})",
            geo(t, &native_t),
            geo(t, &clang_t),
            worst.0,
            worst.1
        );
    }
}

fn compile_throughput(ir: &Path, functions: usize) {
    use orc_llvm::{IrBufferModule, LlvmCompiler, LlvmConfig, LlvmOptLevel};
    println!("\n4. compile throughput on the large program ({functions} C functions)");
    let bytes = std::fs::read(ir).unwrap();
    let llvm = LlvmCompiler::new(LlvmConfig::codegen_only(LlvmOptLevel::O0)).unwrap();
    let start = Instant::now();
    let object = llvm
        .compile(IrBufferModule::new("large", Vec::new(), bytes.clone()))
        .unwrap();
    let llvm_t = start.elapsed();
    println!(
        "  LLVM -O0 codegen (parse included): {:>8.1} ms, {:>6.1} us/function, {} bytes",
        ms(llvm_t),
        llvm_t.as_secs_f64() * 1e6 / functions as f64,
        object.bytes.len()
    );
    match tier0_compile_time(&bytes) {
        Ok((plan, t, translated, total)) => println!(
            "  tier 0 (parse + translate + Cranelift): {:>8.1} ms, {:>6.1} us/function ({translated} of {total} translated); LLVM -O0 / tier 0 = {:.2}x ({:.2}x counting the lazy split's plan, {:.1} ms, which tier 1 needs too)",
            ms(t),
            t.as_secs_f64() * 1e6 / translated.max(1) as f64,
            llvm_t.as_secs_f64() / t.as_secs_f64(),
            llvm_t.as_secs_f64() / (t + plan).as_secs_f64(),
            ms(plan)
        ),
        Err(e) => println!("  tier 0: {e}"),
    }
}

/// Plans, translates and compiles every translated function of `bytes`
/// with Cranelift (no optimization, as tier 0 under adaptive), in this
/// process: (plan time, translation and compile time, functions
/// translated, functions in all).
fn tier0_compile_time(bytes: &[u8]) -> Result<(Duration, Duration, usize, usize), String> {
    use orc::cranelift::codegen::ir::{ExternalName, UserExternalName};
    use orc::cranelift::{CraneliftCompiler, CraneliftConfig, FunctionModule};
    use orc_core::SymbolFlags;
    use orc_llvm_ir::to_clif::ClifNames;
    struct Names(Vec<String>);
    impl ClifNames for Names {
        fn function(&mut self, name: &str) -> UserExternalName {
            self.symbol(name)
        }
        fn symbol(&mut self, name: &str) -> UserExternalName {
            self.0.push(name.to_owned());
            UserExternalName::new(1, self.0.len() as u32 - 1)
        }
    }
    let start = Instant::now();
    let program =
        orc_llvm_ir::IrProgram::parse("large", bytes.to_vec()).map_err(|e| e.to_string())?;
    let planned = start.elapsed();
    let mut names = Names(Vec::new());
    let translated = program
        .translate_to_clif(&mut names)
        .map_err(|e| e.to_string())?;
    let translated_at = start.elapsed();
    let total = translated.len();
    let symbols = std::sync::Arc::new(names.0);
    let resolver: orc::cranelift::NameResolver =
        std::sync::Arc::new(move |func, name| match name {
            ExternalName::User(r) => {
                let n = func.params.user_named_funcs().get(*r)?;
                symbols.get(n.index as usize).cloned()
            }
            _ => None,
        });
    let mut module = FunctionModule::new("large", resolver);
    let mut count = 0;
    for t in translated {
        if let Ok(f) = t.result {
            module = module.with_function(format!("{}$t0", t.name), f.func, SymbolFlags::EXPORTED);
            count += 1;
        }
    }
    let config = CraneliftConfig {
        opt_level: orc::cranelift::OptLevel::None,
        ..CraneliftConfig::default()
    };
    let compiler = CraneliftCompiler::new(config).map_err(|e| e.to_string())?;
    compiler
        .compile(Box::new(module))
        .map_err(|e| e.to_string())?;
    let all = start.elapsed();
    println!(
        "  tier 0 phases: plan (parse, verify, prepare) {:.1} ms, translate {:.1} ms, Cranelift {:.1} ms",
        ms(planned),
        ms(translated_at - planned),
        ms(all - translated_at)
    );
    Ok((planned, all - planned, count, total))
}

fn main() {
    let runs = env_or("ORC_BENCH_RUNS", 5);
    let reps = env_or("ORC_BENCH_REPS", 12);
    let functions = env_or("ORC_BENCH_FUNCTIONS", 1500);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("orc-bench-ir-tiers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let parts = std::env::var("ORC_BENCH_PARTS").unwrap_or_else(|_| "12345".into());
    let part = |n: char| parts.contains(n);
    let generate = |name: &str, call_all: bool| {
        let c = dir.join(format!("{name}.c"));
        std::fs::write(&c, large_c_program(functions, call_all)).unwrap();
        let ll = dir.join(format!("{name}.ll"));
        check(
            Command::new("clang-19")
                .args(["-O2", "-S", "-emit-llvm", "-o"])
                .arg(&ll)
                .arg(&c),
        );
        ll
    };
    let large = generate("large", false);
    println!("median of {runs} runs, whole process unless said otherwise\n");
    if part('1') {
        let commands = jit_commands(&large, &[]);
        let times = median_times(runs, &commands);
        print_against(
            &format!("1. start-up: {functions} functions, main calls one"),
            &commands,
            &times,
        );
        let all = generate("large-all", true);
        let commands = jit_commands(&all, &[]);
        let times = median_times(runs, &commands);
        print_against(
            &format!("\n1b. start-up: {functions} functions, main calls each once"),
            &commands,
            &times,
        );
    }

    // 2. Total time of CPU-heavy runs.
    let kernels_c = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ir/kernels.c");
    let kernels = dir.join("kernels.ll");
    check(
        Command::new("clang-19")
            .args(["-O2", "-ffp-contract=off", "-S", "-emit-llvm", "-o"])
            .arg(&kernels)
            .arg(&kernels_c),
    );
    let native = dir.join("kernels-gcc");
    check(
        Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&native)
            .arg(&kernels_c)
            .arg("-lm"),
    );
    let args = vec![reps.to_string()];
    let mut commands = jit_commands(&kernels, &args);
    let native2 = native.clone();
    let args2 = args.clone();
    commands.push((
        "gcc -O2 binary".to_owned(),
        Box::new(move || {
            let mut c = Command::new(&native2);
            c.args(&args2);
            c
        }),
    ));
    if part('2') {
        let times = median_times(runs.min(3), &commands);
        print_against(
            &format!("\n2. total time: kernels.c, {reps} repetitions"),
            &commands,
            &times,
        );
    }
    if part('3') {
        let clang_native = dir.join("kernels-clang");
        check(
            Command::new("clang-19")
                .args(["-O2", "-ffp-contract=off", "-o"])
                .arg(&clang_native)
                .arg(&kernels_c)
                .arg("-lm"),
        );
        steady_state(&kernels, &native, &clang_native);
    }
    if part('4') {
        compile_throughput(&large, functions);
    }
    if part('5') {
        object_cache(&large, &dir.join("cache"), runs, functions);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Part 5: `--tier 1 --eager` start-up with a cold and a warm object cache.
fn object_cache(ir: &Path, cache: &Path, runs: usize, functions: usize) {
    let orc = env!("CARGO_BIN_EXE_orc");
    let make = || {
        let mut c = Command::new(orc);
        c.args(["run", "--tier", "1", "--eager", "--cache"])
            .arg(cache)
            .arg(ir)
            .stdout(Stdio::null());
        c
    };
    let times = median_of_rounds(runs, 2, |k| {
        if k == 0 {
            let _ = std::fs::remove_dir_all(cache);
        }
        time_once(make())
    });
    let (cold, warm) = (times[0], times[1]);
    let ratio = warm.as_secs_f64() / cold.as_secs_f64();
    println!(
        "\n5. object cache: {functions} functions, orc run --tier 1 --eager\n  \
         cold cache {:>9.1} ms\n  warm cache {:>9.1} ms {ratio:>7.2}x cold (target <= 0.2x): {}",
        ms(cold),
        ms(warm),
        if ratio <= 0.2 { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(cache);
}
