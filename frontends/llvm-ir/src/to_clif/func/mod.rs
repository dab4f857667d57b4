//! One LLVM function to one CLIF function: types and values, constants,
//! control flow, scalar operations, memory. Vectors (`vector.rs`), calls
//! and variadic definitions (`calls.rs`) and block addresses
//! (`blockaddr.rs`) are in submodules.

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

mod blockaddr;
mod calls;
mod vector;

pub(super) use blockaddr::collect_blockaddresses;
use calls::{signature, Host};

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

/// The CLIF type of an LLVM scalar or vector type.
pub(super) fn scalar_type(t: LLVMTypeRef) -> R<Type> {
    Ok(match ll::type_kind(t) {
        LLVMTypeKind::LLVMIntegerTypeKind => match ll::int_width(t) {
            1 | 8 => types::I8,
            16 => types::I16,
            32 => types::I32,
            64 => types::I64,
            128 => types::I128,
            w => return Err(format!("type i{w}")),
        },
        LLVMTypeKind::LLVMFloatTypeKind => types::F32,
        LLVMTypeKind::LLVMDoubleTypeKind => types::F64,
        LLVMTypeKind::LLVMPointerTypeKind => {
            if ll::pointer_space(t) != 0 {
                return Err(format!("address space {}", ll::pointer_space(t)));
            }
            types::I64
        }
        LLVMTypeKind::LLVMVectorTypeKind => {
            let n = ll::vector_size(t);
            let e = ll::element_type(t);
            let lane = match ll::type_kind(e) {
                LLVMTypeKind::LLVMIntegerTypeKind if ll::int_width(e) == 1 => {
                    // A mask: lanes as wide as 128 bits allow.
                    match n {
                        2 => types::I64,
                        4 => types::I32,
                        8 => types::I16,
                        16 => types::I8,
                        _ => return Err(format!("vector type <{n} x i1>")),
                    }
                }
                _ => scalar_type(e)?,
            };
            if lane.is_vector() || lane == types::I128 || !matches!(lane.bits() * n, 64 | 128) {
                return Err(format!("vector type <{n} x {}> (not 64 or 128 bits)", lane));
            }
            lane.by(n).ok_or("vector type")?
        }
        LLVMTypeKind::LLVMX86_FP80TypeKind => return Err("type x86_fp80".into()),
        LLVMTypeKind::LLVMHalfTypeKind => return Err("type half".into()),
        LLVMTypeKind::LLVMFP128TypeKind => return Err("type fp128".into()),
        k => return Err(format!("type {k:?}")),
    })
}

/// The type of values of storage type `ty`: a 64-bit vector is held in
/// the low half of a 128-bit one.
pub(super) fn repr(ty: Type) -> Type {
    if ty.is_vector() && ty.bits() == 64 {
        ty.lane_type().by(128 / ty.lane_bits()).unwrap_or(ty)
    } else {
        ty
    }
}

fn is_half(ty: Type) -> bool {
    ty.is_vector() && ty.bits() == 64
}

/// The type of values of LLVM scalar or vector type `t`.
fn vtype(t: LLVMTypeRef) -> R<Type> {
    scalar_type(t).map(repr)
}

/// The ABI type of a leaf: a 64-bit vector travels in an xmm register.
fn abi_type(ty: Type) -> Type {
    if is_half(ty) {
        types::F64
    } else {
        ty
    }
}

/// A vector wider than 128 bits (and a multiple of it, at most 512): the
/// CLIF type of its 128-bit chunks and their number. Such a vector is
/// held as its chunks, like an aggregate.
fn wide(t: LLVMTypeRef) -> Option<(Type, usize)> {
    if ll::type_kind(t) != LLVMTypeKind::LLVMVectorTypeKind {
        return None;
    }
    let e = ll::element_type(t);
    if is_i1(e) {
        return None;
    }
    let lane = scalar_type(e).ok()?;
    let bits = lane.bits() * ll::vector_size(t);
    if lane == types::I128 || bits <= 128 || bits % 128 != 0 || bits > 512 {
        return None;
    }
    Some((lane.by(128 / lane.bits())?, (bits / 128) as usize))
}

