//! Ferry's sandbox: local HTTP stand-ins of WDT, Kingdee and Yonyou that speak the real wire
//! protocols (docs/apis.md §4), so the production clients run against it unchanged.
//! Each service listens on its own ephemeral port on 127.0.0.1; tests and the demo start it
//! in-process, `ferry sandbox` runs it standalone.

pub mod data;
pub mod fault_mix;
mod faults;
mod gate;
mod kingdee;
pub mod live;
mod reply;
mod signing;
mod source;
mod targets;
pub mod unknowns;
mod verify;
mod wdt;
mod yonyou;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use ferry_common::connector::Secret;
use ferry_common::connector::kingdee::KingdeeConfig;
use ferry_common::connector::wdt::{Openapi2Config, QimenConfig, WdtConfig};
use ferry_common::connector::yonyou::YonyouConfig;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::{Endpoint, Fault, Faults};
pub use live::{Change, Latency, Live, LiveConfig, latencies};
pub use source::{Kind, SourceData, TimeField};
pub use targets::{Bill, Reception, TARGET_PLAYS, TargetPlay, target_play};
pub use unknowns::Unknowns;
pub use verify::Verification;

/// The deployment variables of the sandbox's pretend customer: the org, project and transaction
/// codes its accounts hold. They live here, with the demo, and never as a scheme's default: a
/// real deployment sets its own or refuses to start.
pub const DEMO_VARIABLES: &[(&str, &str)] = &[
    ("FERRY_KINGDEE_PROJECT", "XM-ECOM"),
    ("FERRY_YONYOU_SALES_ORG", "ORG-SALES-01"),
    ("FERRY_YONYOU_SETTLEMENT_ORG", "ORG-SALES-01"),
    ("FERRY_YONYOU_STOCK_ORG", "ORG-STOCK-01"),
    ("FERRY_YONYOU_TRANSACTION_TYPE", "SO-ECOM"),
];

/// A demo variable's value by name (a scheme loader's variable look-up).
pub fn demo_variable(name: &str) -> Option<String> {
    DEMO_VARIABLES
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| (*value).to_owned())
}

/// Per-minute call limits, as the vendors enforce them.
#[derive(Clone, Debug, Serialize)]
pub struct RateLimits {
    /// WDT queries per minute (real: about 60).
    pub wdt: u32,
    /// Kingdee business calls per minute (real: about 500 per account book).
    pub kingdee: u32,
    /// Kingdee app-token requests per minute (real: about 2).
    pub kingdee_token: u32,
    /// Yonyou `singleSave` calls per minute (real: about 60).
    pub yonyou: u32,
    /// Yonyou token requests per minute.
    pub yonyou_token: u32,
}

impl RateLimits {
    /// The vendors' limits.
    pub fn real() -> Self {
        RateLimits {
            wdt: 60,
            kingdee: 500,
            kingdee_token: 2,
            yonyou: 60,
            yonyou_token: 10,
        }
    }

    /// Limits high enough for a demo of thousands of documents in seconds; the token endpoints keep
    /// limits low enough that a client fetching a token per call is caught.
    pub fn demo() -> Self {
        RateLimits {
            wdt: 20_000,
            kingdee: 50_000,
            kingdee_token: 20,
            yonyou: 50_000,
            yonyou_token: 20,
        }
    }
}

