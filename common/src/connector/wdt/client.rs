//! The WDT query client: one page of one window per call, over either transport, with bounded retries.

use reqwest::{Client, RequestBuilder};
use serde_json::Value;

use super::config::WdtConfig;
use super::{sign, wire};
use crate::connector::http::{Call, build_client};
use crate::connector::{CallError, FailureClass, HttpSettings};
use crate::engine::Page;
use crate::scheme::config::Transport;

/// Reads WDT's order and stock-out queries.
#[derive(Clone, Debug)]
pub struct WdtClient {
    http: Client,
    config: WdtConfig,
    settings: HttpSettings,
}

const SERVICE: &str = "wdt";

impl WdtClient {
    /// A client for one WDT account.
    pub fn new(config: WdtConfig, settings: HttpSettings) -> Result<Self, CallError> {
        Ok(WdtClient {
            http: build_client(SERVICE, &settings)?,
            config,
            settings,
        })
    }

    /// One page of `api` (`wdt.trade.query`, `wdt.stockout.order.query.trade`): `params` are the
    /// business parameters the scheme rendered (window, `page_no`, `page_size`, filters); the client
    /// adds the transport's system parameters and signature. Reads are retried on any lost answer.
    pub async fn query_page(
        &self,
        transport: Transport,
        api: &str,
        params: &[(String, String)],
    ) -> Result<Page, CallError> {
        let call = Call {
            service: SERVICE,
            operation: api,
            write: false,
        };
        let list_key = crate::catalog::find("wdt", api)
            .and_then(|catalog| catalog.list_key.clone())
            .ok_or_else(|| {
                call.error(
                    FailureClass::Permanent,
                    None,
                    format!("unknown WDT query API '{api}'"),
                )
            })?;
        self.settings
            .retry
            .run(true, |_| async {
                // Built afresh for each attempt: the timestamp is part of the signature.
                let (request, read): (_, fn(&Value) -> wire::Answer<'_>) = match transport {
                    Transport::Qimen => {
                        (self.qimen_request(&call, api, params)?, wire::qimen_answer)
                    }
                    Transport::Openapi2 => (
                        self.openapi2_request(&call, api, params)?,
                        wire::openapi2_answer,
                    ),
                };
                let reply = call.send(request).await?;
                let body = reply.json().ok_or_else(|| call.unreadable(&reply))?;
                match read(&body) {
                    Ok(answer) => Ok(page(answer, &list_key)),
                    Err(Some(refusal)) => Err(refused(&call, refusal)),
                    Err(None) => Err(call.unreadable(&reply)),
                }
            })
            .await
    }

    /// The credentials of `transport`, or a permanent failure naming the missing section.
    fn missing(call: &Call<'_>, section: &str) -> CallError {
        call.error(
            FailureClass::Permanent,
            None,
            format!("the WDT connector has no `{section}` credentials configured"),
        )
    }

    /// A signed Qimen request: every parameter in the query string.
    fn qimen_request(
        &self,
        call: &Call<'_>,
        api: &str,
        params: &[(String, String)],
    ) -> Result<RequestBuilder, CallError> {
        let qimen = self
            .config
            .qimen
            .as_ref()
            .ok_or_else(|| Self::missing(call, "qimen"))?;
        let timestamp = crate::time::format_source(crate::time::to_beijing(jiff::Timestamp::now()));
        let mut all: Vec<(String, String)> = [
            ("method", api),
            ("app_key", qimen.app_key.as_str()),
            ("target_app_key", qimen.target_app_key.as_str()),
            ("sid", self.config.sid.as_str()),
            ("timestamp", timestamp.as_str()),
            ("format", "json"),
            ("v", "2.0"),
            ("sign_method", "md5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        all.extend(params.iter().cloned());
        let signature = sign::qimen(&all, qimen.app_secret.expose());
        all.push(("sign".to_owned(), signature));
        Ok(self.http.get(&qimen.url).query(&all))
    }

    /// A signed openapi2 request: every parameter in the form body.
    fn openapi2_request(
        &self,
        call: &Call<'_>,
        api: &str,
        params: &[(String, String)],
    ) -> Result<RequestBuilder, CallError> {
        let openapi2 = self
            .config
            .openapi2
            .as_ref()
            .ok_or_else(|| Self::missing(call, "openapi2"))?;
        let path = wire::openapi2_path(api).ok_or_else(|| {
            call.error(
                FailureClass::Permanent,
                None,
                format!("'{api}' has no openapi2 endpoint"),
            )
        })?;
        let mut all: Vec<(String, String)> = vec![
            ("sid".to_owned(), self.config.sid.clone()),
            ("appkey".to_owned(), openapi2.appkey.clone()),
            (
                "timestamp".to_owned(),
                jiff::Timestamp::now().as_second().to_string(),
            ),
        ];
        all.extend(params.iter().cloned());
        let signature = sign::openapi2(&all, openapi2.appsecret.expose());
        all.push(("sign".to_owned(), signature));
        let url = format!("{}/{path}", openapi2.url.trim_end_matches('/'));
        Ok(self.http.post(url).form(&all))
    }
}

/// A refusal as a typed outcome; throttling carries the wait before the next try.
fn refused(call: &Call<'_>, (class, code, message): wire::Refusal) -> CallError {
    let throttled = code == wire::THROTTLED.to_string() || code == wire::APP_CALL_LIMITED;
    let wait = throttled.then_some(wire::THROTTLE_WAIT);
    call.error(class, Some(code), message)
        .with_retry_after(wait)
}

fn page(answer: &Value, list_key: &str) -> Page {
    let (total_count, documents) = wire::page_of(answer, list_key);
    Page {
        total_count,
        documents,
    }
}
