//! etcd's limits reached from a scenario: the `controlPlane.etcd` flags, the etcdctl
//! timeline actions, the `etcdAlarm` expectation, and the alarm records in the trace.

use std::path::{Path, PathBuf};

use crate::cli::assert_bad;
use kubesim::run::{run_file, RunOptions};
use kubesim_model::etcd::AlarmChange;
use kubesim_model::time::SimTime;
use kubesim_sim::{TraceRecord, TraceSink};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubesim-quota-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HEAD: &str = "name: t\nduration: 1m\n";

#[test]
fn an_unknown_etcd_flag_exits_2_naming_file_and_line() {
    let body =
        format!("{HEAD}controlPlane:\n  etcd:\n    quota-backend-bytes: 4096\n    quota-bytes: 4096\n");
    assert_bad("unknown-flag", &body, 6, "unknown field `quota-bytes`");
}

#[test]
fn an_etcd_flag_of_the_wrong_type_exits_2() {
    let body = format!("{HEAD}controlPlane:\n  etcd:\n    quota-backend-bytes: 8Gi\n");
    assert_bad("wrong-type", &body, 5, "quota-backend-bytes");
}

#[test]
fn max_request_bytes_zero_exits_2() {
    let body = format!("{HEAD}controlPlane:\n  etcd:\n    max-request-bytes: 0\n");
    assert_bad("zero-request", &body, 5, "max-request-bytes 0 refuses every write");
}

#[test]
fn etcdctl_actions_take_no_arguments_and_no_via() {
    let body = format!("{HEAD}timeline:\n  - at: 10s\n    etcdDefrag: {{cluster: true}}\n");
    assert_bad("defrag-args", &body, 5, "etcdDefrag takes no arguments");
    let body = format!("{HEAD}timeline:\n  - at: 10s\n    etcdCompact: {{}}\n    via: cp-1\n");
    assert_bad("compact-via", &body, 6, "via applies to API actions only");
}

#[test]
fn etcd_alarm_expectations_are_checked_where_written() {
    let body = format!("{HEAD}expectations:\n  - at: 10s\n    etcdAlarm: CORRUPT\n");
    // (serde_yaml places a value's own error at its entry.)
    assert_bad("corrupt", &body, 4, "kubesim raises NOSPACE only");
    let body = format!("{HEAD}expectations:\n  - at: 10s\n    etcdAlarm: NOSPACE\n    host: cp-4\n");
    assert_bad("host", &body, 6, "cp-4 runs no etcd member");
    let body = format!("{HEAD}expectations:\n  - at: 10s\n    etcdAlarm: NOSPACE\n    atLeast: 1\n");
    assert_bad("count", &body, 6, "etcdAlarm compares a value, not a count");
}

#[test]
fn the_flags_reach_every_member_with_upstreams_reading_of_them() {
    let load = |flags: &str| {
        let text = format!("{HEAD}controlPlane:\n  etcd:\n{flags}");
        let l = kubesim::scenario::load_str(&text, Path::new("t.yaml"), Path::new(".")).unwrap();
        let w = kubesim::plan::from_scenario(&l.scenario).unwrap().world;
        (w.etcd_quota_backend_bytes, w.etcd_max_request_bytes)
    };
    // Defaults: storage.DefaultQuotaBytes (2 GiB), embed.DefaultMaxRequestBytes (1.5 MiB).
    assert_eq!(load("    {}\n"), (2 << 30, 1_572_864));
    assert_eq!(
        load("    quota-backend-bytes: 8589934592\n    max-request-bytes: 131072\n"),
        (8 << 30, 131_072)
    );
    // quota.go NewBackendQuota: 0 is the default, a negative value disables the quota.
    assert_eq!(load("    quota-backend-bytes: 0\n").0, 2 << 30);
    assert_eq!(load("    quota-backend-bytes: -1\n").0, u64::MAX);
}

#[test]
fn the_trace_records_each_alarm_change_once() {
    let change = |index, member, activate| AlarmChange {
        at: SimTime::from_secs(1),
        index,
        member,
        activate,
        db_size_bytes: 2_100_000,
        quota_bytes: 2_097_152,
    };
    let mut sink = TraceSink::new(None);
    // Every member applies the entry: the trace keeps the first.
    for _ in 0..3 {
        sink.record_etcd_alarm(&change(10, 2, true), "cp-2", SimTime::from_secs(1));
    }
    // A second raise (another member's quota check) changes nothing the trace shows.
    sink.record_etcd_alarm(&change(11, 2, true), "cp-2", SimTime::from_secs(2));
    assert_eq!(sink.nospace_alarms().iter().collect::<Vec<_>>(), ["cp-2"]);
    sink.record_etcd_alarm(&change(12, 1, false), "cp-1", SimTime::from_secs(3));
    sink.record_etcd_alarm(&change(12, 3, false), "cp-3", SimTime::from_secs(3));
    assert!(sink.nospace_alarms().is_empty());
    assert_eq!(sink.lines(), 2, "one raise, one disarm");
}

