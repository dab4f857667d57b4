//! The function walker: creates the LLVM function for a CLIF function,
//! one LLVM block per reachable CLIF block (its parameters become phi
//! nodes), an entry block holding the stack slots' allocas, and lowers the
//! instructions in reverse postorder so every value is defined before use.
//! Control flow (jump, brif, br_table, return, traps) lives here; the other
//! instructions are dispatched to `int.rs`, `float.rs`, `memory.rs`,
//! `calls.rs` and `simd.rs`.
//!
//! Invariant: a branch whose target has parameters goes through an edge
//! block of its own, so each phi has exactly one incoming value per LLVM
//! predecessor, even when `brif` or `br_table` reach one block twice.

use std::collections::HashMap;

use cranelift_codegen::ir::{self, BlockArg, InstructionData, Opcode, TrapCode};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::{Builder, BuilderError};
use inkwell::context::ContextRef;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::Module;
use inkwell::types::BasicTypeEnum;
use inkwell::values::{
    BasicMetadataValueEnum, BasicValue, BasicValueEnum, FunctionValue, IntValue, PhiValue,
    PointerValue,
};

use super::{abi, NameResolver, TranslateConfig, TranslateError};

/// A failure inside the translation, given the function's name at the top.
#[derive(Debug)]
pub(super) enum Fail {
    /// Not valid CLIF, an unresolved name, or an LLVM builder failure.
    Invalid(String),
    /// Not covered (normally caught earlier by `check.rs`).
    Unsupported(String),
}

impl From<BuilderError> for Fail {
    fn from(e: BuilderError) -> Self {
        Fail::Invalid(format!("llvm builder: {e}"))
    }
}

/// Results of the lowering helpers.
pub(super) type Res<T> = Result<T, Fail>;

/// Translates `func` into `module` as `symbol` (already checked).
pub(super) fn translate<'ctx>(
    module: &Module<'ctx>,
    symbol: &str,
    func: &ir::Function,
    names: &NameResolver,
    config: &TranslateConfig,
    debug: Option<&super::debug::DebugSource>,
) -> Result<FunctionValue<'ctx>, TranslateError> {
    let ctx = module.get_context();
    let ctx = &ctx;
    if let Some(existing) = module.get_function(symbol) {
        if existing.count_basic_blocks() > 0 {
            return Err(TranslateError::Invalid {
                function: symbol.to_owned(),
                message: format!("symbol '{symbol}' is already defined in the module"),
            });
        }
    }
    let fn_type = abi::fn_type(ctx, &func.signature);
    let f = match module.get_function(symbol) {
        Some(decl) if decl.get_type() == fn_type => decl,
        Some(_) => {
            return Err(TranslateError::Invalid {
                function: symbol.to_owned(),
                message: format!("symbol '{symbol}' is declared with another type"),
            })
        }
        None => add_function_over_data(module, symbol, fn_type).map_err(|message| {
            TranslateError::Invalid {
                function: symbol.to_owned(),
                message,
            }
        })?,
    };
    if uses_frame(func) {
        // Cranelift keeps a frame pointer; `get_frame_pointer` and
        // `get_return_address` need one in LLVM too.
        f.add_attribute(
            inkwell::attributes::AttributeLoc::Function,
            ctx.create_string_attribute("frame-pointer", "all"),
        );
    }
    abi::add_attributes(ctx, f, &func.signature);
    let mut fx = Fx {
        ctx: module.get_context(),
        module,
        b: ctx.create_builder(),
        func,
        f,
        names,
        config,
        values: HashMap::new(),
        blocks: HashMap::new(),
        slots: HashMap::new(),
        addrs: HashMap::new(),
        consts: HashMap::new(),
        trap_blocks: HashMap::new(),
        entry: None,
        debug: debug.map(|source| super::debug::FnDebug::new(module, f, symbol, func, source)),
    };
    if let Some(d) = fx.debug.as_mut() {
        d.at(&fx.ctx, &fx.b, ir::SourceLoc::default());
    }
    match fx.run() {
        Ok(()) => Ok(f),
        Err(fail) => {
            // A half-built body must not stay in the module.
            for bb in f.get_basic_blocks() {
                let _ = bb.remove_from_function();
            }
            Err(match fail {
                Fail::Invalid(message) => TranslateError::Invalid {
                    function: symbol.to_owned(),
                    message,
                },
                Fail::Unsupported(what) => TranslateError::Unsupported {
                    function: symbol.to_owned(),
                    what,
                },
            })
        }
    }
}

