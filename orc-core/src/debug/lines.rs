//! DWARF line tables of a linked object at its final addresses, for the
//! jitdump's debug-info records: the object's debug sections are copied
//! and their relocations applied against the link's section addresses
//! (debug sections are not loaded, so sections they name that are not
//! loaded either, such as `.debug_line_str`, count from 0).

use std::borrow::Cow;

use gimli::{EndianSlice, LittleEndian};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

use crate::link::LinkView;

/// One row of a line table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRow {
    /// The final address.
    pub addr: u64,
    /// The line (1-based; 0 for code no line is attributed to).
    pub line: u32,
    /// The file's path as the DWARF gives it (directory joined).
    pub file: String,
}

/// The line rows of a linked object's code at their final addresses
/// (sequence ends left out); empty without DWARF (or with DWARF this
/// reader does not understand). For a plugin.
pub fn line_table(view: &LinkView<'_>) -> Vec<LineRow> {
    let bytes = view.object_bytes();
    let Ok(file) = object::File::parse(bytes) else {
        return Vec::new();
    };
    if file.section_by_name(".debug_line").is_none() {
        return Vec::new();
    }
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(relocated(view, &file, id.name()).unwrap_or(Cow::Borrowed(&[])))
    };
    let Ok(sections) = gimli::DwarfSections::load(load) else {
        return Vec::new();
    };
    let dwarf = sections.borrow(|s| EndianSlice::new(s, LittleEndian));
    rows(&dwarf).unwrap_or_default()
}

fn rows(dwarf: &gimli::Dwarf<EndianSlice<'_, LittleEndian>>) -> gimli::Result<Vec<LineRow>> {
    let mut out = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let mut rows = program.rows();
        while let Some((header, row)) = rows.next_row()? {
            if row.end_sequence() {
                continue;
            }
            let Some(line) = row.line() else { continue };
            let mut path = String::new();
            if let Some(file) = row.file(header) {
                if let Some(dir) = file.directory(header) {
                    let dir = dwarf.attr_string(&unit, dir)?;
                    path.push_str(&dir.to_string_lossy());
                    if !path.is_empty() && !path.ends_with('/') {
                        path.push('/');
                    }
                }
                let name = dwarf.attr_string(&unit, file.path_name())?;
                let name = name.to_string_lossy();
                if name.starts_with('/') {
                    path.clear();
                }
                path.push_str(&name);
            }
            out.push(LineRow {
                addr: row.address(),
                line: u32::try_from(line.get()).unwrap_or(u32::MAX),
                file: path,
            });
        }
    }
    Ok(out)
}

/// The bytes of section `name` with its `R_X86_64_64` / `_32` / `_32S`
/// relocations applied; `None` if absent.
fn relocated<'a>(
    view: &LinkView<'_>,
    file: &object::File<'a>,
    name: &str,
) -> Option<Cow<'a, [u8]>> {
    let section = file.section_by_name(name)?;
    let data = section.data().ok()?;
    let mut relocs = section.relocations().peekable();
    if relocs.peek().is_none() {
        return Some(Cow::Borrowed(data));
    }
    let mut out = data.to_vec();
    for (offset, reloc) in relocs {
        let RelocationTarget::Symbol(index) = reloc.target() else {
            continue;
        };
        let Ok(symbol) = file.symbol_by_index(index) else {
            continue;
        };
        let base = symbol
            .section_index()
            .and_then(|s| view.section_address(s.0))
            .unwrap_or(0);
        let value = base
            .wrapping_add(symbol.address())
            .wrapping_add(reloc.addend() as u64);
        let Ok(at) = usize::try_from(offset) else {
            continue;
        };
        match reloc.size() {
            64 => {
                if let Some(field) = out.get_mut(at..at.saturating_add(8)) {
                    field.copy_from_slice(&value.to_le_bytes());
                }
            }
            32 => {
                if let Some(field) = out.get_mut(at..at.saturating_add(4)) {
                    field.copy_from_slice(&(value as u32).to_le_bytes());
                }
            }
            _ => {}
        }
    }
    Some(Cow::Owned(out))
}
