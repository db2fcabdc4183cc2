//! The exit codes of every etcd-rescue tool. One table, printed in every man page.

/// Exit codes. The numeric values are part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitCode {
    /// 0: success, whether or not anything changed.
    Success = 0,
    /// 1: internal error (a bug).
    Internal = 1,
    /// 2: usage: bad flags.
    Usage = 2,
    /// 3: bad input: stdin JSON, corrupt or truncated file, wrong format.
    BadInput = 3,
    /// 4: unreachable: dial, TLS, auth, deadline.
    Unreachable = 4,
    /// 5: the check ran and the answer is no.
    CheckFailed = 5,
    /// 6: local I/O failure.
    Io = 6,
    /// 7: refused by a safety check.
    Refused = 7,
    /// 130: interrupted by SIGINT; partial files removed.
    Interrupted = 130,
    /// 143: terminated by SIGTERM; partial files removed.
    Terminated = 143,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The code for a number read from an upstream envelope (unknown numbers map to Internal).
    pub fn from_code(code: i64) -> ExitCode {
        ExitCode::ALL
            .iter()
            .copied()
            .find(|c| c.code() as i64 == code)
            .unwrap_or(ExitCode::Internal)
    }

    pub const ALL: [ExitCode; 10] = [
        ExitCode::Success,
        ExitCode::Internal,
        ExitCode::Usage,
        ExitCode::BadInput,
        ExitCode::Unreachable,
        ExitCode::CheckFailed,
        ExitCode::Io,
        ExitCode::Refused,
        ExitCode::Interrupted,
        ExitCode::Terminated,
    ];

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "success (whether or not anything changed)",
            ExitCode::Internal => "internal error (a bug)",
            ExitCode::Usage => "usage: bad flags",
            ExitCode::BadInput => "bad input: stdin JSON, corrupt or truncated file, wrong format",
            ExitCode::Unreachable => "unreachable: dial, TLS, auth, deadline",
            ExitCode::CheckFailed => "the check ran and the answer is no (unhealthy, v2 data where v3 was asked, ...)",
            ExitCode::Io => "local I/O failure",
            ExitCode::Refused => {
                "refused by a safety check (etcd still running on the dir, quorum at risk, target not empty)"
            }
            ExitCode::Interrupted => "interrupted by SIGINT; partial files removed",
            ExitCode::Terminated => "terminated by SIGTERM; partial files removed",
        }
    }
}

/// The table as `(code, meaning)` rows, for man pages and `--help`.
pub fn table() -> Vec<(i32, &'static str)> {
    ExitCode::ALL
        .iter()
        .map(|c| (c.code(), c.meaning()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers() {
        let codes: Vec<i32> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6, 7, 130, 143]);
        assert_eq!(ExitCode::from_code(5), ExitCode::CheckFailed);
        assert_eq!(ExitCode::from_code(99), ExitCode::Internal);
    }
}
