//! What a container does once the runtime starts it, declared in the scenario and
//! attached to containers by image, pod labels or container name — never by editing the
//! manifest. A container no behaviour matches pulls in the kubelet's `podStartLatency`,
//! starts at once, runs forever, uses its memory request and passes every probe.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::Selector;

/// An amount a container (or a host's hog) uses over time since it started: memory,
/// disk, processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Always this many bytes.
    Constant(i64),
    /// `start` bytes, growing by `per_second` bytes a second (a leak).
    Linear { start: i64, per_second: i64 },
    /// Stepwise: the value of the last step whose time has come (`0` before the first).
    Steps(Vec<(Duration, i64)>),
}

impl Profile {
    /// Bytes used `elapsed` after the start.
    pub fn at(&self, elapsed: Duration) -> i64 {
        match self {
            Profile::Constant(b) => *b,
            Profile::Linear { start, per_second } => {
                start + (*per_second as f64 * elapsed.as_secs_f64()) as i64
            }
            Profile::Steps(steps) => {
                steps.iter().take_while(|(t, _)| *t <= elapsed).last().map_or(0, |(_, b)| *b)
            }
        }
    }

    /// The first time after the start at which usage reaches `limit`, if it ever does.
    pub fn reaches(&self, limit: i64) -> Option<Duration> {
        match self {
            Profile::Constant(b) => (*b >= limit).then_some(Duration::ZERO),
            Profile::Linear { start, per_second } => {
                if *start >= limit {
                    Some(Duration::ZERO)
                } else if *per_second <= 0 {
                    None
                } else {
                    let secs = (limit - start) as f64 / *per_second as f64;
                    // Whole milliseconds, rounded up: usage has reached the limit by then.
                    Some(Duration::from_millis((secs * 1000.0).ceil() as u64))
                }
            }
            Profile::Steps(steps) => steps.iter().find(|(_, b)| *b >= limit).map(|(t, _)| *t),
        }
    }
}

/// Scripted outcomes of one probe: the result from each time on (since the container
/// started); before the first entry, and with no entries, the probe succeeds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeScript {
    pub phases: Vec<(Duration, bool)>,
    /// What a failure prints (the prober's output), e.g.
    /// `HTTP probe failed with statuscode: 500`.
    pub failure_output: Option<String>,
}

impl ProbeScript {
    pub fn succeeds_at(&self, elapsed: Duration) -> bool {
        self.phases.iter().take_while(|(t, _)| *t <= elapsed).last().is_none_or(|(_, ok)| *ok)
    }
}

/// How a container exits on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Running time before it exits.
    pub after: Duration,
    pub code: i32,
    /// Only the first this many runs exit with `code`; later ones exit 0 after the same
    /// time (an init container that fails until what it waits for is there). None: every
    /// run.
    pub times: Option<u32>,
}

impl Exit {
    /// The exit code of the `run`th run (1-based).
    pub fn code_of_run(&self, run: u32) -> i32 {
        match self.times {
            Some(n) if run > n => 0,
            _ => self.code,
        }
    }
}

/// A behaviour and what it applies to. Every criterion given must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerBehavior {
    pub name: String,
    /// The container's image, `*` matching any text (`myapp:*`).
    pub image: Option<String>,
    /// The pod's labels.
    pub selector: Option<Selector>,
    /// The container's name.
    pub container: Option<String>,
    /// How long the image pull takes (default: the kubelet's podStartLatency).
    pub pull_duration: Option<Duration>,
    /// The pull fails with this error (ErrImagePull, then ImagePullBackOff).
    pub pull_error: Option<String>,
    /// Image size, for the Pulled event.
    pub image_size_bytes: Option<i64>,
    /// Runs this long after its start before it is Running (create + start).
    pub start_duration: Duration,
    pub exit: Option<Exit>,
    /// Default: the container's memory request.
    pub memory: Option<Profile>,
    /// Bytes written to the container's writable layer and logs (default none).
    pub disk: Option<Profile>,
    /// Processes it runs (default 1).
    pub processes: Option<i64>,
    /// Its exit code when the kubelet stops it with SIGTERM (default 143: the
    /// process dies of the signal, 128 + 15).
    pub sigterm_exit_code: Option<i32>,
    pub liveness: ProbeScript,
    pub readiness: ProbeScript,
    pub startup: ProbeScript,
}

/// Does `text` match `pattern`, where `*` stands for any run of characters?
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl ContainerBehavior {
    pub fn matches(&self, image: &str, container: &str, labels: &BTreeMap<String, String>) -> bool {
        self.image.as_ref().is_none_or(|p| glob(p, image))
            && self.container.as_ref().is_none_or(|c| c == container)
            && self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}

/// The behaviours of a scenario, first match wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Behaviors(pub Vec<ContainerBehavior>);

/// The pod annotation naming the behaviour its containers follow, for a pod the
/// image, labels and container name do not tell apart.
pub const BEHAVIOR_ANNOTATION: &str = "kubesim.io/behavior";

impl Behaviors {
    /// The behaviour of one container: the one the pod's annotation names (if its
    /// `container` criterion, when given, matches), else the first that matches.
    pub fn find(
        &self,
        image: &str,
        container: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<&ContainerBehavior> {
        if let Some(name) = annotations.get(BEHAVIOR_ANNOTATION) {
            if let Some(b) =
                self.0.iter().find(|b| &b.name == name && b.container.as_ref().is_none_or(|c| c == container))
            {
                return Some(b);
            }
        }
        self.0.iter().find(|b| b.matches(image, container, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_profiles() {
        let mi = 1 << 20;
        let leak = Profile::Linear { start: 100 * mi, per_second: mi };
        assert_eq!(leak.at(Duration::from_secs(60)), 160 * mi);
        assert_eq!(leak.reaches(256 * mi), Some(Duration::from_secs(156)));
        assert_eq!(Profile::Constant(10).reaches(20), None);
        let steps = Profile::Steps(vec![(Duration::from_secs(10), 5), (Duration::from_secs(20), 50)]);
        assert_eq!(steps.at(Duration::from_secs(5)), 0);
        assert_eq!(steps.at(Duration::from_secs(15)), 5);
        assert_eq!(steps.reaches(40), Some(Duration::from_secs(20)));
    }

    #[test]
    fn probe_scripts_and_matching() {
        let s = ProbeScript { phases: vec![(Duration::from_secs(30), false)], failure_output: None };
        assert!(s.succeeds_at(Duration::from_secs(29)));
        assert!(!s.succeeds_at(Duration::from_secs(30)));
        let b = ContainerBehavior {
            image: Some("app:*".into()),
            container: Some("main".into()),
            ..Default::default()
        };
        assert!(b.matches("app:v2", "main", &BTreeMap::new()));
        assert!(!b.matches("app:v2", "sidecar", &BTreeMap::new()));
        assert!(!b.matches("other:v2", "main", &BTreeMap::new()));
    }
}