fn is_aggregate(t: LLVMTypeRef) -> bool {
    matches!(
        ll::type_kind(t),
        LLVMTypeKind::LLVMStructTypeKind | LLVMTypeKind::LLVMArrayTypeKind
    )
}

fn is_i1(t: LLVMTypeRef) -> bool {
    ll::type_kind(t) == LLVMTypeKind::LLVMIntegerTypeKind && ll::int_width(t) == 1
}

/// The most leaves an aggregate value may have.
const MAX_LEAVES: usize = 64;

/// The scalar leaves of `t` with their byte offsets.
pub(super) fn leaves(td: LLVMTargetDataRef, t: LLVMTypeRef) -> R<Vec<(Type, u64)>> {
    let mut out = Vec::new();
    leaves_into(td, t, 0, &mut out)?;
    Ok(out)
}

fn leaves_into(
    td: LLVMTargetDataRef,
    t: LLVMTypeRef,
    base: u64,
    out: &mut Vec<(Type, u64)>,
) -> R<()> {
    match ll::type_kind(t) {
        LLVMTypeKind::LLVMStructTypeKind => {
            for i in 0..ll::struct_count(t) {
                let off = ll::offset_of(td, t, i);
                leaves_into(td, ll::struct_elem(t, i), base + off, out)?;
            }
        }
        LLVMTypeKind::LLVMArrayTypeKind => {
            let e = ll::element_type(t);
            let size = ll::abi_size(td, e);
            let n = ll::array_len(t);
            if n > MAX_LEAVES as u64 {
                return Err(format!("aggregate value of {n} elements"));
            }
            for i in 0..n {
                leaves_into(td, e, base + i * size, out)?;
            }
        }
        LLVMTypeKind::LLVMVoidTypeKind => {}
        _ => match wide(t) {
            Some((chunk, n)) => {
                for k in 0..n {
                    out.push((chunk, base + 16 * k as u64));
                }
            }
            None => out.push((scalar_type(t)?, base)),
        },
    }
    if out.len() > MAX_LEAVES {
        return Err("aggregate value of too many elements".into());
    }
    Ok(())
}

/// The number of leaves of each element of aggregate `t`.
fn element_leaf_counts(td: LLVMTargetDataRef, t: LLVMTypeRef) -> R<Vec<usize>> {
    match ll::type_kind(t) {
        LLVMTypeKind::LLVMStructTypeKind => (0..ll::struct_count(t))
            .map(|i| leaves(td, ll::struct_elem(t, i)).map(|l| l.len()))
            .collect(),
        LLVMTypeKind::LLVMArrayTypeKind => {
            let n = leaves(td, ll::element_type(t))?.len();
            Ok(vec![n; ll::array_len(t) as usize])
        }
        _ => Err("extractvalue/insertvalue on a non-aggregate".into()),
    }
}

fn element_type_at(t: LLVMTypeRef, i: u32) -> LLVMTypeRef {
    if ll::type_kind(t) == LLVMTypeKind::LLVMStructTypeKind {
        ll::struct_elem(t, i)
    } else {
        ll::element_type(t)
    }
}

