//! WDT over both transports: windows, pages, limits, time-field rules, signatures, faults, drift.

use ferry_common::connector::wdt::WdtClient;
use ferry_common::connector::{CallError, FailureClass, Secret};
use ferry_common::engine::Page;
use ferry_common::scheme::config::Transport;
use ferry_sandbox::{Endpoint, Fault, Kind, Sandbox, TimeField};
use ferry_tests::{quick_http, spawn_sandbox};

const ORDERS: &str = "wdt.trade.query";
const STOCKOUTS: &str = "wdt.stockout.order.query.trade";

fn client(sandbox: &Sandbox) -> WdtClient {
    WdtClient::new(sandbox.wdt_config(), quick_http()).expect("client builds")
}

fn beijing(unix: i64) -> String {
    ferry_common::time::format_source(ferry_common::time::to_beijing(
        jiff::Timestamp::from_second(unix).unwrap(),
    ))
}

/// A window `[start, start + span]` starting `offset` seconds after the data set's first time.
fn window(sandbox: &Sandbox, offset: i64, span: i64) -> (i64, i64) {
    let first = sandbox.source(|s| s.first_time());
    let first = ferry_common::time::from_beijing(
        ferry_common::time::parse_source_datetime(&first).unwrap(),
    )
    .as_second();
    (first + offset, first + offset + span)
}

fn params(start: i64, end: i64, page_no: u32, page_size: u32) -> Vec<(String, String)> {
    vec![
        ("start_time".into(), beijing(start)),
        ("end_time".into(), beijing(end)),
        ("page_no".into(), page_no.to_string()),
        ("page_size".into(), page_size.to_string()),
    ]
}

async fn all_pages(
    client: &WdtClient,
    transport: Transport,
    api: &str,
    extra: &[(&str, &str)],
    start: i64,
    end: i64,
) -> Vec<serde_json::Value> {
    let mut documents = Vec::new();
    for page_no in 0.. {
        let mut p = params(start, end, page_no, 40);
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let Page {
            total_count,
            documents: page,
        } = client.query_page(transport, api, &p).await.unwrap();
        // WDT reports the total on page 0 only ("只有page_no = 0 时才返回").
        assert_eq!(total_count.is_some(), page_no == 0, "page {page_no}");
        let done = page.len() < 40;
        documents.extend(page);
        if done {
            break;
        }
    }
    documents
}

