//! The kubelet's pod workers and container runtime, as upstream's kuberuntime manager
//! drives them (pkg/kubelet/kuberuntime/kuberuntime_manager.go SyncPod, v1.33):
//! image pulls with their back-off, container starts, exits by the container's own
//! behaviour or by OOM, restart policies with the crash-loop back-off, liveness /
//! readiness / startup probes, and the pod status the status manager writes
//! (pkg/kubelet/kubelet_pods.go getPhase, pkg/kubelet/status/generate.go).
//!
//! Everything here is driven by `now` and returns what to do (events, the next time to
//! look); nothing sleeps.

use std::collections::BTreeSet;
use std::time::Duration;

use super::behavior::{ContainerBehavior, ProbeScript};
use super::volumes::ConfigSource;
use crate::api::pod::{
    condition, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
};
use crate::api::{
    ConditionStatus, ContainerStatus, Pod, PodCondition, PodPhase, PodStatus, Probe, RestartPolicy,
};
use crate::time::{go_duration, SimTime};

/// pkg/kubelet/kubelet.go initialCrashLoopBackOff and MaxContainerBackOff.
pub const INITIAL_CRASH_LOOP_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_CRASH_LOOP_BACKOFF: Duration = Duration::from_secs(300);
/// flowcontrol.Backoff's HasExpiredFunc in the kubelet: an entry not updated for 600 s
/// (the container ran 10 minutes) starts over at the initial back-off.
pub const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// pkg/kubelet/kubelet.go imageBackOffPeriod and MaxImageBackOff.
pub const INITIAL_IMAGE_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_IMAGE_BACKOFF: Duration = Duration::from_secs(300);
/// pod_workers.go backOffPeriod: a pod whose sync hit a back-off is synced again after
/// wait.Jitter(10 s, 0.5), i.e. in [10 s, 15 s).
pub const POD_BACKOFF_RESYNC: Duration = Duration::from_secs(10);
/// The exit code of a process killed by SIGKILL (an OOM kill, a kill after the grace
/// period).
pub const EXIT_SIGKILL: i32 = 137;

/// One event the kubelet records on the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl PodEvent {
    pub(crate) fn normal(reason: &'static str, message: String) -> Self {
        PodEvent { warning: false, reason, message }
    }
    pub(crate) fn warning(reason: &'static str, message: String) -> Self {
        PodEvent { warning: true, reason, message }
    }
}

/// A finished container instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub started_at: SimTime,
    pub finished_at: SimTime,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Not started, or waiting to start again: the reason kubectl shows.
    Waiting {
        reason: String,
        message: String,
    },
    /// Pulling its image: asked for at `requested_at`, done (or failed) at `done_at`
    /// after `took` of pulling (the rest waited in the node's pull queue).
    Pulling {
        requested_at: SimTime,
        done_at: SimTime,
        took: Duration,
        error: Option<String>,
    },
    /// Created, running from this time.
    Starting {
        running_at: SimTime,
    },
    Running {
        started_at: SimTime,
        id: String,
    },
    Terminated(Terminated),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    fn name(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// pkg/kubelet/prober/worker.go: one probe of one running container.
#[derive(Clone, Debug)]
struct ProbeWorker {
    kind: ProbeKind,
    probe: Probe,
    script: ProbeScript,
    next_at: SimTime,
    /// Consecutive identical raw results, and the last raw result.
    run: i32,
    last: Option<bool>,
    /// The result the kubelet acts on (None: unknown yet).
    result: Option<bool>,
}

/// What a container is to its pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Regular,
    /// An init container: runs to completion before the next one starts.
    Init,
    /// A restartable init container (restartPolicy Always): started in order with the init
    /// containers, kept running beside the regular ones.
    Sidecar,
}

/// kubelet_pods.go convertToAPIContainerStatuses: the waiting reason of a container the
/// runtime has not created yet, for a pod without and with init containers.
pub const CONTAINER_CREATING: &str = "ContainerCreating";
pub const POD_INITIALIZING: &str = "PodInitializing";
/// kuberuntime ErrCreateContainerConfig: the container's configuration (its environment)
/// could not be made.
pub const CREATE_CONTAINER_CONFIG_ERROR: &str = "CreateContainerConfigError";

/// One container of a pod, as the runtime and the kubelet know it.
#[derive(Clone, Debug)]
pub struct ContainerRun {
    pub name: String,
    pub image: String,
    pub role: Role,
    /// The waiting reason before the runtime first creates it.
    default_waiting: &'static str,
    /// The waiting reason shown before a restart began, kept while the restart pulls and
    /// starts (upstream's pod status does not change while SyncPod runs).
    restart_waiting: Option<ContainerStateWaiting>,
    behavior: ContainerBehavior,
    pull_policy_always: bool,
    state: State,
    pub last: Option<Terminated>,
    pub restart_count: i32,
    /// The crash-loop back-off entry: (last update, current back-off).
    crash_backoff: Option<(SimTime, Duration)>,
    /// The image pull back-off entry: (last failure, current back-off, the error).
    pull_backoff: Option<(SimTime, Duration, String)>,
    probes: Vec<ProbeWorker>,
    memory_limit: Option<i64>,
    memory_request: i64,
    instance: u32,
    /// The finish time of the newest exited instance doBackOff looks at.
    backoff_ref: Option<SimTime>,
    /// Killed by a failed liveness or startup probe, to be restarted in this sync.
    probe_killed: bool,
}

/// What happened in one sync of a pod.
#[derive(Debug, Default)]
pub struct SyncResult {
    pub events: Vec<PodEvent>,
    /// Images this sync finished pulling (the node's image cache learns them).
    pub pulled: Vec<String>,
    /// When to look at the pod again for its own next step (a pull or start finishing,
    /// a probe due).
    pub wake: Option<SimTime>,
    /// When a container exits: the kubelet learns of it at its next PLEG relist.
    pub exit_wake: Option<SimTime>,
    /// The pod hit a back-off: resync it in [10 s, 15 s) (the caller adds the jitter).
    pub backoff_resync: bool,
}

impl SyncResult {
    fn wake_at(&mut self, t: SimTime) {
        self.wake = Some(self.wake.map_or(t, |w| w.min(t)));
    }
    fn exit_at(&mut self, t: SimTime) {
        self.exit_wake = Some(self.exit_wake.map_or(t, |w| w.min(t)));
    }
}

/// What the node's runtime and registry offer a pull.
#[derive(Clone, Copy, Debug)]
pub struct Images<'a> {
    /// Images on the node.
    pub present: &'a BTreeSet<String>,
    /// Images (`*` globs) the registry does not serve.
    pub unpullable: &'a BTreeSet<String>,
}

/// `format.Pod`: `name_namespace(uid)`.
pub fn format_pod(p: &Pod) -> String {
    format!("{}_{}({})", p.metadata.name, p.metadata.namespace, p.metadata.uid)
}

/// The reference containerd reports in pull errors: short names get docker.io/library.
fn normalized_image(image: &str) -> String {
    let with_tag = if image.rsplit('/').next().is_some_and(|last| last.contains(':') || last.contains('@')) {
        image.to_string()
    } else {
        format!("{image}:latest")
    };
    let first = with_tag.split('/').next().unwrap_or_default();
    if !with_tag.contains('/') {
        format!("docker.io/library/{with_tag}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        with_tag
    } else {
        format!("docker.io/{with_tag}")
    }
}

/// A 64-hex-digit digest derived from the reference (FNV-1a widened by splitmix64), so a
/// replay reports the same digest.
fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out += &format!("{:016x}", z ^ (z >> 31));
    }
    out
}

/// The imageID containerd reports: the repository with the image's digest.
fn image_id(image: &str) -> String {
    let full = normalized_image(image);
    let repo = match (full.split_once('@'), full.rsplit_once(':')) {
        (Some((r, _)), _) => r.to_string(),
        (None, Some((r, tag))) if !tag.contains('/') => r.to_string(),
        _ => full.clone(),
    };
    format!("{repo}@sha256:{}", digest(&full))
}

