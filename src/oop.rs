//! Out-of-process execution: the JIT'd code runs in an executor process,
//! a child running this same executable, while the session, the linker and
//! the layers stay here (see `orc_executor::jit` for the connection and
//! `orc_core::remote` for what crosses it).
//!
//! An embedding program opts in with
//! [`JitBuilder::out_of_process`](crate::JitBuilder::out_of_process) and
//! must hand its executor arguments to [`serve_if_executor`] first thing
//! in `main`:
//!
//! ```no_run
//! // First thing in `main`: in the executor child this serves the
//! // controller and never returns.
//! orc::oop::serve_if_executor();
//! // Before any thread starts: executors fork from a copy taken now.
//! orc::oop::prepare().expect("prepare executors");
//! let jit = orc::Jit::builder()
//!     .out_of_process(orc::oop::ExecutorCommand::this_executable(&[
//!         orc::oop::EXECUTOR_ARG,
//!     ]))
//!     .build();
//! // ... a crash of the JIT'd code now ends only the executor.
//! ```
//!
//! The executable must be linked without PIE (as `orc` is): the executor's
//! runtime routines and host functions are called at the controller's
//! addresses, which the handshake checks.
//!
//! A crash of the code (a signal) or its `exit` ends the executor only;
//! [`JitExecutor::exit_status`] tells how, [`describe_end`] says it the
//! conventional way, and [`JitExecutor::restart`] starts a new executor
//! with the same code and data (the REPL does after a crash).

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, OnceLock};

pub use orc_executor::jit::{ExecutorCommand, JitExecutor};

use crate::Error;

static EXECUTOR: OnceLock<Arc<JitExecutor>> = OnceLock::new();

/// Where the JIT'd code runs.
#[derive(Clone)]
pub enum ExecutorSpec {
    /// A child running this executable, sharing the JIT's memory (a crash
    /// is reported with its signal; the executor can be restarted).
    Child(ExecutorCommand),
    /// An executor listening on TCP (`orc executor --listen`, the same
    /// build of this executable, perhaps on another machine), reached
    /// with the session's secret. It sees none of this process's memory:
    /// what the JIT writes is copied there, and adaptive tiering (whose
    /// counters the code and the JIT share) is not available.
    Remote {
        /// `HOST:PORT`.
        addr: String,
        /// The secret the executor was given.
        secret: Vec<u8>,
    },
}

impl std::fmt::Debug for ExecutorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecutorSpec::Child(c) => f.debug_tuple("Child").field(c).finish(),
            // Never the secret.
            ExecutorSpec::Remote { addr, .. } => {
                f.debug_struct("Remote").field("addr", addr).finish()
            }
        }
    }
}

/// The first argument that makes this executable an executor.
pub const EXECUTOR_ARG: &str = "executor";

/// Starts this process's executor (once; later calls return the first)
/// and routes the JIT's memory and calls to it. Must come before anything
/// reserves JIT memory: [`crate::JitBuilder::build`] calls it first.
pub fn start(spec: &ExecutorSpec) -> Result<&'static Arc<JitExecutor>, Error> {
    if let Some(e) = EXECUTOR.get() {
        return Ok(e);
    }
    let executor = match spec {
        ExecutorSpec::Child(command) => JitExecutor::start(command.clone()),
        ExecutorSpec::Remote { addr, secret } => JitExecutor::connect(addr, secret),
    }
    .map_err(Error::Executor)?;
    orc_core::remote::set_target(executor.clone()).map_err(Error::Executor)?;
    Ok(EXECUTOR.get_or_init(|| executor))
}

/// The executor, when this process is a controller.
pub fn executor() -> Option<&'static Arc<JitExecutor>> {
    EXECUTOR.get()
}

/// Makes executors start fast (forked from a copy of this process taken
/// now, instead of started afresh): call it right after
/// [`serve_if_executor`], before this process starts any thread, when the
/// JIT will run out of process. Without it an executor is started by
/// `exec` (some milliseconds for an executable carrying LLVM).
pub fn prepare() -> Result<(), Error> {
    orc_executor::jit::prepare_zygote(flush_output).map_err(Error::Executor)
}

/// If this process was started as an executor (its first argument is
/// [`EXECUTOR_ARG`]), serves its controller and never returns (the process
/// ends with the controller, the program's `exit`, or its crash).
/// Otherwise returns at once.
pub fn serve_if_executor() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some(EXECUTOR_ARG) {
        return;
    }
    match orc_executor::jit::serve_jit_from_args(&args[1..], flush_output) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("orc executor: {e}");
            std::process::exit(64)
        }
    }
}

/// What the executor does after each run: the program's output reaches
/// its destination before the controller prints anything after it.
fn flush_output() {
    crate::host::flush_stdout();
    // SAFETY: fflush(NULL) flushes every C stdio stream; no precondition.
    unsafe {
        libc::fflush(std::ptr::null_mut());
    }
}

/// How an executor's end reads, and the exit status a shell gives it: a
/// signal `N` is reported as "the program was killed by signal N (NAME)"
/// with status `128 + N`; an exit (the program's own `exit`) has no report
/// and its status.
pub fn describe_end(status: ExitStatus) -> (Option<String>, i32) {
    if let Some(sig) = status.signal() {
        // SAFETY: strsignal returns a static or thread-local string for
        // any number.
        let name = unsafe {
            let p = libc::strsignal(sig);
            if p.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        (
            Some(format!("the program was killed by signal {sig} ({name})")),
            128 + sig,
        )
    } else {
        (None, status.code().unwrap_or(1))
    }
}

/// If the executor has ended, how ([`describe_end`]).
pub fn executor_end() -> Option<(Option<String>, i32)> {
    let ex = executor()?;
    if !ex.is_dead() {
        return None;
    }
    ex.exit_status().map(describe_end)
}
