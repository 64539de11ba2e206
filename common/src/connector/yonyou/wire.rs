//! Yonyou's wire: paths, string codes that arrive with HTTP 200, and what each one means for a retry.

use std::time::Duration;

use serde_json::Value;

use crate::connector::FailureClass;

/// The public data-centre discovery service.
pub const DISCOVERY_URL: &str = "https://apigateway.yonyoucloud.com";
/// Data-centre discovery.
pub const DISCOVERY_PATH: &str = "/open-auth/dataCenter/getGatewayAddress";
/// The access-token endpoint (the documented newer path; the old one answers too).
pub const TOKEN_PATH: &str = "/open-auth/selfAppAuth/base/v1/getAccessToken";
/// The older access-token path.
pub const OLD_TOKEN_PATH: &str = "/open-auth/selfAppAuth/getAccessToken";
/// The sales-order save.
pub const SAVE_PATH: &str = "/yonbip/sd/voucherorder/singleSave";
/// One sales order by id, with its lines' ids.
pub const DETAIL_PATH: &str = "/yonbip/sd/voucherorder/detail";
/// Sales orders by filters (`code` among them): the only way to find an order by number.
pub const LIST_PATH: &str = "/yonbip/sd/voucherorder/list";
/// Success.
pub const OK: &str = "200";
/// Success of the token and discovery services.
pub const AUTH_OK: &str = "00000";
/// The same `resubmitCheckKey` after its hour: success, with the first save's id.
pub const DUPLICATE: &str = "100004";
/// The duplicate code as some documents spell it.
pub const DUPLICATE_ALT: &str = "10004";
/// Still processing: retry with the same key after about 5 s.
pub const PROCESSING: &str = "202";
/// Timed out inside the gateway: retry with the same key.
pub const TIMEOUT: &str = "310504";
/// No token on the request.
pub const NO_TOKEN: &str = "310001";
/// Invalid or expired token.
pub const TOKEN_INVALID: &str = "310036";
/// Unknown app key (token service).
pub const UNKNOWN_APP: &str = "10018";
/// Wrong token signature or stale timestamp (token service) [I].
pub const BAD_SIGNATURE: &str = "10019";
/// Rate limits and the circuit breaker.
pub const THROTTLE_CODES: &[&str] = &["310032", "310039", "310042", "310046", "310043"];
/// The rate limit the sandbox answers with.
pub const THROTTLED: &str = "310046";
/// The API is not authorised for the app: a setting in Yonyou's console, not a document problem.
pub const NOT_AUTHORISED: &str = "310037";
/// A parameter error.
pub const BAD_PARAMETER: &str = "310008";
/// 数据不存在 (the detail of an order that does not exist).
pub const NO_DATA: &str = "1002";
/// A business error (the message says which).
pub const BUSINESS_ERROR: &str = "999";
/// How long to wait after a rate-limit code (the gateway names no time; its windows are a minute).
pub const THROTTLE_WAIT: Duration = Duration::from_secs(1);
/// How long to wait after `202` or `310504`.
pub const PROCESSING_WAIT: Duration = Duration::from_secs(5);
/// The body some endpoints send, as text, for a bad token.
pub const ILLEGAL_TOKEN_TEXT: &str = "非法token";

/// What an answer says.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// Saved; the answer's `data`, and whether the service recognised a repeat.
    Saved(Value, bool),
    /// The token is missing, invalid or expired.
    TokenRejected(String),
    /// Refused: class, code, message, and the wait the service asks for.
    Refused(FailureClass, String, String, Option<Duration>),
    /// Not an answer we can read.
    Unreadable,
}

/// The code of an answer as a string (some answers send `200` as a number).
pub(crate) fn code_of(body: &Value) -> Option<String> {
    match body.get("code")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn message_of(body: &Value) -> String {
    body.get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Reads a gateway answer (`text` is the raw body, for the plain-text `非法token`): a save's, or a
/// read's (whose success is `200` too).
pub(crate) fn read_save(text: &str, body: Option<&Value>) -> Answer {
    let Some(body) = body else {
        return if text.contains(ILLEGAL_TOKEN_TEXT) {
            Answer::TokenRejected(ILLEGAL_TOKEN_TEXT.into())
        } else {
            Answer::Unreadable
        };
    };
    let Some(code) = code_of(body) else {
        return Answer::Unreadable;
    };
    let message = message_of(body);
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    match code.as_str() {
        OK => Answer::Saved(data, false),
        DUPLICATE | DUPLICATE_ALT => Answer::Saved(data, true),
        NO_TOKEN | TOKEN_INVALID => Answer::TokenRejected(message),
        NOT_AUTHORISED => Answer::Refused(FailureClass::Credentials, code, message, None),
        PROCESSING | TIMEOUT => Answer::Refused(
            FailureClass::Retryable,
            code,
            message,
            Some(PROCESSING_WAIT),
        ),
        code if THROTTLE_CODES.contains(&code) => Answer::Refused(
            FailureClass::Retryable,
            code.to_owned(),
            message,
            Some(THROTTLE_WAIT),
        ),
        _ => Answer::Refused(FailureClass::Permanent, code, message, None),
    }
}

/// The id in a save answer's `data`.
pub(crate) fn saved_id(data: &Value) -> Option<String> {
    match data.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The line ids of an order as an answer gives it (`orderDetails[].id`, in order; lines the answer
/// marks deleted left out). `None` when the answer lists no lines.
pub(crate) fn line_ids(data: &Value) -> Option<Vec<String>> {
    let lines = data.get("orderDetails")?.as_array()?;
    Some(
        lines
            .iter()
            .filter(|line| line.get("_status").and_then(Value::as_str) != Some("Delete"))
            .filter_map(saved_id)
            .collect(),
    )
}

/// The id of the order numbered exactly `code` in a list answer's `data`.
pub(crate) fn listed_id(data: &Value, code: &str) -> Option<String> {
    data.get("recordList")?
        .as_array()?
        .iter()
        .find(|row| row.get("code").and_then(Value::as_str) == Some(code))
        .and_then(saved_id)
}