/// An image's names in the node's `status.images` (nodestatus.Images: the repo digests,
/// then the repo tags, as containerd lists them).
pub fn image_names(image: &str) -> Vec<String> {
    let tag = normalized_image(image);
    let id = image_id(image);
    if tag.contains('@') {
        vec![id]
    } else {
        vec![id, tag]
    }
}

/// containerd's error for an image that does not exist.
pub fn image_not_found_error(image: &str) -> String {
    let r = normalized_image(image);
    format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{r}\": failed to resolve reference \"{r}\": {r}: not found"
    )
}

/// SetDefaults_Container: imagePullPolicy Always for `:latest` or no tag, else
/// IfNotPresent.
fn pulls_always(image: &str, policy: &str) -> bool {
    match policy {
        "Always" => true,
        "IfNotPresent" | "Never" => false,
        _ => {
            let last = image.rsplit('/').next().unwrap_or(image);
            !last.contains('@') && (!last.contains(':') || last.ends_with(":latest"))
        }
    }
}

/// The containers of a pod as the runtime will run them: its init containers (and
/// sidecars) in order, then its regular containers, each with the behaviour the scenario
/// gives it.
pub fn containers_for(
    p: &Pod,
    behaviors: &super::behavior::Behaviors,
    default_pull: Duration,
) -> Vec<ContainerRun> {
    let initializing = !p.spec.init_containers.is_empty();
    let run = |c: &crate::api::Container| {
        let m = &p.metadata;
        let b = behaviors.find(&c.image, &c.name, &m.labels, &m.annotations);
        let run = ContainerRun::new(c, b, default_pull);
        if initializing {
            run.initializing()
        } else {
            run
        }
    };
    let init = p.spec.init_containers.iter().map(|c| {
        let role = if c.is_sidecar() { Role::Sidecar } else { Role::Init };
        run(c).with_role(role)
    });
    init.chain(p.spec.containers.iter().map(run)).collect()
}

impl ContainerRun {
    pub fn new(
        c: &crate::api::Container,
        behavior: Option<&ContainerBehavior>,
        default_pull: Duration,
    ) -> Self {
        let mut behavior = behavior.cloned().unwrap_or_default();
        behavior.pull_duration.get_or_insert(default_pull);
        let mem = |r: &crate::api::ResourceList| r.get("memory").map(|q| q.value());
        let memory_limit = mem(&c.resources.limits);
        let memory_request = mem(&c.resources.requests).or(memory_limit).unwrap_or(0);
        let probe = |kind, p: &Option<Probe>, script: &ProbeScript| {
            p.as_ref().map(|p| ProbeWorker {
                kind,
                probe: p.clone(),
                script: script.clone(),
                next_at: SimTime::ZERO,
                run: 0,
                last: None,
                result: None,
            })
        };
        let probes = [
            probe(ProbeKind::Startup, &c.startup_probe, &behavior.startup),
            probe(ProbeKind::Liveness, &c.liveness_probe, &behavior.liveness),
            probe(ProbeKind::Readiness, &c.readiness_probe, &behavior.readiness),
        ]
        .into_iter()
        .flatten()
        .collect();
        ContainerRun {
            name: c.name.clone(),
            image: c.image.clone(),
            role: Role::Regular,
            default_waiting: CONTAINER_CREATING,
            restart_waiting: None,
            pull_policy_always: pulls_always(&c.image, &c.image_pull_policy),
            behavior,
            state: State::Waiting { reason: CONTAINER_CREATING.into(), message: String::new() },
            last: None,
            restart_count: 0,
            crash_backoff: None,
            pull_backoff: None,
            probes,
            memory_limit,
            memory_request,
            instance: 0,
            backoff_ref: None,
            probe_killed: false,
        }
    }

    /// The same container as an init container or a sidecar of a pod with init containers.
    fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        if role == Role::Init && self.behavior.exit.is_none() {
            // An init container no behaviour ends completes as soon as it starts.
            self.behavior.exit = Some(super::behavior::Exit { after: Duration::ZERO, code: 0, times: None });
        }
        self
    }

    fn initializing(mut self) -> Self {
        self.default_waiting = POD_INITIALIZING;
        self.state = State::Waiting { reason: POD_INITIALIZING.into(), message: String::new() };
        self
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Memory the container uses now (its working set).
    pub fn memory_bytes(&self, now: SimTime) -> i64 {
        match (&self.state, &self.behavior.memory) {
            (State::Running { started_at, .. }, Some(p)) => p.at(now.saturating_sub(*started_at)).max(0),
            (State::Running { .. }, None) => self.memory_request,
            _ => 0,
        }
    }

    /// Bytes the container wrote to its writable layer and logs; they stay until the
    /// container is removed (a restart starts a new layer).
    pub fn disk_bytes(&self, now: SimTime) -> i64 {
        let Some(p) = &self.behavior.disk else { return 0 };
        match &self.state {
            State::Running { started_at, .. } => p.at(now.saturating_sub(*started_at)).max(0),
            State::Terminated(t) => p.at(t.finished_at.saturating_sub(t.started_at)).max(0),
            _ => 0,
        }
    }

    pub fn processes(&self) -> i64 {
        if self.is_running() {
            self.behavior.processes.unwrap_or(1)
        } else {
            0
        }
    }

    /// Its exit code when stopped with SIGTERM.
    fn sigterm_exit_code(&self) -> i32 {
        // 128 + SIGTERM(15): a process without a handler dies of the signal.
        self.behavior.sigterm_exit_code.unwrap_or(143)
    }

    /// The size of its image on disk (from its behaviour; 0 when unknown).
    pub fn image_size_bytes(&self) -> i64 {
        self.behavior.image_size_bytes.unwrap_or(0)
    }

    pub fn memory_request(&self) -> i64 {
        self.memory_request
    }

    fn started_probe_ok(&self) -> bool {
        self.probes.iter().filter(|w| w.kind == ProbeKind::Startup).all(|w| w.result == Some(true))
    }

    /// prober_manager.go UpdatePodStatus: an init container is ready once it exited 0; a
    /// sidecar or a regular container while it runs, has started and passes readiness.
    fn ready(&self) -> bool {
        if self.role == Role::Init {
            return matches!(&self.state, State::Terminated(t) if t.exit_code == 0);
        }
        self.is_running()
            && self.started_probe_ok()
            && self.probes.iter().filter(|w| w.kind == ProbeKind::Readiness).all(|w| w.result == Some(true))
    }

    /// When this container's own next step is due, and when it exits.
    fn next_at(&self) -> (Option<SimTime>, Option<SimTime>) {
        let mut t = match &self.state {
            State::Pulling { done_at, .. } => Some(*done_at),
            State::Starting { running_at } => Some(*running_at),
            _ => None,
        };
        let mut exit = None;
        if let State::Running { started_at, .. } = &self.state {
            exit = self.exit_at(*started_at);
            for w in &self.probes {
                t = Some(t.map_or(w.next_at, |x| x.min(w.next_at)));
            }
        }
        (t, exit)
    }

    /// When a running container exits on its own or is OOM-killed.
    fn exit_at(&self, started_at: SimTime) -> Option<SimTime> {
        let own = self.behavior.exit.as_ref().map(|e| started_at + e.after);
        let oom = self.oom_at(started_at);
        match (own, oom) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn oom_at(&self, started_at: SimTime) -> Option<SimTime> {
        let limit = self.memory_limit?;
        let profile = self.behavior.memory.as_ref()?;
        profile.reaches(limit).map(|d| started_at + d)
    }

    /// A new container ID: 64 hex digits as containerd's, derived from the pod, the
    /// container and the instance so that a replay gives the same IDs.
    fn new_id(&mut self, pod_uid: &str) -> String {
        self.instance += 1;
        format!("containerd://{}", digest(&format!("{pod_uid}/{}/{}", self.name, self.instance)))
    }

    fn terminate(&mut self, now: SimTime, exit_code: i32, reason: &str) {
        if let State::Running { started_at, id } = &self.state {
            self.state = State::Terminated(Terminated {
                exit_code,
                reason: reason.into(),
                started_at: *started_at,
                finished_at: now,
                id: id.clone(),
            });
            for w in &mut self.probes {
                w.result = None;
                w.run = 0;
                w.last = None;
            }
        }
    }

    /// Kill from the kubelet (pod deletion, eviction, a failed liveness probe): SIGTERM,
    /// and the simulated process exits at once.
    pub fn kill(&mut self, now: SimTime) {
        let code = self.sigterm_exit_code();
        self.terminate(now, code, if code == 0 { "Completed" } else { "Error" });
    }

    /// The container status the kubelet reports.
    fn status(&self) -> ContainerStatus {
        let state = match &self.state {
            State::Waiting { reason, message } => ContainerState {
                waiting: Some(ContainerStateWaiting { reason: reason.clone(), message: message.clone() }),
                ..Default::default()
            },
            State::Pulling { .. } | State::Starting { .. } => {
                // While SyncPod pulls and starts, the status stays what it was: a first
                // start shows the default reason (ContainerCreating, or PodInitializing in
                // a pod with init containers); a restart keeps its back-off reason.
                let waiting = match (&self.last, &self.restart_waiting) {
                    (None, _) => {
                        ContainerStateWaiting { reason: self.default_waiting.into(), ..Default::default() }
                    }
                    (Some(_), Some(w)) => w.clone(),
                    (Some(_), None) => {
                        ContainerStateWaiting { reason: CONTAINER_CREATING.into(), ..Default::default() }
                    }
                };
                ContainerState { waiting: Some(waiting), ..Default::default() }
            }
            State::Running { started_at, .. } => ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(*started_at) }),
                ..Default::default()
            },
            State::Terminated(t) => ContainerState { terminated: Some(terminated(t)), ..Default::default() },
        };
        let ran =
            !matches!(self.state, State::Waiting { .. } | State::Pulling { .. } | State::Starting { .. })
                || self.last.is_some();
        let id = match &self.state {
            State::Running { id, .. } => id.clone(),
            State::Terminated(t) => t.id.clone(),
            _ => self.last.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
        };
        ContainerStatus {
            name: self.name.clone(),
            state,
            last_state: self
                .last
                .as_ref()
                .map(|t| ContainerState { terminated: Some(terminated(t)), ..Default::default() })
                .unwrap_or_default(),
            ready: self.ready(),
            restart_count: self.restart_count,
            // Once a container ran, containerd reports the resolved reference and the
            // image's digest.
            image: if ran { normalized_image(&self.image) } else { self.image.clone() },
            image_id: if ran { image_id(&self.image) } else { String::new() },
            container_id: id,
            started: Some(self.is_running() && self.started_probe_ok()),
        }
    }
}

