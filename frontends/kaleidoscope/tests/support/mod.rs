//! Helpers shared by the integration tests: where the sample programs live,
//! and a host ISA object module to lower into. Each test crate uses a
//! subset, hence the `allow(dead_code)` where they include this module.

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_module::default_libcall_names;
use cranelift_object::{ObjectBuilder, ObjectModule};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The shared Kaleidoscope programs folder of the repository.
pub(crate) fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs/kaleidoscope")
}

/// Every file in `dir` ending in `.ext`, sorted, as (path, contents).
pub(crate) fn files_with_ext(dir: &Path, ext: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            (path, text)
        })
        .collect()
}

/// The host ISA with the verifier on and `opt_level=speed`, built once.
fn host_isa() -> OwnedTargetIsa {
    static ISA: OnceLock<OwnedTargetIsa> = OnceLock::new();
    ISA.get_or_init(|| {
        let mut flags = settings::builder();
        flags.set("enable_verifier", "true").expect("flag");
        flags.set("opt_level", "speed").expect("flag");
        cranelift_native::builder()
            .expect("host ISA")
            .finish(settings::Flags::new(flags))
            .expect("host ISA flags")
    })
    .clone()
}

/// A fresh object module for the host.
pub(crate) fn host_module(name: &str) -> ObjectModule {
    let builder =
        ObjectBuilder::new(host_isa(), name, default_libcall_names()).expect("object builder");
    ObjectModule::new(builder)
}
