//! LLVM intrinsics as CLIF (see the module docs of `to_clif`).
//!
//! The function translator calls [`translate`] for every call to an
//! `llvm.*` function except those that concern the frame or the
//! function's own state (`llvm.va_*`, `llvm.stacksave`/`stackrestore`,
//! `llvm.threadlocal.address`, `llvm.eh.*`), which it handles itself.
//!
//! An intrinsic is recognised by its base name: the full name without the
//! `llvm.` prefix and without the trailing type suffixes (`llvm.smax.i32`
//! is `smax`, `llvm.memcpy.p0.p0.i64` is `memcpy`); the types come from
//! the CLIF values themselves, except that an `i1` suffix (`llvm.umax.i1`,
//! `llvm.vector.reduce.or.v4i1`) selects the forms that read 1 as -1
//! where the operation is signed.
//!
//! Vectors: an operation works on 128-bit vectors with Cranelift's lane
//! instruction where the x86-64 backend lowers it for that type (also
//! without SSE4.1: Cranelift falls back to libcalls there), and otherwise
//! lane by lane (extract, scalar operation, insert). Other vector sizes
//! are `Err`: the backend cannot even move their lanes.
//!
//! Block structure: every intrinsic is straight-line code in the current
//! block, except the traps (`llvm.trap`, `llvm.ubsantrap`), which end the
//! current block with a `trap` and leave the builder in a fresh, sealed
//! block without predecessors. The translator goes on translating there
//! (the LLVM `unreachable` that follows a trap then terminates that dead
//! block); it must read `b.current_block()` again after [`translate`]
//! wherever it records the block an LLVM block ends in (for `phi`).
//!
//! Libcalls go through [`IntrinsicHost::libcall`] with SysV signatures:
//! `memcpy`/`memmove`/`memset`, the libm functions of `llvm.pow`,
//! `llvm.sin`... (`sin`/`sinf`, one call per lane for vectors), `ldexp`,
//! `frexp`, `lround`/`llround`/`lrint`/`llrint`. Besides, Cranelift's
//! x86-64 backend itself calls `fma`/`fmaf` (without FMA hardware) and
//! `floor`/`ceil`/`trunc`/`nearbyint` and their `f` forms (without
//! SSE4.1) as `ExternalName::LibCall`s.
#![allow(dead_code)] // until the function translator calls it

mod float;
mod int;
#[cfg(test)]
mod tests;

use cranelift_codegen::ir::{
    self, types, AbiParam, InstBuilder, InstructionData, MemFlagsData, TrapCode,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;

/// What the translator knows of one intrinsic call.
pub(super) struct IntrinsicCall<'a> {
    /// The full name, e.g. `llvm.smax.i32`, `llvm.memcpy.p0.p0.i64`.
    pub name: &'a str,
    /// The arguments, one CLIF value each (an `i1` is an `i8` holding 0 or
    /// 1; a vector of at most 128 bits one vector value).
    pub args: &'a [ir::Value],
    /// The CLIF type of each result leaf (empty for `void`; two for
    /// `{ iN, i1 }` of the `*.with.overflow` family).
    pub results: &'a [ir::Type],
}

/// What an intrinsic may need from the translator.
pub(super) trait IntrinsicHost {
    /// A reference to the function `symbol` (a libc or libm function such
    /// as `memcpy` or `sin`) with signature `sig`, for `call`.
    fn libcall(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        symbol: &str,
        sig: ir::Signature,
    ) -> ir::FuncRef;
}

/// The trap code of `llvm.trap` (and of `llvm.ubsantrap` with a code
/// Cranelift reserves, such as 0).
pub(super) const TRAP_CODE: TrapCode = TrapCode::unwrap_user(1);