fn terminated(t: &Terminated) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        reason: t.reason.clone(),
        message: String::new(),
        started_at: Some(t.started_at),
        finished_at: Some(t.finished_at),
    }
}

/// `ShouldContainerBeRestarted` (pkg/kubelet/container/helpers.go).
fn should_restart(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::Never => false,
    }
}

/// Ensures a container's image, as image_manager.go EnsureImageExists does. Returns
/// true when the image is there and the container can be created now.
fn ensure_image(
    c: &mut ContainerRun,
    images: Images,
    queue: &mut PullQueue,
    now: SimTime,
    r: &mut SyncResult,
) -> bool {
    if !c.pull_policy_always && images.present.contains(&c.image) {
        r.events.push(PodEvent::normal(
            "Pulled",
            format!("Container image \"{}\" already present on machine", c.image),
        ));
        return true;
    }
    if let Some((failed_at, backoff, error)) = &c.pull_backoff {
        if now.saturating_sub(*failed_at) < *backoff {
            r.events.push(PodEvent::normal("BackOff", format!("Back-off pulling image \"{}\"", c.image)));
            r.events.push(PodEvent::warning("Failed", "Error: ImagePullBackOff".into()));
            c.state = State::Waiting {
                reason: "ImagePullBackOff".into(),
                message: format!("Back-off pulling image \"{}\": ErrImagePull: {error}", c.image),
            };
            r.backoff_resync = true;
            return false;
        }
    }
    r.events.push(PodEvent::normal("Pulling", format!("Pulling image \"{}\"", c.image)));
    let error = if images.unpullable.iter().any(|g| super::behavior::glob(g, &c.image)) {
        Some(image_not_found_error(&c.image))
    } else {
        c.behavior.pull_error.clone()
    };
    // serializeImagePulls (default true): one pull at a time on the node. A pull queued
    // behind another of the same image finds its content present and takes no time.
    let start = now.max(queue.free_at);
    let took = if error.is_none() && queue.done.get(&c.image).is_some_and(|t| *t <= start) {
        Duration::ZERO
    } else {
        c.behavior.pull_duration.unwrap_or_default()
    };
    let done_at = start + took;
    queue.free_at = done_at;
    if error.is_none() {
        queue.done.insert(c.image.clone(), done_at);
    }
    c.state = State::Pulling { requested_at: now, done_at, took, error };
    r.wake_at(done_at);
    false
}

/// The node's image puller (pkg/kubelet/images/puller.go serialImagePuller): pulls run
/// one after another.
#[derive(Clone, Debug, Default)]
pub struct PullQueue {
    /// When the pull in progress (and those queued) will be done.
    pub free_at: SimTime,
    /// When each image's latest successful pull is done.
    pub done: std::collections::BTreeMap<String, SimTime>,
}

/// Creates and starts a container whose image is present (startContainer after the
/// pull): its environment is made first, and a ConfigMap or Secret it reads that is
/// missing fails the start with CreateContainerConfigError.
fn create(c: &mut ContainerRun, p: &Pod, cfg: ConfigSource, now: SimTime, r: &mut SyncResult) {
    let spec = p.spec.init_containers.iter().chain(&p.spec.containers).find(|x| x.name == c.name);
    let env_error = spec.and_then(|spec| super::volumes::env_error(spec, &p.metadata.namespace, cfg));
    if let Some(err) = env_error {
        // kuberuntime_container.go startContainer: "Error: %v" with the message, and the
        // pod worker tries again after its back-off.
        r.events.push(PodEvent::warning("Failed", format!("Error: {err}")));
        c.state = State::Waiting { reason: CREATE_CONTAINER_CONFIG_ERROR.into(), message: err };
        r.backoff_resync = true;
        return;
    }
    if c.last.is_some() {
        c.restart_count += 1;
    }
    // kuberuntime_container.go startContainer (v1.33 messages).
    r.events.push(PodEvent::normal("Created", format!("Created container: {}", c.name)));
    // Its start completes at its next look (`next_at`).
    c.state = State::Starting { running_at: now + c.behavior.start_duration };
}

/// `doBackOff`: whether a restart must wait, recording the BackOff event and the
/// CrashLoopBackOff reason if so; otherwise advances the back-off entry.
fn crash_backoff(c: &mut ContainerRun, p: &Pod, now: SimTime, r: &mut SyncResult) -> bool {
    let Some(finished) = c.backoff_ref else { return false };
    if let Some((last_update, backoff)) = c.crash_backoff {
        let expired = finished.saturating_sub(last_update) > BACKOFF_RESET;
        if !expired && now.saturating_sub(finished) < backoff {
            let pod = format_pod(p);
            r.events.push(PodEvent::warning(
                "BackOff",
                format!("Back-off restarting failed container {} in pod {pod}", c.name),
            ));
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!(
                    "back-off {} restarting failed container={} pod={pod}",
                    go_duration(backoff),
                    c.name
                ),
            };
            r.backoff_resync = true;
            return true;
        }
        c.crash_backoff = Some((
            now,
            if expired { INITIAL_CRASH_LOOP_BACKOFF } else { (backoff * 2).min(MAX_CRASH_LOOP_BACKOFF) },
        ));
    } else {
        c.crash_backoff = Some((now, INITIAL_CRASH_LOOP_BACKOFF));
    }
    false
}

