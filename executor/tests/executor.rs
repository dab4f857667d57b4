//! The executor over TCP and over a pipe: a controller with the secret
//! runs code; one without it, one speaking another version and one
//! sending garbage are refused while the executor keeps serving; a crash
//! of the JIT'd code ends only the executor.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use orc_executor::protocol::{
    decode, encode, read_frame, write_frame, Call, Hello, HelloReply, Protection, Reply, Request,
    Response, MAGIC,
};
use orc_executor::{Executor, ExecutorError};

const EXE: &str = env!("CARGO_BIN_EXE_orc-executor");

/// `mov rax, rdi; add rax, rsi; ret`
const ADD: [u8; 7] = [0x48, 0x89, 0xf8, 0x48, 0x01, 0xf0, 0xc3];
/// `ud2`
const CRASH: [u8; 2] = [0x0f, 0x0b];

fn secret() -> String {
    format!(
        "{:032x}",
        std::process::id() as u128 * 0x9e37_79b9_7f4a_7c15
    )
}

/// An executor listening on the loopback address, and its address.
fn listen(secret: &str) -> (Child, String) {
    let mut child = Command::new(EXE)
        .arg("--listen")
        .env("ORC_EXECUTOR_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    (child, addr)
}

/// Loads `code` into fresh executable memory; returns its address.
fn load<S: Read + Write>(ex: &mut Executor<S>, code: &[u8]) -> u64 {
    let Reply::Address(addr) = ex.call(Call::Reserve { size: 4096 }).unwrap() else {
        panic!("no address")
    };
    ex.call(Call::Write {
        addr,
        bytes: code.to_vec(),
    })
    .unwrap();
    ex.call(Call::Protect {
        addr,
        size: 4096,
        protection: Protection::ReadExecute,
    })
    .unwrap();
    addr
}

fn run_add<S: Read + Write>(ex: &mut Executor<S>) {
    let addr = load(ex, &ADD);
    assert_eq!(
        ex.call(Call::Run {
            addr,
            args: vec![40, 2]
        }),
        Ok(Reply::Value(42))
    );
    // Never writable and executable at once; the connection goes on.
    let err = ex
        .call(Call::Write {
            addr,
            bytes: vec![0x90],
        })
        .unwrap_err();
    assert!(
        matches!(&err, ExecutorError::Call(m) if m.contains("not writable")),
        "{err}"
    );
    // Addresses outside what this connection reserved are refused.
    let err = ex
        .call(Call::Run {
            addr: 0x1000,
            args: vec![],
        })
        .unwrap_err();
    assert!(
        matches!(&err, ExecutorError::Call(m) if m.contains("not in memory")),
        "{err}"
    );
    assert_eq!(ex.call(Call::Ping), Ok(Reply::Done));
}

#[test]
fn a_tcp_executor_serves_its_controller_and_refuses_the_rest() {
    let secret = secret();
    let (mut child, addr) = listen(&secret);

    let mut ex =
        Executor::handshake(TcpStream::connect(&addr).unwrap(), secret.as_bytes()).unwrap();
    assert_eq!(ex.welcome().pid, child.id());
    run_add(&mut ex);
    let Ok(Reply::Symbol(Some(_))) = ex.call(Call::Lookup {
        name: "malloc".into(),
    }) else {
        panic!("malloc not found")
    };
    assert_eq!(
        ex.call(Call::Lookup {
            name: "no_such_symbol_orc".into()
        }),
        Ok(Reply::Symbol(None))
    );

    // No secret, a wrong one: refused.
    for wrong in [&b""[..], b"0123456789abcdef0123456789abcdef"] {
        let r = Executor::handshake(TcpStream::connect(&addr).unwrap(), wrong);
        assert!(
            matches!(&r, Err(ExecutorError::Refused(m)) if m.contains("wrong secret")),
            "{:?}",
            r.err()
        );
    }
    // Another protocol version: refused, saying so.
    let mut raw = TcpStream::connect(&addr).unwrap();
    let hello = Hello {
        magic: MAGIC.into(),
        version: 99,
        secret: secret.as_bytes().to_vec(),
    };
    write_frame(&mut raw, &encode(&hello).unwrap()).unwrap();
    let reply: HelloReply = decode(&read_frame(&mut raw).unwrap().unwrap()).unwrap();
    assert!(
        matches!(&reply, HelloReply::Refused(m) if m.contains("version 99")),
        "{reply:?}"
    );
    // Garbage in a frame, and a frame too large to read: refused.
    let mut raw = TcpStream::connect(&addr).unwrap();
    write_frame(&mut raw, &[0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff]).unwrap();
    let reply: HelloReply = decode(&read_frame(&mut raw).unwrap().unwrap()).unwrap();
    assert!(matches!(reply, HelloReply::Refused(_)), "{reply:?}");
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.write_all(&u32::MAX.to_le_bytes()).unwrap();
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    // Garbage after a good handshake: an error reply, and it goes on.
    let mut raw = TcpStream::connect(&addr).unwrap();
    let hello = Hello {
        magic: MAGIC.into(),
        version: orc_executor::protocol::PROTOCOL_VERSION,
        secret: secret.as_bytes().to_vec(),
    };
    write_frame(&mut raw, &encode(&hello).unwrap()).unwrap();
    let reply: HelloReply = decode(&read_frame(&mut raw).unwrap().unwrap()).unwrap();
    assert!(matches!(reply, HelloReply::Welcome(_)), "{reply:?}");
    write_frame(&mut raw, &[0xff; 12]).unwrap();
    let response: Response = decode(&read_frame(&mut raw).unwrap().unwrap()).unwrap();
    assert!(
        matches!(&response.result, Err(m) if m.contains("malformed")),
        "{response:?}"
    );
    let ping = Request {
        id: 5,
        call: Call::Ping,
        thread: None,
        reply: true,
    };
    write_frame(&mut raw, &encode(&ping).unwrap()).unwrap();
    let response: Response = decode(&read_frame(&mut raw).unwrap().unwrap()).unwrap();
    assert_eq!((response.id, response.result), (5, Ok(Reply::Done)));

    // The first controller was never disturbed; new ones are served.
    run_add(&mut ex);
    let mut ex3 =
        Executor::handshake(TcpStream::connect(&addr).unwrap(), secret.as_bytes()).unwrap();
    run_add(&mut ex3);

    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.matches("refused").count() >= 4, "{log}");
    assert!(log.contains("wrong secret"), "{log}");
}

#[test]
fn a_tcp_executor_needs_a_secret() {
    let out = Command::new(EXE)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("ORC_EXECUTOR_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a secret"));
}

/// Standard input and output of a child as one stream.
struct Pipe(std::process::ChildStdout, std::process::ChildStdin);

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.1.flush()
    }
}

#[test]
fn a_child_executor_runs_code_and_a_crash_ends_only_it() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(EXE)
        .arg("--stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = Pipe(child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let mut ex = Executor::handshake(pipe, b"").unwrap();
    run_add(&mut ex);
    let addr = load(&mut ex, &CRASH);
    let err = ex.call(Call::Run { addr, args: vec![] }).unwrap_err();
    assert!(matches!(err, ExecutorError::Connection(_)), "{err}");
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc_sigill()), "{status:?}");
}

fn libc_sigill() -> i32 {
    4
}
