//! Line information for translated functions (the LLVM tutorial's chapter
//! 9, for CLIF): with a [`DebugSource`], each function gets a DWARF
//! subprogram in the source file, and each instruction the line its CLIF
//! instruction's source location names. Instructions without a location
//! (and the translation's own glue: entry block, edge blocks) keep the
//! line before them, so every call carries a location, as LLVM's verifier
//! wants in a function with debug information.

use cranelift_codegen::ir;
use inkwell::builder::Builder;
use inkwell::context::ContextRef;
use inkwell::debug_info::{
    AsDIScope, DIFlags, DIFlagsConstants, DIScope, DWARFEmissionKind, DWARFSourceLanguage,
    DebugInfoBuilder,
};
use inkwell::module::{FlagBehavior, Module};
use inkwell::values::FunctionValue;

/// The source a frontend's CLIF came from: every instruction's source
/// location (`ir::SourceLoc`, set with `FunctionBuilder::set_srcloc`) is
/// read as a line number of `file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugSource {
    /// The file name, as debuggers should show it.
    pub file: String,
    /// The directory a relative `file` is in.
    pub directory: String,
}

/// The debug information of one function being translated.
pub(super) struct FnDebug<'ctx> {
    builder: DebugInfoBuilder<'ctx>,
    scope: DIScope<'ctx>,
    line: u32,
}

/// The first source location of `func`, as a line.
fn first_line(func: &ir::Function) -> Option<u32> {
    func.layout
        .blocks()
        .flat_map(|b| func.layout.block_insts(b))
        .map(|i| func.srcloc(i))
        .find(|l| !l.is_default())
        .map(|l| l.bits())
}

impl<'ctx> FnDebug<'ctx> {
    /// Attaches a subprogram for `f` (named `symbol`, from `func`) in
    /// `source`'s file, and marks `module` as carrying debug information.
    pub(super) fn new(
        module: &Module<'ctx>,
        f: FunctionValue<'ctx>,
        symbol: &str,
        func: &ir::Function,
        source: &DebugSource,
    ) -> Self {
        let ctx = module.get_context();
        if module.get_flag("Debug Info Version").is_none() {
            module.add_basic_value_flag(
                "Debug Info Version",
                FlagBehavior::Warning,
                ctx.i32_type().const_int(3, false),
            );
        }
        let (builder, unit) = module.create_debug_info_builder(
            true,
            DWARFSourceLanguage::C,
            &source.file,
            &source.directory,
            "orc",
            true,
            "",
            0,
            "",
            DWARFEmissionKind::LineTablesOnly,
            0,
            false,
            false,
            "",
            "",
        );
        let file = unit.get_file();
        let ty = builder.create_subroutine_type(file, None, &[], DIFlags::ZERO);
        let line = first_line(func).unwrap_or(0);
        let subprogram = builder.create_function(
            unit.as_debug_info_scope(),
            symbol,
            None,
            file,
            line,
            ty,
            false,
            true,
            line,
            DIFlags::ZERO,
            true,
        );
        f.set_subprogram(subprogram);
        FnDebug {
            builder,
            scope: subprogram.as_debug_info_scope(),
            line,
        }
    }

    /// Makes `b` give what it builds next the line of `loc` (the current
    /// line when `loc` is the default).
    pub(super) fn at(&mut self, ctx: &ContextRef<'ctx>, b: &Builder<'ctx>, loc: ir::SourceLoc) {
        if !loc.is_default() {
            self.line = loc.bits();
        }
        let location = self
            .builder
            .create_debug_location(*ctx, self.line, 0, self.scope, None);
        b.set_current_debug_location(location);
    }
}