/// Advances one container to `now`: pulls finishing, starts completing, exits, probes.
/// Returns true when a start failed in this call (its pull, or the container's
/// configuration after the pull): the sync that pulled ends with the error (the pull ran
/// inside SyncPod upstream) and does not try again.
fn advance(c: &mut ContainerRun, p: &Pod, cfg: ConfigSource, now: SimTime, r: &mut SyncResult) -> bool {
    let pod_uid = p.metadata.uid.clone();
    loop {
        match c.state.clone() {
            State::Pulling { requested_at, done_at, took, error } if done_at <= now => match error {
                None => {
                    let waited = go_duration(done_at.saturating_sub(requested_at));
                    let took = go_duration(took);
                    let size = c.behavior.image_size_bytes.unwrap_or(0);
                    r.events.push(PodEvent::normal(
                        "Pulled",
                        format!("Successfully pulled image \"{}\" in {took} ({waited} including waiting). Image size: {size} bytes.", c.image),
                    ));
                    r.pulled.push(c.image.clone());
                    c.pull_backoff = None;
                    create(c, p, cfg, done_at, r);
                    if matches!(c.state, State::Waiting { .. }) {
                        // Its configuration could not be made: this sync's start failed.
                        return true;
                    }
                }
                Some(err) => {
                    r.events.push(PodEvent::warning(
                        "Failed",
                        format!("Failed to pull image \"{}\": {err}", c.image),
                    ));
                    r.events.push(PodEvent::warning("Failed", "Error: ErrImagePull".into()));
                    let backoff = match &c.pull_backoff {
                        Some((last, b, _)) if done_at.saturating_sub(*last) <= BACKOFF_RESET => {
                            (*b * 2).min(MAX_IMAGE_BACKOFF)
                        }
                        _ => INITIAL_IMAGE_BACKOFF,
                    };
                    c.pull_backoff = Some((done_at, backoff, err.clone()));
                    c.state = State::Waiting { reason: "ErrImagePull".into(), message: err };
                    r.backoff_resync = true;
                    return true;
                }
            },
            State::Starting { running_at } if running_at <= now => {
                r.events.push(PodEvent::normal("Started", format!("Started container {}", c.name)));
                let id = c.new_id(&pod_uid);
                c.state = State::Running { started_at: running_at, id };
                for w in &mut c.probes {
                    w.next_at = running_at + Duration::from_secs(w.probe.initial_delay() as u64);
                    w.result = match w.kind {
                        ProbeKind::Liveness => Some(true),
                        ProbeKind::Readiness => Some(false),
                        ProbeKind::Startup => None,
                    };
                }
            }
            State::Running { started_at, .. } => {
                let exit = c.exit_at(started_at).filter(|t| *t <= now);
                let probe_due = c.probes.iter().map(|w| w.next_at).min().filter(|t| *t <= now);
                match (exit, probe_due) {
                    (Some(e), p) if p.is_none_or(|p| e <= p) => {
                        let oom = c.oom_at(started_at) == Some(e);
                        let (code, reason) = if oom {
                            (EXIT_SIGKILL, "OOMKilled")
                        } else {
                            let code = c.behavior.exit.as_ref().map_or(0, |x| x.code_of_run(c.instance));
                            (code, if code == 0 { "Completed" } else { "Error" })
                        };
                        c.terminate(e, code, reason);
                        return false;
                    }
                    (_, Some(t)) => {
                        if run_probes(c, t, r) {
                            return false;
                        }
                    }
                    _ => return false,
                }
            }
            _ => return false,
        }
    }
}

/// Runs the probes due at `t`; returns true when a liveness or startup failure killed
/// the container.
fn run_probes(c: &mut ContainerRun, t: SimTime, r: &mut SyncResult) -> bool {
    let State::Running { started_at, .. } = c.state.clone() else { return false };
    let elapsed = t.saturating_sub(started_at);
    let started = c.started_probe_ok();
    let mut kill = None;
    for w in c.probes.iter_mut().filter(|w| w.next_at <= t) {
        w.next_at = t + Duration::from_secs(w.probe.period() as u64);
        // worker.go doProbe: only the startup probe runs until it succeeds; a startup
        // probe that succeeded stops.
        match w.kind {
            ProbeKind::Startup if w.result == Some(true) => continue,
            ProbeKind::Liveness | ProbeKind::Readiness if !started => continue,
            _ => {}
        }
        let ok = w.script.succeeds_at(elapsed);
        if !ok {
            let output = w
                .script
                .failure_output
                .clone()
                .unwrap_or_else(|| "HTTP probe failed with statuscode: 500".into());
            r.events
                .push(PodEvent::warning("Unhealthy", format!("{} probe failed: {output}", w.kind.name())));
        }
        w.run = if w.last == Some(ok) { w.run + 1 } else { 1 };
        w.last = Some(ok);
        let threshold = if ok { w.probe.success_threshold() } else { w.probe.failure_threshold() };
        if w.run >= threshold {
            w.result = Some(ok);
        }
        if !ok && w.run >= w.probe.failure_threshold() && w.kind != ProbeKind::Readiness {
            kill = Some(w.kind);
        }
    }
    if let Some(kind) = kill {
        let what = if kind == ProbeKind::Liveness { "liveness" } else { "startup" };
        r.events.push(PodEvent::normal(
            "Killing",
            format!("Container {} failed {what} probe, will be restarted", c.name),
        ));
        c.kill(t);
        c.probe_killed = true;
        return true;
    }
    false
}

/// What computeInitContainerActions decides (kuberuntime_container.go, SidecarContainers
/// GA in v1.33).
#[derive(Debug, Default, PartialEq, Eq)]
struct InitActions {
    /// Every init container is done (the sidecars started): regular containers may run.
    initialized: bool,
    /// Init containers to start (or restart), in spec order.
    to_start: Vec<usize>,
    /// An init container failed under restartPolicy Never: the pod fails.
    kill_pod: bool,
}

/// An init container as the runtime reports it.
enum Runtime {
    /// Never created.
    Absent,
    /// Being pulled or created (SyncPod is starting it).
    Starting,
    Running,
    /// Its latest instance exited with this code (and was not replaced yet).
    Exited(i32),
}

fn runtime(c: &ContainerRun) -> Runtime {
    match (&c.state, &c.last) {
        (State::Pulling { .. } | State::Starting { .. }, _) => Runtime::Starting,
        (State::Running { .. }, _) => Runtime::Running,
        (State::Terminated(t), _) | (State::Waiting { .. }, Some(t)) => Runtime::Exited(t.exit_code),
        (State::Waiting { .. }, None) => Runtime::Absent,
    }
}

