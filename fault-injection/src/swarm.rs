//! Swarm fault schedules for `kubesim fuzz SCENARIO --faults swarm` (swarm testing,
//! Groce et al.; TigerBeetle's VOPR options): each seed first draws which fault kinds are
//! on and how often they fire, then the faults themselves, so different seeds explore
//! different mixes. Every fault is undone within the window, and the window ends with a
//! heal of everything, so liveness can be checked afterwards.

use std::collections::BTreeMap;
use std::time::Duration;

use kubesim_model::time::SimTime;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Fault;

/// The hosts a schedule may name.
#[derive(Clone, Debug)]
pub struct Targets {
    pub control_plane: Vec<String>,
    pub workers: Vec<String>,
}

/// The kinds a swarm draws from, as the catalogue names their first fault.
pub const SWARM_KINDS: [&str; 9] = [
    "killHost",
    "stopKubelet",
    "partition",
    "killLeader",
    "isolateMember",
    "slowEtcdDisk",
    "stopContainerRuntime",
    "memoryHog",
    "loseUnsyncedWrites",
];

/// What one seed drew: each kind that is on, with its rate in faults a minute.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SwarmOptions {
    pub rates_per_minute: BTreeMap<&'static str, f64>,
    pub longest_fault: Duration,
}

impl SwarmOptions {
    /// One line, as `kubesim fuzz` prints it.
    pub fn describe(&self) -> String {
        let on: Vec<String> = self.rates_per_minute.iter().map(|(k, r)| format!("{k} {r:.2}/min")).collect();
        let off: Vec<&str> =
            SWARM_KINDS.iter().copied().filter(|k| !self.rates_per_minute.contains_key(k)).collect();
        format!(
            "on: {}; off: {}; faults last up to {}",
            if on.is_empty() { "none".into() } else { on.join(", ") },
            if off.is_empty() { "none".into() } else { off.join(", ") },
            kubesim_model::time::go_duration(self.longest_fault)
        )
    }
}

/// Draws the options and the schedule for `seed`: faults fire in `[from, until)`, each is
/// undone after up to `longest_fault`, and at `until` everything heals.
pub fn draw(
    seed: u64,
    targets: &Targets,
    from: SimTime,
    until: SimTime,
) -> (SwarmOptions, Vec<(SimTime, Fault)>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5a4d_5741_524d);
    let mut opts =
        SwarmOptions { longest_fault: Duration::from_secs(rng.gen_range(10..=90)), ..Default::default() };
    for k in SWARM_KINDS {
        let usable = match k {
            "killHost" | "stopKubelet" | "partition" | "stopContainerRuntime" | "memoryHog" => {
                !targets.workers.is_empty()
            }
            "isolateMember" | "slowEtcdDisk" | "loseUnsyncedWrites" => targets.control_plane.len() >= 3,
            _ => !targets.control_plane.is_empty(),
        };
        if usable && rng.gen_bool(0.5) {
            opts.rates_per_minute.insert(k, rng.gen_range(0.2..2.0));
        }
    }
    let mut out: Vec<(SimTime, Fault)> = Vec::new();
    let window = until.saturating_sub(from);
    for (kind, rate) in &opts.rates_per_minute {
        let n = (rate * window.as_secs_f64() / 60.0).round() as u64;
        for _ in 0..n {
            let at = from + Duration::from_millis(rng.gen_range(0..window.as_millis().max(1) as u64));
            let undo_at = (at
                + Duration::from_millis(rng.gen_range(1000..=opts.longest_fault.as_millis() as u64)))
            .min(until);
            let w = targets
                .workers
                .get(rng.gen_range(0..targets.workers.len().max(1)))
                .cloned()
                .unwrap_or_default();
            let worker = || w.clone();
            let (fault, undo): (Fault, Vec<Fault>) = match *kind {
                "killHost" => {
                    let h = worker();
                    (Fault::KillHost(h.clone()), vec![Fault::RestartHost(h)])
                }
                "stopKubelet" => {
                    let h = worker();
                    let k = || "kubelet".to_string();
                    (
                        Fault::KillProcess { host: h.clone(), process: k() },
                        vec![Fault::RestartProcess { host: h, process: k() }],
                    )
                }
                "partition" => (Fault::Partition(vec![vec![worker()]]), vec![Fault::Heal]),
                "stopContainerRuntime" => {
                    let h = worker();
                    (Fault::StopContainerRuntime(h.clone()), vec![Fault::StartContainerRuntime(h)])
                }
                "memoryHog" => {
                    let h = worker();
                    let gib = 1i64 << 30;
                    let bytes = rng.gen_range(1..=4) * gib;
                    (
                        Fault::MemoryHog { host: h.clone(), bytes, per_second: 0 },
                        vec![Fault::MemoryHog { host: h, bytes: 0, per_second: 0 }],
                    )
                }
                "killLeader" => {
                    let c = crate::LEADER_COMPONENTS[rng.gen_range(0..3)].to_string();
                    // The leader is resolved when the fault fires: bring the component
                    // back on every control-plane host.
                    let undo = targets
                        .control_plane
                        .iter()
                        .map(|h| Fault::RestartProcess { host: h.clone(), process: c.clone() })
                        .collect();
                    (Fault::KillLeader(c), undo)
                }
                "isolateMember" => {
                    let h = targets.control_plane[rng.gen_range(0..targets.control_plane.len())].clone();
                    (Fault::IsolateMember(h), vec![Fault::Heal])
                }
                // The host reboots at once: nothing to undo.
                "loseUnsyncedWrites" => {
                    let h = targets.control_plane[rng.gen_range(0..targets.control_plane.len())].clone();
                    (Fault::LoseUnsyncedWrites(h), Vec::new())
                }
                _ => {
                    let h = targets.control_plane[rng.gen_range(0..targets.control_plane.len())].clone();
                    let fsync = Duration::from_millis(rng.gen_range(50..=500));
                    (
                        Fault::SlowEtcdDisk { host: h.clone(), fsync },
                        vec![Fault::SlowEtcdDisk { host: h, fsync: Duration::ZERO }],
                    )
                }
            };
            out.push((at, fault));
            out.extend(undo.into_iter().map(|u| (undo_at, u)));
        }
    }
    // Everything heals at the end of the window (and what the scenario itself left cut).
    out.push((until, Fault::Heal));
    out.sort_by_key(|(t, _)| *t);
    (opts, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            control_plane: vec!["cp-1".into(), "cp-2".into(), "cp-3".into()],
            workers: vec!["node-1".into(), "node-2".into()],
        }
    }

    /// Property: a schedule is a function of its seed, stays inside its window, and ends
    /// healed; seeds differ in the kinds they turn on.
    #[test]
    fn schedules_are_seeded_bounded_and_end_healed() {
        let (from, until) = (SimTime::from_secs(30), SimTime::from_secs(300));
        let mut mixes = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let (o, s) = draw(seed, &targets(), from, until);
            assert_eq!((o.clone(), s.clone()), draw(seed, &targets(), from, until));
            assert!(s.iter().all(|(t, _)| *t >= from && *t <= until), "{s:?}");
            assert_eq!(s.last().map(|(t, f)| (*t, f.clone())), Some((until, Fault::Heal)));
            mixes.insert(o.rates_per_minute.keys().copied().collect::<Vec<_>>());
        }
        assert!(mixes.len() > 10, "swarm: seeds should turn on different kinds, got {mixes:?}");
    }
}
