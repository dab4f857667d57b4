//! The wire protocol between a controller (the JIT) and an executor (the
//! process the JIT'd code runs in).
//!
//! A connection carries frames: a 4-byte little-endian length, then that
//! many bytes of a [postcard](https://docs.rs/postcard)-encoded message.
//! The first frame from the controller is a [`Hello`] naming the protocol
//! version and, over TCP, the session's secret; the executor answers with
//! a [`Welcome`] or refuses ([`HelloReply::Refused`]) and closes. After
//! that the controller sends [`Request`]s and the executor answers each
//! with a [`Response`] of the same id, in order.
//!
//! Frames longer than [`MAX_FRAME`] are refused before they are read; a
//! frame that does not decode gets an error reply (and, before the
//! handshake, the connection is closed). Nothing a peer sends can make
//! the executor panic: every address a request names must lie in memory
//! the executor reserved for this connection.

use serde::{Deserialize, Serialize};

/// The protocol's version. A controller and an executor of different
/// versions refuse each other at the handshake.
pub const PROTOCOL_VERSION: u32 = 5;

/// The magic the [`Hello`] starts with.
pub const MAGIC: &str = "orc-executor";

/// The largest frame either side accepts (64 MiB: a large object's bytes).
pub const MAX_FRAME: u32 = 64 << 20;

/// The controller's first message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`MAGIC`].
    pub magic: String,
    /// [`PROTOCOL_VERSION`] of the controller.
    pub version: u32,
    /// The session's secret (empty over a pipe, where the executor is the
    /// controller's own child).
    pub secret: Vec<u8>,
}

/// What the executor says about itself when it accepts a controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// [`PROTOCOL_VERSION`] of the executor.
    pub version: u32,
    /// The executor's process id.
    pub pid: u32,
    /// Its page size.
    pub page_size: u64,
    /// Its target triple (`x86_64-unknown-linux-gnu`).
    pub triple: String,
    /// The address of [`crate::image_marker`] in the executor: a JIT
    /// executor must be the controller's own executable loaded at the same
    /// address (its runtime routines are called at the controller's
    /// addresses), which equal markers show.
    pub marker: u64,
}

/// The executor's answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted.
    Welcome(Welcome),
    /// Refused, and why (the connection is closed after it).
    Refused(String),
}

/// Page protections the controller may ask for. Never writable and
/// executable at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protection {
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
    /// Read and execute.
    ReadExecute,
}

/// An operation the controller asks of the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Call {
    /// Nothing: checks the connection (replies [`Reply::Done`]).
    Ping,
    /// Reserves `size` bytes of read-write memory, page-aligned
    /// ([`Reply::Address`]).
    Reserve {
        /// How many bytes.
        size: u64,
    },
    /// Frees a reservation, given by its address.
    Release {
        /// The address [`Call::Reserve`] returned.
        addr: u64,
    },
    /// Copies `bytes` to `addr` (inside one writable reservation).
    Write {
        /// Where.
        addr: u64,
        /// What.
        bytes: Vec<u8>,
    },
    /// Reads `len` bytes at `addr` (inside one reservation)
    /// ([`Reply::Bytes`]).
    Read {
        /// Where.
        addr: u64,
        /// How many.
        len: u64,
    },
    /// Sets the protection of the pages of `addr..addr + size` (inside one
    /// reservation).
    Protect {
        /// Start (page-aligned).
        addr: u64,
        /// Length.
        size: u64,
        /// The new protection.
        protection: Protection,
    },
    /// [`Call::Protect`] for several ranges, in order (JIT executor).
    ProtectMany {
        /// `(addr, size, protection)` of each range.
        ranges: Vec<(u64, u64, Protection)>,
    },
    /// Calls the function at `addr` (inside an executable part of a
    /// reservation) as `extern "C" fn(u64, ..) -> u64` with up to six
    /// integer arguments ([`Reply::Value`]).
    Run {
        /// The function.
        addr: u64,
        /// Its arguments (at most six).
        args: Vec<u64>,
    },
    /// Looks a symbol up in the executor's process (its own and its
    /// libraries' symbols) ([`Reply::Symbol`]).
    Lookup {
        /// The symbol.
        name: String,
    },
    /// Loads a shared library into the executor (`dlopen`).
    LoadLibrary {
        /// Its path or soname.
        path: String,
    },
    /// Looks symbols up in a library (loaded first if it is not yet) or,
    /// without one, in the process ([`Reply::Symbols`]).
    LookupSymbols {
        /// The library's path, or `None` for the whole process.
        library: Option<String>,
        /// The names.
        names: Vec<String>,
    },
    /// Registers a `.eh_frame` section with the unwinder (JIT executor).
    RegisterFrames {
        /// Where the section starts (inside the shared arena).
        addr: u64,
    },
    /// Deregisters a `.eh_frame` section (JIT executor).
    DeregisterFrames {
        /// As registered.
        addr: u64,
    },
    /// Calls the function at `addr` with integer and double arguments (at
    /// most six and eight) ([`Reply::Value`], a double as its bits). In a
    /// JIT executor it runs on the thread named by the request's `thread`.
    RunTyped {
        /// The function.
        addr: u64,
        /// Integer arguments, in order.
        ints: Vec<u64>,
        /// Double arguments, in order.
        floats: Vec<f64>,
        /// How it returns.
        ret: RetKind,
    },
    /// Calls a C `main(argc, argv, envp)` with `args` as its argv and the
    /// executor's environment ([`Reply::Value`]: the status).
    RunMain {
        /// The function.
        addr: u64,
        /// `argv`, the program's name first.
        args: Vec<String>,
    },
    /// Maps a controller's arenas, as `(base, length)`, at the same
    /// addresses (fresh memory, no access until protected): the first
    /// request to a JIT executor that does not share the controller's
    /// memory (over TCP), which then copies what it writes with
    /// [`Call::Write`].
    MapArenas {
        /// `(base, length)` of each arena.
        arenas: Vec<(u64, u64)>,
    },
    /// Ends the executor as C's `exit(status)` does (exit handlers run,
    /// streams are flushed); no reply, the connection closes.
    Exit {
        /// The exit status.
        status: i32,
    },
}

