//! The Job controller (pkg/controller/job/job_controller.go and backoff_utils.go, Kubernetes
//! v1.33): runs a Job's pods to completion. It keeps `min(parallelism, completions -
//! succeeded)` pods active, counts finished pods into `status.succeeded` / `status.failed`,
//! re-creates failed pods after an exponential back-off (10 s doubling, at most 10 min), and
//! ends the Job with `SuccessCriteriaMet` then `Complete`, or `FailureTarget` then `Failed`
//! (`BackoffLimitExceeded`, `DeadlineExceeded`) once its pods are gone.
//!
//! Simulated: non-indexed Jobs (`completionMode` unset or `NonIndexed`), parallelism,
//! completions (set, or unset for a work queue), backoffLimit (Never and OnFailure),
//! activeDeadlineSeconds, suspend, the 1 s sync batching and the pod-failure back-off.
//! Indexed Jobs (indexed_job_utils.go): each pod carries its completion index (the
//! `batch.kubernetes.io/job-completion-index` annotation and label, `JOB_COMPLETION_INDEX`,
//! hostname `<job>-<index>`, name `<job>-<index>-xxxxx`); the lowest pending indexes are
//! created first, a pod with an index out of range or a duplicate of an active one is
//! deleted, and the Job is complete once every index has succeeded
//! (`status.completedIndexes` as intervals, `status.succeeded` their number).
//!
//! podFailurePolicy (pod_failure_policy.go): the first rule whose onExitCodes or
//! onPodConditions match a failed pod decides: FailJob fails the Job (FailureTarget, then
//! Failed, reason PodFailurePolicy, upstream's message), Ignore leaves the failure
//! uncounted (not against backoffLimit, not in `status.failed`), Count counts it.
//! podReplacementPolicy `Failed` (the default with a podFailurePolicy): a terminating pod
//! is neither counted as failed nor replaced until it is gone or Failed.
//!
//! successPolicy (success_policy.go, Indexed Jobs): once a rule's succeededIndexes (all,
//! or succeededCount of them) or succeededCount indexes have succeeded, the Job meets
//! its success criteria (reason SuccessPolicy, "Matched rules at index N"), its other
//! pods are deleted and it completes.
//!
//! Pods are claimed as getPodsForJob's ClaimPods: orphans the selector matches are
//! adopted (a Job with `manualSelector` finds pods left by another), pods it controls
//! that stop matching are released.
//!
//! backoffLimitPerIndex (Indexed Jobs, GA in v1.33): each index has its own failure
//! count, carried by its pods' `batch.kubernetes.io/job-index-failure-count` (and
//! `-ignored-failure-count`) annotations; an index whose pod fails with a count at the
//! limit, or by a FailIndex rule, is failed (`status.failedIndexes`) and not retried; a
//! failed index is re-created after its own back-off (10 s doubling from the index's
//! last failure). More failed indexes than maxFailedIndexes fail the Job
//! (MaxFailedIndexesExceeded); every index succeeded or failed with some failed fails it
//! (FailedIndexes).
//!
//! Not simulated: managedBy, the slow-start create batches
//! (all of a sync's creates go out at once) and the API error back-off (a failed request is
//! retried after the 1 s batch period, not 1 s doubling to 1 min).
//!
//! Pods are tracked without the `batch.kubernetes.io/job-tracking` finalizer
//! (`batch.JobTrackingFinalizer`): the simulated API server does not hold objects for
//! finalizers, so a pod with one would be deleted all the same. Instead the controller
//! remembers, by pod uid, the finished pods it has counted (upstream's
//! `status.uncountedTerminatedPods` plus finalizer removal, in memory). A pod is counted
//! when a watch event shows it Succeeded, Failed, terminating, or deleted, so a pod removed
//! before a sync still counts. After a controller-manager restart the memory is rebuilt
//! from the pods still present and each counter is the larger of the stored one and the
//! recount.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::{controller_ref, Controller, Requests};
use crate::api::pod::{condition, RestartPolicy};
use crate::api::workloads::{JobSpec, JobStatus, WorkloadCondition};
use crate::api::{
    ConditionStatus, Job, Kind, Object, ObjectKey, ObjectMeta, Pod, PodPhase, EVENT_NORMAL, EVENT_WARNING,
};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, WatchEvent, WatchEventType};
use crate::time::SimTime;

/// The controller's event source (job_controller.go `v1.EventSource{Component: "job-controller"}`).
pub const COMPONENT: &str = "job-controller";

/// Labels the API server adds to a Job's pod template (pkg/registry/batch/job/strategy.go
/// generateSelector, names from k8s.io/api/batch/v1 types.go). The simulated API server
/// does not, so the controller adds them to the pods it creates, keeping a value the
/// template already sets as upstream does.
pub const LABEL_CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const LABEL_JOB_NAME: &str = "batch.kubernetes.io/job-name";
/// batch/v1 LegacyControllerUidLabel.
pub const LABEL_LEGACY_CONTROLLER_UID: &str = "controller-uid";
/// batch/v1 LegacyJobNameLabel.
pub const LABEL_LEGACY_JOB_NAME: &str = "job-name";
/// batch/v1 JobCompletionIndexAnnotation, also the pod label (PodIndexLabel, GA in v1.32).
pub const ANN_COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// indexed_job_utils.go addCompletionIndexEnvVariable.
pub const ENV_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";
/// names.MaxGeneratedNameLength: 63 less the five random characters.
const MAX_GENERATED_NAME_LENGTH: usize = 58;

/// job_controller.go syncJobBatchPeriod: pod events and status-only Job updates sync the
/// Job after this delay, so a burst of pod changes costs one sync.
pub const SYNC_JOB_BATCH_PERIOD: Duration = Duration::from_secs(1);
/// job_controller.go DefaultJobPodFailureBackOff: the delay before re-creating pods after
/// one failure, doubled for each further consecutive failure.
pub const DEFAULT_JOB_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// job_controller.go MaxJobPodFailureBackOff: 10 min since v1.28 (the Job documentation
/// still says "capped at six minutes", the value of the older MaxJobBackOff = 360 s).
pub const MAX_JOB_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);
/// job_controller.go MaxPodCreateDeletePerSync.
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
/// pkg/apis/batch/v1/defaults.go SetDefaults_Job: backoffLimit defaults to 6.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;

/// batch/v1 JobConditionType values.
pub const CONDITION_COMPLETE: &str = "Complete";
pub const CONDITION_FAILED: &str = "Failed";
pub const CONDITION_FAILURE_TARGET: &str = "FailureTarget";
pub const CONDITION_SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const CONDITION_SUSPENDED: &str = "Suspended";

/// batch/v1 JobReasonBackoffLimitExceeded, with job_controller.go syncJob's message.
pub const REASON_BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
pub const MESSAGE_BACKOFF_LIMIT_EXCEEDED: &str = "Job has reached the specified backoff limit";
/// batch/v1 JobReasonSuccessPolicy.
pub const REASON_SUCCESS_POLICY: &str = "SuccessPolicy";
/// batch/v1 JobReasonPodFailurePolicy.
pub const REASON_POD_FAILURE_POLICY: &str = "PodFailurePolicy";
/// batch/v1 JobReasonDeadlineExceeded, with job_controller.go syncJob's message.
pub const REASON_DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
pub const MESSAGE_DEADLINE_EXCEEDED: &str = "Job was active longer than specified deadline";
/// batch/v1 JobReasonCompletionsReached, with job_controller.go newSuccessCondition's
/// message (JobSuccessPolicy, GA in v1.33): both SuccessCriteriaMet and Complete carry it
/// (test/e2e/apps/job.go waits for Complete with this reason).
pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";
pub const MESSAGE_COMPLETIONS_REACHED: &str = "Reached expected number of succeeded pods";

/// controller_utils.go SuccessfulCreatePodReason ("Created pod: %v").
pub const EVENT_SUCCESSFUL_CREATE: &str = "SuccessfulCreate";
/// controller_utils.go FailedCreatePodReason ("Error creating: %v").
pub const EVENT_FAILED_CREATE: &str = "FailedCreate";
/// controller_utils.go SuccessfulDeletePodReason ("Deleted pod: %v").
pub const EVENT_SUCCESSFUL_DELETE: &str = "SuccessfulDelete";
/// controller_utils.go FailedDeletePodReason ("Error deleting: %v").
pub const EVENT_FAILED_DELETE: &str = "FailedDelete";
/// job_controller.go recordJobFinished.
pub const EVENT_COMPLETED: &str = "Completed";
pub const MESSAGE_COMPLETED: &str = "Job completed";
/// batch/v1 JobIndexFailureCountAnnotation and JobIndexIgnoredFailureCountAnnotation.
pub const ANN_INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
pub const ANN_INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";
/// batch/v1 JobReasonFailedIndexes and JobReasonMaxFailedIndexesExceeded, with
/// job_controller.go syncJob's messages.
pub const REASON_FAILED_INDEXES: &str = "FailedIndexes";
pub const MESSAGE_FAILED_INDEXES: &str = "Job has failed indexes";
pub const REASON_MAX_FAILED_INDEXES_EXCEEDED: &str = "MaxFailedIndexesExceeded";
pub const MESSAGE_MAX_FAILED_INDEXES_EXCEEDED: &str =
    "Job has exceeded the specified maximal number of failed indexes";
pub const EVENT_TOO_MANY_SUCCEEDED_PODS: &str = "TooManySucceededPods";
pub const MESSAGE_TOO_MANY_SUCCEEDED_PODS: &str =
    "Too many succeeded pods running after completion count reached";

/// The pod-failure back-off of one Job (backoff_utils.go backoffRecord).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    pub failures_after_last_success: u32,
    pub last_failure_time: Option<SimTime>,
}

impl BackoffRecord {
    /// backoffStore.newBackoffRecord: the record after pods that finished since the last
    /// sync (their finish times). A success resets the count to the failures after it.
    pub fn next(self, mut succeeded: Vec<SimTime>, mut failed: Vec<SimTime>) -> BackoffRecord {
        succeeded.sort();
        failed.sort();
        let Some(&last_success) = succeeded.last() else {
            let Some(&last_failure) = failed.last() else { return self };
            return BackoffRecord {
                failures_after_last_success: self.failures_after_last_success + failed.len() as u32,
                last_failure_time: Some(last_failure),
            };
        };
        let mut r = BackoffRecord::default();
        for &t in failed.iter().rev().take_while(|t| **t > last_success) {
            r.last_failure_time.get_or_insert(t);
            r.failures_after_last_success += 1;
        }
        r
    }

    /// getRemainingTimeForFailuresCount: how long pod creation still waits at `now`.
    /// DEFAULT_JOB_POD_FAILURE_BACKOFF * 2^(failures-1), at most MAX_JOB_POD_FAILURE_BACKOFF,
    /// counted from the last failure.
    pub fn remaining(self, now: SimTime) -> Duration {
        let Some(last) = self.last_failure_time else { return Duration::ZERO };
        remaining_for_failures(self.failures_after_last_success, last, now)
    }
}

/// backoff_utils.go getRemainingTimeForFailuresCount: DEFAULT_JOB_POD_FAILURE_BACKOFF *
/// 2^(failures-1), at most MAX_JOB_POD_FAILURE_BACKOFF, counted from the last failure.
fn remaining_for_failures(failures: u32, last_failure: SimTime, now: SimTime) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let mut backoff = DEFAULT_JOB_POD_FAILURE_BACKOFF;
    for _ in 1..failures {
        backoff *= 2;
        if backoff >= MAX_JOB_POD_FAILURE_BACKOFF {
            backoff = MAX_JOB_POD_FAILURE_BACKOFF;
            break;
        }
    }
    backoff.saturating_sub(now.saturating_sub(last_failure))
}

