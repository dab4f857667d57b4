//! Many VMs on many threads through ONE shared JIT (adaptive tiering with
//! low thresholds, so functions are compiled and promoted to LLVM while
//! other threads run theirs): every result is right, and memory stays
//! bounded because a dropped VM releases its compiled code.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use orc_lox::{InterpretResult, LoxJit, Tier, Vm};

#[derive(Clone, Default)]
struct Buf(Rc<RefCell<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A program exercising calls, loops, closures, classes and strings, and
/// its expected output for parameter `k`.
fn program(k: u64) -> (String, String) {
    let src = format!(
        r#"
fun fib(n) {{ if (n < 2) return n; return fib(n - 2) + fib(n - 1); }}
class Counter {{
  init(start) {{ this.n = start; }}
  add(d) {{ this.n = this.n + d; return this; }}
}}
fun adder(x) {{ fun add(y) {{ return x + y; }} return add; }}
var c = Counter({k});
var add = adder(1);
var s = "";
for (var i = 0; i < 300; i = i + 1) {{
  c.add(1);
  if (i < 5) s = s + "ab";
  add(i);
}}
print fib({n});
print c.n;
print add({k});
print s;
"#,
        n = 12 + k % 4
    );
    let fib = |n: u64| {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..n {
            (a, b) = (b, a + b);
        }
        a
    };
    let out = format!("{}\n{}\n{}\nababababab\n", fib(12 + k % 4), k + 300, k + 1);
    (src, out)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Compiled functions seen in tier 1 (LLVM) when their VM finished.
static IN_TIER1: AtomicUsize = AtomicUsize::new(0);

fn run_vms(jit: &Arc<LoxJit>, thread: u64, vms: u64) {
    for i in 0..vms {
        let k = thread * 1000 + i;
        let (src, expected) = program(k);
        let out = Buf::default();
        let mut vm = Vm::with_output(Box::new(out.clone()), Box::new(std::io::sink()), false);
        vm.set_jit(jit.clone());
        assert_eq!(
            vm.interpret(&src),
            InterpretResult::Ok,
            "thread {thread}, vm {i}"
        );
        let got = String::from_utf8(out.0.borrow().clone()).unwrap();
        assert_eq!(got, expected, "thread {thread}, vm {i}");
        let stats = vm.jit_stats();
        assert!(stats.failures.is_empty(), "{:?}", stats.failures);
        assert!(
            stats.compiled >= 4,
            "hot functions were compiled: {stats:?}"
        );
        IN_TIER1.fetch_add(stats.in_tier1, Ordering::Relaxed);
    }
}

#[test]
fn eight_threads_share_one_jit_with_bounded_memory() {
    const THREADS: u64 = 8;
    let jit = LoxJit::with_thresholds(Tier::Adaptive, 20, Some(200)).unwrap();
    let stubs = || jit.orc().lazy_reexports().stubs().n_live();
    let stubs_before = stubs();
    let round = |vms: u64| {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let jit = &jit;
                s.spawn(move || run_vms(jit, t, vms));
            }
        });
    };
    // Warm up (first LLVM use, thread-local state, allocator pools).
    round(2);
    assert_eq!(jit.live_functions(), 0, "dropped VMs released their code");
    let rss_warm = rss_kib();
    round(12);
    assert_eq!(jit.live_functions(), 0, "dropped VMs released their code");
    assert_eq!(stubs(), stubs_before, "and their stubs");
    let rss_end = rss_kib();
    // 96 more VMs compiled ~5 functions each, some twice (LLVM): if their
    // code were kept, that would be hundreds of bodies; released, the RSS
    // stays within allocator noise.
    assert!(
        rss_end < rss_warm + 48 * 1024,
        "RSS grew from {rss_warm} KiB to {rss_end} KiB"
    );
    // Functions really were promoted to tier 1 along the way.
    assert!(
        IN_TIER1.load(Ordering::Relaxed) > 0,
        "no function reached tier 1"
    );
}
