//! Where JIT'd code finds things: byte offsets into the VM and its objects.
//!
//! Struct field offsets come from `offset_of!`; an object's type tag and
//! payload follow from `ObjKind` being `repr(u8)` (a tag byte, then each
//! variant's payload at its alignment). The unit tests check every offset
//! against a real object.

use std::mem::{align_of, offset_of};

use crate::object::{Closure, Function, JitInfo, Obj};
use crate::vm::{CallFrame, Frames, Vm};

/// `ObjKind`'s tag of a closure (its declaration order).
pub(crate) const TAG_CLOSURE: u8 = 4;
/// `ObjKind`'s tag of a class.
pub(crate) const TAG_CLASS: u8 = 6;

/// Offset of a `repr(u8)` enum variant's single payload of type `T`.
const fn payload<T>() -> usize {
    let align = align_of::<T>();
    1usize.div_ceil(align) * align
}

/// The object's type tag byte.
pub(crate) const OBJ_TAG: usize = offset_of!(Obj, kind);
/// A closure's function object.
pub(crate) const CLOSURE_FUNCTION: usize =
    offset_of!(Obj, kind) + payload::<Closure>() + offset_of!(Closure, function);
/// A function object's `Box<Function>` pointer.
pub(crate) const FUNCTION_BOX: usize = offset_of!(Obj, kind) + payload::<Box<Function>>();
/// In a `Function`: the compiled entry.
pub(crate) const FN_ENTRY: usize = offset_of!(Function, jit) + offset_of!(JitInfo, entry);
/// In a `Function`: the arity (`u32`).
pub(crate) const FN_ARITY: usize = offset_of!(Function, jit) + offset_of!(JitInfo, arity);
/// In a `Function`: `max_slots` (`u32`).
pub(crate) const FN_MAX_SLOTS: usize = offset_of!(Function, jit) + offset_of!(JitInfo, max_slots);
/// In the VM: the stack top (an index).
pub(crate) const VM_SP: usize = offset_of!(Vm, sp);
/// In the VM: the number of frames.
pub(crate) const VM_FRAME_COUNT: usize = offset_of!(Vm, frames) + offset_of!(Frames, count);
/// Size of a call frame.
pub(crate) const FRAME_SIZE: usize = std::mem::size_of::<CallFrame>();
/// In a call frame: the closure.
pub(crate) const FRAME_CLOSURE: usize = offset_of!(CallFrame, closure);
/// In a call frame: the instruction pointer.
pub(crate) const FRAME_IP: usize = offset_of!(CallFrame, ip);
/// In a call frame: the base slot.
pub(crate) const FRAME_BASE: usize = offset_of!(CallFrame, base);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Closure, ObjKind};
    use crate::vm::Vm;

    #[test]
    fn offsets_match_real_objects() {
        let mut vm = Vm::with_output(Box::new(std::io::sink()), Box::new(std::io::sink()), false);
        vm.interpret("fun f(a, b) { return a; }");
        // Find f's function object through the global.
        let slot = vm.global_slot("f").unwrap() as usize;
        let f = vm.globals[slot].as_obj().unwrap();
        let base = f.0 as *const u8;
        // SAFETY: `f` is a live closure object of `vm`; the reads stay
        // inside it (and its function object), at offsets the layout
        // under test says hold a tag byte and pointers.
        unsafe {
            assert_eq!(*base.add(OBJ_TAG), TAG_CLOSURE);
            let function = *(base.add(CLOSURE_FUNCTION) as *const *const u8);
            let ObjKind::Closure(Closure { function: real, .. }) = f.kind() else {
                panic!("not a closure")
            };
            assert_eq!(function, real.0 as *const u8);
            assert_eq!(*function.add(OBJ_TAG), 2, "the Function tag");
            let boxed = *(function.add(FUNCTION_BOX) as *const *const u8);
            let real_fn = real.as_function();
            assert_eq!(boxed, real_fn as *const Function as *const u8);
            assert_eq!(*(boxed.add(FN_ARITY) as *const u32), 2);
            assert_eq!(
                *(boxed.add(FN_MAX_SLOTS) as *const u32) as usize,
                real_fn.max_slots
            );
            assert_eq!(*(boxed.add(FN_ENTRY) as *const u64), 0);
        }
        let frame = crate::vm::CallFrame {
            closure: f,
            ip: 7,
            base: 9,
        };
        let at = &frame as *const _ as *const u8;
        // SAFETY: reads of `frame`'s fields at the offsets under test.
        unsafe {
            assert_eq!(
                *(at.add(FRAME_CLOSURE) as *const *const u8),
                f.0 as *const u8
            );
            assert_eq!(*(at.add(FRAME_IP) as *const usize), 7);
            assert_eq!(*(at.add(FRAME_BASE) as *const usize), 9);
        }
    }
}
