//! The Kingdee stand-in: the API gateway 2.0 check on every request (client id, timestamp skew,
//! signature over the query as it arrived, with either order of `X-Api-SignHeaders`, tenant
//! domain), app-tokens with an expiry instant and a per-minute limit on fetching them, the tenant's
//! app secret that rotates and `push_app_authorize` that hands out the current one,
//! `sal_order_save` (V1 answers, entry-level modify), and the sales-order detail and list.

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
use ferry_common::connector::kingdee::wire;
use serde_json::{Value, json};

use crate::faults::Endpoint;
use crate::reply::{self, Handled};
use crate::targets::{Bill, KINGDEE_V1, KINGDEE_V2, KingdeeFields, Reception, SaveResult};
use crate::unknowns::ExpiredToken;
use crate::{State, lock, signing};

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(wire::TOKEN_PATH, get(token))
        .route(wire::AUTHORIZE_PATH, post(authorize))
        .route(
            wire::SAVE_PATH,
            post(|state, method, uri, headers, body| {
                save(&V1_SAVE, state, method, uri, headers, body)
            }),
        )
        .route(wire::DETAIL_PATH, get(detail))
        // One path, two APIs: GET lists sales orders, POST saves one (V2).
        .route(
            wire::LIST_PATH,
            get(list).post(|state, method, uri, headers, body| {
                save(&V2_SAVE, state, method, uri, headers, body)
            }),
        )
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
    uri: &Uri,
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
    // The official jar names the nonce first, other clients the timestamp: both are accepted, and
    // the string to sign has the nonce line first either way.
    let signed = header(headers, "X-Api-SignHeaders")
        .to_ascii_lowercase()
        .replace(' ', "");
    if signed != "x-api-nonce,x-api-timestamp" && signed != "x-api-timestamp,x-api-nonce" {
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
    let text = signing::kingdee_string_to_sign(
        method.as_str(),
        uri.path(),
        uri.query().unwrap_or_default(),
        nonce,
        timestamp,
    );
    if header(headers, "X-Api-Signature")
        != signing::kingdee_signature(&credentials.kingdee_client_secret, &text)
    {
        // HTTP 401: a signature mismatch (a wrong client secret).
        return Err(errcode(
            StatusCode::UNAUTHORIZED,
            wire::BAD_SIGNATURE,
            "签名验证失败",
        ));
    }
    if tenant && header(headers, "X-GW-Router-Addr") != *lock(&state.kingdee_domain) {
        return refuse("X-GW-Router-Addr与授权租户不符");
    }
    Ok(())
}

