//! `kubesim explain pod NAME --trace FILE --at T`: why a pod is (or is not) where it is,
//! from the scheduler's attempts in the trace. For the attempt in force at T (the
//! latest one at or before it): every node's filter verdict (the first failing plugin
//! and its reasons; upstream stops there, so the plugins before it passed and the ones
//! after it did not run), every feasible node's raw and normalized score per plugin with
//! the weighted total, the chosen node, and preemption's candidates and victims.
//! `-o json` prints the same attempt as the trace holds it.

use std::collections::BTreeMap;
use std::io::BufRead;

use kubesim_model::api::Kind;
use kubesim_model::scheduler::attempt::{Outcome, SchedulingAttempt};
use kubesim_model::time::SimTime;
use kubesim_sim::TraceRecord;

/// One attempt as the trace recorded it, with where and when.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explained {
    pub time: SimTime,
    pub host: String,
    /// Every node of the cluster when the attempt ran.
    pub nodes: Vec<String>,
    pub attempt: SchedulingAttempt,
}

/// Finds the attempt in force at `at` for `namespace/name`.
pub fn find(reader: impl BufRead, namespace: &str, name: &str, at: SimTime) -> Result<Explained, String> {
    let replay = kubesim_sim::replay(reader, at)?;
    let key = format!("{namespace}/{name}");
    let mut latest = None;
    let mut seen_pods: BTreeMap<String, usize> = BTreeMap::new();
    for r in &replay.records {
        if let TraceRecord::Scheduling { t, host, attempt } = r {
            *seen_pods.entry(attempt.pod.clone()).or_default() += 1;
            if attempt.pod == key {
                latest = Some((SimTime(*t), host.clone(), attempt.clone()));
            }
        }
    }
    let Some((time, host, attempt)) = latest else {
        let some: Vec<&String> = seen_pods.keys().take(10).collect();
        return Err(if some.is_empty() {
            format!("no scheduling attempt in the trace by {at}")
        } else {
            format!(
                "no scheduling attempt for pod {key} by {at}; pods with attempts: {}",
                some.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )
        });
    };
    Ok(Explained { time, host, nodes: Vec::new(), attempt: (*attempt).clone() })
}

/// The node names of the cluster at `t`.
pub fn nodes_at(reader: impl BufRead, t: SimTime) -> Result<Vec<String>, String> {
    let replay = kubesim_sim::replay(reader, t)?;
    Ok(replay.state.list(Kind::Node).map(|o| o.meta().name.clone()).collect())
}

fn code_text(c: kubesim_model::scheduler::framework::Code) -> &'static str {
    use kubesim_model::scheduler::framework::Code;
    match c {
        Code::Success => "Success",
        Code::Unschedulable => "Unschedulable",
        Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
    }
}

