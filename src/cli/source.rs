//! Where `orc run` reads its program: the named file, or standard input
//! for `-` (read once, its kind told by its content: LLVM bitcode by its
//! magic, LLVM IR text by its top-level keywords, CLIF by its `function`
//! lines, Kaleidoscope otherwise).

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

/// What kind of program a source holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Kaleidoscope,
    LlvmIr,
    Clif,
}

/// The name diagnostics use for standard input.
pub(crate) const STDIN_NAME: &str = "<stdin>";

static STDIN: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The bytes of `path` (standard input for `-`), or the message of why not.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, String> {
    if is_stdin(path) {
        return STDIN
            .get_or_init(|| {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .map(|_| bytes)
                    .map_err(|e| format!("cannot read standard input: {e}"))
            })
            .clone();
    }
    std::fs::read(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))
}

/// [`read`] as UTF-8 text.
pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    String::from_utf8(read(path)?).map_err(|_| format!("{} is not UTF-8 text", name(path)))
}

/// The name of `path` in diagnostics.
pub(crate) fn name(path: &Path) -> String {
    if is_stdin(path) {
        STDIN_NAME.to_owned()
    } else {
        path.display().to_string()
    }
}

/// The kind of program at `path`: by extension, or by content for `-`.
pub(crate) fn kind(path: &Path) -> Result<Kind, String> {
    if is_stdin(path) {
        return Ok(sniff(&read(path)?));
    }
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("ll" | "bc") => Kind::LlvmIr,
        Some("clif") => Kind::Clif,
        _ => Kind::Kaleidoscope,
    })
}

/// The kind of program `bytes` holds.
fn sniff(bytes: &[u8]) -> Kind {
    if bytes.starts_with(b"BC\xC0\xDE") {
        return Kind::LlvmIr;
    }
    let text = String::from_utf8_lossy(bytes);
    let firsts = text.lines().map(str::trim_start);
    let mut kind = Kind::Kaleidoscope;
    for line in firsts {
        if line.starts_with("function %") || line.starts_with("function u") {
            return Kind::Clif;
        }
        let ir = [
            "define ",
            "declare ",
            "target triple",
            "target datalayout",
            "source_filename",
        ];
        if ir.iter().any(|k| line.starts_with(k)) || line.starts_with('@') {
            kind = Kind::LlvmIr;
        }
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_on_standard_input_are_told_by_their_content() {
        assert_eq!(sniff(b"BC\xC0\xDE\x35\x14"), Kind::LlvmIr);
        assert_eq!(
            sniff(b"; ModuleID\ndefine i32 @main() {\n ret i32 0\n}\n"),
            Kind::LlvmIr
        );
        assert_eq!(sniff(b"test run\nfunction %main() -> i32 {\n"), Kind::Clif);
        assert_eq!(sniff(b"def f(x) x * 2;\nf(3);\n"), Kind::Kaleidoscope);
        assert_eq!(
            sniff(b"extern printd(x);\nprintd(1);\n"),
            Kind::Kaleidoscope
        );
    }
}
