//! The Yonyou client: data-centre discovery (cached), the access token (cached, renewed on `310036`
//! or a `非法token` body) and `singleSave`. With a `resubmitCheckKey` in the body a save is
//! idempotent, so the client repeats it after an ambiguous outcome; the duplicate-key answer is a
//! success carrying the first save's id.

use std::time::Duration;

use reqwest::Client;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::config::YonyouConfig;
use super::{sign, wire};
use crate::connector::http::{Call, build_client};
use crate::connector::token::{Attempt, TokenCache};
use crate::connector::{CallError, FailureClass, HttpSettings, Saved, Secret};

const SERVICE: &str = "yonyou";

/// The tenant's data centre.
#[derive(Clone, Debug)]
struct DataCentre {
    gateway_url: String,
    token_url: String,
}

/// Writes sales orders to one Yonyou tenant.
pub struct YonyouClient {
    http: Client,
    config: YonyouConfig,
    settings: HttpSettings,
    centre: OnceCell<DataCentre>,
    token: TokenCache,
}

impl std::fmt::Debug for YonyouClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YonyouClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl YonyouClient {
    /// A client for one tenant.
    pub fn new(config: YonyouConfig, settings: HttpSettings) -> Result<Self, CallError> {
        config.resubmit_window().map_err(|message| {
            CallError::new(FailureClass::Permanent, SERVICE, "client", None, message)
        })?;
        Ok(YonyouClient {
            http: build_client(SERVICE, &settings)?,
            config,
            settings,
            centre: OnceCell::new(),
            token: TokenCache::default(),
        })
    }

    /// The tenant's gateway and token URLs, asked for once.
    async fn centre(&self) -> Result<&DataCentre, CallError> {
        self.centre
            .get_or_try_init(|| async {
                let call = Call {
                    service: SERVICE,
                    operation: "getGatewayAddress",
                    write: false,
                };
                let url = format!(
                    "{}{}?tenantId={}",
                    self.config.url.trim_end_matches('/'),
                    wire::DISCOVERY_PATH,
                    sign::encode(&self.config.tenant_id)
                );
                let reply = call.send(self.http.get(url)).await?;
                let body = reply.json().ok_or_else(|| call.unreadable(&reply))?;
                let code = wire::code_of(&body).unwrap_or_default();
                if code != wire::AUTH_OK {
                    // The tenant id is a setting: no document can pass until it is right.
                    return Err(call.error(
                        FailureClass::Credentials,
                        Some(code),
                        format!(
                            "no data centre for tenant '{}': {}",
                            self.config.tenant_id,
                            wire::message_of(&body)
                        ),
                    ));
                }
                let field = |name: &str| {
                    body.pointer(&format!("/data/{name}"))
                        .and_then(Value::as_str)
                        .map(|u| u.trim_end_matches('/').to_owned())
                };
                match (field("gatewayUrl"), field("tokenUrl")) {
                    (Some(gateway_url), Some(token_url)) => Ok(DataCentre {
                        gateway_url,
                        token_url,
                    }),
                    _ => Err(call.unreadable(&reply)),
                }
            })
            .await
    }

