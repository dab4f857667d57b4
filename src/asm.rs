//! `--dump asm`: the machine code of every linked object, whatever made
//! it (tier 0, tier 1, an object of `orc link`), disassembled where it was
//! loaded, with function names and final addresses.
//!
//! A link plugin ([`AsmDumpPlugin`]) reads each function's bytes once the
//! object's memory is published and decodes them with `iced-x86` (Intel
//! syntax). Reading after linking, rather than printing what a compiler
//! produced, shows the code that runs: relocations applied, calls and
//! jumps at their real targets, named when they land on a known function.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, SymbolResolver};
use orc_core::link::{LinkError, LinkPlugin, LinkView, PluginState};

/// Prints each linked object's functions as assembly (see the module
/// docs) to standard error, or to a sink of the embedder's.
pub struct AsmDumpPlugin {
    sink: Box<dyn Fn(&str) + Send + Sync>,
    /// Names of every function linked so far, by address, so calls into
    /// other objects are named too.
    names: Mutex<HashMap<u64, String>>,
}

impl AsmDumpPlugin {
    /// A plugin printing to standard error.
    pub fn to_stderr() -> Self {
        AsmDumpPlugin::new(|text| eprint!("{text}"))
    }

    /// A plugin giving each object's listing to `sink`.
    pub fn new(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        AsmDumpPlugin {
            sink: Box::new(sink),
            names: Mutex::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for AsmDumpPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsmDumpPlugin").finish_non_exhaustive()
    }
}

/// Names branch and call targets that are known functions.
struct Names(HashMap<u64, String>);

impl SymbolResolver for Names {
    fn symbol(
        &mut self,
        _instruction: &Instruction,
        _operand: u32,
        _instruction_operand: Option<u32>,
        address: u64,
        _address_size: u32,
    ) -> Option<iced_x86::SymbolResult<'_>> {
        self.0
            .get(&address)
            .map(|name| iced_x86::SymbolResult::with_str(address, name.as_str()))
    }
}

/// The listing of `bytes` loaded at `addr`, one instruction a line:
/// address, bytes, instruction.
pub fn disassemble(bytes: &[u8], addr: u64, names: &HashMap<u64, String>) -> String {
    let mut formatter = IntelFormatter::with_options(Some(Box::new(Names(names.clone()))), None);
    formatter.options_mut().set_first_operand_char_index(8);
    let mut decoder = Decoder::with_ip(64, bytes, addr, DecoderOptions::NONE);
    let mut out = String::new();
    let mut text = String::new();
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        text.clear();
        formatter.format(&instruction, &mut text);
        let start = (instruction.ip() - addr) as usize;
        let raw = &bytes[start..start + instruction.len()];
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "  {:016x}  {hex:<20}  {text}", instruction.ip());
    }
    out
}

impl LinkPlugin for AsmDumpPlugin {
    fn name(&self) -> &str {
        "asm-dump"
    }

    fn emitted(&self, view: &LinkView<'_>) -> Result<Option<PluginState>, LinkError> {
        let functions = view.functions();
        if functions.is_empty() {
            return Ok(None);
        }
        let names = {
            let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            for (f, _) in &functions {
                names.insert(f.addr, f.name.to_owned());
            }
            names.clone()
        };
        let mut listing = String::new();
        for (f, range) in &functions {
            let len = (range.end - range.start) as usize;
            let Some(bytes) = view.bytes_at(range.start, len) else {
                continue;
            };
            let _ = writeln!(
                listing,
                "; machine code of {} at {:#x} ({len} bytes, object '{}')",
                f.name,
                f.addr,
                view.name()
            );
            listing.push_str(&disassemble(bytes, range.start, &names));
        }
        (self.sink)(&listing);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_listed_with_addresses_and_named_targets() {
        // push rbp; call rel32 (to 0x2000); ret
        let code = [0x55, 0xe8, 0xfa, 0x0f, 0x00, 0x00, 0xc3];
        let names = HashMap::from([(0x2000, "callee".to_owned())]);
        let text = disassemble(&code, 0x1000, &names);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("0000000000001000  55") && lines[0].ends_with("push    rbp"));
        assert!(lines[1].contains("0000000000001001  e8fa0f0000"), "{text}");
        assert!(lines[1].contains("call    callee"), "{text}");
        assert!(lines[2].ends_with("ret"), "{text}");
    }
}
