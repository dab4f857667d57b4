//! The call channel of an executor forked from the zygote (see
//! `orc_executor::jit`): a run asked for by one controller thread holds the
//! channel for its whole conversation; a run another thread asks for
//! meanwhile goes on the connection, waits for the executor's main thread
//! and is performed after the first, on the same thread, as runs always
//! were. (Lazy calls, tier-up trips and crashes across the channel are
//! covered by the `orc` binary's tests: `tests/out_of_process.rs`,
//! `tests/ir_corpus.rs`, `tests/kaleidoscope_programs.rs`.)
//!
//! A test without libtest's harness: the zygote must be forked before any
//! thread starts, first thing in `main`.

use std::sync::Arc;
use std::time::Instant;

use orc_core::memory::{LinkMemory, Placement, SegmentProtection};
use orc_core::remote::{RetKind, Target};
use orc_executor::jit::{prepare_zygote, ExecutorCommand, JitExecutor};

/// `fn(n, v) -> v` after counting `n` down to zero (`n` at least 1):
/// `mov rax, rsi; 1: dec rdi; jnz 1b; ret`.
const COUNT_DOWN: [u8; 9] = [0x48, 0x89, 0xf0, 0x48, 0xff, 0xcf, 0x75, 0xfb, 0xc3];

fn main() {
    prepare_zygote(|| {}).expect("the zygote");
    let executor = JitExecutor::start(ExecutorCommand::this_executable(&["executor"]))
        .expect("an executor from the zygote");
    orc_core::remote::set_target(executor.clone()).expect("the target");
    let mut code = LinkMemory::reserve(
        &[(SegmentProtection::ReadExec, COUNT_DOWN.len())],
        Placement::Anywhere,
    )
    .expect("memory in the arena");
    code.bytes_mut().expect("writable before publishing")[..COUNT_DOWN.len()]
        .copy_from_slice(&COUNT_DOWN);
    code.publish().expect("protections");
    executor.barrier().expect("protections performed");
    let addr = code.base();

    // A quick run first: the channel works at all.
    assert_eq!(executor.run(addr, &[1, 5], &[], RetKind::Int), Ok(5));

    // A long run on the channel, and meanwhile one from another thread.
    let long = {
        let executor: Arc<JitExecutor> = executor.clone();
        std::thread::spawn(move || {
            let result = executor.run(addr, &[400_000_000, 7], &[], RetKind::Int);
            (result, Instant::now())
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let asked = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let executor: Arc<JitExecutor> = executor.clone();
        std::thread::spawn(move || {
            let result = executor.run(addr, &[1, 9], &[], RetKind::Int);
            let _ = tx.send((result, Instant::now()));
        });
    }
    // Not forever: a run the main thread never hears of would hang.
    let (short, short_done) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the second run came back within a minute");
    let (long, long_done) = long.join().expect("the long run's thread");
    assert_eq!(long, Ok(7), "the run on the channel");
    assert_eq!(short, Ok(9), "the run on the connection");
    assert!(
        short_done >= long_done,
        "the second run was performed on the main thread after the first \
         (asked {:?} after the start, done {:?} before the first)",
        asked.elapsed(),
        long_done.duration_since(short_done)
    );
    // And the channel is free again.
    assert_eq!(executor.run(addr, &[3, 11], &[], RetKind::Int), Ok(11));
    println!("call channel: ok");
}
