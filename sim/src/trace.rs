//! The trace: JSON Lines of committed writes, faults, timeline actions and leader changes,
//! each with its simulated time. The trace hash (SHA-256 over the lines) fingerprints a run.
//! `get` / `describe` rebuild cluster state from a trace file; they never re-run.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

use kubesim_model::api::Object;
use kubesim_model::client::{Cache, Record, WatchEvent, WatchEventType};
use kubesim_model::scheduler::attempt::SchedulingAttempt;
use kubesim_model::time::SimTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TraceRecord {
    /// A write committed by etcd. `verb` is create, update or delete; for delete,
    /// `object` is the last state.
    Write { t: u64, rev: u64, verb: String, object: Arc<Object> },
    /// A fault injected into the world (kill, restart, partition, heal, ...).
    Fault { t: u64, fault: String, detail: String },
    /// A timeline action performed through the API (apply, delete, scale, cordon, ...).
    Action { t: u64, action: String, detail: String },
    /// A component or etcd member became leader.
    Leader { t: u64, component: String, host: String, term: u64 },
    /// etcd's alarm list changed (the alarm request committed through raft; recorded once,
    /// when the first member applies it): `action` is `raise` (the NOSPACE alarm of the
    /// member on `host`) or `disarm` (every NOSPACE alarm, `etcdctl alarm disarm`), with
    /// that member's database size and its --quota-backend-bytes.
    #[serde(rename_all = "camelCase")]
    EtcdAlarm { t: u64, alarm: String, action: String, host: String, db_size_bytes: u64, quota_bytes: u64 },
    /// The API requests the API servers answered in `[from, t)`, by component, verb and
    /// resource, each with its latencies (an aggregate per window, not a line per request).
    /// A measurement of the run, not part of the trace hash or the record count: the hash
    /// stays the fingerprint of what the cluster did, comparable with builds that do not
    /// measure.
    ApiRequests { t: u64, from: u64, calls: Vec<ApiCallStats> },
    /// A kube-scheduler attempt: every node's verdict, the scores and the decision.
    Scheduling { t: u64, host: String, attempt: Arc<SchedulingAttempt> },
    /// What ran: the scenario's name, seed, file name and text. The first line of a trace
    /// file; not part of the trace hash (a comment edited in the scenario changes no run).
    Run { t: u64, scenario: String, seed: u64, duration: u64, file: String, source: String },
    /// The scenario's test starts: the API server answers and the workloads are applied.
    /// Measurements start here, as clusterloader2's start before their test's objects are
    /// created (the API call latency SLI leaves the cluster's bootstrap out). Outside the
    /// trace hash.
    Start { t: u64 },
    /// How the run ended: each expectation's result and the trace hash. The last line of a
    /// trace file; not part of the hash it reports.
    Outcome { t: u64, results: Vec<OutcomeResult>, trace_hash: String },
}

/// The requests of one (component, verb, resource, subresource) in a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCallStats {
    pub component: String,
    pub verb: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    pub count: u64,
    /// `[latency in ms, requests]`, by latency: exact, since simulated time is in ms.
    pub latency_ms: Vec<[u64; 2]>,
}

/// One expectation's result as the trace keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeResult {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// The width of an [`TraceRecord::ApiRequests`] window: kubesim's own aggregation
/// interval, fine enough for charts of requests per second and for the SLI's 5-minute
/// windows, coarse enough that 50,000 pods do not write a line per request.
pub const API_WINDOW_MS: u64 = 10_000;

/// (component, verb, resource, subresource).
type ApiKey = (&'static str, &'static str, &'static str, &'static str);

impl TraceRecord {
    pub fn time(&self) -> SimTime {
        let t = match self {
            TraceRecord::Write { t, .. }
            | TraceRecord::Fault { t, .. }
            | TraceRecord::Action { t, .. }
            | TraceRecord::Leader { t, .. }
            | TraceRecord::EtcdAlarm { t, .. }
            | TraceRecord::ApiRequests { t, .. }
            | TraceRecord::Run { t, .. }
            | TraceRecord::Start { t }
            | TraceRecord::Outcome { t, .. }
            | TraceRecord::Scheduling { t, .. } => *t,
        };
        SimTime(t)
    }

    /// A record a component reported in its output.
    pub fn of_component(t: SimTime, host: &str, r: Record) -> TraceRecord {
        match r {
            Record::SchedulingAttempt(attempt) => {
                TraceRecord::Scheduling { t: t.as_millis(), host: host.to_string(), attempt }
            }
        }
    }
}

