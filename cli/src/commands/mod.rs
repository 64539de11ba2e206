//! One file per `ferry` command: its options (`Args`) and `run`, which writes to the given streams
//! and returns the exit status (errors carry theirs: `crate::error`).

pub mod check;
pub mod console;
pub mod demo;
pub mod preview;
pub mod reconcile;
pub mod record;
pub mod replay;
mod requeue_report;
pub mod resync;
pub mod run;
pub mod sandbox;
pub mod status;
