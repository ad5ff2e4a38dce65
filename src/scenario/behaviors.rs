//! What containers do and what nodes run short of: the scenario's `behaviors`, the
//! kubelet's reservation and eviction flags, and the resource faults of the timeline.
//! Behaviour is attached by image, pod labels, container name or the pod annotation
//! `kubesim.io/behavior`, never by editing a manifest.

use std::collections::BTreeMap;
use std::time::Duration;

use kubesim_model::api::{Quantity, Selector};
use kubesim_model::kubelet::behavior::{ContainerBehavior, Exit, ProbeScript, Profile};
use kubesim_model::kubelet::eviction::{self, Threshold};
use serde::{Deserialize, Deserializer};

use super::Dur;

/// One behaviour: what it applies to and what the container does.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BehaviorSpec {
    /// Its name, for the `kubesim.io/behavior` pod annotation.
    pub name: String,
    /// What it applies to; every criterion given must match. None: every container.
    #[serde(default, rename = "match")]
    pub matches: BehaviorMatch,
    /// How long the image pull takes (default: the kubelet's podStartLatency).
    pub pull_duration: Option<Dur>,
    /// The pull fails with this error (containerd's message).
    pub pull_error: Option<String>,
    /// The image's size, printed by the Pulled event.
    pub image_size: Option<Quantity>,
    /// From start request to running (default 0s).
    pub start_duration: Option<Dur>,
    /// The container exits this long after it starts.
    pub exit: Option<ExitSpec>,
    /// Memory it uses (default: its memory request).
    pub memory: Option<UsageSpec>,
    /// Bytes it writes to its writable layer and logs (default none).
    pub disk: Option<UsageSpec>,
    /// Processes it runs (default 1).
    pub processes: Option<i64>,
    /// Its exit code when stopped with SIGTERM (default 143).
    pub sigterm_exit_code: Option<i32>,
    pub liveness_probe: Option<ProbeSpec>,
    pub readiness_probe: Option<ProbeSpec>,
    pub startup_probe: Option<ProbeSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BehaviorMatch {
    /// The container image; `*` matches any text (`myapp:*`).
    pub image: Option<String>,
    /// The container's name.
    pub container: Option<String>,
    /// The pod's labels (matchLabels).
    #[serde(default)]
    pub pod_labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExitSpec {
    pub after: Dur,
    #[serde(default)]
    pub code: i32,
    /// Only the first this many runs exit with `code`; later ones exit 0.
    pub times: Option<u32>,
}

/// An amount over time since the container started: exactly one form.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UsageSpec {
    /// Always this much.
    pub constant: Option<Quantity>,
    /// This much at the start (with `perSecond`: growing).
    pub start: Option<Quantity>,
    pub per_second: Option<Quantity>,
    /// Stepwise: `{after, value}` entries, nothing before the first.
    pub steps: Option<Vec<StepSpec>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub after: Dur,
    pub value: Quantity,
}

/// A probe's scripted results: each entry holds from `after` (since the container
/// started) until the next; before the first, the probe succeeds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbeSpec {
    pub results: Vec<ProbeResultSpec>,
    /// What a failure prints (default `HTTP probe failed with statuscode: 500`).
    pub output: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeResultSpec {
    pub after: Dur,
    pub success: bool,
}

impl UsageSpec {
    fn profile(&self) -> Profile {
        if let Some(steps) = &self.steps {
            return Profile::Steps(
                steps.iter().map(|s| (s.after.time.as_duration(), s.value.value())).collect(),
            );
        }
        if let Some(c) = &self.constant {
            return Profile::Constant(c.value());
        }
        Profile::Linear {
            start: self.start.as_ref().map_or(0, Quantity::value),
            per_second: self.per_second.as_ref().map_or(0, Quantity::value),
        }
    }

    /// Exactly one form given?
    pub fn check(&self) -> Result<(), String> {
        let forms = [
            self.constant.is_some(),
            self.start.is_some() || self.per_second.is_some(),
            self.steps.is_some(),
        ];
        match forms.iter().filter(|x| **x).count() {
            1 => Ok(()),
            _ => Err("give exactly one of constant, start/perSecond or steps".into()),
        }
    }
}

