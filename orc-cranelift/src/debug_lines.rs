//! DWARF line tables for tier-0 code, from Cranelift's source locations.
//!
//! Cranelift writes no debug information, but it keeps, for each compiled
//! function, which ranges of machine code came from which instruction's
//! source location (`MachSrcLoc`). A frontend that sets locations with
//! `FunctionBuilder::set_srcloc` (as a line number, the convention of
//! `orc_llvm::DebugSource` for tier 1) gets, with a [`LineSource`] set on
//! the compiler, a compile unit with a line program per object: one
//! sequence per function, relocated against the function's symbol. The
//! linker leaves debug sections alone; gdb (through the GDB JIT interface)
//! and the perf plugin's line records read them.

use cranelift_object::object::write::{Object, Relocation, SectionKind, SymbolId};
use cranelift_object::object::{RelocationEncoding, RelocationFlags, RelocationKind};
use gimli::write::{
    Address, AttributeValue, DwarfUnit, EndianVec, LineProgram, LineString, Range, RangeList,
    Sections, Writer,
};
use gimli::{Encoding, Format, LineEncoding, LittleEndian};

/// The source file line numbers refer to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineSource {
    /// The file name.
    pub file: String,
    /// The directory it is in.
    pub directory: String,
}

/// One compiled function's lines: (code offset, line) where a new line
/// starts, and its code size.
pub(crate) struct FunctionLines {
    pub(crate) symbol: SymbolId,
    pub(crate) size: u64,
    pub(crate) rows: Vec<(u64, u64)>,
}

/// A section writer that records the relocations of symbol addresses.
#[derive(Clone)]
struct RelocWriter {
    data: EndianVec<LittleEndian>,
    relocs: Vec<(u64, usize, i64)>,
}

impl Writer for RelocWriter {
    type Endian = LittleEndian;

    fn endian(&self) -> LittleEndian {
        LittleEndian
    }

    fn len(&self) -> usize {
        self.data.len()
    }

    fn write(&mut self, bytes: &[u8]) -> gimli::write::Result<()> {
        self.data.write(bytes)
    }

    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> gimli::write::Result<()> {
        self.data.write_at(offset, bytes)
    }

    fn write_address(&mut self, address: Address, size: u8) -> gimli::write::Result<()> {
        match address {
            Address::Constant(v) => self.write_udata(v, size),
            Address::Symbol { symbol, addend } => {
                self.relocs.push((self.data.len() as u64, symbol, addend));
                self.write_udata(0, size)
            }
        }
    }
}

/// Adds `.debug_info`, `.debug_abbrev`, `.debug_line` (and the sections
/// they need) describing `functions` to `object`. Nothing is added when no
/// function has a located instruction.
pub(crate) fn add_line_tables(
    object: &mut Object<'_>,
    source: &LineSource,
    unit_name: &str,
    functions: &[FunctionLines],
) -> Result<(), String> {
    let functions: Vec<&FunctionLines> = functions.iter().filter(|f| !f.rows.is_empty()).collect();
    if functions.is_empty() {
        return Ok(());
    }
    let encoding = Encoding {
        format: Format::Dwarf32,
        version: 4,
        address_size: 8,
    };
    let mut dwarf = DwarfUnit::new(encoding);
    let dir = LineString::String(source.directory.clone().into_bytes());
    let file = LineString::String(source.file.clone().into_bytes());
    let mut program = LineProgram::new(
        encoding,
        LineEncoding::default(),
        dir,
        None,
        file.clone(),
        None,
    );
    let dir_id = program.default_directory();
    let file_id = program.add_file(file, dir_id, None);
    let mut ranges = Vec::new();
    for (i, f) in functions.iter().enumerate() {
        let start = Address::Symbol {
            symbol: i,
            addend: 0,
        };
        program.begin_sequence(Some(start));
        for &(offset, line) in &f.rows {
            let row = program.row();
            row.address_offset = offset;
            row.file = file_id;
            row.line = line;
            program.generate_row();
        }
        program.end_sequence(f.size);
        ranges.push(Range::StartLength {
            begin: start,
            length: f.size,
        });
    }
    dwarf.unit.line_program = program;
    let range_list = dwarf.unit.ranges.add(RangeList(ranges));
    let root = dwarf.unit.root();
    let cu = dwarf.unit.get_mut(root);
    cu.set(
        gimli::DW_AT_producer,
        AttributeValue::String(b"orc tier 0 (Cranelift)".to_vec()),
    );
    cu.set(
        gimli::DW_AT_name,
        AttributeValue::String(source.file.clone().into_bytes()),
    );
    cu.set(
        gimli::DW_AT_comp_dir,
        AttributeValue::String(source.directory.clone().into_bytes()),
    );
    cu.set(
        gimli::DW_AT_low_pc,
        AttributeValue::Address(Address::Constant(0)),
    );
    cu.set(
        gimli::DW_AT_ranges,
        AttributeValue::RangeListRef(range_list),
    );
    let _ = unit_name;
    let writer = RelocWriter {
        data: EndianVec::new(LittleEndian),
        relocs: Vec::new(),
    };
    let mut sections = Sections::new(writer);
    dwarf
        .write(&mut sections)
        .map_err(|e| format!("writing DWARF line tables: {e}"))?;
    let symbols: Vec<SymbolId> = functions.iter().map(|f| f.symbol).collect();
    sections.for_each(|id, w: &RelocWriter| -> Result<(), String> {
        if w.data.len() == 0 {
            return Ok(());
        }
        let section = object.add_section(
            Vec::new(),
            id.name().as_bytes().to_vec(),
            SectionKind::Debug,
        );
        object.append_section_data(section, w.data.slice(), 1);
        for &(offset, symbol, addend) in &w.relocs {
            object
                .add_relocation(
                    section,
                    Relocation {
                        offset,
                        symbol: symbols[symbol],
                        addend,
                        flags: RelocationFlags::Generic {
                            kind: RelocationKind::Absolute,
                            encoding: RelocationEncoding::Generic,
                            size: 64,
                        },
                    },
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