/// How the sandbox behaves.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Seed of the data set, the credentials' shape and the fault rolls.
    pub seed: u64,
    /// Orders in the data set (and as many stock-outs), 10 to 1,000,000.
    pub documents: u64,
    /// WDT `page_size` when the request gives none.
    pub default_page_size: u32,
    /// The largest WDT `page_size` accepted.
    pub max_page_size: u32,
    /// Per-minute call limits.
    pub limits: RateLimits,
    /// The length of a rate-limit window (a minute; shorter in tests that wait one out).
    pub rate_window: Duration,
    /// Lifetime of a Kingdee app-token.
    pub kingdee_token_lifetime: Duration,
    /// Lifetime of a Yonyou access token.
    pub yonyou_token_lifetime: Duration,
    /// How long Yonyou answers a repeated `resubmitCheckKey` with the first success (then `100004`).
    pub resubmit_window: Duration,
    /// Fraction of the documents served by a WDT query that are edited right after (page drift).
    pub drift_rate: f64,
    /// Fraction of documents the targets refuse for good (a business rule; the same documents each time).
    pub refuse_rate: f64,
    /// Kingdee customers that are frozen: a sales order for one is refused for good (`客户[X]已冻结`)
    /// until a scheme maps its shop to another customer.
    pub frozen_customers: Vec<String>,
    /// How long a `Timeout` fault holds the request before giving up.
    pub hang: Duration,
    /// How long a `Slow` fault delays the answer.
    pub slow: Duration,
    /// The answer played to each question the vendors' documents leave open (contract §5).
    pub unknowns: Unknowns,
    /// Kingdee's detail of a bill that does not exist answers `errcode` 0 with empty `data`
    /// (otherwise a non-zero `errcode`): how it says so is not documented either.
    pub kingdee_not_found_empty: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 1,
            documents: 2_000,
            default_page_size: 40,
            max_page_size: 100,
            limits: RateLimits::demo(),
            rate_window: Duration::from_secs(60),
            kingdee_token_lifetime: Duration::from_secs(24 * 3600),
            yonyou_token_lifetime: Duration::from_secs(7200),
            resubmit_window: Duration::from_secs(3600),
            drift_rate: 0.0,
            refuse_rate: 0.0,
            frozen_customers: Vec::new(),
            hang: Duration::from_secs(60),
            slow: Duration::from_millis(300),
            unknowns: Unknowns::default(),
            kingdee_not_found_empty: false,
        }
    }
}

/// The test credentials of one sandbox (fresh random secrets each start).
#[derive(Clone, Debug, Serialize)]
pub struct Credentials {
    /// WDT seller account.
    pub wdt_sid: String,
    /// Qimen app key.
    pub qimen_app_key: String,
    /// Qimen app secret.
    pub qimen_app_secret: String,
    /// openapi2 appkey.
    pub wdt_appkey: String,
    /// openapi2 appsecret.
    pub wdt_appsecret: String,
    /// Kingdee developer client id.
    pub kingdee_client_id: String,
    /// Kingdee developer client secret.
    pub kingdee_client_secret: String,
    /// Kingdee tenant app key.
    pub kingdee_app_key: String,
    /// Kingdee tenant app secret.
    pub kingdee_app_secret: String,
    /// Kingdee tenant domain.
    pub kingdee_domain: String,
    /// The tenant's authorisation of the app (`outerInstanceId`).
    pub kingdee_outer_instance_id: String,
    /// Yonyou tenant id.
    pub yonyou_tenant_id: String,
    /// Yonyou app key.
    pub yonyou_app_key: String,
    /// Yonyou app secret.
    pub yonyou_app_secret: String,
}

impl Credentials {
    fn random() -> Self {
        let mut rng = fastrand::Rng::new();
        let mut secret = |prefix: &str| {
            let hex: String = (0..24)
                .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
                .collect();
            format!("{prefix}{hex}")
        };
        Credentials {
            wdt_sid: "ferrydemo".into(),
            qimen_app_key: "23400001".into(),
            qimen_app_secret: secret("qmsec"),
            wdt_appkey: "ferrydemo-ot".into(),
            wdt_appsecret: secret("wdtsec"),
            kingdee_client_id: "235001".into(),
            kingdee_client_secret: secret("kdcsec"),
            kingdee_app_key: "FerryDemoKey".into(),
            kingdee_app_secret: secret("kdasec"),
            kingdee_domain: "ferry-demo.jdy.com".into(),
            kingdee_outer_instance_id: "289541638213402624".into(),
            yonyou_tenant_id: "ferrytenant".into(),
            yonyou_app_key: "ferry-yy-app".into(),
            yonyou_app_secret: secret("yysec"),
        }
    }

