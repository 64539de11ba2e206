//! Cursors with leases and sync records on SQLite: every conditional write is one UPDATE whose
//! WHERE clause is the condition, so two processes on one file race safely.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::{EmbeddedStore, from_millis, millis};
use crate::engine::ports::{
    Cursor, CursorStore, Event, HistoryLog, RecordQueries, RecordStore, StoreError,
};
use crate::engine::record::{RecordState, SyncRecord};

impl CursorStore for EmbeddedStore {
    async fn cursor(&self, scheme: &str) -> Result<Cursor, StoreError> {
        let db = self.lock();
        let row = db
            .query_row(
                "SELECT position, holder, lease_until, updated_at FROM cursors WHERE scheme = ?1",
                params![scheme],
                |r| {
                    Ok(Cursor {
                        position: r.get::<_, Option<i64>>(0)?.map(from_millis),
                        holder: r.get(1)?,
                        lease_until: r.get::<_, Option<i64>>(2)?.map(from_millis),
                        updated_at: r.get::<_, Option<i64>>(3)?.map(from_millis),
                    })
                },
            )
            .optional()
            .map_err(|e| StoreError::new(format!("read cursor {scheme}"), e))?;
        Ok(row.unwrap_or_default())
    }

    async fn take_lease(
        &self,
        scheme: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let db = self.lock();
        let fail = |e| StoreError::new(format!("lease {scheme}"), e);
        db.execute(
            "INSERT OR IGNORE INTO cursors (scheme) VALUES (?1)",
            params![scheme],
        )
        .map_err(fail)?;
        let changed = db
            .execute(
                "UPDATE cursors SET holder = ?2, lease_until = ?4
                 WHERE scheme = ?1 AND (holder IS NULL OR holder = ?2 OR lease_until <= ?3)",
                params![scheme, holder, millis(now), millis(until)],
            )
            .map_err(fail)?;
        Ok(changed == 1)
    }

    async fn advance(
        &self,
        scheme: &str,
        holder: &str,
        position: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = self
            .lock()
            .execute(
                "UPDATE cursors SET position = ?3, updated_at = ?4
                 WHERE scheme = ?1 AND holder = ?2",
                params![scheme, holder, millis(position), millis(now)],
            )
            .map_err(|e| StoreError::new(format!("advance cursor {scheme}"), e))?;
        Ok(changed == 1)
    }

    async fn release(&self, scheme: &str, holder: &str) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE cursors SET holder = NULL, lease_until = NULL WHERE scheme = ?1 AND holder = ?2",
                params![scheme, holder],
            )
            .map_err(|e| StoreError::new(format!("release lease {scheme}"), e))?;
        Ok(())
    }
}

const RECORD_COLUMNS: &str =
    "scheme, key, state, hash, version, number, target_id, unsure, attempts,
    last_error, claim_until, created_at, updated_at, revision, lookup, lines";

fn record_of(r: &Row<'_>) -> rusqlite::Result<SyncRecord> {
    let state: String = r.get(2)?;
    Ok(SyncRecord {
        scheme: r.get(0)?,
        key: r.get(1)?,
        state: RecordState::parse(&state).unwrap_or(RecordState::Retrying),
        hash: r.get(3)?,
        version: r.get(4)?,
        number: r.get(5)?,
        target_id: r.get(6)?,
        unsure: r.get(7)?,
        attempts: r.get(8)?,
        last_error: r.get(9)?,
        claim_until: r.get::<_, Option<i64>>(10)?.map(from_millis),
        created_at: from_millis(r.get(11)?),
        updated_at: from_millis(r.get(12)?),
        revision: r.get::<_, i64>(13)? as u64,
        lookup: r.get(14)?,
        lines: crate::engine::record::lines_of(&r.get::<_, String>(15)?),
    })
}

