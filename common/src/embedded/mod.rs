//! The embedded default: cursors, sync records and page queues in one SQLite file, so the engine
//! runs on one machine with no AWS. Every change is a transaction in WAL mode: a killed process loses
//! nothing it had committed, and a restarted one carries on from the file.
//!
//! SQLite rather than redb: records are listed and counted by state and day (status, reconcile),
//! which is SQL's daily bread and would be hand-built indexes over a key-value store; and an operator
//! can open the file with the `sqlite3` shell to see exactly what Ferry knows.

mod queue;
mod runtime;
mod store;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::engine::ports::StoreError;

pub use queue::EmbeddedQueue;
pub use runtime::{
    PushConfig, Runtime, RuntimeError, SchemePlan, SchemeRuntime, SchemeSummary, Settings, Tally,
};

pub use crate::engine::DEFAULT_MAX_RECEIVES;

/// One SQLite database holding every store and queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    db: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// Record writes waiting for their group's transaction (`store.rs`).
    puts: Arc<Mutex<PendingPuts>>,
}

/// Record writes gathered for one transaction, each with the channel its answer goes back on.
#[derive(Debug, Default)]
struct PendingPuts {
    waiting: Vec<(
        crate::engine::record::SyncRecord,
        tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
    )>,
    /// A put is gathering the others (its transaction has not started).
    gathering: bool,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cursors (
    scheme      TEXT PRIMARY KEY,
    position    INTEGER,
    holder      TEXT,
    lease_until INTEGER,
    updated_at  INTEGER
);
CREATE TABLE IF NOT EXISTS records (
    scheme      TEXT NOT NULL,
    key         TEXT NOT NULL,
    state       TEXT NOT NULL,
    hash        TEXT NOT NULL,
    version     TEXT NOT NULL,
    number      TEXT NOT NULL,
    target_id   TEXT,
    unsure      TEXT,
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    claim_until INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    lookup      TEXT NOT NULL DEFAULT '',
    lines       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (scheme, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_state ON records (scheme, state, updated_at);
CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,
    dead_at       INTEGER
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, dead_at, visible_at);
CREATE INDEX IF NOT EXISTS messages_receipt ON messages (receipt);
CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    scheme    TEXT NOT NULL,
    key       TEXT NOT NULL,
    at        INTEGER NOT NULL,
    what      TEXT NOT NULL,
    detail    TEXT NOT NULL,
    target_id TEXT,
    body      TEXT
);
CREATE INDEX IF NOT EXISTS events_by_document ON events (scheme, key, id);
";

impl EmbeddedStore {
    /// Opens (or creates) the database at `path`, creating its folder.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let fail = |e: &dyn std::fmt::Display| {
            StoreError::new(format!("open store {}", path.display()), e)
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let db = Connection::open(path).map_err(|e| fail(&e))?;
        // WAL: readers (ferry status) never block the engine. synchronous=NORMAL is durable against a
        // killed process (the WAL is written before commit returns); only a power cut could cost
        // the last transactions, which the queue's redelivery and the lookback re-read recover.
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(|e| fail(&e))?;
        db.execute_batch(SCHEMA).map_err(|e| fail(&e))?;
        // Stores made before records kept a look-up value (empty: such records are replayed by
        // window rather than by key) or the target's line ids (empty: asked of the target before
        // the next update) gain the column.
        // Stores made before events kept the body a write sent gain that column too.
        for (table, column, definition) in [
            ("records", "lookup", "lookup TEXT NOT NULL DEFAULT ''"),
            ("records", "lines", "lines TEXT NOT NULL DEFAULT ''"),
            ("events", "body", "body TEXT"),
        ] {
            let present: bool = db
                .query_row(
                    "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
                    [table, column],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(|e| fail(&e))?
                > 0;
            if !present {
                db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {definition}"))
                    .map_err(|e| fail(&e))?;
            }
        }
        Ok(EmbeddedStore {
            db: Arc::new(Mutex::new(db)),
            path: path.to_owned(),
            puts: Arc::default(),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The page queue `name` (one per scheme), dead-lettering after `max_receives` deliveries.
    pub fn queue(&self, name: &str, max_receives: u32) -> EmbeddedQueue {
        EmbeddedQueue::new(self.clone(), name, max_receives)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending_puts(&self) -> MutexGuard<'_, PendingPuts> {
        self.puts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn millis(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn from_millis(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
