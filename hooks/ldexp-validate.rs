//! `ldexp-validate FILE...`: `ldexp validate` as a binary of its own, the entry of the pre-commit hook
//! `ldexp-validate` (.pre-commit-hooks.yaml). pre-commit passes the changed spec files as arguments.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = std::env::args_os().skip(1);
    ldexp::run([OsString::from("ldexp"), OsString::from("validate")].into_iter().chain(args))
}
