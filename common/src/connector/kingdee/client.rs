//! The Kingdee client: signed requests as the official Java SDK signs them, the cached app-token, the
//! tenant's authorisation pulled again when its app secret rotates, saving a sales order and reading
//! one back by number or id. A save is not idempotent (Kingdee has no idempotency key), so a save
//! whose outcome is unknown comes back as ambiguous: the engine looks the bill up by number.

use std::sync::RwLock;
use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder};
use serde_json::Value;

use super::config::KingdeeConfig;
use super::wire::Detail;
use super::{sign, wire};
use crate::connector::http::{Call, Reply, build_client};
use crate::connector::token::{Attempt, TokenCache};
use crate::connector::{CallError, FailureClass, HttpSettings, Saved, Secret};

const SERVICE: &str = "kingdee";
/// A token's lifetime when the answer does not say (about 24 h).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What the tenant's authorisation gives, and may give anew after its secret rotates.
#[derive(Clone, Debug)]
struct Tenant {
    app_secret: Secret,
    domain: String,
}

/// Writes sales orders to one Kingdee account book.
pub struct KingdeeClient {
    http: Client,
    config: KingdeeConfig,
    tenant: RwLock<Tenant>,
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
            tenant: RwLock::new(Tenant {
                app_secret: config.app_secret.clone(),
                domain: config.domain.clone(),
            }),
            config,
            settings,
            token: TokenCache::default(),
        })
    }

    fn tenant(&self) -> Tenant {
        self.tenant
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A request with the gateway 2.0 headers, as the official Java SDK sends them; `query` enters
    /// the signature.
    fn signed(&self, method: Method, path: &str, query: &[(String, String)]) -> RequestBuilder {
        let timestamp = jiff::Timestamp::now().as_millisecond().to_string();
        // Ten digits, as the jar's nonce.
        let nonce = fastrand::u64(1_000_000_000..10_000_000_000).to_string();
        let text = sign::string_to_sign(method.as_str(), path, query, &nonce, &timestamp);
        let signature = sign::signature(self.config.client_secret.expose(), &text);
        let url = format!("{}{path}", self.config.url.trim_end_matches('/'));
        let mut request = self.http.request(method, url);
        if !query.is_empty() {
            // Form encoding, as Java's URLEncoder: the encoding the signature was computed over.
            request = request.query(query);
        }
        request
            .header("X-Api-ClientID", &self.config.client_id)
            .header("X-Api-Auth-Version", "2.0")
            .header("X-Api-TimeStamp", timestamp)
            .header("X-Api-Nonce", nonce)
            .header("X-Api-SignHeaders", sign::SIGN_HEADERS)
            .header("X-Api-Signature", signature)
            .header("X-GW-Router-Addr", self.tenant().domain)
            .header("Content-Type", "application/json")
    }

    /// Fetches an app-token (the token cache calls this at most once per expiry or rejection).
    /// When the tenant's app secret is refused it has rotated: the authorisation is pulled again
    /// (if `outer_instance_id` is configured) and the token asked for once more.
    async fn fetch_token(&self) -> Result<(Secret, Duration), CallError> {
        match self.ask_token().await? {
            Ok(token) => Ok(token),
            Err(refusal) if self.config.outer_instance_id.is_some() => {
                tracing::info!(
                    service = SERVICE,
                    "the tenant's app secret was refused ({refusal}); pulling the authorisation again"
                );
                self.reauthorize().await?;
                match self.ask_token().await? {
                    Ok(token) => Ok(token),
                    Err(refusal) => Err(self.secret_refused(&refusal, true)),
                }
            }
            Err(refusal) => Err(self.secret_refused(&refusal, false)),
        }
    }

    /// The credentials error of a refused app secret, saying what to fix.
    fn secret_refused(&self, refusal: &str, after_reauthorizing: bool) -> CallError {
        let advice = if after_reauthorizing {
            "even after pulling the authorisation again: check kingdee.app_key and \
             kingdee.outer_instance_id, and that the tenant still authorises the app"
        } else {
            "the tenant's app_secret rotates every 24 hours: set kingdee.outer_instance_id so Ferry \
             pulls the current authorisation itself, or update kingdee.app_secret"
        };
        CallError::new(
            FailureClass::Credentials,
            SERVICE,
            "kingdee_auth_token",
            Some(wire::TOKEN_INVALID.to_string()),
            format!("the app secret was refused ({refusal}); {advice}"),
        )
    }

    /// One token request: `Ok(Err(message))` when the app secret is refused.
    async fn ask_token(&self) -> Result<Result<(Secret, Duration), String>, CallError> {
        let call = Call {
            service: SERVICE,
            operation: "kingdee_auth_token",
            write: false,
        };
        let tenant = self.tenant();
        let query = vec![
            ("app_key".to_owned(), self.config.app_key.clone()),
            (
                "app_signature".to_owned(),
                sign::app_signature(&self.config.app_key, tenant.app_secret.expose()),
            ),
        ];
        let reply = call
            .send(self.signed(Method::GET, wire::TOKEN_PATH, &query))
            .await?;
        if reply.status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(call.error(
                FailureClass::Credentials,
                Some("401".into()),
                "the gateway refused the request signature (HTTP 401): check kingdee.client_id \
                 and kingdee.client_secret",
            ));
        }
        match wire::read(reply.status.as_u16(), reply.json().as_ref()) {
            wire::Answer::Accepted(data) => {
                let token = wire::token_of(&data).ok_or_else(|| call.unreadable(&reply))?;
                let now = jiff::Timestamp::now().as_millisecond();
                let lifetime = wire::token_lifetime(&data, now).unwrap_or(DEFAULT_TOKEN_LIFETIME);
                Ok(Ok((Secret::new(token), lifetime)))
            }
            wire::Answer::TokenRejected(message) => Ok(Err(message)),
            wire::Answer::Refused(class, code, message) => {
                Err(call.error(class, Some(code), message))
            }
            wire::Answer::Unreadable => Err(call.unreadable(&reply)),
        }
    }

    /// Pulls the tenant's current authorisation and keeps its app secret (and domain).
    async fn reauthorize(&self) -> Result<(), CallError> {
        let call = Call {
            service: SERVICE,
            operation: "push_app_authorize",
            write: false,
        };
        let Some(instance) = &self.config.outer_instance_id else {
            return Ok(());
        };
        let query = vec![("outerInstanceId".to_owned(), instance.clone())];
        let reply = call
            .send(
                self.signed(Method::POST, wire::AUTHORIZE_PATH, &query)
                    .body("{}"),
            )
            .await?;
        let data = match wire::read(reply.status.as_u16(), reply.json().as_ref()) {
            wire::Answer::Accepted(data) => data,
            wire::Answer::TokenRejected(message) => {
                return Err(call.error(
                    FailureClass::Credentials,
                    None,
                    format!(
                        "the authorisation of outer_instance_id '{instance}' was refused: {message}"
                    ),
                ));
            }
            wire::Answer::Refused(class, code, message) => {
                return Err(call.error(class, Some(code), message));
            }
            wire::Answer::Unreadable => return Err(call.unreadable(&reply)),
        };
        let Some(found) = wire::authorization_of(&data, &self.config.app_key) else {
            return Err(call.error(
                FailureClass::Credentials,
                None,
                format!(
                    "outer_instance_id '{instance}' holds no authorisation of app_key '{}'",
                    self.config.app_key
                ),
            ));
        };
        let mut tenant = self
            .tenant
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tenant.app_secret = Secret::new(found.app_secret);
        if let Some(domain) = found.domain {
            tenant.domain = domain;
        }
        tracing::info!(
            service = SERVICE,
            "authorisation pulled again; app secret renewed"
        );
        Ok(())
    }

    /// One authorised request, with one token renewal if the token is refused.
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

    /// Saves a sales order (`body` is the V1 body). With an `id` the bill is modified: every
    /// existing entry must carry its entry id, an entry without one is a new line. Never repeated
    /// after an ambiguous outcome: a second create could make a second bill, a second modify could
    /// append its new lines twice.
    pub async fn save_order(&self, body: &Value) -> Result<Saved, CallError> {
        self.save_at(wire::SAVE_PATH, body).await
    }

    /// [`KingdeeClient::save_order`] to the save API at `path` (a target description's `save`:
    /// V1 `/jdy/sal/sal_order_save`, V2 `/jdy/v2/scm/sal_order`; both answer the bill's id).
    pub async fn save_at(&self, path: &str, body: &Value) -> Result<Saved, CallError> {
        let call = Call {
            service: SERVICE,
            operation: path.rsplit('/').next().unwrap_or(path),
            write: true,
        };
        self.settings
            .retry
            .run(false, |_| async {
                let (reply, data) = self
                    .authorized(call, Method::POST, path, &[], Some(body))
                    .await?;
                let target_id = wire::saved_id(&data).ok_or_else(|| call.unreadable(&reply))?;
                Ok(Saved::id(target_id))
            })
            .await
    }

    /// The sales order numbered exactly `billno`, with its entries, if there is one. The detail
    /// API is asked by number; when it refuses (how it says "no such bill" is not documented), the
    /// list is asked by `bill_no` to tell "none" from a failure.
    pub async fn find_order(&self, billno: &str) -> Result<Option<Detail>, CallError> {
        self.find_order_at(wire::DETAIL_PATH, wire::LIST_PATH, billno)
            .await
    }

    /// [`KingdeeClient::find_order`] through the detail and list APIs at `detail` and `list`.
    pub async fn find_order_at(
        &self,
        detail: &str,
        list: &str,
        billno: &str,
    ) -> Result<Option<Detail>, CallError> {
        let query = vec![("number".to_owned(), billno.to_owned())];
        match self.detail(detail, &query).await {
            Ok(found) => Ok(found),
            Err(e) if e.class == FailureClass::Permanent => {
                match self.list_id(list, billno).await? {
                    None => Ok(None),
                    Some(id) => self.order_detail_at(detail, &id).await.map(Some),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The sales order with id `id` and its entries; a permanent failure when there is none.
    pub async fn order_detail(&self, id: &str) -> Result<Detail, CallError> {
        self.order_detail_at(wire::DETAIL_PATH, id).await
    }

    /// [`KingdeeClient::order_detail`] from the detail API at `path`.
    pub async fn order_detail_at(&self, path: &str, id: &str) -> Result<Detail, CallError> {
        let query = vec![("id".to_owned(), id.to_owned())];
        self.detail(path, &query).await?.ok_or_else(|| {
            CallError::new(
                FailureClass::Permanent,
                SERVICE,
                "sal_order_detail",
                None,
                format!("the target has no sales order with id {id}"),
            )
        })
    }

    async fn detail(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Option<Detail>, CallError> {
        let call = Call {
            service: SERVICE,
            operation: "sal_order_detail",
            write: false,
        };
        self.settings
            .retry
            .run(true, |_| async {
                let (_, data) = self
                    .authorized(call, Method::GET, path, query, None)
                    .await?;
                Ok(wire::detail_of(&data))
            })
            .await
    }

    /// The id of the order whose `bill_no` is exactly `billno`, from the list.
    async fn list_id(&self, path: &str, billno: &str) -> Result<Option<String>, CallError> {
        let call = Call {
            service: SERVICE,
            operation: "sal_order",
            write: false,
        };
        self.settings
            .retry
            .run(true, |_| async {
                let query = vec![
                    ("bill_no".to_owned(), billno.to_owned()),
                    ("page".to_owned(), "1".to_owned()),
                    ("page_size".to_owned(), "100".to_owned()),
                ];
                let (_, data) = self
                    .authorized(call, Method::GET, path, &query, None)
                    .await?;
                Ok(data
                    .get("rows")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|row| row.get("bill_no").and_then(Value::as_str) == Some(billno))
                    .and_then(|row| wire::id_text(row.get("id"))))
            })
            .await
    }
}
