//! The runtime helpers JIT'd code calls for slow paths: `extern "C"`
//! functions over `(*mut Vm, u64, u64) -> u64` (raw values and operands),
//! registered with the JIT by name ([`HELPERS`]).
//!
//! Before calling a helper that reads the stack, allocates or can fail,
//! JIT'd code has written every live value of its frame to the VM stack,
//! set the VM's stack top and stored its frame's `ip`: a helper sees
//! exactly the state the interpreter would have, so it reuses the
//! interpreter's methods, collections find every root, and runtime errors
//! print the same trace. Helpers that can fail return a status (0, or 1
//! after the error was reported and the VM reset).

use crate::object::{Class, ObjKind, ObjRef, UpvalueState};
use crate::value::Value;
use crate::vm::{RuntimeError, Vm};

/// A helper's type.
pub(crate) type Helper = extern "C" fn(*mut Vm, u64, u64) -> u64;

/// Error codes of [`lox_error`].
pub(crate) const ERR_NUMBERS: u64 = 0;
pub(crate) const ERR_NUMBER: u64 = 1;
pub(crate) const ERR_UNDEFINED: u64 = 2;

/// Every helper, by the symbol JIT'd code imports.
pub(crate) const HELPERS: &[(&str, Helper)] = &[
    ("lox_error", lox_error),
    ("lox_add", lox_add),
    ("lox_print", lox_print),
    ("lox_get_upvalue", lox_get_upvalue),
    ("lox_set_upvalue", lox_set_upvalue),
    ("lox_get_field", lox_get_field),
    ("lox_get_property", lox_get_property),
    ("lox_set_property", lox_set_property),
    ("lox_set_field", lox_set_field),
    ("lox_get_super", lox_get_super),
    ("lox_call", lox_call),
    ("lox_instantiate", lox_instantiate),
    ("lox_invoke_lookup", lox_invoke_lookup),
    ("lox_invoke", lox_invoke),
    ("lox_super_invoke", lox_super_invoke),
    ("lox_closure", lox_closure),
    ("lox_close_upvalue", lox_close_upvalue),
    ("lox_close_frame", lox_close_frame),
    ("lox_class", lox_class),
    ("lox_inherit", lox_inherit),
    ("lox_method", lox_method),
];

fn status(r: Result<(), RuntimeError>) -> u64 {
    match r {
        Ok(()) => 0,
        Err(RuntimeError) => 1,
    }
}

/// The VM behind a helper's first argument.
///
/// # Safety
///
/// `vm` is the pointer [`Vm::call_jit`] passed to the JIT'd code (the only
/// caller of helpers): a live `Vm` whose `&mut` borrow is suspended for the
/// duration of the call, so this is its only live reference.
unsafe fn vm<'a>(vm: *mut Vm) -> &'a mut Vm {
    // SAFETY: see the function's contract.
    unsafe { &mut *vm }
}

fn string_obj(bits: u64) -> ObjRef {
    Value(bits).obj_unchecked()
}

/// Reports runtime error `code` (`operand`: a global's slot).
extern "C" fn lox_error(v: *mut Vm, code: u64, operand: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let message = match code {
        ERR_NUMBERS => "Operands must be numbers.".to_string(),
        ERR_NUMBER => "Operand must be a number.".to_string(),
        _ => format!(
            "Undefined variable '{}'.",
            vm.global_names
                .get(operand as usize)
                .map_or("?", |n| n.as_ref())
        ),
    };
    vm.runtime_error(&message);
    1
}

/// `ADD` of two values that are not both numbers (on the stack).
extern "C" fn lox_add(v: *mut Vm, _: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let (a, b) = (vm.peek(1), vm.peek(0));
    let strings = match (a.as_obj(), b.as_obj()) {
        (Some(x), Some(y)) => match (x.kind(), y.kind()) {
            (ObjKind::String(x), ObjKind::String(y)) => Some((x, y)),
            _ => None,
        },
        _ => None,
    };
    let Some((x, y)) = strings else {
        vm.runtime_error("Operands must be two numbers or two strings.");
        return 1;
    };
    let mut s = String::with_capacity(x.chars.len() + y.chars.len());
    s.push_str(&x.chars);
    s.push_str(&y.chars);
    let r = vm.heap.intern_owned(s);
    vm.pop();
    vm.pop();
    vm.push(Value::obj(r));
    vm.safepoint();
    0
}

extern "C" fn lox_print(v: *mut Vm, value: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    vm.print_value(Value(value));
    0
}

/// The value of the running closure's upvalue `index`.
extern "C" fn lox_get_upvalue(v: *mut Vm, index: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let closure = vm.frames.last().expect("a running frame").closure;
    let up = closure.as_closure().upvalues[index as usize].as_upvalue();
    match up.state.get() {
        UpvalueState::Open(s) => vm.stack[s].0,
        UpvalueState::Closed(v) => v.0,
    }
}

