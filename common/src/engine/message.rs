//! Page messages: what poll puts on the queue and push takes off it. One message carries documents of
//! one page of one window, cut so that no message exceeds the queue's size limit (SQS: 256 KiB).

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
    /// The documents, exactly as the source sent them.
    pub documents: Vec<Box<RawValue>>,
}

/// A document too large to travel in any message.
#[derive(Debug)]
pub struct Oversize {
    /// The document's text.
    pub document: Box<RawValue>,
    /// Its size in bytes.
    pub bytes: usize,
}

/// Cuts a page's documents into message bodies of at most `limit` bytes each. Documents that would not
/// fit even alone come back separately, to be recorded as failures instead of sent.
pub fn pack(
    scheme: &str,
    window: Option<&WindowText>,
    page: u32,
    documents: Vec<Box<RawValue>>,
    limit: usize,
) -> (Vec<String>, Vec<Oversize>) {
    let budget = limit.saturating_sub(ENVELOPE_ROOM + scheme.len());
    let mut bodies = Vec::new();
    let mut oversize = Vec::new();
    let mut batch: Vec<Box<RawValue>> = Vec::new();
    let mut size = 0;
    let flush = |batch: &mut Vec<Box<RawValue>>, bodies: &mut Vec<String>| {
        if batch.is_empty() {
            return;
        }
        let message = PageMessage {
            scheme: scheme.to_owned(),
            window: window.cloned(),
            page,
            part: bodies.len() as u32,
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
        if size + bytes > budget {
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
        let (bodies, oversize) = pack("s", Some(&window), 3, docs, MAX_MESSAGE_BYTES);
        assert_eq!(oversize.len(), 1);
        assert!(bodies.len() >= 2);
        let mut seen = 0;
        for (i, body) in bodies.iter().enumerate() {
            assert!(body.len() <= MAX_MESSAGE_BYTES, "{} bytes", body.len());
            let message: PageMessage = serde_json::from_str(body).unwrap();
            assert_eq!((message.page, message.part as usize), (3, i));
            seen += message.documents.len();
        }
        assert_eq!(seen, 50);
    }
}
