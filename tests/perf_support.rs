//! perf support: the jitdump file and the perf map name every JIT'd
//! function with its address, size and code; where `perf` works on this
//! machine, `perf record -k 1` + `perf inject --jit` + `perf report` name
//! the JIT'd functions (where it does not, the test says why and checks
//! the files only).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use orc::{Jit, KaleidoscopeJit, Tier};

const FIB: &str = "def fib(x)\n  if x < 3 then\n    1\n  else\n    fib(x-1)+fib(x-2);\n";

#[derive(Debug, Clone)]
struct CodeLoad {
    pid: u32,
    vma: u64,
    code_addr: u64,
    index: u64,
    name: String,
    code: Vec<u8>,
    /// The debug-info record just before it: (address, line, file).
    lines: Vec<(u64, u32, String)>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn cstr(b: &[u8], at: usize) -> (String, usize) {
    let end = at + b[at..].iter().position(|&c| c == 0).unwrap();
    (String::from_utf8(b[at..end].to_vec()).unwrap(), end + 1)
}

/// Parses a jitdump file (perf's jitdump-specification.txt): checks the
/// header and returns the code-load records in file order.
fn parse_jitdump(bytes: &[u8]) -> Vec<CodeLoad> {
    assert_eq!(u32_at(bytes, 0), 0x4A69_5444, "magic");
    assert_eq!(u32_at(bytes, 4), 1, "version");
    let header_size = u32_at(bytes, 8) as usize;
    assert_eq!(header_size, 40);
    assert_eq!(u32_at(bytes, 12), 62, "EM_X86_64");
    assert_eq!(u32_at(bytes, 20), std::process::id(), "pid");
    let mut at = header_size;
    let mut loads = Vec::new();
    let mut pending_lines = Vec::new();
    let mut last_time = 0;
    while at < bytes.len() {
        let id = u32_at(bytes, at);
        let size = u32_at(bytes, at + 4) as usize;
        let time = u64_at(bytes, at + 8);
        assert!(time >= last_time, "timestamps never go back");
        last_time = time;
        let body = &bytes[at + 16..at + size];
        match id {
            0 => {
                let code_size = u64_at(body, 24) as usize;
                let (name, code_at) = cstr(body, 40);
                assert_eq!(code_at + code_size, body.len(), "record size of {name}");
                loads.push(CodeLoad {
                    pid: u32_at(body, 0),
                    vma: u64_at(body, 8),
                    code_addr: u64_at(body, 16),
                    index: u64_at(body, 32),
                    name,
                    code: body[code_at..].to_vec(),
                    lines: std::mem::take(&mut pending_lines),
                });
            }
            2 => {
                let n = u64_at(body, 8) as usize;
                let mut e = 16;
                for _ in 0..n {
                    let addr = u64_at(body, e);
                    let line = u32_at(body, e + 8);
                    let (file, next) = cstr(body, e + 16);
                    pending_lines.push((addr, line, file));
                    e = next;
                }
                assert_eq!(e, body.len());
            }
            other => panic!("unexpected record {other}"),
        }
        at += size;
    }
    loads
}

/// The bytes at `addr..addr + len` of this process.
///
/// # Safety
///
/// The range must be mapped and readable (JIT'd code still linked).
unsafe fn memory(addr: u64, len: usize) -> Vec<u8> {
    // SAFETY: forwarded to the caller.
    unsafe { std::slice::from_raw_parts(addr as usize as *const u8, len).to_vec() }
}

fn body_addr(kjit: &KaleidoscopeJit, name: &str) -> u64 {
    kjit.jit()
        .bodies_dylib()
        .lookup_symbol(name)
        .unwrap()
        .addr
        .value()
}

/// The perf map's entries: name -> every (start, size) given it.
fn perf_map() -> HashMap<String, Vec<(u64, u64)>> {
    // Buffered in the process until flushed (at exit, or as here).
    orc::core::debug::flush_perf_files();
    let text = std::fs::read_to_string(orc::core::debug::perf_map_path()).unwrap();
    let mut map: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let start = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let size = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
        map.entry(parts.next().unwrap().to_owned())
            .or_default()
            .push((start, size));
    }
    map
}