    /// Every secret, for tests that check none of them leaks.
    pub fn secrets(&self) -> Vec<&str> {
        vec![
            &self.qimen_app_secret,
            &self.wdt_appsecret,
            &self.kingdee_client_secret,
            &self.kingdee_app_secret,
            &self.yonyou_app_secret,
        ]
    }
}

/// Everything the three services share.
#[derive(Debug)]
pub(crate) struct State {
    pub config: SandboxConfig,
    pub credentials: Credentials,
    pub source: Mutex<SourceData>,
    pub kingdee: Mutex<targets::KingdeeBook>,
    /// The tenant's app secret now (it rotates; `credentials` holds the first).
    pub kingdee_app_secret: Mutex<String>,
    /// The tenant's domain now.
    pub kingdee_domain: Mutex<String>,
    pub yonyou: Mutex<targets::YonyouBook>,
    pub receptions: Mutex<Vec<Reception>>,
    pub faults: Faults,
    pub limiter: gate::RateLimiter,
    pub kingdee_tokens: gate::Tokens,
    pub yonyou_tokens: gate::Tokens,
    pub yonyou_required: Vec<String>,
    pub drift: Mutex<fastrand::Rng>,
    /// The drift rate now (starts at the configured one; tests turn drift on and off).
    pub drift_rate: Mutex<f64>,
    pub requests: Mutex<std::collections::BTreeMap<Endpoint, u64>>,
    pub yonyou_base: OnceLock<String>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    pub fn count(&self, endpoint: Endpoint) {
        *lock(&self.requests).entry(endpoint).or_default() += 1;
    }

    pub fn receive(&self, reception: Reception) {
        lock(&self.receptions).push(reception);
    }
}

/// The current time, unix seconds.
pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A running sandbox. Dropping it stops the servers.
pub struct Sandbox {
    state: Arc<State>,
    wdt_url: String,
    kingdee_url: String,
    yonyou_url: String,
    servers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("wdt_url", &self.wdt_url)
            .field("kingdee_url", &self.kingdee_url)
            .field("yonyou_url", &self.yonyou_url)
            .finish_non_exhaustive()
    }
}

async fn serve(router: axum::Router) -> std::io::Result<(String, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!("sandbox server stopped: {error}");
        }
    });
    Ok((url, handle))
}