extern "C" fn lox_set_upvalue(v: *mut Vm, index: u64, value: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let closure = vm.frames.last().expect("a running frame").closure;
    let up = closure.as_closure().upvalues[index as usize].as_upvalue();
    match up.state.get() {
        UpvalueState::Open(s) => vm.stack[s] = Value(value),
        UpvalueState::Closed(_) => up.state.set(UpvalueState::Closed(Value(value))),
    }
    0
}

/// A call site's inline cache: the name it looks up and the entry index
/// where it found it last (in the table its last receiver had).
#[repr(C)]
pub(crate) struct Site {
    pub(crate) name: u64,
    pub(crate) hint: std::cell::Cell<u32>,
}

/// The site behind a lookup helper's first argument.
///
/// # Safety
///
/// `site` is the address of a [`Site`] the lowering allocated for the
/// calling code (kept by the VM's JIT state as long as the code exists).
unsafe fn site<'a>(site: *mut Vm) -> &'a Site {
    // SAFETY: see the function's contract.
    unsafe { &*(site as *const Site) }
}

/// `receiver`'s field `site.name` if it is an instance that has one, else
/// the "undefined" marker (no allocation, no error). Takes its site, not
/// the VM.
extern "C" fn lox_get_field(s: *mut Vm, receiver: u64, _: u64) -> u64 {
    // SAFETY: JIT'd code passes its site (see `site`).
    let site = unsafe { site(s) };
    if let Some(ObjKind::Instance(i)) = Value(receiver).as_obj().map(|r| r.kind()) {
        if let Some(v) = i
            .fields
            .borrow()
            .get_hinted(string_obj(site.name), &site.hint)
        {
            return v.0;
        }
    }
    Value::UNDEFINED.0
}

/// `GET_PROPERTY name` (the receiver on the stack).
extern "C" fn lox_get_property(v: *mut Vm, name: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let name = string_obj(name);
    let instance = match vm.peek(0).as_obj().map(|r| r.kind()) {
        Some(ObjKind::Instance(i)) => i,
        _ => {
            vm.runtime_error("Only instances have properties.");
            return 1;
        }
    };
    let field = instance.fields.borrow().get(name);
    if let Some(value) = field {
        vm.pop();
        vm.push(value);
        return 0;
    }
    status(vm.bind_method(instance.class, name))
}

/// Sets `instance`'s existing field `site.name` to `value` and returns 0;
/// returns 1, changing nothing, when `instance` is not an instance or has
/// no such field yet (the general helper then adds it, or reports the
/// error). Takes its site, not the VM.
extern "C" fn lox_set_field(s: *mut Vm, instance: u64, value: u64) -> u64 {
    // SAFETY: JIT'd code passes its site (see `site`).
    let site = unsafe { site(s) };
    if let Some(ObjKind::Instance(i)) = Value(instance).as_obj().map(|r| r.kind()) {
        let name = string_obj(site.name);
        if i.fields
            .borrow_mut()
            .replace_hinted(name, Value(value), &site.hint)
        {
            return 0;
        }
    }
    1
}

/// `SET_PROPERTY name`: `[instance, value]` → `[value]`.
extern "C" fn lox_set_property(v: *mut Vm, name: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let name = string_obj(name);
    let instance = match vm.peek(1).as_obj().map(|r| r.kind()) {
        Some(ObjKind::Instance(i)) => i,
        _ => {
            vm.runtime_error("Only instances have fields.");
            return 1;
        }
    };
    let value = vm.peek(0);
    let grown = {
        let mut fields = instance.fields.borrow_mut();
        let before = fields.heap_size();
        fields.set(name, value);
        fields.heap_size() - before
    };
    if grown != 0 {
        vm.heap.charge(grown);
    }
    vm.pop();
    vm.pop();
    vm.push(value);
    0
}

/// `GET_SUPER name`: `[this, superclass]` → `[bound method]`.
extern "C" fn lox_get_super(v: *mut Vm, name: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let superclass = vm.pop().obj_unchecked();
    status(vm.bind_method(superclass, string_obj(name)))
}

/// `CALL argc` of anything (the callee on the stack), or of closure
/// `closure` when not 0 (a class's `init`, its instance in the callee
/// slot): runs the callee to completion.
extern "C" fn lox_call(v: *mut Vm, argc: u64, closure: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let argc = argc as usize;
    let depth = vm.frames.len();
    let called = if closure != 0 {
        vm.call(ObjRef(closure as *mut crate::object::Obj), argc)
    } else {
        let callee = vm.peek(argc);
        vm.call_value(callee, argc)
    };
    status(called.and_then(|()| vm.finish_call(depth)))
}

