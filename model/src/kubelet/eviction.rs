//! The kubelet's eviction manager (pkg/kubelet/eviction, v1.33): every 10 s it observes
//! the node's signals, sets the pressure conditions, and when a threshold is met (past its
//! grace period) reclaims node-level resources and then evicts at most one pod, ranked as
//! upstream ranks them.
//!
//! The manager is pure: the kubelet hands it observations and pod usage, and acts on the
//! decisions it returns.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::node::condition as node_condition;
use crate::api::Quantity;
use crate::time::SimTime;

/// pkg/kubelet/kubelet.go evictionMonitoringPeriod.
pub const MONITORING_INTERVAL: Duration = Duration::from_secs(10);
/// KubeletConfiguration evictionPressureTransitionPeriod default (5m).
pub const PRESSURE_TRANSITION_PERIOD: Duration = Duration::from_secs(5 * 60);
/// eviction_manager.go immediateEvictionGracePeriodSeconds: hard evictions give pods 1 s.
pub const IMMEDIATE_EVICTION_GRACE_PERIOD_SECONDS: i64 = 1;
/// pkg/apis/scheduling SystemCriticalPriority: pods at or above it are never evicted
/// (kubelettypes.IsCriticalPod).
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;
/// eviction/helpers.go: event and status reason.
pub const REASON_EVICTED: &str = "Evicted";

/// An eviction signal (pkg/kubelet/eviction/api/types.go).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    PidAvailable,
}

impl Signal {
    pub const ALL: [Signal; 5] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::PidAvailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::PidAvailable => "pid.available",
        }
    }

    pub fn parse(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|x| x.name() == s)
    }

    /// helpers.go signalToResource.
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    /// helpers.go signalToNodeCondition.
    pub fn condition(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => node_condition::MEMORY_PRESSURE,
            Signal::PidAvailable => node_condition::PID_PRESSURE,
            _ => node_condition::DISK_PRESSURE,
        }
    }

    /// Disk signals have node-level resources to reclaim first (unused images).
    pub fn is_disk(self) -> bool {
        matches!(self, Signal::NodeFsAvailable | Signal::NodeFsInodesFree | Signal::ImageFsAvailable)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdValue {
    Bytes(i64),
    /// A fraction of capacity, kept as Go keeps it (float32).
    Percentage(f32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: ThresholdValue,
    /// Soft thresholds wait this long after first being met.
    pub grace_period: Option<Duration>,
}

impl Threshold {
    /// `evictionapi.GetThresholdQuantity`.
    pub fn quantity(&self, capacity: i64) -> i64 {
        match self.value {
            ThresholdValue::Bytes(b) => b,
            ThresholdValue::Percentage(p) => (capacity as f64 * p as f64) as i64,
        }
    }

    pub fn is_hard(&self) -> bool {
        self.grace_period.is_none()
    }

    /// Parses `memory.available<100Mi` style values (`ParseThresholdConfig`).
    pub fn parse(signal: &str, value: &str, grace_period: Option<Duration>) -> Result<Threshold, String> {
        let signal = Signal::parse(signal).ok_or_else(|| {
            let known: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
            format!("unknown eviction signal {signal:?} (known: {})", known.join(", "))
        })?;
        let value = if let Some(p) = value.strip_suffix('%') {
            let p: f32 = p.parse().map_err(|_| format!("invalid percentage {value:?}"))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("invalid percentage {value:?}: must be between 0% and 100%"));
            }
            ThresholdValue::Percentage(p / 100.0)
        } else {
            let q = Quantity::parse(value).map_err(|e| format!("invalid quantity {value:?}: {e}"))?;
            if q.value() < 0 {
                return Err(format!("eviction threshold {} must be positive: {value}", signal.name()));
            }
            ThresholdValue::Bytes(q.value())
        };
        Ok(Threshold { signal, value, grace_period })
    }
}

/// pkg/kubelet/eviction/defaults_linux.go DefaultEvictionHard.
pub fn default_hard_thresholds() -> Vec<Threshold> {
    [
        ("memory.available", "100Mi"),
        ("nodefs.available", "10%"),
        ("nodefs.inodesFree", "5%"),
        ("imagefs.available", "15%"),
    ]
    .into_iter()
    .map(|(s, v)| Threshold::parse(s, v, None).expect("valid default"))
    .collect()
}

