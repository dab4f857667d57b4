//! One LLVM function to one CLIF function: values, constants and control
//! flow here; in submodules, types and aggregate leaves (`ty.rs`), scalar
//! operations (`arith.rs`), memory and atomics (`memory.rs`), vectors
//! (`vector.rs`), calls and variadic definitions (`calls.rs`) and block
//! addresses (`blockaddr.rs`).

use std::collections::HashMap;

use cranelift_codegen::ir::{
    self, condcodes::FloatCC, condcodes::IntCC, types, AbiParam, ArgumentExtension,
    ArgumentPurpose, AtomicRmwOp, Block, BlockArg, ConstantData, Endianness, InstBuilder,
    MemFlagsData, StackSlotData, StackSlotKind, TrapCode, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Switch, Variable};

use super::intrinsics::{self, IntrinsicCall, IntrinsicHost};
use super::ll::{self, *};
use super::{vararg_thunk_symbol, ClifNames, PrivateData};

mod arith;
mod blockaddr;
mod calls;
mod memory;
mod ty;
mod vector;

pub(super) use blockaddr::collect_blockaddresses;
use calls::{signature, Host};
use ty::*;

pub(super) type R<T> = Result<T, String>;

/// What the module-level pass knows, shared by every function.
pub(super) struct ModuleInfo {
    pub td: LLVMTargetDataRef,
    /// Block-address tables: a constant global whose every use is in one
    /// function, and which holds `blockaddress` constants of it.
    pub tables: HashMap<LLVMValueRef, LLVMValueRef>,
    /// Functions whose block addresses escape (see `escaping_block_addresses`).
    pub escaping: std::collections::HashSet<LLVMValueRef>,
    pub kinds: AttrKinds,
}

pub(super) struct AttrKinds {
    byval: u32,
    sret: u32,
    zeroext: u32,
    signext: u32,
    returns_twice: u32,
    inreg: u32,
    nest: u32,
    align: u32,
}

impl AttrKinds {
    pub(super) fn new() -> Self {
        AttrKinds {
            byval: ll::attr_kind("byval"),
            sret: ll::attr_kind("sret"),
            zeroext: ll::attr_kind("zeroext"),
            signext: ll::attr_kind("signext"),
            returns_twice: ll::attr_kind("returns_twice"),
            inreg: ll::attr_kind("inreg"),
            nest: ll::attr_kind("nest"),
            align: ll::attr_kind("align"),
        }
    }
}

/// The functions whose callers Cranelift cannot compile.
const RETURNS_TWICE: &[&str] = &[
    "setjmp",
    "_setjmp",
    "__setjmp",
    "sigsetjmp",
    "__sigsetjmp",
    "savectx",
    "vfork",
    "getcontext",
];

/// How a parameter or argument is passed.
#[derive(Clone, Copy, Debug)]
enum ParamKind {
    /// As its leaves, with this extension for a scalar.
    Plain(ArgumentExtension),
    /// A pointer to a copy of `size` bytes the caller makes (`byval`).
    ByVal(u32),
    /// The pointer to the result (`sret`).
    Sret,
}

/// A function type with its attributes, as CLIF sees it.
struct SigInfo {
    sig: ir::Signature,
    /// Per LLVM parameter: how many CLIF parameters it takes.
    params: Vec<usize>,
}

/// The state of a variadic definition.
struct VaInfo {
    /// The 176-byte register save area.
    save_area: Value,
    gp_used: u32,
    fp_used: u32,
    /// Bytes of named arguments passed on the stack.
    stack_named: u32,
}

pub(super) struct Translation {
    pub func: ir::Function,
    pub data: Vec<PrivateData>,
    pub osr_safe: bool,
}