/// `computeInitContainerActions`: walking the init containers from the last, find the
/// next one to start and the sidecars to keep running. A regular container created or
/// running means the pod was initialized before.
fn init_actions(cs: &[ContainerRun], policy: RestartPolicy) -> InitActions {
    let init: Vec<usize> = (0..cs.len()).filter(|i| cs[*i].role != Role::Regular).collect();
    let Some(&last) = init.last() else { return InitActions { initialized: true, ..Default::default() } };
    let mut a = InitActions {
        initialized: cs.iter().any(|c| {
            c.role == Role::Regular && matches!(c.state, State::Starting { .. } | State::Running { .. })
        }),
        ..Default::default()
    };
    let mut previously = a.initialized;
    for &i in init.iter().rev() {
        let c = &cs[i];
        let sidecar = c.role == Role::Sidecar;
        match runtime(c) {
            Runtime::Absent => {
                if previously && sidecar {
                    a.to_start.push(i);
                }
                continue;
            }
            // After initialization only the sidecars are kept running.
            _ if previously && !sidecar => continue,
            Runtime::Starting => {}
            // A sidecar counts once started (its startup probe passed); a failing
            // startup or liveness probe restarts it through the prober.
            Runtime::Running if sidecar && c.started_probe_ok() => {
                if i == last {
                    a.initialized = true;
                } else if !previously {
                    a.to_start.push(i + 1);
                }
            }
            Runtime::Running => {}
            Runtime::Exited(_) if sidecar => a.to_start.push(i),
            Runtime::Exited(code) if code != 0 => {
                // shouldRestartOnFailure: any restartPolicy but Never.
                if policy == RestartPolicy::Never {
                    return InitActions { kill_pod: true, ..Default::default() };
                }
                a.to_start.push(i);
            }
            Runtime::Exited(_) if i == last => a.initialized = true,
            Runtime::Exited(_) => a.to_start.push(i + 1),
        }
        previously = true;
    }
    if !previously {
        a.to_start.push(init[0]);
    }
    a.to_start.reverse();
    a
}

/// SyncPod's `start` of one container: the exited instance becomes lastState, then
/// doBackOff, EnsureImageExists and the container's creation. Returns false when the
/// start failed (a crash-loop back-off, a pull error or its back-off, a config error).
#[allow(clippy::too_many_arguments)]
fn start(
    c: &mut ContainerRun,
    p: &Pod,
    cfg: ConfigSource,
    images: Images,
    queue: &mut PullQueue,
    now: SimTime,
    r: &mut SyncResult,
) -> bool {
    if let State::Terminated(t) = &c.state {
        let t = t.clone();
        // The exited instance becomes lastState; restartCount counts the new instance
        // when it is created (the kuberuntime restartCount label). doBackOff looks at
        // the newest exited instance the runtime reports. A container killed for a
        // failed probe is restarted in the same SyncPod, whose runtime status still shows
        // it running: the newest exited instance is then the one before (none: no
        // back-off).
        if !std::mem::take(&mut c.probe_killed) {
            c.backoff_ref = Some(t.finished_at);
        }
        c.last = Some(t);
        c.state = State::Waiting { reason: String::new(), message: String::new() };
    }
    let State::Waiting { reason, message } = &c.state else { return true };
    c.restart_waiting = (c.last.is_some() && !reason.is_empty())
        .then(|| ContainerStateWaiting { reason: reason.clone(), message: message.clone() });
    if crash_backoff(c, p, now, r) {
        return false;
    }
    if ensure_image(c, images, queue, now, r) {
        create(c, p, cfg, now, r);
        // A container that starts at once runs in this sync.
        advance(c, p, cfg, now, r);
    }
    !matches!(c.state, State::Waiting { .. })
}

/// Stops the running containers among `which` (regular ones first, then init containers
/// and sidecars last to first, as v1.33 orders termination); records Killing events.
fn kill(
    containers: &mut [ContainerRun],
    now: SimTime,
    which: impl Fn(&ContainerRun) -> bool,
) -> Vec<PodEvent> {
    let mut events = Vec::new();
    let regular = (0..containers.len()).filter(|i| containers[*i].role == Role::Regular);
    let init = (0..containers.len()).rev().filter(|i| containers[*i].role != Role::Regular);
    for i in regular.chain(init).collect::<Vec<_>>() {
        let c = &mut containers[i];
        if !which(c) {
            continue;
        }
        if c.is_running() {
            // kuberuntime_container.go killContainer.
            events.push(PodEvent::normal("Killing", format!("Stopping container {}", c.name)));
            c.kill(now);
        } else if !matches!(c.state, State::Terminated(_)) {
            c.state = State::Waiting { reason: String::new(), message: String::new() };
        }
    }
    events
}

/// One sync of a pod's containers (kuberuntime_manager.go SyncPod): advance each to
/// `now`; then, as computePodActions decides, start the next init container and keep
/// the sidecars running, and once the pod is initialized start or restart its regular
/// containers. When its regular containers are done and will not restart, the sidecars
/// are stopped (KillPod).
pub fn sync_containers(
    containers: &mut [ContainerRun],
    p: &Pod,
    cfg: ConfigSource,
    images: Images,
    queue: &mut PullQueue,
    now: SimTime,
) -> SyncResult {
    let mut r = SyncResult::default();
    let policy = p.spec.restart_policy.unwrap_or_default();
    // A pull that failed in this sync ended it with ErrImagePull (the pull ran inside
    // SyncPod upstream): it is not tried again in the same sync.
    let pull_failed: Vec<bool> = containers.iter_mut().map(|c| advance(c, p, cfg, now, &mut r)).collect();
    // What the PLEG last saw: a container that exits (or a sidecar that starts) inside
    // this sync is seen by its next relist, which syncs the pod again.
    let seen: Vec<(bool, bool)> =
        containers.iter().map(|c| (matches!(c.state, State::Terminated(_)), c.is_running())).collect();
    let actions = init_actions(containers, policy);
    let regulars_done = containers.iter().filter(|c| c.role == Role::Regular).all(|c| match &c.state {
        State::Terminated(t) => !should_restart(policy, t.exit_code),
        _ => false,
    });
    if actions.kill_pod || (actions.initialized && regulars_done) {
        r.events.extend(kill(containers, now, ContainerRun::is_running));
    } else {
        for i in actions.to_start {
            let ok = pull_failed[i] || start(&mut containers[i], p, cfg, images, queue, now, &mut r);
            // An init container that cannot start holds the pod; a sidecar does not.
            if !ok && containers[i].role == Role::Init {
                break;
            }
        }
        if actions.initialized {
            for (i, c) in containers.iter_mut().enumerate().filter(|(_, c)| c.role == Role::Regular) {
                let needs_start = match &c.state {
                    State::Waiting { .. } => !pull_failed[i],
                    State::Terminated(t) => should_restart(policy, t.exit_code),
                    _ => false,
                };
                if needs_start {
                    start(c, p, cfg, images, queue, now, &mut r);
                }
            }
        }
    }
    for (c, (was_terminated, was_running)) in containers.iter().zip(seen) {
        let exited = !was_terminated && matches!(c.state, State::Terminated(_));
        let sidecar_started = c.role == Role::Sidecar && !was_running && c.is_running();
        if exited || sidecar_started {
            r.exit_at(now + Duration::from_millis(1));
        }
        let (step, exit) = c.next_at();
        if let Some(t) = step {
            r.wake_at(t);
        }
        if let Some(t) = exit {
            r.exit_at(t);
        }
    }
    r
}

/// Stops every running container (pod deletion or eviction); records Killing events.
pub fn kill_all(containers: &mut [ContainerRun], now: SimTime) -> Vec<PodEvent> {
    kill(containers, now, |_| true)
}

/// Crash one container (a scenario fault): it exits with `exit_code` now.
pub fn crash(containers: &mut [ContainerRun], name: &str, now: SimTime, exit_code: i32) -> bool {
    let Some(c) = containers.iter_mut().find(|c| c.name == name && c.is_running()) else { return false };
    c.terminate(now, exit_code, if exit_code == 0 { "Completed" } else { "Error" });
    true
}

/// `kubecontainer.HasAnyRegularContainerStarted`: a regular container running or exited.
fn any_regular_started(containers: &[ContainerRun]) -> bool {
    containers
        .iter()
        .any(|c| c.role == Role::Regular && matches!(c.state, State::Running { .. } | State::Terminated(_)))
}

