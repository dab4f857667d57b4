//! Parsing and validating relocatable ELF x86-64 objects into an owned,
//! checked model ([`ObjectFile`]) that the later phases use without
//! re-parsing.
//!
//! Invariants established here, relied on by layout and relocation:
//! - every section's file bytes lie inside the object, its alignment is a
//!   power of two no larger than the page size, its size is below 1 GiB;
//! - every relocation of a section that may be loaded names an existing
//!   symbol, has a known and supported type, and its field lies inside the
//!   section;
//! - every symbol's section index exists.
//!
//! Nothing here panics on hostile bytes: all reads go through `object`'s
//! checked accessors, `get` and checked arithmetic.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::read::SectionIndex;
use object::Endianness;

use super::error::{LinkError, RelocationKind};
use super::x86_64;
use crate::SymbolFlags;

/// A parsed, validated relocatable object. Cheap to clone.
#[derive(Clone)]
pub struct ObjectFile {
    pub(crate) data: Arc<ObjectData>,
}

/// A global or weak symbol an object defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefinedSymbol {
    /// The symbol's name.
    pub name: String,
    /// Exported, callable, weak, common, as the ELF symbol says.
    pub flags: SymbolFlags,
    /// The signature of the COMDAT group holding its section, if any.
    pub comdat: Option<String>,
}

/// A symbol an object references but does not define.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UndefinedSymbol {
    /// The symbol's name.
    pub name: String,
    /// A weak reference: if nothing defines it, its address is 0.
    pub weak: bool,
}

pub(crate) struct ObjectData {
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) sections: Vec<Section>,
    pub(crate) symbols: Vec<Symbol>,
    pub(crate) groups: Vec<ComdatGroup>,
    pub(crate) defined: Vec<DefinedSymbol>,
    pub(crate) undefined: Vec<UndefinedSymbol>,
}

/// What the linker does with a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SectionRole {
    /// Not loaded: non-alloc (debug, comment), notes, groups, symbol tables.
    Skipped,
    /// Thread-local data (`.tdata`, `.tbss`): a per-thread template.
    Tls,
    Code,
    ReadOnly,
    Data,
    InitArray,
    FiniArray,
    Ctors,
    Dtors,
    EhFrame,
}

