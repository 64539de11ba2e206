//! `ferry console` in a real browser: Debian's headless Chromium, driven over WebDriver
//! (chromedriver), against the real binary over the sandbox. A document the target refuses shows
//! in the failures with its reason; fixing the scheme's value map and pressing replay syncs it;
//! its page shows its history. Each page's screenshot is written to docs/console/ (linked from
//! docs/console.md). And the console's safety: an exposed address needs a token, an action needs
//! its anti-forgery token.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use ferry_cli::error::EXIT_USER;
use ferry_tests::{TempDir, ferry, ferry_async, sandbox_run_config, spawn_sandbox, workspace};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry-bin");
const TRADES: &str = "wdt-trades-to-kingdee";

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ferry console` over `config` on a free loopback port: its base URL and process.
fn console(config: &str, extra: &[&str]) -> (String, Running) {
    let mut child = Command::new(FERRY)
        .args([
            "console",
            "-c",
            config,
            "--listen",
            "127.0.0.1:0",
            "--operator",
            "tester",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    (url, Running(child))
}

/// Headless Chromium under chromedriver (both Debian packages; `./scripts/test` installs them).
async fn browser() -> (Client, Running) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Running(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (./scripts/test installs chromium-driver)"),
    );
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--lang=zh-CN"],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    (client, driver)
}

/// Clicks the button `id` and returns the next page's source, once its element `next` is there (a
/// form's click starts a navigation; reading before it ends would read the old page).
async fn press(client: &Client, id: &str, next: &str) -> String {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client.wait().for_element(Locator::Id(next)).await.unwrap();
    client.source().await.unwrap()
}

/// Writes the page's screenshot to docs/console/NAME.png.
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = workspace().join("docs/console");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_document_is_found_fixed_replayed_and_its_history_shown_in_a_browser() {
    // The sandbox's Kingdee account has a frozen customer, and the scheme maps Tmall's shop to it.
    let sandbox = spawn_sandbox(60, |config| {
        config.frozen_customers = vec!["CUST-FROZEN".into()];
    })
    .await;
    let dir = TempDir::new("console");
    let original =
        std::fs::read_to_string(workspace().join("schemes/wdt-trades-to-kingdee.yaml")).unwrap();
    let scheme_file = dir.write(
        "trades.yaml",
        &original.replace("tmall-001: CUST-TMALL", "tmall-001: CUST-FROZEN"),
    );
    let config = sandbox_run_config(&sandbox, &dir.path().join("ferry.db"))
        .replace("scheme: wdt-trades-to-kingdee", "scheme: trades.yaml");
    let config = dir.write("ferry.yaml", &config);
    let first = ferry_async(&["run", &config, "--once"]).await;
    assert_eq!(first.code, 0, "{first:?}");

    let (url, _console) = console(&config, &[]);
    let (client, _driver) = browser().await;

    // The overview lists both schemes, with the failures counted.
    client.goto(&format!("{url}/")).await.unwrap();
    let overview = client.source().await.unwrap();
    for id in [TRADES, "wdt-stockouts-to-yonyou"] {
        assert!(overview.contains(id), "{id} on the overview");
    }
    assert!(overview.contains("集成方案总览"), "Chinese by default");
    screenshot(&client, "overview").await;

    // The failures page groups the refused documents under the target's reason.
    client
        .goto(&format!("{url}/failures/{TRADES}"))
        .await
        .unwrap();
    let failures = client.source().await.unwrap();
    assert!(
        failures.contains("客户[CUST-FROZEN]已冻结"),
        "the target's reason on the failures page"
    );
    let failed_keys: Vec<String> = {
        let mut keys = Vec::new();
        for checkbox in client
            .find_all(Locator::Css("input[name=keys]"))
            .await
            .unwrap()
        {
            keys.push(checkbox.attr("value").await.unwrap().unwrap());
        }
        keys
    };
    assert!(!failed_keys.is_empty());
    screenshot(&client, "failures").await;

    // The consultant fixes the value map, then replays the group from the page.
    std::fs::write(
        &scheme_file,
        std::fs::read_to_string(&scheme_file)
            .unwrap()
            .replace("tmall-001: CUST-FROZEN", "tmall-001: CUST-TMALL"),
    )
    .unwrap();
    let confirm = press(&client, "replay-selected", "summary").await;

    assert!(
        confirm.contains("请确认操作"),
        "an action is confirmed first"
    );
    screenshot(&client, "confirm").await;
    let result = press(&client, "confirm", "result").await;
    assert!(result.contains("操作完成"), "{result}");
    screenshot(&client, "result").await;

    // Every refused document is now synced, once, with the fixed customer.
    client
        .goto(&format!("{url}/failures/{TRADES}"))
        .await
        .unwrap();
    assert!(client.source().await.unwrap().contains("没有失败的单据"));
    let scheme = ferry_tests::scheme(TRADES);
    let verification = sandbox.verify(&scheme);
    assert!(verification.is_clean(), "{verification:?}");

    // A fixed document's page: synced, its history from the refusal to the bill, the body sent.
    let key = &failed_keys[0];
    client
        .goto(&format!("{url}/doc/{TRADES}/{key}"))
        .await
        .unwrap();
    let page = client.source().await.unwrap();
    let history = client
        .find(Locator::Id("history"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("(synced)"), "synced");
    for what in ["failed", "created", "已冻结"] {
        assert!(history.contains(what), "'{what}' in the history: {history}");
    }
    let sent = client
        .find(Locator::Id("sent"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sent.contains("CUST-TMALL"), "the body sent: {sent}");
    assert!(
        client.find(Locator::Id("preview")).await.is_ok(),
        "the mapping's preview of the source"
    );
    screenshot(&client, "document").await;

    // The audit log names who did what.
    client.goto(&format!("{url}/?lang=en")).await.unwrap();
    let english = client.source().await.unwrap();
    assert!(
        english.contains("Integration schemes"),
        "English on request"
    );
    assert!(
        english.contains("tester: "),
        "the audit log names who acted"
    );
    client.close().await.unwrap();
}

/// Sends one raw HTTP request; the status code and the response.
fn http(url: &str, request: &str) -> (u16, String) {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exposed_console_needs_a_token_and_an_action_its_anti_forgery_token() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let dir = TempDir::new("console-safety");
    let config = dir.write(
        "ferry.yaml",
        &sandbox_run_config(&sandbox, &dir.path().join("ferry.db")),
    );
    // Any address other than loopback, without a token: refused before anything starts.
    let exposed = ferry(&["console", "-c", &config, "--listen", "0.0.0.0:0"]);
    assert_eq!(exposed.code, EXIT_USER, "{exposed:?}");
    assert!(exposed.stderr.contains("--token"), "{}", exposed.stderr);

    // With a token: nothing without it; `?token=` once sets the cookie that lets the browser in.
    let (url, _console) = console(&config, &["--token", "s3cret"]);
    let host = url.trim_start_matches("http://");
    let (status, _) = http(
        &url,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 401);
    let (status, response) = http(
        &url,
        &format!("GET /?token=s3cret HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 303);
    assert!(response.contains("ferry_console_token=s3cret; HttpOnly; SameSite=Strict"));
    let cookie = "Cookie: ferry_console_token=s3cret\r\n";
    let (status, page) = http(
        &url,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\n{cookie}Connection: close\r\n\r\n"),
    );
    assert_eq!(status, 200);
    assert!(!page.contains("s3cret"), "the token is never rendered");
    assert!(
        !page.contains(&sandbox.credentials().qimen_app_secret),
        "no connector secret is rendered"
    );

    // An action without its anti-forgery token (a forged cross-site form) is rejected, and does
    // nothing: no confirmation page, no audit entry.
    let body = "action=redrive";
    let (status, _) = http(
        &url,
        &format!(
            "POST /actions/{TRADES} HTTP/1.1\r\nHost: {host}\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 403);
    // Even with the page's token, another origin's post is rejected.
    let csrf = hidden(&page, "csrf");
    let body = format!("csrf={csrf}&action=redrive");
    let (status, _) = http(
        &url,
        &format!(
            "POST /actions/{TRADES} HTTP/1.1\r\nHost: {host}\r\n{cookie}Origin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 403);
    // From the console's own page it is asked to be confirmed.
    let (status, confirm) = http(
        &url,
        &format!(
            "POST /actions/{TRADES} HTTP/1.1\r\nHost: {host}\r\n{cookie}Origin: http://{host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 200, "{confirm}");
    assert!(confirm.contains("id=\"confirm\""), "{confirm}");
}

/// The value of `name="NAME" value="…"` in a page.
fn hidden(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_console_answers_only_its_own_name_and_runs_a_confirmed_action_once() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let dir = TempDir::new("console-once");
    let config = dir.write(
        "ferry.yaml",
        &sandbox_run_config(&sandbox, &dir.path().join("ferry.db")),
    );
    let (url, _console) = console(&config, &[]);
    let host = url.trim_start_matches("http://");
    let port = host.rsplit(':').next().unwrap();
    // A page of another site whose name now points at 127.0.0.1 (DNS rebinding) sends its own name.
    let (status, _) = http(
        &url,
        &format!("GET / HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 421);
    let (status, page) = http(
        &url,
        &format!("GET / HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200);
    let lower = page.to_lowercase();
    assert!(lower.contains("x-frame-options: deny"), "never framed");
    assert!(lower.contains("frame-ancestors 'none'"), "never framed");
    let post = |body: String| {
        format!(
            "POST /actions/{TRADES} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let csrf = hidden(&page, "csrf");
    let (status, confirm) = http(&url, &post(format!("csrf={csrf}&action=redrive")));
    assert_eq!(status, 200);
    let nonce = hidden(&confirm, "nonce");
    let confirmed = format!("csrf={csrf}&action=redrive&confirmed=yes&nonce={nonce}");
    let (status, done) = http(&url, &post(confirmed.clone()));
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("id=\"result\""), "{done}");
    // The browser's reload posts the same form again: it does not run twice.
    let (status, _) = http(&url, &post(confirmed));
    assert_eq!(status, 409);
    // Once in the audit log, with how it ended.
    let (_, overview) = http(
        &url,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(overview.matches("重投死信 → 完成").count(), 1, "{overview}");
}
