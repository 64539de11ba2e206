//! The `ferry` command: a thin shell over `ferry_cli::run`.

fn main() {
    let code = ferry_cli::run(std::env::args_os(), &mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    std::process::exit(code);
}
