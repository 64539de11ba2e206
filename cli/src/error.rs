//! A command's failure: what went wrong, in words, and whose move it is. The domain picks the exit
//! code, so a script or a scheduler can tell "fix the input" from "try again later".

use std::fmt::Display;

use ferry_common::{Classified, Domain, RetryHint};

/// The command ran and found problems (a scheme with errors, a verification that failed, a
/// document that could not be mapped): the output says which.
pub const EXIT_PROBLEMS: i32 = 1;
/// The input is wrong (arguments, a configuration or scheme file, an unknown scheme or
/// document): fix it and run again.
pub const EXIT_USER: i32 = 2;
/// A service refused or could not be reached (WDT, Kingdee, Yonyou, AWS): the same command may
/// pass later.
pub const EXIT_EXTERNAL: i32 = 3;
/// Ferry itself or this machine failed (its store file, the disk, a bug): see the message.
pub const EXIT_INTERNAL: i32 = 4;

/// The exit codes, as `ferry --help` prints them.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  done
  1  done, and problems were found (the output lists them)
  2  the input is wrong: arguments, a configuration or scheme file, an unknown scheme or document
  3  a service refused or could not be reached (WDT, Kingdee, Yonyou, AWS): try again later
  4  Ferry or this machine failed (its store, the disk, a bug)";

/// A command's failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// Whose move it is.
    pub domain: Domain,
    /// What went wrong and, where known, what to do.
    pub message: String,
    /// Whether the same command may pass later (an outage) or not until something changes.
    pub retry: RetryHint,
}

impl CliError {
    /// The input is wrong.
    pub fn user(message: impl Display) -> CliError {
        CliError {
            domain: Domain::User,
            message: message.to_string(),
            retry: RetryHint::Never,
        }
    }

    /// A service refused or could not be reached.
    pub fn external(message: impl Display) -> CliError {
        CliError {
            domain: Domain::External,
            message: message.to_string(),
            retry: RetryHint::Later,
        }
    }

    /// Ferry or the machine failed.
    pub fn internal(message: impl Display) -> CliError {
        CliError {
            domain: Domain::Internal,
            message: message.to_string(),
            retry: RetryHint::Never,
        }
    }

    /// An error that says its own domain.
    pub fn classified(error: &(impl Classified + Display)) -> CliError {
        CliError {
            domain: error.domain(),
            message: error.to_string(),
            retry: error.retry_hint(),
        }
    }

    /// The same error, its message prefixed with what was being done.
    pub fn with_context(mut self, doing: &str) -> CliError {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// The process's exit code.
    pub fn exit_code(&self) -> i32 {
        match self.domain {
            Domain::User => EXIT_USER,
            Domain::External => EXIT_EXTERNAL,
            Domain::Internal => EXIT_INTERNAL,
        }
    }
}

impl Classified for CliError {
    fn domain(&self) -> Domain {
        self.domain
    }

    fn retry_hint(&self) -> RetryHint {
        self.retry
    }
}

impl From<ferry_common::SchemeError> for CliError {
    fn from(e: ferry_common::SchemeError) -> Self {
        CliError::classified(&e)
    }
}

impl From<ferry_common::engine::StoreError> for CliError {
    fn from(e: ferry_common::engine::StoreError) -> Self {
        CliError::classified(&e)
    }
}

impl From<ferry_common::embedded::RuntimeError> for CliError {
    fn from(e: ferry_common::embedded::RuntimeError) -> Self {
        CliError::classified(&e)
    }
}

impl From<std::io::Error> for CliError {
    /// Writing the output failed (a closed pipe, a full disk).
    fn from(e: std::io::Error) -> Self {
        CliError::internal(format!("cannot write the output: {e}"))
    }
}

/// Gives a plain error its domain where it is met: `load().user()?`.
pub trait Blame<T> {
    /// The input is wrong.
    fn user(self) -> Result<T, CliError>;
    /// A service refused or could not be reached.
    fn external(self) -> Result<T, CliError>;
    /// Ferry or the machine failed.
    fn internal(self) -> Result<T, CliError>;
}

impl<T, E: Display> Blame<T> for Result<T, E> {
    fn user(self) -> Result<T, CliError> {
        self.map_err(CliError::user)
    }
    fn external(self) -> Result<T, CliError> {
        self.map_err(CliError::external)
    }
    fn internal(self) -> Result<T, CliError> {
        self.map_err(CliError::internal)
    }
}