/// A call of class `class` with `argc` arguments: puts a new instance in
/// the callee slot and returns the class's `init` closure to call, or 0
/// when it has none (the call is complete), or 1 after an error (a
/// class without `init` called with arguments).
extern "C" fn lox_instantiate(v: *mut Vm, argc: u64, class: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let class = ObjRef(class as *mut crate::object::Obj);
    let instance = vm.heap.alloc(ObjKind::Instance(crate::object::Instance {
        class,
        fields: Default::default(),
    }));
    let slot = vm.sp - argc as usize - 1;
    vm.stack[slot] = Value::obj(instance);
    let init = class.as_class().init.get();
    if init.as_obj().is_none() && argc != 0 {
        vm.runtime_error(&format!("Expected 0 arguments but got {argc}."));
        return 1;
    }
    vm.safepoint();
    match init.as_obj() {
        Some(closure) => closure.0 as u64,
        None => 0,
    }
}

/// The closure a method call `receiver.name(...)` (`name`: the site's)
/// runs when `receiver` is an instance without a field `name` and its
/// class has that method; else 0 (no allocation, no error). Takes its
/// site, not the VM.
extern "C" fn lox_invoke_lookup(s: *mut Vm, receiver: u64, _: u64) -> u64 {
    // SAFETY: JIT'd code passes its site (see `site`).
    let site = unsafe { site(s) };
    if let Some(ObjKind::Instance(i)) = Value(receiver).as_obj().map(|r| r.kind()) {
        let name = string_obj(site.name);
        if i.fields.borrow().get(name).is_none() {
            let methods = i.class.as_class().methods.borrow();
            if let Some(m) = methods.get_hinted(name, &site.hint) {
                return m.obj_unchecked().0 as u64;
            }
        }
    }
    0
}

/// `INVOKE name argc`: runs the method to completion.
extern "C" fn lox_invoke(v: *mut Vm, name: u64, argc: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let depth = vm.frames.len();
    status(
        vm.invoke(string_obj(name), argc as usize)
            .and_then(|()| vm.finish_call(depth)),
    )
}

/// `SUPER_INVOKE name argc`: `[this, args, superclass]`.
extern "C" fn lox_super_invoke(v: *mut Vm, name: u64, argc: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let superclass = vm.pop().obj_unchecked();
    let depth = vm.frames.len();
    status(
        vm.invoke_from_class(superclass, string_obj(name), argc as usize)
            .and_then(|()| vm.finish_call(depth)),
    )
}

/// `CLOSURE`: `function` is the function constant, `at` the offset of the
/// upvalue operands in the running function's code.
extern "C" fn lox_closure(v: *mut Vm, function: u64, at: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let function = Value(function).obj_unchecked();
    let frame = *vm.frames.last().expect("a running frame");
    let parent = frame.closure.as_closure();
    let code = &parent.function.as_function().chunk.code;
    let count = function.as_function().upvalue_count;
    let mut upvalues = Vec::with_capacity(count);
    let mut at = at as usize;
    for _ in 0..count {
        let is_local = code[at] != 0;
        let index = code[at + 1] as usize;
        at += 2;
        upvalues.push(if is_local {
            vm.capture_upvalue(frame.base + index)
        } else {
            parent.upvalues[index]
        });
    }
    let c = vm.heap.alloc(ObjKind::Closure(crate::object::Closure {
        function,
        upvalues: upvalues.into_boxed_slice(),
    }));
    vm.push(Value::obj(c));
    vm.safepoint();
    0
}

/// `CLOSE_UPVALUE`: closes the top slot's upvalue and pops it.
extern "C" fn lox_close_upvalue(v: *mut Vm, _: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let top = vm.sp - 1;
    vm.close_upvalues(top);
    vm.pop();
    0
}

/// Closes the upvalues of a returning frame whose slots start at `base`.
extern "C" fn lox_close_frame(v: *mut Vm, base: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    vm.close_upvalues(base as usize);
    0
}

/// `CLASS name`.
extern "C" fn lox_class(v: *mut Vm, name: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let class = vm.heap.alloc(ObjKind::Class(Class {
        name: string_obj(name),
        methods: Default::default(),
        init: std::cell::Cell::new(Value::NIL),
    }));
    vm.push(Value::obj(class));
    vm.safepoint();
    0
}

/// `INHERIT`: `[superclass, subclass]` → `[superclass]`.
extern "C" fn lox_inherit(v: *mut Vm, _: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let superclass = match vm.peek(1).as_obj() {
        Some(r) if matches!(r.kind(), ObjKind::Class(_)) => r,
        _ => {
            vm.runtime_error("Superclass must be a class.");
            return 1;
        }
    };
    let subclass = vm.peek(0).obj_unchecked();
    vm.inherit(superclass, subclass);
    vm.pop();
    0
}

/// `METHOD name`: `[class, closure]` → `[class]`.
extern "C" fn lox_method(v: *mut Vm, name: u64, _: u64) -> u64 {
    // SAFETY: called by JIT'd code with its VM (see `vm`).
    let vm = unsafe { vm(v) };
    let name = string_obj(name);
    let (class, method) = (vm.peek(1).obj_unchecked(), vm.peek(0));
    vm.define_method(class, name, method);
    vm.pop();
    0
}