#[test]
fn jitdump_and_perf_map_describe_every_jitted_function() {
    let jit = Jit::builder().tier(Tier::Zero).perf(true).build().unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.eval(FIB).unwrap();
    assert_eq!(kjit.eval("fib(10);").unwrap(), vec![55.0]);
    let first = body_addr(&kjit, "fib$t0");
    // A redefinition: the first body stays named in the files.
    kjit.eval("def fib(x) x * 2;").unwrap();
    assert_eq!(kjit.eval("fib(10);").unwrap(), vec![20.0]);
    let second = body_addr(&kjit, "fib$t0.1");

    orc::core::debug::flush_perf_files();
    let dump = std::fs::read(orc::core::debug::jitdump_path()).unwrap();
    let loads = parse_jitdump(&dump);
    let by_name =
        |name: &str| -> Vec<&CodeLoad> { loads.iter().filter(|l| l.name == name).collect() };
    let fib0 = by_name("fib$t0");
    let fib1 = by_name("fib$t0.1");
    assert_eq!(fib0.len(), 1, "{loads:#?}");
    assert_eq!(fib1.len(), 1);
    assert_eq!(fib0[0].code_addr, first);
    assert_eq!(fib1[0].code_addr, second);
    for load in &loads {
        assert_eq!(load.pid, std::process::id());
        assert_eq!(load.vma, load.code_addr);
        assert!(!load.code.is_empty(), "{}", load.name);
    }
    // Code indexes are unique and increasing.
    for pair in loads.windows(2) {
        assert!(pair[0].index < pair[1].index);
    }
    // The live body's bytes are the code in memory.
    // SAFETY: fib$t0.1 is linked while `kjit` lives.
    let live = unsafe { memory(second, fib1[0].code.len()) };
    assert_eq!(live, fib1[0].code);
    assert!(by_name("__anon_expr_0").len() + by_name("__anon_expr_1").len() >= 1);

    // The perf map names the same ranges, and the stubs.
    let map = perf_map();
    let sized = |l: &CodeLoad| (l.code_addr, l.code.len() as u64);
    assert!(map["fib$t0"].contains(&sized(fib0[0])), "{map:?}");
    assert!(map["fib$t0.1"].contains(&sized(fib1[0])), "{map:?}");
    let stub = kjit.jit().lookup("fib").unwrap().value();
    assert!(
        map["fib"].iter().any(|&(start, _)| start == stub),
        "{map:?}"
    );
}