struct Tr<'a, 'b> {
    b: FunctionBuilder<'b>,
    names: &'a mut dyn ClifNames,
    info: &'a ModuleInfo,
    f: LLVMValueRef,
    fname: String,
    values: HashMap<LLVMValueRef, Vec<Value>>,
    blocks: HashMap<LLVMBasicBlockRef, Block>,
    /// The LLVM blocks in translation order (reverse post-order).
    order: Vec<LLVMBasicBlockRef>,
    cur: LLVMBasicBlockRef,
    imports: HashMap<(bool, String), Vec<(ir::Signature, ir::FuncRef)>>,
    globals: HashMap<String, ir::GlobalValue>,
    /// Canonical signatures of the functions referred to.
    sigs: HashMap<LLVMValueRef, ir::Signature>,
    va: Option<VaInfo>,
    data: Vec<PrivateData>,
    /// Index + 1 of each block whose address the function takes.
    block_ids: HashMap<LLVMBasicBlockRef, u32>,
    /// The blocks in `block_ids` order.
    addressed: Vec<LLVMBasicBlockRef>,
    /// Entry-block allocas held in SSA variables instead of memory.
    promoted: HashMap<LLVMValueRef, Variable>,
}

fn err<T>(v: LLVMValueRef) -> R<T> {
    Err(ll::print(v))
}

fn int_cc(p: LLVMIntPredicate) -> (IntCC, bool) {
    use LLVMIntPredicate::*;
    match p {
        LLVMIntEQ => (IntCC::Equal, false),
        LLVMIntNE => (IntCC::NotEqual, false),
        LLVMIntUGT => (IntCC::UnsignedGreaterThan, false),
        LLVMIntUGE => (IntCC::UnsignedGreaterThanOrEqual, false),
        LLVMIntULT => (IntCC::UnsignedLessThan, false),
        LLVMIntULE => (IntCC::UnsignedLessThanOrEqual, false),
        LLVMIntSGT => (IntCC::SignedGreaterThan, true),
        LLVMIntSGE => (IntCC::SignedGreaterThanOrEqual, true),
        LLVMIntSLT => (IntCC::SignedLessThan, true),
        LLVMIntSLE => (IntCC::SignedLessThanOrEqual, true),
    }
}

fn float_cc(p: LLVMRealPredicate) -> Result<FloatCC, bool> {
    use LLVMRealPredicate::*;
    Ok(match p {
        LLVMRealPredicateFalse => return Err(false),
        LLVMRealPredicateTrue => return Err(true),
        LLVMRealOEQ => FloatCC::Equal,
        LLVMRealOGT => FloatCC::GreaterThan,
        LLVMRealOGE => FloatCC::GreaterThanOrEqual,
        LLVMRealOLT => FloatCC::LessThan,
        LLVMRealOLE => FloatCC::LessThanOrEqual,
        LLVMRealONE => FloatCC::OrderedNotEqual,
        LLVMRealORD => FloatCC::Ordered,
        LLVMRealUNO => FloatCC::Unordered,
        LLVMRealUEQ => FloatCC::UnorderedOrEqual,
        LLVMRealUGT => FloatCC::UnorderedOrGreaterThan,
        LLVMRealUGE => FloatCC::UnorderedOrGreaterThanOrEqual,
        LLVMRealULT => FloatCC::UnorderedOrLessThan,
        LLVMRealULE => FloatCC::UnorderedOrLessThanOrEqual,
        LLVMRealUNE => FloatCC::NotEqual,
    })
}

fn little() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// The blocks of `f` reachable from its entry, in reverse post-order.
fn reverse_post_order(f: LLVMValueRef) -> Vec<LLVMBasicBlockRef> {
    let entry = ll::first_block(f);
    let mut seen = std::collections::HashSet::new();
    let mut post = Vec::new();
    let mut stack: Vec<(LLVMBasicBlockRef, u32)> = vec![(entry, 0)];
    seen.insert(entry);
    while let Some((bb, next)) = stack.last_mut() {
        let term = ll::terminator(*bb);
        let n = if term.is_null() {
            0
        } else {
            ll::num_successors(term)
        };
        if *next < n {
            let s = ll::successor(term, *next);
            *next += 1;
            if seen.insert(s) {
                stack.push((s, 0));
            }
        } else {
            post.push(*bb);
            stack.pop();
        }
    }
    post.reverse();
    post
}

