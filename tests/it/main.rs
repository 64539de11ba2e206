//! Ferry's integration tests: one binary, one module per area.

mod aws;
mod check;
mod cli;
mod connectors;
mod console;
mod contract;
mod credentials;
mod deploy;
mod faults;
mod golden;
mod invariants;
mod ops;
mod pipeline;
mod progress;
mod registry;
mod schemes;
mod settling;
mod simulation;
mod template;
