//! The differential harness: kubesim's filter verdicts, scores and chosen nodes against
//! the expectations of upstream's own plugin tests, the cases written once as data in
//! tests/differential/cases.yaml (each naming the upstream test row it comes from).

use std::collections::BTreeMap;
use std::sync::Arc;

use kubesim_model::api::storage::{PersistentVolume, PersistentVolumeClaim, StorageClass};
use kubesim_model::api::{Node, Pod};
use kubesim_model::scheduler::config::{Profile, ProfileConfig};
use kubesim_model::scheduler::framework::{Listers, NodeInfo, Nominated, PodInfo};
use kubesim_model::scheduler::plugins::{self, Ctx, CycleState, PluginId};
use kubesim_model::scheduler::{Decision, SchedulerConfig, Snapshot};
use kubesim_model::time::SimTime;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Case {
    name: String,
    origin: String,
    check: String,
    plugin: Option<String>,
    profile: Option<ProfileConfig>,
    pod: Pod,
    nodes: Vec<Node>,
    #[serde(default)]
    existing_pods: Vec<Pod>,
    /// Storage objects for the volume plugins' listers.
    #[serde(default)]
    persistent_volume_claims: Vec<PersistentVolumeClaim>,
    #[serde(default)]
    persistent_volumes: Vec<PersistentVolume>,
    #[serde(default)]
    storage_classes: Vec<StorageClass>,
    feasible: Option<Vec<String>>,
    want: serde_yaml::Value,
}

fn namespaced(mut p: Pod) -> Pod {
    if p.metadata.namespace.is_empty() {
        p.metadata.namespace = "default".into();
    }
    p
}

fn nodes(case: &Case) -> BTreeMap<String, NodeInfo> {
    let mut m: BTreeMap<String, NodeInfo> =
        case.nodes.iter().map(|n| (n.metadata.name.clone(), NodeInfo::new(Arc::new(n.clone())))).collect();
    for p in &case.existing_pods {
        let info = Arc::new(PodInfo::new(Arc::new(namespaced(p.clone()))));
        m.get_mut(&p.spec.node_name)
            .unwrap_or_else(|| panic!("{}: no node {}", case.name, p.spec.node_name))
            .add_pod(&info);
    }
    m
}

fn profile(case: &Case) -> Profile {
    case.profile
        .as_ref()
        .map(|p| p.build().unwrap_or_else(|e| panic!("{}: {e}", case.name)))
        .unwrap_or_default()
}

/// The listers the volume plugins read, with the API server's defaults applied.
fn listers(case: &Case) -> Listers {
    let mut l = Listers::default();
    for c in &case.persistent_volume_claims {
        let mut c = c.clone();
        c.apply_defaults();
        if c.metadata.namespace.is_empty() {
            c.metadata.namespace = "default".into();
        }
        l.pvcs.insert((c.metadata.namespace.clone(), c.metadata.name.clone()), Arc::new(c));
    }
    for v in &case.persistent_volumes {
        let mut v = v.clone();
        let phase = v.status.phase;
        v.apply_defaults();
        v.status.phase = phase.or(v.status.phase);
        l.pvs.insert(v.metadata.name.clone(), Arc::new(v));
    }
    for c in &case.storage_classes {
        let mut c = c.clone();
        c.apply_defaults();
        l.storage_classes.insert(c.metadata.name.clone(), Arc::new(c));
    }
    l
}