/// What the controller remembers of one Job, by Job uid.
#[derive(Debug, Default)]
struct JobState {
    /// Finished pods already counted (upstream: pods whose tracking finalizer is gone).
    counted_succeeded: BTreeSet<String>,
    counted_failed: BTreeSet<String>,
    /// Indexed Jobs: the completion indexes of the succeeded pods counted.
    succeeded_indexes: BTreeSet<i32>,
    /// backoffLimitPerIndex: the indexes failed by the pods counted (isIndexFailed).
    failed_indexes: BTreeSet<i32>,
    /// Pods the controller deleted to scale down or suspend: upstream removes their
    /// finalizer before deleting them, so they are never counted.
    ignored: BTreeSet<String>,
    /// Finish times of pods counted since the last sync, for the back-off record.
    new_succeeded: Vec<SimTime>,
    new_failed: Vec<SimTime>,
    backoff: BackoffRecord,
    /// A FailJob rule matched a failed pod: the Job's failure message.
    fail_job: Option<String>,
    /// Requests of the last sync still unanswered: upstream's sync makes them
    /// synchronously, so the next sync waits for them.
    in_flight: usize,
    /// A sync was asked for while requests were in flight.
    resync: bool,
}

impl JobState {
    fn is_counted(&self, uid: &str) -> bool {
        self.counted_succeeded.contains(uid)
            || self.counted_failed.contains(uid)
            || self.ignored.contains(uid)
    }

    /// Counts a pod once it finished (getNewFinishedPods); `deleted` when it is gone.
    fn count(&mut self, job: &Job, p: &Pod, deleted: bool) {
        let uid = &p.metadata.uid;
        if self.is_counted(uid) {
            return;
        }
        let failed = deleted || is_pod_failed(job, p);
        if p.phase() != PodPhase::Succeeded && failed {
            let outcome = match_pod_failure_policy(job, p);
            // calculateFailedIndexes / isIndexFailed: a FailIndex rule, or a counted
            // failure of a pod whose index already failed backoffLimitPerIndex times.
            if let (Some(limit), Some(i)) = (per_index_limit(job), completion_index(p)) {
                let counted = !matches!(outcome, PolicyOutcome::Ignore);
                let fail_index =
                    outcome == PolicyOutcome::FailIndex || (counted && index_failure_count(p) >= limit);
                if fail_index && i < job.spec.completions.unwrap_or(0) {
                    self.failed_indexes.insert(i);
                }
            }
            match outcome {
                PolicyOutcome::Ignore => {
                    // Not counted, not against backoffLimit, no back-off.
                    self.ignored.insert(uid.clone());
                    return;
                }
                PolicyOutcome::FailJob(msg) => {
                    self.fail_job.get_or_insert(msg);
                }
                PolicyOutcome::Count | PolicyOutcome::FailIndex => {}
            }
        }
        if p.phase() == PodPhase::Succeeded {
            self.counted_succeeded.insert(uid.clone());
            if let Some(i) = completion_index(p) {
                self.succeeded_indexes.insert(i);
            }
            self.new_succeeded.push(finished_time(p));
        } else if failed {
            // isPodFailed: with podReplacementPolicy TerminatingOrFailed (the default
            // without a podFailurePolicy) a pod being deleted counts as failed.
            self.counted_failed.insert(uid.clone());
            self.new_failed.push(finished_time(p));
        }
    }
}

/// A request awaiting its response.
#[derive(Debug)]
enum Route {
    Create {
        job: ObjectKey,
        job_uid: String,
    },
    Delete {
        job: ObjectKey,
        job_uid: String,
        pod: String,
    },
    /// A status write; `finished` is the terminal condition it sets, whose events are
    /// recorded once the write succeeds (recordJobFinished).
    Status {
        job: ObjectKey,
        job_uid: String,
        finished: Option<WorkloadCondition>,
    },
}

impl Route {
    fn job(&self) -> (&ObjectKey, &str) {
        match self {
            Route::Create { job, job_uid }
            | Route::Delete { job, job_uid, .. }
            | Route::Status { job, job_uid, .. } => (job, job_uid),
        }
    }
}

/// Spec values after batch/v1 defaulting (pkg/apis/batch/v1/defaults.go SetDefaults_Job),
/// which the simulated API server does not apply to Jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Effective {
    parallelism: i32,
    completions: Option<i32>,
    backoff_limit: i32,
}

fn effective(spec: &JobSpec) -> Effective {
    // SetDefaults_Job: "When both are unset, both are defaulted to 1"; parallelism alone
    // defaults to 1; completions unset with parallelism set is a work queue.
    let (completions, parallelism) = match (spec.completions, spec.parallelism) {
        (None, None) => (Some(1), 1),
        (c, p) => (c, p.unwrap_or(1)),
    };
    Effective { parallelism, completions, backoff_limit: spec.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT) }
}

/// What a podFailurePolicy makes of a failed pod.
#[derive(Debug, PartialEq, Eq)]
enum PolicyOutcome {
    Count,
    Ignore,
    FailJob(String),
    /// The pod's index fails (backoffLimitPerIndex); the failure counts.
    FailIndex,
}

/// matchPodFailurePolicy: the first rule that matches decides; none: Count.
fn match_pod_failure_policy(job: &Job, p: &Pod) -> PolicyOutcome {
    let Some(policy) = &job.spec.pod_failure_policy else { return PolicyOutcome::Count };
    let (ns, name) = (&p.metadata.namespace, &p.metadata.name);
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched = if let Some(req) = &rule.on_exit_codes {
            // matchOnExitCodes: regular containers first, then init containers; a
            // terminated container with a non-zero code.
            p.status.container_statuses.iter().chain(&p.status.init_container_statuses).find_map(|c| {
                let t = c.state.terminated.as_ref()?;
                let named = req.container_name.as_ref().is_none_or(|n| *n == c.name);
                let listed = req.values.contains(&t.exit_code);
                let op = match req.operator.as_str() {
                    "In" => listed,
                    "NotIn" => !listed,
                    _ => false,
                };
                (named && t.exit_code != 0 && op).then(|| {
                    format!(
                        "Container {} for pod {ns}/{name} failed with exit code {} matching {} rule at index {index}",
                        c.name, t.exit_code, rule.action
                    )
                })
            })
        } else if !rule.on_pod_conditions.is_empty() {
            // matchOnPodConditions: a pod condition of the type with the status (True
            // by default).
            rule.on_pod_conditions.iter().find_map(|pat| {
                let want = pat.status.unwrap_or(ConditionStatus::True);
                p.status.conditions.iter().find(|c| c.type_ == pat.type_ && c.status == want).map(|c| {
                    format!(
                        "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                        c.type_, rule.action
                    )
                })
            })
        } else {
            None
        };
        let Some(msg) = matched else { continue };
        return match rule.action.as_str() {
            "Ignore" => PolicyOutcome::Ignore,
            "FailJob" => PolicyOutcome::FailJob(msg),
            // Validation allows FailIndex only with backoffLimitPerIndex.
            "FailIndex" if per_index_limit(job).is_some() => PolicyOutcome::FailIndex,
            _ => PolicyOutcome::Count,
        };
    }
    PolicyOutcome::Count
}

/// matchSuccessPolicy: the first rule the succeeded indexes satisfy, as "Matched rules at
/// index N".
fn match_success_policy(job: &Job, succeeded: &BTreeSet<i32>) -> Option<String> {
    let policy = job.spec.success_policy.as_ref()?;
    if succeeded.is_empty() {
        return None;
    }
    let completions = job.spec.completions.unwrap_or(0);
    for (index, rule) in policy.rules.iter().enumerate() {
        let met = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(ix), count) => {
                let required = parse_indexes(ix, completions);
                if required.is_empty() {
                    continue;
                }
                let contains = required.intersection(succeeded).count();
                match count {
                    Some(c) => contains as i64 >= i64::from(c),
                    None => contains == required.len(),
                }
            }
            (None, Some(c)) => succeeded.len() as i64 >= i64::from(c),
            (None, None) => false,
        };
        if met {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

/// podReplacementPolicy Failed (the default with a podFailurePolicy): terminating pods
/// are neither failed nor replaced until they end.
fn only_replace_failed(job: &Job) -> bool {
    match job.spec.pod_replacement_policy.as_deref() {
        Some(p) => p == "Failed",
        None => job.spec.pod_failure_policy.is_some(),
    }
}

fn is_indexed(job: &Job) -> bool {
    job.spec.completion_mode == "Indexed"
}

/// hasBackoffLimitPerIndex: the per-index limit of an Indexed Job, if set.
fn per_index_limit(job: &Job) -> Option<i32> {
    job.spec.backoff_limit_per_index.filter(|_| is_indexed(job))
}

/// An annotation's count as parseInt32 reads it: missing, unparsable or out of range is 0.
fn annotation_count(p: &Pod, key: &str) -> i32 {
    p.metadata
        .annotations
        .get(key)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| (0..=i64::from(i32::MAX)).contains(v))
        .map_or(0, |v| v as i32)
}

/// getIndexFailureCount.
fn index_failure_count(p: &Pod) -> i32 {
    annotation_count(p, ANN_INDEX_FAILURE_COUNT)
}

/// getIndexAbsoluteFailureCount: counted and ignored failures.
fn index_absolute_failure_count(p: &Pod) -> i32 {
    index_failure_count(p).saturating_add(annotation_count(p, ANN_INDEX_IGNORED_FAILURE_COUNT))
}

/// isPodFailed: Failed, or (unless only Failed pods are replaced) being deleted and not
/// Succeeded.
fn is_pod_failed(job: &Job, p: &Pod) -> bool {
    p.phase() == PodPhase::Failed
        || (!only_replace_failed(job)
            && p.metadata.deletion_timestamp.is_some()
            && p.phase() != PodPhase::Succeeded)
}

/// getNewIndexFailureCounts: the failure counts a replacement of `replaced` carries.
fn new_index_failure_counts(job: &Job, replaced: Option<&Pod>) -> (i32, i32) {
    let Some(p) = replaced else { return (0, 0) };
    let (failures, ignored) = (index_failure_count(p), annotation_count(p, ANN_INDEX_IGNORED_FAILURE_COUNT));
    if match_pod_failure_policy(job, p) == PolicyOutcome::Ignore {
        (failures, ignored.saturating_add(1))
    } else {
        (failures.saturating_add(1), ignored)
    }
}

/// An Indexed Job's failed indexes: the stored ones and those counted since.
fn failed_indexes(job: &Job, st: &JobState) -> BTreeSet<i32> {
    let completions = job.spec.completions.unwrap_or(0);
    let mut set = parse_indexes(job.status.failed_indexes.as_deref().unwrap_or(""), completions);
    set.extend(st.failed_indexes.iter().copied().filter(|i| *i < completions));
    set
}

/// getPodsWithDelayedDeletionPerIndex: per pending index (not succeeded, failed or
/// active), its last failed pod (the highest absolute failure count, then the latest
/// finish), which a replacement's failure counts and back-off come from.
fn last_failed_per_index<'a>(
    job: &Job,
    pods: &[&'a Pod],
    done: &BTreeSet<i32>,
    failed: &BTreeSet<i32>,
    active: &BTreeSet<i32>,
) -> BTreeMap<i32, &'a Pod> {
    let completions = job.spec.completions.unwrap_or(0);
    let mut last: BTreeMap<i32, &Pod> = BTreeMap::new();
    for p in pods.iter().copied().filter(|p| is_pod_failed(job, p)) {
        let Some(i) = completion_index(p).filter(|i| *i < completions) else { continue };
        if done.contains(&i) || failed.contains(&i) || active.contains(&i) {
            continue;
        }
        match last.get(&i) {
            Some(prev)
                if !(index_absolute_failure_count(prev) <= index_absolute_failure_count(p)
                    && finished_time(p) >= finished_time(prev)) => {}
            _ => {
                last.insert(i, p);
            }
        }
    }
    last
}

/// getCompletionIndex: the pod's index annotation, if it is a non-negative number.
pub fn completion_index(p: &Pod) -> Option<i32> {
    p.metadata.annotations.get(ANN_COMPLETION_INDEX).and_then(|v| v.parse::<i32>().ok()).filter(|i| *i >= 0)
}

