//! The Kingdee client: signed requests, the cached app-token, saving a sales order, finding one by
//! bill number. A save is not idempotent (Kingdee has no idempotency key), so a save whose answer is
//! lost comes back as ambiguous: the engine looks the bill up by `billno` before saving again.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder};
use serde_json::Value;

use super::config::KingdeeConfig;
use super::{sign, wire};
use crate::connector::http::{Call, Reply, build_client};
use crate::connector::token::{Attempt, TokenCache};
use crate::connector::{CallError, FailureClass, HttpSettings, Saved, Secret};

const SERVICE: &str = "kingdee";
/// A token's lifetime when the answer does not say (about 24 h).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Writes sales orders to one Kingdee account book.
pub struct KingdeeClient {
    http: Client,
    config: KingdeeConfig,
    settings: HttpSettings,
    token: TokenCache,
}

impl std::fmt::Debug for KingdeeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KingdeeClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KingdeeClient {
    /// A client for one tenant.
    pub fn new(config: KingdeeConfig, settings: HttpSettings) -> Result<Self, CallError> {
        Ok(KingdeeClient {
            http: build_client(SERVICE, &settings)?,
            config,
            settings,
            token: TokenCache::default(),
        })
    }

    /// A request with the gateway 2.0 headers; `query` enters the signature.
    fn signed(&self, method: Method, path: &str, query: &[(String, String)]) -> RequestBuilder {
        let timestamp = jiff::Timestamp::now().as_millisecond().to_string();
        let nonce = fastrand::u64(1_000_000_000..10_000_000_000).to_string();
        let text = sign::string_to_sign(method.as_str(), path, query, &nonce, &timestamp);
        let signature = sign::signature(self.config.client_secret.expose(), &text);
        let url = format!("{}{path}", self.config.url.trim_end_matches('/'));
        let mut request = self.http.request(method, url);
        if !query.is_empty() {
            request = request.query(query);
        }
        request
            .header("X-Api-ClientID", &self.config.client_id)
            .header("X-Api-Auth-Version", "2.0")
            .header("X-Api-TimeStamp", timestamp)
            .header("X-Api-Nonce", nonce)
            .header("X-Api-SignHeaders", "X-Api-TimeStamp,X-Api-Nonce")
            .header("X-Api-Signature", signature)
            .header("X-GW-Router-Addr", &self.config.domain)
            .header("Content-Type", "application/json")
    }

    /// Fetches an app-token (the token cache calls this at most once per expiry or rejection).
    async fn fetch_token(&self) -> Result<(Secret, Duration), CallError> {
        let call = Call {
            service: SERVICE,
            operation: "kingdee_auth_token",
            write: false,
        };
        let query = vec![
            ("app_key".to_owned(), self.config.app_key.clone()),
            (
                "app_signature".to_owned(),
                sign::app_signature(&self.config.app_key, self.config.app_secret.expose()),
            ),
        ];
        let reply = call
            .send(self.signed(Method::GET, wire::TOKEN_PATH, &query))
            .await?;
        match wire::read(reply.status.as_u16(), reply.json().as_ref()) {
            wire::Answer::Accepted(data) => {
                let (token, lifetime) =
                    wire::token_of(&data).ok_or_else(|| call.unreadable(&reply))?;
                let lifetime = lifetime
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_TOKEN_LIFETIME);
                Ok((Secret::new(token), lifetime))
            }
            wire::Answer::Refused(class, code, message) => {
                Err(call.error(class, Some(code), message))
            }
            wire::Answer::TokenRejected(message) => Err(call.error(
                FailureClass::Permanent,
                Some(reply.status.as_str().to_owned()),
                format!("the token request was refused: {message}"),
            )),
            wire::Answer::Unreadable => Err(call.unreadable(&reply)),
        }
    }

    /// One authorised request, with one token refresh if the token is rejected.
    async fn authorized(
        &self,
        call: Call<'_>,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<(Reply, Value), CallError> {
        self.token
            .authorized(
                || self.fetch_token(),
                |token: Secret| {
                    let method = method.clone();
                    async move {
                        let mut request = self
                            .signed(method, path, query)
                            .header("app-token", token.expose());
                        if let Some(body) = body {
                            request = request.body(body.to_string());
                        }
                        let reply = call.send(request).await?;
                        match wire::read(reply.status.as_u16(), reply.json().as_ref()) {
                            wire::Answer::Accepted(data) => Ok(Attempt::Done((reply, data))),
                            wire::Answer::TokenRejected(message) => {
                                Ok(Attempt::TokenRejected(message))
                            }
                            wire::Answer::Refused(class, code, message) => {
                                Err(call.error(class, Some(code), message))
                            }
                            wire::Answer::Unreadable => Err(call.unreadable(&reply)),
                        }
                    }
                },
                SERVICE,
                call.operation,
            )
            .await
    }

    /// Saves a sales order (`body` is the mapped V1 body). With an `id` in the body the bill is
    /// modified; without, a bill number that exists already is refused for good.
    pub async fn save_order(&self, body: &Value) -> Result<Saved, CallError> {
        let call = Call {
            service: SERVICE,
            operation: "sal_order_save",
            write: true,
        };
        self.settings
            .retry
            .run(false, |_| async {
                let (reply, data) = self
                    .authorized(call, Method::POST, wire::SAVE_PATH, &[], Some(body))
                    .await?;
                let target_id = wire::saved_id(&data).ok_or_else(|| call.unreadable(&reply))?;
                Ok(Saved {
                    target_id,
                    repeat: false,
                })
            })
            .await
    }

    /// The id of the sales order whose bill number is exactly `billno`, if there is one. The list's
    /// `search` is a fuzzy match, so every page of matches is read and compared.
    pub async fn find_order(&self, billno: &str) -> Result<Option<String>, CallError> {
        let call = Call {
            service: SERVICE,
            operation: "sal_order_list",
            write: false,
        };
        self.settings
            .retry
            .run(true, |_| async {
                let mut page = 1u64;
                loop {
                    let query = vec![
                        ("search".to_owned(), billno.to_owned()),
                        ("page".to_owned(), page.to_string()),
                        ("page_size".to_owned(), "100".to_owned()),
                    ];
                    let (_, data) = self
                        .authorized(call, Method::GET, wire::LIST_PATH, &query, None)
                        .await?;
                    let rows = data.get("rows").and_then(Value::as_array);
                    let found = rows
                        .into_iter()
                        .flatten()
                        .find(|row| row.get("bill_no").and_then(Value::as_str) == Some(billno));
                    if let Some(row) = found {
                        return Ok(row.get("id").map(|id| match id {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        }));
                    }
                    let pages = data.get("total_page").and_then(Value::as_u64).unwrap_or(1);
                    if page >= pages || rows.is_none_or(|r| r.is_empty()) {
                        return Ok(None);
                    }
                    page += 1;
                }
            })
            .await
    }
}
