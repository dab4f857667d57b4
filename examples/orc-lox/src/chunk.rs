//! Bytecode chunks and the instruction set.
//!
//! Operands follow the opcode byte: `u8` for constants, locals, upvalues
//! and argument counts; `u16` (big-endian) for global slots and jumps.

use crate::value::Value;

/// The instruction set (clox's, with globals addressed by slot). Stack
/// effects are written `[before]` → `[after]`, top of stack last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// `CONSTANT k:u8` — push `constants[k]`.
    Constant,
    /// push `nil`.
    Nil,
    /// push `true`.
    True,
    /// push `false`.
    False,
    /// pop one value.
    Pop,
    /// `GET_LOCAL s:u8` — push `stack[base + s]`.
    GetLocal,
    /// `SET_LOCAL s:u8` — `stack[base + s] = peek(0)` (value stays).
    SetLocal,
    /// `GET_GLOBAL g:u16` — push global slot `g`; runtime error if undefined.
    GetGlobal,
    /// `DEFINE_GLOBAL g:u16` — global `g` = pop().
    DefineGlobal,
    /// `SET_GLOBAL g:u16` — global `g` = peek(0); runtime error if undefined.
    SetGlobal,
    /// `GET_UPVALUE u:u8` — push the closure's upvalue `u`.
    GetUpvalue,
    /// `SET_UPVALUE u:u8` — upvalue `u` = peek(0).
    SetUpvalue,
    /// `GET_PROPERTY name:u8` — replace the instance on top with its field, or a bound method.
    GetProperty,
    /// `SET_PROPERTY name:u8` — `[instance, value]` → `[value]`, setting the field.
    SetProperty,
    /// `GET_SUPER name:u8` — `[this, superclass]` → `[bound method]`.
    GetSuper,
    /// `[a, b]` → `[a == b]`.
    Equal,
    /// `[a, b]` → `[a > b]` (numbers).
    Greater,
    /// `[a, b]` → `[a < b]` (numbers).
    Less,
    /// `[a, b]` → `[a + b]` (numbers, or strings concatenated).
    Add,
    /// `[a, b]` → `[a - b]`.
    Subtract,
    /// `[a, b]` → `[a * b]`.
    Multiply,
    /// `[a, b]` → `[a / b]`.
    Divide,
    /// `[a]` → `[!a]`.
    Not,
    /// `[a]` → `[-a]` (number).
    Negate,
    /// pop and print.
    Print,
    /// `JUMP d:u16` — `ip += d` (from after the operand).
    Jump,
    /// `JUMP_IF_FALSE d:u16` — `ip += d` if peek(0) is falsey (no pop).
    JumpIfFalse,
    /// `LOOP d:u16` — `ip -= d` (from after the operand).
    Loop,
    /// `CALL n:u8` — `[callee, args × n]` → `[result]`.
    Call,
    /// `INVOKE name:u8 n:u8` — `[receiver, args × n]` → `[result]` (method call).
    Invoke,
    /// `SUPER_INVOKE name:u8 n:u8` — `[this, args × n, superclass]` → `[result]`.
    SuperInvoke,
    /// `CLOSURE f:u8 (is_local:u8 index:u8) × upvalues` — push a closure of function constant `f`.
    Closure,
    /// close the upvalue of the top slot and pop it.
    CloseUpvalue,
    /// pop the result, close upvalues, leave the frame, push the result in the callee slot.
    Return,
    /// `CLASS name:u8` — push a new class.
    Class,
    /// `[superclass, subclass]` → `[superclass]`, copying methods down.
    Inherit,
    /// `METHOD name:u8` — `[class, closure]` → `[class]`, defining the method.
    Method,
}

impl Op {
    const ALL: [Op; 37] = [
        Op::Constant,
        Op::Nil,
        Op::True,
        Op::False,
        Op::Pop,
        Op::GetLocal,
        Op::SetLocal,
        Op::GetGlobal,
        Op::DefineGlobal,
        Op::SetGlobal,
        Op::GetUpvalue,
        Op::SetUpvalue,
        Op::GetProperty,
        Op::SetProperty,
        Op::GetSuper,
        Op::Equal,
        Op::Greater,
        Op::Less,
        Op::Add,
        Op::Subtract,
        Op::Multiply,
        Op::Divide,
        Op::Not,
        Op::Negate,
        Op::Print,
        Op::Jump,
        Op::JumpIfFalse,
        Op::Loop,
        Op::Call,
        Op::Invoke,
        Op::SuperInvoke,
        Op::Closure,
        Op::CloseUpvalue,
        Op::Return,
        Op::Class,
        Op::Inherit,
        Op::Method,
    ];

    /// The opcode of a byte, if it is one.
    #[inline(always)]
    pub fn from_byte(b: u8) -> Option<Op> {
        Op::ALL.get(b as usize).copied()
    }
}

/// A function's bytecode, line table and constants.
#[derive(Default)]
pub struct Chunk {
    /// Instructions.
    pub code: Vec<u8>,
    /// The source line of each byte of `code`.
    pub lines: Vec<u32>,
    /// The constant pool.
    pub constants: Vec<Value>,
}

impl Chunk {
    /// Appends a byte.
    pub fn write(&mut self, byte: u8, line: u32) {
        self.code.push(byte);
        self.lines.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::Op;

    #[test]
    fn opcodes_round_trip() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as u8 as usize, i);
            assert_eq!(Op::from_byte(i as u8), Some(*op));
        }
        assert_eq!(Op::from_byte(Op::ALL.len() as u8), None);
    }
}
