//! End-to-end tests, built as one binary (ripgrep / raft-rs style).

mod cli;
mod describe;
mod differential;
mod explain;
mod scenarios;
mod scheduling;
