//! Ferry on AWS, over real HTTP against moto server and the sandbox: the DynamoDB and SQS adapters
//! (conditional-write races, lease expiry, history, batching, dead-letter redrive), the Lambda
//! handlers with the event JSON kept in tests/events, and the whole scheduled-poll → SQS → push
//! path until the queues are empty, with and without the fault mix.

use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use ferry_common::aws::DynamoStore;
use ferry_common::aws::sqs::{SqsQueue, batches};
use ferry_common::engine::{
    CursorStore, Event, HistoryLog, PageQueue, RecordQueries, RecordState, RecordStore, SyncRecord,
};
use ferry_poll::PollRequest;
use ferry_sandbox::{Endpoint, Fault, Kind, Sandbox};
use ferry_tests::aws::{AwsWorld, context, drain, invoke_poll, queue_pair, sdk, take_all, unique};
use ferry_tests::spawn_sandbox;
use jiff::{SignedDuration, Timestamp};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use ferry_tests::event;

async fn store() -> DynamoStore {
    let sdk = sdk().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("records");
    ferry_common::aws::dynamo::create_table(&client, &table)
        .await
        .unwrap();
    DynamoStore::new(client, table)
}

/// Now, to the millisecond the stores keep.
fn now_ms() -> Timestamp {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap()
}

fn record(key: &str, state: RecordState, at: Timestamp) -> SyncRecord {
    let mut r = SyncRecord::new("s", key, at);
    r.state = state;
    r.hash = format!("h-{key}");
    r.version = "2026-11-01 10:00:00".into();
    r.number = format!("JY{key}");
    r.lookup = format!("T{key}");
    r
}

// ---------------------------------------------------------------------------------------------
// DynamoDB

#[tokio::test]
async fn dynamo_records_are_compare_and_swap_and_only_one_racer_wins() {
    let store = self::store().await;
    let now = now_ms();
    let fresh = record("1", RecordState::InProgress, now);
    // Eight pushers create the same record at once: exactly one succeeds.
    let wins = futures_util::future::join_all((0..8).map(|_| store.put(&fresh))).await;
    assert_eq!(wins.iter().filter(|w| *w.as_ref().unwrap()).count(), 1);
    let stored = store.record("s", "1").await.unwrap().expect("stored");
    assert_eq!(stored.revision, 1);
    assert_eq!(
        SyncRecord {
            revision: 0,
            ..stored.clone()
        },
        fresh,
        "every field comes back as written"
    );
    // Eight update from the same revision: one wins, the others see they lost.
    let mut next = stored.clone();
    next.state = RecordState::Synced;
    next.target_id = Some("B1".into());
    next.updated_at = now + SignedDuration::from_secs(1);
    let wins = futures_util::future::join_all((0..8).map(|_| store.put(&next))).await;
    assert_eq!(wins.iter().filter(|w| *w.as_ref().unwrap()).count(), 1);
    // A stale writer (revision 1 again) is refused.
    assert!(!store.put(&next).await.unwrap());
    let synced = store.record("s", "1").await.unwrap().unwrap();
    assert_eq!(
        (synced.revision, synced.state, synced.target_id.as_deref()),
        (2, RecordState::Synced, Some("B1"))
    );
    assert!(store.record("s", "nope").await.unwrap().is_none());
}

