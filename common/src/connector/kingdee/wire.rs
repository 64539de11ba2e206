//! Kingdee's wire: paths, headers, and how the two answer shapes (V1 `success`/`errorCode`, newer
//! `errcode`/`description`) are read. Codes marked [I] are the sandbox's choice where the vendor is silent.

use serde_json::Value;

use crate::connector::FailureClass;

/// The public API gateway.
pub const GATEWAY_URL: &str = "https://api.kingdee.com";
/// The app-token endpoint.
pub const TOKEN_PATH: &str = "/jdyconnector/app_management/kingdee_auth_token";
/// The V1 sales-order save.
pub const SAVE_PATH: &str = "/jdy/sal/sal_order_save";
/// The sales-order list, used to find a bill by number.
pub const LIST_PATH: &str = "/jdy/v2/scm/sal_order/list";
/// 授权密钥失效: the app-token is invalid or expired.
pub const TOKEN_INVALID: i64 = 1030002006;
/// [I] The request's gateway signature, client id or timestamp is wrong.
pub const BAD_SIGNATURE: i64 = 1030002001;
/// [I] Throttled (sent with HTTP 429 and `Retry-After`).
pub const THROTTLED: i64 = 1030002010;
/// [I] The V1 business error code of a bill number that exists already (save without `id`).
pub const DUPLICATE_BILLNO: &str = "BILLNO_DUPLICATE";
/// The gateway's clock-skew allowance on `X-Api-TimeStamp` [I].
pub const MAX_SKEW_MS: i64 = 10 * 60 * 1000;

/// What an answer says.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// Accepted; the answer's `data`.
    Accepted(Value),
    /// The app-token is invalid or expired.
    TokenRejected(String),
    /// Refused: class, code, the service's message.
    Refused(FailureClass, String, String),
    /// Not an answer we can read.
    Unreadable,
}

fn code_text(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// Reads an answer of either generation.
pub(crate) fn read(status: u16, body: Option<&Value>) -> Answer {
    let Some(body) = body else {
        return if status == 401 {
            Answer::TokenRejected("HTTP 401".into())
        } else {
            Answer::Unreadable
        };
    };
    if let Some(errcode) = body.get("errcode") {
        let code = code_text(errcode);
        let message = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if code == TOKEN_INVALID.to_string() || status == 401 {
            return Answer::TokenRejected(message);
        }
        if code == "0" {
            return Answer::Accepted(body.get("data").cloned().unwrap_or(Value::Null));
        }
        let class = if code == THROTTLED.to_string() {
            FailureClass::Retryable
        } else {
            FailureClass::Permanent
        };
        return Answer::Refused(class, code, message);
    }
    if status == 401 {
        return Answer::TokenRejected("HTTP 401".into());
    }
    match body.get("success").and_then(Value::as_bool) {
        Some(true) => {
            let data = body.get("data").cloned().unwrap_or(Value::Null);
            if data.get("success").and_then(Value::as_bool) == Some(false) {
                Answer::Refused(FailureClass::Permanent, String::new(), error_info(&data))
            } else {
                Answer::Accepted(data)
            }
        }
        Some(false) => {
            let code = body.get("errorCode").map(code_text).unwrap_or_default();
            let mut message = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(data) = body.get("data") {
                let info = error_info(data);
                if !info.is_empty() && !message.contains(&info) {
                    message = if message.is_empty() {
                        info
                    } else {
                        format!("{message}: {info}")
                    };
                }
            }
            Answer::Refused(FailureClass::Permanent, code, message)
        }
        None => Answer::Unreadable,
    }
}

/// The messages of a V1 `data.errorInfo` list, joined.
fn error_info(data: &Value) -> String {
    let mut messages: Vec<String> = data
        .get("errorInfo")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|info| {
            info.get("msg")
                .or_else(|| info.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    if messages.is_empty()
        && let Some(message) = data.get("message").and_then(Value::as_str)
    {
        messages.push(message.to_owned());
    }
    messages.join("; ")
}

/// The id of a saved bill: `successPkIds[0]` (V1) or `id`.
pub(crate) fn saved_id(data: &Value) -> Option<String> {
    data.get("successPkIds")
        .and_then(Value::as_array)
        .and_then(|ids| ids.first())
        .or_else(|| data.get("id"))
        .map(code_text)
        .filter(|id| !id.is_empty())
}

/// The token and its lifetime in seconds, from the token answer's `data`.
pub(crate) fn token_of(data: &Value) -> Option<(String, Option<u64>)> {
    let token = data
        .get("app-token")
        .or_else(|| data.get("app_token"))
        .and_then(Value::as_str)?;
    let lifetime = data
        .get("expires_in")
        .or_else(|| data.get("expires"))
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
    Some((token.to_owned(), lifetime))
}
