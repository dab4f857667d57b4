//! Far data under `orc link`: `-fno-PIC` code reaches data through 32-bit
//! fields; here three objects each hold a gigabyte (so the last lies more
//! than 2 GiB from the code once linked) and the code also uses libc's
//! writable `stdout`/`stderr`. Linked by `orc link` and by the compiler,
//! the program must print the same and exit with the same status.

mod native;

use std::path::Path;

use native::{same_as_native, work_dir};

#[test]
fn non_pic_code_reaches_data_gigabytes_away() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/link_far_data");
    let sources = ["main.c", "data1.c", "data2.c", "data3.c"].map(|f| src.join(f));
    for compiler in ["gcc", "clang-19"] {
        for opt in ["-O0", "-O2"] {
            let dir = work_dir("link_far_data", &format!("{compiler}{opt}"));
            let flags = move |_: &Path| vec![opt, "-fno-PIC", "-mcmodel=small"];
            let native = same_as_native(&dir, compiler, &sources, &flags, &[], &["x"]);
            assert_eq!(native.stdout, "values 2 15 303\ntables 6671 pad xy\ndone\n");
            assert_eq!(native.status, 3);
        }
    }
}
