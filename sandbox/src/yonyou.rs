//! The Yonyou stand-in: data-centre discovery, the access-token service (HMAC check, token lifetime)
//! and `singleSave` behind the gateway (token check, rate limit, required fields, the
//! `resubmitCheckKey` register). Errors come with HTTP 200 and string codes, as the real gateway's do.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use ferry_common::connector::yonyou::wire;
use serde_json::{Value, json};

use crate::faults::Endpoint;
use crate::reply::{self, Handled};
use crate::targets::{Reception, SaveResult, YonyouRules};
use crate::{State, lock, signing};

/// Where the token service and the gateway sit under the sandbox's base URL.
const TOKEN_PREFIX: &str = "/iuap-api-auth";
const GATEWAY_PREFIX: &str = "/iuap-api-gateway";
/// The token service's clock-skew allowance [I].
const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(wire::DISCOVERY_PATH, get(discovery))
        .route(&format!("{TOKEN_PREFIX}{}", wire::TOKEN_PATH), get(token))
        .route(
            &format!("{TOKEN_PREFIX}{}", wire::OLD_TOKEN_PATH),
            get(token),
        )
        .route(&format!("{GATEWAY_PREFIX}{}", wire::SAVE_PATH), post(save))
        .route(
            &format!("{GATEWAY_PREFIX}{}", wire::DETAIL_PATH),
            get(detail),
        )
        .route(&format!("{GATEWAY_PREFIX}{}", wire::LIST_PATH), post(list))
        .with_state(state)
}

fn answer(code: &str, message: &str, data: Value) -> Response {
    reply::json(
        StatusCode::OK,
        &json!({"code": code, "message": message, "data": data}),
    )
}

fn throttle() -> Response {
    answer(wire::THROTTLED, "API调用频率超过限制", Value::Null)
}

async fn discovery(
    Shared(state): Shared<Arc<State>>,
    Query(params): Query<HashMap<String, String>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::YonyouDiscovery, throttle).await?;
    let response = if params.get("tenantId") == Some(&state.credentials.yonyou_tenant_id) {
        let base = state.yonyou_base.get().cloned().unwrap_or_default();
        answer(
            wire::AUTH_OK,
            "成功！",
            json!({
                "gatewayUrl": format!("{base}{GATEWAY_PREFIX}"),
                "tokenUrl": format!("{base}{TOKEN_PREFIX}"),
            }),
        )
    } else {
        answer("500", "租户不存在", Value::Null)
    };
    Ok(reply::finish(response, lose_answer).await)
}

async fn token(
    Shared(state): Shared<Arc<State>>,
    Query(params): Query<HashMap<String, String>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::YonyouToken, throttle).await?;
    let credentials = &state.credentials;
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    if get("appKey") != credentials.yonyou_app_key {
        return Err(answer(wire::UNKNOWN_APP, "appKey不存在", Value::Null));
    }
    let timestamp = get("timestamp");
    match timestamp.parse::<i64>() {
        Ok(ms) if (jiff::Timestamp::now().as_millisecond() - ms).abs() <= MAX_SKEW_MS => {}
        _ => {
            return Err(answer(
                wire::BAD_SIGNATURE,
                "timestamp无效或已过期",
                Value::Null,
            ));
        }
    }
    // The query arrives decoded once: a signature encoded twice by the client no longer matches.
    let expected = signing::yonyou_signature(
        &credentials.yonyou_app_key,
        timestamp,
        &credentials.yonyou_app_secret,
    );
    if get("signature") != expected {
        return Err(answer(wire::BAD_SIGNATURE, "签名验证失败", Value::Null));
    }
    if state
        .limiter
        .admit("yonyou_token", state.config.limits.yonyou_token)
        .is_err()
    {
        return Err(throttle());
    }
    let lifetime = state.config.yonyou_token_lifetime;
    // Real tokens carry characters that must be URL-encoded; so do these.
    let token = state.yonyou_tokens.issue(lifetime, |rng| {
        let part = |rng: &mut fastrand::Rng| -> String {
            (0..16)
                .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
                .collect()
        };
        format!("yht+{}/{}==", part(rng), part(rng))
    });
    let response = answer(
        wire::AUTH_OK,
        "成功！",
        json!({"access_token": token, "expire": lifetime.as_secs()}),
    );
    Ok(reply::finish(response, lose_answer).await)
}

/// The access-token check of every gateway call, and the per-minute limit of its API (`bucket`:
/// saves, details and lists are each limited to about 60 a minute).
#[allow(
    clippy::result_large_err,
    reason = "the refusal is the HTTP answer itself, built only when a call is refused"
)]
fn admit(
    state: &State,
    params: &HashMap<String, String>,
    bucket: &'static str,
) -> Result<(), Response> {
    match params.get("access_token").filter(|t| !t.is_empty()) {
        None => return Err(answer(wire::NO_TOKEN, "未提供access_token", Value::Null)),
        Some(token) if !state.yonyou_tokens.valid(token) => {
            return Err(answer(
                wire::TOKEN_INVALID,
                "access_token无效或已过期",
                Value::Null,
            ));
        }
        Some(_) => {}
    }
    if state
        .limiter
        .admit(bucket, state.config.limits.yonyou)
        .is_err()
    {
        return Err(throttle());
    }
    Ok(())
}