/// orderedIntervals.String: `0-2,5,7-8`.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(first) = it.next() {
        let mut last = first;
        while it.peek() == Some(&(last + 1)) {
            last += 1;
            it.next();
        }
        // Two in a row print as a list, three or more as a range.
        out.push(match last - first {
            0 => first.to_string(),
            1 => format!("{first},{last}"),
            _ => format!("{first}-{last}"),
        });
    }
    out.join(",")
}

/// parseIndexesFromString: the intervals back, ignoring what does not parse or lies outside
/// `0..completions`.
pub fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(a), Ok(b)) = (a, b) {
            set.extend((a.max(0)..=b.min(completions - 1)).filter(|i| *i >= 0));
        }
    }
    set
}

/// The succeeded count the controller acts on: pods for a non-indexed Job, indexes in
/// range for an Indexed one.
fn succeeded_count(job: &Job, st: &JobState) -> i32 {
    if is_indexed(job) {
        succeeded_indexes(job, st).len() as i32
    } else {
        job.status.succeeded.max(st.counted_succeeded.len() as i32)
    }
}

/// An Indexed Job's succeeded indexes: the stored ones and those counted since.
fn succeeded_indexes(job: &Job, st: &JobState) -> BTreeSet<i32> {
    let completions = job.spec.completions.unwrap_or(0);
    let mut set = parse_indexes(job.status.completed_indexes.as_deref().unwrap_or(""), completions);
    set.extend(st.succeeded_indexes.iter().copied().filter(|i| *i < completions));
    set
}

fn is_suspended(job: &Job) -> bool {
    job.spec.suspend == Some(true)
}

fn find_condition<'a>(status: &'a JobStatus, type_: &str) -> Option<&'a WorkloadCondition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

fn has_true_condition(status: &JobStatus, type_: &str) -> bool {
    find_condition(status, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

/// util.IsJobFinished: a true Complete or Failed condition.
pub fn is_finished(job: &Job) -> bool {
    has_true_condition(&job.status, CONDITION_COMPLETE) || has_true_condition(&job.status, CONDITION_FAILED)
}

/// newCondition. JobCondition's lastProbeTime has no field in the shared condition type.
fn new_condition(type_: &str, reason: &str, message: &str, now: SimTime) -> WorkloadCondition {
    WorkloadCondition {
        type_: type_.into(),
        status: ConditionStatus::True,
        last_update_time: None,
        last_transition_time: Some(now),
        reason: reason.into(),
        message: message.into(),
    }
}

/// ensureJobConditionStatus: sets a condition, appending only a true one; returns whether
/// the list changed.
fn ensure_condition(
    list: &mut Vec<WorkloadCondition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    now: SimTime,
) -> bool {
    let mut c = new_condition(type_, reason, message, now);
    c.status = status;
    if let Some(old) = list.iter_mut().find(|x| x.type_ == type_) {
        if old.status != status || old.reason != reason || old.message != message {
            *old = c;
            return true;
        }
        return false;
    }
    if status != ConditionStatus::False {
        list.push(c);
        return true;
    }
    false
}

/// controller.FilterActivePods: not terminal and not being deleted.
fn is_active(p: &Pod) -> bool {
    !matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed) && p.metadata.deletion_timestamp.is_none()
}

/// controller.IsPodTerminating: being deleted and not terminal.
fn is_terminating(p: &Pod) -> bool {
    !matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed) && p.metadata.deletion_timestamp.is_some()
}

/// backoff_utils.go getFinishedTime: the last container finish when all containers
/// finished, else the Ready=False transition, else the deletion time less the grace
/// period, else the creation time.
pub fn finished_time(p: &Pod) -> SimTime {
    let cs = &p.status.container_statuses;
    if !cs.is_empty() {
        let ends: Option<Vec<SimTime>> =
            cs.iter().map(|c| c.state.terminated.as_ref().and_then(|t| t.finished_at)).collect();
        if let Some(t) = ends.and_then(|e| e.into_iter().max()) {
            return t;
        }
    }
    if let Some(t) = p
        .condition(condition::READY)
        .filter(|c| c.status == ConditionStatus::False)
        .and_then(|c| c.last_transition_time)
    {
        return t;
    }
    if let Some(d) = p.metadata.deletion_timestamp {
        let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(0).max(0) as u64;
        return SimTime::from_millis(d.as_millis().saturating_sub(grace * 1000));
    }
    p.metadata.creation_timestamp.unwrap_or_default()
}

/// pastBackoffLimitOnFailure: with restartPolicy OnFailure, container restarts of pending
/// and running pods count against backoffLimit.
fn past_backoff_limit_on_failure(job: &Job, backoff_limit: i32, pods: &[&Pod]) -> bool {
    if job.spec.template.spec.restart_policy != Some(RestartPolicy::OnFailure) {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(p.phase(), PodPhase::Pending | PodPhase::Running))
        .flat_map(|p| &p.status.container_statuses)
        .map(|c| i64::from(c.restart_count))
        .sum();
    if backoff_limit == 0 {
        restarts > 0
    } else {
        restarts >= i64::from(backoff_limit)
    }
}

/// The active deadline, when activeDeadlineSeconds is set and the Job runs.
fn active_deadline(job: &Job, start: Option<SimTime>) -> Option<SimTime> {
    let ads = job.spec.active_deadline_seconds?;
    if is_suspended(job) {
        return None;
    }
    Some(start? + Duration::from_secs(ads.max(0) as u64))
}

/// controller.ActivePods ordering, main keys: unassigned before assigned, pending before
/// unknown before running, not ready before ready, more restarts first, newer first.
/// Smaller = deleted first.
fn delete_rank(p: &Pod) -> (bool, u8, bool, Reverse<i32>, Reverse<SimTime>, String) {
    let phase = match p.phase() {
        PodPhase::Pending => 0,
        PodPhase::Unknown => 1,
        _ => 2,
    };
    let restarts = p.status.container_statuses.iter().map(|c| c.restart_count).max().unwrap_or(0);
    (
        !p.spec.node_name.is_empty(),
        phase,
        p.is_ready(),
        Reverse(restarts),
        Reverse(p.metadata.creation_timestamp.unwrap_or_default()),
        p.metadata.name.clone(),
    )
}

fn delete_request(p: &Pod) -> ApiRequest {
    ApiRequest::Delete {
        key: ObjectKey::new(Kind::Pod, p.metadata.namespace.clone(), p.metadata.name.clone()),
        grace_period_seconds: None,
        precondition_uid: Some(p.metadata.uid.clone()),
    }
}

/// A pod from the Job's template (controller_utils.go GetPodFromTemplate): named
/// `<job>-` plus the API server's five random characters (getPodsPrefix, generateName),
/// controlled by the Job, with the Job's selector labels.
fn new_pod(obj: &Object, job: &Job, index: Option<i32>) -> Pod {
    let t = &job.spec.template;
    let m = &job.metadata;
    let mut labels = t.metadata.labels.clone();
    let mut annotations = t.metadata.annotations.clone();
    let mut generate_name = format!("{}-", m.name);
    let mut spec = t.spec.clone();
    if let Some(i) = index {
        annotations.insert(ANN_COMPLETION_INDEX.into(), i.to_string());
        labels.insert(ANN_COMPLETION_INDEX.into(), i.to_string());
        // podGenerateNameWithIndex: the Job's name cut so the prefix fits.
        let append = format!("-{i}-");
        let keep = m.name.len().min(MAX_GENERATED_NAME_LENGTH.saturating_sub(append.len()));
        generate_name = format!("{}{append}", &m.name[..keep]);
        let s = Arc::make_mut(&mut spec);
        s.hostname = format!("{}-{i}", m.name);
        // addCompletionIndexEnvVariables: every container, unless it sets the name itself.
        for c in s.init_containers.iter_mut().chain(s.containers.iter_mut()) {
            if c.env.iter().any(|e| e.name == ENV_COMPLETION_INDEX) {
                continue;
            }
            c.env.push(crate::api::pod::EnvVar {
                name: ENV_COMPLETION_INDEX.into(),
                value: String::new(),
                value_from: Some(crate::api::pod::EnvVarSource {
                    field_ref: Some(crate::api::pod::ObjectFieldSelector {
                        api_version: "v1".into(),
                        field_path: format!("metadata.annotations['{ANN_COMPLETION_INDEX}']"),
                    }),
                    ..Default::default()
                }),
            });
        }
    }
    for (k, v) in [
        (LABEL_LEGACY_JOB_NAME, &m.name),
        (LABEL_JOB_NAME, &m.name),
        (LABEL_LEGACY_CONTROLLER_UID, &m.uid),
        (LABEL_CONTROLLER_UID, &m.uid),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| v.clone());
    }
    Pod {
        metadata: ObjectMeta {
            generate_name,
            namespace: m.namespace.clone(),
            labels,
            annotations,
            finalizers: t.metadata.finalizers.clone(),
            owner_references: vec![controller_ref(obj)],
            ..Default::default()
        },
        spec,
        ..Default::default()
    }
}

/// What one sync decided, before it is written.
#[derive(Debug, Default)]
struct Plan {
    /// The pods to create, with the completion index of each (Indexed Jobs).
    creates: Vec<Option<i32>>,
    /// backoffLimitPerIndex: the failure counts (counted, ignored) of each index created.
    index_failures: BTreeMap<i32, (i32, i32)>,
    deletes: Vec<Pod>,
    /// Pod counts after the planned changes.
    active: usize,
    ready: usize,
    terminating: usize,
}

pub struct JobController {
    states: BTreeMap<String, JobState>,
    /// Last generation seen per Job: a spec change syncs at once, a status change batched.
    generations: BTreeMap<ObjectKey, i64>,
    /// Jobs to sync now (enqueueSyncJobImmediately).
    immediate: BTreeSet<ObjectKey>,
    /// Jobs to sync after SYNC_JOB_BATCH_PERIOD (enqueueSyncJobBatched), dated at the next
    /// reconcile.
    batched: BTreeSet<ObjectKey>,
    /// The work queue's delayed keys (queue.AddAfter keeps the earliest time).
    due: BTreeMap<ObjectKey, SimTime>,
    /// Status writes answered but maybe not yet seen in the cache.
    written: BTreeMap<ObjectKey, Arc<Object>>,
    routes: BTreeMap<u64, Route>,
    next_tag: u64,
    recorder: EventRecorder,
    events: Vec<(u64, ApiRequest)>,
    /// getPodsForJob's ClaimPods: orphan pods to adopt, claims in flight.
    claimer: super::controller_ref::Claimer,
    /// controller.ControllerExpectations, by Job uid: creates not yet seen, deletes (pod
    /// names) not yet seen.
    expectations: super::expectations::Expectations,
}

impl Default for JobController {
    fn default() -> Self {
        Self::new()
    }
}

impl JobController {
    pub fn new() -> Self {
        JobController {
            states: BTreeMap::new(),
            generations: BTreeMap::new(),
            immediate: BTreeSet::new(),
            batched: BTreeSet::new(),
            due: BTreeMap::new(),
            written: BTreeMap::new(),
            routes: BTreeMap::new(),
            next_tag: 0,
            recorder: EventRecorder::new(COMPONENT, ""),
            events: Vec::new(),
            claimer: super::controller_ref::Claimer::new(Kind::Pod),
            expectations: Default::default(),
        }
    }

    fn schedule(&mut self, key: &ObjectKey, at: SimTime) {
        let t = self.due.entry(key.clone()).or_insert(at);
        *t = (*t).min(at);
    }

    fn event(&mut self, obj: &Object, type_: &str, reason: &str, msg: &str, now: SimTime) {
        let r = self.recorder.record(obj, type_, reason, msg, now);
        self.next_tag += 1;
        self.events.push((self.next_tag, r));
    }