#[test]
fn jitdump_carries_line_info_of_objects_with_dwarf() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("perf-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("twice.c");
    std::fs::write(
        &src,
        "int perf_twice(int x) {\n  int y = x + x;\n  return y;\n}\n",
    )
    .unwrap();
    let obj = dir.join("twice.o");
    let status = Command::new("gcc")
        .args(["-g", "-O0", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("gcc");
    assert!(status.success());
    let jit = Jit::builder().perf(true).build().unwrap();
    jit.object_layer()
        .add_bytes(
            jit.main_dylib(),
            "twice.o",
            std::fs::read(&obj).unwrap(),
            None,
        )
        .unwrap();
    let addr = jit.lookup("perf_twice").unwrap().value();
    orc::core::debug::flush_perf_files();
    let dump = std::fs::read(orc::core::debug::jitdump_path()).unwrap();
    let loads = parse_jitdump(&dump);
    let load = loads
        .iter()
        .find(|l| l.name == "perf_twice")
        .expect("a record for perf_twice");
    assert_eq!(load.code_addr, addr);
    // SAFETY: the object is linked while `jit` lives.
    assert_eq!(unsafe { memory(addr, load.code.len()) }, load.code);
    let end = addr + load.code.len() as u64;
    assert!(!load.lines.is_empty(), "line records for perf_twice");
    let lines: Vec<u32> = load.lines.iter().map(|l| l.1).collect();
    for (a, line, file) in &load.lines {
        assert!((addr..end).contains(a), "{a:#x} in {addr:#x}..{end:#x}");
        assert!(file.ends_with("twice.c"), "{file}");
        assert!((1..=4).contains(line), "{line}");
    }
    assert!(
        lines.contains(&1) && lines.contains(&2) && lines.contains(&3),
        "{lines:?}"
    );
}

/// Why perf cannot record here, if it cannot.
fn perf_unusable() -> Option<String> {
    match Command::new("perf").arg("--version").output() {
        Err(e) => return Some(format!("perf is not installed ({e})")),
        Ok(out) if !out.status.success() => return Some("perf --version failed".into()),
        Ok(_) => {}
    }
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    if paranoid.is_some_and(|p| p > 2) {
        return Some(format!(
            "kernel.perf_event_paranoid is {} (> 2: no user-space profiling)",
            paranoid.unwrap_or_default()
        ));
    }
    None
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed: {text}"))
    }
}

#[test]
fn perf_report_names_jitted_functions() {
    if let Some(why) = perf_unusable() {
        eprintln!("skipping perf record: {why}; the jitdump test checks the files");
        return;
    }
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("perf-record");
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("fib.kal");
    std::fs::write(&prog, format!("{FIB}\nfib(30);\n")).unwrap();
    let data = dir.join("perf.data");
    let injected = dir.join("perf.jit.data");
    let recorded = run(Command::new("perf")
        .args(["record", "-k", "1", "-o"])
        .arg(&data)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_orc"))
        .args(["run", "--tier", "0", "--perf"])
        .arg(&prog));
    if let Err(why) = recorded {
        // A kernel or container that refuses perf events.
        eprintln!("skipping perf record: the kernel refused: {why}");
        return;
    }
    run(Command::new("perf")
        .args(["inject", "--jit", "-i"])
        .arg(&data)
        .arg("-o")
        .arg(&injected))
    .unwrap();
    let report = run(Command::new("perf")
        .args(["report", "--stdio", "--sort", "dso,sym", "-i"])
        .arg(&injected))
    .unwrap();
    // fib(30) runs long enough in the tier-0 body to be sampled, and the
    // injected jitdump names it in a jitted-PID-N.so.
    let line = report
        .lines()
        .find(|l| l.contains("fib$t0"))
        .unwrap_or_else(|| panic!("fib$t0 in the report:\n{report}"));
    assert!(line.contains("jitted-"), "{line}");
}

/// Tier-0 code of a frontend that gives source locations carries its
/// lines into the jitdump too (from the line table the Cranelift compiler
/// makes out of them).
#[test]
fn jitdump_carries_line_info_of_tier_0_kaleidoscope() {
    let jit = Jit::builder().tier(Tier::Zero).perf(true).build().unwrap();
    let mut kjit = KaleidoscopeJit::new(jit);
    kjit.set_source_file(&std::env::temp_dir().join("orc-perf-lines.kal"));
    kjit.eval("def lined(x)\n  if x < 3 then\n    1\n  else\n    lined(x-1)+lined(x-2);\n")
        .unwrap();
    assert_eq!(kjit.eval("lined(10);").unwrap(), vec![55.0]);
    orc::core::debug::flush_perf_files();
    let loads = parse_jitdump(&std::fs::read(orc::core::debug::jitdump_path()).unwrap());
    let load = loads
        .iter()
        .find(|l| l.name == "lined$t0")
        .unwrap_or_else(|| panic!("no lined$t0 in {loads:#?}"));
    let lines: Vec<u32> = load.lines.iter().map(|l| l.1).collect();
    assert!(
        load.lines
            .iter()
            .any(|(addr, line, file)| *addr == load.code_addr
                && *line == 2
                && file.ends_with("orc-perf-lines.kal")),
        "{:?}",
        load.lines
    );
    assert!(lines.contains(&5), "{lines:?}");
    let end = load.code_addr + load.code.len() as u64;
    assert!(
        load.lines
            .iter()
            .all(|(addr, _, _)| (load.code_addr..end).contains(addr)),
        "{:?}",
        load.lines
    );
}
