//! The Kingdee stand-in: the API gateway 2.0 check on every request (client id, timestamp skew,
//! signature, tenant domain), app-tokens with a lifetime and a per-minute limit on fetching them,
//! `sal_order_save` (V1 answers) and the sales-order list.

// A refusal is the answer itself; it is built once per refused request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use ferry_common::connector::kingdee::{sign, wire};
use serde_json::{Value, json};

use crate::faults::Endpoint;
use crate::reply::{self, Handled};
use crate::targets::{Reception, SaveResult};
use crate::{State, lock};

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(wire::TOKEN_PATH, get(token))
        .route(wire::SAVE_PATH, post(save))
        .route(wire::LIST_PATH, get(list))
        .with_state(state)
}

fn errcode(status: StatusCode, code: i64, description: &str) -> Response {
    reply::json(
        status,
        &json!({"errcode": code, "description": description, "data": null}),
    )
}

fn throttle(state: &State) -> Response {
    let wait = state
        .config
        .rate_window
        .min(std::time::Duration::from_secs(1));
    reply::throttled(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"errcode": wire::THROTTLED, "description": "请求过于频繁, 请稍后再试"}),
        wait,
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The gateway 2.0 checks every request passes before it reaches an API.
fn verify_gateway(
    state: &State,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    tenant: bool,
) -> Result<(), Response> {
    let credentials = &state.credentials;
    let refuse = |description: &str| {
        Err(errcode(
            StatusCode::FORBIDDEN,
            wire::BAD_SIGNATURE,
            description,
        ))
    };
    if header(headers, "X-Api-ClientID") != credentials.kingdee_client_id {
        return refuse("无效的X-Api-ClientID");
    }
    if header(headers, "X-Api-Auth-Version") != "2.0" {
        return refuse("X-Api-Auth-Version必须为2.0");
    }
    let signed = header(headers, "X-Api-SignHeaders")
        .to_ascii_lowercase()
        .replace(' ', "");
    if signed != "x-api-timestamp,x-api-nonce" {
        return refuse("X-Api-SignHeaders错误");
    }
    let timestamp = header(headers, "X-Api-TimeStamp");
    match timestamp.parse::<i64>() {
        Ok(ms) if (jiff::Timestamp::now().as_millisecond() - ms).abs() <= wire::MAX_SKEW_MS => {}
        _ => return refuse("X-Api-TimeStamp无效或已过期"),
    }
    let nonce = header(headers, "X-Api-Nonce");
    if nonce.is_empty() || nonce.parse::<u64>().is_err() {
        return refuse("X-Api-Nonce无效");
    }
    let text = sign::string_to_sign(method.as_str(), path, query, nonce, timestamp);
    if header(headers, "X-Api-Signature")
        != sign::signature(&credentials.kingdee_client_secret, &text)
    {
        return refuse("签名验证失败");
    }
    if tenant && header(headers, "X-GW-Router-Addr") != credentials.kingdee_domain {
        return refuse("X-GW-Router-Addr与授权租户不符");
    }
    Ok(())
}

/// Everything a business call passes: the gateway, the app-token, the per-minute limit.
fn admit_business(
    state: &State,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<(), Response> {
    verify_gateway(state, method, path, query, headers, true)?;
    verify_token(state, headers)?;
    state
        .limiter
        .admit("kingdee", state.config.limits.kingdee)
        .map_err(|_| throttle(state))
}

/// The app-token check of a business call.
fn verify_token(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    if state.kingdee_tokens.valid(header(headers, "app-token")) {
        Ok(())
    } else {
        Err(errcode(StatusCode::OK, wire::TOKEN_INVALID, "授权密钥失效"))
    }
}

async fn token(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::KingdeeToken, || throttle(&state)).await?;
    verify_gateway(&state, &method, uri.path(), &query, &headers, false)?;
    let params: HashMap<&str, &str> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let credentials = &state.credentials;
    let app_key = params.get("app_key").copied().unwrap_or_default();
    let expected = sign::app_signature(
        &credentials.kingdee_app_key,
        &credentials.kingdee_app_secret,
    );
    if app_key != credentials.kingdee_app_key
        || params.get("app_signature").copied() != Some(expected.as_str())
    {
        return Err(errcode(
            StatusCode::OK,
            wire::BAD_SIGNATURE,
            "app_key或app_signature错误",
        ));
    }
    if state
        .limiter
        .admit("kingdee_token", state.config.limits.kingdee_token)
        .is_err()
    {
        return Err(throttle(&state));
    }
    let lifetime = state.config.kingdee_token_lifetime;
    let token = state.kingdee_tokens.issue(lifetime, |rng| {
        (0..32)
            .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
            .collect()
    });
    let body = json!({"errcode": 0, "description": "success", "data": {
        "app-token": token,
        "app_token": token,
        "domain": credentials.kingdee_domain,
        "expires_in": lifetime.as_secs(),
    }});
    Ok(reply::finish(reply::json(StatusCode::OK, &body), lose_answer).await)
}

async fn save(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::KingdeeSave, || throttle(&state)).await?;
    admit_business(&state, &method, uri.path(), &[], &headers)?;
    let failure = |code: &str, message: &str| {
        json!({"success": false, "message": message, "errorCode": code, "data": {
            "successPkIds": [], "success": false, "errorInfo": [{"msg": message}], "message": message,
        }})
    };
    let Ok(document) = serde_json::from_slice::<Value>(&body) else {
        return Err(reply::json(
            StatusCode::OK,
            &failure("PARAM_ERROR", "请求体不是合法的JSON"),
        ));
    };
    let result = lock(&state.kingdee).save(&document, state.config.refuse_rate);
    let (answer, outcome, id) = match result {
        SaveResult::Written { id, created, .. } => (
            json!({"success": true, "message": "", "errorCode": "", "data": {
                "successPkIds": [id], "success": true, "errorInfo": [], "message": "",
            }}),
            if created { "created" } else { "updated" }.to_owned(),
            Some(id),
        ),
        SaveResult::Refused { code, message } => (failure(&code, &message), message, None),
        SaveResult::Repeat { .. } => unreachable!("Kingdee has no idempotency key"),
    };
    state.receive(Reception {
        service: "kingdee",
        body: document,
        outcome,
        id,
        answer_lost: lose_answer.lost(),
    });
    Ok(reply::finish(reply::json(StatusCode::OK, &answer), lose_answer).await)
}

async fn list(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::KingdeeList, || throttle(&state)).await?;
    admit_business(&state, &method, uri.path(), &query, &headers)?;
    let params: HashMap<&str, &str> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let search = params.get("search").copied().unwrap_or_default();
    let page = params
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    // A larger page_size is silently cut to 100, as the real list does.
    let page_size = params
        .get("page_size")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let body = list_answer(&state, search, page, page_size);
    Ok(reply::finish(reply::json(StatusCode::OK, &body), lose_answer).await)
}

/// One page of the bills whose number contains `search`.
fn list_answer(state: &State, search: &str, page: usize, page_size: usize) -> Value {
    let book = lock(&state.kingdee);
    let found = book.search(search);
    let count = found.len();
    let rows: Vec<Value> = found
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|bill| {
            json!({
                "id": bill.id,
                "bill_no": bill.number,
                "bill_date": bill.body.get("billdate"),
                "customer_number": bill.body.get("customerid_id"),
            })
        })
        .collect();
    json!({"errcode": 0, "description": "success", "data": {
        "count": count,
        "total_page": count.div_ceil(page_size).max(1),
        "page": page,
        "page_size": page_size,
        "rows": rows,
    }})
}