/// Translates function `f` (a definition).
pub(super) fn translate(
    f: LLVMValueRef,
    names: &mut dyn ClifNames,
    info: &ModuleInfo,
) -> R<Translation> {
    let fty = ll::global_value_type(f);
    let fname = ll::name(f);
    let variadic = ll::is_vararg_type(fty) != 0;
    let sig_info = signature(info, fty, &|i, k| ll::fn_attr(f, i, k), None)?;
    let mut sig = sig_info.sig.clone();
    if variadic {
        sig.params.clear();
        for _ in 0..6 {
            sig.params.push(AbiParam::new(types::I64));
        }
        for _ in 0..8 {
            sig.params.push(AbiParam::new(types::F64X2));
        }
        for p in &sig_info.sig.params {
            if p.purpose != ArgumentPurpose::Normal {
                return Err("variadic function with byval or sret parameters".into());
            }
        }
    }
    let mut func = ir::Function::with_name_signature(ir::UserFuncName::default(), sig);
    let mut fctx = FunctionBuilderContext::new();
    let b = FunctionBuilder::new(&mut func, &mut fctx);
    let mut tr = Tr {
        b,
        names,
        info,
        f,
        fname,
        values: HashMap::new(),
        blocks: HashMap::new(),
        order: reverse_post_order(f),
        cur: std::ptr::null_mut(),
        imports: HashMap::new(),
        globals: HashMap::new(),
        sigs: HashMap::new(),
        va: None,
        data: Vec::new(),
        block_ids: HashMap::new(),
        addressed: Vec::new(),
        promoted: HashMap::new(),
    };
    tr.run(&sig_info, variadic)?;
    let osr_safe = tr.block_ids.is_empty();
    let data = std::mem::take(&mut tr.data);
    tr.b.seal_all_blocks();
    tr.b.finalize(super::frontend_config());
    Ok(Translation {
        func,
        data,
        osr_safe,
    })
}

impl<'a, 'b> Tr<'a, 'b> {
    fn run(&mut self, sig: &SigInfo, variadic: bool) -> R<()> {
        let order = self.order.clone();
        // Blocks, with block parameters for phis.
        for &bb in &order {
            let block = self.b.create_block();
            self.blocks.insert(bb, block);
            for i in ll::instructions(bb) {
                if ll::opcode(i) != LLVMOpcode::LLVMPHI {
                    break;
                }
                let mut vals = Vec::new();
                for (t, _) in leaves(self.info.td, ll::type_of(i))? {
                    vals.push(self.b.append_block_param(block, repr(t)));
                }
                self.values.insert(i, vals);
            }
        }
        self.collect_block_addresses()?;
        let entry = self.blocks[&order[0]];
        self.b.switch_to_block(entry);
        self.cur = order[0];
        if variadic {
            self.variadic_entry(entry)?;
        } else {
            self.b.append_block_params_for_function_params(entry);
            let params = self.b.block_params(entry).to_vec();
            let mut at = 0;
            for (i, &n) in sig.params.iter().enumerate() {
                let p = ll::param(self.f, i as u32);
                let mut vals = params[at..at + n].to_vec();
                if n > 0 {
                    vals = self.abi_in(vals, ll::type_of(p))?;
                }
                if is_i1(ll::type_of(p)) {
                    vals[0] = self.b.ins().band_imm_u(vals[0], 1);
                }
                self.values.insert(p, vals);
                at += n;
            }
        }
        self.promote_allocas(order[0]);
        for &bb in &order {
            if bb != order[0] {
                self.b.switch_to_block(self.blocks[&bb]);
            }
            self.cur = bb;
            for i in ll::instructions(bb) {
                self.inst(i)?;
            }
        }
        Ok(())
    }

    // ---- operands and constants ----