#[tokio::test]
async fn dynamo_lists_counts_and_finds_records() {
    let store = self::store().await;
    let t0 = now_ms();
    for i in 0..12 {
        let state = if i % 3 == 0 {
            RecordState::Failed
        } else {
            RecordState::Synced
        };
        let r = record(&i.to_string(), state, t0 + SignedDuration::from_secs(i));
        assert!(store.put(&r).await.unwrap());
    }
    let failed = store
        .list("s", Some(RecordState::Failed), 100)
        .await
        .unwrap();
    let keys: Vec<&str> = failed.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["0", "3", "6", "9"], "oldest change first");
    let recent = store.recent("s", RecordState::Failed, 2).await.unwrap();
    let keys: Vec<&str> = recent.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["9", "6"], "newest first");
    let all = store.list("s", None, 5).await.unwrap();
    let keys: Vec<&str> = all.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["0", "1", "2", "3", "4"]);
    assert_eq!(
        store.counts("s").await.unwrap(),
        vec![(RecordState::Synced, 8), (RecordState::Failed, 4)]
    );
    assert!(store.counts("other").await.unwrap().is_empty());
    // By the target's number and by the source's look-up value.
    assert_eq!(store.find_by_number("s", "JY7").await.unwrap()[0].key, "7");
    assert_eq!(store.find_by_number("s", "T11").await.unwrap()[0].key, "11");
    assert!(store.find_by_number("s", "JY99").await.unwrap().is_empty());
    // A state change moves the record between the by-state partitions.
    let mut moved = store.record("s", "3").await.unwrap().unwrap();
    moved.state = RecordState::Synced;
    assert!(store.put(&moved).await.unwrap());
    assert_eq!(
        store.counts("s").await.unwrap(),
        vec![(RecordState::Synced, 9), (RecordState::Failed, 3)]
    );
}

#[tokio::test]
async fn dynamo_synced_records_and_history_carry_a_ttl_and_work_in_progress_does_not() {
    let store = self::store().await;
    let now = Timestamp::now();
    store
        .put(&record("done", RecordState::Synced, now))
        .await
        .unwrap();
    store
        .put(&record("open", RecordState::Retrying, now))
        .await
        .unwrap();
    let client = aws_sdk_dynamodb::Client::new(&sdk().await);
    let item = |key: &'static str| {
        let client = client.clone();
        let table = store.table().to_owned();
        async move {
            client
                .get_item()
                .table_name(table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("doc#s#{key}")),
                )
                .key(
                    "sk",
                    aws_sdk_dynamodb::types::AttributeValue::S("record".into()),
                )
                .send()
                .await
                .unwrap()
                .item()
                .cloned()
                .unwrap()
        }
    };
    let expires: i64 = item("done").await["expires_at"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    let days = (expires - now.as_second()) / 86_400;
    assert_eq!(days, 400, "synced records are kept 400 days");
    assert!(!item("open").await.contains_key("expires_at"));
}

#[tokio::test]
async fn dynamo_cursor_lease_expires_and_a_lost_lease_cannot_move_the_cursor() {
    let store = self::store().await;
    let t0 = now_ms();
    let later = |s: i64| t0 + SignedDuration::from_secs(s);
    assert_eq!(store.cursor("s").await.unwrap().position, None);
    assert!(store.take_lease("s", "a", t0, later(60)).await.unwrap());
    assert!(
        store
            .take_lease("s", "a", later(1), later(61))
            .await
            .unwrap(),
        "renewal"
    );
    assert!(
        !store
            .take_lease("s", "b", later(2), later(62))
            .await
            .unwrap()
    );
    assert!(
        store
            .advance("s", "a", later(-3600), later(3))
            .await
            .unwrap()
    );
    // a's lease runs out (at 61 s): b takes over, and a can no longer move the cursor.
    assert!(
        store
            .take_lease("s", "b", later(62), later(122))
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance("s", "a", later(-60), later(63))
            .await
            .unwrap()
    );
    store.release("s", "a").await.unwrap();
    let cursor = store.cursor("s").await.unwrap();
    assert_eq!(
        cursor.holder.as_deref(),
        Some("b"),
        "a's release is a no-op"
    );
    assert_eq!(cursor.position, Some(later(-3600)));
    store.release("s", "b").await.unwrap();
    assert!(
        store
            .take_lease("s", "c", later(70), later(130))
            .await
            .unwrap()
    );
    // Racing for a free lease: one winner.
    let free = self::store().await;
    let wins = futures_util::future::join_all(
        (0..6).map(|i| free.take_lease("s", ["p", "q", "r", "s", "t", "u"][i], t0, later(60))),
    )
    .await;
    assert_eq!(wins.iter().filter(|w| *w.as_ref().unwrap()).count(), 1);
}

