//! Kingdee's wire: paths, headers, and how the two answer shapes (V1 `success`/`errorCode`, newer
//! `errcode`/`description`) are read. Codes marked [I] are the sandbox's choice where the vendor is silent.

use serde_json::Value;

use crate::connector::FailureClass;

/// The public API gateway.
pub const GATEWAY_URL: &str = "https://api.kingdee.com";
/// The app-token endpoint.
pub const TOKEN_PATH: &str = "/jdyconnector/app_management/kingdee_auth_token";
/// Pulls the tenant's current authorisation (`app_key`, `app_secret`, `domain`) again.
pub const AUTHORIZE_PATH: &str = "/jdyconnector/app_management/push_app_authorize";
/// The V1 sales-order save (creates, or modifies the bill named by `id`).
pub const SAVE_PATH: &str = "/jdy/sal/sal_order_save";
/// One sales order by `number` or `id`, with its entries' ids.
pub const DETAIL_PATH: &str = "/jdy/v2/scm/sal_order_detail";
/// The sales-order list (`bill_no` exact, `search` fuzzy).
pub const LIST_PATH: &str = "/jdy/v2/scm/sal_order";
/// 授权密钥校验失败: the token request's app secret, or a business call's app-token, is refused.
pub const TOKEN_INVALID: i64 = 1030002006;
/// [I] The request's gateway signature, client id or timestamp is wrong (HTTP 403).
pub const BAD_SIGNATURE: i64 = 1030002001;
/// [I] Throttled (sent with HTTP 429 and `Retry-After`).
pub const THROTTLED: i64 = 1030002010;
/// The gateway's clock-skew allowance on `X-Api-TimeStamp` [I].
pub const MAX_SKEW_MS: i64 = 10 * 60 * 1000;

/// What an answer says.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// Accepted; the answer's `data`.
    Accepted(Value),
    /// The app-token (or, at the token endpoint, the app secret) is refused: renew, retry once.
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

/// Whether a gateway refusal is about the app-token. The code of an expired token on a business
/// call is not documented (1030002006, HTTP 401 and other codes are all seen), so the token is
/// renewed once whenever the refusal is of the gateway's authorisation family (`10300020xx`, the
/// family of 1030002006) or names the token. A business refusal (a missing bill, a rule) is neither:
/// renewing for it would spend the token endpoint's two calls a minute.
fn names_token(code: &str, message: &str) -> bool {
    let lower = message.to_lowercase();
    (code.starts_with("10300020") && code != THROTTLED.to_string())
        || lower.contains("token")
        || message.contains("令牌")
        || message.contains("授权")
}

