//! The executor's side: serves one controller's connection.
//!
//! Memory the controller asks for is reserved with `mmap` (read-write),
//! and every later request is checked against the reservations of its
//! connection: a write must fall in read-write pages, a protection change
//! in whole pages of one reservation, a run in executable pages. Pages are
//! never writable and executable at once. What a connection reserved is
//! unmapped when it ends.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::protocol::{
    decode, encode, read_frame, write_frame, Call, Hello, HelloReply, Protection, Reply, Request,
    Response, Welcome, MAGIC, PROTOCOL_VERSION,
};

/// One `mmap`ed reservation and the protection of each of its pages.
struct Reservation {
    size: u64,
    pages: Vec<Protection>,
}

/// A connection's memory.
struct Memory {
    page: u64,
    /// By start address.
    reservations: BTreeMap<u64, Reservation>,
}

impl Memory {
    fn new() -> Memory {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Memory {
            page: u64::try_from(page).unwrap_or(4096).max(1),
            reservations: BTreeMap::new(),
        }
    }

    /// The reservation holding all of `addr..addr + len`, with its start.
    fn find(&self, addr: u64, len: u64) -> Result<(u64, &Reservation), String> {
        let end = addr
            .checked_add(len)
            .ok_or_else(|| format!("range {addr:#x}+{len:#x} overflows"))?;
        let (&start, r) = self
            .reservations
            .range(..=addr)
            .next_back()
            .ok_or_else(|| format!("{addr:#x} is not in memory this connection reserved"))?;
        if end > start + r.size {
            return Err(format!(
                "{addr:#x}..{end:#x} is not inside the reservation at {start:#x} ({} bytes)",
                r.size
            ));
        }
        Ok((start, r))
    }

    /// The page indices of `addr..addr + len` in the reservation at `start`.
    fn pages(&self, start: u64, addr: u64, len: u64) -> std::ops::Range<usize> {
        let first = (addr - start) / self.page;
        let last = (addr - start + len.max(1)).div_ceil(self.page);
        first as usize..last as usize
    }

    fn reserve(&mut self, size: u64) -> Result<u64, String> {
        if size == 0 || size > (1 << 40) {
            return Err(format!("cannot reserve {size} bytes"));
        }
        let size = size.div_ceil(self.page) * self.page;
        // SAFETY: a fresh anonymous private mapping; no existing memory is
        // affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mmap of {size} bytes failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let addr = ptr as u64;
        let pages = vec![Protection::ReadWrite; (size / self.page) as usize];
        self.reservations.insert(addr, Reservation { size, pages });
        Ok(addr)
    }

