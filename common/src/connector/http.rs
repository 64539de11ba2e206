//! The HTTP layer every connector shares: one reqwest client per connector (rustls with ring), and
//! the translation of transport failures and HTTP statuses into typed outcomes. Nothing here logs a
//! URL: signed URLs carry signatures and tokens.

use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::Value;

use super::outcome::{CallError, FailureClass};
use super::retry::RetrySettings;

/// Timeouts and retries of one connector.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// The longest one request may take, the whole answer included.
    pub timeout: Duration,
    /// The longest a TCP/TLS connection may take to open.
    pub connect_timeout: Duration,
    /// Retries inside the client.
    pub retry: RetrySettings,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry: RetrySettings::default(),
        }
    }
}

/// Makes ring the process's TLS crypto provider, which every reqwest client needs (reqwest is built
/// without one so that aws-lc-rs stays out of the CLI's build). Calling it again does nothing.
pub fn install_crypto_provider() {
    // An Err means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) fn build_client(
    service: &'static str,
    settings: &HttpSettings,
) -> Result<Client, CallError> {
    install_crypto_provider();
    Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.connect_timeout)
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            CallError::new(
                FailureClass::Permanent,
                service,
                "client",
                None,
                format!("cannot build the HTTP client: {}", error.without_url()),
            )
        })
}

/// A whole answer: status and body as text.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: String,
}

impl Reply {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The start of the body, for an error message about an answer we could not read.
    pub fn excerpt(&self) -> String {
        let text: String = self.body.chars().take(120).collect();
        if text.len() < self.body.len() {
            format!("{text}…")
        } else {
            text
        }
    }
}

/// One operation on one service: how its failures are named and classified.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call<'a> {
    pub service: &'static str,
    pub operation: &'a str,
    /// A write: a request that was sent but not answered may have been applied.
    pub write: bool,
}

impl Call<'_> {
    pub fn error(
        &self,
        class: FailureClass,
        code: Option<String>,
        message: impl Into<String>,
    ) -> CallError {
        CallError::new(class, self.service, self.operation, code, message)
    }

    /// The class of a request whose answer is missing or unreadable.
    pub fn lost_answer(&self) -> FailureClass {
        if self.write {
            FailureClass::Ambiguous
        } else {
            FailureClass::Retryable
        }
    }

    /// Sends the request and reads the whole answer. Transport failures become typed outcomes;
    /// 429 is retryable, a 5xx retryable for a read and ambiguous for a write; every other status is
    /// the connector's to read.
    pub async fn send(&self, request: RequestBuilder) -> Result<Reply, CallError> {
        let started = Instant::now();
        let response = request.send().await.map_err(|error| {
            let error = error.without_url();
            if error.is_connect() {
                // Nothing reached the service.
                self.error(
                    FailureClass::Retryable,
                    None,
                    format!("cannot connect: {}", chain(&error)),
                )
            } else if error.is_timeout() {
                self.error(self.lost_answer(), None, "no answer before the timeout")
            } else {
                self.error(
                    self.lost_answer(),
                    None,
                    format!("request failed: {}", chain(&error)),
                )
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.map_err(|error| {
            let error = error.without_url();
            let what = if error.is_timeout() {
                "the answer stopped before the timeout".to_owned()
            } else {
                format!("connection cut mid-answer: {}", chain(&error))
            };
            self.error(self.lost_answer(), Some(status.as_str().to_owned()), what)
        })?;
        tracing::debug!(
            service = self.service,
            operation = self.operation,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            bytes = body.len(),
            "answer"
        );
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            let reply = Reply { status, body };
            // Throttling refuses before any work. A 5xx proves nothing: the gateway may answer 500,
            // 502 or 504 after the service committed a write, so a write's outcome is unknown.
            let class = if status == StatusCode::TOO_MANY_REQUESTS {
                FailureClass::Retryable
            } else {
                self.lost_answer()
            };
            return Err(self
                .error(
                    class,
                    Some(status.as_str().to_owned()),
                    format!("HTTP {status}: {}", reply.excerpt()),
                )
                .with_retry_after(retry_after));
        }
        Ok(Reply { status, body })
    }

    /// An answer that should have been JSON and is not.
    pub fn unreadable(&self, reply: &Reply) -> CallError {
        self.error(
            self.lost_answer(),
            Some(reply.status.as_str().to_owned()),
            format!("answer is not the expected JSON: {}", reply.excerpt()),
        )
    }
}

/// An error with its sources, one line: reqwest's own message is often just "error sending request".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
