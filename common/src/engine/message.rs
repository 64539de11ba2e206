//! Page messages: what poll puts on the queue and push takes off it. One message carries documents of
//! one page of one window, cut so that no message exceeds the queue's size limit (SQS: 256 KiB).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::window::WindowText;

/// SQS's limit on a message body.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Room kept for the envelope around the documents.
const ENVELOPE_ROOM: usize = 1024;

/// One queued slice of a page.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageMessage {
    /// The scheme id.
    pub scheme: String,
    /// The window the page belongs to (Beijing bounds); absent for look-ups by key.
    #[serde(default)]
    pub window: Option<WindowText>,
    /// The page number in that window.
    pub page: u32,
    /// Which slice of the page this is, from 0.
    pub part: u32,
    /// When the page was fetched from the source.
    #[serde(default)]
    pub fetched_at: Option<Timestamp>,
    /// Queued by an operator's replay: documents that failed before are pushed again (through the
    /// same idempotency rules: a replay never creates a second bill).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
    /// How many rounds of retries its documents have had: a message handed back by push after a
    /// retryable failure carries the count on (its backoff grows with it), since a handed-back
    /// message is new to the queue and its receive count starts again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// The documents, exactly as the source sent them.
    pub documents: Vec<Box<RawValue>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A page message's envelope read without its documents (they are skipped, not parsed): what
/// routing a message to its scheme and tagging it with queue attributes need.
#[derive(Clone, Debug, Deserialize)]
pub struct Envelope {
    /// The scheme id.
    pub scheme: String,
    /// The page number.
    pub page: u32,
    /// Queued by an operator's replay.
    #[serde(default)]
    pub replay: bool,
}

impl Envelope {
    /// The envelope of a message body; `None` if the body is not a page message.
    pub fn read(body: &str) -> Option<Envelope> {
        serde_json::from_str(body).ok()
    }
}

/// What every message cut from one page carries besides its documents.
#[derive(Clone, Debug)]
pub struct PageHeader {
    /// The scheme id.
    pub scheme: String,
    /// The window, absent for look-ups by key.
    pub window: Option<WindowText>,
    /// The page number.
    pub page: u32,
    /// When the page was fetched.
    pub fetched_at: Timestamp,
    /// Queued by a replay.
    pub replay: bool,
}

/// A document too large to travel in any message.
#[derive(Debug)]
pub struct Oversize {
    /// The document's text.
    pub document: Box<RawValue>,
    /// Its size in bytes.
    pub bytes: usize,
}

/// Cuts a page's documents into message bodies of at most `limit` bytes and `max_documents`
/// documents each. Documents that would not fit even alone come back separately, to be recorded as
/// failures instead of sent.
pub fn pack(
    header: &PageHeader,
    documents: Vec<Box<RawValue>>,
    limit: usize,
    max_documents: usize,
) -> (Vec<String>, Vec<Oversize>) {
    let max_documents = max_documents.max(1);
    let budget = limit.saturating_sub(ENVELOPE_ROOM + header.scheme.len());
    let mut bodies = Vec::new();
    let mut oversize = Vec::new();
    let mut batch: Vec<Box<RawValue>> = Vec::new();
    let mut size = 0;
    let flush = |batch: &mut Vec<Box<RawValue>>, bodies: &mut Vec<String>| {
        if batch.is_empty() {
            return;
        }
        let message = PageMessage {
            scheme: header.scheme.clone(),
            window: header.window.clone(),
            page: header.page,
            part: bodies.len() as u32,
            fetched_at: Some(header.fetched_at),
            replay: header.replay,
            retries: 0,
            documents: std::mem::take(batch),
        };
        bodies.push(serde_json::to_string(&message).expect("raw JSON serialises"));
    };
    for document in documents {
        let bytes = document.get().len() + 1;
        if bytes > budget {
            oversize.push(Oversize { document, bytes });
            continue;
        }
        if size + bytes > budget || batch.len() >= max_documents {
            flush(&mut batch, &mut bodies);
            size = 0;
        }
        size += bytes;
        batch.push(document);
    }
    flush(&mut batch, &mut bodies);
    (bodies, oversize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: usize, pad: usize) -> Box<RawValue> {
        RawValue::from_string(format!("{{\"id\":{n},\"pad\":\"{}\"}}", "x".repeat(pad))).unwrap()
    }

    #[test]
    fn pages_are_cut_below_the_limit_and_giants_set_aside() {
        let docs: Vec<_> = (0..50)
            .map(|n| doc(n, 9_000))
            .chain([doc(99, 300_000)])
            .collect();
        let window = WindowText("2026-11-22 08:00:00".into(), "2026-11-22 09:00:00".into());
        let header = PageHeader {
            scheme: "s".into(),
            window: Some(window),
            page: 3,
            fetched_at: Timestamp::UNIX_EPOCH,
            replay: true,
        };
        let (bodies, oversize) = pack(&header, docs, MAX_MESSAGE_BYTES, usize::MAX);
        assert_eq!(oversize.len(), 1);
        assert!(bodies.len() >= 2);
        let mut seen = 0;
        for (i, body) in bodies.iter().enumerate() {
            assert!(body.len() <= MAX_MESSAGE_BYTES, "{} bytes", body.len());
            let message: PageMessage = serde_json::from_str(body).unwrap();
            assert_eq!((message.page, message.part as usize), (3, i));
            assert!(message.replay);
            assert_eq!(message.fetched_at, Some(Timestamp::UNIX_EPOCH));
            seen += message.documents.len();
        }
        assert_eq!(seen, 50);
        // Sized to a push invocation's work: at most 7 documents a message.
        let docs: Vec<_> = (0..50).map(|n| doc(n, 10)).collect();
        let (bodies, _) = pack(&header, docs, MAX_MESSAGE_BYTES, 7);
        assert_eq!(bodies.len(), 8);
        assert!(bodies.iter().all(|b| {
            serde_json::from_str::<PageMessage>(b)
                .unwrap()
                .documents
                .len()
                <= 7
        }));
    }
}