#[test]
fn etcd_quota_scenario_fills_the_quota_and_recovers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/etcd-quota.yaml");
    let trace = scratch("scenario").join("trace.jsonl");
    let opts = RunOptions { trace: Some(trace.clone()), ..Default::default() };
    let r = run_file(&path, &opts).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
    assert!(r.step_errors.is_empty(), "{}", r.summary());
    let refused: std::collections::BTreeMap<&str, u64> =
        r.etcd_rejected.iter().map(|(e, n)| (e.as_str(), *n)).collect();
    assert!(refused.get("etcdserver: mvcc: database space exceeded").is_some_and(|n| *n > 0), "{refused:?}");
    assert_eq!(refused.get("etcdserver: request is too large"), Some(&1), "{refused:?}");
    assert!(r.summary().contains("etcd refused"), "{}", r.summary());
    assert!(r.etcd_alarms.is_empty(), "disarmed by the end");
    let text = std::fs::read_to_string(&trace).unwrap();
    let alarms: Vec<(String, u64, u64)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<TraceRecord>(l).ok())
        .filter_map(|r| match r {
            TraceRecord::EtcdAlarm { action, db_size_bytes, quota_bytes, .. } => {
                Some((action, db_size_bytes, quota_bytes))
            }
            _ => None,
        })
        .collect();
    assert_eq!(alarms.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["raise", "disarm"], "{alarms:?}");
    // Raised near the quota; disarmed after the defragmentation shrank the file.
    assert!(alarms[0].1 > alarms[0].2 / 2, "{alarms:?}");
    assert!(alarms[1].1 < alarms[1].2 / 4, "{alarms:?}");
    // The report lists both changes among the marks.
    let summary =
        kubesim::report::read_trace(std::io::BufReader::new(std::fs::File::open(&trace).unwrap())).unwrap();
    let html = kubesim::report::render(&summary).unwrap();
    assert!(html.contains("Faults, actions, etcd alarms and evictions"), "no alarm marks in the report");
    assert_eq!(html.matches("<td>etcd alarm</td><td>NOSPACE ").count(), 2, "a raise and a disarm");
    assert!(html.contains("NOSPACE raise"), "the raise is named");
}

#[test]
fn defrag_reports_a_member_that_does_not_answer_and_defragments_the_others() {
    let dir = scratch("defrag-dead");
    let p = dir.join("s.yaml");
    let body = "name: t\nduration: 40s\ntimeline:\n  - at: 10s\n    killProcess: {host: cp-3, process: etcd}\n  \
                - at: 20s\n    etcdDefrag: {}\n    expectError: \"Failed to defragment etcd member[cp-3] (cp-3: context deadline exceeded)\"\n  \
                - at: 30s\n    etcdCompact: {}\n";
    std::fs::write(&p, body).unwrap();
    let trace = dir.join("trace.jsonl");
    let r = run_file(&p, &RunOptions { trace: Some(trace.clone()), ..Default::default() }).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
    assert!(r.step_errors.is_empty(), "the compaction through the leader works: {}", r.summary());
    let text = std::fs::read_to_string(&trace).unwrap();
    let defrag = text.lines().find(|l| l.contains("etcdctl-defrag")).expect("the defrag is in the trace");
    assert!(defrag.contains("cp-1 ") && defrag.contains("cp-2 "), "{defrag}");
}

#[test]
fn the_etcd_alarm_check_reads_the_alarms_the_trace_recorded() {
    use kubesim::run::{evaluate, Condition};
    let check = |host: Option<&str>, absent| Condition::EtcdAlarm {
        alarm: "NOSPACE".into(),
        host: host.map(String::from),
        absent,
    };
    let mut sink = TraceSink::new(None);
    assert_eq!(evaluate(&check(None, false), &sink), (false, "no NOSPACE alarm raised".into()));
    assert!(evaluate(&check(None, true), &sink).0);
    let raise = AlarmChange {
        at: SimTime::from_secs(5),
        index: 40,
        member: 2,
        activate: true,
        db_size_bytes: 2_100_000,
        quota_bytes: 2_097_152,
    };
    sink.record_etcd_alarm(&raise, "cp-2", SimTime::from_secs(5));
    assert_eq!(evaluate(&check(None, false), &sink), (true, "NOSPACE raised on cp-2".into()));
    assert!(evaluate(&check(Some("cp-2"), false), &sink).0);
    assert!(!evaluate(&check(Some("cp-1"), false), &sink).0, "cp-1's member raised nothing");
    assert!(evaluate(&check(Some("cp-1"), true), &sink).0);
    assert!(!evaluate(&check(None, true), &sink).0);
}
