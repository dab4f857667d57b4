//! The `orc` command line: argument parsing and wiring only; the work is
//! in the library.

mod libsearch;
mod link;
mod repl;
mod run;
mod run_clif;
mod run_ir;
mod source;
mod test_clif;

use clap::{Args, Parser, Subcommand, ValueEnum};

use orc::{DumpOptions, JitBuilder, Tier};
use orc_cranelift::OptLevel;
use orc_llvm::{LlvmConfig, LlvmOptLevel};

/// orc: a JIT-compiler construction kit (Cranelift tier 0, LLVM tier 1).
#[derive(Parser, Debug)]
#[command(name = "orc", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run a Kaleidoscope program (FILE.kal), an LLVM IR program
    /// (FILE.ll, FILE.bc) or a CLIF program (FILE.clif).
    Run(RunArgs),
    /// Run the `; run:` directives of CLIF files (Cranelift's filetest
    /// format).
    Test(test_clif::TestArgs),
    /// The Kaleidoscope read-eval-print loop on stdin.
    Repl(JitArgs),
    Link(link::LinkArgs),
}

/// What to dump while compiling.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dump {
    /// Each compiled function's Cranelift IR.
    Clif,
    /// Each tier-1 function's optimized LLVM IR.
    LlvmIr,
    /// Each tier-1 module's machine code.
    Asm,
}

/// How lazily compiled IR functions are grouped (see `--lazy-units`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LazyUnits {
    /// One function per compile.
    Function,
    /// The called function with the small functions its code can reach.
    Reachable,
}

/// Cranelift optimization levels.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opt {
    /// No optimization.
    None,
    /// Optimize for speed.
    Speed,
    /// Optimize for speed and size.
    SpeedAndSize,
}

/// Options shared by the commands that JIT.
#[derive(Args, Debug, Clone)]
pub(crate) struct JitArgs {
    /// Tier policy: 0 (Cranelift), 1 (LLVM) or adaptive [default: the
    /// ORC_TIER environment variable, else 0 (adaptive for LLVM IR)].
    #[arg(long, value_parser = parse_tier)]
    pub(crate) tier: Option<Tier>,
    /// With --tier adaptive: entries plus loop back-edges before a function
    /// is recompiled by LLVM [default: 10000, or ORC_TIER_THRESHOLD].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) tier_threshold: Option<u64>,
    /// Compile every function up front instead of on first call.
    #[arg(long)]
    pub(crate) eager: bool,
    /// Print each top-level expression's value as `Evaluated to %f`.
    #[arg(long)]
    pub(crate) print_results: bool,
    /// Dump intermediate code on stderr.
    #[arg(long, value_enum)]
    pub(crate) dump: Vec<Dump>,
    /// Print per-function compile time and code size on stderr at exit.
    #[arg(long)]
    pub(crate) stats: bool,
    /// Log every tier change on stderr as it happens, with the time since
    /// start: compiled, hot, queued, promoted, OSR entered, released
    /// [also ORC_TRACE_TIER=1].
    #[arg(long)]
    pub(crate) trace_tier: bool,
    /// Keep compiled tier-1 objects in DIR across runs [default:
    /// ORC_CACHE_DIR, else $XDG_CACHE_HOME/orc/objects, else
    /// ~/.cache/orc/objects]; a compile found there is skipped. Bounded to
    /// 512 MiB, least recently used entries go first.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub(crate) cache: Option<std::path::PathBuf>,
    /// Compile everything; read and write no object cache [also
    /// ORC_NO_CACHE=1].
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Cranelift optimization level [default: speed; none with --tier
    /// adaptive, whose hot code LLVM recompiles]
    #[arg(long, value_enum)]
    pub(crate) opt_level: Option<Opt>,
    /// LLVM IR pipeline level for tier 1 (default O2; for .ll/.bc files
    /// the default is code generation only, like lli).
    #[arg(long, value_name = "O0|O1|O2|O3", value_parser = parse_llvm_opt)]
    pub(crate) llvm_opt_level: Option<LlvmOptLevel>,
    /// Compile on N background threads (0: on the calling thread). A
    /// thread that waits for a compile (a lazy call) runs it itself either
    /// way; the threads take the rest of a lookup's work (an eager
    /// program's other modules), started when first needed. The default is
    /// one fewer than the machine's cores, at least 1.
    #[arg(long, value_name = "N")]
    pub(crate) compile_threads: Option<usize>,
    /// With --tier adaptive: background threads for tier-1 compiles
    /// (0: compile each promotion on the thread whose code made the
    /// function hot, which waits for it).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) tier_up_threads: usize,
    /// Run the JIT'd code in an executor process (this executable, started
    /// as `orc executor`): a crash of the program ends only the executor,
    /// reported with its signal (exit status 128 + N); the REPL then starts
    /// a new one and goes on.
    #[arg(long)]
    pub(crate) oop: bool,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    #[command(flatten)]
    pub(crate) debug: DebugArgs,
}

/// An executor on another machine.
#[derive(Args, Debug, Clone)]
pub(crate) struct RemoteArgs {
    /// Run the JIT'd code in the executor listening at HOST:PORT (`orc
    /// executor --listen ADDR` with a secret, the same build of orc): its
    /// output is printed there. The secret comes from
    /// --executor-secret-file or ORC_EXECUTOR_SECRET. Tiers 0 and 1 only.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "oop")]
    pub(crate) executor: Option<String>,
    /// The file holding the executor's secret.
    #[arg(long, value_name = "FILE", requires = "executor")]
    pub(crate) executor_secret_file: Option<std::path::PathBuf>,
}

impl RemoteArgs {
    /// The remote executor asked for, with its secret.
    pub(crate) fn spec(&self) -> Result<Option<orc::oop::ExecutorSpec>, String> {
        let Some(addr) = &self.executor else {
            return Ok(None);
        };
        let secret = match &self.executor_secret_file {
            Some(f) => std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?,
            None => std::env::var("ORC_EXECUTOR_SECRET")
                .map(String::into_bytes)
                .map_err(|_| {
                    "--executor needs a secret: ORC_EXECUTOR_SECRET or --executor-secret-file"
                        .to_owned()
                })?,
        };
        Ok(Some(orc::oop::ExecutorSpec::Remote {
            addr: addr.clone(),
            secret: secret.trim_ascii().to_vec(),
        }))
    }
}

/// Debugger and profiler support.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct DebugArgs {
    /// Write /tmp/perf-PID.map and the jitdump file jit-PID.dump (in
    /// $JITDUMPDIR, else /tmp) naming the JIT'd functions, for `perf record
    /// -k 1`, `perf inject --jit` and `perf report` (also ORC_PERF=1).
    #[arg(long)]
    pub(crate) perf: bool,
    /// Do not register JIT'd code with gdb's JIT interface (on by default;
    /// also ORC_GDB=0).
    #[arg(long)]
    pub(crate) no_debugger: bool,
}

