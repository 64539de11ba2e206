//! WDT's wire: endpoints, the two answer envelopes, and which error codes may pass with a retry.
//! Codes marked [I] (docs/apis.md) are the sandbox's choice where the vendor is silent.

use serde_json::Value;

use crate::connector::FailureClass;

/// The public Qimen router.
pub const QIMEN_URL: &str = "http://hu3cgwt0tc.api.taobao.com/router/qm";
/// WDT's app on Qimen, as public callers use it.
pub const WDT_TARGET_APP_KEY: &str = "21363512";
/// The public openapi2 base.
pub const OPENAPI2_URL: &str = "https://api.wangdian.cn/openapi2/";

/// Qimen gateway code: the signature does not match.
pub const INVALID_SIGNATURE: &str = "25";
/// Qimen gateway code (TOP): unknown app key.
pub const INVALID_APP_KEY: &str = "29";
/// Qimen gateway code (TOP): timestamp missing, malformed or outside ±10 minutes.
pub const INVALID_TIMESTAMP: &str = "31";
/// Qimen gateway code [I]: unknown method.
pub const INVALID_METHOD: &str = "22";
/// Qimen gateway code (TOP): a required system parameter is missing.
pub const MISSING_ARGUMENT: &str = "40";
/// Qimen gateway code (TOP): an argument is invalid.
pub const INVALID_ARGUMENTS: &str = "41";
/// Qimen gateway code (TOP): App Call Limited, the app's call quota is spent for now.
pub const APP_CALL_LIMITED: &str = "7";
/// 系统调用频繁: the per-minute call limit was reached (gateway or business code).
pub const THROTTLED: i64 = 1012;
/// How long to wait after 系统调用频繁 (WDT names no time; its limit is per minute).
pub const THROTTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// openapi2 code: 无效timestamp (outside ±300 s).
pub const OPENAPI2_BAD_TIMESTAMP: i64 = 100;
/// openapi2 code [I]: unknown appkey.
pub const OPENAPI2_BAD_APPKEY: i64 = 1050;
/// openapi2 code [I]: the signature does not match.
pub const OPENAPI2_BAD_SIGN: i64 = 1060;
/// Business code [I]: a request parameter is wrong (window too long, bad page size, bad time).
pub const BAD_PARAMETER: i64 = 1;

/// The openapi2 endpoint of a query method.
pub fn openapi2_path(api: &str) -> Option<&'static str> {
    match api {
        "wdt.trade.query" => Some("trade_query.php"),
        "wdt.stockout.order.query.trade" => Some("stockout_order_query_trade.php"),
        _ => None,
    }
}

/// A failure read from an answer: class, code, message.
pub(crate) type Refusal = (FailureClass, String, String);

/// One page's documents and the total the service reported.
pub(crate) fn page_of(body: &Value, list_key: &str) -> (Option<u64>, Vec<Value>) {
    let total = match body.get("total_count") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let documents = match body.get(list_key) {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    };
    (total, documents)
}

fn code_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn business_class(code: &str) -> FailureClass {
    if code == THROTTLED.to_string() {
        FailureClass::Retryable
    } else {
        FailureClass::Permanent
    }
}

/// A read answer: the object holding the list on success, a refusal, or `None` when the answer is
/// not of the expected shape.
pub(crate) type Answer<'a> = Result<&'a Value, Option<Refusal>>;

/// Reads a Qimen answer `{"response": {...}}`: the inner object on success.
pub(crate) fn qimen_answer(body: &Value) -> Answer<'_> {
    let response = body.get("response").ok_or(None)?;
    if response.get("flag").and_then(Value::as_str) == Some("failure") {
        let code = code_text(response.get("code")).unwrap_or_default();
        let mut message = text(response.get("message"));
        let sub = text(response.get("sub_msg"));
        if !sub.is_empty() {
            message = format!("{message}: {sub}");
        }
        let class = match code.as_str() {
            // A fresh timestamp on the next attempt can pass; so can a throttled call later.
            INVALID_TIMESTAMP | APP_CALL_LIMITED => FailureClass::Retryable,
            // The app's key or secret is refused: a setting to fix, not a page to retry.
            INVALID_SIGNATURE | INVALID_APP_KEY => FailureClass::Credentials,
            code => business_class(code),
        };
        return Err(Some((class, code, message)));
    }
    let errorcode = code_text(response.get("errorcode")).unwrap_or_else(|| "0".into());
    if errorcode != "0" {
        let message = text(response.get("message"));
        return Err(Some((business_class(&errorcode), errorcode, message)));
    }
    Ok(response)
}

/// Reads an openapi2 answer `{"code": 0, ...}`: the object itself on success.
pub(crate) fn openapi2_answer(body: &Value) -> Answer<'_> {
    let code = code_text(body.get("code")).ok_or(None)?;
    if code == "0" {
        return Ok(body);
    }
    let class = if code == OPENAPI2_BAD_TIMESTAMP.to_string() {
        FailureClass::Retryable
    } else if code == OPENAPI2_BAD_APPKEY.to_string() || code == OPENAPI2_BAD_SIGN.to_string() {
        FailureClass::Credentials
    } else {
        business_class(&code)
    };
    Err(Some((class, code, text(body.get("message")))))
}
