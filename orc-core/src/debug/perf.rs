//! perf support: the perf map (`/tmp/perf-PID.map`, lines `START SIZE
//! name` in hex) and the jitdump file (`jit-PID.dump`, perf's
//! `tools/perf/Documentation/jitdump-specification.txt`: a header, then a
//! `JIT_CODE_LOAD` record per function with its code bytes, preceded by a
//! `JIT_CODE_DEBUG_INFO` record when the object has DWARF line
//! information). The jitdump file is mapped executable once, so that
//! `perf record` sees it; `perf inject --jit` then turns the records into
//! ELF files `perf report` can name and disassemble.
//!
//! Nothing is ever removed: a body that was replaced (tier-up,
//! redefinition) keeps its name in the profile, and its address range may
//! be named again by newer code (perf takes the newest load).
//!
//! The files are written under one process-wide lock; a failure to
//! create them is reported once on stderr and turns the feature off.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::link::{LinkError, LinkPlugin, LinkView, PluginState};

/// Writes the perf map and the jitdump file for every linked object's
/// functions. See the module docs.
#[derive(Clone, Copy, Debug)]
pub struct PerfPlugin {
    map: bool,
    jitdump: bool,
}

impl Default for PerfPlugin {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfPlugin {
    /// Writes both the perf map and the jitdump file.
    pub fn new() -> Self {
        PerfPlugin {
            map: true,
            jitdump: true,
        }
    }

    /// Writes the perf map only (enough for `perf report` to name code,
    /// without `perf inject`).
    pub fn map_only() -> Self {
        PerfPlugin {
            map: true,
            jitdump: false,
        }
    }
}

/// `/tmp/perf-PID.map`, where perf looks for the names of anonymous code.
pub fn perf_map_path() -> PathBuf {
    PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()))
}

/// `$JITDUMPDIR/jit-PID.dump` (`/tmp` without `JITDUMPDIR`), the jitdump
/// file of this process.
pub fn jitdump_path() -> PathBuf {
    let dir = std::env::var_os("JITDUMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    dir.join(format!("jit-{}.dump", std::process::id()))
}

const JITDUMP_MAGIC: u32 = 0x4A69_5444;
const JITDUMP_VERSION: u32 = 1;
const JIT_CODE_LOAD: u32 = 0;
const JIT_CODE_DEBUG_INFO: u32 = 2;

/// The open files; `None` once creating one failed. What is written goes
/// to a buffer first, written out when it holds [`FLUSH_AT`] bytes, at
/// process exit ([`flush`], registered with `atexit`) and whenever the
/// embedder calls [`flush`] (the `orc` tool does before every exit,
/// `_exit` included): one write per link cost about 4 us a function.
struct Files {
    map: Option<Option<File>>,
    dump: Option<Option<JitDump>>,
    code_index: u64,
    map_buf: Vec<u8>,
    dump_buf: Vec<u8>,
}

/// How much is buffered before it is written out.
const FLUSH_AT: usize = 256 << 10;

impl Files {
    fn flush(&mut self) {
        if let (Some(Some(map)), false) = (&mut self.map, self.map_buf.is_empty()) {
            if let Err(e) = map.write_all(&self.map_buf) {
                warn_once("writing the perf map", &e);
            }
        }
        self.map_buf.clear();
        if let (Some(Some(dump)), false) = (&mut self.dump, self.dump_buf.is_empty()) {
            if let Err(e) = dump.file.write_all(&self.dump_buf) {
                warn_once("writing the jitdump file", &e);
            }
        }
        self.dump_buf.clear();
    }

    fn flush_if_full(&mut self) {
        if self.map_buf.len() + self.dump_buf.len() >= FLUSH_AT {
            self.flush();
        }
    }
}

/// Writes out what the perf map and jitdump file have buffered. Call it
/// before ending the process with `_exit` (a normal exit flushes by
/// itself); what a crash leaves unwritten is lost.
pub fn flush() {
    if let Some(files) = FILES.get() {
        files.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

extern "C" fn flush_at_exit() {
    flush();
}

struct JitDump {
    file: File,
    /// The executable mapping of the file's first page, kept for the life
    /// of the process (perf records the mapping, never reads it).
    _marker: *mut libc::c_void,
}

// SAFETY: the marker mapping is never accessed, only kept mapped.
unsafe impl Send for JitDump {}

static FILES: OnceLock<Mutex<Files>> = OnceLock::new();

fn files() -> &'static Mutex<Files> {
    FILES.get_or_init(|| {
        // SAFETY: registers a plain function with no preconditions, which
        // only takes the files' lock.
        unsafe {
            libc::atexit(flush_at_exit);
        }
        Mutex::new(Files {
            map: None,
            dump: None,
            code_index: 0,
            map_buf: Vec::new(),
            dump_buf: Vec::new(),
        })
    })
}

fn timestamp() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// This thread's id (asked of the kernel once per thread).
fn thread_id() -> u32 {
    thread_local! {
        // SAFETY: gettid has no preconditions.
        static TID: u32 = (unsafe { libc::syscall(libc::SYS_gettid) }) as u32;
    }
    TID.with(|t| *t)
}

/// This process's id (asked once: each `getpid` is a system call).
fn process_id() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Whether an object may carry DWARF line tables: its section names hold
/// `.debug_line` (a byte search, far cheaper than parsing the object for
/// the common case of JIT'd code without debug information).
fn may_have_lines(object: &[u8]) -> bool {
    object.windows(11).any(|w| w == b".debug_line")
}

fn warn_once(what: &str, e: &std::io::Error) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("orc: perf support: {what}: {e}");
    }
}

