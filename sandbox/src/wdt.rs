//! The WDT stand-in: `wdt.trade.query` and `wdt.stockout.order.query.trade` over the Qimen router
//! (`/router/qm`: parameters in the query string, or system parameters there and business ones in a
//! POST form body as the official SDK sends them; TOP `md5`, `hmac` and `hmac-sha256` signatures;
//! TOP's gateway codes) and openapi2 (`/openapi2/*.php`, form body, length-prefixed md5 sign), with
//! the real envelopes, limits and time-field rules, and the unknowns of result order and of
//! `total_count` on later pages played as settings.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State as Shared};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use ferry_common::connector::wdt::wire;
use serde_json::{Value, json};

use crate::faults::Endpoint;
use crate::reply::{self, Handled};
use crate::source::{Kind, TimeField};
use crate::unknowns::{LaterTotal, ResultOrder};
use crate::{State, lock, now, signing};

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/router/qm", get(qimen).post(qimen))
        .route("/openapi2/{file}", post(openapi2))
        .with_state(state)
}

/// A refusal: code and message.
type Refusal = (i64, String);

/// The longest window of each query, in seconds.
fn max_window(kind: Kind) -> i64 {
    match kind {
        Kind::Order => 3600,
        Kind::Stockout => 30 * 86_400,
    }
}

fn kind_of(method: &str) -> Option<Kind> {
    match method {
        "wdt.trade.query" => Some(Kind::Order),
        "wdt.stockout.order.query.trade" => Some(Kind::Stockout),
        _ => None,
    }
}

/// A WDT time (`YYYY-MM-DD HH:MM:SS`, Beijing, nothing shorter) as unix seconds.
fn unix_of(text: &str) -> Option<i64> {
    jiff::fmt::strtime::parse(ferry_common::time::SOURCE_FORMAT, text)
        .and_then(|t| t.to_datetime())
        .ok()
        .map(|t| ferry_common::time::from_beijing(t).as_second())
}

fn parse_time(params: &HashMap<String, String>, name: &str) -> Result<i64, Refusal> {
    let text = params
        .get(name)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| (wire::BAD_PARAMETER, format!("{name}不能为空")))?;
    unix_of(text).ok_or_else(|| {
        (
            wire::BAD_PARAMETER,
            format!("{name}格式错误, 应为YYYY-MM-DD HH:MM:SS: '{text}'"),
        )
    })
}

fn number(params: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, Refusal> {
    match params.get(name).filter(|t| !t.is_empty()) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| (wire::BAD_PARAMETER, format!("{name}必须是整数: '{text}'"))),
    }
}