async fn save(
    Shared(state): Shared<Arc<State>>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::YonyouSave, throttle).await?;
    admit(&state, &params, "yonyou")?;
    let Ok(document) = serde_json::from_slice::<Value>(&body) else {
        return Err(answer(
            wire::BAD_PARAMETER,
            "参数错误: 请求体不是合法的JSON",
            Value::Null,
        ));
    };
    let (result, saved) = {
        let mut book = lock(&state.yonyou);
        let result = book.save(
            &document,
            &YonyouRules {
                required: &state.yonyou_required,
                refuse_rate: state.config.refuse_rate,
                key_window: state.config.resubmit_window,
                left_out: state.config.unknowns.yonyou_left_out,
            },
        );
        let saved = match &result {
            SaveResult::Written { id, .. } => book.answer_of(id),
            _ => Value::Null,
        };
        (result, saved)
    };
    let for_good = matches!(result, SaveResult::Rejected { .. });
    let (response, outcome, id) = match result {
        SaveResult::Written { id, created } => (
            answer(wire::OK, "操作成功", saved),
            if created { "created" } else { "updated" }.to_owned(),
            Some(id),
        ),
        SaveResult::Repeat { first, expired } => {
            let id = first.get("id").and_then(Value::as_str).map(str::to_owned);
            let response = if expired {
                answer(
                    state.config.unknowns.yonyou_repeat.code(),
                    "重复提交: resubmitCheckKey已使用",
                    json!({"id": id}),
                )
            } else {
                answer(wire::OK, "操作成功", first)
            };
            (response, "repeat".to_owned(), id)
        }
        SaveResult::Refused { code, message } | SaveResult::Rejected { code, message } => {
            (answer(&code, &message, Value::Null), message, None)
        }
    };
    state.receive(Reception {
        service: "yonyou",
        body: document,
        outcome,
        id,
        answer_lost: lose_answer.lost(),
        for_good,
        at: jiff::Timestamp::now(),
    });
    Ok(reply::finish(response, lose_answer).await)
}

async fn detail(
    Shared(state): Shared<Arc<State>>,
    Query(params): Query<HashMap<String, String>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::YonyouLookup, throttle).await?;
    admit(&state, &params, "yonyou_detail")?;
    let order = params
        .get("id")
        .map(|id| lock(&state.yonyou).answer_of(id))
        .unwrap_or(Value::Null);
    let response = if order.is_null() {
        answer(wire::NO_DATA, "数据不存在", Value::Null)
    } else {
        answer(wire::OK, "操作成功", order)
    };
    Ok(reply::finish(response, lose_answer).await)
}

async fn list(
    Shared(state): Shared<Arc<State>>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::YonyouLookup, throttle).await?;
    admit(&state, &params, "yonyou_list")?;
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return Err(answer(
            wire::BAD_PARAMETER,
            "参数错误: 请求体不是合法的JSON",
            Value::Null,
        ));
    };
    let number = |name: &str| request.get(name).and_then(Value::as_u64);
    let (Some(page_index), Some(page_size)) = (number("pageIndex"), number("pageSize")) else {
        return Err(answer(
            wire::BAD_PARAMETER,
            "参数错误: pageIndex和pageSize必填",
            Value::Null,
        ));
    };
    let orders: Vec<Value> = {
        let book = lock(&state.yonyou);
        match request.get("code").and_then(Value::as_str) {
            Some(code) => book
                .id_of_code(code)
                .map(|id| book.answer_of(&id))
                .into_iter()
                .collect(),
            None => book
                .orders()
                .iter()
                .map(|o| book.answer_of(&o.id))
                .collect(),
        }
    };
    let by_order = request.get("isSum").and_then(Value::as_bool) == Some(true);
    // isSum: one row an order; otherwise one row a line, with the line's ids.
    let rows: Vec<Value> = orders
        .iter()
        .flat_map(|order| {
            let header = json!({
                "id": order["id"], "code": order["code"], "vouchdate": order["vouchdate"],
                "agentId": order["agentId"], "payMoney": order["payMoney"],
            });
            if by_order {
                return vec![header];
            }
            order["orderDetails"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|line| {
                    let mut row = header.clone();
                    row["orderId"] = order["id"].clone();
                    row["orderDetailId"] = line["id"].clone();
                    row["productId"] = line["productId"].clone();
                    row["qty"] = line["qty"].clone();
                    row
                })
                .collect()
        })
        .collect();
    let count = rows.len() as u64;
    let size = page_size.max(1);
    let page: Vec<Value> = rows
        .into_iter()
        .skip(((page_index.max(1) - 1) * size) as usize)
        .take(size as usize)
        .collect();
    let response = answer(
        wire::OK,
        "操作成功",
        json!({
            "pageIndex": page_index, "pageSize": page_size, "recordCount": count,
            "recordList": page, "pageCount": count.div_ceil(size),
        }),
    );
    Ok(reply::finish(response, lose_answer).await)
}
