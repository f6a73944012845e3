//! ldexp command line.
fn main() {}
