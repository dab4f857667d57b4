//! The bytecode interpreter (the `interp` tier) and the VM state that JIT'd
//! code will share: the value stack, call frames, globals and heap.

use std::collections::HashMap;
use std::io::Write;

use crate::chunk::Op;
use crate::compiler;
use crate::object::{
    BoundMethod, Class, Closure, Heap, Instance, Native, NativeFn, ObjKind, ObjRef, Upvalue,
    UpvalueState,
};
use crate::value::{write_number, Value};

// Opcodes as byte constants, so dispatch is one jump table on the byte.
const OP_ADD: u8 = Op::Add as u8;
const OP_CALL: u8 = Op::Call as u8;
const OP_CLASS: u8 = Op::Class as u8;
const OP_CLOSE_UPVALUE: u8 = Op::CloseUpvalue as u8;
const OP_CLOSURE: u8 = Op::Closure as u8;
const OP_CONSTANT: u8 = Op::Constant as u8;
const OP_DEFINE_GLOBAL: u8 = Op::DefineGlobal as u8;
const OP_DIVIDE: u8 = Op::Divide as u8;
const OP_EQUAL: u8 = Op::Equal as u8;
const OP_FALSE: u8 = Op::False as u8;
const OP_GET_GLOBAL: u8 = Op::GetGlobal as u8;
const OP_GET_LOCAL: u8 = Op::GetLocal as u8;
const OP_GET_PROPERTY: u8 = Op::GetProperty as u8;
const OP_GET_SUPER: u8 = Op::GetSuper as u8;
const OP_GET_UPVALUE: u8 = Op::GetUpvalue as u8;
const OP_GREATER: u8 = Op::Greater as u8;
const OP_INHERIT: u8 = Op::Inherit as u8;
const OP_INVOKE: u8 = Op::Invoke as u8;
const OP_JUMP: u8 = Op::Jump as u8;
const OP_JUMP_IF_FALSE: u8 = Op::JumpIfFalse as u8;
const OP_LESS: u8 = Op::Less as u8;
const OP_LOOP: u8 = Op::Loop as u8;
const OP_METHOD: u8 = Op::Method as u8;
const OP_MULTIPLY: u8 = Op::Multiply as u8;
const OP_NEGATE: u8 = Op::Negate as u8;
const OP_NIL: u8 = Op::Nil as u8;
const OP_NOT: u8 = Op::Not as u8;
const OP_POP: u8 = Op::Pop as u8;
const OP_PRINT: u8 = Op::Print as u8;
const OP_RETURN: u8 = Op::Return as u8;
const OP_SET_GLOBAL: u8 = Op::SetGlobal as u8;
const OP_SET_LOCAL: u8 = Op::SetLocal as u8;
const OP_SET_PROPERTY: u8 = Op::SetProperty as u8;
const OP_SET_UPVALUE: u8 = Op::SetUpvalue as u8;
const OP_SUBTRACT: u8 = Op::Subtract as u8;
const OP_SUPER_INVOKE: u8 = Op::SuperInvoke as u8;
const OP_TRUE: u8 = Op::True as u8;

/// Maximum call depth (clox's `FRAMES_MAX`).
pub const FRAMES_MAX: usize = 64;
/// Value stack size in slots (clox's `STACK_MAX`, `FRAMES_MAX * 256`).
pub const STACK_MAX: usize = FRAMES_MAX * 256;
/// Stack indices are masked with this (`STACK_MAX` is a power of two), so
/// the optimizer drops bounds checks; calls keep indices below `STACK_MAX`
/// (the overflow check), so the mask never changes an index.
const STACK_MASK: usize = STACK_MAX - 1;
const _: () = assert!(STACK_MAX.is_power_of_two());
/// Maximum number of global variables (slots are `u16` operands).
pub const GLOBALS_MAX: usize = u16::MAX as usize + 1;

/// The outcome of [`Vm::interpret`], as clox's `InterpretResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterpretResult {
    /// The program ran to completion.
    Ok,
    /// The program did not compile (exit code 65).
    CompileError,
    /// The program stopped with a runtime error (exit code 70).
    RuntimeError,
}

impl InterpretResult {
    /// The process exit code clox uses for this result.
    pub fn exit_code(self) -> i32 {
        match self {
            InterpretResult::Ok => 0,
            InterpretResult::CompileError => 65,
            InterpretResult::RuntimeError => 70,
        }
    }
}

/// One activation: the closure, its instruction pointer (an offset into
/// its chunk) and the stack slot of its slot 0.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct CallFrame {
    pub(crate) closure: ObjRef,
    pub(crate) ip: usize,
    pub(crate) base: usize,
}

