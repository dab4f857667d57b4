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
//! run their initializers on the calling thread). Executors fork from a
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

/// Writes one message as a frame, under the connection's write lock.
fn send<T: serde::Serialize>(writer: &Mutex<Stream>, message: &T) -> Result<(), String> {
    let bytes = encode(message)?;
    let mut w = writer.lock();
    write_frame(&mut *w, &bytes).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// The controller's side.

/// How the controller starts an executor: its own executable with these
/// arguments (the embedding program runs [`serve_jit_from_args`] for them).
#[derive(Clone, Debug)]
pub struct ExecutorCommand {
    /// The executable (the controller's own, `/proc/self/exe`).
    pub program: PathBuf,
    /// Arguments before the arenas' (`executor` for `orc`).
    pub args: Vec<String>,
}

impl ExecutorCommand {
    /// This process's executable with `args`.
    pub fn this_executable(args: &[&str]) -> Self {
        ExecutorCommand {
            program: PathBuf::from("/proc/self/exe"),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A pending request's reply slot.
type Pending = Mutex<HashMap<u64, Sender<Result<Reply, String>>>>;

/// One executor process and its connection.
struct Connection {
    writer: Arc<Mutex<Stream>>,
    pending: Arc<Pending>,
    dead: Arc<AtomicBool>,
    /// Notified when the reader has seen the end (and read the status).
    ended: Arc<(Mutex<bool>, parking_lot::Condvar)>,
    /// The child's exit status, once the reader has reaped it.
    status: Arc<Mutex<Option<ExitStatus>>>,
    pid: u32,
}

impl Connection {
    /// Waits at most `limit` for the reader to have seen the end.
    fn wait_ended(&self, limit: std::time::Duration) {
        let (lock, cond) = &*self.ended;
        let mut ended = lock.lock();
        let deadline = std::time::Instant::now() + limit;
        while !*ended && self.status.lock().is_none() {
            if cond.wait_until(&mut ended, deadline).timed_out() {
                break;
            }
        }
    }
}

/// What the controller replays in a new executor.
#[derive(Default)]
struct Replay {
    protections: BTreeMap<u64, (u64, SegmentProtection)>,
    frames: Vec<u64>,
    libraries: Vec<String>,
}

thread_local! {
    /// The callback this thread is handling, if any: runs it asks for go
    /// to the executor thread that made the callback.
    static CURRENT_CALLBACK: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// The controller's handle on its executor: the [`Target`] of the core.
pub struct JitExecutor {
    /// How a local executor is started; `None` for one over TCP, which
    /// does not share this process's memory and cannot be restarted.
    command: Option<ExecutorCommand>,
    arenas: [ArenaSpec; 2],
    conn: RwLock<Arc<Connection>>,
    next_id: AtomicU64,
    replay: Mutex<Replay>,
    /// Counts executors started (1 for the first).
    generation: AtomicU64,
    /// Posted requests sent, and how many of them are known performed.
    posted: AtomicU64,
    synced: AtomicU64,
}

impl JitExecutor {
    /// Creates the shared arenas (this process's reservations come from
    /// them from now on) and starts the first executor.
    pub fn start(command: ExecutorCommand) -> Result<Arc<Self>, String> {
        let (arenas, conn) = match ZYGOTE.get() {
            Some(zygote) => (zygote.arenas, spawn_from_zygote(zygote)?),
            None => {
                let arenas = orc_core::memory::create_shared_arenas()
                    .map_err(|e| format!("cannot create the shared JIT arena: {e}"))?;
                let conn = spawn(&command, &arenas)?;
                (arenas, conn)
            }
        };
        Ok(Arc::new(JitExecutor {
            command: Some(command),
            arenas,
            conn: RwLock::new(conn),
            next_id: AtomicU64::new(1),
            replay: Mutex::new(Replay::default()),
            generation: AtomicU64::new(1),
            posted: AtomicU64::new(0),
            synced: AtomicU64::new(0),
        }))
    }

    /// Connects to an executor listening on TCP at `addr` (`orc executor
    /// --listen`, the same build of this executable) with the session's
    /// `secret`. Its memory is its own: the arenas here are private, and
    /// what the controller writes in them is copied there.
    pub fn connect(addr: &str, secret: &[u8]) -> Result<Arc<Self>, String> {
        let arenas = orc_core::memory::create_private_arenas()
            .map_err(|e| format!("cannot create the JIT arena: {e}"))?;
        let stream = TcpStream::connect(addr)
            .map_err(|e| format!("cannot connect to the executor at {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let reader = Stream::Tcp(stream);
        let conn = handshake(reader, secret, None)?;
        let executor = Arc::new(JitExecutor {
            command: None,
            arenas,
            conn: RwLock::new(conn),
            next_id: AtomicU64::new(1),
            replay: Mutex::new(Replay::default()),
            generation: AtomicU64::new(1),
            posted: AtomicU64::new(0),
            synced: AtomicU64::new(0),
        });
        executor.call(Call::MapArenas {
            arenas: arenas.iter().map(|a| (a.base, a.len)).collect(),
        })?;
        Ok(executor)
    }

    /// Whether the executor is on another machine (over TCP).
    pub fn is_remote(&self) -> bool {
        self.command.is_none()
    }

    /// The executor's process id (on its machine).
    pub fn pid(&self) -> u32 {
        self.conn.read().pid
    }

    /// How many executors have been started (the first counts).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Whether the executor has gone (crashed or exited).
    pub fn is_dead(&self) -> bool {
        self.conn.read().dead.load(Ordering::Acquire)
    }

    /// Waits for a dead executor's exit status (`None` if it is alive).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let conn = self.conn.read().clone();
        if !conn.dead.load(Ordering::Acquire) {
            return None;
        }
        if self.command.is_none() {
            // On another machine: the status it reported, if it did.
            return *conn.status.lock();
        }
        conn.wait_ended(std::time::Duration::from_secs(2));
        let status = *conn.status.lock();
        status
    }

    /// Starts a new executor in place of a dead one, with the same memory
    /// (the arena), protections, unwind registrations and libraries.
    pub fn restart(&self) -> Result<(), String> {
        // A start can fail for reasons of the moment (the machine out of
        // processes); a second try costs little.
        match self.start_again() {
            Ok(()) => Ok(()),
            Err(first) => self
                .start_again()
                .map_err(|second| format!("{first}; tried again: {second}")),
        }
    }

    fn start_again(&self) -> Result<(), String> {
        let Some(command) = &self.command else {
            return Err("an executor on another machine cannot be restarted from here".into());
        };
        let conn = match ZYGOTE.get() {
            Some(zygote) => spawn_from_zygote(zygote)?,
            None => spawn(command, &self.arenas)?,
        };
        *self.conn.write() = conn;
        self.generation.fetch_add(1, Ordering::Relaxed);
        let (protections, frames, libraries) = {
            let r = self.replay.lock();
            (r.protections.clone(), r.frames.clone(), r.libraries.clone())
        };
        for lib in libraries {
            self.call(Call::LookupSymbols {
                library: Some(lib.clone()),
                names: Vec::new(),
            })
            .map_err(|e| format!("loading {lib} again: {e}"))?;
        }
        for (addr, (size, p)) in protections {
            self.call(Call::Protect {
                addr,
                size,
                protection: protection_of(p),
            })
            .map_err(|e| format!("protecting {addr:#x}+{size:#x} again: {e}"))?;
        }
        for addr in frames {
            self.call(Call::RegisterFrames { addr })
                .map_err(|e| format!("registering the unwind info at {addr:#x} again: {e}"))?;
        }
        Ok(())
    }

    /// Performs `call` in the executor and waits for its reply. A run made
    /// while this thread handles a callback runs on the calling thread of
    /// the executor.
    pub fn call(&self, call: Call) -> Result<Reply, String> {
        let conn = self.conn.read().clone();
        if conn.dead.load(Ordering::Acquire) {
            return Err("the executor is not running (it exited or crashed)".into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = channel();
        conn.pending.lock().insert(id, tx);
        let thread = CURRENT_CALLBACK.with(|c| c.get());
        let request = ToExecutor::Request(Request {
            id,
            call,
            thread,
            reply: true,
        });
        if let Err(e) = send(&conn.writer, &request) {
            conn.pending.lock().remove(&id);
            return Err(format!("cannot reach the executor: {e}"));
        }
        match rx.recv() {
            Ok(result) => result,
            Err(_) => Err("the executor died".into()),
        }
    }

    /// Sends `call` without waiting for it (see [`Request::reply`]): for
    /// an executor sharing memory, whose effects matter only once code is
    /// released to it, by a later request or after [`Target::barrier`].
    fn post(&self, call: Call) -> Result<(), String> {
        if self.command.is_none() {
            return self.call(call).map(|_| ());
        }
        let conn = self.conn.read().clone();
        if conn.dead.load(Ordering::Acquire) {
            return Err("the executor is not running (it exited or crashed)".into());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.posted.fetch_add(1, Ordering::AcqRel);
        let request = ToExecutor::Request(Request {
            id,
            call,
            thread: None,
            reply: false,
        });
        send(&conn.writer, &request).map_err(|e| format!("cannot reach the executor: {e}"))
    }

    /// Runs a C `main` in the executor with `args` as its argv.
    pub fn run_main(&self, addr: u64, args: Vec<String>) -> Result<i32, String> {
        match self.call(Call::RunMain { addr, args })? {
            Reply::Value(v) => Ok(v as u32 as i32),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Ends the executor as `exit(status)` would and returns how it ended.
    pub fn exit(&self, status: i32) -> Option<ExitStatus> {
        let conn = self.conn.read().clone();
        if !conn.dead.load(Ordering::Acquire) {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let request = ToExecutor::Request(Request {
                id,
                call: Call::Exit { status },
                thread: None,
                reply: true,
            });
            let _ = send(&conn.writer, &request);
            conn.wait_ended(std::time::Duration::from_secs(10));
            if let Some(status) = *conn.status.lock() {
                return Some(status);
            }
        }
        self.exit_status()
    }
}

impl Target for JitExecutor {
    fn protect(&self, addr: u64, len: u64, prot: SegmentProtection) -> Result<(), String> {
        self.replay.lock().protections.insert(addr, (len, prot));
        self.call(Call::Protect {
            addr,
            size: len,
            protection: protection_of(prot),
        })
        .map(|_| ())
    }

    fn protect_many(&self, ranges: &[(u64, u64, SegmentProtection)]) -> Result<(), String> {
        {
            let mut replay = self.replay.lock();
            for &(addr, len, prot) in ranges {
                replay.protections.insert(addr, (len, prot));
            }
        }
        self.post(Call::ProtectMany {
            ranges: ranges
                .iter()
                .map(|&(a, l, p)| (a, l, protection_of(p)))
                .collect(),
        })
    }

    fn barrier(&self) -> Result<(), String> {
        let posted = self.posted.load(Ordering::Acquire);
        if self.synced.load(Ordering::Acquire) >= posted {
            return Ok(());
        }
        // Performed in order: once this is answered, so is every request
        // posted before it.
        self.call(Call::Ping)?;
        self.synced.fetch_max(posted, Ordering::AcqRel);
        Ok(())
    }

    fn register_frames(&self, begin: u64) -> Result<(), String> {
        self.replay.lock().frames.push(begin);
        self.post(Call::RegisterFrames { addr: begin })
    }

    fn deregister_frames(&self, begin: u64) -> Result<(), String> {
        self.replay.lock().frames.retain(|&f| f != begin);
        self.post(Call::DeregisterFrames { addr: begin })
    }

    fn lookup(&self, library: Option<&str>, names: &[String]) -> Result<Vec<Option<u64>>, String> {
        if let Some(lib) = library {
            let mut r = self.replay.lock();
            if !r.libraries.iter().any(|l| l == lib) {
                r.libraries.push(lib.to_owned());
            }
        }
        match self.call(Call::LookupSymbols {
            library: library.map(str::to_owned),
            names: names.to_vec(),
        })? {
            Reply::Symbols(s) if s.len() == names.len() => Ok(s),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    fn shares_memory(&self) -> bool {
        self.command.is_some()
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), String> {
        self.call(Call::Write {
            addr,
            bytes: bytes.to_vec(),
        })
        .map(|_| ())
    }

    fn run(&self, addr: u64, ints: &[u64], floats: &[f64], ret: RetKind) -> Result<u64, String> {
        match self.call(Call::RunTyped {
            addr,
            ints: ints.to_vec(),
            floats: floats.to_vec(),
            ret: kind_of(ret),
        })? {
            Reply::Value(v) => Ok(v),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }
}

/// A single-threaded copy of the controller, forked before the controller
/// started any thread, that forks executors on request: one starts in a
/// fraction of a millisecond (no exec, no static constructors of the
/// executable, whose start costs milliseconds) with the controller's own
/// layout (so the arenas can sit next to its libraries). It watches each
/// executor and reports how it ended on the executor's socket.
struct Zygote {
    sock: Mutex<UnixStream>,
    arenas: [ArenaSpec; 2],
    /// The first executor, forked at once, while the controller goes on
    /// with its own start: its connection, until taken.
    first: Mutex<Option<UnixStream>>,
}

static ZYGOTE: std::sync::OnceLock<Zygote> = std::sync::OnceLock::new();

/// Prepares executors forked from this process (a zygote: see the module
/// docs and `ARCHITECTURE.md`): creates
/// the shared arenas and forks the zygote. Must run before this process
/// starts any thread (first thing in `main`); `after_run` is what the
/// executors run after each run. Once per process.
pub fn prepare_zygote(after_run: fn()) -> Result<(), String> {
    if ZYGOTE.get().is_some() {
        return Ok(());
    }
    let arenas = orc_core::memory::create_shared_arenas_here()
        .map_err(|e| format!("cannot create the shared JIT arena: {e}"))?;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the zygote's socket: {e}"))?;
    let (first_ours, first_theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the executor's socket: {e}"))?;
    // SAFETY: getpid has no preconditions.
    let controller = unsafe { libc::getpid() };
    // SAFETY: the caller guarantees this process has one thread, so the
    // child may run anything; each side owns its copies.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(ours);
        drop(first_ours);
        zygote_loop(theirs, arenas, controller, after_run, first_theirs);
    }
    drop(theirs);
    drop(first_theirs);
    ZYGOTE
        .set(Zygote {
            sock: Mutex::new(ours),
            arenas,
            first: Mutex::new(Some(first_ours)),
        })
        .map_err(|_| "the zygote exists already".to_owned())
}

/// Dies with `parent` (no orphans), even if it is already gone.
fn die_with(parent: libc::pid_t) {
    // SAFETY: prctl and getppid have no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
    }
}

fn zygote_loop(
    sock: UnixStream,
    arenas: [ArenaSpec; 2],
    controller: libc::pid_t,
    after_run: fn(),
    first: UnixStream,
) -> ! {
    use std::os::fd::IntoRawFd;
    die_with(controller);
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let mut next = Some(first.into_raw_fd());
    loop {
        let Some(fd) = next.take().or_else(|| recv_fd(&sock)) else {
            // The controller closed its end: it is done.
            // SAFETY: ends this process, which holds nothing to flush.
            unsafe { libc::_exit(0) }
        };
        // SAFETY: this process has one thread; each side owns its copies.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(sock);
            die_with(me);
            // SAFETY: the descriptor came from the controller for this
            // executor; nothing else here owns it.
            let stream = Stream::Unix(unsafe { UnixStream::from_raw_fd(fd) });
            for sig in [libc::SIGSEGV, libc::SIGBUS] {
                // SAFETY: restores the default action (see serve_jit_from_args).
                unsafe { libc::signal(sig, libc::SIG_DFL) };
            }
            match serve(stream, None, arenas.to_vec(), after_run, &mut || {}) {
                Ok(never) => match never {},
                Err(e) => {
                    eprintln!("orc executor: {e}");
                    // SAFETY: ends the child, which served nothing.
                    unsafe { libc::_exit(64) }
                }
            }
        }
        // SAFETY: our own descriptor from recv_fd.
        let mut stream = Stream::Unix(unsafe { UnixStream::from_raw_fd(fd) });
        if pid < 0 {
            continue;
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let report = if libc::WIFSIGNALED(status) {
            ToController::Crashed {
                signal: libc::WTERMSIG(status),
            }
        } else {
            ToController::Exited {
                status: libc::WEXITSTATUS(status),
            }
        };
        if let Ok(bytes) = encode(&report) {
            let _ = write_frame(&mut stream, &bytes);
        }
    }
}

/// Calls `f` with a message of one byte and room for one descriptor, its
/// buffers alive for the call.
fn with_fd_message<R>(f: impl FnOnce(&mut libc::msghdr) -> R) -> R {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: a zeroed msghdr is a valid empty one; the fields set below
    // point at buffers that live until `f` returns.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    f(&mut msg)
}

/// Sends a descriptor over a Unix socket.
fn send_fd(sock: &UnixStream, fd: i32) -> Result<(), String> {
    let n = with_fd_message(|msg| {
        // SAFETY: the control buffer holds one cmsg of one descriptor (its
        // space was computed for that); CMSG_FIRSTHDR of it is non-null.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
        }
        // SAFETY: msg describes valid buffers; the socket is ours.
        unsafe { libc::sendmsg(sock.as_raw_fd(), msg, 0) }
    });
    if n == 1 {
        Ok(())
    } else {
        Err(format!(
            "cannot pass a socket to the zygote: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Receives a descriptor sent with [`send_fd`]; `None` at end of stream.
fn recv_fd(sock: &UnixStream) -> Option<i32> {
    with_fd_message(|msg| {
        loop {
            // SAFETY: msg describes valid buffers; the socket is ours.
            let n = unsafe { libc::recvmsg(sock.as_raw_fd(), msg, libc::MSG_CMSG_CLOEXEC) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                return None;
            }
            break;
        }
        // SAFETY: recvmsg filled the control buffer; CMSG_FIRSTHDR/DATA
        // read within it and the header says what it holds.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            if cmsg.is_null()
                || (*cmsg).cmsg_level != libc::SOL_SOCKET
                || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            {
                return None;
            }
            Some(std::ptr::read_unaligned(
                libc::CMSG_DATA(cmsg).cast::<i32>(),
            ))
        }
    })
}

/// Asks the zygote for an executor and performs the handshake.
fn spawn_from_zygote(zygote: &Zygote) -> Result<Arc<Connection>, String> {
    if let Some(first) = zygote.first.lock().take() {
        return handshake(Stream::Unix(first), &[], None);
    }
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the executor's socket: {e}"))?;
    send_fd(&zygote.sock.lock(), theirs.as_raw_fd())?;
    drop(theirs);
    handshake(Stream::Unix(ours), &[], None)
}

/// Starts an executor, performs the handshake and starts the reader.
fn spawn(command: &ExecutorCommand, arenas: &[ArenaSpec; 2]) -> Result<Arc<Connection>, String> {
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the executor's socket: {e}"))?;
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args);
    for (spec, fd) in arenas.iter().zip(ARENA_FDS) {
        cmd.arg("--arena")
            .arg(format!("{fd}:{:#x}:{:#x}", spec.base, spec.len));
    }
    let child_sock = theirs.as_raw_fd();
    let arena_fds = [arenas[0].fd, arenas[1].fd];
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (dup2, personality, prctl).
    unsafe {
        cmd.pre_exec(move || {
            // Move every source out of the way first: one may sit on a
            // target descriptor (dup2 clears close-on-exec on the target).
            let sources = [child_sock, arena_fds[0], arena_fds[1]];
            let mut moved = [0; 3];
            for (m, src) in moved.iter_mut().zip(sources) {
                *m = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 64);
                if *m < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (from, to) in moved
                .into_iter()
                .zip([SOCKET_FD, ARENA_FDS[0], ARENA_FDS[1]])
            {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // The same layout in every executor: addresses resolved for
            // one stay valid in the next.
            libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
            // Dies with the controller.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start the executor {}: {e}",
            command.program.display()
        )
    })?;
    drop(theirs);
    handshake(Stream::Unix(ours), &[], Some(child))
}

/// Performs the handshake on `stream` and starts the reader.
fn handshake(
    mut reader: Stream,
    secret: &[u8],
    child: Option<Child>,
) -> Result<Arc<Connection>, String> {
    let writer = Arc::new(Mutex::new(
        reader
            .try_clone()
            .map_err(|e| format!("executor connection: {e}"))?,
    ));
    let hello = Hello {
        magic: MAGIC.to_owned(),
        version: PROTOCOL_VERSION,
        secret: secret.to_vec(),
    };
    send(&writer, &hello)?;
    let welcome = match read_frame(&mut reader) {
        Ok(Some(frame)) => match decode::<HelloReply>(&frame)? {
            HelloReply::Welcome(w) => w,
            HelloReply::Refused(why) => return Err(format!("the executor refused: {why}")),
        },
        Ok(None) | Err(_) => {
            let what = "the executor ended during its handshake";
            return Err(match child {
                Some(child) => exit_message(child, what),
                None => what.to_owned(),
            });
        }
    };
    check_welcome(&welcome)?;
    let conn = Arc::new(Connection {
        writer,
        pending: Arc::new(Mutex::new(HashMap::new())),
        dead: Arc::new(AtomicBool::new(false)),
        ended: Arc::new((Mutex::new(false), parking_lot::Condvar::new())),
        status: Arc::new(Mutex::new(None)),
        pid: welcome.pid,
    });
    let c = conn.clone();
    std::thread::Builder::new()
        .name("orc-executor-reader".into())
        .spawn(move || read_loop(reader, c, child))
        .map_err(|e| format!("cannot start the executor's reader: {e}"))?;
    Ok(conn)
}

fn exit_message(mut child: Child, what: &str) -> String {
    match child.wait() {
        Ok(status) => format!("{what} ({status})"),
        Err(e) => format!("{what} ({e})"),
    }
}

fn check_welcome(w: &Welcome) -> Result<(), String> {
    if w.version != PROTOCOL_VERSION {
        return Err(format!(
            "the executor speaks protocol {}, this controller {PROTOCOL_VERSION}",
            w.version
        ));
    }
    let ours = crate::image_marker as *const () as usize as u64;
    if w.marker != ours {
        return Err(format!(
            "the executor's image is at another address ({:#x}, here {ours:#x}): \
             a JIT executor must be this executable, linked without PIE",
            w.marker
        ));
    }
    Ok(())
}

/// The controller's reader: routes responses, hands callbacks to handler
/// threads; at the end of the stream marks the executor dead, fails every
/// waiting request and reaps the child.
fn read_loop(mut reader: Stream, conn: Arc<Connection>, child: Option<Child>) {
    let handlers = Arc::new(HandlerPool::default());
    while let Ok(Some(frame)) = read_frame(&mut reader) {
        match decode::<ToController>(&frame) {
            Ok(ToController::Response(Response { id, result })) => {
                match conn.pending.lock().remove(&id) {
                    Some(tx) => {
                        let _ = tx.send(result);
                    }
                    // A posted request failed.
                    None => {
                        if let Err(e) = result {
                            eprintln!("orc: error: executor: {e}");
                        }
                    }
                }
            }
            Ok(ToController::Trip {
                context,
                counter,
                count,
            }) => {
                handlers.run(Box::new(move || {
                    if let Err(e) = orc_core::remote::serve_trip(context, counter, count) {
                        eprintln!("orc: warning: {e}");
                    }
                }));
            }
            Ok(ToController::Exited { status }) => {
                use std::os::unix::process::ExitStatusExt;
                *conn.status.lock() = Some(ExitStatus::from_raw((status & 0xff) << 8));
                // The program has ended (its exit handlers ran, its output
                // is flushed): whoever waits for it may go on.
                let (lock, cond) = &*conn.ended;
                let _held = lock.lock();
                cond.notify_all();
            }
            Ok(ToController::Crashed { signal }) => {
                use std::os::unix::process::ExitStatusExt;
                *conn.status.lock() = Some(ExitStatus::from_raw(signal & 0x7f));
            }
            Ok(ToController::Callback { id, callback }) => {
                let writer = conn.writer.clone();
                handlers.run(Box::new(move || {
                    CURRENT_CALLBACK.with(|c| c.set(Some(id)));
                    let result = answer(callback);
                    CURRENT_CALLBACK.with(|c| c.set(None));
                    let _ = send(&writer, &ToExecutor::Answer { id, result });
                }));
            }
            Err(_) => break,
        }
    }
    conn.dead.store(true, Ordering::Release);
    let waiting: Vec<_> = conn.pending.lock().drain().collect();
    let status = match child {
        Some(mut c) => c.wait().ok(),
        // Over TCP: what the executor said before it ended, if anything.
        None => *conn.status.lock(),
    };
    *conn.status.lock() = status;
    let why = match status {
        Some(s) => format!("the executor ended ({s})"),
        None => "the executor ended".to_owned(),
    };
    for (_, tx) in waiting {
        let _ = tx.send(Err(why.clone()));
    }
    let (lock, cond) = &*conn.ended;
    *lock.lock() = true;
    cond.notify_all();
}

/// Runs a callback in the controller.
fn answer(callback: Callback) -> Result<Answer, String> {
    match callback {
        Callback::Reenter { ctx, ret } => {
            orc_core::remote::serve_reenter(ctx, ret).map(Answer::Value)
        }
        Callback::Trip {
            context,
            counter,
            count,
        } => orc_core::remote::serve_trip(context, counter, count)
            .map(|in_place| Answer::Value(u64::from(in_place))),
        Callback::TlsModule { module } => {
            Ok(Answer::Module(orc_core::remote::serve_tls_module(module)))
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads that handle callbacks: an idle one takes the next, a new one
/// starts when none is idle (a handler may wait on the executor, which may
/// call back again).
#[derive(Default)]
struct HandlerPool {
    idle: Mutex<Vec<Sender<Job>>>,
}

impl HandlerPool {
    fn run(self: &Arc<Self>, job: Job) {
        let mut job = Some(job);
        while let Some(tx) = self.idle.lock().pop() {
            match tx.send(job.take().expect("job present")) {
                Ok(()) => return,
                Err(e) => job = Some(e.0),
            }
        }
        let (tx, rx) = channel::<Job>();
        let pool = Arc::downgrade(self);
        let first = job.take().expect("job present");
        let _ = std::thread::Builder::new()
            .name("orc-callback".into())
            .spawn(move || {
                let mut next = Some(first);
                while let Some(job) = next.take() {
                    job();
                    let Some(pool) = pool.upgrade() else { return };
                    pool.idle.lock().push(tx.clone());
                    drop(pool);
                    next = rx.recv().ok();
                }
            });
    }
}

// ---------------------------------------------------------------------------
// The executor's side.

/// What a thread of the executor waits for.
enum Mail {
    /// The answer to its callback.
    Answer(Result<Answer, String>),
    /// A run to perform on this thread.
    Run(Request),
}

/// How often one counter's trips are reported at most.
const TRIP_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_micros(500);

struct ExecutorState {
    writer: Mutex<Stream>,
    /// Per counter: counts not reported yet, and when it last reported.
    trips: Mutex<HashMap<u64, (u64, Option<std::time::Instant>)>>,
    /// Per tier manager: whether it promotes in place (learned from the
    /// answer to its first trip).
    in_place: Mutex<HashMap<u64, bool>>,
    next_callback: AtomicU64,
    waiting: Mutex<HashMap<u64, Sender<Mail>>>,
    /// The controller's arenas, mapped at their addresses here.
    arenas: RwLock<Vec<ArenaSpec>>,
    /// The protection the controller gave each range (by start), for
    /// checking writes of a controller that copies (never into code).
    protections: Mutex<BTreeMap<u64, (u64, crate::protocol::Protection)>>,
    after_run: fn(),
}

/// The served connection, for [`exit_reporting_status`].
static SERVED: std::sync::OnceLock<Arc<ExecutorState>> = std::sync::OnceLock::new();

extern "C" {
    /// glibc's exit handler that is told the status.
    fn on_exit(
        f: extern "C" fn(libc::c_int, *mut libc::c_void),
        arg: *mut libc::c_void,
    ) -> libc::c_int;
}

/// Runs at the process's exit, after the program's exit handlers: flushes
/// its output and tells the controller the status.
extern "C" fn report_exit(status: libc::c_int, _: *mut libc::c_void) {
    if let Some(state) = SERVED.get() {
        (state.after_run)();
        let _ = send(&state.writer, &ToController::Exited { status });
    }
}

/// What a program's `exit` is bound to in an executor the controller did
/// not start (over TCP), which cannot learn the status from the process:
/// flushes the program's output, tells the controller the status, then
/// ends as C's `exit` does.
pub extern "C" fn exit_reporting_status(status: libc::c_int) -> ! {
    if let Some(state) = SERVED.get() {
        (state.after_run)();
        let _ = send(&state.writer, &ToController::Exited { status });
    }
    // SAFETY: C's exit, as the program asked: its exit handlers run and
    // its streams are flushed.
    unsafe { libc::exit(status) }
}

/// Serves a controller: `args` are those after the command's own. Either
/// `--arena FD:BASE:LEN`... (a child of its controller, on the socket at
/// descriptor 3, sharing the arenas' memory) or `--listen [ADDR]
/// [--secret-file FILE]` (over TCP, `127.0.0.1:0` by default, the secret
/// from the file or `ORC_EXECUTOR_SECRET`, at least 16 bytes; prints
/// `listening on ADDR` first): the first controller with the secret is
/// served, every other connection is refused and logged. `after_run` runs
/// after each run, before its reply (the `orc` tool flushes standard
/// output there). Returns only on errors; otherwise the process ends with
/// the controller or by [`Call::Exit`].
pub fn serve_jit_from_args(
    args: &[String],
    after_run: fn(),
) -> Result<std::convert::Infallible, String> {
    let mut arenas = Vec::new();
    let mut listen = None;
    let mut secret_file = None;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--arena" => {
                let spec = it.next().ok_or("--arena needs FD:BASE:LEN")?;
                arenas.push(parse_arena(spec)?);
            }
            "--listen" => {
                let addr = match it.peek() {
                    Some(next) if !next.starts_with('-') => it.next().cloned(),
                    _ => None,
                };
                listen = Some(addr.unwrap_or_else(|| "127.0.0.1:0".to_owned()));
            }
            "--secret-file" => {
                secret_file = Some(it.next().ok_or("--secret-file needs a file")?.clone());
            }
            other => return Err(format!("unknown executor argument '{other}'")),
        }
    }
    if std::env::var_os("ORC_EXECUTOR_WAIT").is_some() {
        // A debugging aid: time to attach a debugger to this process.
        eprintln!("orc executor: pid {}, waiting 8 s", std::process::id());
        std::thread::sleep(std::time::Duration::from_secs(8));
    }
    // A fault of the program ends this process with its signal, as it
    // would a native program: no handler of the Rust runtime (which turns
    // a stack overflow into an abort) stands in the way.
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: restores the default action; no handler of ours is
        // replaced while it could run (the program has not started).
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    if let Some(addr) = listen {
        let secret = match secret_file {
            Some(f) => std::fs::read(&f).map_err(|e| format!("cannot read {f}: {e}"))?,
            None => std::env::var("ORC_EXECUTOR_SECRET")
                .map(String::into_bytes)
                .unwrap_or_default(),
        };
        let secret = secret.trim_ascii().to_vec();
        if secret.len() < 16 {
            return Err("an executor on TCP needs a secret of at least 16 bytes \
                 (ORC_EXECUTOR_SECRET or --secret-file)"
                .into());
        }
        return listen_for_controller(&addr, &secret, after_run);
    }
    for spec in &arenas {
        orc_core::memory::map_arena_in_executor(spec).map_err(|e| e.to_string())?;
    }
    // SAFETY: the controller passed the socket as this descriptor, which
    // nothing else in this process owns.
    let stream = Stream::Unix(unsafe { UnixStream::from_raw_fd(SOCKET_FD) });
    serve(stream, None, arenas, after_run, &mut || {})
}

fn parse_arena(spec: &str) -> Result<ArenaSpec, String> {
    let bad = || format!("bad arena '{spec}' (FD:BASE:LEN)");
    let mut parts = spec.split(':');
    let fd = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let num = |p: Option<&str>| {
        p.and_then(|p| u64::from_str_radix(p.trim_start_matches("0x"), 16).ok())
            .ok_or_else(bad)
    };
    let base = num(parts.next())?;
    let len = num(parts.next())?;
    Ok(ArenaSpec { fd, base, len })
}

/// Serves the first controller on `addr` that knows `secret`; refuses and
/// logs every other connection meanwhile.
fn listen_for_controller(
    addr: &str,
    secret: &[u8],
    after_run: fn(),
) -> Result<std::convert::Infallible, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {local}");
    let _ = std::io::stdout().flush();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("orc executor: accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // A stranger that sends nothing must not hold the door.
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
        // The session runs in a child of this process, which watches it:
        // a controller on another machine cannot see this process end, so
        // a crash is told to it here (`Crashed`), after the fact.
        let (accepted_rx, accepted_tx) = pipe()?;
        // SAFETY: this process has one thread (nothing has started any),
        // so the child may do anything; both sides own their copies.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            drop(listener);
            drop(accepted_rx);
            let mut tell = Some(accepted_tx);
            let mut accepted = move || drop(tell.take().map(|mut f| f.write_all(&[1])));
            match serve(
                Stream::Tcp(stream),
                Some(secret),
                Vec::new(),
                after_run,
                &mut accepted,
            ) {
                Ok(never) => match never {},
                Err(why) => {
                    eprintln!("orc executor: refused {peer}: {why}");
                    // SAFETY: ends the child at once; it served nothing.
                    unsafe { libc::_exit(0) }
                }
            }
        }
        drop(accepted_tx);
        let mut byte = [0u8; 1];
        let session = matches!(std::io::Read::read(&mut { accepted_rx }, &mut byte), Ok(1));
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !session {
            continue;
        }
        let mut stream = Stream::Tcp(stream);
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            if let Ok(bytes) = encode(&ToController::Crashed { signal }) {
                let _ = write_frame(&mut stream, &bytes);
            }
            eprintln!("orc executor: the program was killed by signal {signal}");
            std::process::exit(128 + signal)
        }
        std::process::exit(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            1
        })
    }
}

/// A pipe: (read end, write end), closed on exec.
fn pipe() -> Result<(std::fs::File, std::fs::File), String> {
    let mut fds = [0; 2];
    // SAFETY: a valid out-array of two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

/// Performs the handshake (checking `secret` when given) and serves the
/// controller. Returns why it refused it; once accepted, never returns.
fn serve(
    mut stream: Stream,
    secret: Option<&[u8]>,
    arenas: Vec<ArenaSpec>,
    after_run: fn(),
    accepted: &mut dyn FnMut(),
) -> Result<std::convert::Infallible, String> {
    let hello = read_frame(&mut stream)
        .map_err(|e| e.to_string())?
        .ok_or("closed before its hello")?;
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    let writer = Mutex::new(writer);
    let refusal = match decode::<Hello>(&hello) {
        Err(e) => Some(format!("not an orc controller: {e}")),
        Ok(h) if h.magic != MAGIC => Some(format!("not an orc controller: magic '{}'", h.magic)),
        Ok(h) if h.version != PROTOCOL_VERSION => Some(format!(
            "protocol version {}, this executor speaks {PROTOCOL_VERSION}",
            h.version
        )),
        Ok(h) if secret.is_some_and(|s| !crate::server::same_secret(s, &h.secret)) => {
            Some("wrong secret".to_owned())
        }
        Ok(_) => None,
    };
    if let Some(why) = refusal {
        let _ = send(&writer, &HelloReply::Refused(why.clone()));
        return Err(why);
    }
    if let Stream::Tcp(t) = &stream {
        let _ = t.set_read_timeout(None);
    }
    let welcome = HelloReply::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        pid: std::process::id(),
        page_size: orc_core::memory::page_size() as u64,
        triple: format!("{}-unknown-linux-gnu", std::env::consts::ARCH),
        marker: crate::image_marker as *const () as usize as u64,
    });
    let state = Arc::new(ExecutorState {
        writer,
        trips: Mutex::new(HashMap::new()),
        in_place: Mutex::new(HashMap::new()),
        next_callback: AtomicU64::new(1),
        waiting: Mutex::new(HashMap::new()),
        arenas: RwLock::new(arenas),
        protections: Mutex::new(BTreeMap::new()),
        after_run,
    });
    send(&state.writer, &welcome)?;
    accepted();
    let _ = SERVED.set(state.clone());
    // Registered first, so it runs last of the exit handlers: the program's
    // end is told with its status once its output is flushed, without
    // waiting for this process to be torn down.
    // SAFETY: `report_exit` is a plain function valid for the life of the
    // process; glibc's on_exit takes it with a null argument.
    unsafe { on_exit(report_exit, std::ptr::null_mut()) };
    orc_core::remote::set_controller(Box::new(Forwarder {
        state: state.clone(),
    }))?;
    // The main thread: runs what is not a callback's, with the stack a
    // program's main thread would have.
    let (main_tx, main_rx) = channel::<Mail>();
    let s = state.clone();
    std::thread::Builder::new()
        .name("main".into())
        .stack_size(main_stack_size())
        .spawn(move || {
            while let Ok(mail) = main_rx.recv() {
                if let Mail::Run(request) = mail {
                    perform_run(&s, request);
                }
            }
        })
        .map_err(|e| format!("cannot start the executor's main thread: {e}"))?;
    // This thread serves the connection.
    loop {
        let frame = match read_frame(&mut stream) {
            Ok(Some(f)) => f,
            // The controller is gone: so is its program.
            _ => {
                // SAFETY: ends the process at once, as the controller did.
                unsafe { libc::_exit(0) }
            }
        };
        let message = match decode::<ToExecutor>(&frame) {
            Ok(m) => m,
            Err(e) => {
                let _ = send(
                    &state.writer,
                    &ToController::Response(Response {
                        id: 0,
                        result: Err(e),
                    }),
                );
                continue;
            }
        };
        match message {
            ToExecutor::Answer { id, result } => {
                if let Some(tx) = state.waiting.lock().remove(&id) {
                    let _ = tx.send(Mail::Answer(result));
                }
            }
            ToExecutor::Request(request) => match request.call {
                Call::RunTyped { .. } | Call::RunMain { .. } => {
                    let target = match request.thread {
                        Some(cb) => state.waiting.lock().get(&cb).cloned(),
                        None => Some(main_tx.clone()),
                    };
                    let id = request.id;
                    let delivered = target.is_some_and(|tx| tx.send(Mail::Run(request)).is_ok());
                    if !delivered {
                        let _ = send(
                            &state.writer,
                            &ToController::Response(Response {
                                id,
                                result: Err("no such executor thread".into()),
                            }),
                        );
                    }
                }
                Call::Exit { status } => {
                    (state.after_run)();
                    let _ = send(&state.writer, &ToController::Exited { status });
                    // SAFETY: `exit` runs the exit handlers and flushes C
                    // streams, as the program's own exit would.
                    unsafe { libc::exit(status) }
                }
                call => {
                    let result = perform(&state, call);
                    if request.reply || result.is_err() {
                        let _ = send(
                            &state.writer,
                            &ToController::Response(Response {
                                id: request.id,
                                result,
                            }),
                        );
                    }
                }
            },
        }
    }
}

fn main_stack_size() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } == 0;
    if ok && limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur > 0 {
        (limit.rlim_cur as usize).clamp(1 << 20, 1 << 30)
    } else {
        8 << 20
    }
}

fn in_arena(state: &ExecutorState, addr: u64) -> Result<(), String> {
    if state
        .arenas
        .read()
        .iter()
        .any(|a| addr >= a.base && addr < a.base + a.len)
    {
        Ok(())
    } else {
        Err(format!("{addr:#x} is not in the shared arena"))
    }
}

extern "C" {
    fn __register_frame(begin: *const u8);
    fn __deregister_frame(begin: *const u8);
}

fn perform(state: &ExecutorState, call: Call) -> Result<Reply, String> {
    match call {
        Call::Ping => Ok(Reply::Done),
        Call::Protect {
            addr,
            size,
            protection,
        } => {
            orc_core::memory::protect_in_executor(
                &state.arenas.read(),
                addr,
                size,
                segment_protection(protection),
            )
            .map_err(|e| e.to_string())?;
            state.protections.lock().insert(addr, (size, protection));
            Ok(Reply::Done)
        }
        Call::ProtectMany { ranges } => {
            for (addr, size, protection) in ranges {
                perform(
                    state,
                    Call::Protect {
                        addr,
                        size,
                        protection,
                    },
                )?;
            }
            Ok(Reply::Done)
        }
        Call::MapArenas { arenas } => {
            let mut mine = state.arenas.write();
            if !mine.is_empty() {
                return Err("the arenas are mapped already".into());
            }
            for (base, len) in arenas {
                let spec = ArenaSpec { fd: -1, base, len };
                orc_core::memory::map_arena_in_executor(&spec).map_err(|e| e.to_string())?;
                mine.push(spec);
            }
            Ok(Reply::Done)
        }
        Call::Write { addr, bytes } => write(state, addr, &bytes).map(|()| Reply::Done),
        Call::LookupSymbols { library, names } => {
            crate::server::lookup_symbols(library.as_deref(), &names)
        }
        Call::RegisterFrames { addr } => {
            in_arena(state, addr)?;
            // SAFETY: the controller linked a validated, terminated
            // `.eh_frame` section at this arena address and keeps it there
            // until it deregisters it.
            unsafe { __register_frame(addr as usize as *const u8) };
            Ok(Reply::Done)
        }
        Call::DeregisterFrames { addr } => {
            in_arena(state, addr)?;
            // SAFETY: as registered above.
            unsafe { __deregister_frame(addr as usize as *const u8) };
            Ok(Reply::Done)
        }
        other => Err(format!("a JIT executor does not serve {other:?}")),
    }
}

/// Copies what a controller that does not share memory wrote: into pages
/// it has made read-write, or pages not yet protected (a segment about to
/// be published: made read-write here first). Never into read-only or
/// executable pages.
fn write(state: &ExecutorState, addr: u64, bytes: &[u8]) -> Result<(), String> {
    let len = bytes.len() as u64;
    let end = addr
        .checked_add(len)
        .ok_or_else(|| format!("{addr:#x}+{len:#x} overflows"))?;
    let arenas = state.arenas.read();
    if !arenas
        .iter()
        .any(|a| addr >= a.base && end <= a.base + a.len)
    {
        return Err(format!("{addr:#x}+{len:#x} is not in the arena"));
    }
    if bytes.is_empty() {
        return Ok(());
    }
    let recorded = state
        .protections
        .lock()
        .range(..=addr)
        .next_back()
        .filter(|(start, (size, _))| addr < **start + *size)
        .map(|(start, (size, p))| (*start, *size, *p));
    match recorded {
        Some((start, size, crate::protocol::Protection::ReadWrite)) if end <= start + size => {}
        Some(_) => return Err(format!("{addr:#x}: the pages are not writable")),
        None => {
            let page = orc_core::memory::page_size() as u64;
            let first = addr & !(page - 1);
            let last = end.div_ceil(page) * page;
            orc_core::memory::protect_in_executor(
                &arenas,
                first,
                last - first,
                SegmentProtection::ReadWrite,
            )
            .map_err(|e| e.to_string())?;
        }
    }
    // SAFETY: the range lies inside the arena, in pages that are
    // read-write (checked or made so above) and that no Rust reference
    // covers; JIT'd code may read them, as it would the controller's
    // stores with shared memory.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as usize as *mut u8, bytes.len());
    }
    Ok(())
}

/// Performs a run on this thread and replies.
fn perform_run(state: &ExecutorState, request: Request) {
    let result = match request.call {
        Call::RunTyped {
            addr,
            ints,
            floats,
            ret,
        } => in_arena(state, addr).and_then(|()| {
            // SAFETY: code the controller linked into the arena, called as
            // the controller says it takes; a crash in it ends only this
            // process.
            unsafe {
                orc_core::remote::call_here(addr, &ints, &floats, crate::server::ret_kind(ret))
            }
            .map(Reply::Value)
        }),
        Call::RunMain { addr, args } => in_arena(state, addr).and_then(|()| {
            // On a thread of its own that ends when `main` returns, so the
            // C library runs its `thread_local` destructors then, before
            // the controller's teardown, as a native exit would.
            std::thread::Builder::new()
                .name("main".into())
                .stack_size(main_stack_size())
                .spawn(move || run_main(addr, &args))
                .map_err(|e| format!("cannot start main's thread: {e}"))?
                .join()
                .map_err(|_| "main's thread panicked".to_owned())?
        }),
        _ => Err("not a run".into()),
    };
    (state.after_run)();
    let _ = send(
        &state.writer,
        &ToController::Response(Response {
            id: request.id,
            result,
        }),
    );
}

fn run_main(addr: u64, args: &[String]) -> Result<Reply, String> {
    let args: Vec<std::ffi::CString> = args
        .iter()
        .map(|a| crate::server::c_string(a))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    type MainFn = extern "C" fn(
        libc::c_int,
        *const *const libc::c_char,
        *const *const libc::c_char,
    ) -> libc::c_int;
    // SAFETY: a C main the controller linked; argv is NUL-terminated and
    // outlives the call, environ is the process's environment.
    let status = unsafe {
        let main = std::mem::transmute::<usize, MainFn>(addr as usize);
        main(args.len() as libc::c_int, argv.as_ptr(), environ)
    };
    Ok(Reply::Value(status as u32 as u64))
}

/// The executor's [`orc_core::remote::Controller`]: a callback message,
/// then waiting on this thread for the answer while running what the
/// controller asks to run here meanwhile.
struct Forwarder {
    state: Arc<ExecutorState>,
}

impl Forwarder {
    fn ask(&self, callback: Callback) -> Answer {
        let id = self.state.next_callback.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = channel();
        self.state.waiting.lock().insert(id, tx);
        if send(&self.state.writer, &ToController::Callback { id, callback }).is_err() {
            lost_controller();
        }
        loop {
            match rx.recv() {
                Ok(Mail::Answer(Ok(answer))) => return answer,
                Ok(Mail::Answer(Err(e))) => {
                    eprintln!("orc executor: the controller failed a callback: {e}");
                    // SAFETY: ends the process; the JIT'd code cannot go on.
                    unsafe { libc::_exit(70) }
                }
                Ok(Mail::Run(request)) => perform_run(&self.state, request),
                Err(_) => lost_controller(),
            }
        }
    }
}

fn lost_controller() -> ! {
    // SAFETY: ends the process at once: its controller is gone.
    unsafe { libc::_exit(1) }
}

impl Forwarder {
    /// A one-way trip report.
    fn report_trip(&self, context: u64, counter: u64, count: u64) {
        let trip = ToController::Trip {
            context,
            counter,
            count,
        };
        if send(&self.state.writer, &trip).is_err() {
            lost_controller();
        }
    }
}

impl orc_core::remote::Controller for Forwarder {
    fn reenter(&self, ctx: u64, ret: u64) -> u64 {
        match self.ask(Callback::Reenter { ctx, ret }) {
            Answer::Value(v) => v,
            _ => lost_controller(),
        }
    }

    fn trip(&self, context: u64, counter: u64, count: u64) {
        // One report per counter per TRIP_REPORT_INTERVAL at most (a hot
        // loop trips every few microseconds), the first waited for, the
        // rest one-way: the counts in between are added to the next.
        let now = std::time::Instant::now();
        let first = {
            let mut trips = self.state.trips.lock();
            match trips.entry(counter) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((0, Some(now)));
                    true
                }
                std::collections::hash_map::Entry::Occupied(_) => false,
            }
        };
        // Whether this manager promotes in place, once known.
        let in_place = self.state.in_place.lock().get(&context).copied();
        if first && in_place != Some(false) {
            // The first trip waits for the controller, which promotes the
            // function right then with in-place tier-up, and says whether
            // it does (if not, later first trips need not wait).
            if let Answer::Value(v) = self.ask(Callback::Trip {
                context,
                counter,
                count,
            }) {
                self.state.in_place.lock().insert(context, v != 0);
            }
            return;
        }
        if first {
            // Background tier-up: report at once, without waiting.
            self.report_trip(context, counter, count);
            return;
        }
        let report = {
            let mut trips = self.state.trips.lock();
            let (pending, last) = trips.entry(counter).or_insert((0, None));
            *pending += count;
            if last.is_some_and(|l| now.duration_since(l) < TRIP_REPORT_INTERVAL) {
                None
            } else {
                *last = Some(now);
                Some(std::mem::take(pending))
            }
        };
        if let Some(count) = report {
            self.report_trip(context, counter, count);
        }
    }

    fn tls_module(&self, module: u64) -> Option<[u64; 4]> {
        match self.ask(Callback::TlsModule { module }) {
            Answer::Module(m) => m,
            _ => None,
        }
    }
}
