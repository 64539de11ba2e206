//! Every adapter of every port against the same contract (`ferry_tests::contract`): the in-memory
//! adapters the engine's unit tests run on, the embedded default's SQLite, and DynamoDB and SQS on
//! moto. The fast tests' stand-ins cannot drift from the real stores unnoticed.

use ferry_common::aws::{DynamoStore, SqsQueue};
use ferry_common::embedded::EmbeddedStore;
use ferry_common::memory::{MemoryQueue, MemoryStore};
use ferry_tests::TempDir;
use ferry_tests::aws::{queue_pair, sdk, unique};
use ferry_tests::contract;

#[tokio::test]
async fn the_in_memory_adapters_keep_the_contract() {
    let store = MemoryStore::new();
    contract::cursor_store(&store, "s").await;
    contract::record_store(&store, "s").await;
    contract::history_log(&store, "s").await;
    contract::page_queue(&MemoryQueue::new(2)).await;
}

#[tokio::test]
async fn the_embedded_store_and_queue_keep_the_contract() {
    let dir = TempDir::new("contract-embedded");
    let store = EmbeddedStore::open(&dir.path().join("ferry.db")).unwrap();
    contract::cursor_store(&store, "s").await;
    contract::record_store(&store, "s").await;
    contract::history_log(&store, "s").await;
    contract::page_queue(&store.queue("s", 2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_and_sqs_keep_the_contract() {
    let sdk = sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("contract");
    ferry_common::aws::dynamo::create_table(&dynamo, &table)
        .await
        .unwrap();
    let store = DynamoStore::new(dynamo, table);
    contract::cursor_store(&store, "s").await;
    contract::record_store(&store, "s").await;
    contract::history_log(&store, "s").await;
    let pair = queue_pair(&sdk, &unique("contract"), 2).await;
    let queue = SqsQueue::discover(aws_sdk_sqs::Client::new(&sdk), pair.url)
        .await
        .unwrap();
    contract::page_queue(&queue).await;
}
