//! The one lowering: a Lox function's bytecode to Cranelift IR.
//!
//! The compiled function is `extern "C" fn(vm, base, at) -> status`: it runs
//! the frame on top of the VM's frame stack (whose slot 0 is stack slot
//! `base`) from bytecode offset `at` (0, or a loop header: the interpreter
//! enters hot loops there) to its return, pops the frame and leaves the
//! result in slot `base` with the stack top just above it. The status is 0,
//! or 1 after a runtime error was reported (the VM is reset; every JIT'd
//! frame returns 1 at once).
//!
//! The operand stack's depth at every instruction is static (the compiler
//! keeps it so); slot `k` of the frame is `stack[base + k]`. Values are
//! cached in SSA values within a basic block and written back (flushed)
//! before any helper call that may read the stack, allocate, fail or run
//! code, before calls and at block boundaries: at each such point the VM
//! stack holds every live value, which is all the collector, error traces
//! and the interpreter (entering at a loop header) need.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use orc::cranelift::codegen::ir::{
    self, condcodes::FloatCC, condcodes::IntCC, types, AbiParam, Block, ExtFuncData, ExternalName,
    FuncRef, InstBuilder, MemFlagsData, SigRef, Signature, UserExternalName, UserFuncName,
};
use orc::cranelift::codegen::isa::{CallConv, TargetFrontendConfig};
use orc::cranelift::frontend::{FunctionBuilder, FunctionBuilderContext, Switch};
use orc::TieredLayer;

use super::helpers::{Site, ERR_NUMBER, ERR_NUMBERS, ERR_UNDEFINED};
use super::layout::*;
use crate::chunk::Op;
use crate::object::Function;
use crate::value::{Value as LoxValue, QNAN, SIGN_BIT};
use crate::vm::{FRAMES_MAX, STACK_MAX};

const I64: ir::Type = types::I64;

/// What the lowering embeds of one VM: its fixed arrays' addresses.
pub(crate) struct VmAddrs {
    pub(crate) stack: u64,
    pub(crate) frames: u64,
    pub(crate) globals: u64,
}