/// What kubesim says, in the case's terms; `Err` describes a disagreement.
fn run(case: &Case) -> Result<(), String> {
    let all = nodes(case);
    let prof = profile(case);
    let listers = listers(case);
    let ctx = Ctx::new(&prof, &listers, &all, SimTime::from_secs(60));
    let pod = PodInfo::new(Arc::new(namespaced(case.pod.clone())));
    match case.check.as_str() {
        "score" => {
            let names: Vec<String> = case.feasible.clone().unwrap_or_else(|| all.keys().cloned().collect());
            let feasible: Vec<&NodeInfo> = names.iter().map(|n| &all[n]).collect();
            let p =
                PluginId::from_name(case.plugin.as_deref().unwrap_or_default()).ok_or("unknown plugin")?;
            let mut state = CycleState::default();
            plugins::pre_score(&mut state, &ctx, &pod, &feasible);
            let raw: Option<Vec<i64>> =
                feasible.iter().map(|n| plugins::score(p, &state, &ctx, &pod, n)).collect();
            let got = match raw {
                None => "skip".to_string(),
                Some(mut scores) => {
                    plugins::normalize(p, &state, &feasible, &mut scores);
                    let m: BTreeMap<&str, i64> = names.iter().map(String::as_str).zip(scores).collect();
                    format!("{m:?}")
                }
            };
            let want = match &case.want {
                serde_yaml::Value::String(s) => s.clone(),
                v => format!(
                    "{:?}",
                    serde_yaml::from_value::<BTreeMap<String, i64>>(v.clone())
                        .map_err(|e| e.to_string())?
                        .iter()
                        .map(|(k, v)| (k.as_str(), *v))
                        .collect::<BTreeMap<_, _>>()
                ),
            };
            (got == want).then_some(()).ok_or(format!("scores: want {want}, got {got}"))
        }
        "filter" => {
            // Upstream's filter tests run the one plugin.
            let mut prof = prof.clone();
            if let Some(p) = case.plugin.as_deref().and_then(PluginId::from_name) {
                prof.filters = vec![p];
            }
            let ctx = Ctx::new(&prof, &listers, &all, SimTime::from_secs(60));
            let mut state = CycleState::default();
            // A PreFilter rejection holds for every node.
            let pre = plugins::pre_filter(&mut state, &ctx, &pod);
            let want: BTreeMap<String, String> =
                serde_yaml::from_value(case.want.clone()).map_err(|e| e.to_string())?;
            for (node, w) in &want {
                let got = match pre.clone().and_then(|()| plugins::filter(&state, &ctx, &pod, &all[node])) {
                    Ok(()) => "ok".to_string(),
                    Err(s) => format!("{:?}: {}", s.code, s.reasons.join(", ")),
                };
                if got != *w {
                    return Err(format!("{node}: want {w:?}, got {got:?}"));
                }
            }
            Ok(())
        }
        "schedule" => {
            let mut snap = Snapshot::default();
            snap.listers = listers.clone();
            all.values().for_each(|n| snap.insert_node(n.clone()));
            let cfg = SchedulerConfig::default();
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let r = snap.schedule(&pod, &prof, &cfg, &Nominated::new(), 1, SimTime::from_secs(60), &mut rng);
            let chosen = match &r.decision {
                Decision::Fits { node, .. } => Some(node.clone()),
                _ => r.preemption.as_ref().and_then(|p| p.nominated.clone()),
            };
            let want: Vec<String> =
                serde_yaml::from_value(case.want["chosen"].clone()).map_err(|e| e.to_string())?;
            match chosen {
                Some(c) if want.contains(&c) => Ok(()),
                other => Err(format!("chosen: want one of {want:?}, got {other:?} ({:?})", r.record.outcome)),
            }
        }
        other => Err(format!("unknown check {other:?}")),
    }
}

#[test]
fn every_case_agrees_with_upstream() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/cases.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cases: Vec<Case> = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(cases.len() >= 40, "the harness promises at least 40 cases, has {}", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        assert!(c.origin.starts_with("pkg/scheduler/"), "{}: origin must name the upstream test", c.name);
        if let Err(e) = run(c) {
            failures.push(format!("{} ({}): {e}", c.name, c.origin));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The harness itself must catch a disagreement: a planted wrong expectation fails.
#[test]
fn a_wrong_expectation_is_caught() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/cases.yaml"),
    )
    .unwrap();
    let mut cases: Vec<Case> = serde_yaml::from_str(&text).unwrap();
    let c = cases.iter_mut().find(|c| c.check == "score" && c.want.is_mapping()).unwrap();
    let first = c.want.as_mapping().unwrap().keys().next().unwrap().clone();
    c.want[&first] = serde_yaml::Value::from(101);
    assert!(run(c).is_err());
}