/// Adds function `name` to `module`. A data declaration of the same name
/// (made by a `symbol_value` before the function was known) gives way:
/// its uses are redirected to the function.
pub(super) fn add_function_over_data<'ctx>(
    module: &Module<'ctx>,
    name: &str,
    fn_type: inkwell::types::FunctionType<'ctx>,
) -> Result<FunctionValue<'ctx>, String> {
    let data = module.get_global(name);
    if let Some(g) = data {
        if !g.is_declaration() {
            return Err(format!("'{name}' is already defined as data"));
        }
        g.set_name("");
    }
    let f = module.add_function(name, fn_type, None);
    if let Some(g) = data {
        g.as_pointer_value()
            .replace_all_uses_with(f.as_global_value().as_pointer_value());
    }
    Ok(f)
}

/// Whether `func` reads its frame or return address.
fn uses_frame(func: &ir::Function) -> bool {
    func.layout.blocks().any(|b| {
        func.layout.block_insts(b).any(|i| {
            matches!(
                func.dfg.insts[i].opcode(),
                Opcode::GetFramePointer | Opcode::GetReturnAddress | Opcode::GetStackPointer
            )
        })
    })
}

/// The state of one function's translation.
pub(super) struct Fx<'a, 'ctx> {
    pub(super) ctx: ContextRef<'ctx>,
    pub(super) module: &'a Module<'ctx>,
    pub(super) b: Builder<'ctx>,
    pub(super) func: &'a ir::Function,
    pub(super) f: FunctionValue<'ctx>,
    pub(super) names: &'a NameResolver,
    pub(super) config: &'a TranslateConfig,
    values: HashMap<ir::Value, BasicValueEnum<'ctx>>,
    blocks: HashMap<ir::Block, (BasicBlock<'ctx>, Vec<PhiValue<'ctx>>)>,
    pub(super) slots: HashMap<ir::StackSlot, PointerValue<'ctx>>,
    /// Values known to be a stack slot's address plus a constant: the
    /// slot's alloca, the offset and the slot's size.
    pub(super) addrs: HashMap<ir::Value, (PointerValue<'ctx>, i64, u32)>,
    /// Values known to be `iconst`s (of up to 64 bits), sign-extended.
    pub(super) consts: HashMap<ir::Value, i64>,
    trap_blocks: HashMap<u8, BasicBlock<'ctx>>,
    pub(super) entry: Option<BasicBlock<'ctx>>,
    /// Line information, with a [`super::DebugSource`].
    debug: Option<super::debug::FnDebug<'ctx>>,
}

impl<'a, 'ctx> Fx<'a, 'ctx> {
    fn run(&mut self) -> Res<()> {
        let func = self.func;
        let Some(first) = func.layout.entry_block() else {
            return Err(Fail::Invalid("function has no blocks".into()));
        };
        let entry = self.ctx.append_basic_block(self.f, "entry");
        self.entry = Some(entry);
        let order = reverse_postorder(func, first);
        for &block in &order {
            let bb = self.ctx.append_basic_block(self.f, &block.to_string());
            self.b.position_at_end(bb);
            let mut phis = Vec::new();
            for &param in func.dfg.block_params(block) {
                let ty = self.ty(func.dfg.value_type(param));
                let phi = self.b.build_phi(ty, "")?;
                self.values.insert(param, phi.as_basic_value());
                phis.push(phi);
            }
            self.blocks.insert(block, (bb, phis));
        }
        // Stack slots, then the jump into the first CLIF block with the
        // function's parameters as its phis' values.
        self.b.position_at_end(entry);
        self.create_stack_slots()?;
        let (first_bb, first_phis) = self.blocks[&first].clone();
        if first_phis.len() != self.f.count_params() as usize {
            return Err(Fail::Invalid(
                "entry block parameters differ from the signature".into(),
            ));
        }
        for (phi, param) in first_phis.iter().zip(self.f.get_param_iter()) {
            phi.add_incoming(&[(&param, entry)]);
        }
        self.b.build_unconditional_branch(first_bb)?;
        for &block in &order {
            let bb = self.blocks[&block].0;
            self.b.position_at_end(bb);
            for inst in func.layout.block_insts(block) {
                if let Some(d) = self.debug.as_mut() {
                    d.at(&self.ctx, &self.b, func.srcloc(inst));
                }
                self.inst(inst)?;
            }
        }
        Ok(())
    }

