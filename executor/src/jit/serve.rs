//! The executor's side: serving a controller.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a thread of the executor waits for.
pub(super) enum Mail {
    /// The answer to its callback.
    Answer(Result<Answer, String>),
    /// A run to perform on this thread.
    Run(Request),
}

/// How often one counter's trips are reported at most.
pub(super) const TRIP_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_micros(500);

pub(super) struct ExecutorState {
    writer: Mutex<Stream>,
    /// Sends the one-way reports of threads that go on running (trips).
    reporter: Reporter,
    /// Per counter: when it last reported.
    trips: Mutex<HashMap<u64, std::time::Instant>>,
    next_callback: AtomicU64,
    waiting: Mutex<HashMap<u64, Sender<Mail>>>,
    /// The controller's arenas, mapped at their addresses here.
    arenas: RwLock<Vec<ArenaSpec>>,
    /// The protection the controller gave each range (by start), for
    /// checking writes of a controller that copies (never into code).
    protections: Mutex<BTreeMap<u64, (u64, crate::protocol::Protection)>>,
    after_run: fn(),
    /// Where an executor forked from the zygote counts the posted requests
    /// it has performed (a run on the call channel waits for those sent
    /// before it).
    ack: Option<Ack>,
}

thread_local! {
    /// The call channel, on the thread that holds it: the main thread, or
    /// the thread a C `main` runs on while the main thread waits for it.
    /// Its runs and callbacks are one conversation with one controller
    /// thread (see [`channel_loop`]).
    static CHANNEL: std::cell::RefCell<Option<Arc<UnixStream>>> =
        const { std::cell::RefCell::new(None) };
}