/// Lines of cells aligned in columns two spaces apart (kubectl's tabwriter settings).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line += cell;
            } else {
                line += &format!("{cell:<w$}  ", w = widths[i]);
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// The human-readable explanation.
pub fn render(e: &Explained) -> String {
    let a = &e.attempt;
    let mut s = format!(
        "Pod:        {}\nScheduler:  {} (on {})\nAttempt:    {} at {}\nPriority:   {}\n",
        a.pod, a.scheduler_name, e.host, a.attempt, e.time, a.priority
    );
    match &a.outcome {
        Outcome::Scheduled { node } => s += &format!("Result:     Scheduled on {node}\n"),
        Outcome::Unschedulable { message, nominated_node } => {
            s += &format!("Result:     Unschedulable: {message}\n");
            if let Some(n) = nominated_node {
                s += &format!("Nominated:  {n} (preemption)\n");
            }
        }
    }
    s += &format!(
        "Nodes:      {} in the cluster, {} evaluated, {} feasible\n",
        a.num_all_nodes, a.evaluated_nodes, a.feasible_nodes
    );
    s += &filter_section(e);
    s += &score_section(a);
    s += &preemption_section(a);
    s
}

fn filter_section(e: &Explained) -> String {
    let a = &e.attempt;
    let mut s = String::from("\nFilter (a node's first failure stops it, as upstream does: the plugins before it passed,\nthe ones after it did not run):\n");
    if !a.filter_plugins.is_empty() {
        s += &format!("Plugins in order: {}\n", a.filter_plugins.join(", "));
    }
    let chosen = match &a.outcome {
        Outcome::Scheduled { node } => Some(node.as_str()),
        _ => None,
    };
    let mut rows = vec![vec!["NODE".to_string(), "VERDICT".into(), "PLUGIN".into(), "REASON".into()]];
    let verdicts: BTreeMap<&str, _> = a.filtered.iter().map(|v| (v.node.as_str(), v)).collect();
    let scored: BTreeMap<&str, ()> = a.scores.iter().map(|r| (r.node.as_str(), ())).collect();
    let mut names: Vec<&str> = e.nodes.iter().map(String::as_str).collect();
    for n in verdicts.keys().chain(scored.keys()).chain(chosen.iter()) {
        if !names.contains(n) {
            names.push(n);
        }
    }
    names.sort_unstable();
    let summarized = !a.filter_summary.is_empty() || a.scores_omitted > 0;
    for n in names {
        let row = if let Some(v) = verdicts.get(n) {
            vec![n.to_string(), code_text(v.code).into(), v.plugin.clone(), v.reasons.join(", ")]
        } else if scored.contains_key(n) || chosen == Some(n) {
            vec![n.to_string(), "Feasible".into(), "-".into(), "passed every filter".into()]
        } else if summarized {
            continue;
        } else {
            vec![
                n.to_string(),
                "NotEvaluated".into(),
                "-".into(),
                "enough feasible nodes were found first (percentageOfNodesToScore)".into(),
            ]
        };
        rows.push(row);
    }
    s += &table(&rows);
    if !a.filter_summary.is_empty() {
        s += "Rejected nodes by reason (not listed one by one for clusters over 100 nodes):\n";
        let mut rows = vec![vec!["NODES".to_string(), "PLUGIN".into(), "REASON".into()]];
        rows.extend(
            a.filter_summary.iter().map(|c| vec![c.nodes.to_string(), c.plugin.clone(), c.reason.clone()]),
        );
        s += &table(&rows);
    }
    s
}

fn score_section(a: &SchedulingAttempt) -> String {
    if a.scores.is_empty() {
        if a.feasible_nodes == 1 {
            return "\nScore: one feasible node, so no scoring (as upstream).\n".into();
        }
        return String::new();
    }
    let mut s = String::from("\nScore (raw -> normalized = weighted; the total adds the weighted scores):\n");
    let mut header = vec!["NODE".to_string()];
    header.extend(a.score_plugins.iter().map(|p| format!("{}(x{})", p.name, p.weight)));
    header.push("TOTAL".into());
    let chosen = match &a.outcome {
        Outcome::Scheduled { node } => Some(node.clone()),
        _ => None,
    };
    let mut rows = vec![header];
    for r in &a.scores {
        let mut row =
            vec![if chosen.as_ref() == Some(&r.node) { format!("{} *", r.node) } else { r.node.clone() }];
        for (i, p) in a.score_plugins.iter().enumerate() {
            let cell = match (r.raw.get(i).copied().flatten(), r.normalized.get(i).copied().flatten()) {
                (Some(raw), Some(n)) => format!("{raw} -> {n} = {}", n * p.weight),
                _ => "skipped".into(),
            };
            row.push(cell);
        }
        row.push(r.total.to_string());
        rows.push(row);
    }
    s += &table(&rows);
    if a.scores_omitted > 0 {
        s += &format!("({} more feasible nodes with lower totals not recorded)\n", a.scores_omitted);
    }
    if chosen.is_some() {
        s += "* chosen (the highest total; ties broken at random)\n";
    }
    s
}

fn preemption_section(a: &SchedulingAttempt) -> String {
    let Some(p) = &a.preemption else { return String::new() };
    let mut s = String::from("\nPreemption (DefaultPreemption):\n");
    if !p.message.is_empty() {
        s += &format!("  {}\n", p.message);
    }
    if !p.candidates.is_empty() {
        let mut rows = vec![vec!["CANDIDATE".to_string(), "PDB VIOLATIONS".into(), "VICTIMS".into()]];
        for c in &p.candidates {
            let name =
                if p.chosen.as_ref() == Some(&c.node) { format!("{} *", c.node) } else { c.node.clone() };
            rows.push(vec![name, c.pdb_violations.to_string(), c.victims.join(", ")]);
        }
        s += &table(&rows);
        if p.chosen.is_some() {
            s += "* nominated: fewest PDB violations, then the lowest highest victim priority, the smallest priority sum, the fewest victims, the latest start\n";
        }
    }
    if !p.rejected.is_empty() {
        s += "Nodes where removing lower-priority pods does not help:\n";
        let mut rows = vec![vec!["NODE".to_string(), "PLUGIN".into(), "REASON".into()]];
        rows.extend(p.rejected.iter().map(|v| vec![v.node.clone(), v.plugin.clone(), v.reasons.join(", ")]));
        s += &table(&rows);
    }
    s
}

/// Reads `path` for the attempt and renders it (`json`: the record as JSON).
pub fn explain_file(
    path: &std::path::Path,
    namespace: &str,
    name: &str,
    at: SimTime,
    json: bool,
) -> Result<String, String> {
    let open = || {
        std::fs::File::open(path).map(std::io::BufReader::new).map_err(|e| {
            format!("{}: {e} (write one with `kubesim run SCENARIO --trace FILE`)", path.display())
        })
    };
    let mut e = find(open()?, namespace, name, at).map_err(|m| format!("{}: {m}", path.display()))?;
    e.nodes = nodes_at(open()?, e.time).map_err(|m| format!("{}: {m}", path.display()))?;
    if json {
        let mut s = serde_json::to_string_pretty(&e).map_err(|e| e.to_string())?;
        s.push('\n');
        return Ok(s);
    }
    Ok(render(&e))
}
