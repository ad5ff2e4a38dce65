//! End-to-end tests, built as one binary (ripgrep / raft-rs style).

mod cli;
mod describe;
mod fixtures;
mod fuzz;
mod pod_startup;
mod replication;
mod rollout;
mod scenarios;
mod storage;
