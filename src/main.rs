//! The `orc` command-line tool. See `orc --help`.

mod cli;

fn main() {
    use clap::Parser;
    let status = cli::main(cli::Cli::parse());
    std::process::exit(status);
}