/// The signature of compiled functions and of helpers:
/// `(i64, i64, i64) -> i64`.
pub(crate) fn signature() -> Signature {
    let mut sig = Signature::new(CallConv::SystemV);
    sig.params.extend([AbiParam::new(I64); 3]);
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// A decoded instruction.
struct Inst {
    off: usize,
    op: Op,
    /// First operand (constant index, slot, jump target, argc...).
    a: usize,
    /// Second operand (`INVOKE`'s argc).
    b: usize,
    len: usize,
    /// Stack depth before the instruction.
    depth: usize,
    reachable: bool,
}

/// Decodes `f`'s code and computes each reachable instruction's stack
/// depth (a worklist over the control flow: code after a jump may be
/// reached only by a later backward jump, as a `for` loop's increment).
/// Jump operands are turned into absolute targets. Returns the
/// instructions, the jump targets with their depths and the loop headers.
/// The decoded instructions, the jump targets with their depths, the loop
/// headers.
type Analysis = (Vec<Inst>, BTreeMap<usize, usize>, BTreeSet<usize>);

fn analyze(f: &Function) -> Result<Analysis, String> {
    let code = &f.chunk.code;
    let byte = |i: usize| -> Result<usize, String> {
        code.get(i)
            .map(|&b| b as usize)
            .ok_or_else(|| "truncated instruction".to_string())
    };
    let u16_at = |i: usize| -> Result<usize, String> { Ok((byte(i)? << 8) | byte(i + 1)?) };
    // Decode.
    let mut insts = Vec::new();
    let mut effects = Vec::new();
    let mut index = HashMap::new();
    let mut off = 0;
    while off < code.len() {
        let op = Op::from_byte(code[off]).ok_or_else(|| format!("bad opcode at {off}"))?;
        let (a, b, len, effect): (usize, usize, usize, i64) = match op {
            Op::Constant => (byte(off + 1)?, 0, 2, 1),
            Op::Nil | Op::True | Op::False => (0, 0, 1, 1),
            Op::Pop => (0, 0, 1, -1),
            Op::GetLocal => (byte(off + 1)?, 0, 2, 1),
            Op::SetLocal => (byte(off + 1)?, 0, 2, 0),
            Op::GetGlobal => (u16_at(off + 1)?, 0, 3, 1),
            Op::DefineGlobal => (u16_at(off + 1)?, 0, 3, -1),
            Op::SetGlobal => (u16_at(off + 1)?, 0, 3, 0),
            Op::GetUpvalue => (byte(off + 1)?, 0, 2, 1),
            Op::SetUpvalue => (byte(off + 1)?, 0, 2, 0),
            Op::GetProperty => (byte(off + 1)?, 0, 2, 0),
            Op::SetProperty => (byte(off + 1)?, 0, 2, -1),
            Op::GetSuper => (byte(off + 1)?, 0, 2, -1),
            Op::Equal
            | Op::Greater
            | Op::Less
            | Op::Add
            | Op::Subtract
            | Op::Multiply
            | Op::Divide => (0, 0, 1, -1),
            Op::Not | Op::Negate => (0, 0, 1, 0),
            Op::Print => (0, 0, 1, -1),
            Op::Jump | Op::JumpIfFalse => (off + 3 + u16_at(off + 1)?, 0, 3, 0),
            Op::Loop => {
                let back = u16_at(off + 1)?;
                let target = (off + 3)
                    .checked_sub(back)
                    .ok_or_else(|| format!("bad loop at {off}"))?;
                (target, 0, 3, 0)
            }
            Op::Call => {
                let n = byte(off + 1)?;
                (n, 0, 2, -(n as i64))
            }
            Op::Invoke => {
                let n = byte(off + 2)?;
                (byte(off + 1)?, n, 3, -(n as i64))
            }
            Op::SuperInvoke => {
                let n = byte(off + 2)?;
                (byte(off + 1)?, n, 3, -(n as i64) - 1)
            }
            Op::Closure => {
                let k = byte(off + 1)?;
                let constant = *f.chunk.constants.get(k).ok_or("bad constant")?;
                let n = constant
                    .as_obj()
                    .map(|r| r.as_function().upvalue_count)
                    .ok_or("closure of a non-function")?;
                (k, 0, 2 + 2 * n, 1)
            }
            Op::CloseUpvalue => (0, 0, 1, -1),
            Op::Return => (0, 0, 1, -1),
            Op::Class => (byte(off + 1)?, 0, 2, 1),
            Op::Inherit => (0, 0, 1, -1),
            Op::Method => (byte(off + 1)?, 0, 2, -1),
        };
        index.insert(off, insts.len());
        insts.push(Inst {
            off,
            op,
            a,
            b,
            len,
            depth: 0,
            reachable: false,
        });
        effects.push(effect);
        off += len;
    }
    // Propagate depths.
    let mut targets: BTreeMap<usize, usize> = BTreeMap::new();
    let mut loops = BTreeSet::new();
    let mut work = vec![(0usize, 1 + f.arity)];
    while let Some((off, depth)) = work.pop() {
        let &i = index
            .get(&off)
            .ok_or_else(|| format!("jump into the middle of an instruction ({off})"))?;
        let inst = &mut insts[i];
        if inst.reachable {
            if inst.depth != depth {
                return Err(format!("stack depth mismatch at {off}"));
            }
            continue;
        }
        if depth < 1 || depth > f.max_slots {
            return Err(format!("stack depth {depth} out of range at {off}"));
        }
        inst.reachable = true;
        inst.depth = depth;
        let after = depth as i64 + effects[i];
        if after < 0 {
            return Err(format!("stack underflow at {off}"));
        }
        let after = after as usize;
        let next = off + inst.len;
        match inst.op {
            Op::Jump | Op::Loop => {
                if inst.op == Op::Loop {
                    loops.insert(inst.a);
                }
                if let Some(&d) = targets.get(&inst.a) {
                    if d != after {
                        return Err(format!("stack depth mismatch at jump {off}"));
                    }
                }
                targets.insert(inst.a, after);
                work.push((inst.a, after));
            }
            Op::JumpIfFalse => {
                if let Some(&d) = targets.get(&inst.a) {
                    if d != after {
                        return Err(format!("stack depth mismatch at jump {off}"));
                    }
                }
                targets.insert(inst.a, after);
                work.push((inst.a, after));
                work.push((next, after));
            }
            Op::Return => {}
            _ => work.push((next, after)),
        }
    }
    Ok((insts, targets, loops))
}

/// Lowers `f` to CLIF for the VM at `addrs`, importing helpers through
/// `tiered`.
pub(crate) fn lower(
    f: &Function,
    addrs: &VmAddrs,
    tiered: &TieredLayer,
    config: TargetFrontendConfig,
) -> Result<(ir::Function, Box<[Site]>), String> {
    let (insts, targets, loops) = analyze(f)?;
    // One inline-cache site per property get and method call.
    let mut sites = Vec::new();
    let mut site_of = HashMap::new();
    for inst in &insts {
        if matches!(inst.op, Op::GetProperty | Op::SetProperty | Op::Invoke) {
            let name = f.chunk.constants.get(inst.a).ok_or("bad constant")?.0;
            site_of.insert(inst.off, sites.len());
            sites.push(Site {
                name,
                hint: std::cell::Cell::new(u32::MAX),
            });
        }
    }
    let sites = sites.into_boxed_slice();
    let site_addr = |off: usize| -> u64 { &sites[site_of[&off]] as *const Site as u64 };
    let site_addrs: HashMap<usize, u64> = site_of.keys().map(|&o| (o, site_addr(o))).collect();
    let has_captures = insts.iter().any(|i| {
        i.op == Op::Closure && (0..(i.len - 2) / 2).any(|u| f.chunk.code[i.off + 2 + 2 * u] != 0)
    });
    let mut func = ir::Function::with_name_signature(UserFuncName::default(), signature());
    let mut ctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut ctx);
    let sig = b.import_signature(signature());
    // Helpers are imported when first used.
    let imports: HashMap<&'static str, UserExternalName> = super::helpers::HELPERS
        .iter()
        .map(|(name, _)| (*name, tiered.import(name)))
        .collect();

    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (vm, base, at) = (params[0], params[1], params[2]);
    let flags = MemFlagsData::trusted();
    let stack = b.ins().iconst(I64, addrs.stack as i64);
    let base_bytes = b.ins().ishl_imm_s(base, 3);
    let slots = b.ins().iadd(stack, base_bytes);
    let count = b.ins().load(I64, flags, vm, VM_FRAME_COUNT as i32);
    let index = b.ins().iadd_imm_s(count, -1);
    let frames = b.ins().iconst(I64, addrs.frames as i64);
    let frame_off = b.ins().imul_imm_s(index, FRAME_SIZE as i64);
    let frame = b.ins().iadd(frames, frame_off);

    let mut blocks: HashMap<usize, Block> = HashMap::new();
    blocks.insert(0, b.create_block());
    for &t in targets.keys() {
        blocks.entry(t).or_insert_with(|| b.create_block());
    }
    let fail = b.create_block();
    let mut switch = Switch::new();
    switch.set_entry(0, blocks[&0]);
    for &l in &loops {
        switch.set_entry(l as u128, blocks[&l]);
    }
    switch.emit(&mut b, at, fail);

    let mut lw = Lower {
        b,
        imports,
        helpers: HashMap::new(),
        sig,
        vm,
        base,
        slots,
        frame,
        index,
        cache: Vec::new(),
        sites: site_addrs,
        has_captures,
        fail,
        addrs,
    };
    let mut filled = true;
    for inst in &insts {
        if let Some(&block) = blocks.get(&inst.off) {
            if !filled {
                lw.flush(inst.depth);
                lw.b.ins().jump(block, &[]);
            }
            lw.b.switch_to_block(block);
            lw.cache.clear();
            filled = false;
        }
        if filled || !inst.reachable {
            continue;
        }
        filled = lw.inst(f, inst, &blocks)?;
    }
    if !filled {
        // The code ends without a return: unreachable for compiler output.
        lw.b.ins().jump(fail, &[]);
    }
    lw.b.switch_to_block(fail);
    lw.b.set_cold_block(fail);
    let one = lw.b.ins().iconst(I64, 1);
    lw.b.ins().return_(&[one]);
    lw.b.seal_all_blocks();
    lw.b.finalize(config);
    Ok((func, sites))
}