    /// The LLVM type of a CLIF type.
    pub(super) fn ty(&self, ty: ir::Type) -> BasicTypeEnum<'ctx> {
        abi::llvm_type(&self.ctx, ty)
    }

    /// The LLVM value of a CLIF value.
    pub(super) fn val(&self, v: ir::Value) -> Res<BasicValueEnum<'ctx>> {
        let v = self.func.dfg.resolve_aliases(v);
        self.values
            .get(&v)
            .copied()
            .ok_or_else(|| Fail::Invalid(format!("value {v} is used before it is defined")))
    }

    /// The LLVM value of a CLIF integer value.
    pub(super) fn int(&self, v: ir::Value) -> Res<IntValue<'ctx>> {
        match self.val(v)? {
            BasicValueEnum::IntValue(i) => Ok(i),
            _ => Err(Fail::Invalid(format!("value {v} is not an integer"))),
        }
    }

    /// The CLIF type of a value.
    pub(super) fn vty(&self, v: ir::Value) -> ir::Type {
        self.func.dfg.value_type(v)
    }

    /// Records the LLVM values of `inst`'s results.
    pub(super) fn def(&mut self, inst: ir::Inst, vals: &[BasicValueEnum<'ctx>]) -> Res<()> {
        let results = self.func.dfg.inst_results(inst);
        if results.len() != vals.len() {
            return Err(Fail::Invalid(format!(
                "{} has {} results, the translation made {}",
                self.func.dfg.insts[inst].opcode(),
                results.len(),
                vals.len()
            )));
        }
        for (&r, &v) in results.iter().zip(vals) {
            self.values.insert(r, v);
        }
        Ok(())
    }

    /// Declares (once) and returns an LLVM intrinsic overloaded on `types`.
    pub(super) fn intrinsic(
        &self,
        name: &str,
        types: &[BasicTypeEnum<'ctx>],
    ) -> Res<FunctionValue<'ctx>> {
        let intr = Intrinsic::find(name)
            .ok_or_else(|| Fail::Invalid(format!("LLVM has no intrinsic {name}")))?;
        intr.get_declaration(self.module, types)
            .ok_or_else(|| Fail::Invalid(format!("cannot declare intrinsic {name}")))
    }

    /// Calls an intrinsic and returns its value.
    pub(super) fn call_intrinsic(
        &self,
        name: &str,
        types: &[BasicTypeEnum<'ctx>],
        args: &[BasicValueEnum<'ctx>],
    ) -> Res<BasicValueEnum<'ctx>> {
        let f = self.intrinsic(name, types)?;
        let args: Vec<BasicMetadataValueEnum<'ctx>> = args.iter().map(|&a| a.into()).collect();
        let call = self.b.build_call(f, &args, "")?;
        call.try_as_basic_value()
            .basic()
            .ok_or_else(|| Fail::Invalid(format!("intrinsic {name} returned nothing")))
    }

    /// `llvm.ubsantrap(code)` and `unreachable` at the current position.
    pub(super) fn emit_trap(&self, code: TrapCode) -> Res<()> {
        let f = self.intrinsic("llvm.ubsantrap", &[])?;
        let code = self
            .ctx
            .i8_type()
            .const_int(u64::from(code.as_raw().get()), false);
        self.b.build_call(f, &[code.into()], "")?;
        self.b.build_unreachable()?;
        Ok(())
    }

    /// Traps with `code` when the i1 `cond` is true; continues in a new
    /// block otherwise.
    pub(super) fn trap_if(&mut self, cond: IntValue<'ctx>, code: TrapCode) -> Res<()> {
        let raw = code.as_raw().get();
        let trap_bb = match self.trap_blocks.get(&raw) {
            Some(&bb) => bb,
            None => {
                let here = self.current_block()?;
                let bb = self.ctx.append_basic_block(self.f, &format!("trap{raw}"));
                self.b.position_at_end(bb);
                self.emit_trap(code)?;
                self.b.position_at_end(here);
                self.trap_blocks.insert(raw, bb);
                bb
            }
        };
        let cont = self.ctx.append_basic_block(self.f, "");
        self.b.build_conditional_branch(cond, trap_bb, cont)?;
        self.b.position_at_end(cont);
        Ok(())
    }

    fn current_block(&self) -> Res<BasicBlock<'ctx>> {
        self.b
            .get_insert_block()
            .ok_or_else(|| Fail::Invalid("builder has no position".into()))
    }

    /// `v != 0` as an i1.
    pub(super) fn nonzero(&self, v: IntValue<'ctx>) -> Res<IntValue<'ctx>> {
        Ok(self
            .b
            .build_int_compare(inkwell::IntPredicate::NE, v, v.get_type().const_zero(), "")?)
    }

    /// The LLVM block to branch to for `call`: the target itself when it
    /// has no parameters, else an edge block that feeds its phis.
    fn edge(&mut self, call: ir::BlockCall) -> Res<BasicBlock<'ctx>> {
        let dfg = &self.func.dfg;
        let target = call.block(&dfg.value_lists);
        let (target_bb, phis) = self
            .blocks
            .get(&target)
            .cloned()
            .ok_or_else(|| Fail::Invalid(format!("branch to unknown block {target}")))?;
        let args: Vec<BlockArg> = call.args(&dfg.value_lists).collect();
        if args.len() != phis.len() {
            return Err(Fail::Invalid(format!(
                "branch to {target} passes {} arguments for {} parameters",
                args.len(),
                phis.len()
            )));
        }
        if phis.is_empty() {
            return Ok(target_bb);
        }
        let here = self.current_block()?;
        let edge = self.ctx.append_basic_block(self.f, "");
        for (phi, arg) in phis.iter().zip(args) {
            let BlockArg::Value(v) = arg else {
                return Err(Fail::Unsupported("exceptional block argument".into()));
            };
            let v = self.val(v)?;
            phi.add_incoming(&[(&v as &dyn BasicValue<'ctx>, edge)]);
        }
        self.b.position_at_end(edge);
        self.b.build_unconditional_branch(target_bb)?;
        self.b.position_at_end(here);
        Ok(edge)
    }

    fn inst(&mut self, inst: ir::Inst) -> Res<()> {
        let func = self.func;
        let data = func.dfg.insts[inst];
        let opcode = data.opcode();
        let args = func.dfg.inst_args(inst);
        match (opcode, data) {
            (Opcode::Jump, InstructionData::Jump { destination, .. }) => {
                let bb = self.edge(destination)?;
                self.b.build_unconditional_branch(bb)?;
            }
            (Opcode::Brif, InstructionData::Brif { arg, blocks, .. }) => {
                let cond = self.nonzero(self.int(arg)?)?;
                let then_bb = self.edge(blocks[0])?;
                let else_bb = self.edge(blocks[1])?;
                self.b.build_conditional_branch(cond, then_bb, else_bb)?;
            }
            (Opcode::BrTable, InstructionData::BranchTable { arg, table, .. }) => {
                let index = self.int(arg)?;
                let jt = &func.dfg.jump_tables[table];
                let default = self.edge(jt.default_block())?;
                let mut cases = Vec::new();
                for (i, &call) in jt.as_slice().iter().enumerate() {
                    let bb = self.edge(call)?;
                    cases.push((index.get_type().const_int(i as u64, false), bb));
                }
                self.b.build_switch(index, default, &cases)?;
            }
            (Opcode::Return, _) => self.ret(args)?,
            (Opcode::ReturnCall | Opcode::ReturnCallIndirect, _) => {
                self.return_call(inst, opcode, &data)?
            }
            (Opcode::Trap, InstructionData::Trap { code, .. }) => self.emit_trap(code)?,
            (Opcode::Trapz | Opcode::Trapnz, InstructionData::CondTrap { arg, code, .. }) => {
                let nz = self.nonzero(self.int(arg)?)?;
                let cond = if opcode == Opcode::Trapz {
                    self.b.build_not(nz, "")?
                } else {
                    nz
                };
                self.trap_if(cond, code)?;
            }
            (Opcode::Debugtrap, _) => {
                let f = self.intrinsic("llvm.debugtrap", &[])?;
                self.b.build_call(f, &[], "")?;
            }
            (Opcode::Nop | Opcode::SequencePoint, _) => {}
            _ => {
                let vector = func
                    .dfg
                    .inst_results(inst)
                    .iter()
                    .chain(args)
                    .any(|&v| self.vty(v).is_vector());
                if vector {
                    self.simd(inst, opcode, &data)?;
                } else {
                    self.lower(inst, opcode, &data)?;
                }
            }
        }
        Ok(())
    }

    /// Lowers a non-control-flow scalar instruction.
    pub(super) fn lower(
        &mut self,
        inst: ir::Inst,
        opcode: Opcode,
        data: &InstructionData,
    ) -> Res<()> {
        if let Some(vals) = self.int_op(inst, opcode, data)? {
            return self.def(inst, &vals);
        }
        if let Some(vals) = self.float_op(inst, opcode, data)? {
            return self.def(inst, &vals);
        }
        if let Some(vals) = self.memory_op(inst, opcode, data)? {
            return self.def(inst, &vals);
        }
        if let Some(vals) = self.call_op(inst, opcode, data)? {
            return self.def(inst, &vals);
        }
        Err(Fail::Unsupported(opcode.to_string()))
    }

    fn ret(&mut self, args: &[ir::Value]) -> Res<()> {
        let vals: Vec<BasicValueEnum<'ctx>> =
            args.iter().map(|&a| self.val(a)).collect::<Res<_>>()?;
        match vals.as_slice() {
            [] => self.b.build_return(None)?,
            [v] => self.b.build_return(Some(v))?,
            _ => self.b.build_aggregate_return(&vals)?,
        };
        Ok(())
    }
}

/// The blocks reachable from `entry`, in reverse postorder (each block
/// after its dominators).
fn reverse_postorder(func: &ir::Function, entry: ir::Block) -> Vec<ir::Block> {
    let mut seen = std::collections::HashSet::new();
    let mut post = Vec::new();
    let mut stack = vec![(entry, false)];
    while let Some((block, done)) = stack.pop() {
        if done {
            post.push(block);
            continue;
        }
        if !seen.insert(block) {
            continue;
        }
        stack.push((block, true));
        let succs = successors(func, block);
        for s in succs.into_iter().rev() {
            if !seen.contains(&s) {
                stack.push((s, false));
            }
        }
    }
    post.reverse();
    post
}

fn successors(func: &ir::Function, block: ir::Block) -> Vec<ir::Block> {
    let mut out = Vec::new();
    for inst in func.layout.block_insts(block) {
        let data = &func.dfg.insts[inst];
        for call in data.branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables) {
            out.push(call.block(&func.dfg.value_lists));
        }
    }
    out
}
