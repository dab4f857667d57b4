//! Loading a library file the way the dynamic linker would: shared
//! objects with `dlopen(RTLD_NOW | RTLD_GLOBAL)`, so the process-symbol
//! resolver (`dlsym(RTLD_DEFAULT)`) sees them; archives parsed so their
//! members can be pulled in on demand.
//!
//! Finding `-lNAME` (gcc's search directories, linker scripts) is the
//! tool's business, not the core's: the `orc` CLI does it, as LLVM keeps
//! it in `llvm-jitlink`.

use std::path::{Path, PathBuf};

use super::archive::Archive;
use super::error::LinkError;

/// A library file to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibraryFile {
    /// A shared object, to `dlopen`.
    Shared(PathBuf),
    /// A static archive, whose members are linked in on demand.
    Archive(PathBuf),
}

/// A loaded library: keep it alive as long as code may use it.
pub enum LoadedLibrary {
    /// A `dlopen`ed shared object.
    Shared(libloading::Library),
    /// A parsed archive.
    Archive(Archive),
}

/// Loads a resolved library: `dlopen`s a shared object globally, parses an
/// archive.
pub fn load_library(file: &LibraryFile) -> Result<LoadedLibrary, LinkError> {
    match file {
        LibraryFile::Shared(path) => {
            use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
            // dlopen takes a name without a slash as a library to search
            // for; a file given by the user is a path, even a bare name in
            // the current directory (`orc link main.o libfoo.so`).
            let bare = path.parent().is_some_and(|p| p.as_os_str().is_empty());
            let open_path = if bare {
                Path::new(".").join(path)
            } else {
                path.clone()
            };
            // SAFETY: loading a library runs its initializers; that is what
            // `-l` asks for, exactly as the dynamic linker would at startup.
            let lib = unsafe { Library::open(Some(&open_path), RTLD_NOW | RTLD_GLOBAL) }.map_err(
                |source| LinkError::LibraryLoad {
                    path: path.clone(),
                    source,
                },
            )?;
            if let Some(target) = crate::remote::target() {
                // The code runs in the executor: load it there too, for
                // its process-wide lookups.
                let shown = open_path.to_string_lossy().into_owned();
                target
                    .lookup(Some(&shown), &[])
                    .map_err(|e| LinkError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(format!("loading it in the executor: {e}")),
                    })?;
            }
            Ok(LoadedLibrary::Shared(lib.into()))
        }
        LibraryFile::Archive(path) => {
            let bytes = std::fs::read(path).map_err(|source| LinkError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(LoadedLibrary::Archive(Archive::parse(
                path.display().to_string(),
                &bytes,
            )?))
        }
    }
}
