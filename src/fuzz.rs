//! `kubesim fuzz etcd`: many random fault schedules against the replicated etcd, each
//! checked for linearizability, durability, one leader per term and recovery
//! (kubesim_faults::etcd_fuzz). A failure is shrunk by proptest to a minimal schedule and
//! printed with the command that replays it.

use std::cell::Cell;
use std::time::Instant;

use kubesim_faults::etcd_fuzz::{replay_command, run_schedule, schedule_strategy, FuzzConfig, Schedule};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// What a fuzz run found.
pub struct FuzzReport {
    pub text: String,
    pub failed: bool,
}

/// Runs `cases` schedules drawn from `seed`, or replays one schedule (JSON).
pub fn fuzz_etcd(
    cases: u32,
    seed: u64,
    members: u64,
    replay: Option<&str>,
    progress: bool,
) -> Result<FuzzReport, String> {
    let cfg = FuzzConfig::default();
    if let Some(json) = replay {
        let s: Schedule = serde_json::from_str(json).map_err(|e| {
            format!("--replay: not a schedule ({e}); paste the JSON a failed fuzz run printed")
        })?;
        check_schedule(&s)?;
        let out = run_schedule(&s, &cfg);
        let mut text = format!(
            "replayed {} faults on {} members (seed {}): {} operations, {} acknowledged writes, {} leaders\n",
            s.faults.len(),
            s.members,
            s.seed,
            out.operations,
            out.acknowledged_writes,
            out.leaders
        );
        for v in &out.violations {
            text += &format!("VIOLATION {v}\n");
        }
        if out.ok() {
            text += "no violation\n";
        }
        return Ok(FuzzReport { text, failed: !out.ok() });
    }
    // The schedules cut a minority off and keep a quorum: that takes three members.
    if !(3..=7).contains(&members) {
        return Err(format!(
            "--members {members}: want 3 to 7 (typically 3 or 5): the fuzz cuts a minority off a quorum"
        ));
    }
    let started = Instant::now();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let bar = progress_bar(progress, cases as u64);
    // A schedule that trips an assertion inside etcd is a finding, reported with the
    // others: keep the default hook from printing every panic while proptest shrinks.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let (done, ops, unknown) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let result = runner.run(&schedule_strategy(members, cfg.fault_window), |s| {
        let out = run_schedule(&s, &cfg);
        done.set(done.get() + 1);
        ops.set(ops.get() + out.operations as u64);
        if matches!(out.verdict, kubesim_faults::linearizability::Verdict::Unknown { .. }) {
            unknown.set(unknown.get() + 1);
        }
        if let Some(b) = &bar {
            b.set_position(done.get().min(cases as u64));
        }
        if out.ok() {
            Ok(())
        } else {
            Err(TestCaseError::fail(out.violations.join("; ")))
        }
    });
    std::panic::set_hook(hook);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let wall = started.elapsed().as_secs_f64();
    let summary = format!(
        "{} schedule runs (seed {seed}, {members} members; shrinking included), {} operations checked, {} histories left undecided by the checker's budget, wall {wall:.1}s\n",
        done.get(),
        ops.get(),
        unknown.get()
    );
    match result {
        Ok(()) => Ok(FuzzReport { text: format!("{summary}0 violations\n"), failed: false }),
        Err(TestError::Fail(why, s)) => Ok(FuzzReport {
            text: format!(
                "{summary}VIOLATION (minimal schedule after shrinking): {why}\nschedule: {}\nreplay: {}\n",
                serde_json::to_string(&s).unwrap_or_default(),
                replay_command(&s)
            ),
            failed: true,
        }),
        Err(TestError::Abort(why)) => Err(format!("the fuzz run stopped: {why}")),
    }
}

/// A replayed schedule must name a cluster that can exist: 1 to 7 members, faults on
/// members it has.
fn check_schedule(s: &Schedule) -> Result<(), String> {
    use kubesim_faults::etcd_fuzz::EtcdFault;
    if !(1..=7).contains(&s.members) {
        return Err(format!("--replay: members {}: want 1 to 7 (typically 3 or 5)", s.members));
    }
    for (t, f) in &s.faults {
        let ids: Vec<u64> = match f {
            EtcdFault::Kill(m) | EtcdFault::Restart(m) | EtcdFault::Isolate(m) | EtcdFault::LoseDisk(m) => {
                vec![*m]
            }
            EtcdFault::Partition(side) | EtcdFault::LoseUnsyncedWrites(side) => side.clone(),
            EtcdFault::Heal => Vec::new(),
        };
        if let Some(bad) = ids.iter().find(|m| !(1..=s.members).contains(*m)) {
            return Err(format!(
                "--replay: the fault at {t} ms names member {bad}, but the schedule has members 1 to {}",
                s.members
            ));
        }
    }
    Ok(())
}

fn progress_bar(show: bool, len: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} schedules ({per_sec})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    Some(bar)
}
