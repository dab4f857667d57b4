//! The controller's side: [`JitExecutor`], the core's `Target`.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::os::unix::process::ExitStatusExt;

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

/// How long [`Target::barrier`] watches the shared count before it asks.
const ACK_WAIT: std::time::Duration = std::time::Duration::from_micros(100);

/// A pending request's reply slot.
pub(super) type Pending = Mutex<HashMap<u64, Sender<Result<Reply, String>>>>;

/// One executor process and its connection.
pub(super) struct Connection {
    writer: Arc<Mutex<Stream>>,
    pending: Pending,
    dead: AtomicBool,
    /// Notified when the reader has seen the end, or the executor said how
    /// it ended.
    ended: (Mutex<bool>, parking_lot::Condvar),
    /// How the executor ended: reaped (a child started by exec) or told
    /// (`Exited`/`Crashed`).
    status: Mutex<Option<ExitStatus>>,
    /// The handshake's outcome, once the reader has read it: the
    /// executor's process id, or why it failed.
    welcome: (Mutex<Option<Result<u32, String>>>, parking_lot::Condvar),
    /// The call channel of an executor forked from the zygote (see
    /// `channel_loop`).
    channel: Option<CallChannel>,
}

/// The controller's end of an executor's call channel: a second socket on
/// which a run, and every callback its code makes, are one conversation
/// between the thread that asked for the run, which reads the channel
/// itself and handles the callbacks as they come, and the executor thread
/// that runs it (see `channel_loop`).
pub(super) struct CallChannel {
    stream: UnixStream,
    /// Held by the thread in a conversation on the channel; a run asked
    /// for by another thread meanwhile goes on the connection.
    busy: Mutex<()>,
}

impl Connection {
    /// Records how the executor ended, as it or its watcher said.
    fn told(&self, status: ExitStatus) {
        *self.status.lock() = Some(status);
        let (lock, cond) = &self.ended;
        let _held = lock.lock();
        cond.notify_all();
    }

    /// Waits for the handshake's outcome: the executor's process id, or
    /// why it failed.
    fn welcomed(&self) -> Result<u32, String> {
        let (lock, cond) = &self.welcome;
        let mut welcome = lock.lock();
        loop {
            if let Some(outcome) = &*welcome {
                return outcome.clone();
            }
            cond.wait(&mut welcome);
        }
    }

    fn set_welcome(&self, outcome: Result<u32, String>) {
        let (lock, cond) = &self.welcome;
        *lock.lock() = Some(outcome);
        cond.notify_all();
    }

    /// The executor is gone (or never came): every request waiting, and
    /// every later one, fails with `why`.
    fn end(&self, why: &str) {
        self.dead.store(true, Ordering::Release);
        let waiting: Vec<_> = self.pending.lock().drain().collect();
        for (_, tx) in waiting {
            let _ = tx.send(Err(why.to_owned()));
        }
        let (lock, cond) = &self.ended;
        *lock.lock() = true;
        cond.notify_all();
    }

    /// Waits at most `limit` for the reader to have seen the end, or (if
    /// `or_told`) for the executor to have said how it ended.
    fn wait_ended(&self, limit: std::time::Duration, or_told: bool) {
        let (lock, cond) = &self.ended;
        let mut ended = lock.lock();
        let deadline = std::time::Instant::now() + limit;
        while !*ended && (!or_told || self.status.lock().is_none()) {
            if cond.wait_until(&mut ended, deadline).timed_out() {
                break;
            }
        }
    }
}

/// What the controller replays in a new executor.
#[derive(Default)]
pub(super) struct Replay {
    protections: BTreeMap<u64, (u64, SegmentProtection)>,
    frames: Vec<u64>,
    libraries: Vec<String>,
}