pub(crate) struct Section {
    pub(crate) name: String,
    pub(crate) role: SectionRole,
    pub(crate) size: u64,
    pub(crate) align: u64,
    /// The file bytes; `None` for `SHT_NOBITS` and skipped sections.
    pub(crate) file_range: Option<Range<usize>>,
    pub(crate) relocs: Vec<Reloc>,
    /// The index in `groups` of the COMDAT group it belongs to.
    pub(crate) group: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Reloc {
    pub(crate) offset: u64,
    pub(crate) kind: u32,
    pub(crate) sym: usize,
    pub(crate) addend: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SymbolPlace {
    Undefined,
    Absolute,
    Common,
    Section(usize),
    /// A reserved section index this linker does not know.
    Other,
}

pub(crate) struct Symbol {
    pub(crate) name: String,
    pub(crate) bind: u8,
    pub(crate) kind: u8,
    pub(crate) visibility: u8,
    pub(crate) place: SymbolPlace,
    pub(crate) value: u64,
    pub(crate) size: u64,
}

impl Symbol {
    pub(crate) fn is_local(&self) -> bool {
        self.bind == elf::STB_LOCAL
    }
}

pub(crate) struct ComdatGroup {
    pub(crate) signature: String,
}

/// The largest section (and object) the linker accepts, so a whole link
/// stays well inside the ±2 GiB reach of 32-bit PC-relative fields.
pub(crate) const MAX_SECTION_SIZE: u64 = 1 << 30;

impl ObjectFile {
    /// Parses and validates a relocatable ELF x86-64 object. `name` is used
    /// in every error and should say where the bytes came from.
    pub fn parse(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Result<Self, LinkError> {
        let name = name.into();
        let bytes = bytes.into();
        let data = parse_object(name, bytes)?;
        Ok(ObjectFile {
            data: Arc::new(data),
        })
    }

    /// The name given to [`parse`](Self::parse).
    pub fn name(&self) -> &str {
        &self.data.name
    }

    /// The global and weak symbols defined here (including hidden ones,
    /// which are defined but not exported), common symbols included.
    pub fn defined_symbols(&self) -> &[DefinedSymbol] {
        &self.data.defined
    }

    /// The symbols referenced but not defined here.
    pub fn undefined_symbols(&self) -> &[UndefinedSymbol] {
        &self.data.undefined
    }

    /// Whether the object has initializers or finalizers (`.init_array`,
    /// `.ctors`, `.fini_array`, `.dtors`), which a layer runs explicitly.
    pub fn has_initializers(&self) -> bool {
        self.data.sections.iter().any(|s| {
            matches!(
                s.role,
                SectionRole::InitArray
                    | SectionRole::Ctors
                    | SectionRole::FiniArray
                    | SectionRole::Dtors
            )
        })
    }

    /// The signatures of the COMDAT groups of this object, in file order.
    pub fn comdat_signatures(&self) -> impl Iterator<Item = &str> {
        self.data.groups.iter().map(|g| g.signature.as_str())
    }
}

impl std::fmt::Debug for ObjectFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectFile")
            .field("name", &self.data.name)
            .finish_non_exhaustive()
    }
}

fn check_ident(name: &str, bytes: &[u8]) -> Result<(), LinkError> {
    let ident = bytes
        .get(..16)
        .ok_or_else(|| LinkError::malformed(name, "truncated ELF header"))?;
    if ident.get(..4) != Some(&elf::ELFMAG[..]) {
        return Err(LinkError::malformed(name, "not an ELF file (bad magic)"));
    }
    match ident.get(4) {
        Some(&elf::ELFCLASS64) => {}
        Some(&elf::ELFCLASS32) => {
            return Err(LinkError::WrongClass {
                object: name.to_owned(),
                found: "32-bit ELF",
            })
        }
        _ => {
            return Err(LinkError::WrongClass {
                object: name.to_owned(),
                found: "of an unknown ELF class",
            })
        }
    }
    if ident.get(5) != Some(&elf::ELFDATA2LSB) {
        return Err(LinkError::WrongClass {
            object: name.to_owned(),
            found: "big-endian or of unknown byte order",
        });
    }
    Ok(())
}

fn parse_object(name: String, bytes: Vec<u8>) -> Result<ObjectData, LinkError> {
    let n = name.as_str();
    check_ident(n, &bytes)?;
    let bad = |e: object::read::Error| LinkError::malformed(n, e.to_string().to_lowercase());
    let data = bytes.as_slice();
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    if endian != Endianness::Little {
        return Err(LinkError::WrongClass {
            object: name.clone(),
            found: "big-endian",
        });
    }
    let e_type = header.e_type(endian);
    if e_type != elf::ET_REL {
        return Err(LinkError::WrongType {
            object: name.clone(),
            e_type,
        });
    }
    let machine = header.e_machine(endian);
    if machine != elf::EM_X86_64 {
        return Err(LinkError::WrongMachine {
            object: name.clone(),
            machine,
        });
    }
    let table = header.sections(endian, data).map_err(bad)?;
    let symtab = table.symbols(endian, data, elf::SHT_SYMTAB).map_err(bad)?;

    // Sections.
    let mut sections = Vec::with_capacity(table.len());
    for (index, sh) in table.enumerate() {
        let sec_name =
            String::from_utf8_lossy(table.section_name(endian, sh).map_err(bad)?).into_owned();
        let role = section_role(&sec_name, sh.sh_type(endian), sh.sh_flags(endian));
        let size = sh.sh_size(endian);
        let align = sh.sh_addralign(endian).max(1);
        let mut file_range = None;
        // The trap table of a tier-0 object is not loaded, but the linker
        // reads it (`trap::registry`).
        if role == SectionRole::Skipped && sec_name == crate::trap::registry::TRAP_SECTION {
            let (offset, len) = sh.file_range(endian).unwrap_or((0, 0));
            let start = usize::try_from(offset).ok();
            let end = start
                .zip(usize::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l));
            if let (Some(s), Some(e)) = (start, end) {
                if e <= data.len() {
                    file_range = Some(s..e);
                }
            }
        }
        if role != SectionRole::Skipped {
            if !align.is_power_of_two() || align > crate::memory::page_size() as u64 {
                return Err(LinkError::unsupported(
                    n,
                    format!("alignment {align} of section {sec_name} (at most the page size)"),
                ));
            }
            if size > MAX_SECTION_SIZE {
                return Err(LinkError::malformed(
                    n,
                    format!("section {sec_name} is {size} bytes"),
                ));
            }
            if sh.sh_type(endian) != elf::SHT_NOBITS {
                let (offset, len) = sh.file_range(endian).unwrap_or((0, 0));
                let start = usize::try_from(offset).ok();
                let end = start
                    .zip(usize::try_from(len).ok())
                    .and_then(|(s, l)| s.checked_add(l));
                match (start, end) {
                    (Some(s), Some(e)) if e <= data.len() => file_range = Some(s..e),
                    _ => {
                        return Err(LinkError::malformed(
                            n,
                            format!(
                                "section {sec_name} (index {}) lies outside the file",
                                index.0
                            ),
                        ))
                    }
                }
            }
        }
        sections.push(Section {
            name: sec_name,
            role,
            size,
            align,
            file_range,
            relocs: Vec::new(),
            group: None,
        });
    }