/// Where trace lines go: a hash always, a file when asked, and the committed state the
/// run's expectations read.
pub struct TraceSink {
    /// None: the run asked for no trace hash.
    hasher: Option<Sha256>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    lines: u64,
    writes: u64,
    state: Cache,
    line: Vec<u8>,
    error: Option<String>,
    /// The highest etcd revision written to the trace.
    recorded_revision: i64,
    /// Every leader record so far, in order.
    leaders: Vec<Leadership>,
    /// Predicates over committed writes, each with the first time it matched.
    write_watches: Vec<WriteWatch>,
    /// Read-only observers of every record, with the committed state after it (the
    /// invariant checkers and the expectations' anchors and counts).
    observers: Vec<Observer>,
    /// API requests answered in the current window, with their latencies (ms -> count).
    api: BTreeMap<ApiKey, BTreeMap<u64, u64>>,
    api_window_start: u64,
    /// The latest time recorded.
    last_t: u64,
    /// Hosts whose etcd member's NOSPACE alarm is raised, as the trace records it.
    nospace_alarms: std::collections::BTreeSet<String>,
    /// The raft index of the last alarm change recorded (each is applied by every member).
    alarm_index: u64,
    /// Client requests etcd refused, by etcd's error.
    etcd_rejected: BTreeMap<&'static str, u64>,
}

/// Called with every trace record and the committed state after it.
pub type Observer = Box<dyn FnMut(&TraceRecord, &Cache) + Send>;

/// A predicate over the objects written, and when it first held.
pub struct WriteWatch {
    pub key: kubesim_model::api::ObjectKey,
    pub matches: Box<dyn Fn(&Object) -> bool + Send>,
    pub first: Option<SimTime>,
}

/// One leader change as the trace records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    pub t: SimTime,
    pub component: String,
    pub host: String,
    pub term: u64,
}

impl TraceSink {
    pub fn new(file: Option<std::fs::File>) -> Self {
        TraceSink {
            hasher: Some(Sha256::new()),
            file: file.map(std::io::BufWriter::new),
            lines: 0,
            writes: 0,
            state: Cache::default(),
            line: Vec::with_capacity(4096),
            error: None,
            recorded_revision: 0,
            leaders: Vec::new(),
            write_watches: Vec::new(),
            observers: Vec::new(),
            api: BTreeMap::new(),
            api_window_start: 0,
            last_t: 0,
            nospace_alarms: Default::default(),
            alarm_index: 0,
            etcd_rejected: BTreeMap::new(),
        }
    }

    /// Records an alarm change a member applied, once per raft entry, and only when it
    /// changes the alarm list (raising a raised alarm or disarming none records nothing).
    pub fn record_etcd_alarm(&mut self, a: &kubesim_model::etcd::AlarmChange, host: &str, t: SimTime) {
        if a.index <= self.alarm_index {
            return;
        }
        self.alarm_index = a.index;
        let changed = if a.activate {
            self.nospace_alarms.insert(host.to_string())
        } else {
            let any = !self.nospace_alarms.is_empty();
            self.nospace_alarms.clear();
            any
        };
        if changed {
            self.record(&TraceRecord::EtcdAlarm {
                t: t.as_millis(),
                alarm: "NOSPACE".into(),
                action: (if a.activate { "raise" } else { "disarm" }).into(),
                host: host.to_string(),
                db_size_bytes: a.db_size_bytes,
                quota_bytes: a.quota_bytes,
            });
        }
    }

    /// Hosts whose etcd member has the NOSPACE alarm raised now.
    pub fn nospace_alarms(&self) -> &std::collections::BTreeSet<String> {
        &self.nospace_alarms
    }