/// The call frames: a fixed array (never reallocated, so JIT'd code
/// pushes and pops frames in place) and the number in use.
pub(crate) struct Frames {
    pub(crate) slots: Box<[CallFrame; FRAMES_MAX]>,
    pub(crate) count: usize,
}

impl Frames {
    fn new() -> Frames {
        let empty = CallFrame {
            closure: ObjRef::NULL,
            ip: 0,
            base: 0,
        };
        let slots = match vec![empty; FRAMES_MAX].into_boxed_slice().try_into() {
            Ok(array) => array,
            Err(_) => unreachable!("a vec of length N converts to [CallFrame; N]"),
        };
        Frames { slots, count: 0 }
    }

    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    #[inline(always)]
    pub(crate) fn last(&self) -> Option<&CallFrame> {
        self.count.checked_sub(1).map(|i| &self.slots[i])
    }

    #[inline(always)]
    pub(crate) fn last_mut(&mut self) -> Option<&mut CallFrame> {
        self.count.checked_sub(1).map(|i| &mut self.slots[i])
    }

    /// Pushes a frame; callers checked `len() < FRAMES_MAX`.
    #[inline(always)]
    fn push(&mut self, frame: CallFrame) {
        self.slots[self.count] = frame;
        self.count += 1;
    }

    #[inline(always)]
    fn pop(&mut self) {
        self.count -= 1;
    }

    fn clear(&mut self) {
        self.count = 0;
    }

    fn iter(&self) -> std::slice::Iter<'_, CallFrame> {
        self.slots[..self.count].iter()
    }
}

/// Marker for "a runtime error was reported and the stack reset".
#[derive(Debug)]
pub(crate) struct RuntimeError;

type Run<T> = Result<T, RuntimeError>;

/// A Lox virtual machine: globals persist across [`Vm::interpret`] calls
/// (the REPL's model).
pub struct Vm {
    pub(crate) heap: Heap,
    pub(crate) stack: Box<[Value; STACK_MAX]>,
    pub(crate) sp: usize,
    pub(crate) frames: Frames,
    /// Open upvalues, sorted by stack slot (ascending).
    open_upvalues: Vec<ObjRef>,
    pub(crate) globals: Box<[Value; GLOBALS_MAX]>,
    pub(crate) global_names: Vec<Box<str>>,
    global_index: HashMap<Box<str>, u16>,
    pub(crate) init_string: ObjRef,
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    /// The JIT tiers' state (`None`: interpreter only).
    pub(crate) jit: Option<crate::jit::VmJit>,
    /// A function is compiled once its hotness exceeds this (0: on first
    /// entry; `u32::MAX`: never).
    pub(crate) jit_threshold: u32,
}

