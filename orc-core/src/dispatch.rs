//! Dispatchers: where materialization work runs.
//!
//! The session hands every materialization (and nothing else that is slow)
//! to its dispatcher, always after releasing the session lock, except the
//! first one a blocking lookup starts, which the waiting thread runs
//! itself unless the dispatcher says otherwise
//! ([`Dispatcher::caller_may_run`]). The
//! in-place dispatcher runs work on the calling thread; the thread pool runs
//! it on N worker threads. A task that is never run (the pool shut down
//! first) is dropped, and dropping a materialization task fails its
//! symbols, so no lookup waits forever.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

/// A unit of work for a dispatcher.
pub struct Task {
    /// Shared, so describing a materialization costs no allocation.
    description: Arc<str>,
    work: Box<dyn FnOnce() + Send>,
}

impl Task {
    /// A task that runs `work`; `description` names it for diagnostics.
    pub fn new(description: impl Into<Arc<str>>, work: impl FnOnce() + Send + 'static) -> Self {
        Task {
            description: description.into(),
            work: Box::new(work),
        }
    }

    /// What the task does.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Runs the task.
    pub fn run(self) {
        (self.work)()
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("description", &self.description)
            .finish()
    }
}

/// Runs tasks for a session.
pub trait Dispatcher: Send + Sync {
    /// Runs `task` now or later. Never called with the session lock held.
    fn dispatch(&self, task: Task);

    /// Stops accepting work, drops queued tasks and waits for running ones.
    fn shutdown(&self);

    /// If the calling thread is one of this dispatcher's workers and a task
    /// is queued, runs one and returns true. Blocking lookups made on a
    /// worker call this while they wait, so a pool never deadlocks waiting
    /// on work queued behind it.
    fn run_one_if_worker(&self) -> bool {
        false
    }

    /// Whether a thread that makes a blocking lookup may run the first
    /// materialization the lookup starts itself, instead of dispatching it
    /// and sleeping until a worker has run it (the default, since that
    /// thread would only wait). Return false to keep every materialization
    /// on the dispatcher's threads.
    fn caller_may_run(&self) -> bool {
        true
    }

    /// Whether [`dispatch`](Self::dispatch) runs the task before it returns
    /// (so whoever dispatched waits for it).
    fn runs_in_place(&self) -> bool {
        false
    }
}

/// Runs every task immediately on the thread that dispatches it.
#[derive(Debug, Default)]
pub struct InPlaceDispatcher;

impl Dispatcher for InPlaceDispatcher {
    fn dispatch(&self, task: Task) {
        task.run()
    }

    fn shutdown(&self) {}

    fn runs_in_place(&self) -> bool {
        true
    }
}

struct PoolShared {
    queue: Mutex<PoolQueue>,
    available: Condvar,
    id: usize,
}

struct PoolQueue {
    tasks: VecDeque<Task>,
    open: bool,
    running: usize,
}

