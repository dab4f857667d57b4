//! The `orc` command-line tool.

fn main() {
    eprintln!("orc: no commands yet");
    std::process::exit(2);
}
