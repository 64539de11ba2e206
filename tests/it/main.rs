//! Ferry's integration tests: one binary, one module per area.

mod check;
mod cli;
mod connectors;
mod golden;
mod invariants;
mod pipeline;
