//! `orc-executor`: serves an orc controller.
//!
//! ```text
//! orc-executor --stdio                 # over stdin/stdout (a controller's child)
//! orc-executor --listen [ADDR]         # over TCP, 127.0.0.1:0 by default;
//!                                      # the secret from ORC_EXECUTOR_SECRET
//!                                      # or --secret-file FILE
//! ```
//!
//! With `--listen`, the first line on stdout is `listening on ADDR`.

use std::io::Write;
use std::net::TcpListener;

fn usage() -> ! {
    eprintln!("usage: orc-executor --stdio | --listen [ADDR] [--secret-file FILE]");
    std::process::exit(64)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--stdio") => stdio(),
        Some("--listen") => {
            let mut addr = "127.0.0.1:0".to_owned();
            let mut secret_file = None;
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--secret-file" => secret_file = Some(rest.next().unwrap_or_else(|| usage())),
                    other if !other.starts_with('-') => addr = other.to_owned(),
                    _ => usage(),
                }
            }
            let secret = match secret_file {
                Some(f) => std::fs::read(f).unwrap_or_else(|e| {
                    eprintln!("orc-executor: cannot read the secret file {f}: {e}");
                    std::process::exit(66)
                }),
                None => std::env::var("ORC_EXECUTOR_SECRET")
                    .map(String::into_bytes)
                    .unwrap_or_default(),
            };
            let secret: Vec<u8> = secret.trim_ascii().to_vec();
            if secret.len() < 16 {
                eprintln!(
                    "orc-executor: a TCP executor needs a secret of at least 16 bytes \
                     (ORC_EXECUTOR_SECRET or --secret-file)"
                );
                std::process::exit(64)
            }
            listen(&addr, secret)
        }
        _ => usage(),
    }
}

fn stdio() {
    // The controller's child: dies with it (no orphans), and a closed
    // stdin ends it too.
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let mut stream = Stdio(std::io::stdin().lock(), std::io::stdout().lock());
    if let Err(e) = orc_executor::server::serve(&mut stream, None) {
        eprintln!("orc-executor: {e}");
        std::process::exit(1)
    }
}

/// Standard input and output as one stream.
struct Stdio<R, W>(R, W);

impl<R: std::io::Read, W> std::io::Read for Stdio<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R, W: Write> Write for Stdio<R, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.1.flush()
    }
}

fn listen(addr: &str, secret: Vec<u8>) {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("orc-executor: cannot listen on {addr}: {e}");
        std::process::exit(69)
    });
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("listening on {local}");
    let _ = std::io::stdout().flush();
    let secret = std::sync::Arc::new(secret);
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let peer = conn
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        let secret = secret.clone();
        // One thread per connection: a stalled or hostile peer holds up
        // no one else.
        std::thread::spawn(
            move || match orc_executor::server::serve(&mut conn, Some(&secret)) {
                Ok(()) => eprintln!("orc-executor: {peer}: done"),
                Err(e) => eprintln!("orc-executor: refused {peer}: {e}"),
            },
        );
    }
}