    /// Counts client requests an etcd member refused, by error.
    pub fn count_etcd_rejected(&mut self, rejected: &[(&'static str, u64)]) {
        for (e, n) in rejected {
            *self.etcd_rejected.entry(e).or_default() += n;
        }
    }

    /// Client requests etcd refused so far, by etcd's error.
    pub fn etcd_rejected(&self) -> &BTreeMap<&'static str, u64> {
        &self.etcd_rejected
    }

    /// Counts requests an API server answered at `t`; `component` names a client.
    pub fn record_api_calls(
        &mut self,
        calls: &[kubesim_model::process::ApiCall],
        t: SimTime,
        component: impl Fn(u64) -> &'static str,
    ) {
        self.roll_api_window(t.as_millis());
        for c in calls {
            let key = (component(c.client), c.verb, c.resource, c.subresource);
            *self.api.entry(key).or_default().entry(c.latency_ms).or_default() += 1;
        }
    }

    /// Writes the request window when `t` is past it, and starts the window holding `t`.
    fn roll_api_window(&mut self, t: u64) {
        self.last_t = self.last_t.max(t);
        if t < self.api_window_start + API_WINDOW_MS {
            return;
        }
        self.flush_api_window(self.api_window_start + API_WINDOW_MS);
        self.api_window_start = t - t % API_WINDOW_MS;
    }

    fn flush_api_window(&mut self, end: u64) {
        if self.api.is_empty() {
            return;
        }
        let calls = std::mem::take(&mut self.api)
            .into_iter()
            .map(|((component, verb, resource, subresource), hist)| ApiCallStats {
                component: component.into(),
                verb: verb.into(),
                resource: resource.into(),
                subresource: subresource.into(),
                count: hist.values().sum(),
                latency_ms: hist.into_iter().map(|(ms, n)| [ms, n]).collect(),
            })
            .collect();
        let rec = TraceRecord::ApiRequests { t: end, from: self.api_window_start, calls };
        self.write_file_only(&rec);
        self.notify(&rec);
    }

    /// Writes a line to the file only: the run's header and outcome, which the hash leaves
    /// out.
    pub fn write_unhashed(&mut self, rec: &TraceRecord) {
        self.write_file_only(rec);
        if let Some(f) = &mut self.file {
            if let Err(e) = f.flush() {
                self.error.get_or_insert_with(|| e.to_string());
            }
        }
    }

    /// Writes a line to the file outside the hash and the record count, and hands it to
    /// the observers: a measurement's mark ([`TraceRecord::Start`]).
    pub fn note(&mut self, rec: &TraceRecord) {
        self.write_file_only(rec);
        self.notify(rec);
    }

    /// Writes a line to the file, outside the hash and the record count.
    fn write_file_only(&mut self, rec: &TraceRecord) {
        if let Some(f) = &mut self.file {
            let line = serde_json::to_vec(rec).expect("trace records always serialize");
            if let Err(e) = f.write_all(&line).and_then(|()| f.write_all(b"\n")) {
                self.error.get_or_insert_with(|| e.to_string());
            }
        }
    }

    /// Records events a member applied, each revision once: every member applies the
    /// same history, and the first to apply a revision writes it.
    pub fn record_committed(&mut self, events: &[kubesim_model::etcd::MvccEvent<Arc<Object>>], t: SimTime) {
        let floor = self.recorded_revision;
        for ev in events {
            if ev.kv.mod_revision <= floor {
                continue;
            }
            self.recorded_revision = self.recorded_revision.max(ev.kv.mod_revision);
            if let Some(rec) = crate::record_of(ev, t) {
                self.record(&rec);
            }
        }
    }

    pub fn record(&mut self, rec: &TraceRecord) {
        self.roll_api_window(rec.time().as_millis());
        let mut leader = None;
        if let TraceRecord::Write { t, verb, object, .. } = rec {
            self.writes += 1;
            let type_ = match verb.as_str() {
                "create" => WatchEventType::Added,
                "delete" => WatchEventType::Deleted,
                _ => WatchEventType::Modified,
            };
            let old = self.state.apply(&WatchEvent { type_, object: object.clone() });
            leader = leader_change(*t, old.as_deref(), object);
            if !self.write_watches.is_empty() {
                let key = object.key();
                for w in self.write_watches.iter_mut().filter(|w| w.first.is_none() && w.key == key) {
                    if (w.matches)(object) {
                        w.first = Some(SimTime(*t));
                    }
                }
            }
        }
        self.write_line(rec);
        self.notify(rec);
        if let Some(l) = leader {
            self.write_line(&l);
            self.notify(&l);
        }
    }

    fn notify(&mut self, rec: &TraceRecord) {
        for o in &mut self.observers {
            o(rec, &self.state);
        }
    }

    /// Adds an observer of every record from now on (it never changes the trace).
    pub fn observe(&mut self, observer: Observer) {
        self.observers.push(observer);
    }

    /// Watches writes of `key` for `matches`; returns the watch's index.
    pub fn watch_writes(
        &mut self,
        key: kubesim_model::api::ObjectKey,
        matches: Box<dyn Fn(&Object) -> bool + Send>,
    ) -> usize {
        self.write_watches.push(WriteWatch { key, matches, first: None });
        self.write_watches.len() - 1
    }

    /// When a write watch first matched.
    pub fn write_matched_at(&self, watch: usize) -> Option<SimTime> {
        self.write_watches.get(watch).and_then(|w| w.first)
    }

    /// Every leader change recorded so far.
    pub fn leaders(&self) -> &[Leadership] {
        &self.leaders
    }

    fn write_line(&mut self, rec: &TraceRecord) {
        if let TraceRecord::Leader { t, component, host, term } = rec {
            self.leaders.push(Leadership {
                t: SimTime(*t),
                component: component.clone(),
                host: host.clone(),
                term: *term,
            });
        }
        self.lines += 1;
        if self.hasher.is_none() && self.file.is_none() {
            return;
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, rec).expect("trace records always serialize");
        self.line.push(b'\n');
        if let Some(h) = &mut self.hasher {
            h.update(&self.line);
        }
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write_all(&self.line) {
                self.error.get_or_insert_with(|| e.to_string());
            }
        }
    }