/// Runs one query: the documents of one page and the window's total.
fn query(
    state: &State,
    kind: Kind,
    params: &HashMap<String, String>,
) -> Result<(usize, Vec<Value>), Refusal> {
    let config = &state.config;
    let page_size = number(params, "page_size", i64::from(config.default_page_size))?;
    if page_size < 1 || page_size > i64::from(config.max_page_size) {
        return Err((
            wire::BAD_PARAMETER,
            format!("page_size超出范围(1-{}): {page_size}", config.max_page_size),
        ));
    }
    let page_no = number(params, "page_no", 0)?;
    if page_no < 0 {
        return Err((wire::BAD_PARAMETER, format!("page_no不能小于0: {page_no}")));
    }
    let now = now();
    let mut source = lock(&state.source);
    // A look-up of one document ignores every other filter.
    let lookup_fields: &[&str] = match kind {
        Kind::Order => &["trade_no", "src_tid"],
        Kind::Stockout => &["src_order_no", "stockout_no", "src_tid"],
    };
    let lookup = lookup_fields
        .iter()
        .find_map(|f| params.get(*f).filter(|v| !v.is_empty()).map(|v| (*f, v)));
    let matching: Vec<u32> = if let Some((field, value)) = lookup {
        let field = if field == "stockout_no" {
            "order_no"
        } else {
            field
        };
        source.lookup(kind, field, value, now)
    } else {
        let start = parse_time(params, "start_time")?;
        let end = parse_time(params, "end_time")?;
        if end < start {
            return Err((wire::BAD_PARAMETER, "end_time不能早于start_time".into()));
        }
        if end - start > max_window(kind) {
            let limit = match kind {
                Kind::Order => "60分钟",
                Kind::Stockout => "30天",
            };
            return Err((wire::BAD_PARAMETER, format!("查询时间跨度不能超过{limit}")));
        }
        let status = params.get("status").filter(|s| !s.is_empty());
        let status_code = match status {
            Some(s) => Some(
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| (wire::BAD_PARAMETER, format!("status无效: '{s}'")))?,
            ),
            None => None,
        };
        // §1.3: orders filter on modified; stock-outs on the ship time unless is_by_modified=1 with
        // a status, or a status below 95 (not yet shipped).
        let field = match (kind, status_code) {
            (Kind::Order, _) => TimeField::Modified,
            (Kind::Stockout, None) => TimeField::Consign,
            (Kind::Stockout, Some(_))
                if params.get("is_by_modified").map(String::as_str) == Some("1") =>
            {
                TimeField::Modified
            }
            (Kind::Stockout, Some(code)) if code >= 95 => TimeField::Consign,
            (Kind::Stockout, Some(_)) => TimeField::Modified,
        };
        let mut found = source.window(kind, field, start, end, now);
        match state.config.unknowns.wdt_order {
            ResultOrder::ByModified => {}
            ResultOrder::ById => found.sort_unstable(),
            // A stable shuffle: the same documents come in the same order on every call.
            ResultOrder::Unordered => found.sort_by_key(|&i| (i.wrapping_mul(2_654_435_761), i)),
        }
        let filters: Vec<(&str, &String)> = ["shop_no", "warehouse_no"]
            .into_iter()
            .filter_map(|f| params.get(f).filter(|v| !v.is_empty()).map(|v| (f, v)))
            .collect();
        if let Some(s) = status {
            // Read without building the documents: a day's window holds thousands of them.
            found.retain(|&i| source.status(kind, i) == s.as_str());
        }
        if !filters.is_empty() {
            found.retain(|&i| {
                let doc = source.document(kind, i);
                filters
                    .iter()
                    .all(|(f, v)| doc[*f].as_str() == Some(v.as_str()))
            });
        }
        found
    };
    let total = matching.len();
    let from = (page_no as usize).saturating_mul(page_size as usize);
    let page: Vec<u32> = matching
        .into_iter()
        .skip(from)
        .take(page_size as usize)
        .collect();
    let documents: Vec<Value> = page.iter().map(|&i| source.document(kind, i)).collect();
    // Page drift: some of what was just served is edited before the client asks for the next page.
    let drift_rate = *lock(&state.drift_rate);
    if drift_rate > 0.0 {
        let mut rng = lock(&state.drift);
        for &i in &page {
            if rng.f64() < drift_rate {
                source.modify(kind, i, now);
            }
        }
    }
    Ok((total, documents))
}

fn list_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Order => "trades",
        Kind::Stockout => "stockout_list",
    }
}

fn gateway_failure(code: &str, message: &str, sub: &str) -> Response {
    reply::json(
        StatusCode::OK,
        &json!({"response": {
            "flag": "failure",
            "code": code,
            "message": message,
            "sub_code": format!("isv.{}", code),
            "sub_msg": sub,
            "request_id": format!("{:x}", fastrand::u64(..)),
        }}),
    )
}

/// TOP's gateway failure for a throttled app.
fn app_call_limited() -> Response {
    gateway_failure(
        wire::APP_CALL_LIMITED,
        "App Call Limited",
        "This ban will last for 1 more seconds",
    )
}

/// `application/x-www-form-urlencoded` pairs of a body (`+` is a space).
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn qimen(
    Shared(state): Shared<Arc<State>>,
    Query(mut pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::WdtQuery, app_call_limited).await?;
    // The official client POSTs business parameters as a form; the signature covers both parts.
    pairs.extend(form_pairs(&body));
    let response = qimen_answer(&state, &pairs);
    Ok(reply::finish(response, lose_answer).await)
}