thread_local! {
    /// The pool (by id) whose worker this thread is, if any.
    static WORKER_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The CPU of the program thread this thread dispatches for, when that
    /// is another thread (see [`dispatch_for_cpu`]).
    static PROGRAM_CPU: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f`, in which this thread dispatches work on behalf of a program
/// thread running on `cpu` (a controller serving an executor's tiering
/// trip): a pool started meanwhile keeps its workers off that CPU instead
/// of off this thread's (see `placement`).
pub fn dispatch_for_cpu<R>(cpu: usize, f: impl FnOnce() -> R) -> R {
    let before = PROGRAM_CPU.with(|c| c.replace(Some(cpu)));
    let result = f();
    PROGRAM_CPU.with(|c| c.set(before));
    result
}

/// Lets `thread` run on the CPUs the calling thread may use but `cpu`, when
/// that leaves one: how a thread that wakes another and goes on running on
/// `cpu` keeps it from waiting there for its time slice (see
/// `placement`; an executor's trip reporter uses it).
///
/// # Safety
/// `thread` must be a live thread of this process.
#[cfg(target_os = "linux")]
pub unsafe fn keep_thread_off_cpu(thread: libc::pthread_t, cpu: usize) {
    if let Some(all) = placement::own_cpu_set() {
        // SAFETY: the caller guarantees `thread` lives.
        unsafe { placement::Steer::away_from(cpu, all).apply_to(thread) }
    }
}

/// The calling thread's CPU set without the CPU it runs on, and the whole
/// set; `None` unless that leaves a CPU (see `placement`). An
/// out-of-process JIT moves the zygote it forks to the first, and the
/// executors the zygote forks take back the second.
#[cfg(target_os = "linux")]
pub fn cpu_sets_off_this_cpu() -> Option<(libc::cpu_set_t, libc::cpu_set_t)> {
    placement::Steer::away_from_this_cpu().sets()
}

/// A pool of worker threads that run tasks in dispatch order.
pub struct ThreadPoolDispatcher {
    shared: Arc<PoolShared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    shut: AtomicBool,
}

impl ThreadPoolDispatcher {
    /// A pool of `n_threads` workers (at least one). Fails only when the
    /// operating system refuses to start a thread.
    pub fn new(n_threads: usize) -> std::io::Result<Self> {
        Self::placed(n_threads, placement::Steer::away_from_this_cpu())
    }

    fn placed(n_threads: usize, placement: placement::Steer) -> std::io::Result<Self> {
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let shared = Arc::new(PoolShared {
            queue: Mutex::new(PoolQueue {
                tasks: VecDeque::new(),
                open: true,
                running: 0,
            }),
            available: Condvar::new(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        });
        let pool = ThreadPoolDispatcher {
            shared,
            workers: Mutex::new(Vec::new()),
            shut: AtomicBool::new(false),
        };
        for i in 0..n_threads.max(1) {
            let shared = pool.shared.clone();
            let worker = std::thread::Builder::new()
                .name(format!("orc-worker-{i}"))
                .spawn(move || worker_loop(&shared, placement))?;
            placement.apply(&worker);
            pool.workers.lock().push(worker);
        }
        Ok(pool)
    }

    /// The number of worker threads.
    pub fn n_threads(&self) -> usize {
        self.workers.lock().len()
    }
}

fn worker_loop(shared: &PoolShared, mut placement: placement::Steer) {
    WORKER_OF.with(|w| w.set(shared.id));
    loop {
        let task = {
            let mut queue = shared.queue.lock();
            loop {
                if let Some(task) = queue.tasks.pop_front() {
                    queue.running += 1;
                    break task;
                }
                if !queue.open {
                    return;
                }
                shared.available.wait(&mut queue);
            }
        };
        // Placed: from now on the scheduler may move it anywhere.
        placement.release();
        // A panicking task must not take the worker down with it; whatever
        // it was materializing fails when its responsibility is dropped
        // during unwinding.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()));
        shared.queue.lock().running -= 1;
    }
}

/// Where a new pool's workers start. Linux places a new thread on the
/// least busy CPU as it sees it at the fork, and with two CPUs, one running
/// the program and the other idle, it still put workers on the program's
/// CPU about half the time. There a worker waits for the program's time
/// slice to end (3 ms) before its first task, while the other CPU idles:
/// the first tier-up of a short program was queued that long. So the
/// spawning thread (the program's, which goes on running) keeps its
/// workers off its own CPU until each starts its first task, which can
/// only be queued after the pool exists. A thread that spawns for a
/// program thread elsewhere (in an executor) keeps them off that one's
/// CPU instead ([`super::dispatch_for_cpu`]).
mod placement {
    #[cfg(target_os = "linux")]
    #[derive(Clone, Copy)]
    pub(super) struct Steer {
        /// The spawner's CPU set without its current CPU, and the whole
        /// set, to give back; `None` when there is no other CPU.
        sets: Option<(libc::cpu_set_t, libc::cpu_set_t)>,
    }

    #[cfg(target_os = "linux")]
    impl Steer {
        pub(super) fn away_from_this_cpu() -> Steer {
            let cpu = match super::PROGRAM_CPU.with(|c| c.get()) {
                Some(cpu) => cpu as i32,
                // SAFETY: no arguments; -1 when unknown.
                None => unsafe { libc::sched_getcpu() },
            };
            match own_cpu_set() {
                Some(all) if cpu >= 0 => Steer::away_from(cpu as usize, all),
                _ => Steer { sets: None },
            }
        }

        /// Off `cpu`, back to `all` later; no steering unless `all` has
        /// `cpu` and another CPU.
        pub(super) fn away_from(cpu: usize, all: libc::cpu_set_t) -> Steer {
            if cpu >= libc::CPU_SETSIZE as usize {
                return Steer { sets: None };
            }
            let mut others = all;
            // SAFETY: `cpu` is below the set's size (checked above).
            let sets = unsafe {
                libc::CPU_CLR(cpu, &mut others);
                let (n_others, n_all) = (libc::CPU_COUNT(&others), libc::CPU_COUNT(&all));
                (n_others > 0 && n_others < n_all).then_some((others, all))
            };
            Steer { sets }
        }

        /// The spawner's CPU set without its current CPU, and the whole
        /// set, when there is another CPU.
        pub(super) fn sets(&self) -> Option<(libc::cpu_set_t, libc::cpu_set_t)> {
            self.sets
        }

        /// Keeps `thread` off the spawner's CPU (called by the spawner).
        pub(super) fn apply(&self, thread: &std::thread::JoinHandle<()>) {
            let id = std::os::unix::thread::JoinHandleExt::as_pthread_t(thread);
            // SAFETY: `id` names a thread we just started and have not
            // joined.
            unsafe { self.apply_to(id) }
        }

        /// [`Self::apply`] for a thread named by its `pthread_t`.
        ///
        /// # Safety
        /// `thread` must be a live thread of this process.
        pub(super) unsafe fn apply_to(&self, thread: libc::pthread_t) {
            if let Some((others, _)) = &self.sets {
                // SAFETY: the caller guarantees `thread` lives; a refusal
                // leaves the scheduler's choice.
                unsafe {
                    libc::pthread_setaffinity_np(thread, std::mem::size_of_val(others), others)
                };
            }
        }

        /// Gives the calling worker back the whole CPU set (called by the
        /// worker, once).
        pub(super) fn release(&mut self) {
            if let Some((_, all)) = self.sets.take() {
                // SAFETY: sets the calling thread's affinity to a set it
                // had when it was spawned.
                unsafe {
                    libc::pthread_setaffinity_np(
                        libc::pthread_self(),
                        std::mem::size_of_val(&all),
                        &all,
                    )
                };
            }
        }
    }

    /// The calling thread's CPU set.
    #[cfg(target_os = "linux")]
    pub(super) fn own_cpu_set() -> Option<libc::cpu_set_t> {
        // SAFETY: `set` is a plain bit set for the kernel to fill.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of_val(&set);
            (libc::pthread_getaffinity_np(libc::pthread_self(), size, &mut set) == 0).then_some(set)
        }
    }

    #[cfg(not(target_os = "linux"))]
    #[derive(Clone, Copy)]
    pub(super) struct Steer;

    #[cfg(not(target_os = "linux"))]
    impl Steer {
        pub(super) fn away_from_this_cpu() -> Steer {
            Steer
        }
        pub(super) fn apply(&self, _: &std::thread::JoinHandle<()>) {}
        pub(super) fn release(&mut self) {}
    }
}

impl Dispatcher for ThreadPoolDispatcher {
    fn dispatch(&self, task: Task) {
        let mut queue = self.shared.queue.lock();
        if !queue.open {
            // Dropping the task fails whatever it was to materialize.
            drop(queue);
            drop(task);
            return;
        }
        queue.tasks.push_back(task);
        drop(queue);
        self.shared.available.notify_one();
    }

    fn shutdown(&self) {
        if self.shut.swap(true, Ordering::SeqCst) {
            return;
        }
        let dropped: Vec<Task> = {
            let mut queue = self.shared.queue.lock();
            queue.open = false;
            queue.tasks.drain(..).collect()
        };
        self.shared.available.notify_all();
        // Dropping queued tasks may run their failure paths; do it unlocked.
        drop(dropped);
        let workers: Vec<JoinHandle<()>> = self.workers.lock().drain(..).collect();
        let me = std::thread::current().id();
        for worker in workers {
            if worker.thread().id() != me {
                let _ = worker.join();
            }
        }
    }

    fn run_one_if_worker(&self) -> bool {
        if WORKER_OF.with(|w| w.get()) != self.shared.id {
            return false;
        }
        let task = {
            let mut queue = self.shared.queue.lock();
            match queue.tasks.pop_front() {
                Some(task) => {
                    queue.running += 1;
                    task
                }
                None => return false,
            }
        };
        task.run();
        self.shared.queue.lock().running -= 1;
        true
    }
}

impl Drop for ThreadPoolDispatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for ThreadPoolDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPoolDispatcher")
            .field("n_threads", &self.n_threads())
            .finish()
    }
}

/// A [`ThreadPoolDispatcher`] started by its first task: a pool that may
/// never get work (the tier-up pool of a program in which nothing turns
/// hot) costs no thread. If the pool's threads cannot be started, tasks
/// run on the dispatching thread instead.
pub struct LazyPoolDispatcher {
    n_threads: usize,
    pool: std::sync::OnceLock<Option<ThreadPoolDispatcher>>,
    shut: AtomicBool,
}

impl LazyPoolDispatcher {
    /// A pool of `n_threads` workers (at least one), started on first use.
    pub fn new(n_threads: usize) -> Self {
        LazyPoolDispatcher {
            n_threads,
            pool: std::sync::OnceLock::new(),
            shut: AtomicBool::new(false),
        }
    }

    /// Whether the pool's threads have been started.
    pub fn is_started(&self) -> bool {
        matches!(self.pool.get(), Some(Some(_)))
    }
}

impl Dispatcher for LazyPoolDispatcher {
    fn dispatch(&self, task: Task) {
        if self.shut.load(Ordering::SeqCst) {
            // As a shut-down pool does: dropping fails the task's work.
            drop(task);
            return;
        }
        match self
            .pool
            .get_or_init(|| ThreadPoolDispatcher::new(self.n_threads).ok())
        {
            Some(pool) => {
                pool.dispatch(task);
                // A shutdown that raced with starting the pool.
                if self.shut.load(Ordering::SeqCst) {
                    pool.shutdown();
                }
            }
            None => task.run(),
        }
    }

    fn shutdown(&self) {
        self.shut.store(true, Ordering::SeqCst);
        if let Some(Some(pool)) = self.pool.get() {
            pool.shutdown();
        }
    }

    fn run_one_if_worker(&self) -> bool {
        match self.pool.get() {
            Some(Some(pool)) => pool.run_one_if_worker(),
            _ => false,
        }
    }
}

impl std::fmt::Debug for LazyPoolDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyPoolDispatcher")
            .field("n_threads", &self.n_threads)
            .field("started", &self.is_started())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[cfg(target_os = "linux")]
    #[test]
    fn new_workers_start_off_the_spawners_cpu_and_get_every_cpu_back() {
        let all = placement::own_cpu_set().expect("this thread's CPU set");
        let is_set = |c: usize| {
            // SAFETY: a read of a plain bit set; `c` is below its size.
            unsafe { libc::CPU_ISSET(c, &all) }
        };
        let first = (0..libc::CPU_SETSIZE as usize).find(|&c| is_set(c));
        let first = first.expect("a CPU to run on");
        let steer = placement::Steer::away_from(first, all);
        let pool = ThreadPoolDispatcher::placed(1, steer).unwrap();
        // SAFETY: as above.
        let n_cpus = unsafe { libc::CPU_COUNT(&all) };
        let worker_set = {
            let workers = pool.workers.lock();
            let id = std::os::unix::thread::JoinHandleExt::as_pthread_t(&workers[0]);
            // SAFETY: the worker is alive (not joined); `set` is a plain
            // bit set for the kernel to fill.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                assert_eq!(
                    libc::pthread_getaffinity_np(id, std::mem::size_of_val(&set), &mut set),
                    0
                );
                set
            }
        };
        // SAFETY: reads of plain bit sets.
        unsafe {
            if n_cpus > 1 {
                assert!(!libc::CPU_ISSET(first, &worker_set), "kept off CPU {first}");
                assert_eq!(libc::CPU_COUNT(&worker_set), n_cpus - 1);
            } else {
                // Nowhere else to go: left alone.
                assert!(libc::CPU_EQUAL(&worker_set, &all));
            }
        }
        // Its first task finds the whole set again.
        let (tx, rx) = std::sync::mpsc::channel();
        pool.dispatch(Task::new("where may I run", move || {
            tx.send(placement::own_cpu_set()).unwrap();
        }));
        let during = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap()
            .unwrap();
        // SAFETY: a read of plain bit sets.
        assert!(unsafe { libc::CPU_EQUAL(&during, &all) });
        pool.shutdown();
    }

    /// Whether `pool` runs a task it is given (at once or on a worker).
    fn runs_a_task(pool: &dyn Dispatcher) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        pool.dispatch(Task::new("probe", move || tx.send(()).unwrap()));
        rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok()
    }

    #[test]
    fn pool_runs_every_task() {
        let pool = ThreadPoolDispatcher::new(4).unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..100 {
            let count = count.clone();
            let tx = tx.clone();
            pool.dispatch(Task::new("count", move || {
                count.fetch_add(1, Ordering::SeqCst);
                tx.send(()).unwrap();
            }));
        }
        for _ in 0..100 {
            rx.recv().unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 100);
        pool.shutdown();
        assert_eq!(pool.n_threads(), 0);
    }

    #[test]
    fn tasks_after_shutdown_are_dropped_not_run() {
        let pool = ThreadPoolDispatcher::new(1).unwrap();
        pool.shutdown();
        assert!(!runs_a_task(&pool), "a task after shutdown is dropped");
    }

    #[test]
    fn a_lazy_pool_starts_its_threads_with_its_first_task() {
        let pool = LazyPoolDispatcher::new(2);
        assert!(!pool.is_started());
        let (tx, rx) = std::sync::mpsc::channel();
        pool.dispatch(Task::new("where", move || {
            tx.send(std::thread::current().id()).unwrap();
        }));
        let ran_on = rx.recv().unwrap();
        assert!(pool.is_started());
        assert_ne!(ran_on, std::thread::current().id(), "ran on a worker");
        pool.shutdown();
        assert!(!runs_a_task(&pool), "a task after shutdown is dropped");
    }

    #[test]
    fn a_lazy_pool_shut_down_unused_never_starts() {
        let pool = LazyPoolDispatcher::new(1);
        pool.shutdown();
        pool.dispatch(Task::new("late", || {}));
        assert!(!pool.is_started());
    }
}