    fn send(&mut self, out: &mut Requests, route: Route, r: ApiRequest) {
        self.next_tag += 1;
        if let Some(st) = self.states.get_mut(route.job().1) {
            st.in_flight += 1;
        }
        self.routes.insert(self.next_tag, route);
        out.push(self.next_tag, r);
    }

    /// The Job as the cache has it, or as the last status write returned it if newer.
    fn latest(&self, key: &ObjectKey, cache: &Cache) -> Option<Arc<Object>> {
        let cached = cache.get(key)?;
        match self.written.get(key) {
            Some(w)
                if w.meta().uid == cached.meta().uid
                    && w.meta().resource_version > cached.meta().resource_version =>
            {
                Some(w.clone())
            }
            _ => Some(cached.clone()),
        }
    }

    /// updatePod / deletePod: expectations, and counting a pod that finished.
    fn observe_pod(&mut self, ev: &WatchEvent, cache: &Cache) {
        let Some(p) = ev.object.as_pod() else { return };
        // addPod/updatePod: an orphan wakes the Jobs whose selector matches it (batched).
        let selector = |o: &Object| o.as_job().and_then(|j| j.spec.selector.clone());
        self.batched.extend(self.claimer.observe(ev, cache, Kind::Job, selector));
        let Some(r) = p.metadata.controller_of().filter(|r| r.kind == "Job") else { return };
        let key = ObjectKey::new(Kind::Job, p.metadata.namespace.clone(), r.name.clone());
        // resolveControllerRef; a finished Job no longer tracks its pods.
        let Some(job) = cache.get(&key).and_then(|o| o.as_job()).filter(|j| j.metadata.uid == r.uid) else {
            return;
        };
        if is_finished(job) {
            return;
        }
        let deleted = ev.type_ == WatchEventType::Deleted;
        // addPod: CreationObserved (not for a pod already being deleted); deletePod and
        // updatePod with a deletionTimestamp: DeletionObserved.
        if ev.type_ == WatchEventType::Added && p.metadata.deletion_timestamp.is_none() {
            self.expectations.creation_observed(&r.uid);
        }
        if deleted || p.metadata.deletion_timestamp.is_some() {
            self.expectations.deletion_observed(&r.uid, &p.metadata.name);
        }
        let st = self.states.entry(r.uid.clone()).or_default();
        st.count(job, p, deleted);
        self.batched.insert(key);
    }

    /// syncJob for one Job key.
    fn sync(&mut self, key: &ObjectKey, cache: &Cache, now: SimTime, out: &mut Requests) {
        let Some(obj) = self.latest(key, cache) else {
            self.written.remove(key);
            return;
        };
        let Some(job) = obj.as_job() else { return };
        let uid = job.metadata.uid.clone();
        if is_finished(job) {
            // A finished Job is never synced again; drop its back-off record.
            self.states.remove(&uid);
            self.expectations.delete(&uid);
            return;
        }
        match job.spec.completion_mode.as_str() {
            "" | "NonIndexed" | "Indexed" => {}
            _ => {
                // syncJob: an unknown completion mode.
                self.event(
                    &obj,
                    EVENT_WARNING,
                    "UnknownCompletionMode",
                    "Skipped Job sync because completion mode is unknown",
                    now,
                );
                return;
            }
        }
        let st = self.states.entry(uid.clone()).or_default();
        if st.in_flight > 0 {
            st.resync = true;
            return;
        }
        let satisfied = self.expectations.satisfied(&uid, now);
        let eff = effective(&job.spec);
        let claimed: Vec<Arc<Object>> = match &job.spec.selector {
            Some(selector) => {
                let (claimed, patches) = self.claimer.claim_all(&obj, selector, cache, |_| true);
                self.claimer.send(patches, key, &mut self.next_tag, out);
                claimed
            }
            None => cache.controlled_by(&uid).cloned().collect(),
        };
        let st = self.states.get_mut(&uid).expect("state");
        let pods: Vec<&Pod> = claimed.iter().filter_map(|o| o.as_pod()).collect();
        for p in &pods {
            st.count(job, p, false);
        }
        let mut status = job.status.clone();
        // Job first start, unless suspended.
        if status.start_time.is_none() && !is_suspended(job) {
            status.start_time = Some(now);
        }
        let (new_succeeded, new_failed) =
            (std::mem::take(&mut st.new_succeeded), std::mem::take(&mut st.new_failed));
        st.backoff = st.backoff.next(new_succeeded, new_failed);
        let mut finished = self.finished_condition(key, job, &status, &pods, eff, now);
        let mut plan = Plan {
            active: pods.iter().filter(|p| is_active(p)).count(),
            ready: pods.iter().filter(|p| is_active(p) && p.is_ready()).count(),
            terminating: pods.iter().filter(|p| is_terminating(p)).count(),
            ..Default::default()
        };
        if finished.is_some() {
            // deleteActivePods: a finishing Job's active pods go, and count as failed.
            plan.deletes = pods.iter().filter(|p| is_active(p)).map(|p| (*p).clone()).collect();
            plan.terminating += plan.deletes.len();
            plan.ready -= plan.deletes.iter().filter(|p| p.is_ready()).count();
            plan.active = 0;
            if !satisfied {
                // Pods may be missing from the cache: finish on a later sync.
                finished = None;
            } else if finished.as_ref().is_some_and(|f| f.type_ == CONDITION_SUCCESS_CRITERIA_MET) {
                // deleteJobPods drops the tracking finalizer first: pods a successful Job
                // stops (a successPolicy met early) are never counted.
                let st = self.states.get_mut(&uid).expect("state");
                for p in &plan.deletes {
                    if !st.is_counted(&p.metadata.uid) {
                        st.ignored.insert(p.metadata.uid.clone());
                    }
                }
            } else {
                // trackJobStatusAndRemoveFinalizers: when the Job fails, every pod not
                // yet terminated counts as failed.
                let st = self.states.get_mut(&uid).expect("state");
                for p in &plan.deletes {
                    if !st.is_counted(&p.metadata.uid) {
                        st.counted_failed.insert(p.metadata.uid.clone());
                    }
                }
            }
        } else {
            let manage = satisfied && job.metadata.deletion_timestamp.is_none();
            if manage {
                self.manage_job(key, job, &pods, eff, now, &mut plan);
            }
            let st = &self.states[&uid];
            let succeeded = succeeded_count(job, st);
            let complete = match eff.completions {
                // A work queue is done once any pod succeeded and none is left running.
                None => succeeded > 0 && plan.active == 0,
                Some(c) => succeeded >= c && plan.active == 0,
            };
            if complete {
                finished = Some(new_condition(
                    CONDITION_SUCCESS_CRITERIA_MET,
                    REASON_COMPLETIONS_REACHED,
                    MESSAGE_COMPLETIONS_REACHED,
                    now,
                ));
            } else if manage {
                self.update_suspended(&obj, job, &mut status, now);
            }
        }
        self.issue(key, &obj, job, &plan, out);
        self.track_status(key, job, status, plan, finished, now, out);
    }

    /// The terminal condition a sync works towards, if any (syncJob before manageJob).
    fn finished_condition(
        &mut self,
        key: &ObjectKey,
        job: &Job,
        status: &JobStatus,
        pods: &[&Pod],
        eff: Effective,
        now: SimTime,
    ) -> Option<WorkloadCondition> {
        if let Some(c) = find_condition(status, CONDITION_SUCCESS_CRITERIA_MET)
            .filter(|c| c.status == ConditionStatus::True)
        {
            return Some(c.clone());
        }
        if let Some(c) =
            find_condition(status, CONDITION_FAILURE_TARGET).filter(|c| c.status == ConditionStatus::True)
        {
            // newFailedConditionForFailureTarget.
            return Some(new_condition(CONDITION_FAILED, &c.reason, &c.message, now));
        }
        let st = &self.states[&job.metadata.uid];
        if let Some(msg) = &st.fail_job {
            // getFailJobMessage: the interim FailureTarget carries the rule's message.
            return Some(new_condition(CONDITION_FAILURE_TARGET, REASON_POD_FAILURE_POLICY, msg, now));
        }
        let failed = status.failed.max(st.counted_failed.len() as i32);
        // newFailureCondition: FailureTarget first (delayTerminalCondition holds in v1.33:
        // JobManagedBy and JobPodReplacementPolicy are on by default).
        if failed > eff.backoff_limit || past_backoff_limit_on_failure(job, eff.backoff_limit, pods) {
            return Some(new_condition(
                CONDITION_FAILURE_TARGET,
                REASON_BACKOFF_LIMIT_EXCEEDED,
                MESSAGE_BACKOFF_LIMIT_EXCEEDED,
                now,
            ));
        }
        if let Some(deadline) = active_deadline(job, status.start_time) {
            if now >= deadline {
                return Some(new_condition(
                    CONDITION_FAILURE_TARGET,
                    REASON_DEADLINE_EXCEEDED,
                    MESSAGE_DEADLINE_EXCEEDED,
                    now,
                ));
            }
            // Sync again when the deadline passes.
            self.schedule(key, deadline);
        }
        let st = &self.states[&job.metadata.uid];
        if is_indexed(job) {
            let succeeded = succeeded_indexes(job, st);
            if per_index_limit(job).is_some() {
                // syncJob with backoffLimitPerIndex: too many failed indexes, or every
                // index finished with some failed.
                let failed = failed_indexes(job, st).len();
                if job.spec.max_failed_indexes.is_some_and(|m| failed as i64 > i64::from(m)) {
                    return Some(new_condition(
                        CONDITION_FAILURE_TARGET,
                        REASON_MAX_FAILED_INDEXES_EXCEEDED,
                        MESSAGE_MAX_FAILED_INDEXES_EXCEEDED,
                        now,
                    ));
                }
                if failed > 0 && (failed + succeeded.len()) as i64 >= i64::from(eff.completions.unwrap_or(0))
                {
                    return Some(new_condition(
                        CONDITION_FAILURE_TARGET,
                        REASON_FAILED_INDEXES,
                        MESSAGE_FAILED_INDEXES,
                        now,
                    ));
                }
            }
            if let Some(msg) = match_success_policy(job, &succeeded) {
                return Some(new_condition(CONDITION_SUCCESS_CRITERIA_MET, REASON_SUCCESS_POLICY, &msg, now));
            }
        }
        None
    }

