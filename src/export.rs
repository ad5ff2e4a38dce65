//! `kubesim export --perfetto TRACE -o run.json`: a run in the Chrome trace event format
//! ("Trace Event Format", the JSON that Perfetto's UI and chrome://tracing open).
//!
//! - a process per host (`cp-1`, `node-2`, ...) and one for the cluster as a whole;
//! - on a control-plane host, a thread per component (`etcd`, `kube-scheduler`,
//!   `kube-controller-manager`) holding a complete slice (`ph: "X"`) per leader term;
//! - on a worker host, a thread per pod bound to it, holding a slice per phase (Pending
//!   unscheduled, Pending on the node, Running, Succeeded, Failed, Terminating), and a
//!   `kubelet` thread with the node's Events; pods never bound go under `unscheduled`;
//! - instants (`ph: "i"`): faults (global scope), timeline actions, and every Kubernetes
//!   Event on its object's thread.
//!
//! Timestamps are microseconds of simulated time (the format's unit).

use std::collections::BTreeMap;
use std::io::BufRead;

use kubesim_model::api::Object;
use kubesim_sim::TraceRecord;
use serde_json::{json, Value};

use crate::metrics::PodState;

/// The cluster-wide process: faults, actions, Events of cluster objects.
const CLUSTER: &str = "cluster";
const UNSCHEDULED: &str = "unscheduled";

#[derive(Default)]
struct Tracks {
    pids: BTreeMap<String, u64>,
    tids: BTreeMap<(u64, String), u64>,
    meta: Vec<Value>,
}

impl Tracks {
    fn pid(&mut self, process: &str) -> u64 {
        if let Some(p) = self.pids.get(process) {
            return *p;
        }
        let pid = self.pids.len() as u64 + 1;
        self.pids.insert(process.to_string(), pid);
        self.meta.push(json!({"name": "process_name", "ph": "M", "ts": 0, "pid": pid, "tid": 0, "args": {"name": process}}));
        pid
    }

    fn track(&mut self, process: &str, thread: &str) -> (u64, u64) {
        let pid = self.pid(process);
        let key = (pid, thread.to_string());
        if let Some(t) = self.tids.get(&key) {
            return (pid, *t);
        }
        let tid = self.tids.len() as u64 + 1;
        self.tids.insert(key, tid);
        self.meta.push(json!({"name": "thread_name", "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": {"name": thread}}));
        (pid, tid)
    }
}

struct OpenPod {
    name: String,
    node: String,
    state: PodState,
    since_ms: u64,
}

