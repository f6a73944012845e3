//! The `ldexp` binary: the command line of the library (src/lib.rs), with the allocator a plan needs.

use std::process::ExitCode;

// A plan allocates and frees millions of small strings and maps. glibc's allocator spent about 45% of
// planning time at 10,000 experiments in its own bookkeeping (consolidating and unlinking free chunks); mimalloc's
// per-size free lists do not (see BENCHMARKS.md). Built with `no_thp`: transparent huge pages added 30 MiB of
// resident memory at that scale and no speed.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ldexp::run(std::env::args_os())
}
