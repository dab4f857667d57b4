//! Finding and loading `-l NAME` libraries the way `gcc ... -L DIR -lNAME`
//! would: the `-L` directories first, then gcc's own library directories
//! (from `gcc -print-search-dirs`, which is where libraries such as
//! `libstdc++.so` live on Debian), then the standard system directories. In
//! each directory `libNAME.so` is preferred over `libNAME.a`; `-l:FILE`
//! names a file exactly. A `.so` that is a GNU ld script (`libc.so`,
//! `libm.so`) is expanded into the files its `GROUP`/`INPUT` commands name.
//!
//! Loading what was found is the core's (`orc::core::link::load_library`);
//! searching is the tool's, as LLVM keeps it in `llvm-jitlink`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use orc::core::link::{LibraryFile, LinkError};

/// The standard system library directories of x86-64 Debian/Ubuntu.
pub(crate) const SYSTEM_LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// The ordered list of directories `-l` searches.
#[derive(Clone, Debug)]
pub(crate) struct LibrarySearch {
    dirs: Vec<PathBuf>,
}

/// gcc's library directories, asked once per process; empty without gcc.
fn gcc_dirs() -> &'static [PathBuf] {
    static DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    DIRS.get_or_init(|| {
        let Ok(out) = Command::new("gcc").arg("-print-search-dirs").output() else {
            return Vec::new();
        };
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("libraries: ="))
            .map(|list| {
                list.split(':')
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default()
    })
}

impl LibrarySearch {
    /// The `-L` directories `user_dirs` (in order), then gcc's, then the
    /// system directories; duplicates (after resolving symlinks and `..`)
    /// and missing directories are dropped.
    pub(crate) fn new<I: IntoIterator<Item = PathBuf>>(user_dirs: I) -> Self {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let all = user_dirs
            .into_iter()
            .chain(gcc_dirs().iter().cloned())
            .chain(SYSTEM_LIBRARY_DIRS.iter().map(PathBuf::from));
        for dir in all {
            let Ok(canon) = dir.canonicalize() else {
                continue;
            };
            if seen.insert(canon) {
                dirs.push(dir);
            }
        }
        LibrarySearch { dirs }
    }

    /// Resolves `-l NAME` to the files to load (a linker script may name
    /// several).
    pub(crate) fn find(&self, name: &str) -> Result<Vec<LibraryFile>, LinkError> {
        self.find_depth(name, 0)
    }

    fn find_depth(&self, name: &str, depth: u32) -> Result<Vec<LibraryFile>, LinkError> {
        let candidates: Vec<String> = match name.strip_prefix(':') {
            Some(exact) => vec![exact.to_owned()],
            None => vec![format!("lib{name}.so"), format!("lib{name}.a")],
        };
        for dir in &self.dirs {
            for file in &candidates {
                let path = dir.join(file);
                if path.is_file() {
                    return self.expand(&path, depth);
                }
            }
        }
        Err(LinkError::LibraryNotFound {
            name: name.to_owned(),
            searched: self.dirs.clone(),
        })
    }