/// Converts a trace (as `kubesim run --trace` writes it) to the trace event format.
pub fn perfetto(reader: impl BufRead) -> Result<Value, String> {
    let mut tracks = Tracks::default();
    let mut events: Vec<Value> = Vec::new();
    let mut pods: BTreeMap<String, OpenPod> = BTreeMap::new();
    let mut terms: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
    let mut end_ms = 0u64;
    let slice = |tracks: &mut Tracks,
                 events: &mut Vec<Value>,
                 host: &str,
                 thread: &str,
                 name: &str,
                 from: u64,
                 to: u64,
                 args: Value| {
        let (pid, tid) = tracks.track(host, thread);
        events.push(json!({"name": name, "cat": "phase", "ph": "X", "ts": from * 1000, "dur": to.saturating_sub(from) * 1000, "pid": pid, "tid": tid, "args": args}));
    };
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: TraceRecord = serde_json::from_str(&line)
            .map_err(|e| format!("line {}: not a kubesim trace record: {e}", i + 1))?;
        let t = rec.time().as_millis();
        end_ms = end_ms.max(t);
        match &rec {
            TraceRecord::Write { verb, object, .. } => match object.as_ref() {
                Object::Pod(p) => {
                    let uid = p.metadata.uid.clone();
                    let state = if verb == "delete" { None } else { Some(PodState::of_pod(p)) };
                    let node = p.spec.node_name.clone();
                    let changed = pods
                        .get(&uid)
                        .is_none_or(|o| Some(o.state) != state || (o.node.is_empty() && !node.is_empty()));
                    if !changed {
                        continue;
                    }
                    if let Some(o) = pods.remove(&uid) {
                        let host = if node.is_empty() { o.node.clone() } else { node.clone() };
                        let host = if host.is_empty() { UNSCHEDULED.to_string() } else { host };
                        slice(
                            &mut tracks,
                            &mut events,
                            &host,
                            &o.name,
                            o.state.name(),
                            o.since_ms,
                            t,
                            json!({"uid": uid}),
                        );
                    }
                    if let Some(state) = state {
                        let name = format!("pod {}/{}", p.metadata.namespace, p.metadata.name);
                        pods.insert(uid, OpenPod { name, node, state, since_ms: t });
                    }
                }
                Object::Event(e) if verb == "create" || verb == "update" => {
                    let io = &e.involved_object;
                    let (host, thread) = match io.kind.as_str() {
                        "Pod" => match pods.get(&io.uid) {
                            Some(o) if !o.node.is_empty() => (o.node.clone(), o.name.clone()),
                            Some(o) => (UNSCHEDULED.to_string(), o.name.clone()),
                            None => (CLUSTER.to_string(), "events".to_string()),
                        },
                        "Node" => (io.name.clone(), "kubelet".to_string()),
                        _ => (CLUSTER.to_string(), "events".to_string()),
                    };
                    let (pid, tid) = tracks.track(&host, &thread);
                    events.push(json!({"name": e.reason, "cat": "event", "ph": "i", "s": "t", "ts": t * 1000, "pid": pid, "tid": tid,
                        "args": {"type": e.type_, "message": e.message, "object": format!("{} {}/{}", io.kind, io.namespace, io.name), "count": e.count}}));
                }
                _ => {}
            },
            TraceRecord::Fault { fault, detail, .. } => {
                let (pid, tid) = tracks.track(CLUSTER, "faults");
                events.push(json!({"name": fault, "cat": "fault", "ph": "i", "s": "g", "ts": t * 1000, "pid": pid, "tid": tid, "args": {"detail": detail}}));
            }
            TraceRecord::Action { action, detail, .. } => {
                let (pid, tid) = tracks.track(CLUSTER, "timeline");
                events.push(json!({"name": action, "cat": "action", "ph": "i", "s": "p", "ts": t * 1000, "pid": pid, "tid": tid, "args": {"detail": detail}}));
            }
            TraceRecord::EtcdAlarm { alarm, action, host, db_size_bytes, quota_bytes, .. } => {
                let (pid, tid) = tracks.track(CLUSTER, "etcd alarms");
                events.push(json!({"name": format!("{alarm} {action}"), "cat": "etcd", "ph": "i", "s": "g", "ts": t * 1000, "pid": pid, "tid": tid, "args": {"host": host, "dbSizeBytes": db_size_bytes, "quotaBytes": quota_bytes}}));
            }
            TraceRecord::Leader { component, host, term, .. } => {
                if let Some((h, tm, from)) = terms.insert(component.clone(), (host.clone(), *term, t)) {
                    slice(
                        &mut tracks,
                        &mut events,
                        &h,
                        component,
                        &format!("leader (term {tm})"),
                        from,
                        t,
                        json!({"term": tm}),
                    );
                }
            }
            TraceRecord::ApiRequests { .. }
            | TraceRecord::Run { .. }
            | TraceRecord::Start { .. }
            | TraceRecord::Scheduling { .. }
            | TraceRecord::Outcome { .. } => {}
        }
    }
    for (uid, o) in pods {
        let host = if o.node.is_empty() { UNSCHEDULED.to_string() } else { o.node.clone() };
        slice(
            &mut tracks,
            &mut events,
            &host,
            &o.name,
            o.state.name(),
            o.since_ms,
            end_ms,
            json!({"uid": uid}),
        );
    }
    for (component, (h, tm, from)) in terms {
        slice(
            &mut tracks,
            &mut events,
            &h,
            &component,
            &format!("leader (term {tm})"),
            from,
            end_ms,
            json!({"term": tm}),
        );
    }
    let mut all = std::mem::take(&mut tracks.meta);
    all.extend(events);
    Ok(
        json!({"traceEvents": all, "displayTimeUnit": "ms", "otherData": {"producer": "kubesim", "clock": "simulated time"}}),
    )
}

/// `kubesim export --perfetto TRACE -o FILE`.
pub fn export_file(trace: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    let f = std::fs::File::open(trace).map_err(|e| {
        format!("{}: {e} (write one with `kubesim run SCENARIO --trace FILE`)", trace.display())
    })?;
    let doc = perfetto(std::io::BufReader::new(f)).map_err(|e| format!("{}: {e}", trace.display()))?;
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    serde_json::to_writer(std::io::BufWriter::new(file), &doc).map_err(|e| format!("{}: {e}", out.display()))
}