    fn operand(&mut self, v: LLVMValueRef) -> R<Vec<Value>> {
        if let Some(vals) = self.values.get(&v) {
            return Ok(vals.clone());
        }
        if !ll::is_a_constant(v).is_null() {
            return self.constant(v);
        }
        Err(format!("operand {}", ll::print(v)))
    }

    fn scalar(&mut self, v: LLVMValueRef) -> R<Value> {
        let vals = self.operand(v)?;
        match vals.as_slice() {
            [x] => Ok(*x),
            _ => Err(format!("aggregate operand {}", ll::print(v))),
        }
    }

    fn iconst(&mut self, t: Type, v: i64) -> Value {
        if t == types::I128 {
            let lo = self.b.ins().iconst(types::I64, v);
            return self.b.ins().sextend(types::I128, lo);
        }
        let masked = if t.bits() >= 64 {
            v
        } else {
            v & ((1i64 << t.bits()) - 1)
        };
        self.b.ins().iconst(t, masked)
    }

    fn zero(&mut self, t: Type) -> Value {
        let t = repr(t);
        if t.is_vector() {
            let c = self
                .b
                .func
                .dfg
                .constants
                .insert(ConstantData::from(vec![0u8; 16]));
            self.b.ins().vconst(t, c)
        } else if t == types::F32 {
            self.b.ins().f32const(0.0)
        } else if t == types::F64 {
            self.b.ins().f64const(0.0)
        } else {
            self.iconst(t, 0)
        }
    }

    fn zeros(&mut self, t: LLVMTypeRef) -> R<Vec<Value>> {
        let l = leaves(self.info.td, t)?;
        Ok(l.into_iter().map(|(t, _)| self.zero(t)).collect())
    }

    /// The little-endian bytes of scalar constant `c` of lane type `t`, if
    /// it is a plain number.
    fn constant_bytes(&self, c: LLVMValueRef, t: Type) -> Option<Vec<u8>> {
        let n = t.bytes() as usize;
        match ll::value_kind(c) {
            LLVMValueKind::LLVMConstantIntValueKind if n <= 8 => {
                Some(ll::const_zext(c).to_le_bytes()[..n].to_vec())
            }
            LLVMValueKind::LLVMConstantFPValueKind => Some(if t == types::F32 {
                (ll::const_real(c) as f32).to_le_bytes().to_vec()
            } else {
                ll::const_real(c).to_le_bytes().to_vec()
            }),
            LLVMValueKind::LLVMUndefValueValueKind
            | LLVMValueKind::LLVMPoisonValueKind
            | LLVMValueKind::LLVMConstantAggregateZeroValueKind
            | LLVMValueKind::LLVMConstantPointerNullValueKind => Some(vec![0; n]),
            _ => None,
        }
    }