/// The leaf range of the element at `path` of aggregate `t`, and its type.
fn leaf_range(
    td: LLVMTargetDataRef,
    mut t: LLVMTypeRef,
    path: &[u32],
) -> R<(std::ops::Range<usize>, LLVMTypeRef)> {
    let mut start = 0;
    for &i in path {
        let counts = element_leaf_counts(td, t)?;
        start += counts[..i as usize].iter().sum::<usize>();
        t = element_type_at(t, i);
    }
    let n = leaves(td, t)?.len();
    Ok((start..start + n, t))
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

    fn load(&mut self, i: LLVMValueRef) -> R<()> {
        if let Some(&var) = self.promoted.get(&ll::operand(i, 0)) {
            let v = self.b.use_var(var);
            self.def(i, vec![v]);
            return Ok(());
        }
        let t = ll::type_of(i);
        let p = self.scalar(ll::operand(i, 0))?;
        let flags = MemFlagsData::new();
        if ll::ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic {
            let ty = scalar_type(t)?;
            let it = atomic_int(ty).ok_or_else(|| ll::print(i))?;
            let mut v = self.b.ins().atomic_load(it, flags, p);
            if it != ty {
                v = self.b.ins().bitcast(ty, MemFlagsData::new(), v);
            }
            self.def(i, vec![v]);
            return Ok(());
        }
        let mut vals = Vec::new();
        let align = ll::alignment(i);
        let plain = ll::is_volatile(i) == 0;
        for (lt, off) in leaves(self.info.td, t)? {
            let flags = access_flags(plain, align, lt, off);
            if is_half(lt) {
                let x = self.b.ins().load(types::F64, flags, p, off as i32);
                vals.push(self.widen(x, lt));
            } else {
                vals.push(self.b.ins().load(lt, flags, p, off as i32));
            }
        }
        if is_i1(t) {
            vals[0] = self.b.ins().band_imm_u(vals[0], 1);
        }
        self.def(i, vals);
        Ok(())
    }

    fn store(&mut self, i: LLVMValueRef) -> R<()> {
        if let Some(&var) = self.promoted.get(&ll::operand(i, 1)) {
            let v = self.scalar(ll::operand(i, 0))?;
            self.b.def_var(var, v);
            return Ok(());
        }
        let x = ll::operand(i, 0);
        let t = ll::type_of(x);
        let vals = self.operand(x)?;
        let p = self.scalar(ll::operand(i, 1))?;
        let flags = MemFlagsData::new();
        if ll::ordering(i) != LLVMAtomicOrdering::LLVMAtomicOrderingNotAtomic {
            let ty = scalar_type(t)?;
            let it = atomic_int(ty).ok_or_else(|| ll::print(i))?;
            let mut v = vals[0];
            if it != ty {
                v = self.b.ins().bitcast(it, MemFlagsData::new(), v);
            }
            self.b.ins().atomic_store(flags, v, p);
            return Ok(());
        }
        let align = ll::alignment(i);
        let plain = ll::is_volatile(i) == 0;
        for ((lt, off), v) in leaves(self.info.td, t)?.into_iter().zip(vals) {
            let flags = access_flags(plain, align, lt, off);
            let v = if is_half(lt) { self.narrow(v) } else { v };
            self.b.ins().store(flags, v, p, off as i32);
        }
        Ok(())
    }

    fn atomic_rmw(&mut self, i: LLVMValueRef) -> R<()> {
        use LLVMAtomicRMWBinOp::*;
        let p = self.scalar(ll::operand(i, 0))?;
        let x = self.scalar(ll::operand(i, 1))?;
        let ty = scalar_type(ll::type_of(i))?;
        if !ty.is_int() || ty == types::I128 {
            return err(i);
        }
        let op = match ll::rmw_op(i) {
            LLVMAtomicRMWBinOpXchg => AtomicRmwOp::Xchg,
            LLVMAtomicRMWBinOpAdd => AtomicRmwOp::Add,
            LLVMAtomicRMWBinOpSub => AtomicRmwOp::Sub,
            LLVMAtomicRMWBinOpAnd => AtomicRmwOp::And,
            LLVMAtomicRMWBinOpNand => AtomicRmwOp::Nand,
            LLVMAtomicRMWBinOpOr => AtomicRmwOp::Or,
            LLVMAtomicRMWBinOpXor => AtomicRmwOp::Xor,
            LLVMAtomicRMWBinOpMax => AtomicRmwOp::Smax,
            LLVMAtomicRMWBinOpMin => AtomicRmwOp::Smin,
            LLVMAtomicRMWBinOpUMax => AtomicRmwOp::Umax,
            LLVMAtomicRMWBinOpUMin => AtomicRmwOp::Umin,
            _ => return err(i),
        };
        let v = self.b.ins().atomic_rmw(ty, MemFlagsData::new(), op, p, x);
        self.def(i, vec![v]);
        Ok(())
    }

    fn cmpxchg(&mut self, i: LLVMValueRef) -> R<()> {
        let p = self.scalar(ll::operand(i, 0))?;
        let e = self.scalar(ll::operand(i, 1))?;
        let x = self.scalar(ll::operand(i, 2))?;
        let ty = self.b.func.dfg.value_type(e);
        if !ty.is_int() || ty == types::I128 {
            return err(i);
        }
        let old = self.b.ins().atomic_cas(MemFlagsData::new(), p, e, x);
        let ok = self.b.ins().icmp(IntCC::Equal, old, e);
        self.def(i, vec![old, ok]);
        Ok(())
    }

    /// Instructions and constant expressions that compute a value from
    /// their operands.
    fn compute(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Vec<Value>> {
        use LLVMOpcode::*;
        let t = ll::type_of(i);
        let n_ops = ll::num_operands(i).max(0) as u32;
        if wide(t).is_some() || (0..n_ops).any(|k| wide(ll::type_of(ll::operand(i, k))).is_some()) {
            return self.wide_op(op, i);
        }
        let v = match op {
            LLVMAdd | LLVMSub | LLVMMul | LLVMUDiv | LLVMSDiv | LLVMURem | LLVMSRem | LLVMShl
            | LLVMLShr | LLVMAShr | LLVMAnd | LLVMOr | LLVMXor => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = ll::operand(i, 1);
                let ty = vtype(t)?;
                if ty.is_vector() {
                    return self.vector_int_op(op, i, a, b, ty).map(|v| vec![v]);
                }
                let b = self.scalar(b)?;
                if ty == types::I128 && matches!(op, LLVMUDiv | LLVMSDiv | LLVMURem | LLVMSRem) {
                    // As LLVM's code generator does: compiler-rt/libgcc.
                    let name = match op {
                        LLVMUDiv => "__udivti3",
                        LLVMSDiv => "__divti3",
                        LLVMURem => "__umodti3",
                        _ => "__modti3",
                    };
                    // (i128, i128) -> i128 in SysV registers, as i64 pairs.
                    let mut sig = ir::Signature::new(CallConv::SystemV);
                    sig.params = vec![AbiParam::new(types::I64); 4];
                    sig.returns = vec![AbiParam::new(types::I64); 2];
                    let f = self.import(false, name, sig);
                    let (a_lo, a_hi) = self.b.ins().isplit(a);
                    let (b_lo, b_hi) = self.b.ins().isplit(b);
                    let call = self.b.ins().call(f, &[a_lo, a_hi, b_lo, b_hi]);
                    let r = self.b.inst_results(call).to_vec();
                    return Ok(vec![self.b.ins().iconcat(r[0], r[1])]);
                }
                let ins = self.b.ins();
                let mut r = match op {
                    LLVMAdd => ins.iadd(a, b),
                    LLVMSub => ins.isub(a, b),
                    LLVMMul => ins.imul(a, b),
                    LLVMUDiv => ins.udiv(a, b),
                    LLVMSDiv => ins.sdiv(a, b),
                    LLVMURem => ins.urem(a, b),
                    LLVMSRem => ins.srem(a, b),
                    LLVMShl => ins.ishl(a, b),
                    LLVMLShr => ins.ushr(a, b),
                    LLVMAShr => ins.sshr(a, b),
                    LLVMAnd => ins.band(a, b),
                    LLVMOr => ins.bor(a, b),
                    _ => ins.bxor(a, b),
                };
                if is_i1(t) && matches!(op, LLVMAdd | LLVMSub | LLVMMul | LLVMShl) {
                    r = self.b.ins().band_imm_u(r, 1);
                }
                r
            }
            LLVMFAdd | LLVMFSub | LLVMFMul | LLVMFDiv => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ins = self.b.ins();
                match op {
                    LLVMFAdd => ins.fadd(a, b),
                    LLVMFSub => ins.fsub(a, b),
                    LLVMFMul => ins.fmul(a, b),
                    _ => ins.fdiv(a, b),
                }
            }
            LLVMFRem => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ty = scalar_type(t)?;
                let name = match ty {
                    types::F32 => "fmodf",
                    types::F64 => "fmod",
                    _ => return err(i),
                };
                let mut sig = ir::Signature::new(CallConv::SystemV);
                sig.params = vec![AbiParam::new(ty); 2];
                sig.returns = vec![AbiParam::new(ty)];
                let f = self.import(false, name, sig);
                let call = self.b.ins().call(f, &[a, b]);
                self.b.inst_results(call)[0]
            }
            LLVMFNeg => {
                let a = self.scalar(ll::operand(i, 0))?;
                self.b.ins().fneg(a)
            }
            LLVMICmp => {
                let x = ll::operand(i, 0);
                let mut a = self.scalar(x)?;
                let mut b = self.scalar(ll::operand(i, 1))?;
                let (cc, signed) = int_cc(ll::icmp_pred(i));
                let xt = ll::type_of(x);
                if ll::type_kind(xt) == LLVMTypeKind::LLVMVectorTypeKind {
                    let lt = vtype(t)?;
                    let r = self.b.ins().icmp(cc, a, b);
                    self.mask_as(r, lt).ok_or_else(|| ll::print(i))?
                } else {
                    if signed && is_i1(xt) {
                        a = self.b.ins().ineg(a);
                        b = self.b.ins().ineg(b);
                    }
                    self.b.ins().icmp(cc, a, b)
                }
            }
            LLVMFCmp => {
                let a = self.scalar(ll::operand(i, 0))?;
                let b = self.scalar(ll::operand(i, 1))?;
                let ty = vtype(t)?;
                match float_cc(ll::fcmp_pred(i)) {
                    Ok(cc) => {
                        let r = self.b.ins().fcmp(cc, a, b);
                        if ty.is_vector() {
                            self.mask_as(r, ty).ok_or_else(|| ll::print(i))?
                        } else {
                            r
                        }
                    }
                    Err(truth) => {
                        if ty.is_vector() {
                            let k = self.b.func.dfg.constants.insert(ConstantData::from(vec![
                                if truth {
                                    0xff
                                } else {
                                    0
                                };
                                16
                            ]));
                            self.b.ins().vconst(ty, k)
                        } else {
                            self.iconst(types::I8, truth as i64)
                        }
                    }
                }
            }
            LLVMSelect => {
                let c = ll::operand(i, 0);
                let cv = self.scalar(c)?;
                let a = self.operand(ll::operand(i, 1))?;
                let b = self.operand(ll::operand(i, 2))?;
                if ll::type_kind(ll::type_of(c)) == LLVMTypeKind::LLVMVectorTypeKind {
                    let ty = self.b.func.dfg.value_type(a[0]);
                    let mask = self.mask_as(cv, ty).ok_or_else(|| ll::print(i))?;
                    self.b.ins().bitselect(mask, a[0], b[0])
                } else {
                    let out = a
                        .iter()
                        .zip(&b)
                        .map(|(&x, &y)| self.b.ins().select(cv, x, y))
                        .collect();
                    return Ok(out);
                }
            }
            LLVMFreeze => return self.operand(ll::operand(i, 0)),
            LLVMTrunc | LLVMZExt | LLVMSExt | LLVMFPToUI | LLVMFPToSI | LLVMUIToFP | LLVMSIToFP
            | LLVMFPTrunc | LLVMFPExt | LLVMPtrToInt | LLVMIntToPtr | LLVMBitCast
            | LLVMAddrSpaceCast => self.cast(op, i)?,
            LLVMGetElementPtr => self.gep(i)?,
            LLVMExtractElement => {
                let v = self.scalar(ll::operand(i, 0))?;
                let idx = ll::operand(i, 1);
                if ll::is_a_constant_int(idx).is_null() {
                    return Err(format!("variable lane index: {}", ll::print(i)));
                }
                let k = ll::const_zext(idx);
                let ty = self.b.func.dfg.value_type(v);
                if k >= ty.lane_count() as u64 {
                    self.zero(vtype(t)?)
                } else {
                    let x = self.b.ins().extractlane(v, k as u8);
                    self.lane_to_scalar(x, t)
                }
            }
            LLVMInsertElement => {
                let v = self.scalar(ll::operand(i, 0))?;
                let x = self.scalar(ll::operand(i, 1))?;
                let idx = ll::operand(i, 2);
                if ll::is_a_constant_int(idx).is_null() {
                    return Err(format!("variable lane index: {}", ll::print(i)));
                }
                let k = ll::const_zext(idx);
                let ty = self.b.func.dfg.value_type(v);
                if k >= ty.lane_count() as u64 {
                    v
                } else {
                    let x = self.scalar_to_lane(x, ty.lane_type());
                    self.b.ins().insertlane(v, x, k as u8)
                }
            }
            LLVMShuffleVector => self.shuffle(i)?,
            _ => return err(i),
        };
        Ok(vec![v])
    }

    fn cast(&mut self, op: LLVMOpcode, i: LLVMValueRef) -> R<Value> {
        use LLVMOpcode::*;
        let x = ll::operand(i, 0);
        let (from_t, to_t) = (ll::type_of(x), ll::type_of(i));
        let v = self.scalar(x)?;
        let from = self.b.func.dfg.value_type(v);
        let to = vtype(to_t)?;
        let vector = from.is_vector() || to.is_vector();
        if vector && op != LLVMBitCast {
            // A mask extended to lanes: all ones (sext) or one (zext).
            if matches!(op, LLVMSExt | LLVMZExt) && is_i1(ll::element_type(from_t)) {
                let m = self.mask_as(v, to).ok_or_else(|| ll::print(i))?;
                if op == LLVMSExt {
                    return Ok(m);
                }
                let one = self.iconst(to.lane_type(), 1);
                let ones = self.b.ins().splat(to, one);
                return Ok(self.b.ins().band(m, ones));
            }
            return self.vector_cast(op, i, v, from, to);
        }
        let ins = self.b.ins();
        Ok(match op {
            LLVMTrunc | LLVMPtrToInt => {
                let r = if from.bits() > to.bits() {
                    ins.ireduce(to, v)
                } else if from.bits() < to.bits() {
                    ins.uextend(to, v)
                } else {
                    v
                };
                if is_i1(to_t) {
                    self.b.ins().band_imm_u(r, 1)
                } else {
                    r
                }
            }
            LLVMIntToPtr => {
                if from.bits() > 64 {
                    ins.ireduce(to, v)
                } else if from.bits() < 64 {
                    ins.uextend(to, v)
                } else {
                    v
                }
            }
            LLVMZExt => {
                if from == to {
                    v
                } else {
                    ins.uextend(to, v)
                }
            }
            LLVMSExt => {
                let v = if is_i1(from_t) { ins.ineg(v) } else { v };
                if from == to {
                    v
                } else {
                    self.b.ins().sextend(to, v)
                }
            }
            LLVMFPToSI | LLVMFPToUI => {
                if to == types::I128 {
                    return Err(format!("conversion to i128: {}", ll::print(i)));
                }
                let signed = op == LLVMFPToSI;
                let wide = if to.bits() < 32 { types::I32 } else { to };
                let r = if signed {
                    ins.fcvt_to_sint_sat(wide, v)
                } else {
                    ins.fcvt_to_uint_sat(wide, v)
                };
                let r = if wide != to {
                    self.b.ins().ireduce(to, r)
                } else {
                    r
                };
                if is_i1(to_t) {
                    self.b.ins().band_imm_u(r, 1)
                } else {
                    r
                }
            }
            LLVMSIToFP | LLVMUIToFP => {
                if from == types::I128 {
                    return Err(format!("conversion from i128: {}", ll::print(i)));
                }
                let signed = op == LLVMSIToFP;
                let mut v = v;
                if is_i1(from_t) && signed {
                    v = ins.ineg(v);
                }
                if from.bits() < 32 {
                    v = if signed {
                        self.b.ins().sextend(types::I32, v)
                    } else {
                        self.b.ins().uextend(types::I32, v)
                    };
                }
                if signed {
                    self.b.ins().fcvt_from_sint(to, v)
                } else {
                    self.b.ins().fcvt_from_uint(to, v)
                }
            }
            LLVMFPTrunc => ins.fdemote(to, v),
            LLVMFPExt => ins.fpromote(to, v),
            LLVMBitCast | LLVMAddrSpaceCast => {
                let (from_s, to_s) = (scalar_type(from_t)?, scalar_type(to_t)?);
                if is_half(from_s) && !to.is_vector() {
                    let x = self.narrow(v);
                    return Ok(self.cast_bits(x, to));
                }
                if is_half(to_s) && !from.is_vector() {
                    let x = self.cast_bits(v, types::F64);
                    return Ok(self.widen(x, to_s));
                }
                let ins = self.b.ins();
                if from == to {
                    v
                } else if from.bits() == to.bits() {
                    ins.bitcast(to, little(), v)
                } else {
                    return err(i);
                }
            }
            _ => return err(i),
        })
    }

    fn gep(&mut self, i: LLVMValueRef) -> R<Value> {
        let td = self.info.td;
        let mut p = self.scalar(ll::operand(i, 0))?;
        if self.b.func.dfg.value_type(p) != types::I64 {
            return Err(format!("vector getelementptr: {}", ll::print(i)));
        }
        let mut t = ll::gep_source_type(i);
        let n = ll::num_operands(i) as u32;
        let mut offset: i64 = 0;
        for k in 1..n {
            let idx = ll::operand(i, k);
            let scale;
            if k == 1 {
                scale = ll::abi_size(td, t) as i64;
            } else {
                match ll::type_kind(t) {
                    LLVMTypeKind::LLVMStructTypeKind => {
                        let field = ll::const_zext(idx) as u32;
                        offset += ll::offset_of(td, t, field) as i64;
                        t = ll::struct_elem(t, field);
                        continue;
                    }
                    LLVMTypeKind::LLVMArrayTypeKind | LLVMTypeKind::LLVMVectorTypeKind => {
                        t = ll::element_type(t);
                        scale = ll::abi_size(td, t) as i64;
                    }
                    _ => return err(i),
                }
            }
            if !ll::is_a_constant_int(idx).is_null() && ll::int_width(ll::type_of(idx)) <= 64 {
                offset = offset.wrapping_add(ll::const_sext(idx).wrapping_mul(scale));
                continue;
            }
            let x = self.scalar(idx)?;
            let xt = self.b.func.dfg.value_type(x);
            if xt.is_vector() {
                return Err(format!("vector getelementptr: {}", ll::print(i)));
            }
            let x = if is_i1(ll::type_of(idx)) {
                self.b.ins().ineg(x)
            } else {
                x
            };
            let x = match xt.bits().cmp(&64) {
                std::cmp::Ordering::Less => self.b.ins().sextend(types::I64, x),
                std::cmp::Ordering::Greater => self.b.ins().ireduce(types::I64, x),
                std::cmp::Ordering::Equal => x,
            };
            let scaled = if scale == 1 {
                x
            } else {
                self.b.ins().imul_imm_s(x, scale)
            };
            p = self.b.ins().iadd(p, scaled);
        }
        if offset != 0 {
            p = self.b.ins().iadd_imm_s(p, offset);
        }
        Ok(p)
    }
}

/// The flags of a plain access of a leaf of type `ty` at `off` from an
/// address aligned to `align`. A non-volatile access that faults is
/// undefined behaviour in LLVM, so it is `notrap` (which lets tier 1
/// treat it as the plain access it was); a volatile one keeps its trap.
fn access_flags(plain: bool, align: u32, ty: Type, off: u64) -> MemFlagsData {
    let mut flags = MemFlagsData::new();
    if plain {
        flags = flags.with_notrap();
    }
    let size = ty.bytes() as u64;
    if size > 0 && align as u64 % size == 0 && off % size == 0 {
        flags = flags.with_aligned();
    }
    flags
}

/// The integer type atomics of `ty` use.
fn atomic_int(ty: Type) -> Option<Type> {
    match ty {
        types::I8 | types::I16 | types::I32 | types::I64 => Some(ty),
        types::F32 => Some(types::I32),
        types::F64 => Some(types::I64),
        _ => None,
    }
}