fn qimen_answer(state: &State, pairs: &[(String, String)]) -> Response {
    let params: HashMap<String, String> = pairs.iter().cloned().collect();
    let credentials = &state.credentials;
    for required in ["method", "app_key", "timestamp", "sign"] {
        if params.get(required).is_none_or(|v| v.is_empty()) {
            return gateway_failure(
                wire::MISSING_ARGUMENT,
                "Missing required arguments",
                &format!("missing-{required}"),
            );
        }
    }
    for (name, allowed) in [("format", &["json"][..]), ("v", &["2.0"][..])] {
        if params
            .get(name)
            .is_some_and(|v| !allowed.contains(&v.as_str()))
        {
            return gateway_failure(wire::INVALID_ARGUMENTS, "Invalid arguments", name);
        }
    }
    if params["app_key"] != credentials.qimen_app_key {
        return gateway_failure(wire::INVALID_APP_KEY, "Invalid app Key", "app_key不存在");
    }
    match unix_of(&params["timestamp"]) {
        Some(t) if (now() - t).abs() <= 600 => {}
        _ => {
            return gateway_failure(
                wire::INVALID_TIMESTAMP,
                "Invalid timestamp",
                "时间戳与服务器时间相差超过10分钟",
            );
        }
    }
    // TOP's default is md5 when the request names no method.
    let method = params.get("sign_method").map_or("md5", String::as_str);
    let Some(expected) = signing::qimen(pairs, &credentials.qimen_app_secret, method) else {
        return gateway_failure(
            wire::INVALID_ARGUMENTS,
            "Invalid arguments",
            "sign_method must be md5, hmac or hmac-sha256",
        );
    };
    if params["sign"] != expected {
        return gateway_failure(wire::INVALID_SIGNATURE, "Invalid signature", "签名错误");
    }
    if params.get("target_app_key").map(String::as_str) != Some(wire::WDT_TARGET_APP_KEY) {
        return gateway_failure(
            wire::INVALID_APP_KEY,
            "Invalid target app key",
            "target_app_key错误",
        );
    }
    let Some(kind) = kind_of(&params["method"]) else {
        return gateway_failure(wire::INVALID_METHOD, "Invalid method", &params["method"]);
    };
    if state.limiter.admit("wdt", state.config.limits.wdt).is_err() {
        return app_call_limited();
    }
    let body = if params.get("sid") != Some(&credentials.wdt_sid) {
        json!({"response": {"errorcode": wire::BAD_PARAMETER, "message": "卖家账号不存在"}})
    } else {
        match query(state, kind, &params) {
            Ok((total, documents)) => json!({ "response": success(
                state,
                &params,
                json!({"errorcode": 0, "message": ""}),
                kind,
                (total, documents),
            ) }),
            Err((code, message)) => json!({"response": {"errorcode": code, "message": message}}),
        }
    };
    reply::json(StatusCode::OK, &body)
}

/// A successful answer: `head` (either transport's success fields), the page's documents under the
/// method's list key, and `total_count` as [`later_total`] says.
fn success(
    state: &State,
    params: &HashMap<String, String>,
    mut head: Value,
    kind: Kind,
    (total, documents): (usize, Vec<Value>),
) -> Value {
    head[list_key(kind)] = Value::Array(documents);
    if let Some(total) = later_total(state, params, total) {
        head["total_count"] = total;
    }
    head
}

/// `total_count` as the answer carries it: always on page 0; on later pages as the unknown's
/// setting says (repeated, omitted, -1).
fn later_total(state: &State, params: &HashMap<String, String>, total: usize) -> Option<Value> {
    let first = params
        .get("page_no")
        .is_none_or(|p| p.trim().parse::<i64>().unwrap_or(0) == 0);
    if first {
        return Some(json!(total));
    }
    match state.config.unknowns.wdt_later_total {
        LaterTotal::Repeated => Some(json!(total)),
        LaterTotal::Omitted => None,
        LaterTotal::MinusOne => Some(json!(-1)),
    }
}

async fn openapi2(
    Shared(state): Shared<Arc<State>>,
    Path(file): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::WdtQuery, || {
        reply::json(
            StatusCode::OK,
            &json!({"code": wire::THROTTLED, "message": "系统调用频繁"}),
        )
    })
    .await?;
    let body = openapi2_answer(&state, &file, &pairs);
    Ok(reply::finish(reply::json(StatusCode::OK, &body), lose_answer).await)
}

fn openapi2_answer(state: &State, file: &str, pairs: &[(String, String)]) -> Value {
    let params: HashMap<String, String> = pairs.iter().cloned().collect();
    let credentials = &state.credentials;
    let kind = match file.trim_start_matches("his_") {
        "trade_query.php" => Kind::Order,
        "stockout_order_query_trade.php" => Kind::Stockout,
        _ => return json!({"code": wire::BAD_PARAMETER, "message": format!("接口不存在: {file}")}),
    };
    let refuse = |code: i64, message: &str| json!({"code": code, "message": message});
    if params.get("appkey") != Some(&credentials.wdt_appkey) {
        return refuse(wire::OPENAPI2_BAD_APPKEY, "appkey不存在");
    }
    match params.get("timestamp").and_then(|t| t.parse::<i64>().ok()) {
        Some(t) if (now() - t).abs() <= 300 => {}
        _ => return refuse(wire::OPENAPI2_BAD_TIMESTAMP, "无效timestamp"),
    }
    if params.get("sign").map(String::as_str)
        != Some(&signing::openapi2(pairs, &credentials.wdt_appsecret))
    {
        return refuse(wire::OPENAPI2_BAD_SIGN, "签名错误");
    }
    if params.get("sid") != Some(&credentials.wdt_sid) {
        return refuse(wire::BAD_PARAMETER, "卖家账号不存在");
    }
    if state.limiter.admit("wdt", state.config.limits.wdt).is_err() {
        return refuse(wire::THROTTLED, "系统调用频繁");
    }
    match query(state, kind, &params) {
        Ok(page) => success(
            state,
            &params,
            json!({"code": 0, "message": ""}),
            kind,
            page,
        ),
        Err((code, message)) => refuse(code, &message),
    }
}