impl DebugArgs {
    /// Whether to register code with gdb: on unless `--no-debugger` or
    /// `ORC_GDB=0`.
    pub(crate) fn debugger(&self) -> bool {
        !self.no_debugger && std::env::var("ORC_GDB").map_or(true, |v| v.trim() != "0")
    }

    /// Whether to write the perf files: `--perf` or `ORC_PERF=1`.
    pub(crate) fn perf(&self) -> bool {
        self.perf || std::env::var("ORC_PERF").is_ok_and(|v| v.trim() == "1")
    }
}

/// One fewer than the machine's cores, at least 1: the main thread keeps a
/// core while compiles run on the others.
fn default_compile_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .max(1)
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    s.parse()
}

fn parse_llvm_opt(s: &str) -> Result<LlvmOptLevel, String> {
    s.parse()
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The program (`-`: standard input, whose content tells Kaleidoscope,
    /// LLVM IR and CLIF apart).
    pub(crate) file: std::path::PathBuf,
    #[command(flatten)]
    pub(crate) jit: JitArgs,
    /// Libraries an IR program links against, as with `gcc -lNAME`.
    #[arg(short = 'l', value_name = "NAME")]
    pub(crate) libs: Vec<String>,
    /// Directories searched first for `-l` libraries, as with `gcc -L`.
    #[arg(short = 'L', value_name = "DIR")]
    pub(crate) lib_dirs: Vec<std::path::PathBuf>,
    /// Shared libraries loaded (by path) before an IR program runs, whose
    /// symbols it may use (lli's `--load`/`-dlopen`).
    #[arg(long = "load", value_name = "LIB")]
    pub(crate) load: Vec<std::path::PathBuf>,
    /// For IR programs run lazily: `function` compiles exactly the function
    /// called, each in its own unit (LLVM CompileOnDemand's default);
    /// `reachable` (the default) also compiles the small functions its code
    /// can reach, in the same module.
    #[arg(long, value_enum, default_value = "reachable")]
    pub(crate) lazy_units: LazyUnits,
    /// For CLIF programs: the function to run [default: main].
    #[arg(long, value_name = "NAME")]
    pub(crate) entry: Option<String>,
    /// Arguments for the IR program's `main` (after `--`).
    #[arg(last = true)]
    pub(crate) args: Vec<String>,
}

/// The command's object cache, for `--stats`.
static OBJECT_CACHE: std::sync::OnceLock<std::sync::Arc<orc::core::cache::DirectoryCache>> =
    std::sync::OnceLock::new();

impl JitArgs {
    /// The object cache `--cache`/`--no-cache` ask for. A cache directory
    /// that cannot be made costs only the cache, with a warning when it
    /// was named.
    fn object_cache(&self) -> Option<std::sync::Arc<dyn orc::core::cache::ObjectCache>> {
        use orc::core::cache::{DirectoryCache, DEFAULT_CACHE_BYTES};
        let env_off = std::env::var("ORC_NO_CACHE").is_ok_and(|v| !v.is_empty() && v != "0");
        if self.no_cache || (env_off && self.cache.is_none()) {
            return None;
        }
        let dir = self
            .cache
            .clone()
            .or_else(|| std::env::var_os("ORC_CACHE_DIR").map(Into::into))
            .or_else(DirectoryCache::default_dir)?;
        match DirectoryCache::open(&dir, DEFAULT_CACHE_BYTES) {
            Ok(cache) => {
                let cache = std::sync::Arc::new(cache);
                let _ = OBJECT_CACHE.set(cache.clone());
                Some(cache)
            }
            Err(e) => {
                if self.cache.is_some() {
                    eprintln!(
                        "orc: warning: no object cache: cannot use {}: {e}",
                        dir.display()
                    );
                }
                None
            }
        }
    }

    pub(crate) fn builder(&self) -> JitBuilder {
        let mut builder = orc::Jit::builder();
        if let Some(opt) = self.opt_level {
            builder = builder.opt_level(match opt {
                Opt::None => OptLevel::None,
                Opt::Speed => OptLevel::Speed,
                Opt::SpeedAndSize => OptLevel::SpeedAndSize,
            });
        }
        if let Some(tier) = self.tier {
            builder = builder.tier(tier);
        }
        if let Some(threshold) = self.tier_threshold {
            builder = builder.tier_threshold(threshold);
        }
        if self.trace_tier {
            builder = builder.trace_tier(true);
        }
        if let Some(cache) = self.object_cache() {
            builder = builder.object_cache(cache);
        }
        if self.oop {
            builder = builder.out_of_process(orc::oop::ExecutorCommand::this_executable(&[
                orc::oop::EXECUTOR_ARG,
            ]));
        }
        match self.remote.spec() {
            Ok(Some(orc::oop::ExecutorSpec::Remote { addr, secret })) => {
                builder = builder.remote_executor(&addr, &secret);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("orc: error: {e}");
                std::process::exit(64);
            }
        }
        builder
            .debugger(self.debug.debugger())
            .perf(self.debug.perf())
            .tier_up_threads(self.tier_up_threads)
            .lazy(!self.eager)
            .compile_threads(self.compile_threads.unwrap_or_else(default_compile_threads))
            .dump(DumpOptions {
                clif: self.dump.contains(&Dump::Clif),
                llvm_ir: self.dump.contains(&Dump::LlvmIr),
                asm: self.dump.contains(&Dump::Asm),
            })
            .llvm_config(LlvmConfig {
                opt_level: self.llvm_opt_level.unwrap_or_default(),
                ..LlvmConfig::default()
            })
    }
}

/// Prints per-function compile statistics of the tiers that ran, on stderr.
pub(crate) fn print_stats(jit: &orc::Jit) {
    if let Some(cache) = OBJECT_CACHE.get() {
        let s = cache.stats();
        eprintln!(
            "orc: stats: object cache {}: {} hits, {} misses, {} stored, {} damaged entries replaced, {} evicted",
            cache.dir().display(),
            s.hits,
            s.misses,
            s.stored,
            s.rejected,
            s.evicted
        );
    }
    if let Some(layer) = jit.tiered_if_created() {
        for (function, what) in layer.untranslated() {
            eprintln!(
                "orc: stats: '{function}' stays in tier 0: its CLIF uses {what}, which the translation to LLVM IR does not cover"
            );
        }
    }
    if let Some(tiers) = jit.tier_manager() {
        print_tiering_stats(jit, tiers);
        return;
    }
    print_tier0_stats(jit);
    if let Some(llvm) = jit.llvm_layer_if_created() {
        let stats = llvm.stats();
        eprintln!(
            "orc: stats: tier 1 {:<17} {:>12} {:>10}",
            "function", "compile (us)", "code (B)"
        );
        for f in &stats.functions {
            eprintln!(
                "orc: stats: tier 1 {:<17} {:>12.1} {:>10}",
                f.name,
                f.compile_time.as_secs_f64() * 1e6,
                f.code_size
            );
        }
        eprintln!(
            "orc: stats: tier 1: {} functions in {} modules, {:.3} ms compiling, {} failed modules",
            stats.functions_compiled,
            stats.modules,
            stats.total_time.as_secs_f64() * 1e3,
            stats.failures
        );
    }
}

fn print_tier0_stats(jit: &orc::Jit) {
    let stats = jit.cranelift_layer().stats();
    if stats.modules == 0 && stats.failures == 0 {
        return;
    }
    eprintln!(
        "orc: stats: {:<24} {:>12} {:>10}",
        "function", "compile (us)", "code (B)"
    );
    let mut total_code = 0;
    for f in &stats.functions {
        total_code += f.code_size;
        eprintln!(
            "orc: stats: {:<24} {:>12.1} {:>10}",
            f.name,
            f.compile_time.as_secs_f64() * 1e6,
            f.code_size
        );
    }
    eprintln!(
        "orc: stats: {} functions in {} modules, {:.3} ms compiling, {} bytes of code, {} failed modules",
        stats.functions_compiled,
        stats.modules,
        stats.total_time.as_secs_f64() * 1e3,
        total_code,
        stats.failures
    );
}

impl Cli {
    /// Whether the command runs its code in a child executor (`--oop`).
    pub(crate) fn out_of_process(&self) -> bool {
        match &self.command {
            Command::Run(args) => args.jit.oop,
            Command::Repl(args) => args.oop,
            Command::Link(args) => args.oop(),
            Command::Test(_) => false,
        }
    }
}

/// Runs the command; returns the process exit status.
pub(crate) fn main(cli: Cli) -> i32 {
    let status = match cli.command {
        Command::Run(args) => match source::kind(&args.file) {
            Ok(source::Kind::LlvmIr) => run_ir::run_ir(&args),
            Ok(source::Kind::Clif) => run_clif::run_clif(&args),
            Ok(source::Kind::Kaleidoscope) => run::run(&args),
            Err(e) => {
                eprintln!("orc: error: {e}");
                1
            }
        },
        Command::Test(args) => test_clif::test_clif(&args),
        Command::Repl(args) => repl::repl(&args),
        Command::Link(args) => link::link(&args),
    };
    orc::host::flush_stdout();
    status
}

/// The adaptive table: per function, what tier 0 counted, the tier reached,
/// both compile times and the time spent queued; then totals.
fn print_tiering_stats(jit: &orc::Jit, tiers: &orc_core::TierManager) {
    use std::collections::HashMap;
    let t0: HashMap<String, f64> = jit
        .cranelift_layer()
        .stats()
        .functions
        .iter()
        .map(|f| (f.name.clone(), f.compile_time.as_secs_f64() * 1e3))
        .collect();
    let ms = |d: Option<std::time::Duration>| {
        d.map_or("-".to_owned(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
    };
    eprintln!(
        "orc: stats: {:<20} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "function", "tier-0 count", "tier", "t0 ms", "t1 ms", "queued ms"
    );
    let (mut n_promoted, mut t0_total, mut t1_total) = (0, 0.0, 0.0);
    let stats = tiers.stats();
    for f in &stats {
        let tier = match f.state {
            orc_core::TierState::Promoted => {
                n_promoted += 1;
                "1"
            }
            orc_core::TierState::Failed => "0 (t1 failed)",
            orc_core::TierState::Queued | orc_core::TierState::Compiling => "0 (queued)",
            orc_core::TierState::Counting => "0",
        };
        let t0_ms = t0.get(&f.name).copied();
        t0_total += t0_ms.unwrap_or(0.0);
        t1_total += f.tier1_compile_time.map_or(0.0, |d| d.as_secs_f64() * 1e3);
        let name = f.name.trim_end_matches("$t0");
        eprintln!(
            "orc: stats: {:<20} {:>12} {:>10} {:>10} {:>10} {:>10}",
            name,
            f.count,
            tier,
            t0_ms.map_or("-".to_owned(), |t| format!("{t:.3}")),
            ms(f.tier1_compile_time),
            ms(f.queued_for)
        );
    }
    eprintln!(
        "orc: stats: {} functions, {} promoted to tier 1; {:.3} ms in tier 0 compiles, {:.3} ms in tier 1 compiles; {} trips",
        stats.len(),
        n_promoted,
        t0_total,
        t1_total,
        tiers.trips()
    );
}
