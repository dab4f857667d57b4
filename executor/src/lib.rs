//! # orc-executor: where JIT'd code runs, out of the JIT's process
//!
//! ORC's executor-process model: the controller (the JIT: session,
//! linker, layers) runs in one process and links code into another, the
//! executor, through a small remote-procedure protocol ([`protocol`]):
//! reserving and freeing memory, writing bytes, setting protections (never
//! writable and executable at once), running a function, looking up the
//! executor's symbols and loading libraries. A crash of the JIT'd code
//! then ends only the executor.
//!
//! The executor ([`server::serve`], the `orc-executor` binary) serves a
//! controller over its standard input and output (a child of the
//! controller, which dies with it) or over TCP. On TCP it runs code for
//! whoever connects, so it binds to the loopback address unless told
//! otherwise and requires the session's secret, passed out of band
//! (`ORC_EXECUTOR_SECRET` or `--secret-file`); anything else is refused,
//! logged, and the executor goes on serving. Malformed or hostile messages
//! get an error reply, never a crash: every address a request names must
//! lie in memory the executor reserved for that connection.
//!
//! The controller's side is [`client::Executor`].
//!
//! The JIT's executor ([`jit`]) is the controller's own executable, its
//! child over a socket pair, sharing the JIT's memory through a memfd
//! arena: `orc run --oop`, `orc link --oop`, `orc repl --oop`,
//! `orc::JitBuilder::out_of_process`.

pub mod client;
pub mod jit;
pub mod protocol;
pub mod server;

pub use client::{Executor, ExecutorError};

/// A function whose address a controller compares with its executor's
/// (see [`protocol::Welcome::marker`]).
#[inline(never)]
pub extern "C" fn image_marker() {}