#[derive(Clone, Debug, PartialEq)]
pub struct EvictionConfig {
    /// --eviction-hard.
    pub hard: Vec<Threshold>,
    /// --eviction-soft with --eviction-soft-grace-period.
    pub soft: Vec<Threshold>,
    /// --eviction-pressure-transition-period.
    pub pressure_transition_period: Duration,
    /// --eviction-max-pod-grace-period (soft evictions).
    pub max_pod_grace_period_seconds: i64,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            hard: default_hard_thresholds(),
            soft: Vec::new(),
            pressure_transition_period: PRESSURE_TRANSITION_PERIOD,
            max_pod_grace_period_seconds: 0,
        }
    }
}

impl EvictionConfig {
    fn thresholds(&self) -> impl Iterator<Item = &Threshold> {
        self.hard.iter().chain(&self.soft)
    }

    /// `hardEvictionReservation` (pkg/kubelet/cm/helpers_linux.go): what the hard
    /// thresholds on memory.available and nodefs.available hold back from allocatable.
    pub fn reservation(&self, resource: &str, capacity: i64) -> i64 {
        let signal = match resource {
            "memory" => Signal::MemoryAvailable,
            "ephemeral-storage" => Signal::NodeFsAvailable,
            _ => return 0,
        };
        self.hard.iter().filter(|t| t.signal == signal).map(|t| t.quantity(capacity)).sum()
    }
}

/// What a signal measures now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    pub available: i64,
    pub capacity: i64,
}

pub type Observations = BTreeMap<Signal, Observation>;

/// One pod's usage as the summary API shows it, for ranking.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodUsage<K> {
    pub key: K,
    pub priority: i32,
    pub memory: i64,
    pub memory_request: i64,
    pub disk: i64,
    pub disk_request: i64,
    pub inodes: i64,
    pub pids: i64,
    /// Per container: (name, memory used, memory request, disk used, disk request).
    pub containers: Vec<(String, i64, i64, i64, i64)>,
}

/// What one pass decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The threshold to act on and the resource it starves.
    pub threshold: Threshold,
    pub resource: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct EvictionManager {
    pub config: EvictionConfig,
    thresholds_first_observed: BTreeMap<Signal, SimTime>,
    conditions_last_observed: BTreeMap<&'static str, SimTime>,
    /// The node conditions in force (reported True).
    pub conditions: Vec<&'static str>,
    /// Thresholds met in the last pass.
    met: Vec<Threshold>,
}

fn met(t: &Threshold, obs: &Observations) -> bool {
    obs.get(&t.signal).is_some_and(|o| t.quantity(o.capacity) > o.available)
}

impl EvictionManager {
    pub fn new(config: EvictionConfig) -> Self {
        EvictionManager { config, ..Default::default() }
    }

    /// One pass of `synchronize` up to the choice of what to reclaim: thresholds met,
    /// node conditions (held for the transition period), and the threshold to act on
    /// once its grace period has passed (memory first: byEvictionPriority).
    pub fn observe(&mut self, now: SimTime, obs: &Observations) -> Option<Decision> {
        let current: Vec<Threshold> = self.config.thresholds().filter(|t| met(t, obs)).cloned().collect();
        let mut first = BTreeMap::new();
        for t in &current {
            let at = self.thresholds_first_observed.get(&t.signal).copied().unwrap_or(now);
            first.insert(t.signal, at);
        }
        self.thresholds_first_observed = first;
        for t in &current {
            self.conditions_last_observed.insert(t.signal.condition(), now);
        }
        let period = self.config.pressure_transition_period;
        self.conditions_last_observed.retain(|_, at| now.saturating_sub(*at) < period);
        // Ordered as the node conditions are listed.
        self.conditions =
            [node_condition::MEMORY_PRESSURE, node_condition::DISK_PRESSURE, node_condition::PID_PRESSURE]
                .into_iter()
                .filter(|c| self.conditions_last_observed.contains_key(c))
                .collect();
        let mut due: Vec<Threshold> = current
            .iter()
            .filter(|t| {
                let since = self.thresholds_first_observed[&t.signal];
                t.grace_period.is_none_or(|g| now.saturating_sub(since) >= g)
            })
            .cloned()
            .collect();
        self.met = current;
        // byEvictionPriority: memory ranks before everything else (stable otherwise).
        due.sort_by_key(|t| t.signal != Signal::MemoryAvailable);
        let threshold = due.into_iter().next()?;
        Some(Decision { resource: threshold.signal.resource(), threshold })
    }

