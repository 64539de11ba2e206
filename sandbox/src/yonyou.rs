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
use ferry_common::connector::yonyou::{sign, wire};
use serde_json::{Value, json};

use crate::faults::Endpoint;
use crate::reply::{self, Handled};
use crate::targets::{Reception, SaveResult};
use crate::{State, lock};

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
    let expected = sign::raw_signature(
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

async fn save(
    Shared(state): Shared<Arc<State>>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::YonyouSave, throttle).await?;
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
        .admit("yonyou", state.config.limits.yonyou)
        .is_err()
    {
        return Err(throttle());
    }
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
            &state.yonyou_required,
            state.config.refuse_rate,
            state.config.resubmit_window,
        );
        let saved = match &result {
            SaveResult::Written { id, .. } => book.answer_of(id),
            _ => Value::Null,
        };
        (result, saved)
    };
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
                    wire::DUPLICATE,
                    "重复提交: resubmitCheckKey已使用",
                    json!({"id": id}),
                )
            } else {
                answer(wire::OK, "操作成功", first)
            };
            (response, "repeat".to_owned(), id)
        }
        SaveResult::Refused { code, message } => {
            (answer(&code, &message, Value::Null), message, None)
        }
    };
    state.receive(Reception {
        service: "yonyou",
        body: document,
        outcome,
        id,
        answer_lost: lose_answer.lost(),
    });
    Ok(reply::finish(response, lose_answer).await)
}
