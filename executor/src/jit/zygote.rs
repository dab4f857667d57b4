//! The zygote: executors forked from a copy of the controller.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A single-threaded copy of the controller, forked before the controller
/// started any thread, that forks executors on request: one starts in a
/// fraction of a millisecond (no exec, no static constructors of the
/// executable, whose start costs milliseconds) with the controller's own
/// layout (so the arenas can sit next to its libraries). It watches each
/// executor and reports how it ended on the executor's socket.
pub(super) struct Zygote {
    pub(super) sock: Mutex<UnixStream>,
    pub(super) arenas: [ArenaSpec; 2],
    /// Where executors count the posted requests they have performed (see
    /// [`Ack`]).
    pub(super) ack: Ack,
    /// The first executor, forked at once, while the controller goes on
    /// with its own start: its connection (the hello sent, so the
    /// executor sets up meanwhile too) and call channel, until taken.
    pub(super) first: Mutex<Option<(Stream, UnixStream)>>,
}

pub(super) static ZYGOTE: std::sync::OnceLock<Zygote> = std::sync::OnceLock::new();

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
    let ack = Ack::new()?;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the zygote's socket: {e}"))?;
    let (first_ours, first_theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the executor's socket: {e}"))?;
    let (channel_ours, channel_theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the executor's call channel: {e}"))?;
    // SAFETY: getpid has no preconditions.
    let controller = unsafe { libc::getpid() };
    let placement = ForkPlacement::before_fork();
    // SAFETY: the caller guarantees this process has one thread, so the
    // child may run anything; each side owns its copies.
    let pid = match unsafe { fork() } {
        Ok(pid) => pid,
        Err(e) => {
            placement.back_to_normal_policy();
            return Err(e);
        }
    };
    if pid == 0 {
        drop(ours);
        drop(first_ours);
        drop(channel_ours);
        placement.back_to_normal_policy();
        zygote_loop(
            theirs,
            arenas,
            ack,
            controller,
            after_run,
            (first_theirs, channel_theirs),
            placement,
        );
    }
    placement.in_controller(pid);
    drop(theirs);
    drop(first_theirs);
    drop(channel_theirs);
    let mut first = Stream::Unix(first_ours);
    // A hello that cannot be sent leaves the executor to fail the handshake
    // later, with the reason.
    let first = send_hello(&mut first, &[])
        .ok()
        .map(|()| (first, channel_ours));
    ZYGOTE
        .set(Zygote {
            sock: Mutex::new(ours),
            arenas,
            ack,
            first: Mutex::new(first),
        })
        .map_err(|_| "the zygote exists already".to_owned())
}

/// Dies with `parent` (no orphans), even if it is already gone.
pub(super) fn die_with(parent: libc::pid_t) {
    // SAFETY: prctl and getppid have no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
    }
}

pub(super) fn zygote_loop(
    sock: UnixStream,
    arenas: [ArenaSpec; 2],
    ack: Ack,
    controller: libc::pid_t,
    after_run: fn(),
    first: (UnixStream, UnixStream),
    placement: ForkPlacement,
) -> ! {
    use std::os::fd::IntoRawFd;
    die_with(controller);
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let mut next = Some([first.0.into_raw_fd(), first.1.into_raw_fd()]);
    loop {
        let Some([fd, channel_fd]) = next.take().or_else(|| recv_fds(&sock)) else {
            // The controller closed its end: it is done.
            // SAFETY: ends this process, which holds nothing to flush.
            unsafe { libc::_exit(0) }
        };
        // SAFETY: this process has one thread; each side owns its copies.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(sock);
            die_with(me);
            placement.in_executor();
            // SAFETY: the descriptors came from the controller for this
            // executor; nothing else here owns them.
            let (stream, channel) = unsafe {
                (
                    Stream::Unix(UnixStream::from_raw_fd(fd)),
                    UnixStream::from_raw_fd(channel_fd),
                )
            };
            match serve(
                stream,
                None,
                arenas.to_vec(),
                Some(ack),
                after_run,
                &mut || {},
                Some(channel),
            ) {
                Ok(never) => match never {},
                Err(e) => {
                    eprintln!("orc executor: {e}");
                    // SAFETY: ends the child, which served nothing.
                    unsafe { libc::_exit(64) }
                }
            }
        }
        // SAFETY: our own descriptors from recv_fds; the channel is the
        // executor's alone.
        let mut stream = Stream::Unix(unsafe { UnixStream::from_raw_fd(fd) });
        // SAFETY: as above.
        drop(unsafe { UnixStream::from_raw_fd(channel_fd) });
        if pid < 0 {
            continue;
        }
        watch(pid, &mut stream);
    }
}

/// How the zygote is kept from taking the controller's CPU at its fork.
///
/// A forked child is often put on its parent's CPU and, being new, runs
/// before it: `perf sched` on a two-CPU machine showed the zygote (which
/// forks the first executor at once) taking the controller's CPU for
/// 0.15-0.2 ms in most runs, or waiting there for the controller's time
/// slice to end (1.3-1.6 ms, the executor that much later) while the other
/// CPU idled. So the controller forks as `SCHED_BATCH` (a batch task does
/// not preempt on wake-up), moves the zygote off its CPU, and only then
/// goes back to the normal policy; the zygote goes back to it as well, and
/// each executor it forks takes back the controller's whole CPU set. (The
/// zygote keeps the narrower set: it sleeps but for an executor's fork.)
#[derive(Clone, Copy)]
pub(super) struct ForkPlacement {
    /// The controller's CPUs without the one it forks from, and all of
    /// them; `None` when that leaves none (nothing is then moved).
    sets: Option<(libc::cpu_set_t, libc::cpu_set_t)>,
    /// Whether the controller runs under the normal policy (only then is
    /// it switched to batch for the fork).
    normal: bool,
}

