//! Stack slots of generated functions: one or two slots, zeroed at entry
//! (their first contents are not determined), then, at in-bounds offsets:
//! stores and loads of any scalar type through `stack_store`/`stack_load`
//! or `stack_addr` with a plain `load`/`store` (with `aligned` when the
//! offset is aligned, `notrap` sometimes); extending loads and truncating
//! stores (`uload8` ... `istore32`); and atomic loads, stores,
//! read-modify-writes and compare-and-swaps at aligned offsets. Floats
//! stored are exact, so a load of other type sees determined bits.

use cranelift_codegen::ir::{
    types, AtomicRmwOp, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type,
};

use super::builder::{FloatClass, FnGen};

impl FnGen<'_, '_, '_> {
    /// Creates the function's stack slots and zeroes them.
    pub(super) fn create_slots(&mut self) {
        let n = self.range(0, 2);
        for _ in 0..n {
            // Sizes are multiples of 16, so a second slot stays 16-aligned in
            // the interpreter too, which ignores the alignment a slot asks.
            let size = 16 * self.range(1, 4);
            let slot = self.b.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                size,
                4,
            ));
            let zero = self.b.ins().iconst(types::I64, 0);
            for offset in (0..size).step_by(8) {
                self.b
                    .ins()
                    .stack_store(types::I64, zero, slot, offset as i32);
            }
            self.slots.push((slot, size));
        }
    }
}

/// A memory access on a random slot (an integer operation when the
/// function has no slot).
pub(super) fn op(g: &mut FnGen<'_, '_, '_>) {
    if g.slots.is_empty() {
        return super::int_ops::op(g);
    }
    match g.range(0, 5) {
        0 => narrow(g),
        1 => atomic(g),
        _ => plain(g),
    }
}

/// A plain store or load of any scalar type.
fn plain(g: &mut FnGen<'_, '_, '_>) {
    let (slot, size) = g.pick(&g.slots.clone());
    let ty = g.any_ty();
    let bytes = ty.bytes();
    let offset = g.range(0, size - bytes) as i32;
    let via_addr = g.chance(1, 2);
    let mut flags = MemFlagsData::new();
    if via_addr {
        if offset as u32 % bytes == 0 && g.chance(1, 2) {
            flags.set_aligned();
        }
        if g.chance(1, 2) {
            flags.set_notrap();
        }
    }
    if g.chance(1, 2) {
        let x = if ty.is_float() {
            g.exact_val(ty)
        } else {
            g.val(ty)
        };
        if via_addr {
            let addr = g.b.ins().stack_addr(types::I64, slot, 0);
            g.b.ins().store(flags, x, addr, offset);
        } else {
            g.b.ins().stack_store(types::I64, x, slot, offset);
        }
    } else {
        let v = if via_addr {
            let addr = g.b.ins().stack_addr(types::I64, slot, 0);
            g.b.ins().load(ty, flags, addr, offset)
        } else {
            g.b.ins().stack_load(types::I64, ty, slot, offset)
        };
        g.set(v, FloatClass::Exact);
    }
}

/// An extending load or a truncating store.
fn narrow(g: &mut FnGen<'_, '_, '_>) {
    let (slot, size) = g.pick(&g.slots.clone());
    // (bytes in memory, the wider types it extends to or truncates from)
    let (bytes, wide): (u32, &[Type]) = g.pick(&[
        (1, &[types::I16, types::I32, types::I64][..]),
        (2, &[types::I32, types::I64][..]),
        (4, &[types::I64][..]),
    ]);
    let ty = g.pick(wide);
    let offset = g.range(0, size - bytes) as i32;
    let addr = g.b.ins().stack_addr(types::I64, slot, 0);
    let flags = MemFlagsData::new();
    if g.chance(1, 2) {
        let x = g.val(ty);
        let ins = g.b.ins();
        match bytes {
            1 => ins.istore8(flags, x, addr, offset),
            2 => ins.istore16(flags, x, addr, offset),
            _ => ins.istore32(flags, x, addr, offset),
        };
    } else {
        let signed = g.chance(1, 2);
        let ins = g.b.ins();
        let v = match (bytes, signed) {
            (1, false) => ins.uload8(ty, flags, addr, offset),
            (1, true) => ins.sload8(ty, flags, addr, offset),
            (2, false) => ins.uload16(ty, flags, addr, offset),
            (2, true) => ins.sload16(ty, flags, addr, offset),
            (_, false) => ins.uload32(flags, addr, offset),
            (_, true) => ins.sload32(flags, addr, offset),
        };
        g.set(v, FloatClass::Exact);
    }
}

/// An atomic access of an integer type (at most 64 bits) at an offset
/// aligned to its size.
fn atomic(g: &mut FnGen<'_, '_, '_>) {
    let (slot, size) = g.pick(&g.slots.clone());
    let ty = g.pick(&[types::I8, types::I16, types::I32, types::I64]);
    let bytes = ty.bytes();
    let offset = bytes * g.range(0, size / bytes - 1);
    let base = g.b.ins().stack_addr(types::I64, slot, offset as i32);
    let mut flags = MemFlagsData::new();
    flags.set_aligned();
    flags.set_notrap();
    let ops = [
        AtomicRmwOp::Add,
        AtomicRmwOp::Sub,
        AtomicRmwOp::And,
        AtomicRmwOp::Nand,
        AtomicRmwOp::Or,
        AtomicRmwOp::Xor,
        AtomicRmwOp::Xchg,
        AtomicRmwOp::Umin,
        AtomicRmwOp::Umax,
        AtomicRmwOp::Smin,
        AtomicRmwOp::Smax,
    ];
    let v = match g.range(0, 3) {
        0 => g.b.ins().atomic_load(ty, flags, base),
        1 => {
            let x = g.val(ty);
            g.b.ins().atomic_store(flags, x, base);
            return;
        }
        2 => {
            let op = g.pick(&ops);
            let x = g.val(ty);
            g.b.ins().atomic_rmw(ty, flags, op, base, x)
        }
        _ => {
            let expected = g.val(ty);
            let x = g.val(ty);
            g.b.ins().atomic_cas(flags, base, expected, x)
        }
    };
    g.set(v, FloatClass::Exact);
}