    /// manageJob: deletes surplus pods or creates missing ones, the latter only once the
    /// pod-failure back-off has passed.
    fn manage_job(
        &mut self,
        key: &ObjectKey,
        job: &Job,
        pods: &[&Pod],
        eff: Effective,
        now: SimTime,
        plan: &mut Plan,
    ) {
        let st = self.states.get_mut(&job.metadata.uid).expect("state");
        let mut active: Vec<&Pod> = pods.iter().copied().filter(|p| is_active(p)).collect();
        let succeeded = succeeded_count(job, st);
        let done = if is_indexed(job) { succeeded_indexes(job, st) } else { BTreeSet::new() };
        if is_indexed(job) {
            // appendDuplicatedIndexPodsForRemoval: an active pod without a valid index,
            // with a succeeded index, or a second one for an index goes (the most
            // advanced of a duplicate set stays).
            let completions = eff.completions.unwrap_or(0);
            active.sort_by_key(|p| Reverse(delete_rank(p)));
            let mut seen = BTreeSet::new();
            let mut keep = Vec::new();
            for p in active {
                match completion_index(p) {
                    Some(i) if i < completions && !done.contains(&i) && seen.insert(i) => keep.push(p),
                    _ => {
                        st.ignored.insert(p.metadata.uid.clone());
                        self.expectations.expect_deletion(&job.metadata.uid, &p.metadata.name, now);
                        plan.deletes.push(p.clone());
                        plan.active -= 1;
                        plan.terminating += 1;
                        plan.ready -= usize::from(p.is_ready());
                    }
                }
            }
            active = keep;
        }
        let want = if is_suspended(job) {
            0
        } else {
            match eff.completions {
                // Without completions: parallelism pods until one succeeds, then let the
                // running ones finish.
                None if succeeded > 0 => active.len(),
                None => eff.parallelism.max(0) as usize,
                Some(c) => (c - succeeded).clamp(0, eff.parallelism.max(0)) as usize,
            }
        };
        if active.len() > want {
            // activePodsForRemoval; deleteJobPods drops the tracking finalizer first, so
            // these pods never count as failed.
            active.sort_by_key(|p| delete_rank(p));
            let n = (active.len() - want).min(MAX_POD_CREATE_DELETE_PER_SYNC);
            for p in active.into_iter().take(n) {
                st.ignored.insert(p.metadata.uid.clone());
                self.expectations.expect_deletion(&job.metadata.uid, &p.metadata.name, now);
                plan.deletes.push(p.clone());
                plan.active -= 1;
                plan.terminating += 1;
                plan.ready -= usize::from(p.is_ready());
            }
            return;
        }
        // podReplacementPolicy TerminatingOrFailed: terminating pods are replaced at once;
        // Failed: they keep their slot until they end.
        let held =
            if only_replace_failed(job) { pods.iter().filter(|p| is_terminating(p)).count() } else { 0 };
        let diff = want.saturating_sub(active.len() + held);
        if diff == 0 {
            return;
        }
        // The Job-wide back-off applies unless each index has its own.
        let remaining =
            if per_index_limit(job).is_some() { Duration::ZERO } else { st.backoff.remaining(now) };
        if remaining > Duration::ZERO {
            // enqueueSyncJobWithDelay, never sooner than the batch period. v1.33.0 reported
            // active = 0 here (kubernetes#139428, fixed by #139457 and its cherry-picks);
            // this keeps the real count.
            self.schedule(key, now + remaining.max(SYNC_JOB_BATCH_PERIOD));
            return;
        }
        let n = diff.min(MAX_POD_CREATE_DELETE_PER_SYNC);
        plan.creates = if is_indexed(job) {
            // firstPendingIndexes: the lowest indexes neither succeeded, active nor failed
            // (nor terminating, when only Failed pods are replaced).
            let running: BTreeSet<i32> = active.iter().filter_map(|p| completion_index(p)).collect();
            let terminating: BTreeSet<i32> = if only_replace_failed(job) {
                pods.iter().filter(|p| is_terminating(p)).filter_map(|p| completion_index(p)).collect()
            } else {
                BTreeSet::new()
            };
            let failed =
                if per_index_limit(job).is_some() { failed_indexes(job, st) } else { BTreeSet::new() };
            let pending: Vec<i32> = (0..eff.completions.unwrap_or(0))
                .filter(|i| {
                    !done.contains(i)
                        && !running.contains(i)
                        && !terminating.contains(i)
                        && !failed.contains(i)
                })
                .take(n)
                .collect();
            if per_index_limit(job).is_some() {
                // getPodCreationInfoForIndependentIndexes: the indexes whose own back-off
                // has passed; if none has, sync again when the first one's does.
                let last = last_failed_per_index(job, pods, &done, &failed, &running);
                let wait = |i: &i32| {
                    last.get(i).map_or(Duration::ZERO, |p| {
                        let failures = index_absolute_failure_count(p) as u32 + 1;
                        remaining_for_failures(failures, finished_time(p), now)
                    })
                };
                let now_ready: Vec<i32> =
                    pending.iter().copied().filter(|i| wait(i) == Duration::ZERO).collect();
                if now_ready.is_empty() {
                    if let Some(w) = pending.iter().map(wait).min() {
                        self.schedule(key, now + w.max(SYNC_JOB_BATCH_PERIOD));
                    }
                    return;
                }
                for i in &now_ready {
                    plan.index_failures.insert(*i, new_index_failure_counts(job, last.get(i).copied()));
                }
                now_ready.into_iter().map(Some).collect()
            } else {
                pending.into_iter().map(Some).collect()
            }
        } else {
            vec![None; n]
        };
        self.expectations.expect_creations(&job.metadata.uid, plan.creates.len(), now);
        plan.active += plan.creates.len();
    }

    /// The Suspended condition after manageJob, with its events.
    fn update_suspended(&mut self, obj: &Object, job: &Job, status: &mut JobStatus, now: SimTime) {
        let c = &mut status.conditions;
        if is_suspended(job) {
            if ensure_condition(
                c,
                CONDITION_SUSPENDED,
                ConditionStatus::True,
                "JobSuspended",
                "Job suspended",
                now,
            ) {
                self.event(obj, EVENT_NORMAL, "Suspended", "Job suspended", now);
            }
        } else if ensure_condition(
            c,
            CONDITION_SUSPENDED,
            ConditionStatus::False,
            "JobResumed",
            "Job resumed",
            now,
        ) {
            self.event(obj, EVENT_NORMAL, "Resumed", "Job resumed", now);
            // A resumed Job's activeDeadlineSeconds counts from the resume.
            status.start_time = Some(now);
        }
    }

    /// Sends the sync's creates and deletes.
    fn issue(&mut self, key: &ObjectKey, obj: &Object, job: &Job, plan: &Plan, out: &mut Requests) {
        let job_uid = job.metadata.uid.clone();
        for index in &plan.creates {
            let mut pod = new_pod(obj, job, *index);
            // addIndexFailureCountAnnotation (backoffLimitPerIndex only).
            if let Some((failures, ignored)) = index.and_then(|i| plan.index_failures.get(&i)) {
                let a = &mut pod.metadata.annotations;
                a.insert(ANN_INDEX_FAILURE_COUNT.into(), failures.to_string());
                if *ignored > 0 {
                    a.insert(ANN_INDEX_IGNORED_FAILURE_COUNT.into(), ignored.to_string());
                }
            }
            let route = Route::Create { job: key.clone(), job_uid: job_uid.clone() };
            self.send(out, route, ApiRequest::Create(Object::Pod(pod)));
        }
        for p in &plan.deletes {
            let route =
                Route::Delete { job: key.clone(), job_uid: job_uid.clone(), pod: p.metadata.name.clone() };
            self.send(out, route, delete_request(p));
        }
    }

    /// trackJobStatusAndRemoveFinalizers and enactJobFinished: the counters, the interim
    /// condition, and the terminal one once no pod is terminating.
    #[allow(clippy::too_many_arguments)]
    fn track_status(
        &mut self,
        key: &ObjectKey,
        job: &Job,
        mut status: JobStatus,
        plan: Plan,
        finished: Option<WorkloadCondition>,
        now: SimTime,
        out: &mut Requests,
    ) {
        let st = &self.states[&job.metadata.uid];
        if is_indexed(job) {
            let set = succeeded_indexes(job, st);
            status.succeeded = set.len() as i32;
            // An empty completedIndexes is omitted (omitempty).
            status.completed_indexes = Some(format_indexes(&set)).filter(|s| !s.is_empty());
            // trackJobStatusAndRemoveFinalizers: failedIndexes is always written (a
            // pointer, so "" shows) when backoffLimitPerIndex is set.
            if per_index_limit(job).is_some() {
                status.failed_indexes = Some(format_indexes(&failed_indexes(job, st)));
            }
        } else {
            status.succeeded = status.succeeded.max(st.counted_succeeded.len() as i32);
        }
        status.failed = status.failed.max(st.counted_failed.len() as i32);
        status.active = plan.active as i32;
        status.ready = Some(plan.ready as i32);
        status.terminating = Some(plan.terminating as i32);
        let mut terminal = None;
        if let Some(f) = finished {
            let target = match f.type_.as_str() {
                CONDITION_FAILURE_TARGET => {
                    status.conditions.push(f.clone());
                    new_condition(CONDITION_FAILED, &f.reason, &f.message, now)
                }
                CONDITION_SUCCESS_CRITERIA_MET => {
                    if find_condition(&status, CONDITION_SUCCESS_CRITERIA_MET).is_none() {
                        status.conditions.push(f.clone());
                    }
                    new_condition(CONDITION_COMPLETE, &f.reason, &f.message, now)
                }
                _ => f,
            };
            // enactJobFinished: with delayTerminalCondition, wait until no pod terminates.
            if plan.terminating == 0 {
                ensure_condition(
                    &mut status.conditions,
                    &target.type_,
                    target.status,
                    &target.reason,
                    &target.message,
                    now,
                );
                if target.type_ == CONDITION_COMPLETE {
                    status.completion_time = Some(now);
                }
                terminal = Some(target);
            }
        }
        if status == job.status {
            return;
        }
        let mut n = job.clone();
        n.status = status;
        n.metadata.resource_version = 0;
        let route = Route::Status { job: key.clone(), job_uid: job.metadata.uid.clone(), finished: terminal };
        self.send(out, route, ApiRequest::UpdateStatus(Object::Job(n)));
    }

    /// recordJobFinished, once the terminal status is written.
    fn record_finished(&mut self, obj: &Object, c: &WorkloadCondition, now: SimTime) {
        let Some(job) = obj.as_job() else { return };
        if c.type_ == CONDITION_COMPLETE {
            if effective(&job.spec).completions.is_some_and(|n| job.status.succeeded > n) {
                self.event(
                    obj,
                    EVENT_WARNING,
                    EVENT_TOO_MANY_SUCCEEDED_PODS,
                    MESSAGE_TOO_MANY_SUCCEEDED_PODS,
                    now,
                );
            }
            self.event(obj, EVENT_NORMAL, EVENT_COMPLETED, MESSAGE_COMPLETED, now);
        } else {
            self.event(obj, EVENT_WARNING, &c.reason, &c.message, now);
        }
    }
}