impl ProbeSpec {
    fn script(&self) -> ProbeScript {
        ProbeScript {
            phases: self.results.iter().map(|r| (r.after.time.as_duration(), r.success)).collect(),
            failure_output: self.output.clone(),
        }
    }
}

impl BehaviorSpec {
    pub fn to_model(&self) -> ContainerBehavior {
        let selector = (!self.matches.pod_labels.is_empty()).then(|| {
            let text: Vec<String> = self.matches.pod_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Selector::parse(&text.join(",")).unwrap_or_default()
        });
        let d = |x: &Option<Dur>| x.as_ref().map(|d| d.time.as_duration());
        let script = |p: &Option<ProbeSpec>| p.as_ref().map(ProbeSpec::script).unwrap_or_default();
        ContainerBehavior {
            name: self.name.clone(),
            image: self.matches.image.clone(),
            selector,
            container: self.matches.container.clone(),
            pull_duration: d(&self.pull_duration),
            pull_error: self.pull_error.clone(),
            image_size_bytes: self.image_size.as_ref().map(Quantity::value),
            start_duration: d(&self.start_duration).unwrap_or(Duration::ZERO),
            exit: self.exit.as_ref().map(|e| Exit {
                after: e.after.time.as_duration(),
                code: e.code,
                times: e.times,
            }),
            memory: self.memory.as_ref().map(UsageSpec::profile),
            disk: self.disk.as_ref().map(UsageSpec::profile),
            processes: self.processes,
            sigterm_exit_code: self.sigterm_exit_code,
            liveness: script(&self.liveness_probe),
            readiness: script(&self.readiness_probe),
            startup: script(&self.startup_probe),
        }
    }
}

/// Eviction thresholds by signal (`memory.available: 500Mi`, `nodefs.available: 10%`),
/// checked as the kubelet parses them.
#[derive(Clone, Debug, Default)]
pub struct Thresholds(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Thresholds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        for (k, v) in &m {
            Threshold::parse(k, v, None).map_err(serde::de::Error::custom)?;
        }
        Ok(Thresholds(m.into_iter().collect()))
    }
}

/// Grace periods by signal for the soft thresholds.
#[derive(Clone, Debug, Default)]
pub struct GracePeriods(pub BTreeMap<String, Dur>);

impl<'de> Deserialize<'de> for GracePeriods {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<String, Dur>::deserialize(d)?;
        for k in m.keys() {
            if eviction::Signal::parse(k).is_none() {
                return Err(serde::de::Error::custom(format!("unknown eviction signal {k:?}")));
            }
        }
        Ok(GracePeriods(m))
    }
}

/// The eviction manager's configuration from the kubelet flags.
pub fn eviction_config(
    hard: Option<&Thresholds>,
    soft: Option<&Thresholds>,
    grace: Option<&GracePeriods>,
    transition: Option<&Dur>,
    max_pod_grace: Option<i64>,
) -> Result<eviction::EvictionConfig, String> {
    let mut c = eviction::EvictionConfig::default();
    // pkg/kubelet/apis/config/v1beta1/defaults.go: evictionHard defaults only when unset;
    // a map given replaces them all (docs: node-pressure eviction, "other parameters
    // will not be inherited").
    if let Some(h) = hard {
        c.hard = h.0.iter().map(|(k, v)| Threshold::parse(k, v, None)).collect::<Result<_, _>>()?;
    }
    if let Some(s) = soft {
        c.soft = Vec::new();
        for (k, v) in &s.0 {
            // ParseThresholdConfig: a soft threshold needs its grace period.
            let g = grace.and_then(|g| g.0.get(k)).ok_or_else(|| {
                format!("evictionSoft {k} has no grace period: set evictionSoftGracePeriod.{k}")
            })?;
            c.soft.push(Threshold::parse(k, v, Some(g.time.as_duration()))?);
        }
    }
    if let Some(t) = transition {
        c.pressure_transition_period = t.time.as_duration();
    }
    if let Some(m) = max_pod_grace {
        c.max_pod_grace_period_seconds = m;
    }
    Ok(c)
}
