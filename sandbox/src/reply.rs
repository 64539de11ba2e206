//! How the sandbox answers: JSON bodies, and the faulted answers (503 pages, hangs, truncated or
//! non-JSON bodies, and a connection cut mid-answer after the work was done).

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::State;
use crate::faults::{Endpoint, Fault};

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// A JSON answer with `Retry-After` (whole seconds, at least 1).
pub(crate) fn throttled(status: StatusCode, body: &Value, wait: std::time::Duration) -> Response {
    let mut response = json(status, body);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn html(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        format!("<html><body><h1>{status}</h1><p>nginx</p></body></html>"),
    )
        .into_response()
}

/// What a handler answers: `Err` is an answer given instead of doing the work (a fault, a refusal).
pub(crate) type Handled = Result<Response, Response>;

/// What happens to the answer once the work is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// It is sent.
    Answer,
    /// Its first bytes are sent, then the connection is cut.
    Lose,
    /// Nothing is sent for this long (the caller gives up or is killed first), then it is.
    Hang(std::time::Duration),
    /// An error page with this status is sent instead.
    Fail(StatusCode),
}

impl After {
    /// Whether the caller never sees the answer.
    pub(crate) fn lost(self) -> bool {
        self != After::Answer
    }
}

/// Rolls the fault for one request to `endpoint` and applies what happens before the work.
/// `throttle` is the service's own throttling answer. `Ok(after)`: go on, and treat the answer as
/// `after` says; `Err`: answer this instead, doing nothing.
pub(crate) async fn fault(
    state: &State,
    endpoint: Endpoint,
    throttle: impl FnOnce() -> Response,
) -> Result<After, Response> {
    state.count(endpoint);
    let Some(fault) = state.faults.draw(endpoint) else {
        return Ok(After::Answer);
    };
    tracing::debug!(?endpoint, ?fault, "sandbox fault");
    match fault {
        Fault::ServerError => Err(html(StatusCode::SERVICE_UNAVAILABLE)),
        Fault::Timeout => {
            tokio::time::sleep(state.config.hang).await;
            Err(html(StatusCode::GATEWAY_TIMEOUT))
        }
        Fault::Slow => {
            tokio::time::sleep(state.config.slow).await;
            Ok(After::Answer)
        }
        Fault::Throttle => Err(throttle()),
        Fault::TokenExpiry => {
            match endpoint {
                Endpoint::KingdeeToken
                | Endpoint::KingdeeSave
                | Endpoint::KingdeeLookup
                | Endpoint::KingdeeAuthorize => state.kingdee_tokens.expire_all(),
                Endpoint::YonyouDiscovery
                | Endpoint::YonyouToken
                | Endpoint::YonyouSave
                | Endpoint::YonyouLookup => state.yonyou_tokens.expire_all(),
                Endpoint::WdtQuery => {}
            }
            Ok(After::Answer)
        }
        Fault::Malformed => Err((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"code\":\"200\",\"data\":{\"id\":\"21",
        )
            .into_response()),
        Fault::NotJson => Err(match endpoint {
            Endpoint::YonyouSave => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
                ferry_common::connector::yonyou::wire::ILLEGAL_TOKEN_TEXT,
            )
                .into_response(),
            _ => html(StatusCode::OK),
        }),
        Fault::CommitThenLost => Ok(After::Lose),
        Fault::CommitThen5xx => {
            // The three statuses a gateway answers after its backend committed and then stalled.
            let statuses = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::GATEWAY_TIMEOUT,
            ];
            let n = state.faults.count(Fault::CommitThen5xx) as usize;
            Ok(After::Fail(statuses[n % statuses.len()]))
        }
        Fault::CommitThenHang => Ok(After::Hang(state.config.hang)),
    }
}

/// Sends `response`; or, when the answer is to be lost, its first bytes and then a cut connection;
/// or, when it is to hang, nothing until the hang is over.
pub(crate) async fn finish(response: Response, after: After) -> Response {
    match after {
        After::Answer => return response,
        After::Hang(hang) => {
            tokio::time::sleep(hang).await;
            return response;
        }
        After::Fail(status) if status == StatusCode::INTERNAL_SERVER_ERROR => {
            return json(
                status,
                &serde_json::json!({"errcode": 500, "description": "系统繁忙, 请稍后再试", "data": null}),
            );
        }
        After::Fail(status) => return html(status),
        After::Lose => {}
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox: answer lost after commit",
        )),
    ];
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(futures_util::stream::iter(chunks)))
}
