//! What the console's pages share: its state, the access check, the anti-forgery check and the
//! rendering of a page with the labels of its language.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use tokio::sync::RwLock;

use super::text::{self, Lang};
use crate::backend::Backend;
use crate::error::CliError;

/// How the console is served.
pub struct Options {
    /// The configuration file the backend was loaded from (re-read after each action on the
    /// embedded default, so an edited value map takes effect on a replay).
    pub config: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The access token, required for a non-loopback address.
    pub token: Option<String>,
    /// Who the audit log names for actions taken here.
    pub operator: String,
}

/// What every handler shares.
pub struct Console {
    /// The backend, swapped for a freshly loaded one on the embedded default. Handlers take a
    /// clone of the `Arc` and let the lock go at once: a long replay never holds up a page.
    pub backend: RwLock<Arc<Backend>>,
    /// How it is served.
    pub options: Options,
    /// The address it listens on (what a loopback console accepts as `Host`).
    pub address: SocketAddr,
    /// The anti-forgery token every form carries (one per process: random, never in a cookie).
    pub csrf: String,
    /// One-time tokens of the confirmation pages shown: a confirmed action consumes its own, so a
    /// reloaded result page or a double click never runs it twice.
    pub nonces: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The pages' templates.
    pub templates: minijinja::Environment<'static>,
}

impl Console {
    /// The current backend (the lock is held only to clone it).
    pub async fn backend(&self) -> Arc<Backend> {
        self.backend.read().await.clone()
    }

    /// A fresh one-time token for a confirmation page.
    pub fn nonce(&self) -> String {
        let nonce = random_hex();
        self.nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(nonce.clone());
        nonce
    }

    /// Takes a confirmation page's token; `false` if it was never shown or already used.
    pub fn consume(&self, nonce: Option<&str>) -> bool {
        nonce.is_some_and(|n| {
            self.nonces
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(n)
        })
    }
}

/// 128 bits from the operating system's random source, as hex.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// Headers every answer carries: no page of the console may be framed by another site.
fn harden(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'; form-action 'self'"),
    );
    // No referrer to other sites. (`no-referrer` would make a browser send `Origin: null` with
    // the console's own forms, which the origin check then refuses.)
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The console as the handlers hold it.
pub type Shared = Arc<Console>;

/// The pages' templates, compiled once.
pub fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("overview.html", include_str!("templates/overview.html")),
        ("failures.html", include_str!("templates/failures.html")),
        ("document.html", include_str!("templates/document.html")),
        ("confirm.html", include_str!("templates/confirm.html")),
        ("result.html", include_str!("templates/result.html")),
        ("message.html", include_str!("templates/message.html")),
    ] {
        env.add_template(name, source)
            .expect("the console's templates compile");
    }
    env
}

/// The name of the cookie holding the access token.
const TOKEN_COOKIE: &str = "ferry_console_token";

/// Lets a request in when no token is set, or it carries the token (its cookie, or `?token=` once,
/// which sets the cookie and redirects to the same page without it).
pub async fn access(State(console): State<Shared>, request: Request, next: Next) -> Response {
    let mut response = admit(&console, request, next).await;
    harden(&mut response);
    response
}

/// Whether `host` names this console's loopback address (`127.0.0.1:PORT`, `localhost:PORT`,
/// `[::1]:PORT`): a page of another site whose name was rebound to 127.0.0.1 sends its own.
fn loopback_host(console: &Console, host: Option<&str>) -> bool {
    let port = console.address.port();
    host.is_some_and(|host| {
        [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
        .iter()
        .any(|name| name == host)
    })
}

async fn admit(console: &Console, request: Request, next: Next) -> Response {
    let Some(token) = console.options.token.as_deref().filter(|t| !t.is_empty()) else {
        // No token: only this machine, by its loopback name (never a rebound DNS name).
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        if !loopback_host(console, host) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "not this console's address",
            )
                .into_response();
        }
        return next.run(request).await;
    };
    let cookie = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == TOKEN_COOKIE && same_secret(value, token));
    if cookie {
        return next.run(request).await;
    }
    let query = request.uri().query().unwrap_or_default();
    let given: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if given
        .iter()
        .any(|(k, v)| k == "token" && same_secret(v, token))
    {
        let rest: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(given.iter().filter(|(k, _)| k != "token"))
            .finish();
        // Back to the same page of this console; never `//host`, which a browser reads as another site.
        let path = match request.uri().path() {
            p if p.starts_with("//") || !p.starts_with('/') => "/",
            p => p,
        };
        let location = format!("{path}{}{rest}", if rest.is_empty() { "" } else { "?" });
        let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
        )) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    let lang = Lang::from_query(
        given
            .iter()
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.as_str()),
    );
    (
        StatusCode::UNAUTHORIZED,
        Html(format!(
            "<!doctype html><meta charset=utf-8><h1>{}</h1><p>?token=…</p>",
            text::label(lang, "token_needed")
        )),
    )
        .into_response()
}

/// Whether a POST comes from a page of this console: its anti-forgery token, and (where the
/// browser says) the same origin.
pub fn same_origin(console: &Console, headers: &HeaderMap, csrf: Option<&str>) -> bool {
    if !csrf.is_some_and(|given| same_secret(given, &console.csrf)) {
        return false;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            origin
                .strip_prefix("http://")
                .or(origin.strip_prefix("https://"))
                == Some(host)
        }
        _ => true,
    }
}

/// A page rendered from `template` with the shared context (labels, language, token, schemes).
pub fn render(
    console: &Console,
    backend: &Backend,
    lang: Lang,
    template: &str,
    context: impl Serialize,
) -> Response {
    #[derive(Serialize)]
    struct Common<'a> {
        t: std::collections::BTreeMap<&'static str, &'static str>,
        lang: &'static str,
        other_lang: &'static str,
        csrf: &'a str,
        scheme_ids: Vec<String>,
    }
    let common = Common {
        t: text::labels(lang),
        lang: lang.code(),
        other_lang: if lang == Lang::Zh { "en" } else { "zh" },
        csrf: &console.csrf,
        scheme_ids: backend.scheme_ids(),
    };
    // The page's own values beside the shared ones, as one object.
    let mut values = serde_json::to_value(&common).expect("serialisable");
    if let (Some(all), Ok(serde_json::Value::Object(own))) =
        (values.as_object_mut(), serde_json::to_value(&context))
    {
        all.extend(own);
    }
    let page = console
        .templates
        .get_template(template)
        .and_then(|t| t.render(minijinja::value::Serde(&values)));
    match page {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render {template}: {e}"),
        )
            .into_response(),
    }
}

/// A message page with `status`.
pub fn message(
    console: &Console,
    backend: &Backend,
    lang: Lang,
    status: StatusCode,
    message: &str,
    detail: &str,
) -> Response {
    let mut response = render(
        console,
        backend,
        lang,
        "message.html",
        serde_json::json!({ "message": message, "detail": detail }),
    );
    *response.status_mut() = status;
    response
}

/// An error's page: its domain picks the status (the input's fault 400, a service's 502).
pub fn failure(console: &Console, backend: &Backend, lang: Lang, error: &CliError) -> Response {
    let status = match error.domain {
        ferry_common::Domain::User => StatusCode::BAD_REQUEST,
        ferry_common::Domain::External => StatusCode::BAD_GATEWAY,
        ferry_common::Domain::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    message(console, backend, lang, status, &error.message, "")
}
