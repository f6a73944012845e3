//! `cargo run -p ldexp-emulator --example serve -- --seed examples/remote.yaml`: the emulator without the
//! `ldexp` binary, for working on the emulator alone.

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    emulator: ldexp_emulator::cli::EmulatorArgs,
}

#[tokio::main]
async fn main() -> Result<(), ldexp_emulator::EmulatorError> {
    ldexp_emulator::cli::run(Args::parse().emulator).await
}