/// `getPhase` (kubelet_pods.go, v1.33): init containers still to run keep the pod
/// Pending (a failed one fails it under restartPolicy Never); sidecars count as running
/// but not as stopped; then the regular containers decide.
pub fn phase(containers: &[ContainerRun], policy: RestartPolicy) -> PodPhase {
    let (mut pending_init, mut failed_init) = (0, 0);
    let (mut running, mut stopped, mut succeeded, mut waiting) = (0, 0, 0, 0);
    for c in containers {
        let last_failed = c.last.as_ref().map(|t| t.exit_code != 0);
        match (c.role, &c.state) {
            (Role::Init, State::Running { .. }) => pending_init += 1,
            (Role::Init, State::Terminated(t)) => failed_init += i32::from(t.exit_code != 0),
            (Role::Init, _) => match last_failed {
                Some(failed) => failed_init += i32::from(failed),
                None => pending_init += 1,
            },
            (Role::Sidecar, State::Running { .. }) => {
                if !c.started_probe_ok() {
                    pending_init += 1;
                }
                running += 1;
            }
            // Terminated sidecars do not count towards the phase.
            (Role::Sidecar, State::Terminated(_)) => {}
            (Role::Sidecar, _) if c.last.is_some() => {}
            (Role::Sidecar, _) => {
                pending_init += 1;
                waiting += 1;
            }
            (Role::Regular, State::Running { .. }) => running += 1,
            (Role::Regular, State::Terminated(t)) => {
                stopped += 1;
                succeeded += i32::from(t.exit_code == 0);
            }
            (Role::Regular, _) if c.last.is_some() => stopped += 1,
            (Role::Regular, _) => waiting += 1,
        }
    }
    if failed_init > 0 && policy == RestartPolicy::Never {
        return PodPhase::Failed;
    }
    if (pending_init > 0 && !any_regular_started(containers)) || waiting > 0 {
        return PodPhase::Pending;
    }
    if running > 0 {
        return PodPhase::Running;
    }
    if stopped > 0 {
        return match policy {
            RestartPolicy::Always => PodPhase::Running,
            _ if stopped == succeeded => PodPhase::Succeeded,
            RestartPolicy::Never => PodPhase::Failed,
            RestartPolicy::OnFailure => PodPhase::Running,
        };
    }
    PodPhase::Pending
}

/// Go's `%s` of a `[]string`: `[a b]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

