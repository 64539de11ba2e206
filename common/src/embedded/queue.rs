//! A page queue with SQS semantics on SQLite: a receive hides a message for the visibility timeout
//! and counts the delivery; a message received more than `max_receives` times moves to the
//! dead-letter queue instead of being delivered again.

use std::time::Duration;

use jiff::Timestamp;
use rusqlite::params;

use super::{EmbeddedStore, from_millis, millis};
use crate::engine::ports::{DeadLetter, Delivery, PageQueue, StoreError};

/// One named queue in the embedded store.
#[derive(Clone, Debug)]
pub struct EmbeddedQueue {
    store: EmbeddedStore,
    name: String,
    max_receives: u32,
}

impl EmbeddedQueue {
    pub(super) fn new(store: EmbeddedStore, name: &str, max_receives: u32) -> Self {
        EmbeddedQueue {
            store,
            name: name.to_owned(),
            max_receives: max_receives.max(1),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::new(format!("{what} queue {}", self.name), e)
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl PageQueue for EmbeddedQueue {
    async fn redrive(&self) -> Result<u64, StoreError> {
        let now = millis(Timestamp::now());
        let n = self
            .store
            .lock()
            .execute(
                "UPDATE messages SET dead_at = NULL, receive_count = 0, visible_at = ?2, receipt = NULL
                 WHERE queue = ?1 AND dead_at IS NOT NULL",
                params![self.name, now],
            )
            .map_err(|e| self.fail("redrive", e))?;
        Ok(n as u64)
    }

    async fn send(&self, bodies: Vec<String>) -> Result<(), StoreError> {
        let now = millis(Timestamp::now());
        let mut db = self.store.lock();
        let tx = db.transaction().map_err(|e| self.fail("send to", e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO messages (queue, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?3)",
                )
                .map_err(|e| self.fail("send to", e))?;
            for body in &bodies {
                stmt.execute(params![self.name, body, now])
                    .map_err(|e| self.fail("send to", e))?;
            }
        }
        tx.commit().map_err(|e| self.fail("send to", e))
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>, StoreError> {
        let now = millis(Timestamp::now());
        let mut db = self.store.lock();
        let tx = db.transaction().map_err(|e| self.fail("receive from", e))?;
        let mut out = Vec::new();
        {
            let mut pick = tx
                .prepare_cached(
                    "SELECT id, body, receive_count FROM messages
                     WHERE queue = ?1 AND dead_at IS NULL AND visible_at <= ?2
                     ORDER BY visible_at, id LIMIT ?3",
                )
                .map_err(|e| self.fail("receive from", e))?;
            let rows: Vec<(i64, String, u32)> = pick
                .query_map(params![self.name, now, max as i64 * 2 + 10], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| self.fail("receive from", e))?
                .collect::<Result<_, _>>()
                .map_err(|e| self.fail("receive from", e))?;
            for (id, body, count) in rows {
                if out.len() == max {
                    break;
                }
                if count >= self.max_receives {
                    // Received its maximum number of times: redrive to the dead-letter queue.
                    tx.execute(
                        "UPDATE messages SET dead_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )
                    .map_err(|e| self.fail("dead-letter in", e))?;
                    tracing::warn!(
                        queue = self.name,
                        message = id,
                        receives = count,
                        "message moved to the dead-letter queue"
                    );
                    continue;
                }
                let receipt = format!("{id}:{:016x}", fastrand::u64(..));
                tx.execute(
                    "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?2, receipt = ?3
                     WHERE id = ?1",
                    params![id, now + ms(visibility), receipt],
                )
                .map_err(|e| self.fail("receive from", e))?;
                out.push(Delivery {
                    id: id.to_string(),
                    receipt,
                    body,
                    receive_count: count + 1,
                });
            }
        }
        tx.commit().map_err(|e| self.fail("receive from", e))?;
        Ok(out)
    }

    async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        self.store
            .lock()
            .execute("DELETE FROM messages WHERE receipt = ?1", params![receipt])
            .map_err(|e| self.fail("delete from", e))?;
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), StoreError> {
        let at = millis(Timestamp::now()) + ms(delay);
        self.store
            .lock()
            .execute(
                "UPDATE messages SET visible_at = ?2 WHERE receipt = ?1 AND dead_at IS NULL",
                params![receipt, at],
            )
            .map_err(|e| self.fail("reschedule in", e))?;
        Ok(())
    }

    /// One statement: the body, visibility and receive count change together.
    async fn hand_back(
        &self,
        receipt: &str,
        body: String,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let at = millis(Timestamp::now()) + ms(delay);
        self.store
            .lock()
            .execute(
                "UPDATE messages SET body = ?2, visible_at = ?3, receive_count = 0, receipt = NULL
                 WHERE receipt = ?1 AND dead_at IS NULL",
                params![receipt, body, at],
            )
            .map_err(|e| self.fail("hand back to", e))?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64, StoreError> {
        self.store
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE queue = ?1 AND dead_at IS NULL",
                params![self.name],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.fail("count", e))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let db = self.store.lock();
        let mut stmt = db
            .prepare_cached(
                "SELECT id, body, receive_count, dead_at FROM messages
                 WHERE queue = ?1 AND dead_at IS NOT NULL ORDER BY dead_at, id",
            )
            .map_err(|e| self.fail("read dead letters of", e))?;
        stmt.query_map(params![self.name], |r| {
            Ok(DeadLetter {
                id: r.get::<_, i64>(0)?.to_string(),
                body: r.get(1)?,
                receive_count: r.get(2)?,
                dead_at: from_millis(r.get(3)?),
            })
        })
        .map_err(|e| self.fail("read dead letters of", e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.fail("read dead letters of", e))
    }
}