    fn constant(&mut self, c: LLVMValueRef) -> R<Vec<Value>> {
        let t = ll::type_of(c);
        use LLVMValueKind::*;
        match ll::value_kind(c) {
            LLVMConstantIntValueKind => {
                let w = ll::int_width(t);
                if w <= 64 {
                    let ty = scalar_type(t)?;
                    let v = ll::const_zext(c) as i64;
                    Ok(vec![self.iconst(ty, v)])
                } else if w == 128 {
                    let text = ll::print(c);
                    let digits = text.rsplit(' ').next().unwrap_or("");
                    let n: i128 = if digits == "true" {
                        1
                    } else {
                        digits.parse().map_err(|_| format!("constant {text}"))?
                    };
                    let lo = self.b.ins().iconst(types::I64, n as i64);
                    let hi = self.b.ins().iconst(types::I64, (n >> 64) as i64);
                    Ok(vec![self.b.ins().iconcat(lo, hi)])
                } else {
                    Err(format!("type i{w}"))
                }
            }
            LLVMConstantFPValueKind => {
                let x = ll::const_real(c);
                Ok(vec![match scalar_type(t)? {
                    types::F32 => self.b.ins().f32const(x as f32),
                    _ => self.b.ins().f64const(x),
                }])
            }
            LLVMConstantPointerNullValueKind => Ok(vec![self.iconst(types::I64, 0)]),
            LLVMUndefValueValueKind | LLVMPoisonValueKind | LLVMConstantAggregateZeroValueKind => {
                self.zeros(t)
            }
            LLVMConstantStructValueKind
            | LLVMConstantArrayValueKind
            | LLVMConstantDataArrayValueKind
            | LLVMConstantVectorValueKind
            | LLVMConstantDataVectorValueKind => {
                if let Some((chunk, n)) = wide(t) {
                    return self.wide_constant(c, chunk, n);
                }
                if ll::type_kind(t) == LLVMTypeKind::LLVMVectorTypeKind {
                    return self.vector_constant(c, t).map(|v| vec![v]);
                }
                let n = match ll::type_kind(t) {
                    LLVMTypeKind::LLVMStructTypeKind => ll::struct_count(t) as u64,
                    _ => ll::array_len(t),
                };
                if n > MAX_LEAVES as u64 {
                    return Err(format!("aggregate constant of {n} elements"));
                }
                let mut out = Vec::new();
                for i in 0..n as u32 {
                    let e = ll::aggregate_element(c, i);
                    if e.is_null() {
                        return err(c);
                    }
                    out.extend(self.operand(e)?);
                }
                Ok(out)
            }
            LLVMFunctionValueKind => {
                let fref = self.function_ref(c, false);
                Ok(vec![self.b.ins().func_addr(types::I64, fref)])
            }
            LLVMGlobalVariableValueKind | LLVMGlobalAliasValueKind | LLVMGlobalIFuncValueKind => {
                if ll::value_kind(c) == LLVMGlobalVariableValueKind && ll::is_thread_local(c) != 0 {
                    return Err(format!("thread-local global @{}", ll::name(c)));
                }
                if let Some(&f) = self.info.tables.get(&c) {
                    if f == self.f {
                        return self.table_address(c).map(|v| vec![v]);
                    }
                }
                let name = ll::name(c);
                let gv = self.global(&name);
                Ok(vec![self.b.ins().symbol_value(types::I64, gv)])
            }
            LLVMBlockAddressValueKind => {
                let bb = ll::blockaddress_block(c);
                match self.block_ids.get(&bb) {
                    Some(&id) if ll::blockaddress_function(c) == self.f => {
                        Ok(vec![self.iconst(types::I64, id as i64)])
                    }
                    _ => Err(format!("blockaddress {}", ll::print(c))),
                }
            }
            LLVMConstantExprValueKind => {
                let op = ll::const_opcode(c);
                self.compute(op, c)
            }
            _ => Err(format!("constant {}", ll::print(c))),
        }
    }

    // ---- instructions ----

    fn def(&mut self, i: LLVMValueRef, vals: Vec<Value>) {
        self.values.insert(i, vals);
    }

