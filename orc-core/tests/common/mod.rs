//! Shared helpers of the linker tests: compiling the C/C++ sources under
//! `tests/link/` at test time with each toolchain configuration, and a
//! resolver over the host process plus test-provided symbols.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use orc_core::link::{process_symbol, ObjectFile};
use orc_core::ExecutorAddr;

/// One compiler configuration.
#[derive(Clone, Copy, Debug)]
pub struct Toolchain {
    pub cc: &'static str,
    pub cxx: &'static str,
    pub flags: &'static [&'static str],
}

impl Toolchain {
    pub fn pic(&self) -> bool {
        self.flags.contains(&"-fPIC")
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.cc, self.flags.join(" "))
    }
}

/// gcc/g++ at -O0 and -O2 with -fPIC and -fno-PIC, the large code model
/// (GOT64, GOTOFF64, GOTPC64, PLTOFF64), and clang-19.
pub const TOOLCHAINS: &[Toolchain] = &[
    Toolchain {
        cc: "gcc",
        cxx: "g++",
        flags: &["-O0", "-fPIC"],
    },
    Toolchain {
        cc: "gcc",
        cxx: "g++",
        flags: &["-O0", "-fno-PIC"],
    },
    Toolchain {
        cc: "gcc",
        cxx: "g++",
        flags: &["-O2", "-fPIC"],
    },
    Toolchain {
        cc: "gcc",
        cxx: "g++",
        flags: &["-O2", "-fno-PIC"],
    },
    Toolchain {
        cc: "gcc",
        cxx: "g++",
        flags: &["-O2", "-fPIC", "-mcmodel=large"],
    },
    Toolchain {
        cc: "clang-19",
        cxx: "clang++-19",
        flags: &["-O0", "-fPIC"],
    },
    Toolchain {
        cc: "clang-19",
        cxx: "clang++-19",
        flags: &["-O2", "-fPIC"],
    },
    Toolchain {
        cc: "clang-19",
        cxx: "clang++-19",
        flags: &["-O2", "-fno-PIC"],
    },
];

pub const GCC_O2_PIC: Toolchain = Toolchain {
    cc: "gcc",
    cxx: "g++",
    flags: &["-O2", "-fPIC"],
};

pub fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/link")
        .join(name)
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("link-tests");
    std::fs::create_dir_all(&dir).expect("create the test output directory");
    dir
}

fn unique_path(stem: &str, ext: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    out_dir().join(format!("{stem}-{}-{n}.{ext}", std::process::id()))
}

/// Runs a tool, failing the test with its stderr if it is missing or
/// fails (the linker tests need gcc, g++, clang-19 and ar installed).
pub fn run_tool(tool: &str, args: &[&str]) {
    orc_test_support::check(Command::new(tool).args(args));
}

/// Compiles `tests/link/NAME` with `tc` and returns the object's bytes.
pub fn compile_bytes(tc: &Toolchain, name: &str, extra: &[&str]) -> Vec<u8> {
    let src = source(name);
    let cxx = name.ends_with(".cpp");
    let compiler = if cxx { tc.cxx } else { tc.cc };
    let out = unique_path(name, "o");
    let mut args: Vec<&str> = vec!["-c", "-fcommon", "-g0"];
    args.extend_from_slice(tc.flags);
    args.extend_from_slice(extra);
    let (src_s, out_s) = (src.to_str().unwrap(), out.to_str().unwrap());
    args.extend_from_slice(&[src_s, "-o", out_s]);
    run_tool(compiler, &args);
    let bytes = std::fs::read(&out).expect("read the compiled object");
    let _ = std::fs::remove_file(&out);
    bytes
}

/// Compiles and parses `tests/link/NAME`.
pub fn compile(tc: &Toolchain, name: &str) -> ObjectFile {
    let bytes = compile_bytes(tc, name, &[]);
    ObjectFile::parse(format!("{name} [{}]", tc.describe()), bytes)
        .unwrap_or_else(|e| panic!("parse {name} with {}: {e}", tc.describe()))
}

/// Builds a static archive of the given sources.
pub fn archive(tc: &Toolchain, names: &[&str]) -> Vec<u8> {
    let mut objs = Vec::new();
    for name in names {
        let path = unique_path(name, "o");
        std::fs::write(&path, compile_bytes(tc, name, &[])).unwrap();
        objs.push(path);
    }
    let lib = unique_path("lib", "a");
    let mut args = vec!["rcs", lib.to_str().unwrap()];
    args.extend(objs.iter().map(|p| p.to_str().unwrap()));
    run_tool("ar", &args);
    let bytes = std::fs::read(&lib).unwrap();
    for p in objs.iter().chain([&lib]) {
        let _ = std::fs::remove_file(p);
    }
    bytes
}

/// The events JIT'd code reports through `log_event`.
pub static LOG: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Held by tests that use `LOG`, so their events do not interleave.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn take_log() -> Vec<i32> {
    std::mem::take(&mut *LOG.lock().unwrap_or_else(|e| e.into_inner()))
}

extern "C" fn log_event(x: i32) {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).push(x);
}

/// Test-provided symbols, then everything in the process.
pub fn host_symbol(name: &str) -> Option<ExecutorAddr> {
    match name {
        "log_event" => Some(ExecutorAddr(log_event as *const () as usize as u64)),
        _ => process_symbol(name),
    }
}

/// Casts a symbol address to a function pointer type.
///
/// # Safety
/// `addr` must be a function of type `F`.
pub unsafe fn func<F: Copy>(addr: ExecutorAddr) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    let raw = addr.value() as usize;
    // SAFETY: the caller guarantees the type; sizes are checked above.
    unsafe { std::mem::transmute_copy::<usize, F>(&raw) }
}

/// Loads libstdc++ into the process (the file g++ links, from
/// `g++ -print-file-name=libstdc++.so.6`), once; it stays loaded for the
/// rest of the test process.
pub fn load_stdcxx() {
    static LIB: std::sync::OnceLock<orc_core::link::LoadedLibrary> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let out = std::process::Command::new("g++")
            .arg("-print-file-name=libstdc++.so.6")
            .output()
            .expect("run g++");
        let path = String::from_utf8(out.stdout).expect("utf-8 path");
        let file = orc_core::link::LibraryFile::Shared(path.trim().into());
        orc_core::link::load_library(&file).expect("load libstdc++")
    });
}