    pub fn still_met(&self, t: &Threshold, obs: &Observations) -> bool {
        met(t, obs)
    }

    pub fn has(&self, condition: &str) -> bool {
        self.conditions.contains(&condition)
    }

    /// `Admit` (eviction_manager.go): under memory pressure only BestEffort pods are
    /// refused (unless they tolerate the memory-pressure taint); under any other pressure
    /// every pod is, save critical ones. The message is nodeConditionMessageFmt.
    pub fn admit(
        &self,
        best_effort: bool,
        tolerates_memory_pressure: bool,
        critical: bool,
    ) -> Result<(), String> {
        if self.conditions.is_empty() || critical {
            return Ok(());
        }
        if self.conditions == [node_condition::MEMORY_PRESSURE] && (!best_effort || tolerates_memory_pressure)
        {
            return Ok(());
        }
        Err(format!("The node had condition: [{}]. ", self.conditions.join(" ")))
    }

    /// `evictionMessage`: which resource ran low, the threshold and what was left, and
    /// each container using more than it requested.
    pub fn message<K>(&self, resource: &str, pod: &PodUsage<K>, obs: &Observations) -> String {
        let mut m = format!("The node was low on resource: {resource}. ");
        // getThresholdMetInfo: the first threshold met on this resource.
        if let Some((t, o)) = self
            .met
            .iter()
            .filter(|t| t.signal.resource() == resource)
            .find_map(|t| obs.get(&t.signal).map(|o| (t, o)))
        {
            m += &format!(
                "Threshold quantity: {}, available: {}. ",
                Quantity::from_bytes_binary(t.quantity(o.capacity)),
                // makeSignalObservations: inodes and PIDs are DecimalSI counts.
                match t.signal {
                    Signal::NodeFsInodesFree | Signal::PidAvailable =>
                        Quantity::from_units_decimal(o.available),
                    _ => Quantity::from_bytes_binary(o.available),
                }
            );
        }
        for (name, mem, mem_req, disk, disk_req) in &pod.containers {
            let (usage, request) = match resource {
                "memory" => (*mem, *mem_req),
                "ephemeral-storage" => (*disk, *disk_req),
                _ => continue,
            };
            if usage > request {
                m += &format!(
                    "Container {name} was using {}, request is {}, has larger consumption of {resource}. ",
                    Quantity::from_bytes_binary(usage),
                    Quantity::from_bytes_binary(request)
                );
            }
        }
        m
    }
}

