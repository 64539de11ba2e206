//! How commands print: tables for people, one JSON document for scripts, times in Beijing time.

use std::io::Write;

use ferry_common::time::{format_source, to_beijing};
use jiff::Timestamp;
use serde::Serialize;

use crate::error::CliError;

/// A table for people, in the style every `ferry` command prints.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// An instant as people here read it: Beijing time, `YYYY-MM-DD HH:MM:SS`.
pub fn time_text(t: Timestamp) -> String {
    format_source(to_beijing(t))
}

/// One pretty JSON document.
pub fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), CliError> {
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(value).expect("serialisable")
    )?;
    Ok(())
}

/// A lag in the largest units that keep it readable: `45s`, `12m`, `3h 5m`, `2d`.
pub fn lag(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        s => format!("{}d", s / 86_400),
    }
}
