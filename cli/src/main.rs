//! The `ferry` command: a thin shell over `ferry_cli::run`.

// Mapping allocates many small values; mimalloc maps a corpus about 12% faster than the system
// allocator (benches/mapping.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(ferry_cli::main());
}
