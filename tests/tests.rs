//! End-to-end tests, built as one binary (ripgrep / raft-rs style).

mod cli;
mod describe;
mod differential;
mod etcd_quota;
mod explain;
mod fixtures;
mod fuzz;
mod import;
mod pod_startup;
mod replication;
mod report;
mod rollout;
mod scenarios;
mod scheduling;
mod storage;
mod sweep;
mod validation;