    fn release(&mut self, addr: u64) -> Result<(), String> {
        let r = self
            .reservations
            .remove(&addr)
            .ok_or_else(|| format!("no reservation starts at {addr:#x}"))?;
        // SAFETY: the mapping was made by `reserve` with this address and
        // size, and is no longer recorded, so nothing refers to it.
        unsafe { libc::munmap(addr as *mut libc::c_void, r.size as usize) };
        Ok(())
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), String> {
        let (start, r) = self.find(addr, bytes.len() as u64)?;
        if bytes.is_empty() {
            return Ok(());
        }
        let pages = self.pages(start, addr, bytes.len() as u64);
        if r.pages[pages].iter().any(|p| *p != Protection::ReadWrite) {
            return Err(format!("{addr:#x}: the pages are not writable"));
        }
        // SAFETY: the destination lies inside a live read-write mapping of
        // this connection (checked above), which no Rust reference covers.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len());
        }
        Ok(())
    }

    fn read(&self, addr: u64, len: u64) -> Result<Vec<u8>, String> {
        self.find(addr, len)?;
        if len > u64::from(crate::protocol::MAX_FRAME) / 2 {
            return Err(format!("cannot read {len} bytes at once"));
        }
        let mut out = vec![0u8; len as usize];
        // SAFETY: the source lies inside a live mapping of this connection,
        // readable in every protection it can have.
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, out.as_mut_ptr(), out.len()) };
        Ok(out)
    }

    fn protect(&mut self, addr: u64, size: u64, protection: Protection) -> Result<(), String> {
        if addr % self.page != 0 {
            return Err(format!("{addr:#x} is not page-aligned"));
        }
        let (start, _) = self.find(addr, size)?;
        let size = size.div_ceil(self.page) * self.page;
        let pages = self.pages(start, addr, size);
        let prot = match protection {
            Protection::Read => libc::PROT_READ,
            Protection::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
            Protection::ReadExecute => libc::PROT_READ | libc::PROT_EXEC,
        };
        // SAFETY: whole pages of one live mapping of this connection.
        let rc = unsafe { libc::mprotect(addr as *mut libc::c_void, size as usize, prot) };
        if rc != 0 {
            return Err(format!(
                "mprotect failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        if let Some(r) = self.reservations.get_mut(&start) {
            for p in &mut r.pages[pages] {
                *p = protection;
            }
        }
        Ok(())
    }

    fn check_executable(&self, addr: u64) -> Result<(), String> {
        let (start, r) = self.find(addr, 1)?;
        let page = ((addr - start) / self.page) as usize;
        if r.pages[page] != Protection::ReadExecute {
            return Err(format!("{addr:#x} is not in executable memory"));
        }
        Ok(())
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        for (&addr, r) in &self.reservations {
            // SAFETY: each recorded mapping is live and owned by this
            // connection, which is ending.
            unsafe { libc::munmap(addr as *mut libc::c_void, r.size as usize) };
        }
    }
}

/// Calls `addr` with `args` as `extern "C" fn(u64 x6) -> u64`.
///
/// # Safety
///
/// `addr` is executable code of the connection's, which the controller
/// linked as a function taking up to six integer arguments.
unsafe fn call(addr: u64, args: &[u64]) -> u64 {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    // SAFETY: per the function's contract; extra arguments in registers
    // are ignored by a callee taking fewer.
    unsafe {
        let f: extern "C" fn(u64, u64, u64, u64, u64, u64) -> u64 = std::mem::transmute(addr);
        f(a[0], a[1], a[2], a[3], a[4], a[5])
    }
}

pub(crate) fn c_string(s: &str) -> Result<std::ffi::CString, String> {
    std::ffi::CString::new(s).map_err(|_| format!("'{s}' contains a NUL byte"))
}

pub(crate) fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until
    // the next dl call on this thread.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".to_owned()
        } else {
            std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

fn perform(memory: &mut Memory, call_: Call) -> Result<Reply, String> {
    match call_ {
        Call::Ping => Ok(Reply::Done),
        Call::Reserve { size } => memory.reserve(size).map(Reply::Address),
        Call::Release { addr } => memory.release(addr).map(|()| Reply::Done),
        Call::Write { addr, bytes } => memory.write(addr, &bytes).map(|()| Reply::Done),
        Call::Read { addr, len } => memory.read(addr, len).map(Reply::Bytes),
        Call::Protect {
            addr,
            size,
            protection,
        } => memory.protect(addr, size, protection).map(|()| Reply::Done),
        Call::Run { addr, args } => {
            if args.len() > 6 {
                return Err(format!("{} arguments: at most 6 are passed", args.len()));
            }
            memory.check_executable(addr)?;
            // SAFETY: executable memory this connection's controller wrote
            // and protected; running its code is the executor's purpose
            // (and a crash in it ends only this process).
            Ok(Reply::Value(unsafe { call(addr, &args) }))
        }
        Call::LookupSymbols { library, names } => lookup_symbols(library.as_deref(), &names),
        Call::RunTyped {
            addr,
            ints,
            floats,
            ret,
        } => {
            memory.check_executable(addr)?;
            // SAFETY: as for Run: code this connection's controller wrote
            // and made executable, called as it says it takes.
            let v = unsafe { orc_core::remote::call_here(addr, &ints, &floats, ret_kind(ret)) }?;
            Ok(Reply::Value(v))
        }
        Call::RegisterFrames { .. }
        | Call::DeregisterFrames { .. }
        | Call::RunMain { .. }
        | Call::MapArenas { .. }
        | Call::ProtectMany { .. }
        | Call::Exit { .. } => Err("only a JIT executor (orc executor) serves this call".into()),
        Call::Lookup { name } => {
            let c = c_string(&name)?;
            // SAFETY: a valid C string; RTLD_DEFAULT searches the process.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
            Ok(Reply::Symbol((!p.is_null()).then_some(p as u64)))
        }
        Call::LoadLibrary { path } => {
            let c = c_string(&path)?;
            // SAFETY: a valid C string; the library's initializers run, as
            // loading it asks.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if h.is_null() {
                Err(format!("cannot load '{path}': {}", dl_error()))
            } else {
                Ok(Reply::Done)
            }
        }
    }
}

/// The protocol's return kind as the core's.
pub(crate) fn ret_kind(ret: crate::protocol::RetKind) -> orc_core::remote::RetKind {
    match ret {
        crate::protocol::RetKind::Void => orc_core::remote::RetKind::Void,
        crate::protocol::RetKind::Int => orc_core::remote::RetKind::Int,
        crate::protocol::RetKind::F64 => orc_core::remote::RetKind::F64,
    }
}

