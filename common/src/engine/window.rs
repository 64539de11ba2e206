//! Window planning: which time windows one poll walks, from `cursor − lookback` to `now − settle
//! delay`, cut to the API's maximum span, with bounds whole seconds in Beijing time.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::scheme::WindowRules;
use crate::time::{format_source, from_beijing, parse_source_datetime, to_beijing};

/// One closed time window `[start, end]` of the source's filter time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// The first second covered.
    pub start: Timestamp,
    /// The last second covered (inclusive, as the source reads it).
    pub end: Timestamp,
}

impl Window {
    /// A window; `None` if `end` is before `start`.
    pub fn new(start: Timestamp, end: Timestamp) -> Option<Window> {
        (start <= end).then_some(Window {
            start: floor_second(start),
            end: floor_second(end),
        })
    }

    /// Parses Beijing bounds as `YYYY-MM-DD HH:MM:SS`, naming the bad one.
    pub fn parse(start: &str, end: &str) -> Result<Window, String> {
        let start_time = parse_source_datetime(start).map_err(|e| format!("window start: {e}"))?;
        let end_time = parse_source_datetime(end).map_err(|e| format!("window end: {e}"))?;
        Window::new(from_beijing(start_time), from_beijing(end_time))
            .ok_or_else(|| format!("window end {end} is before its start {start}"))
    }

    /// Parses an operator's range: each bound a Beijing time (`YYYY-MM-DD HH:MM:SS`) or a date,
    /// which means the whole day (its first second as a start, its last as an end). `names` are
    /// what the bounds are called in errors (`--from`/`--to`, `window.from`/`window.to`).
    pub fn parse_range(from: &str, to: &str, names: (&str, &str)) -> Result<Window, String> {
        let start = bound(from, false, names.0)?;
        let end = bound(to, true, names.1)?;
        Window::new(from_beijing(start), from_beijing(end)).ok_or_else(|| {
            format!(
                "{} {} is after {} {}",
                names.0,
                format_source(start),
                names.1,
                format_source(end)
            )
        })
    }

    /// The start as the source reads it (Beijing time).
    pub fn start_text(&self) -> String {
        format_source(to_beijing(self.start))
    }

    /// The end as the source reads it (Beijing time).
    pub fn end_text(&self) -> String {
        format_source(to_beijing(self.end))
    }

    /// Cuts the window into consecutive windows of at most `max_span`. Neighbours share their
    /// boundary second: a closed window loses edits in the fraction of a second after `:59:59`
    /// otherwise, and the boundary's documents are de-duplicated by the sync records.
    pub fn split(self, max_span: SignedDuration) -> Vec<Window> {
        let step = max_span.max(SignedDuration::from_secs(1));
        let mut out = Vec::new();
        let mut start = self.start;
        loop {
            let end = start
                .saturating_add(step)
                .expect("a duration")
                .min(self.end);
            out.push(Window { start, end });
            if end >= self.end {
                return out;
            }
            start = end;
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ~ {}", self.start_text(), self.end_text())
    }
}

/// The window bounds as they travel in messages and records: Beijing text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowText(pub String, pub String);

impl From<Window> for WindowText {
    fn from(w: Window) -> Self {
        WindowText(w.start_text(), w.end_text())
    }
}

fn floor_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).expect("in range")
}

/// The windows one scheduled poll walks, in time order; empty when there is nothing settled to read.
///
/// `cursor` is the end of the last completed window (`None` on the first run, which starts at the
/// configured start, or one lookback before the settled end).
pub fn plan(rules: &WindowRules, cursor: Option<Timestamp>, now: Timestamp) -> Vec<Window> {
    let end = now.saturating_sub(rules.settle_delay).expect("a duration");
    let start = match (cursor, rules.start) {
        (Some(cursor), _) => cursor.saturating_sub(rules.lookback).expect("a duration"),
        (None, Some(start)) => from_beijing(start),
        (None, None) => end.saturating_sub(rules.lookback).expect("a duration"),
    };
    match Window::new(start, end) {
        Some(window) if window.start < window.end => window.split(rules.max_span),
        _ => Vec::new(),
    }
}

/// A range bound: a full time, or a date (its first second as a start, its last as an end).
fn bound(text: &str, end: bool, name: &str) -> Result<jiff::civil::DateTime, String> {
    // Only a bare date is a whole day: jiff also reads the date of a full time as a date.
    let text = text.trim();
    if text.len() == 10
        && let Ok(date) = text.parse::<jiff::civil::Date>()
    {
        return Ok(if end {
            date.to_datetime(jiff::civil::time(23, 59, 59, 0))
        } else {
            date.to_datetime(jiff::civil::Time::midnight())
        });
    }
    parse_source_datetime(text).map_err(|e| format!("{name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(span: i64, lookback: i64, settle: i64, start: Option<&str>) -> WindowRules {
        WindowRules {
            max_span: SignedDuration::from_mins(span),
            lookback: SignedDuration::from_mins(lookback),
            settle_delay: SignedDuration::from_mins(settle),
            start: start.map(|s| parse_source_datetime(s).unwrap()),
            interval: SignedDuration::from_mins(5),
        }
    }

    fn at(text: &str) -> Timestamp {
        from_beijing(parse_source_datetime(text).unwrap())
    }

    #[test]
    fn first_run_starts_at_the_configured_point_and_splits_to_the_span() {
        let windows = plan(
            &rules(60, 10, 1, Some("2026-11-22 08:00:00")),
            None,
            at("2026-11-22 10:31:30"),
        );
        let text: Vec<String> = windows.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            text,
            [
                "2026-11-22 08:00:00 ~ 2026-11-22 09:00:00",
                "2026-11-22 09:00:00 ~ 2026-11-22 10:00:00",
                "2026-11-22 10:00:00 ~ 2026-11-22 10:30:30",
            ]
        );
    }

    #[test]
    fn later_runs_start_one_lookback_before_the_cursor_and_stop_short_of_now() {
        let windows = plan(
            &rules(60, 10, 2, None),
            Some(at("2026-11-22 10:30:30")),
            at("2026-11-22 10:45:00"),
        );
        assert_eq!(
            windows.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            ["2026-11-22 10:20:30 ~ 2026-11-22 10:43:00"]
        );
        // Nothing settled yet: no window.
        assert!(
            plan(
                &rules(60, 0, 2, None),
                Some(at("2026-11-22 10:44:00")),
                at("2026-11-22 10:45:00")
            )
            .is_empty()
        );
    }

    #[test]
    fn bounds_are_beijing_time() {
        let w = Window::new(
            Timestamp::from_second(0).unwrap(),
            Timestamp::from_second(3600).unwrap(),
        )
        .unwrap();
        assert_eq!(w.to_string(), "1970-01-01 08:00:00 ~ 1970-01-01 09:00:00");
        assert_eq!(
            Window::parse("1970-01-01 08:00:00", "1970-01-01 09:00:00").unwrap(),
            w
        );
        assert!(
            Window::parse("1970-01-01 09:00:00", "1970-01-01 08:00:00")
                .unwrap_err()
                .contains("before")
        );
        assert!(
            Window::parse("yesterday", "1970-01-01 08:00:00")
                .unwrap_err()
                .starts_with("window start")
        );
    }
}
