//! The `ferry` command: a thin shell over `ferry_cli::run`.

// Mapping allocates many small values; mimalloc maps a corpus about 12% faster than the system
// allocator (benches/mapping.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = ferry_cli::run(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