#[tokio::test(flavor = "multi_thread")]
async fn both_transports_page_a_window_of_orders_completely() {
    let sandbox = spawn_sandbox(3_000, |_| {}).await;
    let client = client(&sandbox);
    let (start, end) = window(&sandbox, 4 * 3600, 3599);
    let now = jiff::Timestamp::now().as_second();
    let expected: Vec<serde_json::Value> = sandbox.source(|s| {
        s.window(Kind::Order, TimeField::Modified, start, end, now)
            .into_iter()
            .map(|i| s.document(Kind::Order, i))
            .collect()
    });
    assert!(
        expected.len() > 80,
        "the window holds several pages: {}",
        expected.len()
    );
    let qimen = all_pages(&client, Transport::Qimen, ORDERS, &[], start, end).await;
    let openapi2 = all_pages(&client, Transport::Openapi2, ORDERS, &[], start, end).await;
    assert_eq!(qimen, expected);
    assert_eq!(openapi2, expected);
    // Closed interval: a document modified exactly at the window's end is in it.
    let last = sandbox.source(|s| s.modified(Kind::Order, 0));
    let edge = client
        .query_page(Transport::Qimen, ORDERS, &params(last - 10, last, 0, 100))
        .await
        .unwrap();
    assert!(edge.documents.iter().any(|d| d["trade_id"] == "100000"));
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_page_sizes_and_lookups_follow_the_contract() {
    let sandbox = spawn_sandbox(500, |_| {}).await;
    let client = client(&sandbox);
    let (start, _) = window(&sandbox, 0, 0);
    for transport in [Transport::Qimen, Transport::Openapi2] {
        let error = client
            .query_page(transport, ORDERS, &params(start, start + 3601, 0, 40))
            .await
            .unwrap_err();
        assert_eq!(error.class, FailureClass::Permanent);
        assert!(
            error.message.contains("查询时间跨度不能超过60分钟"),
            "{error}"
        );
        let error = client
            .query_page(
                transport,
                STOCKOUTS,
                &params(start, start + 30 * 86_400 + 1, 0, 40),
            )
            .await
            .unwrap_err();
        assert!(error.message.contains("30天"), "{error}");
        let error = client
            .query_page(transport, ORDERS, &params(start, start + 60, 0, 101))
            .await
            .unwrap_err();
        assert!(error.message.contains("page_size"), "{error}");
    }
    // A look-up by trade_no ignores the window.
    let order = sandbox.source(|s| s.document(Kind::Order, 123));
    let mut lookup = params(start, start + 1, 0, 40);
    lookup.push((
        "trade_no".into(),
        order["trade_no"].as_str().unwrap().into(),
    ));
    let page = client
        .query_page(Transport::Qimen, ORDERS, &lookup)
        .await
        .unwrap();
    assert_eq!(page.documents, vec![order]);
    assert_eq!(page.total_count, Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn stockouts_filter_on_ship_time_unless_asked_for_modified() {
    let sandbox = spawn_sandbox(400, |_| {}).await;
    let client = client(&sandbox);
    // Edit stock-out 7 now: its modified time moves, its ship time stays.
    let now = jiff::Timestamp::now().as_second();
    sandbox.source(|s| s.modify(Kind::Stockout, 7, now));
    let shipped = sandbox.source(|s| s.document(Kind::Stockout, 7))["consign_time"]
        .as_str()
        .unwrap()
        .to_owned();
    let shipped = ferry_common::time::from_beijing(
        ferry_common::time::parse_source_datetime(&shipped).unwrap(),
    )
    .as_second();
    let has_7 = |docs: &[serde_json::Value]| docs.iter().any(|d| d["stockout_id"] == "500007");
    let by_ship = all_pages(&client, Transport::Qimen, STOCKOUTS, &[], shipped, shipped).await;
    assert!(has_7(&by_ship), "without status the ship time is filtered");
    let by_modified = [("status", "110"), ("is_by_modified", "1")];
    let recent = all_pages(
        &client,
        Transport::Qimen,
        STOCKOUTS,
        &by_modified,
        now - 5,
        now + 5,
    )
    .await;
    assert!(
        has_7(&recent),
        "is_by_modified=1 filters on the modified time"
    );
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0]["remark"], "第1次修改");
    let old = all_pages(
        &client,
        Transport::Qimen,
        STOCKOUTS,
        &by_modified,
        shipped,
        shipped,
    )
    .await;
    assert!(!has_7(&old), "the edit left its old modified time");
    let status_only = [("status", "110")];
    let shipped_again = all_pages(
        &client,
        Transport::Openapi2,
        STOCKOUTS,
        &status_only,
        shipped,
        shipped,
    )
    .await;
    assert!(
        has_7(&shipped_again),
        "status >= 95 without is_by_modified filters on the ship time"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_is_refused_as_the_real_gateways_refuse_it() {
    let sandbox = spawn_sandbox(50, |_| {}).await;
    let mut config = sandbox.wdt_config();
    config.qimen.as_mut().unwrap().app_secret = Secret::new("not-the-secret");
    config.openapi2.as_mut().unwrap().appsecret = Secret::new("not-the-secret");
    let client = WdtClient::new(config, quick_http()).unwrap();
    let (start, end) = window(&sandbox, 0, 600);
    let error = client
        .query_page(Transport::Qimen, ORDERS, &params(start, end, 0, 40))
        .await
        .unwrap_err();
    // A refused secret is a setting to fix, not a page to give up on.
    assert_eq!(error.class, FailureClass::Credentials);
    assert_eq!(error.code.as_deref(), Some("25"));
    assert!(error.message.contains("Invalid signature"), "{error}");
    let error = client
        .query_page(Transport::Openapi2, ORDERS, &params(start, end, 0, 40))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Credentials);
    assert!(error.message.contains("签名错误"), "{error}");
    assert_eq!(
        sandbox.requests(Endpoint::WdtQuery),
        2,
        "a refused signature is not retried"
    );
}

/// Each fault once, then a clean answer: the read is retried and succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn every_fault_class_on_a_read_is_retried_to_success() {
    let sandbox = spawn_sandbox(300, |c| c.slow = std::time::Duration::from_millis(50)).await;
    let client = client(&sandbox);
    let (start, end) = window(&sandbox, 0, 3600);
    let clean = client
        .query_page(Transport::Qimen, ORDERS, &params(start, end, 0, 40))
        .await
        .unwrap();
    for fault in [
        Fault::ServerError,
        Fault::Timeout,
        Fault::Slow,
        Fault::Throttle,
        Fault::Malformed,
        Fault::NotJson,
        Fault::CommitThenLost,
    ] {
        for transport in [Transport::Qimen, Transport::Openapi2] {
            let before = sandbox.requests(Endpoint::WdtQuery);
            sandbox.faults().script(Endpoint::WdtQuery, [fault]);
            let page = client
                .query_page(transport, ORDERS, &params(start, end, 0, 40))
                .await
                .unwrap_or_else(|e| panic!("{fault:?} over {transport:?}: {e}"));
            assert_eq!(page, clean, "{fault:?}");
            let attempts = sandbox.requests(Endpoint::WdtQuery) - before;
            let expected = if fault == Fault::Slow { 1 } else { 2 };
            assert_eq!(attempts, expected, "{fault:?} over {transport:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_that_persists_is_handed_back_as_retryable_after_bounded_attempts() {
    let sandbox = spawn_sandbox(50, |_| {}).await;
    let client = client(&sandbox);
    let (start, end) = window(&sandbox, 0, 600);
    sandbox
        .faults()
        .script(Endpoint::WdtQuery, [Fault::ServerError; 10]);
    let error: CallError = client
        .query_page(Transport::Qimen, ORDERS, &params(start, end, 0, 40))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Retryable);
    assert_eq!(error.code.as_deref(), Some("503"));
    assert_eq!(
        sandbox.requests(Endpoint::WdtQuery),
        4,
        "max_attempts bounds the retries"
    );
    sandbox.faults().clear();
    // The Qimen gateway's per-minute limit answers TOP's 7 (App Call Limited); a wait longer than
    // the client may hold a worker hands the failure back to the engine.
    let limited = spawn_sandbox(50, |c| c.limits.wdt = 2).await;
    let mut impatient = quick_http();
    impatient.retry.max_wait = std::time::Duration::from_millis(200);
    let client = WdtClient::new(limited.wdt_config(), impatient).unwrap();
    let (start, end) = window(&limited, 0, 600);
    for _ in 0..2 {
        client
            .query_page(Transport::Qimen, ORDERS, &params(start, end, 0, 40))
            .await
            .unwrap();
    }
    let error = client
        .query_page(Transport::Qimen, ORDERS, &params(start, end, 0, 40))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Retryable);
    assert_eq!(error.code.as_deref(), Some("7"));
    assert!(error.message.contains("App Call Limited"), "{error}");
}

/// Drift: documents edited while a window is paged leave their page. Paging forward then skips
/// documents; paging from the last page back (the vendor's advice) reads every one that stayed.
#[tokio::test(flavor = "multi_thread")]
async fn page_drift_makes_forward_paging_skip_documents_and_backward_paging_does_not() {
    for backward in [false, true] {
        let sandbox = spawn_sandbox(3_000, |c| c.drift_rate = 0.1).await;
        let client = client(&sandbox);
        let (start, end) = window(&sandbox, 4 * 3600, 3599);
        let now = jiff::Timestamp::now().as_second();
        let before: Vec<String> = sandbox.source(|s| {
            s.window(Kind::Order, TimeField::Modified, start, end, now)
                .into_iter()
                .map(|i| s.key(Kind::Order, i))
                .collect()
        });
        let first = client
            .query_page(Transport::Qimen, ORDERS, &params(start, end, 0, 20))
            .await
            .unwrap();
        let pages = first.total_count.unwrap().div_ceil(20) as u32;
        let mut seen: Vec<String> = Vec::new();
        let order: Vec<u32> = if backward {
            (0..pages).rev().collect()
        } else {
            (0..pages).collect()
        };
        for page_no in order {
            let page = client
                .query_page(Transport::Qimen, ORDERS, &params(start, end, page_no, 20))
                .await
                .unwrap();
            seen.extend(
                page.documents
                    .iter()
                    .map(|d| d["trade_id"].as_str().unwrap().to_owned()),
            );
        }
        // What was edited left the window for a later one; everything else must have been read.
        let stayed: Vec<&String> = before
            .iter()
            .filter(|key| {
                let index = sandbox.source(|s| s.index_of_key(Kind::Order, key).unwrap());
                sandbox.source(|s| s.version(Kind::Order, index)) == 0
            })
            .collect();
        let missed = stayed.iter().filter(|key| !seen.contains(key)).count();
        if backward {
            assert_eq!(
                missed, 0,
                "paging backwards reads every document that stayed"
            );
        } else {
            assert!(missed > 0, "drift must make forward paging skip documents");
        }
    }
}

/// A late commit appears in a window that was already read, with its earlier modified time; a
/// re-approved stock-out keeps its stockout_id under a new order_no.
#[tokio::test(flavor = "multi_thread")]
async fn late_commits_and_reapprovals_look_as_they_do_in_wdt() {
    let sandbox = spawn_sandbox(200, |_| {}).await;
    let client = client(&sandbox);
    let now = jiff::Timestamp::now().as_second();
    let read = |start: i64, end: i64| {
        let client = &client;
        async move {
            all_pages(client, Transport::Qimen, ORDERS, &[], start, end)
                .await
                .into_iter()
                .map(|d| d["trade_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let before = read(now - 300, now).await;
    let late = sandbox.source(|s| s.commit_late(Kind::Order, 120, now));
    let key = sandbox.source(|s| s.key(Kind::Order, late));
    let after = read(now - 300, now).await;
    assert!(!before.contains(&key));
    assert_eq!(after.len(), before.len() + 1);
    assert!(
        after.contains(&key),
        "the late document is in the re-read window"
    );
    let doc = sandbox.source(|s| s.document(Kind::Order, late));
    assert_eq!(doc["modified"], beijing(now - 120));

    let original = sandbox.source(|s| s.document(Kind::Stockout, 5));
    sandbox.source(|s| s.reapprove(5, now));
    let approved = sandbox.source(|s| s.document(Kind::Stockout, 5));
    assert_eq!(approved["stockout_id"], original["stockout_id"]);
    assert_ne!(approved["order_no"], original["order_no"]);
    let mut lookup = params(now, now, 0, 40);
    lookup.push((
        "src_order_no".into(),
        original["src_order_no"].as_str().unwrap().into(),
    ));
    let page = client
        .query_page(Transport::Openapi2, STOCKOUTS, &lookup)
        .await
        .unwrap();
    assert_eq!(page.documents, vec![approved]);
}

/// The request of the official QimenCloud client: system parameters in the URL, business ones in a
/// POST form body, `sign_method=hmac-sha256` (its default) or `hmac`, signed over both parts. The
/// sandbox accepts what the real gateway accepts, not only the shape Ferry's client sends.
#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_accepts_the_official_clients_post_form_and_every_sign_method() {
    use hmac::{Hmac, KeyInit, Mac};
    use md5::{Digest, Md5};
    let sandbox = spawn_sandbox(300, |_| {}).await;
    let credentials = sandbox.credentials().clone();
    let (start, end) = window(&sandbox, 0, 3599);
    ferry_common::connector::install_crypto_provider();
    let http = reqwest::Client::new();
    let timestamp = beijing(jiff::Timestamp::now().as_second());
    for method in ["hmac-sha256", "hmac", "md5"] {
        let system: Vec<(String, String)> = [
            ("method", ORDERS),
            ("app_key", credentials.qimen_app_key.as_str()),
            ("target_app_key", "21363512"),
            ("sid", credentials.wdt_sid.as_str()),
            ("timestamp", timestamp.as_str()),
            ("format", "json"),
            ("v", "2.0"),
            ("sign_method", method),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let business = params(start, end, 0, 40);
        let mut all: Vec<&(String, String)> = system.iter().chain(&business).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let concat: String = all.iter().map(|(k, v)| format!("{k}{v}")).collect();
        let secret = credentials.qimen_app_secret.as_bytes();
        let digest: Vec<u8> = match method {
            "hmac-sha256" => {
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
                mac.update(concat.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            "hmac" => {
                let mut mac = Hmac::<Md5>::new_from_slice(secret).unwrap();
                mac.update(concat.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            _ => Md5::digest(format!(
                "{}{concat}{}",
                credentials.qimen_app_secret, credentials.qimen_app_secret
            ))
            .to_vec(),
        };
        let sign: String = digest.iter().map(|b| format!("{b:02X}")).collect();
        let mut url_params = system.clone();
        url_params.push(("sign".into(), sign.clone()));
        let post = |form: Vec<(String, String)>| {
            let request = http
                .post(sandbox.qimen_url())
                .query(&url_params)
                .form(&form);
            async move {
                let text = request.send().await.unwrap().text().await.unwrap();
                serde_json::from_str::<serde_json::Value>(&text).unwrap()
            }
        };
        let answer = post(business.clone()).await;
        assert_eq!(answer["response"]["errorcode"], 0, "{method}: {answer}");
        assert!(
            answer["response"]["total_count"].as_u64().unwrap() > 0,
            "{method}"
        );
        // The same request with the form tampered with is refused: the form is signed too.
        let mut tampered = business.clone();
        tampered[2].1 = "1".into();
        let refused = post(tampered).await;
        assert_eq!(refused["response"]["code"], "25", "{method}: {refused}");
    }
}