thread_local! {
    /// The callback this thread is handling, if any: runs it asks for go
    /// to the executor thread that made the callback.
    static CURRENT_CALLBACK: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    /// Whether this thread holds its executor's call channel (it is in a
    /// conversation there): runs it asks for go on the channel too.
    static IN_CONVERSATION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// This thread's conversation on a call channel, while it lasts (whatever
/// way it ends, a panic of a callback's handler included).
struct Conversation;

impl Conversation {
    fn start() -> Conversation {
        IN_CONVERSATION.with(|c| c.set(true));
        Conversation
    }
}

impl Drop for Conversation {
    fn drop(&mut self) {
        IN_CONVERSATION.with(|c| c.set(false));
    }
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
    /// Posted requests sent to this executor, and how many of them are
    /// known performed.
    posted: AtomicU64,
    synced: AtomicU64,
    /// Where an executor forked from the zygote counts the posted
    /// requests it has performed.
    ack: Option<Ack>,
}

impl JitExecutor {
    fn new(
        command: Option<ExecutorCommand>,
        arenas: [ArenaSpec; 2],
        conn: Arc<Connection>,
        ack: Option<Ack>,
    ) -> Self {
        JitExecutor {
            command,
            arenas,
            conn: RwLock::new(conn),
            next_id: AtomicU64::new(1),
            replay: Mutex::new(Replay::default()),
            posted: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            ack,
        }
    }

    /// A request with a fresh id.
    fn request(&self, call: Call, thread: Option<u64>, reply: bool) -> (u64, ToExecutor) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = ToExecutor::Request(Request {
            id,
            call,
            thread,
            reply,
        });
        (id, request)
    }

    /// Creates the shared arenas (this process's reservations come from
    /// them from now on) and starts the first executor.
    pub fn start(command: ExecutorCommand) -> Result<Arc<Self>, String> {
        let (arenas, conn, ack) = match ZYGOTE.get() {
            Some(zygote) => (zygote.arenas, spawn_from_zygote(zygote)?, Some(zygote.ack)),
            None => {
                let arenas = orc_core::memory::create_shared_arenas()
                    .map_err(|e| format!("cannot create the shared JIT arena: {e}"))?;
                let conn = spawn(&command, &arenas)?;
                (arenas, conn, None)
            }
        };
        Ok(Arc::new(JitExecutor::new(Some(command), arenas, conn, ack)))
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
        let conn = handshake(reader, secret, None, None)?;
        // A refusal (a wrong secret, another build) is this call's error.
        conn.welcomed()?;
        let executor = Arc::new(JitExecutor::new(None, arenas, conn, None));
        executor.call(Call::MapArenas {
            arenas: arenas.iter().map(|a| (a.base, a.len)).collect(),
        })?;
        Ok(executor)
    }

    /// Whether the executor is on another machine (over TCP).
    pub fn is_remote(&self) -> bool {
        self.command.is_none()
    }

    /// The executor's process id (on its machine), once its handshake is
    /// done (`None` if it failed).
    pub fn pid(&self) -> Option<u32> {
        let conn = self.conn.read().clone();
        conn.welcomed().ok()
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
        conn.wait_ended(std::time::Duration::from_secs(2), true);
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
        // The new executor has performed nothing yet (the last one is
        // gone and can count no more).
        self.posted.store(0, Ordering::Release);
        self.synced.store(0, Ordering::Release);
        if let Some(ack) = &self.ack {
            ack.reset();
        }
        let conn = match ZYGOTE.get() {
            Some(zygote) => spawn_from_zygote(zygote)?,
            None => spawn(command, &self.arenas)?,
        };
        *self.conn.write() = conn;
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
        let ranges = protect_ranges(protections.into_iter().map(|(a, (l, p))| (a, l, p)));
        self.call(Call::ProtectMany { ranges })
            .map_err(|e| format!("protecting the code again: {e}"))?;
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
        if let (Some(channel), Call::RunTyped { .. } | Call::RunMain { .. }) =
            (&conn.channel, &call)
        {
            if IN_CONVERSATION.with(|c| c.get()) {
                return self.converse(&conn, channel, call);
            }
            if CURRENT_CALLBACK.with(|c| c.get()).is_none() {
                if let Some(_busy) = channel.busy.try_lock() {
                    let _held = Conversation::start();
                    return self.converse(&conn, channel, call);
                }
            }
        }
        let (id, request) = self.request(call, CURRENT_CALLBACK.with(|c| c.get()), true);
        let (tx, rx) = channel();
        conn.pending.lock().insert(id, tx);
        // Ended meanwhile (`Connection::end` marks it dead before it fails
        // what is pending): nobody would answer.
        if conn.dead.load(Ordering::Acquire) {
            conn.pending.lock().remove(&id);
            return Err("the executor is not running (it exited or crashed)".into());
        }
        if let Err(e) = send(&conn.writer, &request) {
            conn.pending.lock().remove(&id);
            return Err(format!("cannot reach the executor: {e}"));
        }
        match rx.recv() {
            Ok(result) => result,
            Err(_) => Err("the executor died".into()),
        }
    }

    /// A run on the call channel, which this thread holds: sends it, then
    /// reads the channel until its response, answering the callbacks of
    /// its code meanwhile (a run asked for while answering one comes back
    /// here, nested).
    fn converse(
        &self,
        conn: &Connection,
        channel: &CallChannel,
        call: Call,
    ) -> Result<Reply, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let run = ToExecutor::Run {
            after: self.posted.load(Ordering::Acquire),
            request: Request {
                id,
                call,
                thread: None,
                reply: true,
            },
        };
        let stream = &channel.stream;
        let sent = encode(&run)
            .and_then(|bytes| write_frame(&mut &*stream, &bytes).map_err(|e| e.to_string()));
        if sent.is_err() {
            return Err(self.died(conn));
        }
        loop {
            await_message(stream);
            let message = match read_frame(&mut &*stream) {
                Ok(Some(frame)) => decode::<ToController>(&frame),
                Ok(None) | Err(_) => return Err(self.died(conn)),
            };
            match message {
                Ok(ToController::Response(Response { id: done, result })) if done == id => {
                    return result
                }
                Ok(ToController::Callback {
                    id: asked,
                    callback,
                }) => {
                    let result = answer(callback);
                    let bytes = encode(&ToExecutor::Answer { id: asked, result })?;
                    if write_frame(&mut &*stream, &bytes).is_err() {
                        return Err(self.died(conn));
                    }
                }
                // Nothing else comes on the channel.
                Ok(_) => {}
                Err(e) => return Err(format!("a bad message on the call channel: {e}")),
            }
        }
    }

    /// Why a conversation ended with its executor: waits for the reader to
    /// have seen the end, so the executor is known dead (and how it ended)
    /// when the caller looks, as after a failed request.
    fn died(&self, conn: &Connection) -> String {
        conn.wait_ended(std::time::Duration::from_secs(2), false);
        "the executor died".into()
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
        self.posted.fetch_add(1, Ordering::AcqRel);
        let (_, request) = self.request(call, None, false);
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
            let (_, request) = self.request(Call::Exit { status }, None, false);
            let _ = send(&conn.writer, &request);
        }
        conn.wait_ended(std::time::Duration::from_secs(10), true);
        let ended = *conn.status.lock();
        ended
    }
}