/// Translates an intrinsic call at the builder's position. Returns its
/// result leaves (matching `call.results`), or `Err` naming what is not
/// covered (`intrinsic NAME` or `intrinsic NAME: why`); after an `Err`
/// the function is not usable (some instructions may be emitted).
///
/// The builder stays in its block except after `llvm.trap` and
/// `llvm.ubsantrap`: they end the block with `trap` and switch to a fresh
/// sealed block without predecessors (dead code follows, usually an LLVM
/// `unreachable`). Read `b.current_block()` afterwards.
pub(super) fn translate(
    b: &mut FunctionBuilder<'_>,
    host: &mut dyn IntrinsicHost,
    call: &IntrinsicCall<'_>,
) -> Result<Vec<ir::Value>, String> {
    let unsupported = || format!("intrinsic {}", call.name);
    let Some(base) = base_name(call.name) else {
        return Err(unsupported());
    };
    let cx = &mut Cx {
        b,
        host,
        call,
        base: &base,
    };
    let out = match translate_base(cx)? {
        Some(v) => v,
        None => return Err(unsupported()),
    };
    // Every path above checks its arity; this guards the contract.
    let got: Vec<ir::Type> = out.iter().map(|&v| cx.ty(v)).collect();
    if got != call.results {
        return Err(format!(
            "intrinsic {}: result types {:?}, expected {:?}",
            call.name, got, call.results
        ));
    }
    Ok(out)
}

/// `name` without `llvm.` and its type suffixes; `None` if it is not an
/// `llvm.` name.
fn base_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("llvm.")?;
    let mut parts: Vec<&str> = rest.split('.').collect();
    while parts.len() > 1 && parts.last().is_some_and(|p| is_type_suffix(p)) {
        parts.pop();
    }
    Some(parts.join("."))
}

/// Whether the type suffixes of `name` mangle `i1` or a vector of `i1`
/// (`llvm.umax.i1`, `llvm.vector.reduce.or.v4i1`).
fn has_i1_suffix(name: &str) -> bool {
    name.split('.')
        .rev()
        .take_while(|p| is_type_suffix(p))
        .any(|p| {
            p == "i1"
                || ((p.starts_with('v') || p.starts_with("nxv"))
                    && p.strip_suffix("i1")
                        .is_some_and(|r| r.ends_with(|c: char| c.is_ascii_digit())))
        })
}