/// How a function returns its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetKind {
    /// Nothing.
    Void,
    /// In `rax`.
    Int,
    /// A double in `xmm0`.
    F64,
}

/// One request: a call and the id its response carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the controller; echoed in the response.
    pub id: u64,
    /// What to do.
    pub call: Call,
    /// For a run in a JIT executor: the callback whose thread runs it (a
    /// run the controller makes while handling that callback, such as a
    /// new object's initializer), or `None` for the executor's main thread.
    pub thread: Option<u64>,
    /// Whether the controller waits for the response. A JIT executor
    /// answers a posted request (`false`: a page protection or an unwind
    /// registration the controller does not wait for) only if it fails;
    /// it performs requests in order, so a later run sees its effect.
    pub reply: bool,
}

/// A successful call's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Done, nothing to return.
    Done,
    /// An address (of a reservation).
    Address(u64),
    /// Bytes read.
    Bytes(Vec<u8>),
    /// A function's result.
    Value(u64),
    /// A symbol's address, if the process has it.
    Symbol(Option<u64>),
    /// Each symbol's address, if it has one.
    Symbols(Vec<Option<u64>>),
}

/// The executor's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id (0 for a frame that did not decode).
    pub id: u64,
    /// The result, or what went wrong.
    pub result: Result<Reply, String>,
}

/// A frame from the controller to a JIT executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToExecutor {
    /// A request, answered by a [`ToController::Response`].
    Request(Request),
    /// The answer to a [`ToController::Callback`] of the same id.
    Answer {
        /// The callback's id.
        id: u64,
        /// What the controller's handler returned.
        result: Result<Answer, String>,
    },
    /// A run on a JIT executor's call channel (a second socket, on which
    /// a run and the callbacks of its code are one conversation between a
    /// controller thread and the executor thread that runs it), performed
    /// once the executor has performed `after` posted requests: they came
    /// on the connection, which the channel can overtake.
    Run {
        /// Posted requests to perform first.
        after: u64,
        /// The run (`thread` is not used).
        request: Request,
    },
}

/// A frame from a JIT executor to the controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToController {
    /// The response to a request.
    Response(Response),
    /// A tiering counter tripped (no answer: the code went on); its
    /// counts are in the counter's cell, which the controller shares.
    Trip {
        /// The tier manager.
        context: u64,
        /// The counter.
        counter: u64,
        /// The CPU the tripping thread ran on (which goes on running: the
        /// controller's compile threads keep off it).
        cpu: u32,
    },
    /// The program called `exit` with this status; the executor ends
    /// next (how a controller learns the status of an executor that is not
    /// its child).
    Exited {
        /// The status.
        status: i32,
    },
    /// The executor's session ended with this signal (sent, over TCP,
    /// by the process that watched it).
    Crashed {
        /// The signal's number.
        signal: i32,
    },
    /// A runtime routine of JIT'd code needs the controller; the calling
    /// thread waits for the [`ToExecutor::Answer`].
    Callback {
        /// Chosen by the executor.
        id: u64,
        /// What is asked.
        callback: Callback,
    },
}

/// What JIT'd code asks of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Callback {
    /// A lazy call reached its trampoline ([`Answer::Value`]: where it
    /// continues).
    Reenter {
        /// The call-through manager.
        ctx: u64,
        /// The trampoline's return address.
        ret: u64,
    },
    /// A tiering counter's first trip, when its manager promotes in place
    /// (`orc_core::remote::trip_waits`): [`Answer::Done`] once the
    /// controller has acted on it, after the tier-1 compile, as in
    /// process. Every other trip is a one-way report
    /// ([`ToController::Trip`]).
    Trip {
        /// The tier manager.
        context: u64,
        /// The counter.
        counter: u64,
    },
    /// A thread-local module's template ([`Answer::Module`]).
    TlsModule {
        /// The module id.
        module: u64,
    },
}

/// The controller's answer to a [`Callback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// Nothing to return.
    Done,
    /// An address.
    Value(u64),
    /// `{template, init_len, size, align}`, if the module exists.
    Module(Option<[u64; 4]>),
}

/// Encodes a message.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(message).map_err(|e| format!("cannot encode a message: {e}"))
}

/// Decodes a message.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("malformed message: {e}"))
}

/// Writes one frame.
pub fn write_frame(w: &mut (impl std::io::Write + ?Sized), payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("frame too large"))?;
    // One write: a reader woken by the length alone would sleep again
    // for the payload.
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl std::io::Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {MAX_FRAME}"),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let req = Request {
            id: 7,
            call: Call::Write {
                addr: 0x1000,
                bytes: vec![1, 2, 3],
            },
            thread: None,
            reply: true,
        };
        let bytes = encode(&req).unwrap();
        assert_eq!(decode::<Request>(&bytes).unwrap(), req);
        assert!(decode::<Request>(&[0xff; 9]).is_err());
        assert!(decode::<Hello>(b"").is_err());
    }

    #[test]
    fn frames_round_trip_and_oversized_frames_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let huge = (MAX_FRAME + 1).to_le_bytes();
        assert!(read_frame(&mut &huge[..]).is_err());
    }
}