    // Symbols.
    let mut symbols = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.enumerate() {
        let sym_name =
            String::from_utf8_lossy(symtab.symbol_name(endian, sym).map_err(bad)?).into_owned();
        let place = match sym.st_shndx(endian) {
            elf::SHN_UNDEF => SymbolPlace::Undefined,
            elf::SHN_ABS => SymbolPlace::Absolute,
            elf::SHN_COMMON => SymbolPlace::Common,
            _ => match symtab.symbol_section(endian, sym, index).map_err(bad)? {
                Some(SectionIndex(i)) if i < sections.len() => SymbolPlace::Section(i),
                Some(SectionIndex(i)) => {
                    return Err(LinkError::malformed(
                        n,
                        format!("symbol {sym_name} names missing section {i}"),
                    ))
                }
                None if sym.st_shndx(endian) == elf::SHN_XINDEX => SymbolPlace::Undefined,
                None => SymbolPlace::Other,
            },
        };
        symbols.push(Symbol {
            name: sym_name,
            bind: sym.st_bind(),
            kind: sym.st_type(),
            visibility: sym.st_visibility(),
            place,
            value: sym.st_value(endian),
            size: sym.st_size(endian),
        });
    }

    // COMDAT groups.
    let mut groups = Vec::new();
    for sh in table.iter() {
        let Some((flag, members)) = sh.group(endian, data).map_err(bad)? else {
            continue;
        };
        if flag & elf::GRP_COMDAT == 0 {
            continue;
        }
        let sig_idx = sh.sh_info(endian) as usize;
        let signature = symbols
            .get(sig_idx)
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                LinkError::malformed(n, format!("group signature symbol {sig_idx} missing"))
            })?;
        let group_idx = groups.len();
        for member in members {
            let m = member.get(endian) as usize;
            let sec = sections.get_mut(m).ok_or_else(|| {
                LinkError::malformed(n, format!("group {signature} names missing section {m}"))
            })?;
            sec.group = Some(group_idx);
        }
        groups.push(ComdatGroup { signature });
    }

    // Relocations.
    for sh in table.iter() {
        let sh_type = sh.sh_type(endian);
        if sh_type != elf::SHT_RELA && sh_type != elf::SHT_REL && sh_type != elf::SHT_CREL {
            continue;
        }
        let target = sh.sh_info(endian) as usize;
        let Some(target_sec) = sections.get(target) else {
            return Err(LinkError::malformed(
                n,
                format!("relocation section targets missing section {target}"),
            ));
        };
        if target_sec.role == SectionRole::Skipped {
            continue; // Relocations of debug info and the like are ignored.
        }
        if sh_type != elf::SHT_RELA {
            return Err(LinkError::unsupported(
                n,
                format!(
                    "relocations without addends (SHT_REL/SHT_CREL) for section {}",
                    target_sec.name
                ),
            ));
        }
        let rela: &[elf::Rela64<Endianness>] = sh.data_as_array(endian, data).map_err(bad)?;
        let mut relocs = Vec::with_capacity(rela.len());
        for r in rela {
            let reloc = Reloc {
                offset: r.r_offset(endian),
                kind: r.r_type(endian, false),
                sym: r.r_sym(endian, false) as usize,
                addend: r.r_addend(endian),
            };
            check_reloc(n, target_sec, &reloc, symbols.len())?;
            relocs.push(reloc);
        }
        if let Some(sec) = sections.get_mut(target) {
            sec.relocs.extend(relocs);
        }
    }

    let (defined, undefined) = collect_interface(n, &sections, &symbols, &groups)?;
    Ok(ObjectData {
        name,
        bytes,
        sections,
        symbols,
        groups,
        defined,
        undefined,
    })
}

fn check_reloc(
    object: &str,
    sec: &Section,
    reloc: &Reloc,
    n_symbols: usize,
) -> Result<(), LinkError> {
    let unsupported = || LinkError::UnsupportedRelocation {
        object: object.to_owned(),
        section: sec.name.clone(),
        offset: reloc.offset,
        kind: RelocationKind(reloc.kind),
    };
    let width = x86_64::field_width(reloc.kind).ok_or_else(unsupported)?;
    let end = reloc.offset.checked_add(width);
    if end.is_none_or(|e| e > sec.size) {
        return Err(LinkError::malformed(
            object,
            format!(
                "relocation at offset {:#x} lies outside section {}",
                reloc.offset, sec.name
            ),
        ));
    }
    if reloc.sym >= n_symbols.max(1) {
        return Err(LinkError::malformed(
            object,
            format!(
                "relocation at offset {:#x} in {} names missing symbol {}",
                reloc.offset, sec.name, reloc.sym
            ),
        ));
    }
    Ok(())
}