impl RecordStore for EmbeddedStore {
    async fn record(&self, scheme: &str, key: &str) -> Result<Option<SyncRecord>, StoreError> {
        // (scheme, key) is the primary key: at most one row.
        Ok(self
            .select_records("scheme = ?1 AND key = ?2", params![scheme, key], || {
                format!("read record {scheme}/{key}")
            })?
            .pop())
    }

    async fn put(&self, r: &SyncRecord) -> Result<bool, StoreError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let gather = {
            let mut pending = self.pending_puts();
            pending.waiting.push((r.clone(), done));
            !std::mem::replace(&mut pending.gathering, true)
        };
        if gather {
            // Group commit: one turn of the scheduler lets the other documents in flight reach
            // their own writes, and all of them go in one transaction. Each put still returns only
            // once its row is committed, with its own compare-and-swap result; a transaction costs
            // the same few WAL pages whether it holds one row or ten. The guard writes them even
            // if this future is dropped at the yield, so no waiting put is left behind.
            let flush = FlushPuts(self);
            tokio::task::yield_now().await;
            drop(flush);
        }
        result.await.unwrap_or_else(|_| {
            Err(StoreError::new(
                format!("save record {}/{}", r.scheme, r.key),
                "the group commit ended without an answer",
            ))
        })
    }

    async fn list(
        &self,
        scheme: &str,
        state: Option<RecordState>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let operation = || format!("list records {scheme}");
        // Two statements, so the by-state one uses its index.
        match state {
            Some(state) => self.select_records(
                "scheme = ?1 AND state = ?2 ORDER BY updated_at LIMIT ?3",
                params![scheme, state.as_str(), limit],
                operation,
            ),
            None => self.select_records(
                "scheme = ?1 ORDER BY updated_at LIMIT ?2",
                params![scheme, limit],
                operation,
            ),
        }
    }
}

/// Writes the gathered puts when dropped: after the gathering put's yield, or if that put's future
/// is dropped first.
struct FlushPuts<'a>(&'a EmbeddedStore);

impl Drop for FlushPuts<'_> {
    fn drop(&mut self) {
        self.0.flush_puts();
    }
}

/// One record's compare-and-swap: an insert for a new record (revision 0), else an update of the
/// revision read. Whether the row changed is whether the put won.
fn put_row(db: &rusqlite::Connection, r: &SyncRecord) -> rusqlite::Result<bool> {
    let values = params![
        r.scheme,
        r.key,
        r.state.as_str(),
        r.hash,
        r.version,
        r.number,
        r.target_id,
        r.unsure,
        r.attempts,
        r.last_error,
        r.claim_until.map(millis),
        millis(r.created_at),
        millis(r.updated_at),
        r.revision as i64,
        r.lookup,
        crate::engine::record::lines_text(&r.lines),
    ];
    let changed = if r.revision == 0 {
        db.prepare_cached(&format!(
            "INSERT OR IGNORE INTO records ({RECORD_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 + 1, ?15, ?16)"
        ))?
        .execute(values)?
    } else {
        db.prepare_cached(
            "UPDATE records SET state = ?3, hash = ?4, version = ?5, number = ?6, target_id = ?7,
                unsure = ?8, attempts = ?9, last_error = ?10, claim_until = ?11,
                created_at = ?12, updated_at = ?13, revision = ?14 + 1, lookup = ?15, lines = ?16
             WHERE scheme = ?1 AND key = ?2 AND revision = ?14",
        )?
        .execute(values)?
    };
    Ok(changed == 1)
}

