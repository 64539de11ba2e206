//! The typed outcome of a call to an ERP: what the engine acts on.

use std::fmt;
use std::time::Duration;

use crate::error::{Classified, Domain, RetryHint};

/// Why a call failed, as far as the engine is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The service refused the request for good (validation, business rule, bad credentials):
    /// repeating it gives the same answer. Keep the service's message for a person.
    Permanent,
    /// Nothing was applied (network refused, 5xx, throttling, expired token, still processing):
    /// the same request may be sent again later.
    Retryable,
    /// The request may have been applied but the answer was lost (timeout after sending, connection
    /// cut mid-answer, a 5xx or an unreadable answer to a write). Only an idempotent write may simply
    /// be repeated; anything else is settled by looking the bill up.
    Ambiguous,
    /// The service refused Ferry's credentials (signature, app key, secret, token or authorisation),
    /// even after a fresh token: no document can pass until a person fixes the connector's settings.
    /// It is never a document's failure; the run stops pushing to that service.
    Credentials,
}

impl FailureClass {
    fn label(self) -> &'static str {
        match self {
            FailureClass::Permanent => "permanent failure",
            FailureClass::Retryable => "retryable failure",
            FailureClass::Ambiguous => "ambiguous outcome",
            FailureClass::Credentials => "credentials refused",
        }
    }
}

/// A failed call: its class, the service's code and message, and how long the service asked us to wait.
/// It never carries a credential, a token or a signed URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    /// What the engine should do about it.
    pub class: FailureClass,
    /// `wdt`, `kingdee` or `yonyou`.
    pub service: &'static str,
    /// The operation, such as `wdt.trade.query` or `sal_order_save`.
    pub operation: String,
    /// The service's error code (`25`, `1030002006`, `310036`...), or the HTTP status.
    pub code: Option<String>,
    /// The service's message, or what went wrong on the wire.
    pub message: String,
    /// The service asked us to wait this long before trying again (`Retry-After`, throttling).
    pub retry_after: Option<Duration>,
}

impl CallError {
    pub(crate) fn new(
        class: FailureClass,
        service: &'static str,
        operation: &str,
        code: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        CallError {
            class,
            service,
            operation: operation.to_owned(),
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// Whether the engine may send the same request again.
    pub fn is_retryable(&self) -> bool {
        self.class == FailureClass::Retryable
    }

    /// Whether the service refused Ferry's credentials rather than the request.
    pub fn is_credentials(&self) -> bool {
        self.class == FailureClass::Credentials
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.service,
            self.operation,
            self.class.label()
        )?;
        if let Some(code) = &self.code {
            write!(f, " (code {code})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for CallError {}

impl Classified for CallError {
    fn domain(&self) -> Domain {
        match self.class {
            // Wrong settings: a person fixes the connector's configuration.
            FailureClass::Credentials => Domain::User,
            _ => Domain::External,
        }
    }

    fn retry_hint(&self) -> RetryHint {
        match self.class {
            FailureClass::Permanent | FailureClass::Credentials => RetryHint::Never,
            FailureClass::Retryable | FailureClass::Ambiguous => RetryHint::Later,
        }
    }
}

/// A document the target accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The target's id of the bill.
    pub target_id: String,
    /// The service recognised the request as a repeat of one it had already applied
    /// (Yonyou's `resubmitCheckKey`); the id is the first save's.
    pub repeat: bool,
    /// The ids of the bill's lines, in the order the answer lists them, when the answer carries
    /// them (Yonyou's `orderDetails[].id`; Kingdee's save answer never does).
    pub lines: Option<Vec<String>>,
}

impl Saved {
    /// A save whose answer named only the bill.
    pub fn id(target_id: String) -> Saved {
        Saved {
            target_id,
            repeat: false,
            lines: None,
        }
    }
}