/// Whether one dot-separated part of an intrinsic name mangles a type
/// (`i32`, `f64`, `v4f32`, `p0`, `nxv2i64`, `bf16`, `sl_...`).
fn is_type_suffix(part: &str) -> bool {
    let digits_after = |p: &str, prefix: &str| {
        p.strip_prefix(prefix)
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
    };
    digits_after(part, "i")
        || digits_after(part, "f")
        || digits_after(part, "p")
        || matches!(part, "bf16" | "x86_fp80" | "ppcf128" | "isVoid" | "x86amx")
        || part.starts_with("sl_")
        || part.starts_with("s_")
        || (part.starts_with('v')
            && part[1..].starts_with(|c: char| c.is_ascii_digit())
            && part.bytes().any(|c| c.is_ascii_alphabetic() && c != b'v'))
        || (part.starts_with("nxv") && part[3..].starts_with(|c: char| c.is_ascii_digit()))
        || (part.starts_with('a') && part[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The state of one translation.
pub(super) struct Cx<'a, 'b, 'f> {
    pub(super) b: &'a mut FunctionBuilder<'f>,
    pub(super) host: &'b mut dyn IntrinsicHost,
    pub(super) call: &'a IntrinsicCall<'a>,
    /// The base name (see the module docs).
    pub(super) base: &'a str,
}

/// A scalar operation [`Cx::lanewise`] applies to each lane.
pub(super) type LaneOp<'x, 'a, 'b, 'f> =
    dyn FnMut(&mut Cx<'a, 'b, 'f>, &[ir::Value]) -> Result<ir::Value, String> + 'x;

/// The result of a family translator: `Ok(None)` if it does not know the
/// base name.
pub(super) type Res = Result<Option<Vec<ir::Value>>, String>;

impl<'a, 'b, 'f> Cx<'a, 'b, 'f> {
    /// The type of `v`.
    pub(super) fn ty(&self, v: ir::Value) -> ir::Type {
        self.b.func.dfg.value_type(v)
    }

    /// An error about this call.
    pub(super) fn err(&self, what: impl std::fmt::Display) -> String {
        format!("intrinsic {}: {what}", self.call.name)
    }

    /// Checks that the call has `args` arguments (at least, if `at_least`)
    /// and `results` result leaves.
    pub(super) fn arity(&self, args: usize, results: usize) -> Result<(), String> {
        if self.call.args.len() != args || self.call.results.len() != results {
            return Err(self.err(format!(
                "expected {args} arguments and {results} results, got {} and {}",
                self.call.args.len(),
                self.call.results.len()
            )));
        }
        Ok(())
    }

    /// Argument `i` (the arity was checked).
    pub(super) fn arg(&self, i: usize) -> ir::Value {
        self.call.args[i]
    }

    /// The integer constant `v` is, if it is one (`iconst`).
    pub(super) fn const_of(&self, v: ir::Value) -> Option<i64> {
        let inst = self.b.func.dfg.value_def(v).inst()?;
        match self.b.func.dfg.insts[inst] {
            InstructionData::UnaryImm {
                opcode: ir::Opcode::Iconst,
                imm,
            } => Some(imm.bits()),
            _ => None,
        }
    }

    /// Calls the C function `symbol` (SysV) with `args`; its result, if
    /// `ret` is given.
    pub(super) fn libcall(
        &mut self,
        symbol: &str,
        args: &[ir::Value],
        ret: Option<ir::Type>,
    ) -> Option<ir::Value> {
        let mut sig = ir::Signature::new(CallConv::SystemV);
        for &a in args {
            sig.params.push(AbiParam::new(self.ty(a)));
        }
        if let Some(t) = ret {
            sig.returns.push(AbiParam::new(t));
        }
        let f = self.host.libcall(self.b, symbol, sig);
        let inst = self.b.ins().call(f, args);
        self.b.inst_results(inst).first().copied()
    }

    /// Applies `op` lane by lane: vector arguments give their lane `i`,
    /// scalar ones are passed as they are; the results form a vector of
    /// type `ty` (or a scalar if `ty` is one).
    pub(super) fn lanewise(
        &mut self,
        ty: ir::Type,
        args: &[ir::Value],
        op: &mut LaneOp<'_, 'a, 'b, 'f>,
    ) -> Result<ir::Value, String> {
        if !ty.is_vector() {
            return op(self, args);
        }
        // Cranelift's x86-64 backend moves lanes of 128-bit vectors only.
        if ty.bits() != 128
            || args
                .iter()
                .any(|&a| self.ty(a).is_vector() && self.ty(a).bits() != 128)
        {
            return Err(self.err(format!("vectors of {} bits", ty.bits())));
        }
        let mut out = None;
        for lane in 0..ty.lane_count() {
            let lane_u8 = u8::try_from(lane).map_err(|_| self.err("too many lanes"))?;
            let lane_args: Vec<ir::Value> = args
                .iter()
                .map(|&a| {
                    if self.ty(a).is_vector() {
                        self.b.ins().extractlane(a, lane_u8)
                    } else {
                        a
                    }
                })
                .collect();
            let r = op(self, &lane_args)?;
            out = Some(match out {
                None => self.b.ins().splat(ty, r),
                Some(v) => self.b.ins().insertlane(v, r, lane_u8),
            });
        }
        out.ok_or_else(|| self.err("empty vector"))
    }

    /// `cond ? x : y` where `cond` is the result of an `icmp`/`fcmp` on
    /// values of the type of `x` (a scalar `i8`, or a vector lane mask).
    pub(super) fn select_cmp(&mut self, cond: ir::Value, x: ir::Value, y: ir::Value) -> ir::Value {
        let ty = self.ty(x);
        if !ty.is_vector() {
            return self.b.ins().select(cond, x, y);
        }
        let mask = if self.ty(cond) == ty {
            cond
        } else {
            self.b.ins().bitcast(ty, vector_flags(), cond)
        };
        self.b.ins().bitselect(mask, x, y)
    }

    /// The integer constant `val` (wrapped to the lane width) of the
    /// integer scalar or vector type `ty`.
    pub(super) fn int_const(&mut self, ty: ir::Type, val: i128) -> ir::Value {
        let lane = ty.lane_type();
        #[allow(clippy::cast_possible_truncation)] // wrapping is the point
        let scalar = if lane == types::I128 {
            let lo = self.b.ins().iconst(types::I64, val as i64);
            let hi = self.b.ins().iconst(types::I64, (val >> 64) as i64);
            self.b.ins().iconcat(lo, hi)
        } else {
            let bits = lane.bits();
            let masked = if bits >= 64 {
                val as i64
            } else {
                (val as i64) & ((1i64 << bits) - 1)
            };
            self.b.ins().iconst(lane, masked)
        };
        self.splat_if(ty, scalar)
    }

    /// `v` (a scalar) splatted to `ty` if it is a vector type.
    pub(super) fn splat_if(&mut self, ty: ir::Type, v: ir::Value) -> ir::Value {
        if ty.is_vector() {
            self.b.ins().splat(ty, v)
        } else {
            v
        }
    }
}

/// The flags of a `bitcast` between vector types (lane order matters).
pub(super) fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(ir::Endianness::Little)
}

/// Dispatches on the base name.
fn translate_base(cx: &mut Cx<'_, '_, '_>) -> Res {
    if let Some(v) = misc(cx)? {
        return Ok(Some(v));
    }
    if has_i1_suffix(cx.call.name) {
        // An `i1` is an `i8` holding 0 or 1: operations that read it as
        // signed (where 1 is -1) need their own forms.
        return int::translate_i1(cx);
    }
    if let Some(v) = float::translate(cx)? {
        return Ok(Some(v));
    }
    int::translate(cx)
}

/// Memory, markers, hints and traps.
fn misc(cx: &mut Cx<'_, '_, '_>) -> Res {
    let base = cx.base;
    if base.starts_with("dbg.") {
        return Ok(Some(Vec::new()));
    }
    let out = match base {
        "memcpy" | "memcpy.inline" | "memmove" | "memset" | "memset.inline" => {
            cx.arity(4, 0)?;
            let symbol = base.trim_end_matches(".inline");
            let (dst, val, len) = (cx.arg(0), cx.arg(1), cx.arg(2));
            for (v, what) in [(dst, "destination"), (len, "length")] {
                if !cx.ty(v).is_int() || cx.ty(v).is_vector() || cx.ty(v).bits() > 64 {
                    return Err(cx.err(format!("bad {what} type {}", cx.ty(v))));
                }
            }
            let dst = widen_u64(cx, dst);
            let len = widen_u64(cx, len);
            let val = if symbol == "memset" {
                if cx.ty(val) != types::I8 {
                    return Err(cx.err(format!("memset value of type {}", cx.ty(val))));
                }
                cx.b.ins().uextend(types::I32, val)
            } else {
                if !cx.ty(val).is_int() || cx.ty(val).is_vector() || cx.ty(val).bits() > 64 {
                    return Err(cx.err(format!("bad source type {}", cx.ty(val))));
                }
                widen_u64(cx, val)
            };
            cx.libcall(symbol, &[dst, val, len], Some(types::I64));
            Vec::new()
        }
        "lifetime.start"
        | "lifetime.end"
        | "experimental.noalias.scope.decl"
        | "invariant.end"
        | "sideeffect"
        | "pseudoprobe"
        | "donothing"
        | "assume"
        | "prefetch"
        | "var.annotation"
        | "codeview.annotation"
        | "clear_cache" => {
            // x86 caches are coherent: `clear_cache` has nothing to do.
            if !cx.call.results.is_empty() {
                return Err(cx.err("expected no results"));
            }
            Vec::new()
        }
        "invariant.start" => {
            // Returns a descriptor for `invariant.end`, which ignores it.
            cx.arity(2, 1)?;
            let t = cx.call.results[0];
            if !t.is_int() || t.is_vector() || t.bits() > 64 {
                return Err(cx.err(format!("result type {t}")));
            }
            vec![cx.b.ins().iconst(t, 0)]
        }
        "expect"
        | "expect.with.probability"
        | "launder.invariant.group"
        | "strip.invariant.group" => {
            let n = if base == "expect.with.probability" {
                3
            } else if base == "expect" {
                2
            } else {
                1
            };
            cx.arity(n, 1)?;
            vec![cx.arg(0)]
        }
        "ptrmask" => {
            cx.arity(2, 1)?;
            let (p, m) = (cx.arg(0), cx.arg(1));
            if cx.ty(p) != types::I64 || cx.ty(m) != types::I64 {
                return Err(cx.err(format!("of {} by {}", cx.ty(p), cx.ty(m))));
            }
            vec![cx.b.ins().band(p, m)]
        }
        "frameaddress" | "returnaddress" => {
            // Only of the function itself (level 0); orc compiles with
            // frame pointers, which both instructions need.
            cx.arity(1, 1)?;
            if cx.const_of(cx.arg(0)) != Some(0) || cx.call.results[0] != types::I64 {
                return Err(cx.err("other than level 0"));
            }
            vec![if base == "frameaddress" {
                cx.b.ins().get_frame_pointer(types::I64)
            } else {
                cx.b.ins().get_return_address(types::I64)
            }]
        }
        "vector.reverse" | "experimental.vector.reverse" => {
            cx.arity(1, 1)?;
            let v = cx.arg(0);
            let ty = cx.ty(v);
            if !ty.is_vector() || ty.bits() != 128 || cx.call.results[0] != ty {
                return Err(cx.err(format!("of {ty}")));
            }
            let n = u8::try_from(ty.lane_count()).map_err(|_| cx.err("too many lanes"))?;
            let mut out = None;
            for i in 0..n {
                let lane = cx.b.ins().extractlane(v, n - 1 - i);
                out = Some(match out {
                    None => cx.b.ins().splat(ty, lane),
                    Some(acc) => cx.b.ins().insertlane(acc, lane, i),
                });
            }
            vec![out.ok_or_else(|| cx.err("empty vector"))?]
        }
        "is.constant" => {
            cx.arity(1, 1)?;
            vec![cx.b.ins().iconst(types::I8, 0)]
        }
        "objectsize" => {
            // (ptr, i1 min, i1 nullunknown, i1 dynamic): unknown size.
            if cx.call.args.len() < 2 || cx.call.results.len() != 1 {
                return Err(cx.err("expected a pointer, flags and one result"));
            }
            let t = cx.call.results[0];
            if !t.is_int() || t.is_vector() || t.bits() > 64 {
                return Err(cx.err(format!("result type {t}")));
            }
            let min = cx
                .const_of(cx.arg(1))
                .ok_or_else(|| cx.err("its `min` argument is not a constant"))?;
            let size = if min & 1 != 0 { 0 } else { -1 };
            vec![cx.int_const(t, size)]
        }
        "trap" | "ubsantrap" => {
            let code = if base == "ubsantrap" {
                cx.arity(1, 0)?;
                let c = cx.const_of(cx.arg(0)).unwrap_or(0);
                u8::try_from(c & 0xff)
                    .ok()
                    .and_then(TrapCode::user)
                    .unwrap_or(TRAP_CODE)
            } else {
                cx.arity(0, 0)?;
                TRAP_CODE
            };
            cx.b.ins().trap(code);
            let dead = cx.b.create_block();
            cx.b.switch_to_block(dead);
            cx.b.seal_block(dead);
            Vec::new()
        }
        "debugtrap" => {
            cx.arity(0, 0)?;
            cx.b.ins().debugtrap();
            Vec::new()
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

/// `v` (an integer of at most 64 bits) zero-extended to `i64`.
fn widen_u64(cx: &mut Cx<'_, '_, '_>, v: ir::Value) -> ir::Value {
    if cx.ty(v) == types::I64 {
        v
    } else {
        cx.b.ins().uextend(types::I64, v)
    }
}
