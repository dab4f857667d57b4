//! A bytecode disassembler (clox's `debug.c` format), for `lox --dump` and
//! for developing the JIT lowering.

use std::fmt::Write as _;

use crate::chunk::Op;
use crate::object::{Function, ObjKind, ObjRef};
use crate::value::Value;
use crate::vm::write_value;

fn value_text(v: Value) -> String {
    let mut buf = Vec::new();
    let _ = write_value(&mut buf, v);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Disassembles `function` and, after it, every function in its constants.
pub(crate) fn disassemble(function: ObjRef, out: &mut String) {
    let f = function.as_function();
    let name = match f.name {
        Some(n) => n.as_string().chars.to_string(),
        None => "<script>".to_string(),
    };
    let _ = writeln!(
        out,
        "== {name} == (arity {}, upvalues {}, max_slots {})",
        f.arity, f.upvalue_count, f.max_slots
    );
    let mut offset = 0;
    while offset < f.chunk.code.len() {
        offset = instruction(f, offset, out);
    }
    for &c in &f.chunk.constants {
        if let Some(r) = c.as_obj() {
            if let ObjKind::Function(_) = r.kind() {
                out.push('\n');
                disassemble(r, out);
            }
        }
    }
}

fn instruction(f: &Function, offset: usize, out: &mut String) -> usize {
    let chunk = &f.chunk;
    let code = &chunk.code;
    let byte = |i: usize| code.get(i).copied().unwrap_or(0);
    let _ = write!(out, "{offset:04} ");
    if offset > 0 && chunk.lines[offset] == chunk.lines[offset - 1] {
        out.push_str("   | ");
    } else {
        let _ = write!(out, "{:4} ", chunk.lines[offset]);
    }
    let Some(op) = Op::from_byte(code[offset]) else {
        let _ = writeln!(out, "Unknown opcode {}", code[offset]);
        return offset + 1;
    };
    let name = format!("OP_{}", to_upper_snake(&format!("{op:?}")));
    let constant = |i: usize| {
        chunk
            .constants
            .get(i)
            .map(|&v| value_text(v))
            .unwrap_or_default()
    };
    match op {
        Op::Constant
        | Op::GetProperty
        | Op::SetProperty
        | Op::GetSuper
        | Op::Class
        | Op::Method => {
            let k = byte(offset + 1) as usize;
            let _ = writeln!(out, "{name:<16} {k:4} '{}'", constant(k));
            offset + 2
        }
        Op::GetLocal | Op::SetLocal | Op::GetUpvalue | Op::SetUpvalue | Op::Call => {
            let _ = writeln!(out, "{name:<16} {:4}", byte(offset + 1));
            offset + 2
        }
        Op::GetGlobal | Op::DefineGlobal | Op::SetGlobal => {
            let slot = (byte(offset + 1) as usize) << 8 | byte(offset + 2) as usize;
            let _ = writeln!(out, "{name:<16} {slot:4}");
            offset + 3
        }
        Op::Jump | Op::JumpIfFalse | Op::Loop => {
            let jump = (byte(offset + 1) as usize) << 8 | byte(offset + 2) as usize;
            let target = if op == Op::Loop {
                (offset + 3).wrapping_sub(jump)
            } else {
                offset + 3 + jump
            };
            let _ = writeln!(out, "{name:<16} {offset:4} -> {target}");
            offset + 3
        }
        Op::Invoke | Op::SuperInvoke => {
            let k = byte(offset + 1) as usize;
            let argc = byte(offset + 2);
            let _ = writeln!(out, "{name:<16} ({argc} args) {k:4} '{}'", constant(k));
            offset + 3
        }
        Op::Closure => {
            let k = byte(offset + 1) as usize;
            let _ = writeln!(out, "{name:<16} {k:4} {}", constant(k));
            let count = chunk
                .constants
                .get(k)
                .and_then(|v| v.as_obj())
                .map(|r| match r.kind() {
                    ObjKind::Function(f) => f.upvalue_count,
                    _ => 0,
                })
                .unwrap_or(0);
            let mut at = offset + 2;
            for _ in 0..count {
                let is_local = byte(at);
                let index = byte(at + 1);
                let kind = if is_local != 0 { "local" } else { "upvalue" };
                let _ = writeln!(out, "{at:04}    |                     {kind} {index}");
                at += 2;
            }
            at
        }
        _ => {
            let _ = writeln!(out, "{name}");
            offset + 1
        }
    }
}

fn to_upper_snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}