impl Sandbox {
    /// Generates the data set and starts the three services on ephemeral ports of 127.0.0.1.
    /// Must be called inside a tokio runtime.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let documents = config.documents.clamp(1, 1_000_000);
        let source = SourceData::generate(config.seed, documents, jiff::Timestamp::now());
        let yonyou_required =
            ferry_common::catalog::find("yonyou", ferry_common::connector::yonyou::wire::SAVE_PATH)
                .map(|api| api.required.clone())
                .unwrap_or_default();
        let credentials = Credentials::random();
        let state = Arc::new(State {
            kingdee_app_secret: Mutex::new(credentials.kingdee_app_secret.clone()),
            kingdee_domain: Mutex::new(credentials.kingdee_domain.clone()),
            credentials,
            source: Mutex::new(source),
            kingdee: Mutex::default(),
            yonyou: Mutex::default(),
            receptions: Mutex::default(),
            faults: Faults::new(config.seed),
            limiter: gate::RateLimiter::new(config.rate_window),
            kingdee_tokens: gate::Tokens::default(),
            yonyou_tokens: gate::Tokens::default(),
            yonyou_required,
            drift: Mutex::new(fastrand::Rng::with_seed(config.seed ^ 0xD21F7)),
            drift_rate: Mutex::new(config.drift_rate),
            requests: Mutex::default(),
            yonyou_base: OnceLock::new(),
            config,
        });
        let (wdt_url, wdt) = serve(wdt::router(state.clone())).await?;
        let (kingdee_url, kingdee) = serve(kingdee::router(state.clone())).await?;
        let (yonyou_url, yonyou) = serve(yonyou::router(state.clone())).await?;
        let _ = state.yonyou_base.set(yonyou_url.clone());
        Ok(Sandbox {
            state,
            wdt_url,
            kingdee_url,
            yonyou_url,
            servers: vec![wdt, kingdee, yonyou],
        })
    }

    /// The WDT service's base URL.
    pub fn wdt_url(&self) -> &str {
        &self.wdt_url
    }

    /// The Qimen router URL.
    pub fn qimen_url(&self) -> String {
        format!("{}/router/qm", self.wdt_url)
    }

    /// The openapi2 base URL.
    pub fn openapi2_url(&self) -> String {
        format!("{}/openapi2/", self.wdt_url)
    }

    /// The Kingdee gateway's base URL.
    pub fn kingdee_url(&self) -> &str {
        &self.kingdee_url
    }

    /// The Yonyou data-centre discovery base URL (the gateway and token URLs it names sit under it).
    pub fn yonyou_url(&self) -> &str {
        &self.yonyou_url
    }

    /// The test credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.state.credentials
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.state.config
    }

    /// Every connector's settings for this sandbox, as a run configuration would give them, with
    /// the demo customer's variables (the sandbox's accounts hold its org and project codes).
    pub fn connectors(&self) -> ferry_common::connector::ConnectorsConfig {
        ferry_common::connector::ConnectorsConfig {
            wdt: Some(self.wdt_config()),
            kingdee: Some(self.kingdee_config()),
            yonyou: Some(self.yonyou_config()),
            variables: DEMO_VARIABLES
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The targets' per-minute limits, per target connector.
    pub fn rate_limits(&self) -> std::collections::HashMap<String, u32> {
        let limits = &self.state.config.limits;
        TARGET_PLAYS
            .iter()
            .map(|play| (play.connector.to_owned(), (play.limit)(limits)))
            .collect()
    }

    /// WDT connector settings for this sandbox, both transports.
    pub fn wdt_config(&self) -> WdtConfig {
        let c = &self.state.credentials;
        WdtConfig {
            sid: c.wdt_sid.clone(),
            qimen: Some(QimenConfig {
                url: self.qimen_url(),
                app_key: c.qimen_app_key.clone(),
                app_secret: Secret::new(&c.qimen_app_secret),
                target_app_key: ferry_common::connector::wdt::WDT_TARGET_APP_KEY.into(),
            }),
            openapi2: Some(Openapi2Config {
                url: self.openapi2_url(),
                appkey: c.wdt_appkey.clone(),
                appsecret: Secret::new(&c.wdt_appsecret),
            }),
        }
    }

    /// Kingdee connector settings for this sandbox.
    pub fn kingdee_config(&self) -> KingdeeConfig {
        let c = &self.state.credentials;
        KingdeeConfig {
            url: self.kingdee_url.clone(),
            client_id: c.kingdee_client_id.clone(),
            client_secret: Secret::new(&c.kingdee_client_secret),
            app_key: c.kingdee_app_key.clone(),
            app_secret: Secret::new(&c.kingdee_app_secret),
            domain: c.kingdee_domain.clone(),
            outer_instance_id: Some(c.kingdee_outer_instance_id.clone()),
        }
    }

    /// Yonyou connector settings for this sandbox.
    pub fn yonyou_config(&self) -> YonyouConfig {
        let c = &self.state.credentials;
        YonyouConfig {
            url: self.yonyou_url.clone(),
            tenant_id: c.yonyou_tenant_id.clone(),
            app_key: c.yonyou_app_key.clone(),
            app_secret: Secret::new(&c.yonyou_app_secret),
            resubmit_window: format!("{}ms", self.state.config.resubmit_window.as_millis()),
        }
    }

    /// The fault plan: set rates or scripts, read what was injected.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Calls refused for exceeding a per-minute limit: `wdt`, `kingdee`, `kingdee_token`, `yonyou`,
    /// `yonyou_token`.
    pub fn throttled(&self, service: &str) -> u64 {
        self.state.limiter.refused(service)
    }

    /// Changes the page-drift rate from now on.
    pub fn set_drift_rate(&self, rate: f64) {
        *lock(&self.state.drift_rate) = rate.clamp(0.0, 1.0);
    }

    /// Reads or changes the WDT data set (edit a document, commit one late, re-approve a stock-out).
    pub fn source<R>(&self, f: impl FnOnce(&mut SourceData) -> R) -> R {
        f(&mut lock(&self.state.source))
    }

    /// Every sales order the Kingdee stand-in holds.
    pub fn kingdee_bills(&self) -> Vec<Bill> {
        lock(&self.state.kingdee).bills().to_vec()
    }

    /// Deletes the Kingdee bill numbered `number` behind Ferry's back (a user in Kingdee's own
    /// screens); `false` if there is none.
    pub fn delete_kingdee_bill(&self, number: &str) -> bool {
        lock(&self.state.kingdee).delete(number)
    }

    /// Rotates the Kingdee tenant's app secret, as 金蝶 does every 24 hours: the old one is refused
    /// from now on; `push_app_authorize` hands out the new one, which is returned.
    pub fn rotate_kingdee_app_secret(&self) -> String {
        let secret = format!("kdasec{:024x}", fastrand::u128(..) >> 32);
        *lock(&self.state.kingdee_app_secret) = secret.clone();
        secret
    }

    /// Audits the Yonyou order numbered `code` (a person in Yonyou's screens): an Update of it is
    /// refused from now on. `false` if there is no such order.
    pub fn audit_yonyou_order(&self, code: &str) -> bool {
        lock(&self.state.yonyou).audit(code)
    }

    /// Every sales order the Yonyou stand-in holds.
    pub fn yonyou_orders(&self) -> Vec<Bill> {
        lock(&self.state.yonyou).orders().to_vec()
    }

    /// Every save request the targets received, in order, with what became of it.
    pub fn receptions(&self) -> Vec<Reception> {
        lock(&self.state.receptions).clone()
    }

    /// Requests received per endpoint (faulted ones included).
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        lock(&self.state.requests)
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Expires every Kingdee and Yonyou token now.
    pub fn expire_tokens(&self) {
        self.state.kingdee_tokens.expire_all();
        self.state.yonyou_tokens.expire_all();
    }

    /// Every token the sandbox has issued (for tests that check none leaks).
    pub fn issued_tokens(&self) -> Vec<String> {
        let mut tokens = self.state.kingdee_tokens.all();
        tokens.extend(self.state.yonyou_tokens.all());
        tokens
    }

    /// URLs, credentials and the data set's first time, as `ferry sandbox --json` prints them.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "wdt": {
                "qimen_url": self.qimen_url(),
                "openapi2_url": self.openapi2_url(),
                "sid": self.state.credentials.wdt_sid,
                "qimen_app_key": self.state.credentials.qimen_app_key,
                "qimen_app_secret": self.state.credentials.qimen_app_secret,
                "appkey": self.state.credentials.wdt_appkey,
                "appsecret": self.state.credentials.wdt_appsecret,
            },
            "kingdee": {
                "url": self.kingdee_url,
                "client_id": self.state.credentials.kingdee_client_id,
                "client_secret": self.state.credentials.kingdee_client_secret,
                "app_key": self.state.credentials.kingdee_app_key,
                "app_secret": self.state.credentials.kingdee_app_secret,
                "domain": self.state.credentials.kingdee_domain,
                "outer_instance_id": self.state.credentials.kingdee_outer_instance_id,
            },
            "yonyou": {
                "url": self.yonyou_url,
                "tenant_id": self.state.credentials.yonyou_tenant_id,
                "app_key": self.state.credentials.yonyou_app_key,
                "app_secret": self.state.credentials.yonyou_app_secret,
            },
            "unknowns": self.state.config.unknowns,
            "data": {
                "seed": self.state.config.seed,
                "orders": self.source(|s| s.len(Kind::Order)),
                "stockouts": self.source(|s| s.len(Kind::Stockout)),
                "first_time": self.source(|s| s.first_time()),
            },
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}
