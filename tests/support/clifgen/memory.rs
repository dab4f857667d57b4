//! Stack slots of generated functions: one or two slots, zeroed at entry
//! (their first contents are not determined), then stores and loads of
//! any scalar type at in-bounds offsets, through `stack_store`/`stack_load`
//! or `stack_addr` with a plain `load`/`store` (with `aligned` when the
//! offset is aligned, `notrap` sometimes). Floats stored are exact, so a
//! load of other type sees determined bits.

use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind};

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

/// A store or a load on a random slot (an integer operation when the
/// function has no slot).
pub(super) fn op(g: &mut FnGen<'_, '_, '_>) {
    if g.slots.is_empty() {
        return super::int_ops::op(g);
    }
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
