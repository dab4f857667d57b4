//! A minimal relocatable ELF writer for code that is not a linked object
//! (stubs): a file symbol, then one global function symbol per piece of
//! code, in `SHT_NOBITS` executable sections placed at the code's
//! addresses (one section per contiguous run, so a section never spans
//! other objects' code). Debuggers and profilers only need the names.

/// A function to name: where it is and how long.
pub(crate) struct SynthSymbol<'a> {
    pub(crate) name: &'a str,
    pub(crate) addr: u64,
    pub(crate) size: u64,
}

/// Pieces at most this far apart share a section.
const MAX_GAP: u64 = 64;

struct Strings(Vec<u8>);

impl Strings {
    fn new() -> Self {
        Strings(vec![0])
    }
    fn add(&mut self, s: &str) -> u32 {
        let at = self.0.len() as u32;
        // A NUL inside a name would end it early: cut it there.
        self.0.extend(s.bytes().take_while(|&b| b != 0));
        self.0.push(0);
        at
    }
}

/// The ELF bytes naming `symbols`, with a file symbol `file`.
pub(crate) fn symbols_object(file: &str, symbols: &[SynthSymbol<'_>]) -> Vec<u8> {
    let mut sorted: Vec<&SynthSymbol<'_>> = symbols.iter().collect();
    sorted.sort_by_key(|s| s.addr);
    // Runs of nearby code: (start, end).
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut run_of = Vec::with_capacity(sorted.len());
    for s in &sorted {
        let end = s.addr.saturating_add(s.size.max(1));
        match runs.last_mut() {
            Some(run) if s.addr <= run.1.saturating_add(MAX_GAP) => run.1 = run.1.max(end),
            _ => runs.push((s.addr, end)),
        }
        run_of.push(runs.len() - 1);
    }

    let mut shstr = Strings::new();
    let mut strtab = Strings::new();
    let text_name = shstr.add(".text");
    let symtab_name = shstr.add(".symtab");
    let strtab_name = shstr.add(".strtab");
    let shstrtab_name = shstr.add(".shstrtab");

    // Symbols: null, file, then the functions.
    let mut symtab = vec![0u8; 24];
    let mut sym = |name: u32, info: u8, shndx: u16, value: u64, size: u64| {
        symtab.extend_from_slice(&name.to_le_bytes());
        symtab.push(info);
        symtab.push(0);
        symtab.extend_from_slice(&shndx.to_le_bytes());
        symtab.extend_from_slice(&value.to_le_bytes());
        symtab.extend_from_slice(&size.to_le_bytes());
    };
    let file_name = strtab.add(file);
    sym(file_name, object::elf::STT_FILE, object::elf::SHN_ABS, 0, 0);
    for (s, &run) in sorted.iter().zip(&run_of) {
        let name = strtab.add(s.name);
        let shndx = u16::try_from(1 + run).unwrap_or(object::elf::SHN_ABS);
        let info = (object::elf::STB_GLOBAL << 4) | object::elf::STT_FUNC;
        sym(name, info, shndx, s.addr - runs[run].0, s.size);
    }

    // Layout: header, symtab, strtab, shstrtab, section headers.
    let symtab_off = 64usize;
    let strtab_off = symtab_off + symtab.len();
    let shstrtab_off = strtab_off + strtab.0.len();
    let shoff = (shstrtab_off + shstr.0.len() + 7) & !7;
    let n_runs = runs.len();
    let symtab_index = 1 + n_runs;
    let shnum = symtab_index + 3;

    let mut out = Vec::with_capacity(shoff + shnum * 64);
    out.extend_from_slice(&object::elf::ELFMAG);
    out.extend_from_slice(&[
        object::elf::ELFCLASS64,
        object::elf::ELFDATA2LSB,
        object::elf::EV_CURRENT,
    ]);
    out.resize(16, 0);
    out.extend_from_slice(&object::elf::ET_REL.to_le_bytes());
    out.extend_from_slice(&object::elf::EM_X86_64.to_le_bytes());
    out.extend_from_slice(&u32::from(object::elf::EV_CURRENT).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    out.extend_from_slice(&(shoff as u64).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&(shnum as u16).to_le_bytes());
    out.extend_from_slice(&((shnum - 1) as u16).to_le_bytes()); // e_shstrndx
    out.extend_from_slice(&symtab);
    out.extend_from_slice(&strtab.0);
    out.extend_from_slice(&shstr.0);
    out.resize(shoff, 0);

    #[allow(clippy::too_many_arguments)]
    fn header(
        out: &mut Vec<u8>,
        name: u32,
        kind: u32,
        flags: u64,
        addr: u64,
        offset: usize,
        size: u64,
        link: u32,
        info: u32,
        align: u64,
        entsize: u64,
    ) {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&link.to_le_bytes());
        out.extend_from_slice(&info.to_le_bytes());
        out.extend_from_slice(&align.to_le_bytes());
        out.extend_from_slice(&entsize.to_le_bytes());
    }
    use object::elf::{SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, SHT_STRTAB, SHT_SYMTAB};
    header(&mut out, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for &(start, end) in &runs {
        let flags = u64::from(SHF_ALLOC | SHF_EXECINSTR);
        header(
            &mut out,
            text_name,
            SHT_NOBITS,
            flags,
            start,
            shoff,
            end - start,
            0,
            0,
            1,
            0,
        );
    }
    let strtab_index = (symtab_index + 1) as u32;
    let symtab_len = symtab.len() as u64;
    header(
        &mut out,
        symtab_name,
        SHT_SYMTAB,
        0,
        0,
        symtab_off,
        symtab_len,
        strtab_index,
        2,
        8,
        24,
    );
    let strtab_len = strtab.0.len() as u64;
    header(
        &mut out,
        strtab_name,
        SHT_STRTAB,
        0,
        0,
        strtab_off,
        strtab_len,
        0,
        0,
        1,
        0,
    );
    let shstr_len = shstr.0.len() as u64;
    header(
        &mut out,
        shstrtab_name,
        SHT_STRTAB,
        0,
        0,
        shstrtab_off,
        shstr_len,
        0,
        0,
        1,
        0,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{Object, ObjectSection, ObjectSymbol};

    #[test]
    fn synthesized_object_names_each_piece_at_its_address() {
        let syms = [
            SynthSymbol {
                name: "f",
                addr: 0x1000,
                size: 8,
            },
            SynthSymbol {
                name: "g",
                addr: 0x1008,
                size: 8,
            },
            SynthSymbol {
                name: "far",
                addr: 0x9000,
                size: 16,
            },
        ];
        let bytes = symbols_object("stubs", &syms);
        let file = object::File::parse(&*bytes).unwrap();
        let texts: Vec<(u64, u64)> = file
            .sections()
            .filter(|s| s.name() == Ok(".text"))
            .map(|s| (s.address(), s.size()))
            .collect();
        assert_eq!(texts, vec![(0x1000, 0x10), (0x9000, 0x10)]);
        let mut found: Vec<(String, u64, u64, u64)> = file
            .symbols()
            .filter(|s| s.kind() == object::SymbolKind::Text)
            .map(|s| {
                let sec = file
                    .section_by_index(s.section_index().unwrap())
                    .unwrap()
                    .address();
                (s.name().unwrap().to_owned(), sec, s.address(), s.size())
            })
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("f".into(), 0x1000, 0, 8),
                ("far".into(), 0x9000, 0, 16),
                ("g".into(), 0x1000, 8, 8),
            ]
        );
    }
}