impl ForkPlacement {
    /// Before the fork (in the controller, which must have one thread):
    /// switches to `SCHED_BATCH` if running under the normal policy.
    fn before_fork() -> ForkPlacement {
        // SAFETY: sched_getscheduler(0) only reads this thread's policy.
        let policy = unsafe { libc::sched_getscheduler(0) };
        let placement = ForkPlacement {
            sets: orc_core::cpu_sets_off_this_cpu(),
            normal: policy == libc::SCHED_OTHER,
        };
        if placement.normal {
            set_policy(libc::SCHED_BATCH);
        }
        placement
    }

    /// After the fork, in the controller: moves the zygote `pid` off this
    /// CPU, then goes back to the normal policy.
    fn in_controller(&self, pid: libc::pid_t) {
        if let Some((others, _)) = &self.sets {
            // SAFETY: sets our child's affinity to a subset of ours; a
            // refusal leaves the kernel's choice.
            unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(others), others) };
        }
        if self.normal {
            set_policy(libc::SCHED_OTHER);
        }
    }

    /// After the fork, in the zygote (the executors it forks inherit the
    /// policy), or in the controller if the fork failed.
    fn back_to_normal_policy(&self) {
        if self.normal {
            set_policy(libc::SCHED_OTHER);
        }
    }

    /// In an executor just forked from the zygote: the controller's whole
    /// CPU set back.
    fn in_executor(&self) {
        if let Some((_, all)) = &self.sets {
            // SAFETY: sets this process's affinity to a set the controller
            // had; a refusal leaves the zygote's.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(all), all) };
        }
    }
}

/// Sets the calling thread's scheduling policy (normal or batch, priority
/// 0; either may be set without privileges). A refusal changes nothing.
fn set_policy(policy: libc::c_int) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the call's duration.
    unsafe { libc::sched_setscheduler(0, policy, &param) };
}

/// A word in a page shared by the controller and the executors it forks
/// from the zygote (mapped before the fork): the number of posted requests
/// (see [`Request::reply`]) the current executor has performed, so the
/// controller can wait for them ([`Target::barrier`]) without a message
/// and the wake-ups of a reply (see `JitExecutor::barrier`).
#[derive(Clone, Copy)]
pub(super) struct Ack(&'static AtomicU64);

impl Ack {
    fn new() -> Result<Ack, String> {
        // SAFETY: a new anonymous shared mapping of one page: no existing
        // memory is affected.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(format!(
                "cannot map the executors' shared page: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the page is zeroed (a valid AtomicU64), aligned, mapped
        // read-write for the rest of the process and never unmapped, and
        // only ever accessed atomically.
        Ok(Ack(unsafe { &*page.cast::<AtomicU64>() }))
    }

    /// What the executor has performed.
    pub(super) fn performed(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// The executor performed one more posted request.
    pub(super) fn one_more(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    /// A new executor starts counting (the controller, before it starts
    /// one: the last one is gone).
    pub(super) fn reset(&self) {
        self.0.store(0, Ordering::Release);
    }
}

/// Calls `f` with a message of one byte and room for two descriptors,
/// its buffers alive for the call.
pub(super) fn with_fd_message<R>(f: impl FnOnce(&mut libc::msghdr) -> R) -> R {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    let space = unsafe { libc::CMSG_SPACE(FDS_LEN) } as usize;
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

/// The bytes of the two descriptors a message carries.
const FDS_LEN: u32 = 2 * std::mem::size_of::<i32>() as u32;

/// Sends an executor's two descriptors (its connection and its call
/// channel) over a Unix socket.
pub(super) fn send_fds(sock: &UnixStream, fds: [i32; 2]) -> Result<(), String> {
    let n = with_fd_message(|msg| {
        // SAFETY: the control buffer holds one cmsg of two descriptors
        // (its space was computed for that); CMSG_FIRSTHDR of it is
        // non-null.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(FDS_LEN) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<[i32; 2]>(), fds);
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

/// Receives the descriptors sent with [`send_fds`]; `None` at end of
/// stream (or for a message without both).
pub(super) fn recv_fds(sock: &UnixStream) -> Option<[i32; 2]> {
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
                || (*cmsg).cmsg_len as usize != libc::CMSG_LEN(FDS_LEN) as usize
            {
                return None;
            }
            Some(std::ptr::read_unaligned(
                libc::CMSG_DATA(cmsg).cast::<[i32; 2]>(),
            ))
        }
    })
}

/// Asks the zygote for an executor and performs the handshake.
pub(super) fn spawn_from_zygote(zygote: &Zygote) -> Result<Arc<Connection>, String> {
    if let Some((first, channel)) = zygote.first.lock().take() {
        return finish_handshake(first, None, Some(channel));
    }
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the executor's socket: {e}"))?;
    let (channel_ours, channel_theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make the executor's call channel: {e}"))?;
    send_fds(
        &zygote.sock.lock(),
        [theirs.as_raw_fd(), channel_theirs.as_raw_fd()],
    )?;
    drop(theirs);
    drop(channel_theirs);
    handshake(Stream::Unix(ours), &[], None, Some(channel_ours))
}