    fn inst(&mut self, i: LLVMValueRef) -> R<()> {
        use LLVMOpcode::*;
        let op = ll::opcode(i);
        match op {
            LLVMPHI => Ok(()),
            LLVMRet => {
                let vals = if ll::num_operands(i) == 0 {
                    Vec::new()
                } else {
                    let x = ll::operand(i, 0);
                    let vals = self.operand(x)?;
                    self.abi_out(vals, ll::type_of(x))?
                };
                self.b.ins().return_(&vals);
                Ok(())
            }
            LLVMBr => {
                if ll::is_conditional(i) != 0 {
                    let c = self.scalar(ll::condition(i))?;
                    let (t, f) = (ll::successor(i, 0), ll::successor(i, 1));
                    let targs = self.edge_args(t)?;
                    let fargs = self.edge_args(f)?;
                    let (tb, fb) = (self.blocks[&t], self.blocks[&f]);
                    self.b.ins().brif(c, tb, &targs, fb, &fargs);
                } else {
                    let t = ll::successor(i, 0);
                    let args = self.edge_args(t)?;
                    let tb = self.blocks[&t];
                    self.b.ins().jump(tb, &args);
                }
                Ok(())
            }
            LLVMSwitch => self.switch(i),
            LLVMIndirectBr => self.indirectbr(i),
            LLVMUnreachable => {
                self.b.ins().trap(TrapCode::unwrap_user(1));
                Ok(())
            }
            LLVMAlloca if self.promoted.contains_key(&i) => Ok(()),
            LLVMAlloca => {
                let n = ll::operand(i, 0);
                if ll::is_a_constant_int(n).is_null() || ll::int_width(ll::type_of(n)) > 64 {
                    return Err(format!("dynamic alloca: {}", ll::print(i)));
                }
                let size = ll::abi_size(self.info.td, ll::allocated_type(i))
                    .checked_mul(ll::const_zext(n))
                    .filter(|&s| s < u32::MAX as u64)
                    .ok_or_else(|| format!("alloca too large: {}", ll::print(i)))?;
                let align = u64::from(ll::alignment(i).max(1));
                // Cranelift's frame is 16-byte aligned: a wider alignment
                // is made by hand in a slot large enough.
                let (slot_size, shift) = if align > 16 {
                    (size + align - 16, 4)
                } else {
                    (size, align.trailing_zeros() as u8)
                };
                if slot_size >= u64::from(u32::MAX) {
                    return Err(format!("alloca too large: {}", ll::print(i)));
                }
                let slot = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    slot_size.max(1) as u32,
                    shift,
                ));
                let mut v = self.b.ins().stack_addr(types::I64, slot, 0);
                if align > 16 {
                    let bumped = self.b.ins().iadd_imm_s(v, align as i64 - 1);
                    v = self.b.ins().band_imm_s(bumped, -(align as i64));
                }
                self.def(i, vec![v]);
                Ok(())
            }
            LLVMLoad => self.load(i),
            LLVMStore => self.store(i),
            LLVMCall => self.call(i),
            LLVMFence => {
                self.b.ins().fence();
                Ok(())
            }
            LLVMAtomicRMW => self.atomic_rmw(i),
            LLVMAtomicCmpXchg => self.cmpxchg(i),
            LLVMExtractValue => {
                let agg = ll::operand(i, 0);
                let vals = self.operand(agg)?;
                let (range, _) = leaf_range(self.info.td, ll::type_of(agg), &ll::indices(i))?;
                self.def(i, vals[range].to_vec());
                Ok(())
            }
            LLVMInsertValue => {
                let agg = ll::operand(i, 0);
                let mut vals = self.operand(agg)?;
                let x = self.operand(ll::operand(i, 1))?;
                let (range, _) = leaf_range(self.info.td, ll::type_of(agg), &ll::indices(i))?;
                if range.len() != x.len() {
                    return err(i);
                }
                vals.splice(range, x);
                self.def(i, vals);
                Ok(())
            }
            LLVMInvoke | LLVMLandingPad | LLVMResume | LLVMCallBr | LLVMCleanupRet
            | LLVMCatchRet | LLVMCatchPad | LLVMCleanupPad | LLVMCatchSwitch => err(i),
            LLVMVAArg => self.va_arg(i),
            _ => {
                let vals = self.compute(op, i)?;
                self.def(i, vals);
                Ok(())
            }
        }
    }

    /// Holds in SSA variables the entry-block allocas of one scalar that
    /// only plain loads and stores of that type (and lifetime markers)
    /// use: what -O0 code keeps its locals in. They start as zero (an
    /// uninitialized local's value is undefined).
    fn promote_allocas(&mut self, entry: LLVMBasicBlockRef) {
        let lifetime = |u: LLVMValueRef| {
            ll::opcode(u) == LLVMOpcode::LLVMCall && {
                let callee = ll::called_value(u);
                !ll::is_a_function(callee).is_null()
                    && ll::name(callee).starts_with("llvm.lifetime.")
            }
        };
        let plain = |u: LLVMValueRef| {
            ll::is_volatile(u) == 0
                && ll::ordering(u) == LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic
        };
        for a in ll::instructions(entry) {
            if ll::opcode(a) != LLVMOpcode::LLVMAlloca {
                continue;
            }
            let t = ll::allocated_type(a);
            let n = ll::operand(a, 0);
            let single = !ll::is_a_constant_int(n).is_null()
                && ll::int_width(ll::type_of(n)) <= 64
                && ll::const_zext(n) == 1;
            let Ok(ty) = scalar_type(t) else { continue };
            if !single {
                continue;
            }
            let promotable = ll::users(a).into_iter().all(|u| {
                if ll::is_a_instruction(u).is_null() {
                    return false;
                }
                match ll::opcode(u) {
                    LLVMOpcode::LLVMLoad => plain(u) && ll::type_of(u) == t,
                    LLVMOpcode::LLVMStore => {
                        plain(u)
                            && ll::operand(u, 1) == a
                            && ll::operand(u, 0) != a
                            && ll::type_of(ll::operand(u, 0)) == t
                    }
                    LLVMOpcode::LLVMCall => lifetime(u),
                    _ => false,
                }
            });
            if promotable {
                let ty = repr(ty);
                let var = self.b.declare_var(ty);
                let zero = self.zero(ty);
                self.b.def_var(var, zero);
                self.promoted.insert(a, var);
            }
        }
    }

    /// The arguments of the edge from the current block to `succ`.
    fn edge_args(&mut self, succ: LLVMBasicBlockRef) -> R<Vec<BlockArg>> {
        let mut out = Vec::new();
        for phi in ll::instructions(succ) {
            if ll::opcode(phi) != LLVMOpcode::LLVMPHI {
                break;
            }
            let mut found = None;
            for k in 0..ll::count_incoming(phi) {
                if ll::incoming_block(phi, k) == self.cur {
                    found = Some(ll::incoming_value(phi, k));
                    break;
                }
            }
            let v = found
                .ok_or_else(|| format!("phi without an incoming value: {}", ll::print(phi)))?;
            out.extend(self.operand(v)?.into_iter().map(BlockArg::from));
        }
        Ok(out)
    }

    /// A block that enters `succ` from the current block: `succ` itself, or
    /// for phis an edge block (filled by `fill_edges` once the current
    /// block is terminated).
    fn edge_block(
        &mut self,
        succ: LLVMBasicBlockRef,
        edges: &mut Vec<(Block, Block, Vec<BlockArg>)>,
    ) -> R<Block> {
        let target = self.blocks[&succ];
        if let Some((e, _, _)) = edges.iter().find(|(_, t, _)| *t == target) {
            return Ok(*e);
        }
        let args = self.edge_args(succ)?;
        if args.is_empty() {
            return Ok(target);
        }
        let e = self.b.create_block();
        edges.push((e, target, args));
        Ok(e)
    }

    fn fill_edges(&mut self, edges: Vec<(Block, Block, Vec<BlockArg>)>) {
        for (e, target, args) in edges {
            self.b.switch_to_block(e);
            self.b.ins().jump(target, &args);
        }
    }

    fn switch(&mut self, i: LLVMValueRef) -> R<()> {
        let cond = ll::operand(i, 0);
        let v = self.scalar(cond)?;
        let w = ll::int_width(ll::type_of(cond));
        if w > 64 {
            return Err(format!("switch on i{w}"));
        }
        let mut edges = Vec::new();
        let default = self.edge_block(ll::successor(i, 0), &mut edges)?;
        let mut sw = Switch::new();
        for k in 1..ll::num_successors(i) {
            let case = ll::operand(i, 2 * k);
            let target = self.edge_block(ll::successor(i, k), &mut edges)?;
            sw.set_entry(ll::const_zext(case) as u128, target);
        }
        sw.emit(&mut self.b, v, default);
        self.fill_edges(edges);
        Ok(())
    }
}
