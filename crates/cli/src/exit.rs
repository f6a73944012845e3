//! The process exit statuses of every command, in one typed place (uv-style).

use std::process::ExitCode;

/// How a command ended. `main` turns an `Err` into `Failure` after printing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command did what was asked (for `plan`/`drift` with `--detailed-exitcode`: and found nothing to do).
    Success,
    /// An error, or invalid specs.
    Failure,
    /// `--detailed-exitcode` or `drift`: there are changes to apply.
    Changes,
    /// `apply --plan`: the saved plan no longer matches the specs or the remote state.
    Stale,
    /// `apply` was interrupted (Ctrl-C): the conventional 128 + SIGINT.
    Interrupted,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Changes => 2,
            ExitStatus::Stale => 3,
            ExitStatus::Interrupted => 130,
        }
    }

    /// The status for an exit code; unknown codes are failures.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => ExitStatus::Success,
            2 => ExitStatus::Changes,
            3 => ExitStatus::Stale,
            130 => ExitStatus::Interrupted,
            _ => ExitStatus::Failure,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for s in
            [ExitStatus::Success, ExitStatus::Failure, ExitStatus::Changes, ExitStatus::Stale, ExitStatus::Interrupted]
        {
            assert_eq!(ExitStatus::from_code(s.code()), s);
        }
        assert_eq!(ExitStatus::from_code(7), ExitStatus::Failure);
    }
}
