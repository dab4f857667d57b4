//! A JIT executor: the controller's own executable, started as its child,
//! in which the JIT'd code runs (ORC's `SimpleRemoteEPC` with a
//! shared-memory mapper).
//!
//! ```text
//! controller (session, linker, layers)          executor (the code)
//!   LinkMemory -> shared arena (memfd, RW)  ==  same pages, same address,
//!                                               each segment's protection
//!   Target::protect / run / lookup  ---- ToExecutor::Request ---->  service thread
//!                                   <--- ToController::Response --   (runs go to
//!   callback handler threads        <--- ToController::Callback --    the main thread
//!   (serve_reenter, serve_trip, ..) ---- ToExecutor::Answer ----->    or the caller's)
//! ```
//!
//! The connection is a socket pair: full duplex, so while a request of the
//! controller waits (a program's `main`), the executor can call back (a
//! lazy call, a tiering trip) and the controller can make requests of its
//! own while it handles that callback (protect the pages it just linked,
//! run their initializers on the calling thread).
//!
//! An executor forked from the zygote also has a *call channel*, a second
//! socket pair: a run asked for by a controller thread, and every callback
//! of its code, are one conversation there between that thread (which
//! reads the channel itself and handles each callback as it comes) and
//! the executor thread that runs the code (which reads the channel for
//! its answers). Each message wakes only the thread that waits for it, no
//! reader stands between, and each side watches the channel briefly
//! before it sleeps: on the connection a lazy call took four wake-ups of
//! threads asleep on idle CPUs, each 20-45 us on a virtual machine. A run
//! a second controller thread asks for while the channel is taken goes on
//! the connection, to the executor's main thread after the current one
//! (runs of the main thread never overlap); so do the callbacks of the
//! program's own threads. A run on the channel waits for the posted
//! requests sent before it on the connection (`ToExecutor::Run::after`,
//! counted in the page the zygote shares). Executors fork from a
//! zygote (a copy of the controller taken before it started any thread,
//! [`prepare_zygote`]) or, without one, are started by exec with
//! address-space randomization off; either way every executor the
//! controller starts (a new one after a crash, in the REPL) has the same
//! layout: libraries, and so every address the linker resolved, stay
//! valid; the arena keeps the code, and the controller replays page
//! protections, unwind registrations and libraries.
//!
//! The executor ends when the controller does (its parent-death signal,
//! and end of stream on the socket): no orphans.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use orc_core::memory::{ArenaSpec, SegmentProtection};
use orc_core::remote::{RetKind, Target};
use parking_lot::{Mutex, RwLock};

mod controller;
mod serve;
mod zygote;

#[allow(clippy::wildcard_imports)]
use controller::*;
pub use controller::{ExecutorCommand, JitExecutor};
pub use serve::serve_jit_from_args;
#[allow(clippy::wildcard_imports)]
use serve::*;
pub use zygote::prepare_zygote;
#[allow(clippy::wildcard_imports)]
use zygote::*;

use crate::protocol::{
    decode, encode, read_frame, write_frame, Answer, Call, Callback, Hello, HelloReply, Reply,
    Request, Response, ToController, ToExecutor, Welcome, MAGIC, PROTOCOL_VERSION,
};

/// The descriptor the socket has in the executor.
const SOCKET_FD: i32 = 3;
/// The descriptors the arenas have in the executor.
const ARENA_FDS: [i32; 2] = [4, 5];

fn protection_of(p: SegmentProtection) -> crate::protocol::Protection {
    match p {
        SegmentProtection::ReadExec => crate::protocol::Protection::ReadExecute,
        SegmentProtection::Read => crate::protocol::Protection::Read,
        SegmentProtection::ReadWrite => crate::protocol::Protection::ReadWrite,
    }
}

fn segment_protection(p: crate::protocol::Protection) -> SegmentProtection {
    match p {
        crate::protocol::Protection::ReadExecute => SegmentProtection::ReadExec,
        crate::protocol::Protection::Read => SegmentProtection::Read,
        crate::protocol::Protection::ReadWrite => SegmentProtection::ReadWrite,
    }
}

fn kind_of(r: RetKind) -> crate::protocol::RetKind {
    match r {
        RetKind::Void => crate::protocol::RetKind::Void,
        RetKind::Int => crate::protocol::RetKind::Int,
        RetKind::F64 => crate::protocol::RetKind::F64,
    }
}

/// A connection: a socket pair to a child, or TCP to another machine.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn try_clone(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// `fork`, its failure an error.
///
/// # Safety
/// The process must have one thread, so that the child may run anything.
unsafe fn fork() -> Result<libc::pid_t, String> {
    // SAFETY: the caller guarantees this process has one thread.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    Ok(pid)
}

/// How long a side of a call-channel conversation watches for the other's
/// next message before it sleeps in `read` (see [`await_message`]).
const CHANNEL_WATCH: std::time::Duration = std::time::Duration::from_micros(150);

/// Watches `stream` for a message for up to [`CHANNEL_WATCH`], giving the
/// CPU to any other thread that wants it meanwhile. A thread asleep in
/// `read` on a CPU with nothing else to run leaves that CPU idle, and
/// waking it again costs more than the wait itself on a virtual machine
/// (each way of a lazy call took 20-45 us there, 7-18 us watched); the
/// other side of a conversation usually answers within that time (a lazy
/// call's compile and link, a code stretch to the next lazy call).
fn await_message(stream: &UnixStream) {
    let start = std::time::Instant::now();
    let mut byte = 0u8;
    while start.elapsed() < CHANNEL_WATCH {
        // SAFETY: peeks one byte into a valid buffer without blocking.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return;
        }
        std::thread::yield_now();
    }
}

/// Writes one message as a frame, under the connection's write lock.
fn send<T: serde::Serialize>(writer: &Mutex<Stream>, message: &T) -> Result<(), String> {
    let bytes = encode(message)?;
    let mut w = writer.lock();
    write_frame(&mut *w, &bytes).map_err(|e| e.to_string())
}