    /// The committed cluster state so far.
    pub fn state(&self) -> &Cache {
        &self.state
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Records without hashing them (the trace file, if any, is still written);
    /// [`TraceSink::finish`] then returns [`UNHASHED`].
    pub fn without_hash(mut self) -> Self {
        self.hasher = None;
        self
    }

    /// Flushes the file and returns the hex trace hash.
    pub fn finish(&mut self) -> Result<String, String> {
        // The last window, cut at the last instant recorded.
        let end = self.last_t.max(self.api_window_start);
        self.flush_api_window(end);
        if let Some(f) = &mut self.file {
            if let Err(e) = f.flush() {
                self.error.get_or_insert_with(|| e.to_string());
            }
        }
        if let Some(e) = &self.error {
            return Err(format!("writing the trace file failed: {e}"));
        }
        let Some(hasher) = &self.hasher else { return Ok(UNHASHED.into()) };
        let digest = hasher.clone().finalize();
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// The trace hash of a run that asked for none.
pub const UNHASHED: &str = "(not hashed)";

/// A leader-election Lease (kube-system/kube-controller-manager, kube-scheduler) that
/// changed holder: the new leader, its host (the identity's `<host>_<uuid>` prefix) and the
/// Lease's transition count as the term.
fn leader_change(t: u64, old: Option<&Object>, new: &Object) -> Option<TraceRecord> {
    let lease = new.as_lease()?;
    if lease.metadata.namespace != "kube-system" {
        return None;
    }
    let holder = lease.spec.holder_identity.clone().unwrap_or_default();
    let before = old.and_then(|o| o.as_lease()).and_then(|l| l.spec.holder_identity.clone());
    if holder.is_empty() || before.as_deref() == Some(holder.as_str()) {
        return None;
    }
    Some(TraceRecord::Leader {
        t,
        component: lease.metadata.name.clone(),
        host: holder.split('_').next().unwrap_or_default().to_string(),
        term: lease.spec.lease_transitions.unwrap_or(0) as u64,
    })
}

/// Cluster state rebuilt from a trace at one instant, with the non-write records seen.
#[derive(Default)]
pub struct Replay {
    pub state: Cache,
    pub records: Vec<TraceRecord>,
    /// Time of the last record read.
    pub last_time: SimTime,
}

/// Reads a trace up to and including time `at`.
pub fn replay(reader: impl BufRead, at: SimTime) -> Result<Replay, String> {
    let mut out = Replay::default();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: TraceRecord = serde_json::from_str(&line)
            .map_err(|e| format!("line {}: not a kubesim trace record: {e}", i + 1))?;
        if rec.time() > at {
            break;
        }
        out.last_time = rec.time();
        match &rec {
            TraceRecord::Write { verb, object, .. } => {
                let type_ = if verb == "delete" { WatchEventType::Deleted } else { WatchEventType::Added };
                out.state.apply(&WatchEvent { type_, object: object.clone() });
            }
            _ => out.records.push(rec),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubesim_model::process::ApiCall;

    fn fault(t: u64) -> TraceRecord {
        TraceRecord::Fault { t, fault: "partition".into(), detail: "node-2".into() }
    }

    fn call(latency_ms: u64) -> ApiCall {
        ApiCall { client: 7, verb: "POST", resource: "pods", subresource: "binding", latency_ms }
    }

    #[test]
    fn api_request_windows_reach_observers_but_not_the_hash_or_the_count() {
        let mut plain = TraceSink::new(None);
        plain.record(&fault(1_000));
        plain.record(&fault(25_000));

        let mut measured = TraceSink::new(None);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        measured.observe(Box::new(move |rec, _| s.lock().unwrap().push(rec.clone())));
        measured.record(&fault(1_000));
        measured.record_api_calls(&[call(3), call(3), call(40)], SimTime(2_000), |_| "kube-scheduler");
        measured.record_api_calls(&[call(5)], SimTime(12_000), |_| "kube-scheduler");
        measured.record(&fault(25_000));

        assert_eq!(measured.lines(), plain.lines());
        assert_eq!(measured.finish(), plain.finish());
        // One line per 10 s window that had requests, each with its exact latencies.
        let windows: Vec<(u64, u64, Vec<[u64; 2]>)> = seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| match r {
                TraceRecord::ApiRequests { t, from, calls } => {
                    Some((*from, *t, calls.iter().flat_map(|c| c.latency_ms.clone()).collect()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(windows, [(0, 10_000, vec![[3, 2], [40, 1]]), (10_000, 20_000, vec![[5, 1]])]);
    }
}