/// The pod status the kubelet computes (generateAPIPodStatus): init and regular
/// container statuses (the regular ones sorted by name, as SortedContainerStatuses),
/// the kubelet's conditions (pkg/kubelet/status/generate.go) and the phase. `base`
/// carries what does not change (IPs, start time, QoS).
pub fn pod_status(
    containers: &[ContainerRun],
    p: &Pod,
    base: &PodStatus,
    sandbox_ready: bool,
    now: SimTime,
) -> PodStatus {
    let mut s = base.clone();
    let policy = p.spec.restart_policy.unwrap_or_default();
    let ph = match base.phase {
        // A terminal phase is never left.
        Some(PodPhase::Succeeded) | Some(PodPhase::Failed) => base.phase.unwrap_or_default(),
        _ => phase(containers, policy),
    };
    s.phase = Some(ph);
    let (init, regular): (Vec<&ContainerRun>, Vec<&ContainerRun>) =
        containers.iter().partition(|c| c.role != Role::Regular);
    s.init_container_statuses = init.iter().map(|c| c.status()).collect();
    s.container_statuses = regular.iter().map(|c| c.status()).collect();
    s.container_statuses.sort_by(|a, b| a.name.cmp(&b.name));
    // GenerateContainersReadyCondition: sidecars, then regular containers.
    let unready: Vec<&str> = init
        .iter()
        .filter(|c| c.role == Role::Sidecar)
        .chain(regular.iter())
        .filter(|c| !c.ready())
        .map(|c| c.name.as_str())
        .collect();
    // isInitContainerInitialized: an init container is ready, a sidecar has started.
    let incomplete: Vec<&str> = init
        .iter()
        .filter(
            |c| if c.role == Role::Sidecar { !(c.is_running() && c.started_probe_ok()) } else { !c.ready() },
        )
        .map(|c| c.name.as_str())
        .collect();
    let cond = |type_: &str, ok: bool, reason: &str, message: String| PodCondition {
        type_: type_.into(),
        status: if ok { ConditionStatus::True } else { ConditionStatus::False },
        last_transition_time: Some(now),
        reason: reason.into(),
        message,
        ..Default::default()
    };
    let terminal = matches!(ph, PodPhase::Succeeded | PodPhase::Failed);
    let containers_ready = if terminal {
        cond(
            condition::CONTAINERS_READY,
            false,
            if ph == PodPhase::Succeeded { "PodCompleted" } else { "PodFailed" },
            String::new(),
        )
    } else if unready.is_empty() {
        cond(condition::CONTAINERS_READY, true, "", String::new())
    } else {
        let message = format!("containers with unready status: {}", go_list(&unready));
        cond(condition::CONTAINERS_READY, false, "ContainersNotReady", message)
    };
    let initialized = if ph == PodPhase::Succeeded {
        cond(condition::INITIALIZED, true, "PodCompleted", String::new())
    } else if incomplete.is_empty() || any_regular_started(containers) {
        cond(condition::INITIALIZED, true, "", String::new())
    } else {
        let message = format!("containers with incomplete status: {}", go_list(&incomplete));
        cond(condition::INITIALIZED, false, "ContainersNotInitialized", message)
    };
    let ready = PodCondition { type_: condition::READY.into(), ..containers_ready.clone() };
    let sandbox = sandbox_ready && !terminal;
    let mut set = |c: PodCondition| match s.conditions.iter_mut().find(|x| x.type_ == c.type_) {
        Some(old) => {
            let keep = old.status == c.status;
            let t = old.last_transition_time;
            *old = c;
            if keep {
                old.last_transition_time = t;
            }
        }
        None => s.conditions.push(c),
    };
    set(cond(condition::POD_READY_TO_START_CONTAINERS, sandbox, "", String::new()));
    set(initialized);
    set(ready);
    set(containers_ready);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Container, ObjectMeta, PodSpec};
    use std::sync::Arc;

    fn cfg() -> ConfigSource<'static> {
        static EMPTY: std::sync::OnceLock<crate::client::Cache> = std::sync::OnceLock::new();
        ConfigSource { cache: EMPTY.get_or_init(Default::default) }
    }

    fn pod(policy: RestartPolicy) -> Pod {
        let c = Container { name: "app".into(), image: "app:v1".into(), ..Default::default() };
        Pod {
            metadata: ObjectMeta {
                name: "p".into(),
                namespace: "default".into(),
                uid: "uid-1".into(),
                ..Default::default()
            },
            spec: Arc::new(PodSpec {
                containers: vec![c],
                restart_policy: Some(policy),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A container that crashes 5 s after each start restarts at once the first time,
    /// then after 10 s, 20 s, 40 s... of back-off (each checked on a 10-15 s resync).
    #[test]
    fn crash_loop_back_off_doubles() {
        let p = pod(RestartPolicy::Always);
        let b = ContainerBehavior {
            exit: Some(super::super::behavior::Exit { after: Duration::from_secs(5), code: 1, times: None }),
            pull_duration: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let mut cs = vec![ContainerRun::new(&p.spec.containers[0], Some(&b), Duration::from_secs(1))];
        let (mut present, unpullable) = (BTreeSet::new(), BTreeSet::new());
        let mut now = SimTime::ZERO;
        let mut starts = Vec::new();
        let mut waits = Vec::new();
        for _ in 0..200 {
            let images = Images { present: &present, unpullable: &unpullable };
            let r = sync_containers(&mut cs, &p, cfg(), images, &mut PullQueue::default(), now);
            present.extend(r.pulled.iter().cloned());
            for e in &r.events {
                if e.reason == "Started" {
                    starts.push(now.as_millis());
                }
                if e.reason == "BackOff" {
                    waits.push(cs[0].status().state.waiting.unwrap().message);
                }
            }
            let wake = [r.wake, r.exit_wake].into_iter().flatten().min();
            let next = if r.backoff_resync {
                now + POD_BACKOFF_RESYNC
            } else {
                wake.unwrap_or(now + Duration::from_secs(1))
            };
            now = next.max(now + Duration::from_millis(1));
            if starts.len() >= 5 {
                break;
            }
        }
        // Start at 1 s (after the pull); exits at 6 s; restarts at once (no entry yet).
        assert_eq!(starts[0], 1_000);
        assert_eq!(starts[1], 6_000);
        // Second exit at 11 s: back-off 10 s, checked every 10 s here -> 21 s.
        assert_eq!(starts[2], 21_000);
        assert!(
            waits[0].starts_with("back-off 10s restarting failed container=app pod=p_default(uid-1)"),
            "{waits:?}"
        );
        assert!(waits.iter().any(|w| w.starts_with("back-off 20s")), "{waits:?}");
        assert_eq!(cs[0].restart_count, 4);
    }

    /// Runs a container that exits with code 1 `run` after each start for `until`,
    /// returning the BackOff events seen.
    fn back_offs(run: Duration, until: SimTime) -> usize {
        let p = pod(RestartPolicy::Always);
        let b = ContainerBehavior {
            exit: Some(super::super::behavior::Exit { after: run, code: 1, times: None }),
            pull_duration: Some(Duration::ZERO),
            ..Default::default()
        };
        let mut cs = vec![ContainerRun::new(&p.spec.containers[0], Some(&b), Duration::ZERO)];
        let (mut present, unpullable) = (BTreeSet::new(), BTreeSet::new());
        let (mut now, mut n) = (SimTime::ZERO, 0);
        while now < until {
            let images = Images { present: &present, unpullable: &unpullable };
            let r = sync_containers(&mut cs, &p, cfg(), images, &mut PullQueue::default(), now);
            present.extend(r.pulled.iter().cloned());
            n += r.events.iter().filter(|e| e.reason == "BackOff").count();
            let wake = [r.wake, r.exit_wake].into_iter().flatten().min();
            let next = if r.backoff_resync { now + POD_BACKOFF_RESYNC } else { wake.unwrap_or(until) };
            now = next.max(now + Duration::from_millis(1));
        }
        n
    }

    /// flowcontrol.Backoff's expiry: a container that ran longer than 600 s (twice the
    /// 300 s cap) restarts at once, as if it had never crashed; one that ran 100 s backs off.
    #[test]
    fn crash_loop_back_off_resets_after_ten_minutes_of_running() {
        assert_eq!(back_offs(Duration::from_secs(700), SimTime::from_secs(2200)), 0);
        assert!(back_offs(Duration::from_secs(100), SimTime::from_secs(350)) > 0);
    }

    /// serializeImagePulls: pulls on a node run one after another; a pull queued behind
    /// one of the same image takes no time of its own.
    #[test]
    fn image_pulls_are_serialized() {
        let mut p = pod(RestartPolicy::Always);
        let spec = Arc::make_mut(&mut p.spec);
        spec.containers.push(Container {
            name: "side".into(),
            image: "side:v1".into(),
            ..Default::default()
        });
        spec.containers.push(Container {
            name: "again".into(),
            image: "app:v1".into(),
            ..Default::default()
        });
        let second = Duration::from_secs(1);
        let mut cs: Vec<ContainerRun> =
            p.spec.containers.iter().map(|c| ContainerRun::new(c, None, second)).collect();
        let (present, unpullable) = (BTreeSet::new(), BTreeSet::new());
        let mut queue = PullQueue::default();
        let mut pulled = Vec::new();
        for t in [0, 1000, 2000] {
            let images = Images { present: &present, unpullable: &unpullable };
            let r = sync_containers(&mut cs, &p, cfg(), images, &mut queue, SimTime(t));
            pulled.extend(r.events.into_iter().filter(|e| e.reason == "Pulled").map(|e| (t, e.message)));
        }
        assert_eq!(
            pulled,
            vec![
                (1000, "Successfully pulled image \"app:v1\" in 1s (1s including waiting). Image size: 0 bytes.".into()),
                (2000, "Successfully pulled image \"side:v1\" in 1s (2s including waiting). Image size: 0 bytes.".into()),
                (2000, "Successfully pulled image \"app:v1\" in 0s (2s including waiting). Image size: 0 bytes.".into()),
            ]
        );
    }

    use super::super::behavior::{Behaviors, Exit};

    /// A pod with init containers `init` (name, sidecar?) and regular containers `main`.
    fn init_pod(init: &[(&str, bool)], main: &[&str], policy: RestartPolicy) -> Pod {
        let c = |name: &str, sidecar: bool| Container {
            name: name.into(),
            image: format!("{name}:v1"),
            restart_policy: sidecar.then_some(crate::api::pod::ContainerRestartPolicy::Always),
            ..Default::default()
        };
        let mut p = pod(policy);
        let spec = Arc::make_mut(&mut p.spec);
        spec.init_containers = init.iter().map(|(n, s)| c(n, *s)).collect();
        spec.containers = main.iter().map(|n| c(n, false)).collect();
        p
    }

    fn exits(container: &str, after_secs: u64, code: i32, times: Option<u32>) -> ContainerBehavior {
        ContainerBehavior {
            container: Some(container.into()),
            exit: Some(Exit { after: Duration::from_secs(after_secs), code, times }),
            ..Default::default()
        }
    }

    /// What a run of a pod's containers showed: events with their times, and the status
    /// after every sync.
    struct Trace {
        cs: Vec<ContainerRun>,
        events: Vec<(u64, &'static str, String)>,
        statuses: Vec<(u64, PodStatus)>,
    }

    impl Trace {
        fn started(&self, name: &str) -> Vec<u64> {
            let m = format!("Started container {name}");
            self.events.iter().filter(|e| e.1 == "Started" && e.2 == m).map(|e| e.0).collect()
        }
        fn at(&self, t: u64) -> &PodStatus {
            &self.statuses.iter().rev().find(|(x, _)| *x <= t).expect("a status by then").1
        }
    }

    /// Runs a pod's containers as the kubelet drives them (images present): a sync at
    /// each wake, a PLEG relist 1 s after an exit, a resync 10 s after a back-off.
    fn drive(p: &Pod, behaviors: Vec<ContainerBehavior>, until: u64) -> Trace {
        let mut cs = containers_for(p, &Behaviors(behaviors), Duration::ZERO);
        // Every image is on the node already.
        let (mut present, unpullable): (BTreeSet<String>, _) =
            (cs.iter().map(|c| c.image.clone()).collect(), BTreeSet::new());
        let (mut now, mut events, mut statuses) = (SimTime::ZERO, Vec::new(), Vec::<(u64, PodStatus)>::new());
        let mut queue = PullQueue::default();
        while now.as_millis() <= until {
            let images = Images { present: &present, unpullable: &unpullable };
            let r = sync_containers(&mut cs, p, cfg(), images, &mut queue, now);
            present.extend(r.pulled.iter().cloned());
            events.extend(r.events.into_iter().map(|e| (now.as_millis(), e.reason, e.message)));
            let base = statuses.last().map(|(_, s)| s.clone()).unwrap_or_default();
            let status = pod_status(&cs, p, &base, true, now);
            let terminal = matches!(status.phase, Some(PodPhase::Succeeded | PodPhase::Failed));
            statuses.push((now.as_millis(), status));
            if terminal {
                break;
            }
            let pleg = r.exit_wake.map(|e| SimTime((e.as_millis() / 1000 + 1) * 1000));
            let backoff = r.backoff_resync.then(|| now + POD_BACKOFF_RESYNC);
            let Some(next) = [r.wake, pleg, backoff].into_iter().flatten().min() else { break };
            now = next.max(now + Duration::from_millis(1));
        }
        Trace { cs, events, statuses }
    }

    fn waiting(s: &ContainerStatus) -> &str {
        s.state.waiting.as_ref().map_or("", |w| w.reason.as_str())
    }

    fn condition_of<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions.iter().find(|c| c.type_ == t).expect("condition")
    }

    /// Init containers run one at a time, each after the previous one exited 0 (seen at the
    /// next relist); the regular containers start after the last. Until then the pod is
    /// Pending, Initialized=False naming the incomplete init containers, and the containers
    /// not yet run wait in PodInitializing.
    #[test]
    fn init_containers_run_in_order_before_the_app() {
        let p = init_pod(&[("fetch", false), ("migrate", false)], &["app"], RestartPolicy::Always);
        let t = drive(&p, vec![exits("fetch", 2, 0, None), exits("migrate", 3, 0, None)], 20_000);
        assert_eq!(t.started("fetch"), vec![0]);
        assert_eq!(t.started("migrate"), vec![3_000], "after fetch's exit at 2 s, seen at the 3 s relist");
        assert_eq!(t.started("app"), vec![7_000], "after migrate's exit at 6 s, seen at 7 s");
        let s = t.at(0);
        assert_eq!(s.phase, Some(PodPhase::Pending));
        assert!(s.init_container_statuses[0].state.running.is_some());
        assert_eq!(waiting(&s.init_container_statuses[1]), POD_INITIALIZING);
        assert_eq!(waiting(&s.container_statuses[0]), POD_INITIALIZING);
        let init = condition_of(s, condition::INITIALIZED);
        assert_eq!(init.status, ConditionStatus::False);
        assert_eq!(init.reason, "ContainersNotInitialized");
        assert_eq!(init.message, "containers with incomplete status: [fetch migrate]");
        let s = t.at(3_000);
        assert!(s.init_container_statuses[0].ready, "an init container that exited 0 is ready");
        assert_eq!(s.init_container_statuses[0].state.terminated.as_ref().unwrap().reason, "Completed");
        assert_eq!(
            condition_of(s, condition::INITIALIZED).message,
            "containers with incomplete status: [migrate]"
        );
        let s = t.at(7_000);
        assert_eq!(s.phase, Some(PodPhase::Running));
        assert_eq!(condition_of(s, condition::INITIALIZED).status, ConditionStatus::True);
        assert_eq!(condition_of(s, condition::READY).status, ConditionStatus::True);
    }

    /// A failing init container is restarted on the crash-loop back-off (restartPolicy
    /// Always or OnFailure) and holds the pod until it succeeds; under Never the pod fails.
    #[test]
    fn failing_init_container_crash_loops_then_succeeds() {
        let p = init_pod(&[("wait-db", false)], &["app"], RestartPolicy::Always);
        let t = drive(&p, vec![exits("wait-db", 1, 1, Some(3))], 60_000);
        // Runs 1-3 fail: 0 s; at once after the exit seen at 2 s; after a 10 s back-off.
        let runs = t.started("wait-db");
        assert_eq!(runs[..2], [0, 2_000]);
        assert!(runs[2] >= 3_000 + 10_000, "{runs:?}");
        let backoff =
            t.statuses.iter().find(|(_, s)| waiting(&s.init_container_statuses[0]) == "CrashLoopBackOff");
        let (_, s) = backoff.expect("CrashLoopBackOff while backing off");
        assert_eq!(s.phase, Some(PodPhase::Pending));
        assert_eq!(s.init_container_statuses[0].last_state.terminated.as_ref().unwrap().exit_code, 1);
        assert_eq!(waiting(&s.container_statuses[0]), POD_INITIALIZING);
        // The fourth run exits 0: the app starts.
        assert_eq!(runs.len(), 4, "{runs:?}");
        assert_eq!(t.started("app").len(), 1);
        assert_eq!(t.cs[0].restart_count, 3);
        assert_eq!(t.statuses.last().unwrap().1.phase, Some(PodPhase::Running));

        let p = init_pod(&[("wait-db", false), ("migrate", false)], &["app"], RestartPolicy::Never);
        let t = drive(&p, vec![exits("wait-db", 1, 1, None)], 60_000);
        let s = &t.statuses.last().unwrap().1;
        assert_eq!(s.phase, Some(PodPhase::Failed));
        assert_eq!(s.init_container_statuses[0].state.terminated.as_ref().unwrap().reason, "Error");
        assert_eq!(waiting(&s.init_container_statuses[1]), POD_INITIALIZING);
        assert!(t.started("migrate").is_empty() && t.started("app").is_empty());
    }

    /// A sidecar (an init container with restartPolicy Always) starts before the next init
    /// container, keeps running beside the app, is restarted when it exits, and is stopped
    /// once the app is done under restartPolicy Never: the pod Succeeds.
    #[test]
    fn sidecars_start_in_order_keep_running_and_stop_after_the_app() {
        let p = init_pod(&[("proxy", true), ("migrate", false)], &["job"], RestartPolicy::Never);
        let t = drive(&p, vec![exits("migrate", 1, 0, None), exits("job", 5, 0, None)], 60_000);
        assert_eq!(t.started("proxy"), vec![0]);
        assert_eq!(t.started("migrate"), vec![1_000], "once the sidecar runs (seen at the next relist)");
        assert_eq!(t.started("job"), vec![3_000]);
        let s = t.at(3_000);
        assert_eq!(s.phase, Some(PodPhase::Running));
        assert!(s.init_container_statuses[0].ready && s.init_container_statuses[0].started == Some(true));
        assert!(t.events.iter().any(|e| e.1 == "Killing" && e.2 == "Stopping container proxy"));
        let s = &t.statuses.last().unwrap().1;
        assert_eq!(s.phase, Some(PodPhase::Succeeded));
        assert_eq!(condition_of(s, condition::INITIALIZED).reason, "PodCompleted");

        // A sidecar that exits is restarted; the app keeps running.
        let p = init_pod(&[("proxy", true)], &["app"], RestartPolicy::Always);
        let t = drive(&p, vec![exits("proxy", 4, 1, Some(1))], 30_000);
        assert_eq!(t.started("proxy")[..2], [0, 5_000]);
        assert_eq!(t.started("app"), vec![1_000]);
        let s = t.at(4_500);
        assert_eq!(s.phase, Some(PodPhase::Running));
        assert_eq!(condition_of(s, condition::INITIALIZED).status, ConditionStatus::True);
    }

    #[test]
    fn phases() {
        let p = pod(RestartPolicy::Never);
        let mut c = ContainerRun::new(&p.spec.containers[0], None, Duration::ZERO);
        assert_eq!(phase(std::slice::from_ref(&c), RestartPolicy::Never), PodPhase::Pending);
        c.state = State::Terminated(Terminated {
            exit_code: 1,
            reason: "Error".into(),
            started_at: SimTime::ZERO,
            finished_at: SimTime::ZERO,
            id: String::new(),
        });
        assert_eq!(phase(std::slice::from_ref(&c), RestartPolicy::Never), PodPhase::Failed);
        assert_eq!(phase(std::slice::from_ref(&c), RestartPolicy::Always), PodPhase::Running);
        assert_eq!(phase(std::slice::from_ref(&c), RestartPolicy::OnFailure), PodPhase::Running);
    }

    #[test]
    fn pull_errors_name_the_reference() {
        assert_eq!(normalized_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalized_image("nginx:bad"), "docker.io/library/nginx:bad");
        assert_eq!(normalized_image("quay.io/x/y:1"), "quay.io/x/y:1");
        assert_eq!(normalized_image("team/app:2"), "docker.io/team/app:2");
        assert_eq!(image_id("nginx:1.27").split_once('@').unwrap().0, "docker.io/library/nginx");
        assert_eq!(image_id("quay.io/x/y@sha256:ab").split_once('@').unwrap().0, "quay.io/x/y");
        assert_eq!(image_id("localhost:5000/app:1").split_once('@').unwrap().0, "localhost:5000/app");
        assert!(pulls_always("nginx", ""));
        assert!(pulls_always("nginx:latest", ""));
        assert!(!pulls_always("nginx:1.27", ""));
    }
}