    /// Classifies a found file, expanding linker scripts.
    fn expand(&self, path: &Path, depth: u32) -> Result<Vec<LibraryFile>, LinkError> {
        let head = read_head(path)?;
        if head.starts_with(b"!<arch>\n") {
            return Ok(vec![LibraryFile::Archive(path.to_owned())]);
        }
        if head.starts_with(b"\x7fELF") {
            return Ok(vec![LibraryFile::Shared(path.to_owned())]);
        }
        if depth > 8 {
            return Err(LinkError::LinkerScript {
                path: path.to_owned(),
                reason: "scripts nest too deeply".into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| LinkError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in parse_linker_script(&text).map_err(|reason| LinkError::LinkerScript {
            path: path.to_owned(),
            reason,
        })? {
            if let Some(lib) = entry.strip_prefix("-l") {
                files.extend(self.find_depth(lib, depth + 1)?);
                continue;
            }
            let file = PathBuf::from(&entry);
            let file = if file.is_absolute() || file.exists() {
                file
            } else {
                match self
                    .dirs
                    .iter()
                    .map(|d| d.join(&entry))
                    .find(|p| p.is_file())
                {
                    Some(found) => found,
                    None => {
                        return Err(LinkError::LinkerScript {
                            path: path.to_owned(),
                            reason: format!("{entry} not found"),
                        })
                    }
                }
            };
            files.extend(self.expand(&file, depth + 1)?);
        }
        Ok(files)
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>, LinkError> {
    use std::io::Read;
    let io = |source| LinkError::Io {
        path: path.to_owned(),
        source,
    };
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .map_err(io)?
        .take(8)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok(head)
}

/// The file names in the `GROUP`, `INPUT` (and nested `AS_NEEDED`) commands
/// of a GNU ld script; other commands (`OUTPUT_FORMAT`, `SEARCH_DIR`...)
/// are ignored.
pub(crate) fn parse_linker_script(text: &str) -> Result<Vec<String>, String> {
    // Strip /* ... */ comments.
    let mut clean = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        clean.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => rest = &rest[start + 2 + end + 2..],
            None => return Err("unterminated comment".into()),
        }
    }
    clean.push_str(rest);
    let spaced = clean
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace(',', " ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut files = Vec::new();
    let mut i = 0;
    let mut found_command = false;
    while let Some(&tok) = tokens.get(i) {
        if (tok == "GROUP" || tok == "INPUT") && tokens.get(i + 1) == Some(&"(") {
            found_command = true;
            let mut depth = 0;
            i += 1;
            while let Some(&t) = tokens.get(i) {
                match t {
                    "(" => depth += 1,
                    ")" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "AS_NEEDED" => {}
                    file => files.push(file.to_owned()),
                }
                i += 1;
            }
            if depth != 0 {
                return Err("unbalanced parentheses".into());
            }
        }
        i += 1;
    }
    if !found_command {
        return Err("no GROUP or INPUT command".into());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_glibc_scripts() {
        let libc = "/* GNU ld script\n   Use the shared library. */\nOUTPUT_FORMAT(elf64-x86-64)\n\
                    GROUP ( /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc_nonshared.a  \
                    AS_NEEDED ( /lib64/ld-linux-x86-64.so.2 ) )\n";
        assert_eq!(
            parse_linker_script(libc).unwrap(),
            vec![
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/libc_nonshared.a",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert_eq!(
            parse_linker_script("INPUT(-lfoo, bar.a)").unwrap(),
            vec!["-lfoo", "bar.a"]
        );
        assert!(parse_linker_script("GROUP ( a.so").is_err());
        assert!(parse_linker_script("garbage").is_err());
    }

    #[test]
    fn library_search_resolves_like_gcc() {
        let search = LibrarySearch::new(Vec::new());
        let libm = search.find("m").unwrap();
        assert!(
            matches!(libm.first(), Some(LibraryFile::Shared(p)) if p.to_string_lossy().contains("libm.so.6")),
            "libm.so is a linker script naming libm.so.6: {libm:?}"
        );
        let libc = search.find("c").unwrap();
        assert!(
            libc.iter()
                .any(|f| matches!(f, LibraryFile::Archive(p) if p.ends_with("libc_nonshared.a"))),
            "{libc:?}"
        );
        let stdcxx = search.find("stdc++").unwrap();
        assert!(
            matches!(stdcxx.first(), Some(LibraryFile::Shared(_))),
            "{stdcxx:?}"
        );
        let err = search.find("orc_no_such_library").unwrap_err();
        assert!(
            err.to_string().contains("-lorc_no_such_library not found"),
            "{err}"
        );
        // -L directories come first.
        let dir = std::env::temp_dir().join(format!("orc-libsearch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libm.a"), b"!<arch>\n").unwrap();
        let first = LibrarySearch::new(vec![dir.clone()]).find("m").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(first, vec![LibraryFile::Archive(dir.join("libm.a"))]);
    }
}