#[tokio::test]
async fn dynamo_history_keeps_order_across_batch_writes() {
    let store = self::store().await;
    let t0 = now_ms();
    let events: Vec<Event> = (0..40)
        .map(|i| Event {
            scheme: "s".into(),
            key: if i % 4 == 0 { "other" } else { "k" }.into(),
            // Several events share a millisecond: their order within the append must hold.
            at: t0 + SignedDuration::from_millis(i / 3),
            what: format!("e{i}"),
            detail: format!("detail {i}"),
            target_id: (i == 5).then(|| "B5".to_owned()),
            body: None,
        })
        .collect();
    store.append(events.clone()).await.unwrap();
    let history = store.history("s", "k", 100).await.unwrap();
    let expected: Vec<&Event> = events.iter().filter(|e| e.key == "k").collect();
    assert_eq!(history.iter().collect::<Vec<_>>(), expected);
    let last = store.history("s", "k", 3).await.unwrap();
    let whats: Vec<&str> = last.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(whats, ["e37", "e38", "e39"], "the latest, oldest first");
    assert!(store.history("s", "none", 10).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// SQS

#[test]
fn sqs_batches_hold_at_most_ten_messages_and_the_size_limit() {
    let bodies: Vec<String> = (0..23)
        .map(|i| "x".repeat(if i < 5 { 100_000 } else { 10 }))
        .collect();
    let cut = batches(&bodies, 256 * 1024);
    for batch in &cut {
        assert!(batch.len() <= 10);
        assert!(batch.iter().map(String::len).sum::<usize>() <= 256 * 1024);
    }
    assert_eq!(
        cut.iter().map(|b| b.len()).collect::<Vec<_>>(),
        [2, 2, 10, 9]
    );
    assert_eq!(cut.concat(), bodies, "nothing lost or reordered");
}

#[tokio::test]
async fn sqs_sends_in_batches_with_attributes_and_redrives_dead_letters() {
    let sdk = sdk().await;
    let pair = queue_pair(&sdk, &unique("pages"), 2).await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let queue = SqsQueue::discover(client.clone(), pair.url.clone())
        .await
        .unwrap();
    assert_eq!(queue.dead_letter_url(), Some(pair.dead_letter_url.as_str()));
    let big = "y".repeat(120_000);
    let bodies: Vec<String> = (0..25)
        .map(|i| {
            json!({
                "scheme": "wdt-trades-to-kingdee",
                "page": i,
                "part": 0,
                "replay": i == 3,
                "documents": [{ "pad": if i < 4 { big.as_str() } else { "" } }],
            })
            .to_string()
        })
        .collect();
    queue.send(bodies.clone()).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 25);
    let mut seen = Vec::new();
    for m in take_all(&client, &pair.url, 60).await {
        let attributes = m.message_attributes().unwrap();
        let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
        assert_eq!(
            attributes["scheme"].string_value(),
            Some("wdt-trades-to-kingdee")
        );
        assert_eq!(
            attributes["page"].string_value().unwrap(),
            body["page"].to_string()
        );
        assert_eq!(attributes.contains_key("replay"), body["page"] == 3);
        seen.push(m.body().unwrap().to_owned());
    }
    seen.sort();
    let mut sent = bodies.clone();
    sent.sort();
    assert_eq!(seen, sent, "every body arrived once");

    // A message received more than maxReceiveCount (2) times goes to the dead-letter queue.
    queue.send(vec![bodies[9].clone()]).await.unwrap();
    for round in 1..=2 {
        let got = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, round);
    }
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(queue.dead_letter_count().await.unwrap(), 1);
    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, bodies[9]);
    // The operator's redrive puts it back, for a fresh round of deliveries.
    assert_eq!(queue.redrive().await.unwrap(), 1);
    assert_eq!(queue.dead_letter_count().await.unwrap(), 0);
    let back = queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body, bodies[9]);
    // A retry's delay hides it; delete removes it for good.
    queue
        .retry_after(&back[0].receipt, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let again = queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.len(), 1);
    queue.delete(&again[0].receipt).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Handlers with the event JSON of tests/events