    /// Fetches an access token (the token cache calls this once per expiry or rejection).
    async fn fetch_token(&self) -> Result<(Secret, Duration), CallError> {
        let call = Call {
            service: SERVICE,
            operation: "getAccessToken",
            write: false,
        };
        let centre = self.centre().await?;
        let timestamp = jiff::Timestamp::now().as_millisecond().to_string();
        // Built by hand: the signature is URL-encoded exactly once, and reqwest keeps escapes as given.
        let url = format!(
            "{}{}?appKey={}&timestamp={timestamp}&signature={}",
            centre.token_url,
            wire::TOKEN_PATH,
            sign::encode(&self.config.app_key),
            sign::signature(
                &self.config.app_key,
                &timestamp,
                self.config.app_secret.expose()
            )
        );
        let reply = call.send(self.http.get(url)).await?;
        let body = reply.json().ok_or_else(|| call.unreadable(&reply))?;
        let code = wire::code_of(&body).unwrap_or_default();
        if code != wire::AUTH_OK {
            if wire::THROTTLE_CODES.contains(&code.as_str()) {
                return Err(call.error(
                    FailureClass::Retryable,
                    Some(code),
                    wire::message_of(&body),
                ));
            }
            // Unknown app key, wrong signature or secret: the app's settings are refused.
            return Err(call.error(
                FailureClass::Credentials,
                Some(code),
                format!(
                    "{}: check yonyou.app_key and yonyou.app_secret (the self-built app's key and secret)",
                    wire::message_of(&body)
                ),
            ));
        }
        let token = body
            .pointer("/data/access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| call.unreadable(&reply))?;
        let lifetime = body
            .pointer("/data/expire")
            .and_then(Value::as_u64)
            .unwrap_or(7200);
        Ok((Secret::new(token), Duration::from_secs(lifetime)))
    }

    /// One call through the gateway with the access token (renewed once if refused): POST `body`
    /// to `path`, or GET `path` with `query`. Answers the reply's `data` and whether the service
    /// recognised a repeated idempotency key.
    async fn gateway(
        &self,
        call: Call<'_>,
        path: &str,
        query: &[(String, String)],
        body: Option<&str>,
    ) -> Result<(Value, bool), CallError> {
        let centre = self.centre().await?;
        self.token
            .authorized(
                || self.fetch_token(),
                |token: Secret| {
                    // Built by hand: the token is encoded exactly once, and reqwest keeps escapes.
                    let mut url = format!(
                        "{}{path}?access_token={}",
                        centre.gateway_url,
                        sign::encode(token.expose())
                    );
                    for (name, value) in query {
                        url.push_str(&format!("&{}={}", sign::encode(name), sign::encode(value)));
                    }
                    let request = match body {
                        Some(text) => self
                            .http
                            .post(url)
                            .header("Content-Type", "application/json;charset=UTF-8")
                            .body(text.to_owned()),
                        None => self.http.get(url),
                    };
                    async move {
                        let reply = call.send(request).await?;
                        match wire::read_save(&reply.body, reply.json().as_ref()) {
                            wire::Answer::Saved(data, repeat) => Ok(Attempt::Done((data, repeat))),
                            wire::Answer::TokenRejected(message) => {
                                Ok(Attempt::TokenRejected(message))
                            }
                            wire::Answer::Refused(class, code, message, wait) => Err(call
                                .error(class, Some(code), message)
                                .with_retry_after(wait)),
                            wire::Answer::Unreadable => Err(call.unreadable(&reply)),
                        }
                    }
                },
                SERVICE,
                call.operation,
            )
            .await
    }

    /// How long a repeated `resubmitCheckKey` is answered with the first success.
    pub fn resubmit_window(&self) -> Duration {
        self.config
            .resubmit_window()
            .unwrap_or(Duration::from_secs(3600))
    }

    /// Saves a sales order (`body` is `{"data": {...}}`: an Insert, or an Update naming the order
    /// and addressing its lines). Success and the duplicate-key answer both give the order's id and,
    /// when the answer lists them, its lines' ids. With a `resubmitCheckKey` the save is idempotent,
    /// so an ambiguous outcome is repeated with the same key.
    pub async fn save_order(&self, body: &Value) -> Result<Saved, CallError> {
        self.save_at(wire::SAVE_PATH, body).await
    }

    /// [`YonyouClient::save_order`] to the save API at `path` (a target description's `save`).
    pub async fn save_at(&self, path: &str, body: &Value) -> Result<Saved, CallError> {
        let call = Call {
            service: SERVICE,
            operation: "singleSave",
            write: true,
        };
        let keyed = body
            .pointer("/data/resubmitCheckKey")
            .and_then(Value::as_str)
            .is_some_and(|key| !key.is_empty());
        let text = body.to_string();
        self.settings
            .retry
            .run(keyed, |_| async {
                let (data, repeat) = self.gateway(call, path, &[], Some(&text)).await?;
                let target_id = wire::saved_id(&data).ok_or_else(|| {
                    call.error(
                        call.lost_answer(),
                        None,
                        "the save answer names no order id".to_owned(),
                    )
                })?;
                Ok(Saved {
                    target_id,
                    repeat,
                    lines: wire::line_ids(&data),
                })
            })
            .await
    }

    /// The line ids of order `id`, in order (`voucherorder/detail`); a permanent failure when
    /// there is no such order.
    pub async fn order_lines(&self, id: &str) -> Result<Vec<String>, CallError> {
        self.order_lines_at(wire::DETAIL_PATH, id).await
    }

    /// [`YonyouClient::order_lines`] from the detail API at `path`.
    pub async fn order_lines_at(&self, path: &str, id: &str) -> Result<Vec<String>, CallError> {
        let call = Call {
            service: SERVICE,
            operation: "voucherorder/detail",
            write: false,
        };
        let query = vec![("id".to_owned(), id.to_owned())];
        self.settings
            .retry
            .run(true, |_| async {
                let (data, _) = self.gateway(call, path, &query, None).await?;
                if wire::saved_id(&data).is_none() {
                    return Err(call.error(
                        FailureClass::Permanent,
                        Some(wire::NO_DATA.to_owned()),
                        format!("the target has no sales order with id {id}"),
                    ));
                }
                Ok(wire::line_ids(&data).unwrap_or_default())
            })
            .await
    }

    /// The id of the order numbered exactly `code` (`voucherorder/list` by `code`), if any. Whether
    /// the list's `code` filter is exact is not documented, so every page of matches is read and
    /// compared.
    pub async fn find_order(&self, code: &str) -> Result<Option<String>, CallError> {
        self.find_order_at(wire::LIST_PATH, code).await
    }

    /// [`YonyouClient::find_order`] through the list API at `path`.
    pub async fn find_order_at(&self, path: &str, code: &str) -> Result<Option<String>, CallError> {
        let call = Call {
            service: SERVICE,
            operation: "voucherorder/list",
            write: false,
        };
        self.settings
            .retry
            .run(true, |_| async {
                let mut page = 1u64;
                loop {
                    let body = serde_json::json!({
                        "pageIndex": page,
                        "pageSize": 100,
                        "code": code,
                        "isSum": true,
                    })
                    .to_string();
                    let (data, _) = self.gateway(call, path, &[], Some(&body)).await?;
                    if let Some(id) = wire::listed_id(&data, code) {
                        return Ok(Some(id));
                    }
                    let pages = data.get("pageCount").and_then(Value::as_u64).unwrap_or(1);
                    let rows = data.get("recordList").and_then(Value::as_array);
                    if page >= pages || rows.is_none_or(|r| r.is_empty()) {
                        return Ok(None);
                    }
                    page += 1;
                }
            })
            .await
    }
}
