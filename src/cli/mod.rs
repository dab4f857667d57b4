//! The `orc` command line: argument parsing and wiring only; the work is
//! in the library.

mod link;
mod repl;
mod run;

use clap::{Args, Parser, Subcommand, ValueEnum};

use orc::{DumpOptions, JitBuilder, Tier};
use orc_cranelift::OptLevel;

/// orc: a JIT-compiler construction kit (Cranelift tier 0, LLVM tier 1).
#[derive(Parser, Debug)]
#[command(name = "orc", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run a Kaleidoscope program (FILE.kal).
    Run(RunArgs),
    /// The Kaleidoscope read-eval-print loop on stdin.
    Repl(JitArgs),
    Link(link::LinkArgs),
}

/// What to dump while compiling.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dump {
    /// Each compiled function's Cranelift IR.
    Clif,
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
    /// Tier policy: 0 (Cranelift), 1 (LLVM) or adaptive.
    #[arg(long, default_value = "0", value_parser = parse_tier)]
    pub(crate) tier: Tier,
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
    /// Cranelift optimization level.
    #[arg(long, value_enum, default_value = "speed")]
    pub(crate) opt_level: Opt,
    /// Compile on N background threads (0: on the calling thread).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) compile_threads: usize,
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    s.parse()
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The program.
    pub(crate) file: std::path::PathBuf,
    #[command(flatten)]
    pub(crate) jit: JitArgs,
}

impl JitArgs {
    pub(crate) fn builder(&self) -> JitBuilder {
        let opt_level = match self.opt_level {
            Opt::None => OptLevel::None,
            Opt::Speed => OptLevel::Speed,
            Opt::SpeedAndSize => OptLevel::SpeedAndSize,
        };
        orc::Jit::builder()
            .tier(self.tier)
            .lazy(!self.eager)
            .opt_level(opt_level)
            .compile_threads(self.compile_threads)
            .dump(DumpOptions {
                clif: self.dump.contains(&Dump::Clif),
            })
    }
}

/// Prints the tier-0 statistics on stderr.
pub(crate) fn print_stats(jit: &orc::Jit) {
    let stats = jit.cranelift_layer().stats();
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
        stats.functions.len(),
        stats.modules,
        stats.total_time.as_secs_f64() * 1e3,
        total_code,
        stats.failures
    );
}

/// Runs the command; returns the process exit status.
pub(crate) fn main(cli: Cli) -> i32 {
    let status = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Repl(args) => repl::repl(&args),
        Command::Link(args) => link::link(&args),
    };
    orc::host::flush_stdout();
    status
}