/// Classifies a section by type, flags and name.
fn section_role(name: &str, sh_type: u32, flags: u64) -> SectionRole {
    let alloc = flags & u64::from(elf::SHF_ALLOC) != 0;
    if !alloc
        || matches!(
            sh_type,
            elf::SHT_NOTE | elf::SHT_GROUP | elf::SHT_SYMTAB | elf::SHT_STRTAB
        )
    {
        return SectionRole::Skipped;
    }
    if sh_type == elf::SHT_RELA || sh_type == elf::SHT_REL || name.starts_with(".note") {
        return SectionRole::Skipped;
    }
    if flags & u64::from(elf::SHF_TLS) != 0 {
        return SectionRole::Tls;
    }
    let is = |base: &str| {
        name == base
            || name
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    if sh_type == elf::SHT_INIT_ARRAY || is(".init_array") {
        return SectionRole::InitArray;
    }
    if sh_type == elf::SHT_FINI_ARRAY || is(".fini_array") {
        return SectionRole::FiniArray;
    }
    if is(".ctors") {
        return SectionRole::Ctors;
    }
    if is(".dtors") {
        return SectionRole::Dtors;
    }
    if sh_type == elf::SHT_X86_64_UNWIND || name == ".eh_frame" {
        return SectionRole::EhFrame;
    }
    if flags & u64::from(elf::SHF_EXECINSTR) != 0 {
        return SectionRole::Code;
    }
    if flags & u64::from(elf::SHF_WRITE) != 0 && !is(".data.rel.ro") {
        return SectionRole::Data;
    }
    SectionRole::ReadOnly
}

/// The object's interface: defined non-local symbols and undefined ones.
fn collect_interface(
    object: &str,
    sections: &[Section],
    symbols: &[Symbol],
    groups: &[ComdatGroup],
) -> Result<(Vec<DefinedSymbol>, Vec<UndefinedSymbol>), LinkError> {
    let mut defined: Vec<DefinedSymbol> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut undefined: Vec<UndefinedSymbol> = Vec::new();
    let mut seen_undef: HashMap<&str, usize> = HashMap::new();
    for sym in symbols.iter().skip(1) {
        if sym.is_local() || sym.name.is_empty() {
            continue;
        }
        let weak = sym.bind == elf::STB_WEAK;
        let comdat = match sym.place {
            SymbolPlace::Undefined => {
                match seen_undef.get(sym.name.as_str()) {
                    Some(&i) => {
                        if let Some(u) = undefined.get_mut(i) {
                            u.weak &= weak;
                        }
                    }
                    None => {
                        seen_undef.insert(&sym.name, undefined.len());
                        undefined.push(UndefinedSymbol {
                            name: sym.name.clone(),
                            weak,
                        });
                    }
                }
                continue;
            }
            SymbolPlace::Other => {
                return Err(LinkError::unsupported(
                    object,
                    format!("section index of symbol {}", sym.name),
                ))
            }
            SymbolPlace::Section(i) => {
                let sec = sections.get(i);
                let in_tls = sec.is_some_and(|s| s.role == SectionRole::Tls);
                if in_tls != (sym.kind == elf::STT_TLS) && sym.kind != elf::STT_NOTYPE {
                    return Err(LinkError::unsupported(
                        object,
                        format!("thread-local symbol {} outside a TLS section", sym.name),
                    ));
                }
                if sec.is_some_and(|s| s.role == SectionRole::Skipped) {
                    continue; // A global in a non-loaded section has no address.
                }
                sec.and_then(|s| s.group)
                    .and_then(|g| groups.get(g))
                    .map(|g| g.signature.clone())
            }
            SymbolPlace::Absolute | SymbolPlace::Common => None,
        };
        let mut flags = SymbolFlags::NONE;
        if matches!(sym.visibility, elf::STV_DEFAULT | elf::STV_PROTECTED) {
            flags |= SymbolFlags::EXPORTED;
        }
        if matches!(sym.kind, elf::STT_FUNC | elf::STT_GNU_IFUNC) {
            flags |= SymbolFlags::CALLABLE;
        }
        if weak {
            flags |= SymbolFlags::WEAK;
        }
        if sym.place == SymbolPlace::Common {
            flags |= SymbolFlags::COMMON;
        }
        if let Some(&prev) = seen.get(sym.name.as_str()) {
            let prev_strong = defined.get(prev).is_some_and(|d| d.flags.is_strong());
            if prev_strong && flags.is_strong() {
                return Err(LinkError::DuplicateSymbol {
                    symbol: sym.name.clone(),
                    first: object.to_owned(),
                    second: object.to_owned(),
                });
            }
            continue;
        }
        seen.insert(&sym.name, defined.len());
        defined.push(DefinedSymbol {
            name: sym.name.clone(),
            flags,
            comdat,
        });
    }
    // A name both defined and referenced is not external.
    undefined.retain(|u| !seen.contains_key(u.name.as_str()));
    Ok((defined, undefined))
}
