//! Static archives (`.a`): parsing their members and choosing which to pull
//! in, as a static linker does: a member is loaded when it defines a symbol
//! that is still undefined, and the members it pulls in may pull more, to a
//! fixpoint (the archives are searched as one group, like
//! `--start-group ... --end-group`). Weak references never pull members.

use std::collections::HashSet;

use object::read::archive::ArchiveFile;

use super::elf::ObjectFile;
use super::error::LinkError;

/// A parsed static archive: its ELF members as [`ObjectFile`]s.
pub struct Archive {
    name: String,
    members: Vec<ObjectFile>,
}

impl Archive {
    /// Parses an archive. Members that are not ELF (such as LLVM bitcode)
    /// are skipped; malformed ELF members are an error naming
    /// `archive(member)`. Thin archives are refused.
    pub fn parse(name: impl Into<String>, bytes: &[u8]) -> Result<Self, LinkError> {
        let name = name.into();
        let bad = |reason: String| LinkError::Archive {
            archive: name.clone(),
            reason,
        };
        let archive = ArchiveFile::parse(bytes).map_err(|e| bad(e.to_string().to_lowercase()))?;
        if archive.is_thin() {
            return Err(bad("thin archives are not supported".into()));
        }
        let mut members = Vec::new();
        for member in archive.members() {
            let member = member.map_err(|e| bad(e.to_string().to_lowercase()))?;
            let data = member
                .data(bytes)
                .map_err(|e| bad(e.to_string().to_lowercase()))?;
            if !data.starts_with(&object::elf::ELFMAG) {
                continue;
            }
            let member_name = format!("{}({})", name, String::from_utf8_lossy(member.name()));
            members.push(ObjectFile::parse(member_name, data)?);
        }
        Ok(Archive { name, members })
    }

    /// The archive's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ELF members, in archive order.
    pub fn members(&self) -> &[ObjectFile] {
        &self.members
    }
}

/// The archive members `objects` need, in the order they were pulled in.
///
/// Starts from the strong undefined symbols of `objects` that none of them
/// defines and iterates over `archives` until no member defines a symbol
/// still undefined.
pub fn select_archive_members(objects: &[ObjectFile], archives: &[Archive]) -> Vec<ObjectFile> {
    let mut defined: HashSet<String> = HashSet::new();
    let mut undefined: HashSet<String> = HashSet::new();
    let add = |obj: &ObjectFile, defined: &mut HashSet<String>, undefined: &mut HashSet<String>| {
        for d in obj.defined_symbols() {
            if !d.flags.is_common() {
                undefined.remove(&d.name);
            }
            defined.insert(d.name.clone());
        }
        for u in obj.undefined_symbols() {
            if !u.weak && !defined.contains(&u.name) {
                undefined.insert(u.name.clone());
            }
        }
    };
    for obj in objects {
        add(obj, &mut defined, &mut undefined);
    }
    let mut pulled: HashSet<(usize, usize)> = HashSet::new();
    let mut selected = Vec::new();
    loop {
        let mut progress = false;
        for (a_idx, archive) in archives.iter().enumerate() {
            for (m_idx, member) in archive.members.iter().enumerate() {
                if pulled.contains(&(a_idx, m_idx)) {
                    continue;
                }
                let wanted = member
                    .defined_symbols()
                    .iter()
                    .any(|d| !d.flags.is_common() && undefined.contains(&d.name));
                if wanted {
                    pulled.insert((a_idx, m_idx));
                    add(member, &mut defined, &mut undefined);
                    selected.push(member.clone());
                    progress = true;
                }
            }
        }
        if !progress {
            return selected;
        }
    }
}