struct Lower<'a, 'f> {
    b: FunctionBuilder<'f>,
    /// Every helper's external name.
    imports: HashMap<&'static str, UserExternalName>,
    /// The helpers imported so far.
    helpers: HashMap<&'static str, FuncRef>,
    sig: SigRef,
    vm: ir::Value,
    base: ir::Value,
    /// Address of the frame's slot 0.
    slots: ir::Value,
    /// Address of the frame's `CallFrame`.
    frame: ir::Value,
    /// The frame's index.
    index: ir::Value,
    /// Per slot: its value, and whether memory lacks it (dirty).
    cache: Vec<Option<(ir::Value, bool)>>,
    /// Inline-cache sites by instruction offset.
    sites: HashMap<usize, u64>,
    has_captures: bool,
    /// Returns status 1.
    fail: Block,
    addrs: &'a VmAddrs,
}

impl Lower<'_, '_> {
    fn get(&mut self, k: usize) -> ir::Value {
        if let Some(Some((v, _))) = self.cache.get(k) {
            return *v;
        }
        let v = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), self.slots, (k * 8) as i32);
        self.put(k, v, false);
        v
    }

    fn put(&mut self, k: usize, v: ir::Value, dirty: bool) {
        if self.cache.len() <= k {
            self.cache.resize(k + 1, None);
        }
        self.cache[k] = Some((v, dirty));
    }

    fn set(&mut self, k: usize, v: ir::Value) {
        self.put(k, v, true);
    }

    /// The stack is now `depth` deep: forgets the slots above.
    fn truncate(&mut self, depth: usize) {
        self.cache.truncate(depth);
    }

    /// Writes the dirty slots below `depth` back to the stack.
    fn flush(&mut self, depth: usize) {
        for k in 0..depth.min(self.cache.len()) {
            if let Some((v, true)) = self.cache[k] {
                self.b
                    .ins()
                    .store(MemFlagsData::trusted(), v, self.slots, (k * 8) as i32);
                self.cache[k] = Some((v, false));
            }
        }
    }

    /// Flushes, sets the VM's stack top to `depth` and the frame's ip to
    /// `ip`: the state a helper needs.
    fn sync(&mut self, depth: usize, ip: usize) {
        self.flush(depth);
        let sp = self.b.ins().iadd_imm_s(self.base, depth as i64);
        self.b
            .ins()
            .store(MemFlagsData::trusted(), sp, self.vm, VM_SP as i32);
        self.store_ip(ip);
    }

    fn store_ip(&mut self, ip: usize) {
        let ip = self.b.ins().iconst(I64, ip as i64);
        self.b
            .ins()
            .store(MemFlagsData::trusted(), ip, self.frame, FRAME_IP as i32);
    }

    fn konst(&mut self, bits: u64) -> ir::Value {
        self.b.ins().iconst(I64, bits as i64)
    }

    fn helper(&mut self, name: &str, a: ir::Value, b: ir::Value) -> ir::Value {
        let vm = self.vm;
        self.helper_with(name, vm, a, b)
    }

    /// Calls a helper whose first argument is not the VM.
    fn helper_with(
        &mut self,
        name: &str,
        first: ir::Value,
        a: ir::Value,
        b: ir::Value,
    ) -> ir::Value {
        let f = match self.helpers.get(name) {
            Some(&f) => f,
            None => {
                let (&key, external) = self
                    .imports
                    .get_key_value(name)
                    .expect("a helper of HELPERS");
                let user = self.b.func.declare_imported_user_function(external.clone());
                let f = self.b.import_function(ExtFuncData {
                    name: ExternalName::User(user),
                    signature: self.sig,
                    colocated: false,
                    patchable: false,
                });
                self.helpers.insert(key, f);
                f
            }
        };
        let call = self.b.ins().call(f, &[first, a, b]);
        self.b.inst_results(call)[0]
    }

    /// Calls a helper returning a status; continues if it is 0, else the
    /// function returns 1.
    fn checked(&mut self, name: &str, a: ir::Value, b: ir::Value) {
        let status = self.helper(name, a, b);
        self.check(status);
    }

    fn check(&mut self, status: ir::Value) {
        let next = self.b.create_block();
        self.b.ins().brif(status, self.fail, &[], next, &[]);
        self.b.switch_to_block(next);
    }

    /// A stack helper: syncs, calls, checks; the stack is then
    /// `new_depth` deep with slots from `written` rewritten in memory.
    fn stack_helper(
        &mut self,
        name: &str,
        (a, b): (u64, u64),
        depth: usize,
        ip: usize,
        new_depth: usize,
        written: usize,
    ) {
        self.sync(depth, ip);
        let (a, b) = (self.konst(a), self.konst(b));
        self.checked(name, a, b);
        self.truncate(written.min(new_depth));
    }

    /// Reports error `code` (operand `operand`) and fails, in a cold block
    /// taken when `cond` is true.
    fn error_if(&mut self, cond: ir::Value, code: u64, operand: u64, depth: usize, ip: usize) {
        let err = self.b.create_block();
        let next = self.b.create_block();
        self.b.ins().brif(cond, err, &[], next, &[]);
        self.b.switch_to_block(err);
        self.b.set_cold_block(err);
        let saved = self.cache.clone();
        self.sync(depth, ip);
        let (c, o) = (self.konst(code), self.konst(operand));
        self.helper("lox_error", c, o);
        self.b.ins().jump(self.fail, &[]);
        self.cache = saved;
        self.b.switch_to_block(next);
    }

    fn is_number(&mut self, v: ir::Value) -> ir::Value {
        let bits = self.b.ins().band_imm_s(v, QNAN as i64);
        self.b.ins().icmp_imm_s(IntCC::NotEqual, bits, QNAN as i64)
    }

    fn both_numbers(&mut self, x: ir::Value, y: ir::Value) -> ir::Value {
        let a = self.is_number(x);
        let b = self.is_number(y);
        self.b.ins().band(a, b)
    }

    fn float_of(&mut self, v: ir::Value) -> ir::Value {
        self.b.ins().bitcast(types::F64, MemFlagsData::new(), v)
    }

    fn bits_of(&mut self, v: ir::Value) -> ir::Value {
        self.b.ins().bitcast(I64, MemFlagsData::new(), v)
    }

    /// The bits of `r = x op y` as the hardware computes them: a NaN made
    /// from non-NaN operands is x86's default NaN (negative, as the
    /// interpreter and clox print it, `-nan`), also where LLVM folded the
    /// operation at compile time (its folded NaN is positive). NaN operands
    /// propagate (the first one), as both do already.
    fn x86_nan(&mut self, x: ir::Value, y: ir::Value, r: ir::Value) -> ir::Value {
        let r_nan = self.b.ins().fcmp(FloatCC::Unordered, r, r);
        let in_nan = self.b.ins().fcmp(FloatCC::Unordered, x, y);
        let made = self.b.ins().band_not(r_nan, in_nan);
        let bits = self.bits_of(r);
        let default = self.konst(0xfff8_0000_0000_0000);
        self.b.ins().select(made, default, bits)
    }

    fn boolean(&mut self, c: ir::Value) -> ir::Value {
        let t = self.konst(LoxValue::TRUE.0);
        let f = self.konst(LoxValue::FALSE.0);
        self.b.ins().select(c, t, f)
    }

    fn falsey(&mut self, v: ir::Value) -> ir::Value {
        let nil = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, v, LoxValue::NIL.0 as i64);
        let fls = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, v, LoxValue::FALSE.0 as i64);
        self.b.ins().bor(nil, fls)
    }

    /// Arithmetic or comparison on two numbers (error otherwise).
    fn numeric(&mut self, op: Op, d: usize, ip: usize) {
        let (x, y) = (self.get(d - 2), self.get(d - 1));
        let ok = self.both_numbers(x, y);
        let bad = self.b.ins().bxor_imm_s(ok, 1);
        self.error_if(bad, ERR_NUMBERS, 0, d, ip);
        let (fx, fy) = (self.float_of(x), self.float_of(y));
        let r = match op {
            Op::Subtract => {
                let r = self.b.ins().fsub(fx, fy);
                self.x86_nan(fx, fy, r)
            }
            Op::Multiply => {
                let r = self.b.ins().fmul(fx, fy);
                self.x86_nan(fx, fy, r)
            }
            Op::Divide => {
                let r = self.b.ins().fdiv(fx, fy);
                self.x86_nan(fx, fy, r)
            }
            Op::Greater => {
                let c = self.b.ins().fcmp(FloatCC::GreaterThan, fx, fy);
                self.boolean(c)
            }
            _ => {
                let c = self.b.ins().fcmp(FloatCC::LessThan, fx, fy);
                self.boolean(c)
            }
        };
        self.truncate(d - 1);
        self.set(d - 2, r);
    }

    /// Calls closure object `cptr` (a pointer, or 0 for "not a closure")
    /// whose callee slot is `d - 1 - argc`: pushes its frame and calls its
    /// compiled code when it has some and the call is ordinary; else runs
    /// `slow` (a stack helper with operands `a`, `b`) for the general case.
    fn call(&mut self, cptr: ir::Value, argc: usize, d: usize, ip: usize, slow: (&str, u64, u64)) {
        let done = self.b.create_block();
        self.call_into(cptr, argc, d, ip, slow, done);
        self.b.switch_to_block(done);
        self.truncate(d - 1 - argc);
        if self.has_captures {
            self.cache.clear();
        }
    }

    /// [`Self::call`], continuing at `done` (which the caller may reach
    /// by other paths, with the stack as a call leaves it). A slow helper
    /// taking `cptr` gets it as its second operand when `slow.2` is
    /// `u64::MAX`.
    fn call_into(
        &mut self,
        cptr: ir::Value,
        argc: usize,
        d: usize,
        ip: usize,
        slow: (&str, u64, u64),
        done: Block,
    ) {
        self.flush(d);
        let fast = self.b.create_block();
        let slow_block = self.b.create_block();
        let checks = self.b.create_block();
        self.b.ins().brif(cptr, checks, &[], slow_block, &[]);

        self.b.switch_to_block(checks);
        let flags = MemFlagsData::trusted();
        let fobj = self.b.ins().load(I64, flags, cptr, CLOSURE_FUNCTION as i32);
        let fbox = self.b.ins().load(I64, flags, fobj, FUNCTION_BOX as i32);
        let entry = self.b.ins().load(I64, flags, fbox, FN_ENTRY as i32);
        let arity = self.b.ins().uload32(flags, fbox, FN_ARITY as i32);
        let max = self.b.ins().uload32(flags, fbox, FN_MAX_SLOTS as i32);
        let count = self
            .b
            .ins()
            .load(I64, flags, self.vm, VM_FRAME_COUNT as i32);
        let callee_slot = d - 1 - argc;
        let new_base = self.b.ins().iadd_imm_s(self.base, callee_slot as i64);
        let top = self.b.ins().iadd(new_base, max);
        let c1 = self.b.ins().icmp_imm_s(IntCC::NotEqual, entry, 0);
        let c2 = self.b.ins().icmp_imm_s(IntCC::Equal, arity, argc as i64);
        let c3 = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, count, FRAMES_MAX as i64);
        let c4 = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThanOrEqual, top, STACK_MAX as i64);
        let c12 = self.b.ins().band(c1, c2);
        let c34 = self.b.ins().band(c3, c4);
        let ok = self.b.ins().band(c12, c34);
        self.b.ins().brif(ok, fast, &[], slow_block, &[]);

        self.b.switch_to_block(fast);
        self.store_ip(ip);
        let frames = self.konst(self.addrs.frames);
        let off = self.b.ins().imul_imm_s(count, FRAME_SIZE as i64);
        let new_frame = self.b.ins().iadd(frames, off);
        let zero = self.konst(0);
        self.b
            .ins()
            .store(flags, cptr, new_frame, FRAME_CLOSURE as i32);
        self.b.ins().store(flags, zero, new_frame, FRAME_IP as i32);
        self.b
            .ins()
            .store(flags, new_base, new_frame, FRAME_BASE as i32);
        let count1 = self.b.ins().iadd_imm_s(count, 1);
        self.b
            .ins()
            .store(flags, count1, self.vm, VM_FRAME_COUNT as i32);
        let vm = self.vm;
        let call = self
            .b
            .ins()
            .call_indirect(self.sig, entry, &[vm, new_base, zero]);
        let status = self.b.inst_results(call)[0];
        self.b.ins().brif(status, self.fail, &[], done, &[]);

        self.b.switch_to_block(slow_block);
        let saved = self.cache.clone();
        self.sync(d, ip);
        let a = self.konst(slow.1);
        let bb = if slow.2 == u64::MAX {
            cptr
        } else {
            self.konst(slow.2)
        };
        let status = self.helper(slow.0, a, bb);
        self.b.ins().brif(status, self.fail, &[], done, &[]);
        self.cache = saved;
    }

    /// Lowers one instruction; returns whether it ended the block.
    fn inst(
        &mut self,
        f: &Function,
        inst: &Inst,
        blocks: &HashMap<usize, Block>,
    ) -> Result<bool, String> {
        let d = inst.depth;
        let ip = inst.off + inst.len;
        let constant = |k: usize| -> Result<u64, String> {
            f.chunk
                .constants
                .get(k)
                .map(|v| v.0)
                .ok_or_else(|| format!("bad constant {k}"))
        };
        match inst.op {
            Op::Constant => {
                let v = self.konst(constant(inst.a)?);
                self.set(d, v);
            }
            Op::Nil => {
                let v = self.konst(LoxValue::NIL.0);
                self.set(d, v);
            }
            Op::True => {
                let v = self.konst(LoxValue::TRUE.0);
                self.set(d, v);
            }
            Op::False => {
                let v = self.konst(LoxValue::FALSE.0);
                self.set(d, v);
            }
            Op::Pop => self.truncate(d - 1),
            Op::GetLocal => {
                let v = self.get(inst.a);
                self.set(d, v);
            }
            Op::SetLocal => {
                let v = self.get(d - 1);
                self.set(inst.a, v);
            }
            Op::GetGlobal | Op::SetGlobal => {
                let addr = self.konst(self.addrs.globals + 8 * inst.a as u64);
                let v = self.b.ins().load(I64, MemFlagsData::trusted(), addr, 0);
                let undefined =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::Equal, v, LoxValue::UNDEFINED.0 as i64);
                self.error_if(undefined, ERR_UNDEFINED, inst.a as u64, d, ip);
                if inst.op == Op::GetGlobal {
                    self.set(d, v);
                } else {
                    let v = self.get(d - 1);
                    self.b.ins().store(MemFlagsData::trusted(), v, addr, 0);
                }
            }
            Op::DefineGlobal => {
                let addr = self.konst(self.addrs.globals + 8 * inst.a as u64);
                let v = self.get(d - 1);
                self.b.ins().store(MemFlagsData::trusted(), v, addr, 0);
                self.truncate(d - 1);
            }
            Op::GetUpvalue => {
                let (i, z) = (self.konst(inst.a as u64), self.konst(0));
                let v = self.helper("lox_get_upvalue", i, z);
                self.set(d, v);
            }
            Op::SetUpvalue => {
                let i = self.konst(inst.a as u64);
                let v = self.get(d - 1);
                self.helper("lox_set_upvalue", i, v);
            }
            Op::GetProperty => {
                let name = constant(inst.a)?;
                let receiver = self.get(d - 1);
                let site = self.konst(self.sites[&inst.off]);
                let z = self.konst(0);
                let v = self.helper_with("lox_get_field", site, receiver, z);
                let miss = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::Equal, v, LoxValue::UNDEFINED.0 as i64);
                let slow = self.b.create_block();
                let done = self.b.create_block();
                self.b.append_block_param(done, I64);
                self.b.ins().brif(miss, slow, &[], done, &[v.into()]);
                self.b.switch_to_block(slow);
                let saved = self.cache.clone();
                self.sync(d, ip);
                let (n, z) = (self.konst(name), self.konst(0));
                self.checked("lox_get_property", n, z);
                let r = self.b.ins().load(
                    I64,
                    MemFlagsData::trusted(),
                    self.slots,
                    ((d - 1) * 8) as i32,
                );
                self.b.ins().jump(done, &[r.into()]);
                self.cache = saved;
                self.b.switch_to_block(done);
                let r = self.b.block_params(done)[0];
                // Dirty: the fast path did not store it.
                self.set(d - 1, r);
            }
            Op::SetProperty => {
                // Fast: an existing field of an instance, overwritten in
                // place (no growth, no error); else the general helper.
                let name = constant(inst.a)?;
                let (instance, value) = (self.get(d - 2), self.get(d - 1));
                let site = self.konst(self.sites[&inst.off]);
                let missed = self.helper_with("lox_set_field", site, instance, value);
                let slow = self.b.create_block();
                let done = self.b.create_block();
                self.b.ins().brif(missed, slow, &[], done, &[]);
                self.b.switch_to_block(slow);
                let saved = self.cache.clone();
                self.sync(d, ip);
                let (n, z) = (self.konst(name), self.konst(0));
                self.checked("lox_set_property", n, z);
                self.b.ins().jump(done, &[]);
                self.cache = saved;
                self.b.switch_to_block(done);
                self.truncate(d - 1);
                self.set(d - 2, value);
            }
            Op::GetSuper => {
                self.stack_helper("lox_get_super", (constant(inst.a)?, 0), d, ip, d - 1, d - 2)
            }
            Op::Equal => {
                let (x, y) = (self.get(d - 2), self.get(d - 1));
                let nums = self.both_numbers(x, y);
                let (fx, fy) = (self.float_of(x), self.float_of(y));
                let feq = self.b.ins().fcmp(FloatCC::Equal, fx, fy);
                let ieq = self.b.ins().icmp(IntCC::Equal, x, y);
                let eq = self.b.ins().select(nums, feq, ieq);
                let r = self.boolean(eq);
                self.truncate(d - 1);
                self.set(d - 2, r);
            }
            Op::Greater | Op::Less | Op::Subtract | Op::Multiply | Op::Divide => {
                self.numeric(inst.op, d, ip)
            }
            Op::Add => {
                let (x, y) = (self.get(d - 2), self.get(d - 1));
                let nums = self.both_numbers(x, y);
                let fast = self.b.create_block();
                let slow = self.b.create_block();
                let done = self.b.create_block();
                self.b.append_block_param(done, I64);
                self.b.ins().brif(nums, fast, &[], slow, &[]);
                self.b.switch_to_block(fast);
                let (fx, fy) = (self.float_of(x), self.float_of(y));
                let s = self.b.ins().fadd(fx, fy);
                let s = self.x86_nan(fx, fy, s);
                self.b.ins().jump(done, &[s.into()]);
                self.b.switch_to_block(slow);
                let saved = self.cache.clone();
                self.sync(d, ip);
                let z = self.konst(0);
                self.checked("lox_add", z, z);
                let r = self.b.ins().load(
                    I64,
                    MemFlagsData::trusted(),
                    self.slots,
                    ((d - 2) * 8) as i32,
                );
                self.b.ins().jump(done, &[r.into()]);
                self.cache = saved;
                self.b.switch_to_block(done);
                let r = self.b.block_params(done)[0];
                self.truncate(d - 1);
                self.set(d - 2, r);
            }
            Op::Not => {
                let v = self.get(d - 1);
                let c = self.falsey(v);
                let r = self.boolean(c);
                self.set(d - 1, r);
            }
            Op::Negate => {
                let v = self.get(d - 1);
                let num = self.is_number(v);
                let bad = self.b.ins().bxor_imm_s(num, 1);
                self.error_if(bad, ERR_NUMBER, 0, d, ip);
                let fv = self.float_of(v);
                let n = self.b.ins().fneg(fv);
                let r = self.bits_of(n);
                self.set(d - 1, r);
            }
            Op::Print => {
                let v = self.get(d - 1);
                let z = self.konst(0);
                self.helper("lox_print", v, z);
                self.truncate(d - 1);
            }
            Op::Jump | Op::Loop => {
                self.flush(d);
                let target = blocks[&inst.a];
                self.b.ins().jump(target, &[]);
                return Ok(true);
            }
            Op::JumpIfFalse => {
                let v = self.get(d - 1);
                let c = self.falsey(v);
                self.flush(d);
                let next = self.b.create_block();
                let target = blocks[&inst.a];
                self.b.ins().brif(c, target, &[], next, &[]);
                self.b.switch_to_block(next);
            }
            Op::Call => {
                let argc = inst.a;
                // Every path (a closure, a class whose instance replaces it
                // in memory, anything else) starts from a flushed stack.
                self.flush(d);
                let callee = self.get(d - 1 - argc);
                // A closure object: its pointer, else 0.
                let tagged = self.b.ins().band_imm_s(callee, (QNAN | SIGN_BIT) as i64);
                let is_obj =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::Equal, tagged, (QNAN | SIGN_BIT) as i64);
                let ptr = self.b.ins().band_imm_s(callee, !(QNAN | SIGN_BIT) as i64);
                let check_tag = self.b.create_block();
                let pick = self.b.create_block();
                self.b.append_block_param(pick, I64);
                let zero = self.konst(0);
                self.b
                    .ins()
                    .brif(is_obj, check_tag, &[], pick, &[zero.into()]);
                self.b.switch_to_block(check_tag);
                let tag = self
                    .b
                    .ins()
                    .uload8(I64, MemFlagsData::trusted(), ptr, OBJ_TAG as i32);
                let is_closure = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::Equal, tag, TAG_CLOSURE as i64);
                let is_class = self.b.ins().icmp_imm_s(IntCC::Equal, tag, TAG_CLASS as i64);
                let zero = self.konst(0);
                let c = self.b.ins().select(is_closure, ptr, zero);
                let class = self.b.create_block();
                self.b.ins().brif(is_class, class, &[], pick, &[c.into()]);
                // A class: the instance replaces it in the callee slot
                // (a helper allocates it); then its `init` closure, if it
                // has one, is called like any closure.
                let done = self.b.create_block();
                self.b.switch_to_block(class);
                let saved = self.cache.clone();
                self.sync(d, ip);
                let n = self.konst(argc as u64);
                let r = self.helper("lox_instantiate", n, ptr);
                let failed = self.b.ins().icmp_imm_s(IntCC::Equal, r, 1);
                let no_init = self.b.ins().icmp_imm_s(IntCC::Equal, r, 0);
                let ok = self.b.create_block();
                self.b.ins().brif(failed, self.fail, &[], ok, &[]);
                self.b.switch_to_block(ok);
                self.b.ins().brif(no_init, done, &[], pick, &[r.into()]);
                self.cache = saved;
                self.b.switch_to_block(pick);
                let cptr = self.b.block_params(pick)[0];
                self.call_into(cptr, argc, d, ip, ("lox_call", argc as u64, u64::MAX), done);
                self.b.switch_to_block(done);
                self.truncate(d - 1 - argc);
                if self.has_captures {
                    self.cache.clear();
                }
            }
            Op::Invoke => {
                let (name, argc) = (constant(inst.a)?, inst.b);
                let receiver = self.get(d - 1 - argc);
                let site = self.konst(self.sites[&inst.off]);
                let z = self.konst(0);
                let cptr = self.helper_with("lox_invoke_lookup", site, receiver, z);
                self.call(cptr, argc, d, ip, ("lox_invoke", name, argc as u64));
            }
            Op::SuperInvoke => {
                let argc = inst.b;
                self.stack_helper(
                    "lox_super_invoke",
                    (constant(inst.a)?, argc as u64),
                    d,
                    ip,
                    d - 1 - argc,
                    d - 2 - argc,
                );
                if self.has_captures {
                    self.cache.clear();
                }
            }
            Op::Closure => {
                let function = constant(inst.a)?;
                self.stack_helper(
                    "lox_closure",
                    (function, (inst.off + 2) as u64),
                    d,
                    ip,
                    d + 1,
                    d,
                );
            }
            Op::CloseUpvalue => self.stack_helper("lox_close_upvalue", (0, 0), d, ip, d - 1, d - 1),
            Op::Return => {
                let result = self.get(d - 1);
                if self.has_captures {
                    self.sync(d, ip);
                    let z = self.konst(0);
                    let base = self.base;
                    self.helper("lox_close_frame", base, z);
                }
                let flags = MemFlagsData::trusted();
                self.b.ins().store(flags, result, self.slots, 0);
                self.b
                    .ins()
                    .store(flags, self.index, self.vm, VM_FRAME_COUNT as i32);
                let sp = self.b.ins().iadd_imm_s(self.base, 1);
                self.b.ins().store(flags, sp, self.vm, VM_SP as i32);
                let z = self.konst(0);
                self.b.ins().return_(&[z]);
                return Ok(true);
            }
            Op::Class => self.stack_helper("lox_class", (constant(inst.a)?, 0), d, ip, d + 1, d),
            Op::Inherit => self.stack_helper("lox_inherit", (0, 0), d, ip, d - 1, d - 1),
            Op::Method => {
                self.stack_helper("lox_method", (constant(inst.a)?, 0), d, ip, d - 1, d - 1)
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Chunk;
    use crate::object::JitInfo;

    fn function(code: &[u8], max_slots: usize) -> Function {
        let mut chunk = Chunk::default();
        for &b in code {
            chunk.write(b, 1);
        }
        chunk.constants.push(LoxValue::number(1.0));
        Function {
            arity: 0,
            upvalue_count: 0,
            max_slots,
            chunk,
            name: None,
            jit: JitInfo::default(),
        }
    }

    const NIL: u8 = Op::Nil as u8;
    const POP: u8 = Op::Pop as u8;
    const RET: u8 = Op::Return as u8;
    const JUMP: u8 = Op::Jump as u8;
    const JIF: u8 = Op::JumpIfFalse as u8;
    const LOOP: u8 = Op::Loop as u8;
    const K: u8 = Op::Constant as u8;

    #[test]
    fn depths_follow_jumps_and_backward_only_code() {
        // 0: nil; 1: jif +4 (-> 8); 4: pop; 5: jump +3 (-> 11);
        // 8: pop; 9: nil; 10: pop (reached only from the jif);
        // 11: loop back to 0; 14: return (unreachable).
        let f = function(
            &[
                NIL, JIF, 0, 4, POP, JUMP, 0, 3, POP, NIL, POP, LOOP, 0, 14, RET,
            ],
            3,
        );
        let (insts, targets, loops) = analyze(&f).unwrap();
        assert_eq!(insts[0].depth, 1);
        assert_eq!(targets.get(&8), Some(&2));
        assert_eq!(targets.get(&11), Some(&1));
        assert!(loops.contains(&0));
        // The return after the loop is unreachable.
        assert!(!insts.last().unwrap().reachable);
    }

    #[test]
    fn malformed_code_is_an_error_not_a_panic() {
        let cases: [(&[u8], &str); 5] = [
            (&[Op::Call as u8, 5, RET], "underflow"),
            (&[JUMP, 0, 1, K, 0, RET], "middle of an instruction"),
            (&[NIL, NIL, NIL, RET], "out of range"),
            (&[K], "truncated"),
            (&[250], "bad opcode"),
        ];
        for (code, why) in cases {
            let err = analyze(&function(code, 2)).err().unwrap_or_default();
            assert!(err.contains(why), "{code:?}: {err}");
        }
    }
}
