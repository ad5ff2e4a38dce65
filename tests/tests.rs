//! End-to-end tests, built as one binary (ripgrep / raft-rs style).

mod cli;
mod describe;
mod scenarios;
mod scheduling;