/// `dlsym` of each name in `library` (loaded with global visibility first;
/// `dlopen` counts references, so repeated loads are cheap) or the process.
pub(crate) fn lookup_symbols(library: Option<&str>, names: &[String]) -> Result<Reply, String> {
    let handle = match library {
        None => libc::RTLD_DEFAULT,
        Some(path) => {
            let c = c_string(path)?;
            // SAFETY: a valid C string; the library's initializers run, as
            // loading it asks.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if h.is_null() {
                return Err(format!("cannot load '{path}': {}", dl_error()));
            }
            h
        }
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let Ok(c) = c_string(name) else {
            out.push(None);
            continue;
        };
        // SAFETY: a valid C string and a handle from dlopen (or the
        // process's pseudo-handle); the result is only an address.
        let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
        out.push((!p.is_null()).then_some(p as u64));
    }
    Ok(Reply::Symbols(out))
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// Why a connection ended early.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The first frame was not a valid hello.
    BadHello(String),
    /// Another protocol version.
    Version(u32),
    /// The secret did not match.
    Secret,
    /// The stream failed or sent an oversized frame.
    Stream(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BadHello(e) => write!(f, "not an orc controller: {e}"),
            Refusal::Version(v) => write!(
                f,
                "protocol version {v}, this executor speaks {PROTOCOL_VERSION}"
            ),
            Refusal::Secret => f.write_str("wrong secret"),
            Refusal::Stream(e) => write!(f, "{e}"),
        }
    }
}

/// Serves one controller on `stream` until it closes the connection.
/// `secret`, when given, must be the hello's. Returns why the connection
/// was refused or broken, if it was.
pub fn serve(stream: &mut (impl Read + Write), secret: Option<&[u8]>) -> Result<(), Refusal> {
    let stream_err = |e: std::io::Error| Refusal::Stream(e.to_string());
    let refuse = |stream: &mut dyn Write, r: Refusal| {
        if let Ok(bytes) = encode(&HelloReply::Refused(r.to_string())) {
            let _ = write_frame(stream, &bytes);
        }
        Err(r)
    };
    let Some(first) = read_frame(stream).map_err(stream_err)? else {
        return Ok(());
    };
    let hello: Hello = match decode(&first) {
        Ok(h) => h,
        Err(e) => return refuse(stream, Refusal::BadHello(e)),
    };
    if hello.magic != MAGIC {
        return refuse(
            stream,
            Refusal::BadHello(format!("magic '{}'", hello.magic)),
        );
    }
    if hello.version != PROTOCOL_VERSION {
        return refuse(stream, Refusal::Version(hello.version));
    }
    if let Some(secret) = secret {
        if !same_secret(secret, &hello.secret) {
            return refuse(stream, Refusal::Secret);
        }
    }
    let mut memory = Memory::new();
    let welcome = HelloReply::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        pid: std::process::id(),
        page_size: memory.page,
        triple: format!("{}-unknown-linux-gnu", std::env::consts::ARCH),
        marker: crate::image_marker as *const () as usize as u64,
    });
    let bytes = encode(&welcome).map_err(Refusal::Stream)?;
    write_frame(stream, &bytes).map_err(stream_err)?;
    loop {
        let frame = match read_frame(stream) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => {
                let reply = Response {
                    id: 0,
                    result: Err(e.to_string()),
                };
                if let Ok(bytes) = encode(&reply) {
                    let _ = write_frame(stream, &bytes);
                }
                return Err(Refusal::Stream(e.to_string()));
            }
        };
        let response = match decode::<Request>(&frame) {
            Ok(req) => Response {
                id: req.id,
                result: perform(&mut memory, req.call),
            },
            Err(e) => Response {
                id: 0,
                result: Err(e),
            },
        };
        let bytes = encode(&response).map_err(Refusal::Stream)?;
        write_frame(stream, &bytes).map_err(stream_err)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
        assert!(!same_secret(b"", b"a"));
        assert!(same_secret(b"", b""));
    }

    #[test]
    fn requests_are_checked_against_the_reservations() {
        let mut m = Memory::new();
        let a = m.reserve(100).unwrap();
        assert!(m.write(a, &[1, 2, 3]).is_ok());
        assert_eq!(m.read(a, 3).unwrap(), vec![1, 2, 3]);
        assert!(m.write(a + m.page - 1, &[0, 0]).is_err(), "past the end");
        assert!(m.write(0x1000, &[1]).is_err(), "not ours");
        assert!(m.read(u64::MAX - 1, 4).is_err(), "overflow");
        assert!(m.check_executable(a).is_err());
        m.protect(a, 1, Protection::ReadExecute).unwrap();
        assert!(m.write(a, &[1]).is_err(), "never W+X");
        assert!(m.check_executable(a).is_ok());
        assert!(m.protect(a + 1, 1, Protection::Read).is_err(), "unaligned");
        m.release(a).unwrap();
        assert!(m.release(a).is_err());
        assert!(m.reserve(0).is_err());
    }
}