/// Everything a business call passes: the gateway, the app-token, the per-minute limit.
fn admit_business(
    state: &State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Response> {
    verify_gateway(state, method, uri, headers, true)?;
    verify_token(state, headers)?;
    state
        .limiter
        .admit("kingdee", state.config.limits.kingdee)
        .map_err(|_| throttle(state))
}

/// The app-token check of a business call; how an expired token is refused is one of the
/// unknowns.
fn verify_token(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    if state.kingdee_tokens.valid(header(headers, "app-token")) {
        return Ok(());
    }
    Err(match state.config.unknowns.kingdee_expired_token {
        ExpiredToken::Code1030002006 => {
            errcode(StatusCode::OK, wire::TOKEN_INVALID, "授权密钥校验失败")
        }
        ExpiredToken::Http401 => errcode(StatusCode::UNAUTHORIZED, 401, "Unauthorized"),
        // A code of the gateway's family whose description names nothing a client could match.
        ExpiredToken::OtherCode => errcode(StatusCode::OK, 1030002008, "会话已失效, 请重新登录"),
    })
}

async fn token(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::KingdeeToken, || throttle(&state)).await?;
    verify_gateway(&state, &method, &uri, &headers, false)?;
    let params: HashMap<&str, &str> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let credentials = &state.credentials;
    if params.get("app_key").copied() != Some(credentials.kingdee_app_key.as_str()) {
        return Err(errcode(
            StatusCode::OK,
            wire::TOKEN_INVALID,
            "app_key不存在",
        ));
    }
    let secret = lock(&state.kingdee_app_secret).clone();
    let expected = signing::kingdee_app_signature(&credentials.kingdee_app_key, &secret);
    if params.get("app_signature").copied() != Some(expected.as_str()) {
        // The secret rotated (every 24 hours) or was never right.
        return Err(errcode(
            StatusCode::OK,
            wire::TOKEN_INVALID,
            "授权密钥校验失败",
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
    // `expires` is the instant the token stops working, in epoch milliseconds.
    let expires = jiff::Timestamp::now().as_millisecond() + lifetime.as_millis() as i64;
    let body = json!({"errcode": 0, "description": "success", "data": {
        "access_token": format!("{:x}", fastrand::u64(..)),
        "app-token": token,
        "expires": expires,
        "uid": 173053163,
    }});
    Ok(reply::finish(reply::json(StatusCode::OK, &body), lose_answer).await)
}

async fn authorize(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::KingdeeAuthorize, || throttle(&state)).await?;
    verify_gateway(&state, &method, &uri, &headers, false)?;
    let credentials = &state.credentials;
    let instance = query
        .iter()
        .find(|(k, _)| k == "outerInstanceId")
        .map(|(_, v)| v.as_str());
    if instance != Some(credentials.kingdee_outer_instance_id.as_str()) {
        return Err(errcode(StatusCode::OK, 1030002404, "outerInstanceId不存在"));
    }
    let body = json!({"errcode": 0, "description": "success", "data": [{
        "accountId": "1690001",
        "accountName": "费瑞演示账套",
        "appKey": credentials.kingdee_app_key,
        "appSecret": *lock(&state.kingdee_app_secret),
        "clientId": credentials.kingdee_client_id,
        "domain": *lock(&state.kingdee_domain),
        "outerInstanceId": credentials.kingdee_outer_instance_id,
        "status": 1,
    }]});
    Ok(reply::finish(reply::json(StatusCode::OK, &body), lose_answer).await)
}

/// One generation of the sales-order save: its field names, and how it answers.
struct SaveApi {
    /// The body's field names.
    fields: KingdeeFields,
    /// The answer to a body that is not JSON.
    unreadable: fn() -> Value,
    /// The answer to what the book did with the body, with the outcome and id to record.
    answer: fn(SaveResult, &Value) -> (Value, String, Option<String>),
}

/// `POST /jdy/sal/sal_order_save`: V1 answers, whose success is two-level.
const V1_SAVE: SaveApi = SaveApi {
    fields: KINGDEE_V1,
    unreadable: || v1_failure("PARAM_ERROR", "请求体不是合法的JSON"),
    answer: |result, _| match result {
        SaveResult::Written { id, created } => (
            json!({"success": true, "message": "", "errorCode": "", "data": {
                "successPkIds": [id], "success": true, "errorInfo": [], "message": "",
            }}),
            written(created),
            Some(id),
        ),
        // Two-level: the call succeeded, the save did not.
        SaveResult::Rejected { code, message } => (
            json!({"success": true, "message": "", "errorCode": "", "data": {
                "successPkIds": [], "success": false,
                "errorInfo": [{"msg": message, "code": code}], "message": "",
            }}),
            message,
            None,
        ),
        SaveResult::Refused { code, message } => (v1_failure(&code, &message), message, None),
        SaveResult::Repeat { .. } => unreachable!("Kingdee has no idempotency key"),
    },
};

/// `POST /jdy/v2/scm/sal_order` (`SalOrderSaveReq`, answered with a `SaveReply`): the same book as
/// V1, snake-case fields, and the gateway's `errcode`/`description` wrapper for every answer.
const V2_SAVE: SaveApi = SaveApi {
    fields: KINGDEE_V2,
    unreadable: || json!({"errcode": 1030003000, "description": "请求体不是合法的JSON", "data": null}),
    answer: |result, document| match result {
        SaveResult::Written { id, created } => (
            json!({"errcode": 0, "description": "成功", "data": {
                "ids": [id], "id_number_map": { id.clone(): document[KINGDEE_V2.number] },
            }}),
            written(created),
            Some(id),
        ),
        // V2 has no two-level success: a refusal is a non-zero errcode.
        SaveResult::Rejected { message, .. } | SaveResult::Refused { message, .. } => (
            json!({"errcode": 1030003500u64, "description": message, "data": null}),
            message,
            None,
        ),
        SaveResult::Repeat { .. } => unreachable!("Kingdee has no idempotency key"),
    },
};

/// A V1 refusal of the call itself.
fn v1_failure(code: &str, message: &str) -> Value {
    json!({"success": false, "message": message, "errorCode": code, "data": {
        "successPkIds": [], "success": false, "errorInfo": [{"msg": message}], "message": message,
    }})
}

/// The recorded outcome of a written bill.
fn written(created: bool) -> String {
    if created { "created" } else { "updated" }.to_owned()
}

/// A sales-order save through `api`: the gateway, the book (its unknowns as configured), the
/// reception recorded, and `api`'s answer, unless the fault in effect loses it.
async fn save(
    api: &'static SaveApi,
    Shared(state): Shared<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::KingdeeSave, || throttle(&state)).await?;
    admit_business(&state, &method, &uri, &headers)?;
    let Ok(document) = serde_json::from_slice::<Value>(&body) else {
        return Err(reply::json(StatusCode::OK, &(api.unreadable)()));
    };
    let unknowns = &state.config.unknowns;
    let result = lock(&state.kingdee).save(
        &document,
        api.fields,
        state.config.refuse_rate,
        &state.config.frozen_customers,
        unknowns.kingdee_left_out,
        unknowns.kingdee_duplicate,
    );
    let for_good = matches!(result, SaveResult::Rejected { .. });
    let (answer, outcome, id) = (api.answer)(result, &document);
    state.receive(Reception {
        service: "kingdee",
        body: document,
        outcome,
        id,
        answer_lost: lose_answer.lost(),
        for_good,
        at: jiff::Timestamp::now(),
    });
    Ok(reply::finish(reply::json(StatusCode::OK, &answer), lose_answer).await)
}

/// A field of a bill saved through V1 or V2 (the book holds what was sent).
fn either(body: &Value, v1: &str, v2: &str) -> Value {
    body.get(v1)
        .or_else(|| body.get(v2))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A bill as the V2 detail answers it: header, and its entries each with its entry id.
fn detail_of(bill: &Bill) -> Value {
    let entries: Vec<Value> = bill.body["material_entity"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(n, entry)| {
            json!({
                "id": entry["id"],
                "seq": n + 1,
                "material_number": either(entry, "materialid_id", "material_id"),
                "qty": entry["qty"],
                "tax_price": either(entry, "taxprice", "tax_price"),
                "stock_number": either(entry, "stockid_id", "stock_id"),
            })
        })
        .collect();
    json!({
        "id": bill.id,
        "bill_no": bill.number,
        "bill_date": either(&bill.body, "billdate", "bill_date"),
        "customer_number": either(&bill.body, "customerid_id", "customer_id"),
        "remark": bill.body["remark"],
        "material_entity": entries,
    })
}

async fn detail(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::KingdeeLookup, || throttle(&state)).await?;
    admit_business(&state, &method, &uri, &headers)?;
    if !query.contains_key("id") && !query.contains_key("number") {
        return Err(errcode(StatusCode::OK, 1030003001, "id与number二选一"));
    }
    let body = {
        let book = lock(&state.kingdee);
        let found = match query.get("id") {
            Some(id) => book.by_id(id),
            None => book.by_number(&query["number"]),
        };
        match found {
            Some(bill) => json!({"errcode": 0, "description": "success", "data": detail_of(bill)}),
            None if state.config.kingdee_not_found_empty => {
                json!({"errcode": 0, "description": "success", "data": {}})
            }
            None => {
                json!({"errcode": 1030003404u64, "description": "单据不存在或已被删除", "data": null})
            }
        }
    };
    Ok(reply::finish(reply::json(StatusCode::OK, &body), lose_answer).await)
}

async fn list(
    Shared(state): Shared<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Handled {
    let lose_answer = reply::fault(&state, Endpoint::KingdeeLookup, || throttle(&state)).await?;
    admit_business(&state, &method, &uri, &headers)?;
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    // A larger page_size is silently cut to 100, as the real list does.
    let page_size = query
        .get("page_size")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let (count, rows) = {
        let book = lock(&state.kingdee);
        let found: Vec<&Bill> = match (query.get("bill_no"), query.get("search")) {
            (Some(number), _) => book.by_number(number).into_iter().collect(),
            (None, Some(search)) => book.search(search),
            (None, None) => book.bills().iter().collect(),
        };
        let rows: Vec<Value> = found
            .iter()
            .skip((page - 1) * page_size)
            .take(page_size)
            .map(|bill| {
                json!({
                    "id": bill.id,
                    "bill_no": bill.number,
                    "bill_date": either(&bill.body, "billdate", "bill_date"),
                    "customer_number": either(&bill.body, "customerid_id", "customer_id"),
                })
            })
            .collect();
        (found.len(), rows)
    };
    let body = json!({"errcode": 0, "description": "success", "data": {
        "count": count,
        "total_page": count.div_ceil(page_size).max(1),
        "page": page,
        "page_size": page_size,
        "rows": rows,
    }});
    Ok(reply::finish(reply::json(StatusCode::OK, &body), lose_answer).await)
}