impl EmbeddedStore {
    /// Writes every gathered put in one transaction and answers each. Should the transaction
    /// fail, each put is tried again on its own, so one bad row fails only its own put.
    fn flush_puts(&self) {
        let batch = {
            let mut pending = self.pending_puts();
            pending.gathering = false;
            std::mem::take(&mut pending.waiting)
        };
        if batch.is_empty() {
            return;
        }
        let mut db = self.lock();
        let together = db.transaction().and_then(|tx| {
            let changed = batch
                .iter()
                .map(|(r, _)| put_row(&tx, r))
                .collect::<rusqlite::Result<Vec<bool>>>()?;
            tx.commit()?;
            Ok(changed)
        });
        match together {
            Ok(changed) => {
                for ((_, done), changed) in batch.into_iter().zip(changed) {
                    let _ = done.send(Ok(changed));
                }
            }
            Err(_) => {
                for (r, done) in batch {
                    let alone = put_row(&db, &r).map_err(|e| {
                        StoreError::new(format!("save record {}/{}", r.scheme, r.key), e)
                    });
                    let _ = done.send(alone);
                }
            }
        }
    }

    /// Records matching `condition` (the SQL after `WHERE`, with its ordering and limit), read
    /// with `values`; `operation` names the read in errors.
    fn select_records(
        &self,
        condition: &str,
        values: &[&dyn rusqlite::ToSql],
        operation: impl Fn() -> String,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        let fail = |e| StoreError::new(operation(), e);
        let db = self.lock();
        let mut stmt = db
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE {condition}"
            ))
            .map_err(fail)?;
        stmt.query_map(values, record_of)
            .map_err(fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)
    }
}

impl RecordQueries for EmbeddedStore {
    async fn recent(
        &self,
        scheme: &str,
        state: RecordState,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        self.select_records(
            "scheme = ?1 AND state = ?2 ORDER BY updated_at DESC LIMIT ?3",
            params![scheme, state.as_str(), limit.min(i64::MAX as usize) as i64],
            || format!("list recent records {scheme}"),
        )
    }

    async fn find_by_number(
        &self,
        scheme: &str,
        text: &str,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        self.select_records(
            "scheme = ?1 AND (number = ?2 OR lookup = ?2)",
            params![scheme, text],
            || format!("find records {scheme} numbered {text}"),
        )
    }

    async fn counts(&self, scheme: &str) -> Result<Vec<(RecordState, u64)>, StoreError> {
        let db = self.lock();
        let fail = |e| StoreError::new(format!("count records {scheme}"), e);
        let mut stmt = db
            .prepare_cached("SELECT state, COUNT(*) FROM records WHERE scheme = ?1 GROUP BY state")
            .map_err(fail)?;
        let mut out = Vec::new();
        for row in stmt
            .query_map(params![scheme], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(fail)?
        {
            let (state, n) = row.map_err(fail)?;
            if let Some(state) = RecordState::parse(&state) {
                out.push((state, n as u64));
            }
        }
        Ok(out)
    }
}

impl HistoryLog for EmbeddedStore {
    async fn append(&self, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let fail = |e| StoreError::new("append history", e);
        let mut db = self.lock();
        let tx = db.transaction().map_err(fail)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO events (scheme, key, at, what, detail, target_id, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(fail)?;
            for e in &events {
                stmt.execute(params![
                    e.scheme,
                    e.key,
                    millis(e.at),
                    e.what,
                    e.detail,
                    e.target_id,
                    e.body
                ])
                .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)
    }

    async fn history(
        &self,
        scheme: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let db = self.lock();
        let fail = |e| StoreError::new(format!("read history {scheme}/{key}"), e);
        let mut stmt = db
            .prepare_cached(
                "SELECT scheme, key, at, what, detail, target_id, body FROM events
                 WHERE scheme = ?1 AND key = ?2 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(fail)?;
        let mut events = stmt
            .query_map(
                params![scheme, key, limit.min(i64::MAX as usize) as i64],
                |r| {
                    Ok(Event {
                        scheme: r.get(0)?,
                        key: r.get(1)?,
                        at: from_millis(r.get(2)?),
                        what: r.get(3)?,
                        detail: r.get(4)?,
                        target_id: r.get(5)?,
                        body: r.get(6)?,
                    })
                },
            )
            .map_err(fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        events.reverse();
        Ok(events)
    }
}