/// Reads an answer of either generation.
pub(crate) fn read(status: u16, body: Option<&Value>) -> Answer {
    if status == 401 {
        // A signature mismatch or an expired token: renewing tells which (a fresh token refused
        // again is a credentials problem).
        let message = body
            .and_then(|b| b.get("description").or_else(|| b.get("message")))
            .and_then(Value::as_str)
            .unwrap_or("HTTP 401");
        return Answer::TokenRejected(message.to_owned());
    }
    let Some(body) = body else {
        return Answer::Unreadable;
    };
    if let Some(errcode) = body.get("errcode").or_else(|| body.get("code")) {
        let code = code_text(errcode);
        let message = body
            .get("description")
            .or_else(|| body.get("msg"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // Some answers of the authorisation service say `code: 200`.
        if code == "0" || (code == "200" && body.get("errcode").is_none()) {
            let data = body.get("data").cloned().unwrap_or(Value::Null);
            // Two-level here too: `data.success: false` under a zero errcode is a refusal.
            if data.get("success").and_then(Value::as_bool) == Some(false) {
                return Answer::Refused(FailureClass::Permanent, String::new(), error_info(&data));
            }
            return Answer::Accepted(data);
        }
        if code == BAD_SIGNATURE.to_string() || status == 403 {
            return Answer::Refused(FailureClass::Credentials, code, message);
        }
        if names_token(&code, &message) {
            return Answer::TokenRejected(format!("{message} (code {code})"));
        }
        let class = if code == THROTTLED.to_string() {
            FailureClass::Retryable
        } else {
            FailureClass::Permanent
        };
        return Answer::Refused(class, code, message);
    }
    match body.get("success").and_then(Value::as_bool) {
        Some(true) => {
            let data = body.get("data").cloned().unwrap_or(Value::Null);
            // Two-level success: `data.success: false` under a top-level `true` is a refusal.
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

/// An id as text (Kingdee sends ids as strings or numbers).
pub(crate) fn id_text(value: Option<&Value>) -> Option<String> {
    value.map(code_text).filter(|id| !id.is_empty())
}

/// The id of a saved bill: `successPkIds[0]` (V1) or `id`.
pub(crate) fn saved_id(data: &Value) -> Option<String> {
    // V1: `successPkIds`; V2 (`SaveReply`): `ids`.
    id_text(
        data.get("successPkIds")
            .or_else(|| data.get("ids"))
            .and_then(Value::as_array)
            .and_then(|ids| ids.first())
            .or_else(|| data.get("id")),
    )
}

/// A sales order as the detail API answers it: its id, number and entry ids in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detail {
    /// The bill's id.
    pub id: String,
    /// `bill_no`.
    pub number: String,
    /// `material_entity[].id`, in the bill's order.
    pub entries: Vec<String>,
}

/// Reads a detail answer's `data`; `None` when it names no bill.
pub(crate) fn detail_of(data: &Value) -> Option<Detail> {
    let id = id_text(data.get("id"))?;
    let entries = data
        .get("material_entity")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| id_text(entry.get("id")))
        .collect();
    Some(Detail {
        id,
        number: data
            .get("bill_no")
            .or_else(|| data.get("billno"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        entries,
    })
}

/// How long an app-token lives, from the token answer's `data`: `expires` is an instant in epoch
/// milliseconds (seconds are accepted too); `expires_in` a lifetime in seconds.
pub(crate) fn token_lifetime(data: &Value, now_ms: i64) -> Option<std::time::Duration> {
    let number = |name: &str| {
        data.get(name)
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()))
    };
    if let Some(expires) = number("expires") {
        let until_ms = match expires {
            n if n > 1_000_000_000_000 => n,
            n if n > 1_000_000_000 => n * 1000,
            // A small number is a lifetime in seconds, as some gateways send it.
            n => now_ms + n * 1000,
        };
        return u64::try_from(until_ms - now_ms)
            .ok()
            .map(std::time::Duration::from_millis);
    }
    number("expires_in")
        .and_then(|s| u64::try_from(s).ok())
        .map(std::time::Duration::from_secs)
}

/// The token from the token answer's `data` (`app-token`; a few callers read `app_token`).
pub(crate) fn token_of(data: &Value) -> Option<String> {
    data.get("app-token")
        .or_else(|| data.get("app_token"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// One tenant authorisation from `push_app_authorize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub app_key: String,
    pub app_secret: String,
    pub domain: Option<String>,
}

/// The authorisation of `app_key` among those `push_app_authorize` answers (`data` is a list).
pub(crate) fn authorization_of(data: &Value, app_key: &str) -> Option<Authorization> {
    let items: Vec<&Value> = match data {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![data],
        _ => Vec::new(),
    };
    items.into_iter().find_map(|item| {
        let key = item
            .get("appKey")
            .or_else(|| item.get("app_key"))?
            .as_str()?;
        if key != app_key {
            return None;
        }
        Some(Authorization {
            app_key: key.to_owned(),
            app_secret: item
                .get("appSecret")
                .or_else(|| item.get("app_secret"))?
                .as_str()?
                .to_owned(),
            domain: item
                .get("domain")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        })
    })
}