/// The call channel of this thread, if it holds it. (None once the
/// thread's locals are being destroyed: code run by a C++ `thread_local`
/// destructor at a program thread's exit still makes lazy calls and trips,
/// and a panic there would abort the program.)
fn held_channel() -> Option<Arc<UnixStream>> {
    CHANNEL.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Makes `channel` this thread's (or takes it away, with `None`).
fn hold_channel(channel: Option<Arc<UnixStream>>) {
    let _ = CHANNEL.try_with(|c| *c.borrow_mut() = channel);
}

/// The served connection, for [`report_exit`].
pub(super) static SERVED: std::sync::OnceLock<Arc<ExecutorState>> = std::sync::OnceLock::new();

extern "C" {
    /// glibc's exit handler that is told the status.
    fn on_exit(
        f: extern "C" fn(libc::c_int, *mut libc::c_void),
        arg: *mut libc::c_void,
    ) -> libc::c_int;
}

/// Runs at the process's exit (however the program called `exit`), after
/// the program's exit handlers: flushes its output and tells the
/// controller the status, which a controller that is not this process's
/// parent (over TCP, through the zygote) cannot read itself.
pub(super) extern "C" fn report_exit(status: libc::c_int, _: *mut libc::c_void) {
    if let Some(state) = SERVED.get() {
        (state.after_run)();
        let _ = send(&state.writer, &ToController::Exited { status });
    }
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
    serve(stream, None, arenas, None, after_run, &mut || {}, None)
}

pub(super) fn parse_arena(spec: &str) -> Result<ArenaSpec, String> {
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
pub(super) fn listen_for_controller(
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
        let pid = unsafe { fork() }?;
        if pid == 0 {
            drop(listener);
            drop(accepted_rx);
            let mut tell = Some(accepted_tx);
            let mut accepted = move || drop(tell.take().map(|mut f| f.write_all(&[1])));
            match serve(
                Stream::Tcp(stream),
                Some(secret),
                Vec::new(),
                None,
                after_run,
                &mut accepted,
                None,
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
        if !session {
            // SAFETY: waits for our own child, which refused and ended.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            continue;
        }
        let (report, status) = watch(pid, &mut Stream::Tcp(stream));
        if let Some(report) = report {
            eprintln!("orc executor: {report}");
        }
        std::process::exit(status)
    }
}

/// Waits for the executor `pid` to end and tells its controller how on
/// `stream` (`Exited` or `Crashed`: what a controller that is not the
/// executor's parent cannot see). Returns a report for a signal and the
/// conventional exit status (`128 + N` for signal `N`).
pub(super) fn watch(pid: libc::pid_t, stream: &mut Stream) -> (Option<String>, i32) {
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let (message, report, code) = if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        (
            ToController::Crashed { signal },
            Some(format!("the program was killed by signal {signal}")),
            128 + signal,
        )
    } else {
        let code = libc::WEXITSTATUS(status);
        (ToController::Exited { status: code }, None, code)
    };
    if let Ok(bytes) = encode(&message) {
        let _ = write_frame(stream, &bytes);
    }
    (report, code)
}

/// A pipe: (read end, write end), closed on exec.
pub(super) fn pipe() -> Result<(std::fs::File, std::fs::File), String> {
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
/// controller, counting performed posted requests in `ack` when given.
/// Returns why it refused it; once accepted, never returns.
pub(super) fn serve(
    mut stream: Stream,
    secret: Option<&[u8]>,
    arenas: Vec<ArenaSpec>,
    ack: Option<Ack>,
    after_run: fn(),
    accepted: &mut dyn FnMut(),
    call_channel: Option<UnixStream>,
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
    let (reports, to_report) = channel::<ToController>();
    let state = Arc::new(ExecutorState {
        writer,
        reporter: Reporter {
            reports,
            thread: std::sync::OnceLock::new(),
            off_cpu: std::sync::atomic::AtomicI32::new(-1),
        },
        trips: Mutex::new(HashMap::new()),
        next_callback: AtomicU64::new(1),
        waiting: Mutex::new(HashMap::new()),
        arenas: RwLock::new(arenas),
        protections: Mutex::new(BTreeMap::new()),
        after_run,
        ack,
    });
    send(&state.writer, &welcome)?;
    let s = state.clone();
    let reporter = std::thread::Builder::new()
        .name("orc-reporter".into())
        .spawn(move || {
            while let Ok(report) = to_report.recv() {
                if send(&s.writer, &report).is_err() {
                    lost_controller();
                }
            }
        })
        .map_err(|e| format!("cannot start the executor's reporter: {e}"))?;
    let _ = state
        .reporter
        .thread
        .set(std::os::unix::thread::JoinHandleExt::into_pthread_t(
            reporter,
        ));
    accepted();
    let _ = SERVED.set(state.clone());
    // A fault of the program ends this process with its signal, as it
    // would a native program: no handler of the Rust runtime (which turns
    // a stack overflow into an abort) stands in the way.
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: restores the default action; no handler of ours is
        // replaced while it could run (the program has not started).
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
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
    // program's main thread would have; with a call channel, those that
    // come on it first (see `channel_loop`), woken by `wake` for the rest.
    let (main_tx, main_rx) = channel::<Mail>();
    let s = state.clone();
    let (wake, woken) = match call_channel {
        Some(_) => {
            let (w, r) = UnixStream::pair()
                .map_err(|e| format!("cannot make the main thread's wake-up: {e}"))?;
            // A full buffer already holds a wake-up: never wait to add one.
            w.set_nonblocking(true)
                .map_err(|e| format!("cannot make the main thread's wake-up: {e}"))?;
            (Some(w), Some(r))
        }
        None => (None, None),
    };
    std::thread::Builder::new()
        .name("main".into())
        .stack_size(main_stack_size())
        .spawn(move || match (call_channel, woken) {
            (Some(channel), Some(woken)) => channel_loop(&s, Arc::new(channel), &woken, &main_rx),
            _ => {
                while let Ok(mail) = main_rx.recv() {
                    if let Mail::Run(request) = mail {
                        perform_run(&s, request);
                    }
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
            // Only on the call channel (see `channel_loop`).
            ToExecutor::Run { request, .. } => {
                let _ = send(
                    &state.writer,
                    &ToController::Response(Response {
                        id: request.id,
                        result: Err("a channel run came on the connection".into()),
                    }),
                );
            }
            ToExecutor::Request(request) => match request.call {
                Call::RunTyped { .. } | Call::RunMain { .. } => {
                    let target = match request.thread {
                        Some(cb) => state.waiting.lock().get(&cb).cloned(),
                        None => Some(main_tx.clone()),
                    };
                    let id = request.id;
                    let to_main = request.thread.is_none();
                    let delivered = target.is_some_and(|tx| tx.send(Mail::Run(request)).is_ok());
                    if let (true, true, Some(wake)) = (delivered, to_main, &wake) {
                        // The main thread may be waiting on its channel.
                        let _ = (&*wake).write_all(&[1]);
                    }
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
                    // SAFETY: `exit` runs the exit handlers (the last of
                    // them, `report_exit`, tells the controller) and flushes
                    // C streams, as the program's own exit would.
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
                    if let (false, Some(ack)) = (request.reply, &ack) {
                        ack.one_more();
                    }
                }
            },
        }
    }
}

pub(super) fn main_stack_size() -> usize {
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

pub(super) fn in_arena(state: &ExecutorState, addr: u64) -> Result<(), String> {
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

pub(super) fn perform(state: &ExecutorState, call: Call) -> Result<Reply, String> {
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
pub(super) fn write(state: &ExecutorState, addr: u64, bytes: &[u8]) -> Result<(), String> {
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

/// Performs a run on this thread and replies on the connection.
pub(super) fn perform_run(state: &ExecutorState, request: Request) {
    let response = run_request(state, request);
    let _ = send(&state.writer, &ToController::Response(response));
}

/// Performs a run on this thread: its response.
pub(super) fn run_request(state: &ExecutorState, request: Request) -> Response {
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
            // It holds this thread's call channel meanwhile, if any.
            let channel = held_channel();
            std::thread::Builder::new()
                .name("main".into())
                .stack_size(main_stack_size())
                .spawn(move || {
                    hold_channel(channel);
                    run_main(addr, &args)
                })
                .map_err(|e| format!("cannot start main's thread: {e}"))?
                .join()
                .map_err(|_| "main's thread panicked".to_owned())?
        }),
        _ => Err("not a run".into()),
    };
    (state.after_run)();
    Response {
        id: request.id,
        result,
    }
}

/// The main thread of an executor with a call channel: a second socket to
/// the controller on which a run and every callback its code makes (a lazy
/// call, a waited-for trip) are one conversation between this thread and
/// the controller thread that asked for the run, which reads the channel
/// itself. Each message wakes the thread that waits for it, and only that
/// one, with the sender about to wait in turn (on the connection, the
/// reader threads of both sides stood between: four wake-ups per lazy
/// call instead of two). Runs the controller sends on the connection
/// instead (the channel was taken by another of its threads) come by
/// `main_rx`, announced on `woken`.
pub(super) fn channel_loop(
    state: &ExecutorState,
    channel: Arc<UnixStream>,
    woken: &UnixStream,
    main_rx: &std::sync::mpsc::Receiver<Mail>,
) {
    hold_channel(Some(channel.clone()));
    let mut fds = [
        libc::pollfd {
            fd: channel.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: woken.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is an array of two valid pollfd structures.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            lost_controller();
        }
        if fds[1].revents != 0 {
            let mut bytes = [0u8; 64];
            let _ = (&*woken).read(&mut bytes);
            // Not the channel's: their callbacks go on the connection.
            hold_channel(None);
            while let Ok(mail) = main_rx.try_recv() {
                if let Mail::Run(request) = mail {
                    perform_run(state, request);
                }
            }
            hold_channel(Some(channel.clone()));
        }
        if fds[0].revents != 0 {
            match read_channel(&channel) {
                ToExecutor::Run { after, request } => {
                    run_on_channel(state, &channel, after, request)
                }
                // Nothing waits for it here.
                ToExecutor::Answer { .. } | ToExecutor::Request(_) => {}
            }
        }
    }
}

/// The next message on the call channel; the process ends with the
/// controller (end of stream) or on a message it cannot read.
fn read_channel(channel: &UnixStream) -> ToExecutor {
    match read_frame(&mut &*channel) {
        Ok(Some(frame)) => match decode::<ToExecutor>(&frame) {
            Ok(message) => message,
            Err(e) => {
                eprintln!("orc executor: a bad message on the call channel: {e}");
                lost_controller()
            }
        },
        _ => lost_controller(),
    }
}

/// Writes `message` on the call channel, or ends the process if the
/// controller is gone.
fn write_channel<T: serde::Serialize>(channel: &UnixStream, message: &T) {
    let sent = encode(message)
        .and_then(|bytes| write_frame(&mut &*channel, &bytes).map_err(|e| e.to_string()));
    if sent.is_err() {
        lost_controller();
    }
}

/// Performs a run that came on the call channel, once the posted requests
/// sent before it are performed (they came on the connection, which the
/// reader serves), and replies on the channel.
fn run_on_channel(state: &ExecutorState, channel: &UnixStream, after: u64, request: Request) {
    if let Some(ack) = &state.ack {
        let start = std::time::Instant::now();
        while ack.performed() < after {
            if start.elapsed() < std::time::Duration::from_millis(1) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
    let response = run_request(state, request);
    write_channel(channel, &ToController::Response(response));
}

pub(super) fn run_main(addr: u64, args: &[String]) -> Result<Reply, String> {
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
pub(super) struct Forwarder {
    state: Arc<ExecutorState>,
}

impl Forwarder {
    fn ask(&self, callback: Callback) -> Answer {
        let id = self.state.next_callback.fetch_add(1, Ordering::Relaxed);
        if let Some(channel) = held_channel() {
            return self.ask_on_channel(&channel, id, callback);
        }
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

impl Forwarder {
    /// [`Self::ask`] on the call channel this thread holds: the controller
    /// thread of the conversation reads it, and may ask for runs on this
    /// thread before it answers.
    fn ask_on_channel(&self, channel: &UnixStream, id: u64, callback: Callback) -> Answer {
        write_channel(channel, &ToController::Callback { id, callback });
        loop {
            await_message(channel);
            match read_channel(channel) {
                ToExecutor::Answer {
                    id: answered,
                    result,
                } if answered == id => match result {
                    Ok(answer) => return answer,
                    Err(e) => {
                        eprintln!("orc executor: the controller failed a callback: {e}");
                        // SAFETY: ends the process; the JIT'd code cannot go on.
                        unsafe { libc::_exit(70) }
                    }
                },
                ToExecutor::Run { after, request } => {
                    run_on_channel(&self.state, channel, after, request);
                }
                ToExecutor::Answer { .. } | ToExecutor::Request(_) => {}
            }
        }
    }
}

/// The thread that sends one-way reports for threads that go on running.
///
/// A socket write wakes the reading thread as if the writer were about to
/// sleep: on the writer's CPU, where a running program's thread keeps it
/// waiting for the end of its time slice (milliseconds) while another CPU
/// idles; so the program's thread hands the report to this one, which
/// sleeps after it writes. Even that hand-off can land on the program's
/// CPU (seen on a two-CPU virtual machine, which kept the reporter waiting
/// 2 ms with the other CPU idle), so the reporter is kept off the CPU of
/// the thread that reports, as the controller's compile threads are.
pub(super) struct Reporter {
    reports: Sender<ToController>,
    thread: std::sync::OnceLock<libc::pthread_t>,
    /// The CPU the reporter is kept off (-1: none yet).
    off_cpu: std::sync::atomic::AtomicI32,
}

impl Reporter {
    /// Sends `report` of a thread running on `cpu` (-1: unknown).
    fn report(&self, report: ToController, cpu: i32) {
        if cpu >= 0 && self.off_cpu.swap(cpu, Ordering::Relaxed) != cpu {
            if let Some(&thread) = self.thread.get() {
                // SAFETY: the reporter thread lives as long as the process
                // (it never returns while the process can still report).
                unsafe { orc_core::keep_thread_off_cpu(thread, cpu as usize) };
            }
        }
        // The reporter lives as long as the process.
        let _ = self.reports.send(report);
    }
}

pub(super) fn lost_controller() -> ! {
    // SAFETY: ends the process at once: its controller is gone.
    unsafe { libc::_exit(1) }
}

impl Forwarder {
    /// A one-way trip report.
    fn report_trip(&self, context: u64, counter: u64) {
        // SAFETY: no arguments; -1 when unknown.
        let cpu = unsafe { libc::sched_getcpu() };
        let trip = ToController::Trip {
            context,
            counter,
            cpu: cpu.max(0) as u32,
        };
        self.state.reporter.report(trip, cpu);
    }
}

impl orc_core::remote::Controller for Forwarder {
    fn reenter(&self, ctx: u64, ret: u64) -> u64 {
        match self.ask(Callback::Reenter { ctx, ret }) {
            Answer::Value(v) => v,
            _ => lost_controller(),
        }
    }

    fn trip(&self, context: u64, counter: u64) {
        // One report per counter per TRIP_REPORT_INTERVAL at most (a hot
        // loop trips every few microseconds), the first waited for if the
        // manager promotes in place, the rest one-way. The counts are in
        // the counter's cell, where the manager reads them between
        // reports too (see `on_trip`); once the function is queued, the
        // code calls no more.
        let now = std::time::Instant::now();
        let (first, report) = {
            let mut trips = self.state.trips.lock();
            match trips.entry(counter) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(now);
                    (true, true)
                }
                std::collections::hash_map::Entry::Occupied(mut last) => {
                    let due = now.duration_since(*last.get()) >= TRIP_REPORT_INTERVAL;
                    if due {
                        last.insert(now);
                    }
                    (false, due)
                }
            }
        };
        if first && orc_core::remote::trip_waits(context) {
            // The first trip waits for the controller, which promotes the
            // function right then, as the code's own thread would in
            // process.
            self.ask(Callback::Trip { context, counter });
        } else if report {
            self.report_trip(context, counter);
        }
    }

    fn tls_module(&self, module: u64) -> Option<[u64; 4]> {
        match self.ask(Callback::TlsModule { module }) {
            Answer::Module(m) => m,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks for the thread's channel when dropped (as a C++ `thread_local`
    /// destructor running JIT'd code that makes a lazy call would).
    struct AsksAtExit(std::sync::mpsc::Sender<bool>);

    impl Drop for AsksAtExit {
        fn drop(&mut self) {
            let _ = self.0.send(held_channel().is_some());
        }
    }

    thread_local! {
        static ASKS: std::cell::RefCell<Option<AsksAtExit>> =
            const { std::cell::RefCell::new(None) };
    }

    /// The channel's thread local is set up after the other (so destroyed
    /// first): asking for it then finds none instead of panicking, which
    /// in JIT'd code (no unwinding) would abort the program.
    #[test]
    fn the_channel_is_none_once_the_thread_locals_are_going() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            ASKS.with(|a| *a.borrow_mut() = Some(AsksAtExit(tx)));
            let (ours, _theirs) = UnixStream::pair().unwrap();
            hold_channel(Some(Arc::new(ours)));
            assert!(held_channel().is_some());
        })
        .join()
        .expect("the thread ends cleanly");
        assert_eq!(rx.recv(), Ok(false));
    }
}
