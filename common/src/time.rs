//! Source times: WDT sends Beijing wall-clock times as `YYYY-MM-DD HH:MM:SS`; this module parses and
//! formats them and reads the human durations of scheme files (`60m`, `30d`).

use jiff::civil::DateTime;
use jiff::{SignedDuration, Span, SpanRelativeTo};

/// The format of every time WDT sends and accepts.
pub const SOURCE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Parses a WDT time (`YYYY-MM-DD HH:MM:SS`, or a bare `YYYY-MM-DD`) as a Beijing wall-clock time.
pub fn parse_source_datetime(text: &str) -> Result<DateTime, String> {
    let text = text.trim();
    let parsed = if text.len() == 10 {
        jiff::fmt::strtime::parse("%Y-%m-%d", text)
            .and_then(|t| t.to_date().map(|d| d.at(0, 0, 0, 0)))
    } else {
        jiff::fmt::strtime::parse(SOURCE_FORMAT, text).and_then(|t| t.to_datetime())
    };
    parsed.map_err(|_| format!("'{text}' is not a time of the form YYYY-MM-DD HH:MM:SS"))
}

/// Parses a duration written as in scheme files: `90s`, `10m`, `1h 30m`, `30d` (a day is 24 hours).
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let span: Span = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (write it like 90s, 10m, 1h or 30d)"))?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("'{text}' is not a fixed duration: {e}"))?;
    if duration.is_negative() {
        return Err(format!("'{text}' is negative"));
    }
    Ok(duration)
}

/// China Standard Time (UTC+8, no daylight saving): the zone of every time the three ERPs exchange.
pub const BEIJING: jiff::tz::Offset = jiff::tz::Offset::constant(8);

/// An instant as a Beijing wall-clock time.
pub fn to_beijing(instant: jiff::Timestamp) -> DateTime {
    BEIJING.to_datetime(instant)
}

/// A Beijing wall-clock time as an instant.
pub fn from_beijing(time: DateTime) -> jiff::Timestamp {
    BEIJING
        .to_timestamp(time)
        .expect("a Beijing wall-clock time within jiff's range")
}

/// A Beijing wall-clock time in the WDT format `YYYY-MM-DD HH:MM:SS`.
pub fn format_source(time: DateTime) -> String {
    jiff::fmt::strtime::format(SOURCE_FORMAT, time).expect("a valid format")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_times_and_dates() {
        let t = parse_source_datetime("2024-03-01 08:05:09").unwrap();
        assert_eq!(t.to_string(), "2024-03-01T08:05:09");
        let d = parse_source_datetime("2024-03-01").unwrap();
        assert_eq!(d.to_string(), "2024-03-01T00:00:00");
        let err = parse_source_datetime("2024-13-01 00:00:00").unwrap_err();
        assert_eq!(
            err,
            "'2024-13-01 00:00:00' is not a time of the form YYYY-MM-DD HH:MM:SS"
        );
        assert!(parse_source_datetime("yesterday").is_err());
    }

    #[test]
    fn parses_friendly_durations() {
        assert_eq!(
            parse_duration("60m").unwrap(),
            SignedDuration::from_mins(60)
        );
        assert_eq!(
            parse_duration("30d").unwrap(),
            SignedDuration::from_hours(720)
        );
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5m").is_err());
    }
}