#[test]
fn poll_reads_the_scheduled_and_on_demand_events() {
    assert_eq!(
        PollRequest::parse(&event("scheduled-input.json")).unwrap(),
        PollRequest::Scheduled {
            scheme: "wdt-trades-to-kingdee".into()
        }
    );
    assert_eq!(
        PollRequest::parse(&event("scheduled-event.json")).unwrap(),
        PollRequest::Scheduled {
            scheme: "wdt-stockouts-to-yonyou".into()
        }
    );
    // The template's one schedule: an event naming no scheme is a tick of every scheme.
    assert_eq!(
        PollRequest::parse(&event("scheduled-event-without-scheme.json")).unwrap(),
        PollRequest::Tick
    );
    match PollRequest::parse(&event("on-demand-window.json")).unwrap() {
        PollRequest::Window { scheme, window } => {
            assert_eq!(scheme, "wdt-trades-to-kingdee");
            assert_eq!(
                (window.start_text(), window.end_text()),
                ("2026-11-01 00:00:00".into(), "2026-11-02 12:00:00".into())
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        PollRequest::parse(&event("on-demand-keys.json")).unwrap(),
        PollRequest::Keys {
            scheme: "wdt-stockouts-to-yonyou".into(),
            keys: vec!["CK2026110100001".into(), "CK2026110100002".into()],
            replay: true,
        }
    );
    for case in event("malformed-poll-payloads.json").as_array().unwrap() {
        let err = PollRequest::parse(&case["payload"]).unwrap_err();
        let expected = case["error"].as_str().unwrap();
        assert!(err.contains(expected), "{} → {err}", case["payload"]);
    }
}

#[tokio::test]
async fn handlers_refuse_malformed_events_and_report_only_retryable_messages() {
    let sandbox = spawn_sandbox(5, |_| {}).await;
    let world = AwsWorld::new(&sandbox, 5).await;
    let deployment = world.deployment(&sandbox).await;
    // The poll handler answers a bad payload with an error naming the problem, and a scheme this
    // deployment does not run with the ones it does.
    let err = invoke_poll(
        &deployment,
        json!({ "scheme": "x", "keys": [] }),
        Duration::from_secs(30),
    )
    .await
    .unwrap_err();
    assert!(err.contains("keys is empty"), "{err}");
    let err = invoke_poll(
        &deployment,
        json!({ "scheme": "nope" }),
        Duration::from_secs(30),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("unknown scheme 'nope'") && err.contains("wdt-trades-to-kingdee"),
        "{err}"
    );
    // The push handler: an unreadable body is recorded and dropped (retrying cannot fix it); a
    // message for a scheme the deployment does not run is retried (towards the dead-letter
    // queue, where an operator sees it); a document without its key is a failed record.
    let batch: SqsEvent = serde_json::from_value(event("sqs-batch-malformed.json")).unwrap();
    let response = ferry_push::handle(
        &deployment,
        LambdaEvent::new(batch, context(Duration::from_secs(30))),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [{ "itemIdentifier": "6f0c9c9e-1b4a-4b43-9f0f-6c1c0e6f7a02" }] })
    );
    // A batch that went well answers an empty list (not a missing one, not an empty id).
    let empty: SqsEvent = serde_json::from_value(json!({ "Records": [] })).unwrap();
    let response = ferry_push::handle(
        &deployment,
        LambdaEvent::new(empty, context(Duration::from_secs(30))),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [] })
    );
}

// ---------------------------------------------------------------------------------------------
// End to end

fn verify_exactly_once(sandbox: &Sandbox, deployment: &ferry_common::aws::Deployment) {
    let schemes = ferry_common::bundled::load_all(&ferry_sandbox::demo_variable).unwrap();
    assert_eq!(deployment.scheme_ids().len(), 2);
    for scheme in &schemes {
        let v = sandbox.verify(scheme);
        println!("{}: {v:?}", scheme.id());
        assert!(v.expected > 0);
        assert!(v.is_clean(), "{}: {v:?}", scheme.id());
        assert_eq!(
            v.found + v.refused + v.unmappable + v.oversize,
            v.expected,
            "{v:?}"
        );
    }
}