/// Protections as the protocol says them.
fn protect_ranges(
    ranges: impl Iterator<Item = (u64, u64, SegmentProtection)>,
) -> Vec<(u64, u64, crate::protocol::Protection)> {
    ranges.map(|(a, l, p)| (a, l, protection_of(p))).collect()
}

impl Target for JitExecutor {
    fn protect(&self, ranges: &[(u64, u64, SegmentProtection)]) -> Result<(), String> {
        {
            let mut replay = self.replay.lock();
            for &(addr, len, prot) in ranges {
                replay.protections.insert(addr, (len, prot));
            }
        }
        self.post(Call::ProtectMany {
            ranges: protect_ranges(ranges.iter().copied()),
        })
    }

    fn barrier(&self) -> Result<(), String> {
        let posted = self.posted.load(Ordering::Acquire);
        if self.synced.load(Ordering::Acquire) >= posted {
            return Ok(());
        }
        // An executor forked from the zygote counts what it has performed
        // in a page this process shares: its reader is usually going
        // through the requests already, and a reply (a message and two
        // wake-ups here, each of which can wait a time slice behind the
        // program) is needed only if it takes long.
        if let Some(ack) = &self.ack {
            let start = std::time::Instant::now();
            loop {
                if ack.performed() >= posted {
                    self.synced.fetch_max(posted, Ordering::AcqRel);
                    return Ok(());
                }
                if start.elapsed() >= ACK_WAIT {
                    break;
                }
                // The executor's reader may wait for this CPU (a socket
                // write wakes it here).
                std::thread::yield_now();
            }
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

/// Starts an executor, performs the handshake and starts the reader.
pub(super) fn spawn(
    command: &ExecutorCommand,
    arenas: &[ArenaSpec; 2],
) -> Result<Arc<Connection>, String> {
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
    handshake(Stream::Unix(ours), &[], Some(child), None)
}

/// Performs the handshake on `stream` and starts the reader.
pub(super) fn handshake(
    mut stream: Stream,
    secret: &[u8],
    child: Option<Child>,
    channel: Option<UnixStream>,
) -> Result<Arc<Connection>, String> {
    send_hello(&mut stream, secret)?;
    finish_handshake(stream, child, channel)
}

/// The controller's half of the handshake's first step.
pub(super) fn send_hello(stream: &mut Stream, secret: &[u8]) -> Result<(), String> {
    let hello = Hello {
        magic: MAGIC.to_owned(),
        version: PROTOCOL_VERSION,
        secret: secret.to_vec(),
    };
    write_frame(stream, &encode(&hello)?).map_err(|e| format!("executor connection: {e}"))
}

/// The rest of the handshake, once the hello is sent: starts the reader,
/// which reads the welcome ([`Connection::welcomed`]) and then serves the
/// connection. Returns at once: requests made meanwhile wait in the
/// socket, and fail with the reason if the handshake does; the executor
/// sets up while this process goes on with its own start.
pub(super) fn finish_handshake(
    reader: Stream,
    child: Option<Child>,
    channel: Option<UnixStream>,
) -> Result<Arc<Connection>, String> {
    let writer = Arc::new(Mutex::new(
        reader
            .try_clone()
            .map_err(|e| format!("executor connection: {e}"))?,
    ));
    let conn = Arc::new(Connection {
        writer,
        pending: Mutex::new(HashMap::new()),
        dead: AtomicBool::new(false),
        ended: (Mutex::new(false), parking_lot::Condvar::new()),
        status: Mutex::new(None),
        welcome: (Mutex::new(None), parking_lot::Condvar::new()),
        channel: channel.map(|stream| CallChannel {
            stream,
            busy: Mutex::new(()),
        }),
    });
    let c = conn.clone();
    std::thread::Builder::new()
        .name("orc-executor-reader".into())
        .spawn(move || {
            let mut reader = reader;
            match read_welcome(&mut reader) {
                Ok(pid) => {
                    c.set_welcome(Ok(pid));
                    read_loop(reader, c, child);
                }
                Err(Refusal { why, ended }) => {
                    // An executor that ended tells how; one that refused
                    // (or is another build) ends when the socket closes.
                    let why = match child {
                        Some(child) if ended => exit_message(child, &why),
                        _ => why,
                    };
                    c.set_welcome(Err(why.clone()));
                    c.end(&why);
                }
            }
        })
        .map_err(|e| format!("cannot start the executor's reader: {e}"))?;
    Ok(conn)
}

/// Why a handshake failed, and whether the executor ended during it.
struct Refusal {
    why: String,
    ended: bool,
}

/// Reads and checks the executor's welcome: its process id.
fn read_welcome(reader: &mut Stream) -> Result<u32, Refusal> {
    let refused = |why: String| Refusal { why, ended: false };
    let welcome = match read_frame(reader) {
        Ok(Some(frame)) => match decode::<HelloReply>(&frame).map_err(refused)? {
            HelloReply::Welcome(w) => w,
            HelloReply::Refused(why) => {
                return Err(refused(format!("the executor refused: {why}")))
            }
        },
        Ok(None) | Err(_) => {
            return Err(Refusal {
                why: "the executor ended during its handshake".into(),
                ended: true,
            })
        }
    };
    check_welcome(&welcome).map_err(refused)?;
    Ok(welcome.pid)
}

pub(super) fn exit_message(mut child: Child, what: &str) -> String {
    match child.wait() {
        Ok(status) => format!("{what} ({status})"),
        Err(e) => format!("{what} ({e})"),
    }
}

pub(super) fn check_welcome(w: &Welcome) -> Result<(), String> {
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
pub(super) fn read_loop(mut reader: Stream, conn: Arc<Connection>, child: Option<Child>) {
    let handlers = Arc::new(HandlerPool::default());
    // One handler thread started now, off the first callback's path.
    handlers.run(Box::new(|| {}));
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
                cpu,
            }) => {
                if orc_core::remote::trip_waits(context) {
                    // An in-place promotion compiles and asks the executor
                    // for things, whose answers this thread must route.
                    handlers.run(Box::new(move || {
                        orc_core::remote::serve_trip(context, counter);
                    }));
                } else {
                    // It only queues the work: no wake-up of another
                    // thread. Compile threads it starts keep off the CPU
                    // the program runs on.
                    orc_core::dispatch_for_cpu(cpu as usize, || {
                        orc_core::remote::serve_trip(context, counter);
                    });
                }
            }
            // How the program ended (its exit handlers ran, its output is
            // flushed; or the signal): whoever waits for it may go on.
            Ok(ToController::Exited { status }) => {
                conn.told(ExitStatus::from_raw((status & 0xff) << 8));
            }
            Ok(ToController::Crashed { signal }) => {
                conn.told(ExitStatus::from_raw(signal & 0x7f));
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
    conn.end(&why);
}

/// Runs a callback in the controller.
pub(super) fn answer(callback: Callback) -> Result<Answer, String> {
    match callback {
        Callback::Reenter { ctx, ret } => {
            orc_core::remote::serve_reenter(ctx, ret).map(Answer::Value)
        }
        Callback::Trip { context, counter } => {
            orc_core::remote::serve_trip(context, counter);
            Ok(Answer::Done)
        }
        Callback::TlsModule { module } => {
            Ok(Answer::Module(orc_core::remote::serve_tls_module(module)))
        }
    }
}

pub(super) type Job = Box<dyn FnOnce() + Send>;

/// Threads that handle callbacks: an idle one takes the next, a new one
/// starts when none is idle (a handler may wait on the executor, which may
/// call back again).
#[derive(Default)]
pub(super) struct HandlerPool {
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