fn open_map() -> Option<File> {
    let path = perf_map_path();
    // Opened once per process: what a process with the same id left is
    // dropped.
    match std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
    {
        Ok(f) => Some(f),
        Err(e) => {
            warn_once(&format!("cannot open {}", path.display()), &e);
            None
        }
    }
}

fn open_dump() -> Option<JitDump> {
    let path = jitdump_path();
    let open = || -> std::io::Result<JitDump> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        let mut header = Vec::with_capacity(40);
        header.extend_from_slice(&JITDUMP_MAGIC.to_le_bytes());
        header.extend_from_slice(&JITDUMP_VERSION.to_le_bytes());
        header.extend_from_slice(&40u32.to_le_bytes());
        header.extend_from_slice(&u32::from(object::elf::EM_X86_64).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&std::process::id().to_le_bytes());
        header.extend_from_slice(&timestamp().to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes());
        file.write_all(&header)?;
        use std::os::fd::AsRawFd;
        // SAFETY: maps one page of a file we opened read-write, private and
        // not writable: nothing is ever executed or read through it; perf
        // records the executable mapping of a `jit-PID.dump` file as the
        // marker that the process writes jitdump records.
        let marker = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                crate::memory::page_size(),
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if marker == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(JitDump {
            file,
            _marker: marker,
        })
    };
    match open() {
        Ok(d) => Some(d),
        Err(e) => {
            warn_once(&format!("cannot create {}", path.display()), &e);
            None
        }
    }
}

impl LinkPlugin for PerfPlugin {
    fn name(&self) -> &str {
        "perf"
    }

    fn emitted(&self, view: &LinkView<'_>) -> Result<Option<PluginState>, LinkError> {
        let functions = view.functions();
        if functions.is_empty() {
            return Ok(None);
        }
        let lines = if self.jitdump && may_have_lines(view.object_bytes()) {
            super::lines::line_table(view)
        } else {
            Vec::new()
        };
        let mut guard = files().lock().unwrap_or_else(|e| e.into_inner());
        let files = &mut *guard;
        if self.map {
            if let Some(map) = files.map.get_or_insert_with(open_map) {
                let mut text = String::new();
                for (f, range) in &functions {
                    text.push_str(&format!(
                        "{:x} {:x} {}\n",
                        range.start,
                        range.end - range.start,
                        f.name
                    ));
                }
                let _ = map;
                files.map_buf.extend_from_slice(text.as_bytes());
            }
        }
        if self.jitdump {
            let index = &mut files.code_index;
            if let Some(dump) = files.dump.get_or_insert_with(open_dump) {
                let pid = process_id();
                let tid = thread_id();
                let now = timestamp();
                let mut records = Vec::new();
                for (f, range) in &functions {
                    let size = (range.end - range.start) as usize;
                    let Some(code) = view.bytes_at(range.start, size) else {
                        continue;
                    };
                    let entries: Vec<&super::lines::LineRow> =
                        lines.iter().filter(|l| range.contains(&l.addr)).collect();
                    if !entries.is_empty() {
                        let mut body = Vec::new();
                        body.extend_from_slice(&range.start.to_le_bytes());
                        body.extend_from_slice(&(entries.len() as u64).to_le_bytes());
                        for e in entries {
                            body.extend_from_slice(&e.addr.to_le_bytes());
                            body.extend_from_slice(&e.line.to_le_bytes());
                            body.extend_from_slice(&0u32.to_le_bytes());
                            body.extend_from_slice(e.file.as_bytes());
                            body.push(0);
                        }
                        record(&mut records, JIT_CODE_DEBUG_INFO, now, &body);
                    }
                    let mut body = Vec::with_capacity(40 + f.name.len() + 1 + size);
                    body.extend_from_slice(&pid.to_le_bytes());
                    body.extend_from_slice(&tid.to_le_bytes());
                    body.extend_from_slice(&range.start.to_le_bytes());
                    body.extend_from_slice(&range.start.to_le_bytes());
                    body.extend_from_slice(&(size as u64).to_le_bytes());
                    body.extend_from_slice(&index.to_le_bytes());
                    *index += 1;
                    body.extend_from_slice(f.name.as_bytes());
                    body.push(0);
                    body.extend_from_slice(code);
                    record(&mut records, JIT_CODE_LOAD, now, &body);
                }
                let _ = dump;
                files.dump_buf.extend_from_slice(&records);
            }
        }
        files.flush_if_full();
        Ok(None)
    }
}

/// Appends `(name, address, size)` lines to the perf map for code that is
/// not a linked object (stubs).
pub fn perf_map_add(symbols: &[(String, u64, u64)]) {
    let mut text = String::new();
    for (name, addr, size) in symbols {
        text.push_str(&format!("{addr:x} {size:x} {name}\n"));
    }
    let mut guard = files().lock().unwrap_or_else(|e| e.into_inner());
    if guard.map.get_or_insert_with(open_map).is_some() {
        guard.map_buf.extend_from_slice(text.as_bytes());
        guard.flush_if_full();
    }
}

/// Appends a record: id, total size, timestamp, body.
fn record(out: &mut Vec<u8>, id: u32, timestamp: u64, body: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&((16 + body.len()) as u32).to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(body);
}