#[tokio::test]
async fn end_to_end_on_aws_every_document_arrives_exactly_once() {
    let sandbox = spawn_sandbox(150, |_| {}).await;
    let world = AwsWorld::new(&sandbox, 5).await;
    let deployment = world.deployment(&sandbox).await;
    // The schedules' two shapes: the target input, and an EventBridge event naming the scheme.
    for payload in [event("scheduled-input.json"), event("scheduled-event.json")] {
        let answer = invoke_poll(&deployment, payload, Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(answer["report"]["stop"], "done", "{answer}");
        assert!(
            answer["report"]["documents"].as_u64().unwrap() >= 150,
            "{answer}"
        );
    }
    let tally = drain(&world, &deployment, 0.0, Duration::from_secs(120)).await;
    println!("{tally:?}");
    assert_eq!(tally.reported_failed, 0);
    verify_exactly_once(&sandbox, &deployment);
    let store = &deployment.store;
    let counts = store.counts("wdt-trades-to-kingdee").await.unwrap();
    assert_eq!(counts, vec![(RecordState::Synced, 150)]);
    // Each document's history says where it came from and what the target answered.
    let one = store.list("wdt-trades-to-kingdee", None, 1).await.unwrap();
    let history = store
        .history("wdt-trades-to-kingdee", &one[0].key, 10)
        .await
        .unwrap();
    let whats: Vec<&str> = history.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(whats, ["fetched", "created"]);
    // The next scheduled run finds nothing new; a new execution environment (cold start) too.
    let again = world.deployment(&sandbox).await;
    invoke_poll(
        &again,
        event("scheduled-input.json"),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let created = sandbox.kingdee_bills().len();
    drain(&world, &again, 0.0, Duration::from_secs(60)).await;
    assert_eq!(sandbox.kingdee_bills().len(), created);
    verify_exactly_once(&sandbox, &again);
}

#[tokio::test]
async fn end_to_end_poll_stops_before_its_deadline_and_the_next_run_resumes() {
    let sandbox = spawn_sandbox(120, |_| {}).await;
    // Every source call takes 300 ms: a short budget ends after a call or two.
    sandbox
        .faults()
        .set_rate(Endpoint::WdtQuery, Fault::Slow, 1.0);
    let world = AwsWorld::new(&sandbox, 5).await;
    let deployment = world.deployment(&sandbox).await;
    // Ten seconds, or a tenth of a shorter budget, are kept back for the last send and the cursor:
    // 3 s leave time for a few windows only (each takes a 300 ms call).
    let short = invoke_poll(
        &deployment,
        event("scheduled-input.json"),
        Duration::from_millis(3_000),
    )
    .await
    .unwrap();
    assert_eq!(short["report"]["stop"], "budget", "{short}");
    let first = short["report"]["cursor"].as_str().unwrap().to_owned();
    let full = invoke_poll(
        &deployment,
        event("scheduled-input.json"),
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    assert_eq!(full["report"]["stop"], "done", "{full}");
    assert!(full["report"]["cursor"].as_str().unwrap() > first.as_str());
    sandbox
        .faults()
        .set_rate(Endpoint::WdtQuery, Fault::Slow, 0.0);
    invoke_poll(
        &deployment,
        event("scheduled-event.json"),
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    drain(&world, &deployment, 0.0, Duration::from_secs(120)).await;
    verify_exactly_once(&sandbox, &deployment);
}

#[tokio::test]
async fn end_to_end_on_aws_under_the_fault_mix() {
    let sandbox = spawn_sandbox(200, |c| {
        ferry_sandbox::fault_mix::sandbox_config(&ferry_sandbox::fault_mix::Injury::ALL, c)
    })
    .await;
    let faults = sandbox.faults();
    for endpoint in [
        Endpoint::WdtQuery,
        Endpoint::KingdeeSave,
        Endpoint::KingdeeLookup,
        Endpoint::YonyouSave,
    ] {
        faults.set_rate(endpoint, Fault::ServerError, 0.10);
        faults.set_rate(endpoint, Fault::Timeout, 0.03);
        faults.set_rate(endpoint, Fault::Throttle, 0.03);
    }
    for endpoint in [Endpoint::KingdeeSave, Endpoint::YonyouSave] {
        faults.set_rate(endpoint, Fault::CommitThenLost, 0.02);
        faults.set_rate(endpoint, Fault::TokenExpiry, 0.01);
    }
    let world = AwsWorld::new(&sandbox, 30).await;
    let deployment = world.deployment(&sandbox).await;
    let mut duplicated = 0;
    for round in 0..2 {
        if round == 1 {
            // Between the rounds the source moves on: synced documents are edited, and stock-outs
            // are approved again under a new number (three minutes ago: past the schemes' settle
            // delay, inside their lookback).
            let now = Timestamp::now().as_second() - 180;
            sandbox.source(|s| {
                for kind in [Kind::Order, Kind::Stockout] {
                    for i in [3, 50, 120, 190] {
                        s.modify(kind, i, now);
                    }
                }
                s.reapprove(7, now);
            });
        }
        for payload in [event("scheduled-input.json"), event("scheduled-event.json")] {
            // A poll failing on the source is resumed by the next one.
            for _ in 0..5 {
                let answer =
                    invoke_poll(&deployment, payload.clone(), Duration::from_secs(120)).await;
                if answer.is_ok_and(|a| a["report"]["stop"] == "done") {
                    break;
                }
            }
        }
        // A quarter of the handled messages come back once more (at-least-once delivery).
        let tally = drain(&world, &deployment, 0.25, Duration::from_secs(240)).await;
        println!("round {round}: {tally:?}");
        assert!(tally.messages > 0);
        duplicated += tally.duplicated;
    }
    assert!(duplicated > 0);
    // One last poll on a quiet source finds nothing left behind.
    for payload in [event("scheduled-input.json"), event("scheduled-event.json")] {
        let mut done = false;
        for _ in 0..5 {
            if invoke_poll(&deployment, payload.clone(), Duration::from_secs(120))
                .await
                .is_ok_and(|a| a["report"]["stop"] == "done")
            {
                done = true;
                break;
            }
        }
        assert!(done, "a poll got through");
    }
    drain(&world, &deployment, 0.0, Duration::from_secs(240)).await;
    let injected: u64 = [
        Fault::ServerError,
        Fault::Timeout,
        Fault::Throttle,
        Fault::CommitThenLost,
        Fault::TokenExpiry,
    ]
    .iter()
    .map(|f| faults.count(*f))
    .sum();
    println!("faults injected: {injected}");
    assert!(injected > 20, "{injected}");
    assert_eq!(
        deployment_dead_letters(&deployment).await,
        0,
        "nothing dead-lettered"
    );
    verify_exactly_once(&sandbox, &deployment);
    // Refused documents are failed records with the target's reason; nothing is left open.
    for id in deployment.scheme_ids() {
        let store = &deployment.store;
        for state in [RecordState::InProgress, RecordState::Retrying] {
            assert!(
                store.list(id, Some(state), 10).await.unwrap().is_empty(),
                "{id} {state:?}"
            );
        }
        for failed in store
            .list(id, Some(RecordState::Failed), 100)
            .await
            .unwrap()
        {
            assert!(failed.last_error.is_some(), "{failed:?}");
        }
    }
}

async fn deployment_dead_letters(deployment: &ferry_common::aws::Deployment) -> u64 {
    let mut n = 0;
    for queue in deployment.queues().values() {
        n += queue.dead_letter_count().await.unwrap();
    }
    n
}

// ---------------------------------------------------------------------------------------------
// The CLI against the deployment

#[tokio::test]
async fn operator_commands_work_against_the_deployment_and_resync_invokes_the_poll_function() {
    let sandbox = spawn_sandbox(60, |_| {}).await;
    let world = AwsWorld::new(&sandbox, 5).await;
    let deployment = std::sync::Arc::new(world.deployment(&sandbox).await);
    for payload in [event("scheduled-input.json"), event("scheduled-event.json")] {
        invoke_poll(&deployment, payload, Duration::from_secs(120))
            .await
            .unwrap();
    }
    drain(&world, &deployment, 0.0, Duration::from_secs(120)).await;
    let lambda = ferry_tests::aws::spawn_poll_function(deployment.clone()).await;
    let dir = ferry_tests::TempDir::new("aws-cli");
    let config = dir.path().join("deployment.yaml");
    let queues = &world.queues;
    std::fs::write(
        &config,
        format!(
            "aws:\n  table: {}\n  queues:\n    kingdee: {}\n    yonyou: {}\n  secret: {}\n  poll_function: ferry-poll\n  region: us-east-1\n  endpoint: {}\n  lambda_endpoint: {lambda}\n  scheme_dir: {}\n  rate_limits:\n    kingdee: 50000\n    yonyou: 50000\n",
            world.table,
            queues["kingdee"].url,
            queues["yonyou"].url,
            world.secret,
            ferry_tests::aws::moto(),
            ferry_tests::workspace().join("schemes").display(),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    // What each function records when its environment starts.
    deployment.record_schemes("poll").await;
    deployment.record_schemes("push").await;
    let ferry = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--config", config.as_str()]);
        let all: Vec<String> = all.iter().map(|a| (*a).to_owned()).collect();
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            ferry_tests::ferry_async(&refs).await
        }
    };

    // status: records by state from the by-state index, queues and dead letters from SQS.
    let status = ferry(&["status", "--json"]).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    for scheme in status["schemes"].as_array().unwrap() {
        // The version of the files the functions run, the same as the operator's folder.
        let version = &deployment
            .schemes()
            .iter()
            .find(|s| s.id() == scheme["scheme"])
            .unwrap()
            .version;
        assert_eq!(scheme["files"], version.as_str(), "{scheme}");
        assert_eq!(scheme["records"]["synced"], 60, "{scheme}");
        assert_eq!(scheme["queued"], 0);
        assert_eq!(scheme["dead_letters"], 0);
        assert!(scheme["cursor"].is_string());
    }
    // record: by key and by the target's number, with the history from the document's partition.
    let some = deployment
        .store
        .list("wdt-trades-to-kingdee", None, 1)
        .await
        .unwrap()
        .remove(0);
    for name in [some.key.as_str(), some.number.as_str()] {
        let shown = ferry(&["record", "wdt-trades-to-kingdee", name]).await;
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert!(shown.stdout.contains(&some.key), "{}", shown.stdout);
        assert!(shown.stdout.contains("created"), "{}", shown.stdout);
    }
    // resync by keys: the CLI invokes the poll function's on-demand path; the push function (here
    // the emulated mapping) finds the content unchanged: nothing is written twice.
    let bills = sandbox.kingdee_bills().len();
    let resync = ferry(&["resync", "wdt-trades-to-kingdee", "--keys", &some.lookup]).await;
    assert_eq!(resync.code, 0, "{}", resync.stderr);
    assert!(
        resync
            .stdout
            .contains("1 queued; the push function delivers them"),
        "{}",
        resync.stdout
    );
    let tally = drain(&world, &deployment, 0.0, Duration::from_secs(60)).await;
    assert_eq!(tally.messages, 1);
    assert_eq!(sandbox.kingdee_bills().len(), bills);
    let history = deployment
        .store
        .history("wdt-trades-to-kingdee", &some.key, 10)
        .await
        .unwrap();
    assert_eq!(history.last().unwrap().what, "unchanged");
    // A window too: the poll function answers with what it queued.
    let window = ferry(&[
        "resync",
        "wdt-stockouts-to-yonyou",
        "--from",
        "2020-01-01",
        "--to",
        "2020-01-02",
        "--json",
    ])
    .await;
    assert_eq!(window.code, 0, "{}", window.stderr);
    let answer: Value = serde_json::from_str(&window.stdout).unwrap();
    assert_eq!(answer["queued"], 0);
    assert_eq!(answer["poll"]["windows"].as_u64().unwrap(), 2);
    // The poll function's refusal reaches the operator with its message.
    let refused = ferry(&["resync", "no-such-scheme", "--keys", "T1"]).await;
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("unknown scheme 'no-such-scheme'"),
        "{}",
        refused.stderr
    );
    // replay --dead-letters: moves the dead letters back to the queue.
    let sqs = world.sqs();
    sqs.send_message()
        .queue_url(&queues["yonyou"].dead_letter_url)
        .message_body(r#"{"scheme":"wdt-stockouts-to-yonyou","page":0,"part":0,"documents":[]}"#)
        .send()
        .await
        .unwrap();
    let status = ferry(&["status", "--json"]).await;
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let stockouts = status["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scheme"] == "wdt-stockouts-to-yonyou")
        .unwrap();
    assert_eq!(stockouts["dead_letters"], 1, "{status}");
    let replay = ferry(&["replay", "wdt-stockouts-to-yonyou", "--dead-letters"]).await;
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert!(replay.stdout.contains("1 queued"), "{}", replay.stdout);
    assert_eq!(
        ferry_tests::aws::depth(&sqs, &queues["yonyou"].dead_letter_url).await,
        0
    );
    assert_eq!(
        ferry_tests::aws::depth(&sqs, &queues["yonyou"].url).await,
        1
    );

    // reconcile: the source scanned through the secret's connectors, the records read from the
    // table, the Kingdee bills looked up in the target. Everything agrees first...
    let first_day = sandbox
        .source(|s| s.first_time())
        .get(..10)
        .unwrap()
        .to_owned();
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
        .to_string();
    let reconcile = |scheme: &'static str| {
        let (first_day, today) = (first_day.clone(), today.clone());
        let ferry = &ferry;
        async move {
            let out = ferry(&[
                "reconcile",
                scheme,
                "--from",
                &first_day,
                "--to",
                &today,
                "--json",
            ])
            .await;
            assert_eq!(out.code, 0, "{}", out.stderr);
            serde_json::from_str::<Value>(&out.stdout).unwrap()
        }
    };
    let sum = |answer: &Value, field: &str| {
        answer["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d[field].as_u64().unwrap())
            .sum::<u64>()
    };
    for scheme in ["wdt-trades-to-kingdee", "wdt-stockouts-to-yonyou"] {
        let answer = reconcile(scheme).await;
        for field in ["source", "synced", "in_target"] {
            assert_eq!(sum(&answer, field), 60, "{field} of {answer}");
        }
        assert_eq!(answer["differences"], json!([]), "{answer}");
    }
    // ...then an order committed late (behind the cursor, never fetched) and a synced order
    // edited in the source are the two differences, and a bill deleted from the target is missed.
    let now = Timestamp::now().as_second();
    let (late, edited) = sandbox.source(|s| {
        let late = s.commit_late(Kind::Order, 3_600, now);
        s.modify(Kind::Order, 3, now - 5);
        (s.key(Kind::Order, late), s.key(Kind::Order, 3))
    });
    let deleted = sandbox.source(|s| s.key(Kind::Order, 5));
    let deleted_number = deployment
        .store
        .record("wdt-trades-to-kingdee", &deleted)
        .await
        .unwrap()
        .unwrap()
        .number;
    assert!(sandbox.delete_kingdee_bill(&deleted_number));
    let answer = reconcile("wdt-trades-to-kingdee").await;
    assert_eq!(sum(&answer, "source"), 61);
    assert_eq!(sum(&answer, "synced"), 60);
    assert_eq!(sum(&answer, "pending"), 1);
    assert_eq!(sum(&answer, "in_target"), 59);
    let differences: Vec<(String, String)> = answer["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["key"].as_str().unwrap().to_owned(),
                d["issue"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(differences.len(), 3, "{differences:?}");
    assert!(
        differences
            .iter()
            .any(|(key, issue)| key == &late && issue.contains("never fetched")),
        "{differences:?}"
    );
    assert!(
        differences.iter().any(
            |(key, issue)| key == &edited && issue.contains("changed in the source after sync")
        ),
        "{differences:?}"
    );
    assert!(
        differences.iter().any(|(key, issue)| key == &deleted
            && issue.contains("record says synced as")
            && issue.contains("the target has no such bill")),
        "{differences:?}"
    );
    let people = ferry(&[
        "reconcile",
        "wdt-trades-to-kingdee",
        "--from",
        &first_day,
        "--to",
        &today,
    ])
    .await;
    assert!(
        people.stdout.contains("total") && people.stdout.contains("3 differences"),
        "{}",
        people.stdout
    );
}