/// The ranking functions (helpers.go rankMemoryPressure, rankDiskPressureFunc,
/// rankPIDPressure): the pods to evict first come first. Ties keep the order given.
pub fn rank<K>(resource: &str, pods: &mut [PodUsage<K>]) {
    use std::cmp::Reverse;
    match resource {
        // exceedMemoryRequests, priority, memory usage above request.
        "memory" => pods.sort_by_key(|p| {
            (p.memory <= p.memory_request, p.priority, Reverse(p.memory - p.memory_request))
        }),
        "ephemeral-storage" => {
            pods.sort_by_key(|p| (p.disk <= p.disk_request, p.priority, Reverse(p.disk - p.disk_request)))
        }
        "inodes" => pods.sort_by_key(|p| (p.inodes <= 0, p.priority, Reverse(p.inodes))),
        // orderedBy(priority, process).
        _ => pods.sort_by_key(|p| (p.priority, Reverse(p.pids))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: i64 = 1 << 20;
    const GI: i64 = 1 << 30;

    fn mem(available: i64) -> Observations {
        [(Signal::MemoryAvailable, Observation { available, capacity: 4 * GI })].into_iter().collect()
    }

    #[test]
    fn default_thresholds_and_percentages_as_go_computes_them() {
        let d = default_hard_thresholds();
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].quantity(0), 100 * MI);
        // float64(100Gi) * float64(float32(0.1)), truncated: 160 bytes more than a tenth.
        assert_eq!(d[1].quantity(100 * GI), 10_737_418_400);
        assert!(Threshold::parse("memory.free", "1Gi", None).is_err());
        assert!(Threshold::parse("nodefs.available", "120%", None).is_err());
    }

    #[test]
    fn pressure_holds_for_the_transition_period() {
        let mut m = EvictionManager::new(EvictionConfig::default());
        let t0 = SimTime::from_secs(100);
        let d = m.observe(t0, &mem(50 * MI)).expect("memory threshold met");
        assert_eq!(d.resource, "memory");
        assert_eq!(m.conditions, vec![node_condition::MEMORY_PRESSURE]);
        assert!(m.observe(t0 + Duration::from_secs(10), &mem(GI)).is_none());
        assert!(m.has(node_condition::MEMORY_PRESSURE), "held for 5 minutes");
        m.observe(t0 + Duration::from_secs(299), &mem(GI));
        assert!(m.has(node_condition::MEMORY_PRESSURE));
        m.observe(t0 + Duration::from_secs(300), &mem(GI));
        assert!(m.conditions.is_empty(), "cleared once 5 minutes passed without the threshold met");
    }

    #[test]
    fn soft_thresholds_wait_their_grace_period() {
        let soft = Threshold::parse("memory.available", "1Gi", Some(Duration::from_secs(90))).unwrap();
        let mut m = EvictionManager::new(EvictionConfig { soft: vec![soft], ..Default::default() });
        let t0 = SimTime::from_secs(10);
        assert!(m.observe(t0, &mem(512 * MI)).is_none(), "condition set, no eviction yet");
        assert!(m.has(node_condition::MEMORY_PRESSURE));
        assert!(m.observe(t0 + Duration::from_secs(80), &mem(512 * MI)).is_none());
        let d = m.observe(t0 + Duration::from_secs(90), &mem(512 * MI)).unwrap();
        assert!(!d.threshold.is_hard());
    }

    #[test]
    fn admission_under_pressure() {
        let mut m = EvictionManager::new(EvictionConfig::default());
        m.observe(SimTime::ZERO, &mem(10 * MI));
        assert!(m.admit(false, false, false).is_ok(), "burstable pods are admitted under memory pressure");
        assert_eq!(m.admit(true, false, false).unwrap_err(), "The node had condition: [MemoryPressure]. ");
        assert!(m.admit(true, true, false).is_ok());
        assert!(m.admit(true, false, true).is_ok());
    }

    #[test]
    fn ranking_and_message() {
        let pod = |name: &str, prio, mem, req| PodUsage {
            key: name.to_string(),
            priority: prio,
            memory: mem,
            memory_request: req,
            containers: vec![("app".into(), mem, req, 0, 0)],
            ..Default::default()
        };
        let mut pods = vec![
            pod("within-request", 0, 100 * MI, 200 * MI),
            pod("small-excess", 0, 300 * MI, 256 * MI),
            pod("big-excess", 0, GI, 512 * MI),
            pod("important-excess", 1000, 2 * GI, 0),
        ];
        rank("memory", &mut pods);
        let order: Vec<&str> = pods.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(order, ["big-excess", "small-excess", "important-excess", "within-request"]);
        let mut m = EvictionManager::new(EvictionConfig::default());
        let obs = mem(95 * MI);
        m.observe(SimTime::ZERO, &obs);
        assert_eq!(
            m.message("memory", &pods[0], &obs),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 95Mi. \
             Container app was using 1Gi, request is 512Mi, has larger consumption of memory. "
        );
    }

    #[test]
    fn allocatable_reservation() {
        let c = EvictionConfig::default();
        assert_eq!(c.reservation("memory", 16 * GI), 100 * MI);
        assert_eq!(c.reservation("ephemeral-storage", 100 * GI), 10_737_418_400);
        assert_eq!(c.reservation("cpu", 4000), 0);
    }
}