/// `clock()`: processor time used by the process, in seconds, as C's
/// `clock()` (which clox calls) measures it.
fn clock_native(_args: &[Value]) -> Value {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that outlives the call,
    // which writes only it (glibc's `clock()` is this same call).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Value::number(-1.0);
    }
    Value::number(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

impl Default for Vm {
    fn default() -> Self {
        Vm::new()
    }
}

impl Vm {
    /// A VM printing to stdout and reporting errors to stderr. The
    /// collector runs on every allocation when the `LOX_GC_STRESS`
    /// environment variable is set to anything but `0` or empty.
    pub fn new() -> Vm {
        let stress = std::env::var("LOX_GC_STRESS").is_ok_and(|v| !v.is_empty() && v != "0");
        // Like C's stdio (and so clox): line-buffered on a terminal, fully
        // buffered otherwise.
        use std::io::IsTerminal;
        let out: Box<dyn Write> = if std::io::stdout().is_terminal() {
            Box::new(std::io::LineWriter::new(std::io::stdout()))
        } else {
            Box::new(std::io::BufWriter::new(std::io::stdout()))
        };
        Vm::with_output(out, Box::new(std::io::stderr()), stress)
    }

    /// A VM writing program output to `out` and errors to `err`;
    /// `gc_stress` collects at every allocation.
    pub fn with_output(out: Box<dyn Write>, err: Box<dyn Write>, gc_stress: bool) -> Vm {
        let mut heap = Heap::new(gc_stress);
        let init_string = heap.intern("init");
        let mut vm = Vm {
            heap,
            stack: boxed_array(Value::NIL),
            sp: 0,
            frames: Frames::new(),
            open_upvalues: Vec::new(),
            globals: boxed_array(Value::UNDEFINED),
            global_names: Vec::new(),
            global_index: HashMap::new(),
            init_string,
            out,
            err,
            jit: None,
            jit_threshold: u32::MAX,
        };
        vm.define_native("clock", clock_native);
        vm
    }

    fn define_native(&mut self, name: &str, function: NativeFn) {
        let native = self.heap.alloc(ObjKind::Native(Native { function }));
        if let Some(slot) = self.global_slot(name) {
            self.globals[slot as usize] = Value::obj(native);
        }
    }

    /// Number of collections so far.
    pub fn gc_count(&self) -> usize {
        self.heap.collections
    }

    /// Number of live (or not yet swept) heap objects.
    pub fn heap_objects(&self) -> usize {
        self.heap.object_count()
    }

    /// Bytes charged to heap objects.
    pub fn heap_bytes(&self) -> usize {
        self.heap.bytes_allocated()
    }

    /// Flushes program output.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    /// The slot of global `name`, made on first use; `None` when the slots
    /// are exhausted.
    pub(crate) fn global_slot(&mut self, name: &str) -> Option<u16> {
        if let Some(&slot) = self.global_index.get(name) {
            return Some(slot);
        }
        if self.global_names.len() >= GLOBALS_MAX {
            return None;
        }
        let slot = self.global_names.len() as u16;
        self.global_names.push(name.into());
        self.global_index.insert(name.into(), slot);
        Some(slot)
    }

    /// Writes one line of an error report.
    pub(crate) fn report_error(&mut self, line: &str) {
        let _ = self.out.flush();
        let _ = writeln!(self.err, "{line}");
    }

    /// Compiles and runs `source`.
    pub fn interpret(&mut self, source: &str) -> InterpretResult {
        let Some(function) = compiler::compile(self, source) else {
            let _ = self.err.flush();
            return InterpretResult::CompileError;
        };
        let _pin = self.jit_pin();
        self.push(Value::obj(function));
        let closure = self.heap.alloc(ObjKind::Closure(Closure {
            function,
            upvalues: Box::new([]),
        }));
        self.pop();
        self.push(Value::obj(closure));
        let result = match self.call(closure, 0).and_then(|()| self.run(0)) {
            Ok(()) => InterpretResult::Ok,
            Err(RuntimeError) => InterpretResult::RuntimeError,
        };
        let _ = self.out.flush();
        let _ = self.err.flush();
        result
    }

    /// Compiles `source` and returns its bytecode listing (every function),
    /// or `None` after reporting compile errors. Nothing runs.
    pub fn disassemble(&mut self, source: &str) -> Option<String> {
        let function = compiler::compile(self, source)?;
        let mut listing = String::new();
        crate::debug::disassemble(function, &mut listing);
        Some(listing)
    }

    // ---- the collector's roots ----

    /// Marks the VM's roots and collects. Callers that hold other roots
    /// (the compiler) mark them first.
    pub(crate) fn collect_garbage(&mut self) {
        for i in 0..self.sp {
            self.heap.mark_value(self.stack[i & STACK_MASK]);
        }
        for i in 0..self.frames.len() {
            self.heap.mark_obj(self.frames.slots[i].closure);
        }
        for i in 0..self.open_upvalues.len() {
            self.heap.mark_obj(self.open_upvalues[i]);
        }
        for i in 0..self.global_names.len() {
            self.heap.mark_value(self.globals[i]);
        }
        self.heap.mark_obj(self.init_string);
        self.heap.trace();
        self.heap.sweep();
    }

    // ---- stack ----

    #[inline(always)]
    pub(crate) fn push(&mut self, v: Value) {
        self.stack[self.sp & STACK_MASK] = v;
        self.sp += 1;
    }

    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Value {
        self.sp -= 1;
        self.stack[self.sp & STACK_MASK]
    }

    #[inline(always)]
    pub(crate) fn peek(&self, distance: usize) -> Value {
        self.stack[(self.sp - 1 - distance) & STACK_MASK]
    }

    fn reset_stack(&mut self) {
        self.sp = 0;
        self.frames.clear();
        self.open_upvalues.clear();
    }

    /// `INHERIT`: copies `superclass`'s methods (and initializer) into
    /// `subclass` (the interpreter's and the JIT helpers' one definition).
    pub(crate) fn inherit(&mut self, superclass: ObjRef, subclass: ObjRef) {
        if subclass == superclass {
            return;
        }
        let (sup, sub) = (superclass.as_class(), subclass.as_class());
        let mut methods = sub.methods.borrow_mut();
        let before = methods.heap_size();
        methods.add_all(&sup.methods.borrow());
        let grown = methods.heap_size() - before;
        drop(methods);
        self.heap.charge(grown);
        sub.init.set(sup.init.get());
    }

    /// `METHOD name`: defines `method` on `class` (`init` also as the
    /// class's initializer).
    pub(crate) fn define_method(&mut self, class: ObjRef, name: ObjRef, method: Value) {
        let class = class.as_class();
        let grown = {
            let mut methods = class.methods.borrow_mut();
            let before = methods.heap_size();
            methods.set(name, method);
            methods.heap_size() - before
        };
        self.heap.charge(grown);
        if name == self.init_string {
            class.init.set(method);
        }
    }

    /// Reports a runtime error with clox's stack trace and resets the stack.
    #[cold]
    pub(crate) fn runtime_error(&mut self, message: &str) -> RuntimeError {
        let _ = self.out.flush();
        let _ = writeln!(self.err, "{message}");
        for frame in self.frames.iter().rev() {
            let function = frame.closure.as_closure().function.as_function();
            let line = function.chunk.lines[frame.ip.saturating_sub(1)];
            let _ = match function.name {
                None => writeln!(self.err, "[line {line}] in script"),
                Some(n) => writeln!(self.err, "[line {line}] in {}()", n.as_string().chars),
            };
        }
        self.reset_stack();
        RuntimeError
    }

    // ---- calls ----

    #[inline(always)]
    pub(crate) fn call(&mut self, closure: ObjRef, argc: usize) -> Run<()> {
        let function = closure.as_closure().function.as_function();
        if argc != function.arity {
            return Err(self.arity_error(function.arity, argc));
        }
        let base = self.sp - argc - 1;
        if self.frames.len() == FRAMES_MAX || base + function.max_slots > STACK_MAX {
            return Err(self.stack_overflow());
        }
        self.frames.push(CallFrame {
            closure,
            ip: 0,
            base,
        });
        Ok(())
    }

    #[cold]
    fn arity_error(&mut self, arity: usize, argc: usize) -> RuntimeError {
        self.runtime_error(&format!("Expected {arity} arguments but got {argc}."))
    }

    #[cold]
    fn stack_overflow(&mut self) -> RuntimeError {
        self.runtime_error("Stack overflow.")
    }

    pub(crate) fn call_value(&mut self, callee: Value, argc: usize) -> Run<()> {
        if let Some(r) = callee.as_obj() {
            match r.kind() {
                ObjKind::Closure(_) => return self.call(r, argc),
                ObjKind::BoundMethod(b) => {
                    self.stack[(self.sp - argc - 1) & STACK_MASK] = b.receiver;
                    return self.call(b.method, argc);
                }
                ObjKind::Class(c) => {
                    let instance = self.heap.alloc(ObjKind::Instance(Instance {
                        class: r,
                        fields: Default::default(),
                    }));
                    self.stack[(self.sp - argc - 1) & STACK_MASK] = Value::obj(instance);
                    let init = c.init.get();
                    if let Some(init) = init.as_obj() {
                        self.call(init, argc)?;
                    } else if argc != 0 {
                        return Err(
                            self.runtime_error(&format!("Expected 0 arguments but got {argc}."))
                        );
                    }
                    if self.heap.should_collect() {
                        self.collect_garbage();
                    }
                    return Ok(());
                }
                ObjKind::Native(n) => {
                    let result = (n.function)(&self.stack[self.sp - argc..self.sp]);
                    self.sp -= argc + 1;
                    self.push(result);
                    return Ok(());
                }
                _ => {}
            }
        }
        Err(self.runtime_error("Can only call functions and classes."))
    }

    pub(crate) fn invoke_from_class(
        &mut self,
        class: ObjRef,
        name: ObjRef,
        argc: usize,
    ) -> Run<()> {
        let method = class.as_class().methods.borrow().get(name);
        match method {
            Some(m) => self.call(m.obj_unchecked(), argc),
            None => Err(self.undefined_property(name)),
        }
    }

    pub(crate) fn invoke(&mut self, name: ObjRef, argc: usize) -> Run<()> {
        let receiver = self.peek(argc);
        let instance = match receiver.as_obj().map(|r| r.kind()) {
            Some(ObjKind::Instance(i)) => i,
            _ => return Err(self.runtime_error("Only instances have methods.")),
        };
        let field = instance.fields.borrow().get(name);
        if let Some(value) = field {
            self.stack[(self.sp - argc - 1) & STACK_MASK] = value;
            return self.call_value(value, argc);
        }
        self.invoke_from_class(instance.class, name, argc)
    }

    #[cold]
    pub(crate) fn undefined_property(&mut self, name: ObjRef) -> RuntimeError {
        self.runtime_error(&format!("Undefined property '{}'.", name.as_string().chars))
    }

    /// Replaces the receiver on top of the stack with `class`'s method
    /// `name` bound to it.
    pub(crate) fn bind_method(&mut self, class: ObjRef, name: ObjRef) -> Run<()> {
        let method = class.as_class().methods.borrow().get(name);
        let Some(method) = method else {
            return Err(self.undefined_property(name));
        };
        let bound = self.heap.alloc(ObjKind::BoundMethod(BoundMethod {
            receiver: self.peek(0),
            method: method.obj_unchecked(),
        }));
        self.stack[(self.sp - 1) & STACK_MASK] = Value::obj(bound);
        if self.heap.should_collect() {
            self.collect_garbage();
        }
        Ok(())
    }

    // ---- upvalues ----

    pub(crate) fn capture_upvalue(&mut self, slot: usize) -> ObjRef {
        let mut pos = self.open_upvalues.len();
        while pos > 0 {
            let u = self.open_upvalues[pos - 1];
            match u.as_upvalue().state.get() {
                UpvalueState::Open(s) if s == slot => return u,
                UpvalueState::Open(s) if s < slot => break,
                _ => pos -= 1,
            }
        }
        let u = self.heap.alloc(ObjKind::Upvalue(Upvalue {
            state: std::cell::Cell::new(UpvalueState::Open(slot)),
        }));
        self.open_upvalues.insert(pos, u);
        u
    }

    pub(crate) fn close_upvalues(&mut self, from: usize) {
        while let Some(&u) = self.open_upvalues.last() {
            let up = u.as_upvalue();
            match up.state.get() {
                UpvalueState::Open(s) if s >= from => {
                    up.state
                        .set(UpvalueState::Closed(self.stack[s & STACK_MASK]));
                    self.open_upvalues.pop();
                }
                _ => break,
            }
        }
    }

    // ---- printing ----

    pub(crate) fn print_value(&mut self, v: Value) {
        let _ = write_value(&mut self.out, v);
        let _ = self.out.write_all(b"\n");
    }

    // ---- the interpreter loop ----

    /// Runs the top frame until the frame count drops to `stop_depth`: 0
    /// for a script (the stack is then emptied), else the depth below the
    /// frame a runtime helper pushed (its result is left on the stack).
    pub(crate) fn run(&mut self, stop_depth: usize) -> Run<()> {
        let mut frame = *self.frames.last().expect("a frame to run");
        let mut closure = frame.closure.as_closure();
        let mut chunk = &closure.function.as_function().chunk;
        // The current code as a local slice: its pointer and length stay in
        // registers instead of being reloaded through the chunk.
        let mut code: &[u8] = &chunk.code;
        let mut ip = frame.ip;
        let mut base = frame.base;
        // The stack pointer lives in a register here; `save!` writes it
        // back before anything that reads `self.sp`, and calls reload it.
        let mut sp = self.sp;

        macro_rules! push {
            ($v:expr) => {{
                let v = $v;
                // The compiler's depth analysis bounds every push; debug
                // builds (the test suite) check it.
                debug_assert!(
                    sp < base + closure.function.as_function().max_slots,
                    "stack depth beyond the function's max_slots"
                );
                self.stack[sp & STACK_MASK] = v;
                sp += 1;
            }};
        }
        macro_rules! pop {
            () => {{
                sp -= 1;
                self.stack[sp & STACK_MASK]
            }};
        }
        macro_rules! peek {
            ($d:expr) => {
                self.stack[(sp - 1 - $d) & STACK_MASK]
            };
        }
        macro_rules! read_byte {
            () => {{
                let b = code[ip];
                ip += 1;
                b
            }};
        }
        macro_rules! read_u16 {
            () => {{
                let hi = code[ip] as usize;
                let lo = code[ip + 1] as usize;
                ip += 2;
                (hi << 8) | lo
            }};
        }
        macro_rules! read_constant {
            () => {
                chunk.constants[read_byte!() as usize]
            };
        }
        macro_rules! read_string {
            () => {
                read_constant!().obj_unchecked()
            };
        }
        // Saves the instruction pointer for calls, errors and collections.
        macro_rules! save {
            () => {
                if let Some(f) = self.frames.last_mut() {
                    f.ip = ip;
                }
                self.sp = sp;
            };
        }
        macro_rules! load {
            () => {
                frame = *self.frames.last().expect("a frame to run");
                closure = frame.closure.as_closure();
                chunk = &closure.function.as_function().chunk;
                code = &chunk.code;
                ip = frame.ip;
                base = frame.base;
            };
        }
        macro_rules! error {
            ($($arg:tt)*) => {{
                save!();
                return Err(self.runtime_error(&format!($($arg)*)));
            }};
        }
        // At a frame's first instruction (`ip == 0`) or a loop header:
        // runs the frame's compiled code instead, if the function has some
        // (or has just become hot enough to get some). The compiled code
        // runs the frame to its return and pops it.
        macro_rules! maybe_jit {
            () => {{
                let f = closure.function.as_function();
                let mut entry = f.jit.entry.get();
                if entry == 0 {
                    let hot = f.jit.hotness.get().saturating_add(1);
                    f.jit.hotness.set(hot);
                    if hot > self.jit_threshold && !f.jit.failed.get() {
                        save!();
                        entry = self.jit_compile(closure.function);
                    }
                }
                if entry != 0 {
                    save!();
                    self.call_jit(entry, base, ip)?;
                    if self.frames.len() == stop_depth {
                        if stop_depth == 0 {
                            self.sp = 0;
                        }
                        return Ok(());
                    }
                    sp = self.sp;
                    load!();
                }
            }};
        }
        // Calls the closure `$callee` with `$argc` arguments on the stack:
        // the common case pushes the frame and switches to it right here;
        // arity errors and overflow go through `call`, which reports them.
        macro_rules! enter_closure {
            ($callee:expr, $argc:expr) => {{
                let callee: ObjRef = $callee;
                let argc: usize = $argc;
                let c = callee.as_closure();
                let function = c.function.as_function();
                let new_base = sp - argc - 1;
                save!();
                if argc != function.arity
                    || self.frames.len() == FRAMES_MAX
                    || new_base + function.max_slots > STACK_MAX
                {
                    self.call(callee, argc)?;
                }
                self.frames.push(CallFrame {
                    closure: callee,
                    ip: 0,
                    base: new_base,
                });
                closure = c;
                chunk = &function.chunk;
                code = &chunk.code;
                ip = 0;
                base = new_base;
                maybe_jit!();
            }};
        }
        macro_rules! safepoint {
            () => {
                if self.heap.should_collect() {
                    save!();
                    self.collect_garbage();
                }
            };
        }
        macro_rules! binary_number {
            ($op:tt, $wrap:expr) => {{
                let b = peek!(0);
                let a = peek!(1);
                if !a.is_number() || !b.is_number() {
                    error!("Operands must be numbers.");
                }
                sp -= 1;
                self.stack[(sp - 1) & STACK_MASK] = $wrap(a.as_number() $op b.as_number());
            }};
        }

        if ip == 0 {
            maybe_jit!();
        }
        loop {
            let byte = read_byte!();
            match byte {
                OP_CONSTANT => {
                    let c = read_constant!();
                    push!(c);
                }
                OP_NIL => push!(Value::NIL),
                OP_TRUE => push!(Value::TRUE),
                OP_FALSE => push!(Value::FALSE),
                OP_POP => sp -= 1,
                OP_GET_LOCAL => {
                    let slot = read_byte!() as usize;
                    let v = self.stack[(base + slot) & STACK_MASK];
                    push!(v);
                }
                OP_SET_LOCAL => {
                    let slot = read_byte!() as usize;
                    self.stack[(base + slot) & STACK_MASK] = peek!(0);
                }
                OP_GET_GLOBAL => {
                    let slot = read_u16!();
                    let v = self.globals[slot];
                    if v == Value::UNDEFINED {
                        error!("Undefined variable '{}'.", self.global_names[slot]);
                    }
                    push!(v);
                }
                OP_DEFINE_GLOBAL => {
                    let slot = read_u16!();
                    self.globals[slot] = pop!();
                }
                OP_SET_GLOBAL => {
                    let slot = read_u16!();
                    if self.globals[slot] == Value::UNDEFINED {
                        error!("Undefined variable '{}'.", self.global_names[slot]);
                    }
                    self.globals[slot] = peek!(0);
                }
                OP_GET_UPVALUE => {
                    let slot = read_byte!() as usize;
                    let v = match closure.upvalues[slot].as_upvalue().state.get() {
                        UpvalueState::Open(s) => self.stack[s & STACK_MASK],
                        UpvalueState::Closed(v) => v,
                    };
                    push!(v);
                }
                OP_SET_UPVALUE => {
                    let slot = read_byte!() as usize;
                    let v = peek!(0);
                    let up = closure.upvalues[slot].as_upvalue();
                    match up.state.get() {
                        UpvalueState::Open(s) => self.stack[s & STACK_MASK] = v,
                        UpvalueState::Closed(_) => up.state.set(UpvalueState::Closed(v)),
                    }
                }
                OP_GET_PROPERTY => {
                    let name = read_string!();
                    let receiver = peek!(0);
                    let instance = match receiver.as_obj().map(|r| r.kind()) {
                        Some(ObjKind::Instance(i)) => i,
                        _ => error!("Only instances have properties."),
                    };
                    let field = instance.fields.borrow().get(name);
                    if let Some(v) = field {
                        self.stack[(sp - 1) & STACK_MASK] = v;
                    } else {
                        save!();
                        self.bind_method(instance.class, name)?;
                    }
                }
                OP_SET_PROPERTY => {
                    let name = read_string!();
                    let target = peek!(1);
                    let instance = match target.as_obj().map(|r| r.kind()) {
                        Some(ObjKind::Instance(i)) => i,
                        _ => error!("Only instances have fields."),
                    };
                    let value = peek!(0);
                    let grown = {
                        let mut fields = instance.fields.borrow_mut();
                        let before = fields.heap_size();
                        fields.set(name, value);
                        fields.heap_size() - before
                    };
                    if grown != 0 {
                        self.heap.charge(grown);
                    }
                    sp -= 1;
                    self.stack[(sp - 1) & STACK_MASK] = value;
                }
                OP_GET_SUPER => {
                    let name = read_string!();
                    let superclass = pop!().obj_unchecked();
                    save!();
                    self.bind_method(superclass, name)?;
                }
                OP_EQUAL => {
                    let b = pop!();
                    let a = pop!();
                    push!(Value::bool(a.lox_equals(b)));
                }
                OP_GREATER => binary_number!(>, Value::bool),
                OP_LESS => binary_number!(<, Value::bool),
                OP_ADD => {
                    let b = peek!(0);
                    let a = peek!(1);
                    if a.is_number() && b.is_number() {
                        sp -= 1;
                        self.stack[(sp - 1) & STACK_MASK] =
                            Value::number(a.as_number() + b.as_number());
                    } else {
                        let strings = match (a.as_obj(), b.as_obj()) {
                            (Some(x), Some(y)) => match (x.kind(), y.kind()) {
                                (ObjKind::String(x), ObjKind::String(y)) => Some((x, y)),
                                _ => None,
                            },
                            _ => None,
                        };
                        let Some((x, y)) = strings else {
                            error!("Operands must be two numbers or two strings.");
                        };
                        let mut s = String::with_capacity(x.chars.len() + y.chars.len());
                        s.push_str(&x.chars);
                        s.push_str(&y.chars);
                        let r = self.heap.intern_owned(s);
                        sp -= 1;
                        self.stack[(sp - 1) & STACK_MASK] = Value::obj(r);
                        safepoint!();
                    }
                }
                OP_SUBTRACT => binary_number!(-, Value::number),
                OP_MULTIPLY => binary_number!(*, Value::number),
                OP_DIVIDE => binary_number!(/, Value::number),
                OP_NOT => {
                    let v = peek!(0);
                    self.stack[(sp - 1) & STACK_MASK] = Value::bool(v.is_falsey());
                }
                OP_NEGATE => {
                    let v = peek!(0);
                    if !v.is_number() {
                        error!("Operand must be a number.");
                    }
                    self.stack[(sp - 1) & STACK_MASK] = Value::number(-v.as_number());
                }
                OP_PRINT => {
                    let v = pop!();
                    self.print_value(v);
                }
                OP_JUMP => {
                    let offset = read_u16!();
                    ip += offset;
                }
                OP_JUMP_IF_FALSE => {
                    let offset = read_u16!();
                    if peek!(0).is_falsey() {
                        ip += offset;
                    }
                }
                OP_LOOP => {
                    let offset = read_u16!();
                    ip -= offset;
                    if self.jit_threshold != u32::MAX {
                        maybe_jit!();
                    }
                }
                OP_CALL => {
                    let argc = read_byte!() as usize;
                    let callee = peek!(argc);
                    if let Some(ObjKind::Closure(_)) = callee.as_obj().map(|r| r.kind()) {
                        enter_closure!(callee.obj_unchecked(), argc);
                    } else {
                        save!();
                        self.call_value(callee, argc)?;
                        sp = self.sp;
                        load!();
                        if ip == 0 {
                            maybe_jit!();
                        }
                    }
                }
                OP_INVOKE => {
                    let name = read_string!();
                    let argc = read_byte!() as usize;
                    // Fast path: a method (not a field) of an instance.
                    let receiver = peek!(argc);
                    let mut method = None;
                    if let Some(ObjKind::Instance(instance)) = receiver.as_obj().map(|r| r.kind()) {
                        if instance.fields.borrow().get(name).is_none() {
                            method = instance.class.as_class().methods.borrow().get(name);
                        }
                    }
                    if let Some(m) = method {
                        enter_closure!(m.obj_unchecked(), argc);
                    } else {
                        save!();
                        self.invoke(name, argc)?;
                        sp = self.sp;
                        load!();
                        if ip == 0 {
                            maybe_jit!();
                        }
                    }
                }
                OP_SUPER_INVOKE => {
                    let name = read_string!();
                    let argc = read_byte!() as usize;
                    let superclass = pop!().obj_unchecked();
                    let method = superclass.as_class().methods.borrow().get(name);
                    if let Some(m) = method {
                        enter_closure!(m.obj_unchecked(), argc);
                    } else {
                        save!();
                        return Err(self.undefined_property(name));
                    }
                }
                OP_CLOSURE => {
                    let function = read_constant!().obj_unchecked();
                    let count = function.as_function().upvalue_count;
                    let mut upvalues = Vec::with_capacity(count);
                    for _ in 0..count {
                        let is_local = read_byte!() != 0;
                        let index = read_byte!() as usize;
                        upvalues.push(if is_local {
                            self.capture_upvalue(base + index)
                        } else {
                            closure.upvalues[index]
                        });
                    }
                    let c = self.heap.alloc(ObjKind::Closure(Closure {
                        function,
                        upvalues: upvalues.into_boxed_slice(),
                    }));
                    push!(Value::obj(c));
                    safepoint!();
                }
                OP_CLOSE_UPVALUE => {
                    self.close_upvalues(sp - 1);
                    sp -= 1;
                }
                OP_RETURN => {
                    let result = pop!();
                    if !self.open_upvalues.is_empty() {
                        self.close_upvalues(base);
                    }
                    self.frames.pop();
                    if self.frames.len() == stop_depth {
                        if stop_depth == 0 {
                            self.sp = 0;
                        } else {
                            self.stack[base & STACK_MASK] = result;
                            self.sp = base + 1;
                        }
                        return Ok(());
                    }
                    sp = base;
                    push!(result);
                    load!();
                }
                OP_CLASS => {
                    let name = read_string!();
                    let class = self.heap.alloc(ObjKind::Class(Class {
                        name,
                        methods: Default::default(),
                        init: std::cell::Cell::new(Value::NIL),
                    }));
                    push!(Value::obj(class));
                    safepoint!();
                }
                OP_INHERIT => {
                    let superclass = match peek!(1).as_obj() {
                        Some(r) if matches!(r.kind(), ObjKind::Class(_)) => r,
                        _ => error!("Superclass must be a class."),
                    };
                    self.inherit(superclass, peek!(0).obj_unchecked());
                    sp -= 1;
                }
                OP_METHOD => {
                    let name = read_string!();
                    self.define_method(peek!(1).obj_unchecked(), name, peek!(0));
                    sp -= 1;
                }
                _ => error!("Invalid opcode {byte}."),
            }
        }
    }
}

/// A heap array of `N` copies of `v` (built on the heap: a stack temporary
/// of this size could overflow).
fn boxed_array<const N: usize>(v: Value) -> Box<[Value; N]> {
    match vec![v; N].into_boxed_slice().try_into() {
        Ok(array) => array,
        Err(_) => unreachable!("a vec of length N converts to [Value; N]"),
    }
}

/// Writes a value as clox's `printValue` prints it.
pub(crate) fn write_value(out: &mut dyn Write, v: Value) -> std::io::Result<()> {
    if v.is_number() {
        return write_number(out, v.as_number());
    }
    if let Some(r) = v.as_obj() {
        let function_name = |f: ObjRef| match f.as_function().name {
            None => "<script>".to_string(),
            Some(n) => format!("<fn {}>", n.as_string().chars),
        };
        return match r.kind() {
            ObjKind::Free => out.write_all(b"<free>"),
            ObjKind::String(s) => out.write_all(s.chars.as_bytes()),
            ObjKind::Function(_) => out.write_all(function_name(r).as_bytes()),
            ObjKind::Native(_) => out.write_all(b"<native fn>"),
            ObjKind::Closure(c) => out.write_all(function_name(c.function).as_bytes()),
            ObjKind::Upvalue(_) => out.write_all(b"upvalue"),
            ObjKind::Class(c) => out.write_all(c.name.as_string().chars.as_bytes()),
            ObjKind::Instance(i) => write!(
                out,
                "{} instance",
                i.class.as_class().name.as_string().chars
            ),
            ObjKind::BoundMethod(b) => {
                out.write_all(function_name(b.method.as_closure().function).as_bytes())
            }
        };
    }
    out.write_all(match v {
        Value::NIL => b"nil",
        Value::TRUE => b"true",
        Value::FALSE => b"false",
        _ => b"undefined",
    })
}
