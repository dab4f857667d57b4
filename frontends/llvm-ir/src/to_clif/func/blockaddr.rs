//! `blockaddress` and `indirectbr`: block indices and private tables.

use super::*;

impl Tr<'_, '_> {
    /// Numbers the blocks whose address the function takes (in its own
    /// code or in a table global only it uses).
    pub(super) fn collect_block_addresses(&mut self) -> R<()> {
        let mut addresses = Vec::new();
        for &bb in &self.order {
            for i in ll::instructions(bb) {
                for k in 0..ll::num_operands(i).max(0) as u32 {
                    collect_blockaddresses(ll::operand(i, k), &mut addresses, 0);
                }
            }
        }
        let mut found: Vec<(LLVMValueRef, LLVMBasicBlockRef)> = addresses
            .into_iter()
            .map(|ba| (ll::blockaddress_function(ba), ll::blockaddress_block(ba)))
            .collect();
        for (&g, &f) in &self.info.tables {
            if f == self.f {
                let marked = crate::to_clif::is_encoded_table(g);
                crate::to_clif::table_blocks(ll::initializer(g), marked, &mut found, 0);
            }
        }
        let has_indirectbr = self.order.iter().any(|&bb| {
            let t = ll::terminator(bb);
            !t.is_null() && ll::opcode(t) == LLVMOpcode::LLVMIndirectBr
        });
        let takes_addresses = found.iter().any(|&(f, _)| f == self.f);
        if (has_indirectbr || takes_addresses) && self.info.escaping.contains(&self.f) {
            return Err("block addresses used outside the function and its own tables".into());
        }
        if has_indirectbr && !takes_addresses {
            return Err("indirectbr without block addresses of its own".into());
        }
        for (f, bb) in found {
            if f != self.f {
                continue;
            }
            if !self.blocks.contains_key(&bb) || self.block_ids.contains_key(&bb) {
                continue;
            }
            self.addressed.push(bb);
            self.block_ids.insert(bb, self.addressed.len() as u32);
        }
        Ok(())
    }

    /// The address of this function's copy of table global `g`, whose
    /// block addresses are block indices.
    pub(super) fn table_address(&mut self, g: LLVMValueRef) -> R<Value> {
        let gname = ll::name(g);
        let symbol = format!("{gname}$t0.{}", self.fname);
        if !self.data.iter().any(|d| d.symbol == symbol) {
            let init = ll::initializer(g);
            let size = ll::abi_size(self.info.td, ll::type_of(init)) as usize;
            let mut bytes = vec![0u8; size];
            self.table_bytes(init, 0, &mut bytes, crate::to_clif::is_encoded_table(g))?;
            self.data.push(PrivateData {
                symbol: symbol.clone(),
                bytes,
            });
        }
        let gv = self.global(&symbol);
        Ok(self.b.ins().symbol_value(types::I64, gv))
    }

    pub(super) fn table_bytes(
        &self,
        c: LLVMValueRef,
        at: usize,
        out: &mut [u8],
        marked: bool,
    ) -> R<()> {
        let t = ll::type_of(c);
        match ll::value_kind(c) {
            LLVMValueKind::LLVMBlockAddressValueKind => {
                let id = self
                    .block_ids
                    .get(&ll::blockaddress_block(c))
                    .copied()
                    .ok_or_else(|| format!("blockaddress {}", ll::print(c)))?;
                out[at..at + 8].copy_from_slice(&(id as u64).to_le_bytes());
            }
            LLVMValueKind::LLVMConstantExprValueKind if marked => {
                let bb = crate::to_clif::encoded_block(c)
                    .map(|(_, bb)| bb)
                    .ok_or_else(|| format!("table entry {}", ll::print(c)))?;
                let id = self
                    .block_ids
                    .get(&bb)
                    .copied()
                    .ok_or_else(|| format!("table entry {}", ll::print(c)))?;
                out[at..at + 8].copy_from_slice(&(id as u64).to_le_bytes());
            }
            LLVMValueKind::LLVMConstantAggregateZeroValueKind
            | LLVMValueKind::LLVMUndefValueValueKind
            | LLVMValueKind::LLVMPoisonValueKind
            | LLVMValueKind::LLVMConstantPointerNullValueKind => {}
            LLVMValueKind::LLVMConstantIntValueKind if ll::int_width(t) <= 64 => {
                let n = ll::abi_size(self.info.td, t) as usize;
                out[at..at + n].copy_from_slice(&ll::const_zext(c).to_le_bytes()[..n]);
            }
            LLVMValueKind::LLVMConstantArrayValueKind
            | LLVMValueKind::LLVMConstantStructValueKind
            | LLVMValueKind::LLVMConstantDataArrayValueKind => {
                let struct_ty = ll::type_kind(t) == LLVMTypeKind::LLVMStructTypeKind;
                let n = if struct_ty {
                    ll::struct_count(t) as u64
                } else {
                    ll::array_len(t)
                };
                for k in 0..n as u32 {
                    let off = if struct_ty {
                        ll::offset_of(self.info.td, t, k) as usize
                    } else {
                        k as usize * ll::abi_size(self.info.td, ll::element_type(t)) as usize
                    };
                    self.table_bytes(ll::aggregate_element(c, k), at + off, out, marked)?;
                }
            }
            _ => return Err(format!("table entry {}", ll::print(c))),
        }
        Ok(())
    }

    pub(super) fn indirectbr(&mut self, i: LLVMValueRef) -> R<()> {
        let addr = self.scalar(ll::operand(i, 0))?;
        let mut edges = Vec::new();
        let mut targets = HashMap::new();
        for k in 0..ll::num_successors(i) {
            let s = ll::successor(i, k);
            let e = self.edge_block(s, &mut edges)?;
            targets.insert(s, e);
        }
        let trap = self.b.create_block();
        let pool = &mut self.b.func.dfg.value_lists;
        let default = ir::BlockCall::new(trap, std::iter::empty(), pool);
        let mut table = vec![default];
        for bb in &self.addressed {
            let target = targets.get(bb).copied().unwrap_or(trap);
            table.push(ir::BlockCall::new(target, std::iter::empty(), pool));
        }
        let jt = self
            .b
            .create_jump_table(ir::JumpTableData::new(default, &table));
        let index = self.b.ins().ireduce(types::I32, addr);
        self.b.ins().br_table(index, jt);
        self.b.switch_to_block(trap);
        self.b.ins().trap(TrapCode::unwrap_user(1));
        self.fill_edges(edges);
        Ok(())
    }
}

/// The `blockaddress` constants inside constant `c`.
pub(in crate::to_clif) fn collect_blockaddresses(
    c: LLVMValueRef,
    out: &mut Vec<LLVMValueRef>,
    depth: u32,
) {
    if c.is_null() || depth > 8 || ll::is_a_constant(c).is_null() {
        return;
    }
    match ll::value_kind(c) {
        LLVMValueKind::LLVMBlockAddressValueKind => out.push(c),
        LLVMValueKind::LLVMConstantArrayValueKind
        | LLVMValueKind::LLVMConstantStructValueKind
        | LLVMValueKind::LLVMConstantVectorValueKind
        | LLVMValueKind::LLVMConstantExprValueKind => {
            for k in 0..ll::num_operands(c).max(0) as u32 {
                collect_blockaddresses(ll::operand(c, k), out, depth + 1);
            }
        }
        _ => {}
    }
}
