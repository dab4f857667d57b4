//! The controller's side: a connection to an executor.

use std::io::{Read, Write};

use crate::protocol::{
    decode, encode, read_frame, write_frame, Call, Hello, HelloReply, Reply, Request, Response,
    Welcome, MAGIC, PROTOCOL_VERSION,
};

/// What went wrong talking to an executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorError {
    /// The executor refused the connection (wrong secret or version).
    Refused(String),
    /// The connection failed, or the executor died (its crash included).
    Connection(String),
    /// The executor answered with something that is not the protocol.
    Protocol(String),
    /// The call failed in the executor.
    Call(String),
}

impl std::fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecutorError::Refused(why) => write!(f, "the executor refused the connection: {why}"),
            ExecutorError::Connection(e) => write!(f, "executor connection: {e}"),
            ExecutorError::Protocol(e) => write!(f, "executor protocol error: {e}"),
            ExecutorError::Call(e) => write!(f, "executor: {e}"),
        }
    }
}

impl std::error::Error for ExecutorError {}

/// A connected executor: sends [`Call`]s, one at a time.
pub struct Executor<S: Read + Write> {
    stream: S,
    next_id: u64,
    welcome: Welcome,
}

impl<S: Read + Write> Executor<S> {
    /// Performs the handshake on `stream` with `secret` (empty for a pipe
    /// to a child executor).
    pub fn handshake(mut stream: S, secret: &[u8]) -> Result<Self, ExecutorError> {
        let hello = Hello {
            magic: MAGIC.to_owned(),
            version: PROTOCOL_VERSION,
            secret: secret.to_vec(),
        };
        let bytes = encode(&hello).map_err(ExecutorError::Protocol)?;
        write_frame(&mut stream, &bytes).map_err(|e| ExecutorError::Connection(e.to_string()))?;
        let reply = read_frame(&mut stream)
            .map_err(|e| ExecutorError::Connection(e.to_string()))?
            .ok_or_else(|| ExecutorError::Connection("closed during the handshake".into()))?;
        match decode::<HelloReply>(&reply).map_err(ExecutorError::Protocol)? {
            HelloReply::Welcome(welcome) => Ok(Executor {
                stream,
                next_id: 1,
                welcome,
            }),
            HelloReply::Refused(why) => Err(ExecutorError::Refused(why)),
        }
    }

    /// What the executor said about itself.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Performs `call` in the executor.
    pub fn call(&mut self, call: Call) -> Result<Reply, ExecutorError> {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = encode(&Request {
            id,
            call,
            thread: None,
            reply: true,
        })
        .map_err(ExecutorError::Protocol)?;
        let conn = |e: std::io::Error| ExecutorError::Connection(e.to_string());
        write_frame(&mut self.stream, &bytes).map_err(conn)?;
        let frame = read_frame(&mut self.stream).map_err(conn)?.ok_or_else(|| {
            ExecutorError::Connection("the executor closed the connection".into())
        })?;
        let response: Response = decode(&frame).map_err(ExecutorError::Protocol)?;
        if response.id != id {
            return Err(ExecutorError::Protocol(format!(
                "response {} to request {id}",
                response.id
            )));
        }
        response.result.map_err(ExecutorError::Call)
    }
}