impl Controller for JobController {
    fn on_event(&mut self, ev: &WatchEvent, cache: &Cache) {
        match ev.object.kind() {
            Kind::Job => {
                let key = ev.object.key();
                let m = ev.object.meta();
                if self.written.get(&key).is_some_and(|w| w.meta().resource_version <= m.resource_version) {
                    self.written.remove(&key);
                }
                match ev.type_ {
                    WatchEventType::Deleted => {
                        self.states.remove(&m.uid);
                        self.expectations.delete(&m.uid);
                        self.generations.remove(&key);
                        self.written.remove(&key);
                        self.due.remove(&key);
                        self.recorder.forget(&key);
                    }
                    _ => {
                        // updateJob: a spec change (new generation) syncs at once, a
                        // status-only update after the batch period.
                        let old = self.generations.insert(key.clone(), m.generation);
                        if old == Some(m.generation) {
                            self.batched.insert(key);
                        } else {
                            self.immediate.insert(key);
                        }
                    }
                }
            }
            Kind::Pod => self.observe_pod(ev, cache),
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, cache: &Cache, now: SimTime) {
        if let Some(owner) = self.claimer.on_response(tag, result) {
            self.batched.insert(owner);
            return;
        }
        let Some(route) = self.routes.remove(&tag) else { return };
        let (key, job_uid) = route.job();
        let key = key.clone();
        if let Some(st) = self.states.get_mut(job_uid) {
            st.in_flight = st.in_flight.saturating_sub(1);
            if st.in_flight == 0 && std::mem::take(&mut st.resync) {
                self.batched.insert(key.clone());
            }
        }
        let job = self.latest(&key, cache);
        match (route, result) {
            (Route::Create { .. }, Ok(pod)) => {
                if let Some(job) = job {
                    let msg = format!("Created pod: {}", pod.meta().name);
                    self.event(&job, EVENT_NORMAL, EVENT_SUCCESSFUL_CREATE, &msg, now);
                }
            }
            (Route::Create { job_uid, .. }, Err(e)) => {
                self.expectations.creation_observed(&job_uid);
                if let Some(job) = job {
                    let msg = format!("Error creating: {}", e.message);
                    self.event(&job, EVENT_WARNING, EVENT_FAILED_CREATE, &msg, now);
                }
                self.batched.insert(key);
            }
            (Route::Delete { pod, .. }, Ok(_)) => {
                if let Some(job) = job {
                    let msg = format!("Deleted pod: {pod}");
                    self.event(&job, EVENT_NORMAL, EVENT_SUCCESSFUL_DELETE, &msg, now);
                }
            }
            (Route::Delete { job_uid, pod, .. }, Err(e)) => {
                self.expectations.deletion_observed(&job_uid, &pod);
                // An already deleted pod is not an error (deleteJobPods).
                if !e.is_not_found() {
                    if let Some(job) = job {
                        let msg = format!("Error deleting: {}", e.message);
                        self.event(&job, EVENT_WARNING, EVENT_FAILED_DELETE, &msg, now);
                    }
                    self.batched.insert(key);
                }
            }
            (Route::Status { finished, .. }, Ok(updated)) => {
                self.written.insert(key, updated.clone());
                if let Some(c) = finished {
                    self.record_finished(updated, &c, now);
                }
            }
            (Route::Status { .. }, Err(_)) => {
                self.batched.insert(key);
            }
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for (tag, r) in std::mem::take(&mut self.events) {
            out.push(tag, r);
        }
        for key in std::mem::take(&mut self.batched) {
            self.schedule(&key, now + SYNC_JOB_BATCH_PERIOD);
        }
        let mut ready = std::mem::take(&mut self.immediate);
        let due: Vec<ObjectKey> =
            self.due.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            self.due.remove(&key);
            ready.insert(key);
        }
        for key in ready {
            self.sync(&key, cache, now, out);
        }
        for (tag, r) in std::mem::take(&mut self.events) {
            out.push(tag, r);
        }
        if let Some(&t) = self.due.values().min() {
            out.wake(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pod::{ContainerState, ContainerStateTerminated, ContainerStatus};
    use rand::SeedableRng;

    /// The controller with an informer cache, serving its requests as the API server
    /// would, and the kubelet's part played by the test.
    struct Harness {
        c: JobController,
        cache: Cache,
        rng: ChaCha8Rng,
        now: SimTime,
        rv: u64,
        created: usize,
        /// Every request the controller sent, with its time.
        sent: Vec<(SimTime, ApiRequest)>,
        wake: Option<SimTime>,
    }

    fn job(
        name: &str,
        completions: Option<i32>,
        parallelism: Option<i32>,
        backoff_limit: Option<i32>,
    ) -> Job {
        let mut j = Job {
            metadata: ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("{name}-uid"),
                generation: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        j.spec.completions = completions;
        j.spec.parallelism = parallelism;
        j.spec.backoff_limit = backoff_limit;
        j.spec.template.metadata.labels.insert("app".into(), name.into());
        Arc::make_mut(&mut j.spec.template.spec).restart_policy = Some(RestartPolicy::Never);
        j
    }

    impl Harness {
        fn new(j: Job) -> Self {
            let mut h = Harness {
                c: JobController::new(),
                cache: Cache::default(),
                rng: ChaCha8Rng::seed_from_u64(1),
                now: SimTime::ZERO,
                rv: 0,
                created: 0,
                sent: Vec::new(),
                wake: None,
            };
            h.apply(WatchEventType::Added, Object::Job(j));
            h
        }

        fn apply(&mut self, type_: WatchEventType, mut obj: Object) -> Arc<Object> {
            self.rv += 1;
            obj.meta_mut().resource_version = self.rv;
            let ev = WatchEvent { type_, object: Arc::new(obj) };
            self.cache.apply(&ev);
            self.c.on_event(&ev, &self.cache);
            ev.object
        }

        /// A change from outside the controller (the kubelet, a user), then a tick as
        /// the controller manager ticks after each delivery.
        fn external(&mut self, type_: WatchEventType, obj: Object) {
            self.apply(type_, obj);
            self.step(self.now);
        }

        fn job(&self) -> Job {
            let key = ObjectKey::new(
                Kind::Job,
                "default",
                self.cache.list(Kind::Job).next().unwrap().meta().name.clone(),
            );
            self.cache.get(&key).unwrap().as_job().unwrap().clone()
        }

        fn pods(&self) -> Vec<Pod> {
            self.cache.list(Kind::Pod).filter_map(|o| o.as_pod().cloned()).collect()
        }

        fn pod(&self, name: &str) -> Pod {
            self.cache.get(&ObjectKey::new(Kind::Pod, "default", name)).unwrap().as_pod().unwrap().clone()
        }

        /// What the API server does with a request.
        fn serve(&mut self, r: ApiRequest) -> ApiResult {
            match r {
                ApiRequest::Create(Object::Pod(mut p)) => {
                    self.created += 1;
                    p.metadata.name = format!("{}{:05}", p.metadata.generate_name, self.created);
                    p.metadata.uid = format!("pod-uid-{}", self.created);
                    p.metadata.creation_timestamp = Some(self.now);
                    p.status.phase = Some(PodPhase::Pending);
                    Ok(self.apply(WatchEventType::Added, Object::Pod(p)))
                }
                ApiRequest::UpdateStatus(Object::Job(j)) => {
                    let mut cur = self.job();
                    cur.status = j.status;
                    Ok(self.apply(WatchEventType::Modified, Object::Job(cur)))
                }
                ApiRequest::Delete { key, .. } => {
                    let mut p = self.pod(&key.name);
                    p.metadata.deletion_timestamp = Some(self.now + Duration::from_secs(30));
                    p.metadata.deletion_grace_period_seconds = Some(30);
                    Ok(self.apply(WatchEventType::Modified, Object::Pod(p)))
                }
                ApiRequest::Create(o) | ApiRequest::Update(o) => Ok(Arc::new(o)),
                other => panic!("unexpected request {other:?}"),
            }
        }

        /// Ticks at `now` until the controller has nothing more to send, as the
        /// controller manager ticks after each batch of deliveries.
        fn step(&mut self, now: SimTime) {
            self.now = now;
            for _ in 0..10 {
                let mut out = Requests::default();
                self.c.reconcile(&self.cache, now, &mut self.rng, &mut out);
                self.wake = out.wake_at;
                if out.items.is_empty() {
                    return;
                }
                for (tag, r) in out.items {
                    self.sent.push((now, r.clone()));
                    let result = self.serve(r);
                    self.c.on_response(tag, &result, &self.cache, now);
                }
            }
            panic!("the controller does not settle at {now:?}");
        }

        /// Steps through every wake-up up to `t`, then at `t`.
        fn advance_to(&mut self, t: SimTime) {
            while let Some(w) = self.wake.filter(|w| *w <= t) {
                self.step(w);
            }
            self.step(t);
        }

        /// The kubelet ends a pod: phase, a terminated container, Ready=False.
        fn finish(&mut self, name: &str, phase: PodPhase) {
            let mut p = self.pod(name);
            p.status.phase = Some(phase);
            p.status.container_statuses = vec![ContainerStatus {
                name: "main".into(),
                state: ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: if phase == PodPhase::Succeeded { 0 } else { 1 },
                        finished_at: Some(self.now),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }];
            self.external(WatchEventType::Modified, Object::Pod(p));
        }

        fn creates(&self) -> Vec<SimTime> {
            self.sent
                .iter()
                .filter(|(_, r)| matches!(r, ApiRequest::Create(Object::Pod(_))))
                .map(|(t, _)| *t)
                .collect()
        }

        /// Events recorded: (type, reason, message).
        fn events(&self) -> Vec<(String, String, String)> {
            self.sent
                .iter()
                .filter_map(|(_, r)| match r {
                    ApiRequest::Create(Object::Event(e)) => {
                        Some((e.type_.clone(), e.reason.clone(), e.message.clone()))
                    }
                    _ => None,
                })
                .collect()
        }

        fn active_pod_names(&self) -> Vec<String> {
            self.pods().into_iter().filter(is_active).map(|p| p.metadata.name).collect()
        }
    }

    fn secs(s: u64) -> SimTime {
        SimTime::from_secs(s)
    }

    fn condition_types(j: &Job) -> Vec<&str> {
        j.status.conditions.iter().map(|c| c.type_.as_str()).collect()
    }

    /// completions 3, parallelism 2: two pods, a third as the first succeeds, then
    /// SuccessCriteriaMet and Complete once all three have.
    #[test]
    fn runs_completions_with_parallelism() {
        let mut h = Harness::new(job("pi", Some(3), Some(2), None));
        h.step(secs(0));
        assert_eq!(h.creates().len(), 2);
        let j = h.job();
        assert_eq!((j.status.active, j.status.ready, j.status.start_time), (2, Some(0), Some(secs(0))));
        let p = h.pod("pi-00001");
        assert_eq!(p.metadata.generate_name, "pi-");
        for (k, v) in [
            (LABEL_CONTROLLER_UID, "pi-uid"),
            (LABEL_LEGACY_CONTROLLER_UID, "pi-uid"),
            (LABEL_JOB_NAME, "pi"),
            (LABEL_LEGACY_JOB_NAME, "pi"),
            ("app", "pi"),
        ] {
            assert_eq!(p.metadata.labels.get(k).map(String::as_str), Some(v), "label {k}");
        }
        let owner = p.metadata.controller_of().unwrap();
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.block_owner_deletion),
            ("Job", "pi", Some(true))
        );
        assert!(p.metadata.finalizers.is_empty());

        h.advance_to(secs(5));
        h.finish("pi-00001", PodPhase::Succeeded);
        h.advance_to(secs(5));
        assert_eq!(h.creates().len(), 2, "pod events sync after the batch period");
        h.advance_to(secs(6));
        assert_eq!(h.creates(), vec![secs(0), secs(0), secs(6)]);
        let j = h.job();
        assert_eq!((j.status.succeeded, j.status.active), (1, 2));

        h.advance_to(secs(20));
        h.finish("pi-00002", PodPhase::Succeeded);
        h.finish("pi-00003", PodPhase::Succeeded);
        h.advance_to(secs(30));
        assert_eq!(h.creates().len(), 3);
        let j = h.job();
        assert_eq!((j.status.succeeded, j.status.failed, j.status.active), (3, 0, 0));
        assert_eq!(condition_types(&j), vec![CONDITION_SUCCESS_CRITERIA_MET, CONDITION_COMPLETE]);
        for c in &j.status.conditions {
            assert_eq!(
                (c.reason.as_str(), c.message.as_str()),
                (REASON_COMPLETIONS_REACHED, MESSAGE_COMPLETIONS_REACHED)
            );
            assert_eq!(c.last_transition_time, Some(secs(21)));
        }
        assert_eq!(j.status.completion_time, Some(secs(21)));
        let ev = h.events();
        let created: Vec<_> =
            ev.iter().filter(|e| e.1 == EVENT_SUCCESSFUL_CREATE).map(|e| e.2.as_str()).collect();
        assert_eq!(created, vec!["Created pod: pi-00001", "Created pod: pi-00002", "Created pod: pi-00003"]);
        assert_eq!(
            ev.last().unwrap(),
            &(EVENT_NORMAL.into(), EVENT_COMPLETED.into(), MESSAGE_COMPLETED.into())
        );
    }

    fn with_policy(rules: Vec<crate::api::workloads::PodFailurePolicyRule>) -> Job {
        let mut j = job("train", Some(1), Some(1), Some(3));
        j.spec.pod_failure_policy = Some(crate::api::workloads::PodFailurePolicy { rules });
        j
    }

    fn exit_rule(action: &str, op: &str, values: Vec<i32>) -> crate::api::workloads::PodFailurePolicyRule {
        crate::api::workloads::PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(crate::api::workloads::PodFailurePolicyOnExitCodes {
                container_name: None,
                operator: op.into(),
                values,
            }),
            on_pod_conditions: Vec::new(),
        }
    }

    /// A FailJob rule on exit code 42 (the Kubernetes docs' example): the first such
    /// failure fails the Job at once with reason PodFailurePolicy and upstream's message.
    #[test]
    fn pod_failure_policy_fail_job_on_exit_code() {
        let mut h = Harness::new(with_policy(vec![exit_rule("FailJob", "In", vec![42])]));
        h.step(secs(0));
        let mut p = h.pod("train-00001");
        p.status.phase = Some(PodPhase::Failed);
        p.status.container_statuses = vec![ContainerStatus {
            name: "main".into(),
            state: ContainerState {
                terminated: Some(ContainerStateTerminated { exit_code: 42, ..Default::default() }),
                ..Default::default()
            },
            ..Default::default()
        }];
        h.now = secs(5);
        h.external(WatchEventType::Modified, Object::Pod(p));
        h.advance_to(secs(7));
        let j = h.job();
        assert_eq!(condition_types(&j), vec![CONDITION_FAILURE_TARGET, CONDITION_FAILED]);
        let f = j.status.conditions.iter().find(|c| c.type_ == CONDITION_FAILED).unwrap();
        assert_eq!(f.reason, REASON_POD_FAILURE_POLICY);
        assert_eq!(
            f.message,
            "Container main for pod default/train-00001 failed with exit code 42 matching FailJob rule at index 0"
        );
        assert_eq!(j.status.failed, 1);
        assert_eq!(h.creates().len(), 1, "no replacement");
    }

    /// An Ignore rule on the DisruptionTarget condition: the evicted pod is replaced at
    /// once, without counting a failure or backing off; an exit code no rule lists counts.
    #[test]
    fn pod_failure_policy_ignores_disruptions() {
        let ignore = crate::api::workloads::PodFailurePolicyRule {
            action: "Ignore".into(),
            on_exit_codes: None,
            on_pod_conditions: vec![crate::api::workloads::PodFailurePolicyOnPodCondition {
                type_: "DisruptionTarget".into(),
                status: None,
            }],
        };
        let mut h = Harness::new(with_policy(vec![ignore]));
        h.step(secs(0));
        let mut p = h.pod("train-00001");
        p.status.phase = Some(PodPhase::Failed);
        p.status.conditions = vec![crate::api::pod::PodCondition {
            type_: "DisruptionTarget".into(),
            status: ConditionStatus::True,
            ..Default::default()
        }];
        h.now = secs(5);
        h.external(WatchEventType::Modified, Object::Pod(p));
        h.advance_to(secs(7));
        let c = h.creates();
        assert!(c.len() == 2 && c[1] <= secs(6), "replaced at the next sync, no back-off: {c:?}");
        assert_eq!(h.job().status.failed, 0);
        h.finish("train-00002", PodPhase::Failed);
        h.advance_to(secs(9));
        assert_eq!(h.job().status.failed, 1, "a failure no rule matches counts");
    }

    /// podReplacementPolicy Failed (defaulted with a podFailurePolicy): a terminating pod
    /// holds its slot and is not failed until it ends.
    #[test]
    fn terminating_pods_are_replaced_once_failed_with_a_policy() {
        let mut h = Harness::new(with_policy(vec![exit_rule("Count", "NotIn", vec![0])]));
        h.step(secs(0));
        let mut p = h.pod("train-00001");
        p.metadata.deletion_timestamp = Some(secs(40));
        p.metadata.deletion_grace_period_seconds = Some(30);
        h.now = secs(10);
        h.external(WatchEventType::Modified, Object::Pod(p));
        h.advance_to(secs(12));
        assert_eq!(h.creates().len(), 1, "the terminating pod holds its slot");
        assert_eq!(h.job().status.failed, 0);
        h.finish("train-00001", PodPhase::Failed);
        h.advance_to(secs(14));
        assert_eq!(h.job().status.failed, 1);
    }

    #[test]
    fn completed_indexes_are_intervals() {
        let set: BTreeSet<i32> = [0, 1, 2, 5, 7, 8].into_iter().collect();
        assert_eq!(format_indexes(&set), "0-2,5,7,8", "a pair prints as a list (orderedIntervals.String)");
        assert_eq!(parse_indexes("0-2,5,7-8", 10), set);
        assert_eq!(parse_indexes("0-2,5,7-8", 6), [0, 1, 2, 5].into_iter().collect());
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        assert!(parse_indexes("x,3-", 10).is_empty());
    }

    fn index_of(h: &Harness, name: &str) -> Option<i32> {
        completion_index(&h.pod(name))
    }

    /// Indexed, completions 4, parallelism 2: indexes 0 and 1 first, each pod named and
    /// labelled by its index with JOB_COMPLETION_INDEX; a failed index is created again,
    /// the lowest pending index next; Complete with completedIndexes 0-3.
    #[test]
    fn indexed_job_runs_each_index_once() {
        let mut j = job("render", Some(4), Some(2), None);
        j.spec.completion_mode = "Indexed".into();
        Arc::make_mut(&mut j.spec.template.spec).containers =
            vec![crate::api::Container { name: "main".into(), ..Default::default() }];
        let mut h = Harness::new(j);
        h.step(secs(0));
        assert_eq!(h.creates().len(), 2);
        let a = h.pod("render-0-00001");
        assert_eq!(a.metadata.annotations.get(ANN_COMPLETION_INDEX).map(String::as_str), Some("0"));
        assert_eq!(a.metadata.labels.get(ANN_COMPLETION_INDEX).map(String::as_str), Some("0"));
        assert_eq!(a.spec.hostname, "render-0");
        let env = a.spec.containers.iter().flat_map(|c| &c.env).find(|e| e.name == ENV_COMPLETION_INDEX);
        assert_eq!(
            env.and_then(|e| e.value_from.as_ref())
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.as_str()),
            Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
        );
        assert_eq!(index_of(&h, "render-1-00002"), Some(1));

        // Index 0 succeeds (index 2 takes its slot), then index 1 fails: it runs again
        // after the 10 s back-off.
        h.advance_to(secs(4));
        h.finish("render-0-00001", PodPhase::Succeeded);
        h.advance_to(secs(5));
        h.finish("render-1-00002", PodPhase::Failed);
        h.advance_to(secs(6));
        assert_eq!(h.job().status.completed_indexes.as_deref(), Some("0"));
        assert_eq!(h.creates().len(), 3, "index 2 took index 0's slot at 5 s");
        let running: Vec<Option<i32>> = h.active_pod_names().iter().map(|n| index_of(&h, n)).collect();
        assert_eq!(running, vec![Some(2)], "the failure back-off holds index 1");
        h.advance_to(secs(16));
        let names = h.active_pod_names();
        let idx: BTreeSet<i32> = names.iter().filter_map(|n| index_of(&h, n)).collect();
        assert_eq!(idx, [1, 2].into_iter().collect(), "{names:?}");

        for n in names {
            h.finish(&n, PodPhase::Succeeded);
        }
        h.advance_to(secs(30));
        let last: Vec<String> = h.active_pod_names();
        assert_eq!(last.iter().filter_map(|n| index_of(&h, n)).collect::<Vec<_>>(), vec![3]);
        h.finish(&last[0], PodPhase::Succeeded);
        h.advance_to(secs(40));
        let j = h.job();
        assert_eq!(j.status.completed_indexes.as_deref(), Some("0-3"));
        assert_eq!((j.status.succeeded, j.status.failed, j.status.active), (4, 1, 0));
        assert_eq!(condition_types(&j), vec![CONDITION_SUCCESS_CRITERIA_MET, CONDITION_COMPLETE]);
    }

    fn per_index_job(completions: i32, limit: i32) -> Job {
        let mut j = job("shard", Some(completions), Some(completions), None);
        j.spec.completion_mode = "Indexed".into();
        j.spec.backoff_limit_per_index = Some(limit);
        // SetDefaults_Job: backoffLimit MaxInt32 with backoffLimitPerIndex.
        j.spec.backoff_limit = Some(i32::MAX);
        Arc::make_mut(&mut j.spec.template.spec).containers =
            vec![crate::api::Container { name: "main".into(), ..Default::default() }];
        j
    }

    fn name_of_index(h: &Harness, i: i32) -> String {
        h.active_pod_names()
            .into_iter()
            .find(|n| index_of(h, n) == Some(i))
            .expect("an active pod for the index")
    }

    fn failure_count(h: &Harness, name: &str) -> Option<String> {
        h.pod(name).metadata.annotations.get(ANN_INDEX_FAILURE_COUNT).cloned()
    }

    /// backoffLimitPerIndex 1 (indexed_job_utils.go, the docs' example): index 1 fails,
    /// is retried after its own 10 s back-off with failure count 1 while the other
    /// indexes go on, fails again and is marked failed; once every index is succeeded
    /// or failed the Job fails with FailedIndexes.
    #[test]
    fn backoff_limit_per_index_fails_one_index() {
        let mut h = Harness::new(per_index_job(3, 1));
        h.step(secs(0));
        assert_eq!(h.creates().len(), 3);
        let first = name_of_index(&h, 1);
        assert_eq!(failure_count(&h, &first).as_deref(), Some("0"));
        h.advance_to(secs(2));
        h.finish(&first, PodPhase::Failed);
        h.advance_to(secs(4));
        assert_eq!(h.job().status.failed_indexes.as_deref(), Some(""), "one failure is within the limit");
        assert_eq!(h.creates().len(), 3, "index 1 waits for its back-off");
        h.advance_to(secs(13));
        assert_eq!(h.creates().len(), 4, "10 s after the failure");
        let second = name_of_index(&h, 1);
        assert_eq!(failure_count(&h, &second).as_deref(), Some("1"));
        h.finish(&second, PodPhase::Failed);
        h.advance_to(secs(15));
        let j = h.job();
        assert_eq!(j.status.failed_indexes.as_deref(), Some("1"));
        assert!(condition_types(&j).is_empty(), "indexes 0 and 2 still run");
        h.advance_to(secs(40));
        assert_eq!(h.creates().len(), 4, "a failed index is not retried");
        for i in [0, 2] {
            let n = name_of_index(&h, i);
            h.finish(&n, PodPhase::Succeeded);
        }
        h.advance_to(secs(45));
        let j = h.job();
        assert_eq!(condition_types(&j), vec![CONDITION_FAILURE_TARGET, CONDITION_FAILED]);
        let f = j.status.conditions.iter().find(|c| c.type_ == CONDITION_FAILED).unwrap();
        assert_eq!((f.reason.as_str(), f.message.as_str()), (REASON_FAILED_INDEXES, MESSAGE_FAILED_INDEXES));
        assert_eq!(j.status.completed_indexes.as_deref(), Some("0,2"));
        assert_eq!((j.status.succeeded, j.status.failed), (2, 2));
    }

    /// A FailIndex rule fails the index at its first failure; with maxFailedIndexes 0 the
    /// first failed index fails the Job (MaxFailedIndexesExceeded) and its other pods go.
    #[test]
    fn fail_index_and_max_failed_indexes() {
        let mut j = per_index_job(3, 5);
        j.spec.max_failed_indexes = Some(0);
        j.spec.pod_failure_policy = Some(crate::api::workloads::PodFailurePolicy {
            rules: vec![exit_rule("FailIndex", "In", vec![1])],
        });
        let mut h = Harness::new(j);
        h.step(secs(0));
        let n = name_of_index(&h, 2);
        h.advance_to(secs(2));
        h.finish(&n, PodPhase::Failed);
        h.advance_to(secs(4));
        let j = h.job();
        assert_eq!(j.status.failed_indexes.as_deref(), Some("2"));
        // FailureTarget first; Failed once the deleted pods are gone.
        let f = j.status.conditions.iter().find(|c| c.type_ == CONDITION_FAILURE_TARGET).unwrap();
        assert_eq!(
            (f.reason.as_str(), f.message.as_str()),
            (REASON_MAX_FAILED_INDEXES_EXCEEDED, MESSAGE_MAX_FAILED_INDEXES_EXCEEDED)
        );
        let deletes = h.sent.iter().filter(|(_, r)| matches!(r, ApiRequest::Delete { .. })).count();
        assert_eq!(deletes, 2, "the other indexes' pods are deleted");
    }

    /// successPolicy with succeededIndexes "0" (a leader index, the docs' example): once
    /// index 0 succeeds the Job meets its success criteria, its other pods are deleted
    /// (not counted as failed) and it completes with reason SuccessPolicy.
    #[test]
    fn success_policy_completes_on_the_leader_index() {
        let mut j = job("leader", Some(3), Some(3), None);
        j.spec.completion_mode = "Indexed".into();
        j.spec.success_policy = Some(crate::api::workloads::SuccessPolicy {
            rules: vec![crate::api::workloads::SuccessPolicyRule {
                succeeded_indexes: Some("0".into()),
                succeeded_count: None,
            }],
        });
        let mut h = Harness::new(j);
        h.step(secs(0));
        assert_eq!(h.creates().len(), 3);
        h.advance_to(secs(5));
        h.finish("leader-0-00001", PodPhase::Succeeded);
        h.advance_to(secs(7));
        let j = h.job();
        let met = j.status.conditions.iter().find(|c| c.type_ == CONDITION_SUCCESS_CRITERIA_MET).unwrap();
        assert_eq!(
            (met.reason.as_str(), met.message.as_str()),
            (REASON_SUCCESS_POLICY, "Matched rules at index 0")
        );
        assert_eq!(h.active_pod_names(), Vec::<String>::new(), "the other indexes' pods are deleted");
        // The deleted pods end; then Complete, with the same reason.
        for n in ["leader-1-00002", "leader-2-00003"] {
            h.finish(n, PodPhase::Failed);
        }
        h.advance_to(secs(10));
        let j = h.job();
        assert_eq!(condition_types(&j), vec![CONDITION_SUCCESS_CRITERIA_MET, CONDITION_COMPLETE]);
        let c = j.status.conditions.iter().find(|c| c.type_ == CONDITION_COMPLETE).unwrap();
        assert_eq!(c.reason, REASON_SUCCESS_POLICY);
        assert_eq!((j.status.succeeded, j.status.failed), (1, 0));
        assert_eq!(j.status.completed_indexes.as_deref(), Some("0"));
    }

    /// A second active pod for an index (made by hand) is deleted.
    #[test]
    fn indexed_job_deletes_a_duplicate_index() {
        let mut j = job("render", Some(2), Some(2), None);
        j.spec.completion_mode = "Indexed".into();
        let mut h = Harness::new(j);
        h.step(secs(0));
        let mut dup = h.pod("render-0-00001");
        dup.metadata.name = "render-0-extra".into();
        dup.metadata.uid = "extra".into();
        dup.metadata.creation_timestamp = Some(secs(1));
        h.now = secs(1);
        h.external(WatchEventType::Added, Object::Pod(dup));
        h.advance_to(secs(3));
        let deletes: Vec<String> = h
            .sent
            .iter()
            .filter_map(|(_, r)| match r {
                ApiRequest::Delete { key, .. } => Some(key.name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(deletes.len(), 1, "{deletes:?}");
        assert_eq!(h.job().status.active, 2);
    }

    /// Without completions or parallelism both default to 1; without completions but with
    /// parallelism, the Job is a work queue, done when one pod succeeded and none runs.
    #[test]
    fn defaults_and_work_queue() {
        let mut h = Harness::new(job("one", None, None, None));
        h.step(secs(0));
        assert_eq!(h.creates().len(), 1);

        let mut h = Harness::new(job("queue", None, Some(3), None));
        h.step(secs(0));
        assert_eq!(h.creates().len(), 3);
        h.finish("queue-00001", PodPhase::Succeeded);
        h.advance_to(secs(10));
        assert_eq!(h.creates().len(), 3, "no replacement once a pod succeeded");
        assert!(!is_finished(&h.job()));
        h.finish("queue-00002", PodPhase::Succeeded);
        h.finish("queue-00003", PodPhase::Succeeded);
        h.advance_to(secs(20));
        assert_eq!(condition_types(&h.job()), vec![CONDITION_SUCCESS_CRITERIA_MET, CONDITION_COMPLETE]);
    }

    /// Pods that keep failing exhaust backoffLimit: FailureTarget then Failed with
    /// BackoffLimitExceeded and upstream's message, and a Warning event.
    #[test]
    fn failing_pods_hit_backoff_limit() {
        let mut h = Harness::new(job("fail", Some(1), Some(1), Some(2)));
        let mut t = secs(0);
        h.step(t);
        while !is_finished(&h.job()) {
            for name in h.active_pod_names() {
                h.finish(&name, PodPhase::Failed);
            }
            t = h.wake.expect("a wake-up while the Job runs");
            assert!(t < secs(600), "the Job does not fail");
            h.advance_to(t);
        }
        let j = h.job();
        assert_eq!(h.creates().len(), 3, "backoffLimit 2: the third failure fails the Job");
        assert_eq!((j.status.failed, j.status.succeeded, j.status.active), (3, 0, 0));
        assert_eq!(condition_types(&j), vec![CONDITION_FAILURE_TARGET, CONDITION_FAILED]);
        for c in &j.status.conditions {
            assert_eq!(c.reason, "BackoffLimitExceeded");
            assert_eq!(c.message, "Job has reached the specified backoff limit");
        }
        assert_eq!(j.status.completion_time, None);
        let ev = h.events();
        assert_eq!(
            ev.last().unwrap(),
            &(
                EVENT_WARNING.into(),
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into()
            )
        );
        // A finished Job creates nothing more.
        let n = h.sent.len();
        h.advance_to(t + Duration::from_secs(3600));
        assert_eq!(h.sent.len(), n);
    }

    /// A Job failing with pods still running deletes them (SuccessfulDelete), counts them
    /// failed, and is Failed only once they are gone.
    #[test]
    fn failing_job_deletes_active_pods() {
        let mut h = Harness::new(job("par", Some(4), Some(2), Some(0)));
        h.step(secs(0));
        h.finish("par-00001", PodPhase::Failed);
        h.advance_to(secs(1));
        let j = h.job();
        assert_eq!(condition_types(&j), vec![CONDITION_FAILURE_TARGET]);
        assert_eq!((j.status.failed, j.status.active, j.status.terminating), (2, 0, Some(1)));
        assert!(h.pod("par-00002").metadata.deletion_timestamp.is_some());
        assert!(h.events().contains(&(
            EVENT_NORMAL.into(),
            EVENT_SUCCESSFUL_DELETE.into(),
            "Deleted pod: par-00002".into()
        )));
        let p = h.pod("par-00002");
        h.external(WatchEventType::Deleted, Object::Pod(p));
        h.advance_to(secs(5));
        let j = h.job();
        assert_eq!(condition_types(&j), vec![CONDITION_FAILURE_TARGET, CONDITION_FAILED]);
        assert_eq!((j.status.failed, j.status.terminating), (2, Some(0)));
        assert_eq!(h.creates().len(), 2);
    }

    /// Each re-creation after a failure waits twice as long as the one before: 10 s,
    /// 20 s, 40 s ... (DefaultJobPodFailureBackOff), until backoffLimit (6) is passed.
    #[test]
    fn backoff_between_recreations_doubles() {
        let mut h = Harness::new(job("crash", Some(1), Some(1), None));
        h.step(secs(0));
        while !is_finished(&h.job()) {
            for name in h.active_pod_names() {
                h.finish(&name, PodPhase::Failed);
            }
            let t = h.wake.expect("a wake-up while the Job runs");
            assert!(t < secs(3600), "the Job does not fail");
            h.advance_to(t);
        }
        let creates = h.creates();
        let gaps: Vec<u64> = creates.windows(2).map(|w| w[1].saturating_sub(w[0]).as_secs()).collect();
        assert_eq!(gaps, vec![10, 20, 40, 80, 160, 320]);
        assert_eq!(h.job().status.failed, 7);
    }

    #[test]
    fn backoff_record_doubles_up_to_the_cap_and_resets_on_success() {
        let at = |failures, last| BackoffRecord {
            failures_after_last_success: failures,
            last_failure_time: Some(last),
        };
        let delays: Vec<u64> = (1..=9).map(|n| at(n, secs(100)).remaining(secs(100)).as_secs()).collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(at(2, secs(100)).remaining(secs(115)), Duration::from_secs(5));
        assert_eq!(at(2, secs(100)).remaining(secs(125)), Duration::ZERO);
        assert_eq!(BackoffRecord::default().remaining(secs(5)), Duration::ZERO);

        let r = BackoffRecord::default().next(vec![], vec![secs(3), secs(1)]);
        assert_eq!(r, at(2, secs(3)));
        // A success keeps only the failures after it.
        assert_eq!(r.next(vec![secs(5)], vec![secs(4), secs(6), secs(7)]), at(2, secs(7)));
        assert_eq!(r.next(vec![secs(5)], vec![]), BackoffRecord::default());
        assert_eq!(r.next(vec![], vec![]), r);
    }

    /// restartPolicy OnFailure: container restarts of running pods count against
    /// backoffLimit.
    #[test]
    fn on_failure_restarts_count_against_backoff_limit() {
        let mut j = job("retry", Some(1), Some(1), Some(2));
        Arc::make_mut(&mut j.spec.template.spec).restart_policy = Some(RestartPolicy::OnFailure);
        let mut h = Harness::new(j);
        h.step(secs(0));
        let mut p = h.pod("retry-00001");
        p.status.phase = Some(PodPhase::Running);
        p.status.container_statuses =
            vec![ContainerStatus { name: "main".into(), restart_count: 1, ..Default::default() }];
        h.external(WatchEventType::Modified, Object::Pod(p.clone()));
        h.advance_to(secs(5));
        assert!(h.job().status.conditions.is_empty());
        p.status.container_statuses[0].restart_count = 2;
        h.external(WatchEventType::Modified, Object::Pod(p));
        h.advance_to(secs(10));
        let j = h.job();
        assert_eq!(condition_types(&j), vec![CONDITION_FAILURE_TARGET]);
        assert_eq!(j.status.conditions[0].reason, REASON_BACKOFF_LIMIT_EXCEEDED);
    }

    /// activeDeadlineSeconds: the Job fails with DeadlineExceeded when it passes, woken
    /// for it without any pod event.
    #[test]
    fn active_deadline_fails_the_job() {
        let mut j = job("slow", Some(1), Some(1), None);
        j.spec.active_deadline_seconds = Some(30);
        let mut h = Harness::new(j);
        h.step(secs(0));
        h.advance_to(secs(29));
        assert!(h.job().status.conditions.is_empty());
        assert_eq!(h.wake, Some(secs(30)));
        h.advance_to(secs(30));
        let j = h.job();
        assert_eq!(condition_types(&j), vec![CONDITION_FAILURE_TARGET]);
        assert_eq!(
            (j.status.conditions[0].reason.as_str(), j.status.conditions[0].message.as_str()),
            ("DeadlineExceeded", "Job was active longer than specified deadline")
        );
        assert!(h.pod("slow-00001").metadata.deletion_timestamp.is_some());
    }

    #[test]
    fn finished_time_follows_upstream_lookups() {
        let mut p = Pod::default();
        p.metadata.creation_timestamp = Some(secs(1));
        assert_eq!(finished_time(&p), secs(1));
        p.metadata.deletion_timestamp = Some(secs(40));
        p.metadata.deletion_grace_period_seconds = Some(30);
        assert_eq!(finished_time(&p), secs(10));
        p.status.conditions.push(crate::api::PodCondition {
            type_: condition::READY.into(),
            status: ConditionStatus::False,
            last_transition_time: Some(secs(7)),
            ..Default::default()
        });
        assert_eq!(finished_time(&p), secs(7));
        let done = |t| ContainerStatus {
            state: ContainerState {
                terminated: Some(ContainerStateTerminated { finished_at: Some(t), ..Default::default() }),
                ..Default::default()
            },
            ..Default::default()
        };
        p.status.container_statuses = vec![done(secs(5)), done(secs(6))];
        assert_eq!(finished_time(&p), secs(6));
        p.status.container_statuses.push(ContainerStatus::default());
        assert_eq!(finished_time(&p), secs(7), "a running container: no finish time from containers");
    }
}
