//! The API server's validation of what it is asked to store, as kube-apiserver v1.33
//! validates it (pkg/apis/core/validation/validation.go, pkg/apis/apps/validation,
//! pkg/apis/batch/validation, pkg/apis/storage/validation, apimachinery
//! util/validation): field errors with upstream's paths and texts, joined into the
//! `<Kind>[.<group>] "<name>" is invalid: ...` StatusError of `errors.NewInvalid`.
//! Also the request body limit (`--max-request-body-bytes`' default of 3 MiB).
//!
//! Validation runs after defaulting and mutating admission (the object as it would be
//! stored), as the registry's `BeforeCreate`/`BeforeUpdate` run `Validate` after
//! `PrepareForCreate`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::api::pod::{Container, PodSpec, RestartPolicy};
use crate::api::selector::SelectorOperator;
use crate::api::{IntOrString, Kind, LabelSelector, Object, PodTemplateSpec};
use crate::client::ApiError;

/// apiserver `MaxRequestBodyBytes` (k8s.io/apiserver pkg/server/config.go: 3 MiB), the
/// limit of a create/update/patch body.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;
/// apimachinery api/validation/objectmeta.go `TotalAnnotationSizeLimitB` (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * 1024;

/// validation.go `isNegativeErrorMsg`.
const IS_NEGATIVE: &str = "must be greater than or equal to 0";
/// validation.go `isNotPositiveErrorMsg`.
const IS_NOT_POSITIVE: &str = "must be greater than zero";
/// apimachinery api/validation `FieldImmutableErrorMsg`.
const FIELD_IMMUTABLE: &str = "field is immutable";
/// apps/validation `ValidatePodTemplateSpecForReplicaSet` (and the Job, DaemonSet and
/// ReplicationController checks): the template's labels must match the selector.
const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";
/// apimachinery util/validation `IsDNS1123Label`'s message (two spaces after the
/// first example are upstream's).
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
/// util/validation `DNS1123LabelMaxLength`.
const DNS1123_LABEL_MAX: usize = 63;
/// core/validation `updatablePodSpecFields`, joined with "," in ValidatePodUpdate's
/// Forbidden message (v1.33: resizes go through the resize subresource, so resources
/// are not in the list).
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// One `field.Error`: its path and its body (`Type: value: detail`), printed as
/// `path: body` as `(*field.Error).Error()` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub body: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body)
    }
}

/// `field.Required`: "Required value" and the detail if any.
fn required(field: impl Into<String>, detail: &str) -> FieldError {
    let body =
        if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
    FieldError { field: field.into(), body }
}

/// `field.Invalid` with the value already printed as upstream's ErrorBody prints it
/// (`%q` for strings, `%v` for numbers, `%#v` or `String()` for the rest).
fn invalid(field: impl Into<String>, value: &str, detail: &str) -> FieldError {
    FieldError { field: field.into(), body: format!("Invalid value: {value}: {detail}") }
}

/// `field.Duplicate` of a string value.
fn duplicate(field: impl Into<String>, value: &str) -> FieldError {
    FieldError { field: field.into(), body: format!("Duplicate value: {}", quote(value)) }
}

/// `field.NotSupported`: `supported values: "a", "b"`.
fn not_supported(field: impl Into<String>, value: &str, valid: &[&str]) -> FieldError {
    let valid: Vec<String> = valid.iter().map(|v| quote(v)).collect();
    FieldError {
        field: field.into(),
        body: format!("Unsupported value: {}: supported values: {}", quote(value), valid.join(", ")),
    }
}

/// `field.Forbidden`.
fn forbidden(field: impl Into<String>, detail: &str) -> FieldError {
    FieldError { field: field.into(), body: format!("Forbidden: {detail}") }
}

/// `field.TooLong` (v1.33 text: `must have at most N bytes`; the value is not printed).
fn too_long(field: impl Into<String>, max: usize) -> FieldError {
    FieldError { field: field.into(), body: format!("Too long: must have at most {max} bytes") }
}

/// Go's `%q` of a string (Rust's debug quoting agrees for printable text).
fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// Go's `%#v` of a `map[string]string` (keys sorted; a nil map as `(nil)`).
fn go_map(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "map[string]string(nil)".into();
    }
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{}:{}", quote(k), quote(v))).collect();
    format!("map[string]string{{{}}}", items.join(", "))
}

/// Go's `%#v` of a `v1.LabelSelector`, as field errors print a selector value (e.g.
/// `v1.LabelSelector{MatchLabels:map[string]string{"app":"web"},
/// MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`).
fn go_selector(s: &LabelSelector) -> String {
    let exprs = if s.match_expressions.is_empty() {
        "[]v1.LabelSelectorRequirement(nil)".to_string()
    } else {
        let items: Vec<String> = s
            .match_expressions
            .iter()
            .map(|r| {
                let values = if r.values.is_empty() {
                    "[]string(nil)".to_string()
                } else {
                    let v: Vec<String> = r.values.iter().map(|v| quote(v)).collect();
                    format!("[]string{{{}}}", v.join(", "))
                };
                format!(
                    "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                    quote(&r.key),
                    quote(&format!("{:?}", r.operator))
                )
            })
            .collect();
        format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
    };
    format!("v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}", go_map(&s.match_labels))
}

/// An IntOrString as its `String()` prints it (a field error's value).
fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// The kind as `schema.GroupKind.String()` prints it: `Deployment.apps`, `Pod`.
pub fn group_kind(kind: Kind) -> String {
    match kind.api_version().split_once('/') {
        Some((group, _)) => format!("{}.{group}", kind.as_str()),
        None => kind.as_str().to_string(),
    }
}

/// `errors.NewInvalid`: 422 with `<GroupKind> "<name>" is invalid: <aggregate>`, where the
/// aggregate is the one error, or `[e1, e2]` for several (duplicates dropped, as
/// `ErrorList.ToAggregate` does).
pub fn invalid_error(kind: Kind, name: &str, errs: &[FieldError]) -> ApiError {
    let mut seen = BTreeSet::new();
    let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).filter(|m| seen.insert(m.clone())).collect();
    let aggregate = match msgs.len() {
        1 => msgs[0].clone(),
        _ => format!("[{}]", msgs.join(", ")),
    };
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("{} {} is invalid: {aggregate}", group_kind(kind), quote(name)),
    }
}

fn result(obj: &Object, errs: Vec<FieldError>) -> Result<(), ApiError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid_error(obj.kind(), &obj.meta().name, &errs))
    }
}

/// The request body limit (apiserver handlers/rest.go `limitedReadBody`): 413
/// `Request entity too large: limit is 3145728`. The body is the object's JSON; it is
/// serialized only when its large free-form parts (annotations, labels, ConfigMap and
/// Secret data) already pass a quarter of the limit, so ordinary writes cost nothing.
pub fn check_request_size(obj: &Object) -> Result<(), ApiError> {
    let m = obj.meta();
    let strings = |map: &BTreeMap<String, String>| map.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let mut rough = strings(&m.annotations) + strings(&m.labels);
    match obj {
        Object::ConfigMap(c) => rough += strings(&c.data) + strings(&c.binary_data),
        Object::Secret(s) => rough += strings(&s.data) + strings(&s.string_data),
        _ => {}
    }
    if rough < MAX_REQUEST_BODY_BYTES / 4 {
        return Ok(());
    }
    let size = serde_json::to_vec(obj).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_REQUEST_BODY_BYTES {
        // apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit)).
        return Err(ApiError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!("Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}"),
        });
    }
    Ok(())
}

/// Validates an object being created (after defaulting and mutating admission).
pub fn validate_create(obj: &Object) -> Result<(), ApiError> {
    result(obj, object_errors(obj))
}

/// Validates an update of `old` to `new` (the object as it would be stored): the rules
/// of create, plus the fields upstream's `Validate*Update` keeps immutable.
pub fn validate_update(old: &Object, new: &Object) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    match (old, new) {
        (Object::Pod(o), Object::Pod(n)) => {
            // ValidatePodUpdate: only a few spec fields may change.
            if let Some(e) = pod_spec_update(&o.spec, &n.spec) {
                errs.push(e);
            }
        }
        (Object::Deployment(o), Object::Deployment(n)) => {
            // apps/v1 ValidateDeploymentUpdate: spec.selector is immutable.
            immutable_selector(&o.spec.selector, &n.spec.selector, &mut errs);
        }
        (Object::ReplicaSet(o), Object::ReplicaSet(n)) => {
            immutable_selector(&o.spec.selector, &n.spec.selector, &mut errs);
        }
        (Object::DaemonSet(o), Object::DaemonSet(n)) => {
            immutable_selector(&o.spec.selector, &n.spec.selector, &mut errs);
        }
        (Object::StatefulSet(o), Object::StatefulSet(n)) => {
            immutable_selector(&o.spec.selector, &n.spec.selector, &mut errs);
        }
        (Object::Job(o), Object::Job(n)) => {
            // batch ValidateJobSpecUpdate: selector and (but for a few scheduling
            // directives of a suspended Job) the template are immutable.
            if o.spec.selector != n.spec.selector {
                let v = n.spec.selector.as_ref().map_or("null".to_string(), go_selector);
                errs.push(invalid("spec.selector", &v, FIELD_IMMUTABLE));
            }
            if o.spec.template != n.spec.template {
                errs.push(invalid("spec.template", &template_value(&n.spec.template), FIELD_IMMUTABLE));
            }
        }
        _ => {}
    }
    // The update validators run ValidateObjectMetaUpdate and then the spec of the new
    // object as on create.
    errs.extend(object_errors(new));
    result(new, errs)
}

/// `core.PodTemplateSpec` as `%#v` prints it is unreadable at any length; upstream
/// prints it in full. kubesim prints the template's labels only (a known difference).
fn template_value(t: &PodTemplateSpec) -> String {
    format!("core.PodTemplateSpec{{ObjectMeta:v1.ObjectMeta{{Labels:{}}}}}", go_map(&t.metadata.labels))
}

fn immutable_selector(old: &LabelSelector, new: &LabelSelector, errs: &mut Vec<FieldError>) {
    if old != new {
        errs.push(invalid("spec.selector", &go_selector(new), FIELD_IMMUTABLE));
    }
}

/// ValidatePodUpdate's spec rule: with the updatable fields copied from the old spec
/// (container images, tolerations when only added, terminationGracePeriodSeconds set to
/// 1 from a negative value), the specs must be equal. Upstream appends a `cmp.Diff` of
/// the two specs after a newline; kubesim names the first differing field instead.
fn pod_spec_update(old: &PodSpec, new: &PodSpec) -> Option<FieldError> {
    let mut munged = new.clone();
    for (m, o) in munged.containers.iter_mut().zip(&old.containers) {
        m.image = o.image.clone();
    }
    for (m, o) in munged.init_containers.iter_mut().zip(&old.init_containers) {
        m.image = o.image.clone();
    }
    if old.tolerations.iter().all(|t| munged.tolerations.contains(t)) {
        munged.tolerations = old.tolerations.clone();
    }
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if munged == *old {
        return None;
    }
    Some(forbidden(
        "spec",
        &format!("pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}"),
    ))
}

/// Every create-time rule for the object, in upstream's order: metadata, then spec.
fn object_errors(obj: &Object) -> Vec<FieldError> {
    let mut errs = Vec::new();
    meta_errors(obj, &mut errs);
    match obj {
        Object::Pod(p) => pod_spec(&p.spec, "spec", &mut errs),
        Object::Deployment(d) => {
            let s = &d.spec;
            non_negative(s.replicas, "spec.replicas", &mut errs);
            selector_required(&s.selector, "deployment", &mut errs);
            template_for_replicas(&s.selector, &s.template, &mut errs);
            if let Some(ru) = s.strategy.as_ref().and_then(|st| st.rolling_update.as_ref()) {
                rolling_update(ru.max_unavailable.as_ref(), ru.max_surge.as_ref(), &mut errs);
            }
            non_negative(Some(s.min_ready_seconds), "spec.minReadySeconds", &mut errs);
            non_negative(s.revision_history_limit, "spec.revisionHistoryLimit", &mut errs);
            if let Some(p) = s.progress_deadline_seconds {
                non_negative(Some(p), "spec.progressDeadlineSeconds", &mut errs);
                if p <= s.min_ready_seconds {
                    errs.push(invalid(
                        "spec.progressDeadlineSeconds",
                        &p.to_string(),
                        "must be greater than minReadySeconds",
                    ));
                }
            }
        }
        Object::ReplicaSet(r) => {
            let s = &r.spec;
            non_negative(s.replicas, "spec.replicas", &mut errs);
            non_negative(Some(s.min_ready_seconds), "spec.minReadySeconds", &mut errs);
            // ValidateReplicaSetSpec says "for deployment" too (upstream's text).
            selector_required(&s.selector, "deployment", &mut errs);
            template_for_replicas(&s.selector, &s.template, &mut errs);
        }
        Object::StatefulSet(st) => {
            let s = &st.spec;
            non_negative(s.replicas, "spec.replicas", &mut errs);
            selector_required(&s.selector, "statefulset", &mut errs);
            template_for_replicas(&s.selector, &s.template, &mut errs);
        }
        Object::DaemonSet(ds) => {
            // ValidateDaemonSetSpec: no Required for a missing selector, but nothing
            // matches it; then the template, which must restart Always.
            let s = &ds.spec;
            selector_errors(&s.selector, "spec.selector", &mut errs);
            if !s.selector.matches(&s.template.metadata.labels) || selector_empty(&s.selector) {
                errs.push(invalid(
                    "spec.template.metadata.labels",
                    &go_map(&s.template.metadata.labels),
                    SELECTOR_MISMATCH,
                ));
            }
            pod_template(&s.template, &mut errs);
            restart_always(&s.template.spec, &mut errs);
            if let Some(ru) = s.update_strategy.as_ref().and_then(|u| u.rolling_update.as_ref()) {
                // ValidateRollingUpdateDaemonSet: maxUnavailable and maxSurge not both 0.
                let zero = |v: Option<&IntOrString>| v.is_none_or(is_zero);
                if zero(ru.max_unavailable.as_ref()) && zero(ru.max_surge.as_ref()) {
                    let v = ru.max_unavailable.as_ref().map_or("0".to_string(), int_or_string);
                    errs.push(invalid(
                        "spec.updateStrategy.rollingUpdate.maxUnavailable",
                        &v,
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        }
        Object::Job(j) => {
            let s = &j.spec;
            non_negative(s.parallelism, "spec.parallelism", &mut errs);
            non_negative(s.completions, "spec.completions", &mut errs);
            non_negative(s.backoff_limit, "spec.backoffLimit", &mut errs);
            if let Some(a) = s.active_deadline_seconds.filter(|a| *a <= 0) {
                errs.push(invalid("spec.activeDeadlineSeconds", &a.to_string(), IS_NOT_POSITIVE));
            }
            // validateJobSpec: the per-index limits need Indexed completion mode, and a
            // FailIndex rule needs backoffLimitPerIndex (validatePodFailurePolicyRule).
            if s.completion_mode != "Indexed" {
                for (field, v) in [
                    ("backoffLimitPerIndex", s.backoff_limit_per_index),
                    ("maxFailedIndexes", s.max_failed_indexes),
                ] {
                    if let Some(v) = v {
                        errs.push(invalid(
                            format!("spec.{field}"),
                            &v.to_string(),
                            "requires indexed completion mode",
                        ));
                    }
                }
            }
            if s.backoff_limit_per_index.is_none() {
                for (i, r) in s.pod_failure_policy.iter().flat_map(|p| p.rules.iter()).enumerate() {
                    if r.action == "FailIndex" {
                        errs.push(invalid(
                            format!("spec.podFailurePolicy.rules[{i}].action"),
                            &quote(&r.action),
                            "requires the backoffLimitPerIndex to be set",
                        ));
                    }
                }
            }
            if let Some(sel) = &s.selector {
                selector_errors(sel, "spec.selector", &mut errs);
            }
            match &s.selector {
                None => errs.push(required("spec.selector", "")),
                Some(sel) if !sel.matches(&s.template.metadata.labels) => errs.push(invalid(
                    "spec.template.metadata.labels",
                    &go_map(&s.template.metadata.labels),
                    SELECTOR_MISMATCH,
                )),
                Some(_) => {}
            }
            pod_template(&s.template, &mut errs);
            // batch validateJobSpec: the template restarts OnFailure or Never (the
            // PodSpec defaulting makes an unset policy Always).
            let policy = s.template.spec.restart_policy.unwrap_or_default();
            if !matches!(policy, RestartPolicy::OnFailure | RestartPolicy::Never) {
                errs.push(not_supported(
                    "spec.template.spec.restartPolicy",
                    restart_policy_str(policy),
                    &["OnFailure", "Never"],
                ));
            }
        }
        Object::ReplicationController(rc) => {
            // ValidateReplicationControllerSpec (the selector defaults to the
            // template's labels).
            let s = &rc.spec;
            non_negative(Some(s.min_ready_seconds), "spec.minReadySeconds", &mut errs);
            if s.selector.is_empty() {
                errs.push(required("spec.selector", ""));
            }
            non_negative(s.replicas, "spec.replicas", &mut errs);
            match &s.template {
                None => errs.push(required("spec.template", "")),
                Some(t) => {
                    let matches = s.selector.iter().all(|(k, v)| t.metadata.labels.get(k) == Some(v));
                    if !s.selector.is_empty() && !matches {
                        errs.push(invalid(
                            "spec.template.metadata.labels",
                            &go_map(&t.metadata.labels),
                            SELECTOR_MISMATCH,
                        ));
                    }
                    pod_template(t, &mut errs);
                    restart_always(&t.spec, &mut errs);
                }
            }
        }
        Object::PersistentVolumeClaim(c) => {
            // ValidatePersistentVolumeClaimSpec.
            if c.spec.access_modes.is_empty() {
                errs.push(required("spec.accessModes", "at least 1 access mode is required"));
            }
            match c.spec.resources.requests.get("storage") {
                None => errs.push(required("spec.resources[storage]", "")),
                Some(q) if q.milli_value() <= 0 => {
                    errs.push(invalid("spec.resources[storage]", &quote(q.as_str()), IS_NOT_POSITIVE))
                }
                Some(_) => {}
            }
        }
        Object::PersistentVolume(v) => {
            // ValidatePersistentVolumeSpec.
            if v.spec.access_modes.is_empty() {
                errs.push(required("spec.accessModes", "must contain at least one access mode"));
            }
            if v.spec.capacity.is_empty() {
                errs.push(required("spec.capacity", ""));
            }
            for (name, q) in &v.spec.capacity {
                if q.milli_value() < 0 {
                    errs.push(invalid(format!("spec.capacity[{name}]"), &quote(q.as_str()), IS_NEGATIVE));
                }
            }
        }
        Object::PodDisruptionBudget(b) => {
            // policy ValidatePodDisruptionBudgetSpec. Upstream prints the whole spec as
            // the value of the both-set error (`%#v`, with pointer addresses); kubesim
            // prints the two fields.
            let s = &b.spec;
            if let (Some(min), Some(max)) = (&s.min_available, &s.max_unavailable) {
                let v = format!(
                    "policy.PodDisruptionBudgetSpec{{MinAvailable:{}, MaxUnavailable:{}}}",
                    int_or_string(min),
                    int_or_string(max)
                );
                errs.push(invalid("spec", &v, "minAvailable and maxUnavailable cannot be both set"));
            }
            for (name, v) in [("minAvailable", &s.min_available), ("maxUnavailable", &s.max_unavailable)] {
                if let Some(v) = v {
                    int_or_percent(&format!("spec.{name}"), v, &mut errs);
                    not_more_than_100_percent(&format!("spec.{name}"), v, &mut errs);
                }
            }
            if let Some(p) = s.unhealthy_pod_eviction_policy.as_deref() {
                if !matches!(p, "AlwaysAllow" | "IfHealthyBudget") {
                    errs.push(not_supported(
                        "spec.unhealthyPodEvictionPolicy",
                        p,
                        &["AlwaysAllow", "IfHealthyBudget"],
                    ));
                }
            }
        }
        Object::StorageClass(c) if c.provisioner.is_empty() => {
            // storage/validation validateProvisioner.
            errs.push(required("provisioner", ""));
        }
        _ => {}
    }
    errs
}

/// ValidateObjectMeta: labels and annotation keys, the annotations' total size (and a Namespace's name is a DNS-1123
/// label, ValidateNamespaceName; other names are checked as subdomains on admission).
fn meta_errors(obj: &Object, errs: &mut Vec<FieldError>) {
    let m = obj.meta();
    if obj.kind() == Kind::Namespace {
        if let Some(detail) = dns1123_label(&m.name) {
            errs.push(invalid("metadata.name", &quote(&m.name), &detail));
        }
    }
    labels_errors(&m.labels, "metadata.labels", errs);
    owner_references_errors(&m.owner_references, errs);
    annotation_key_errors(&m.annotations, "metadata.annotations", errs);
    let total: usize = m.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        // ValidateAnnotationsSize: field.TooLong(fldPath, "", TotalAnnotationSizeLimitB).
        errs.push(too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT_B));
    }
}

/// ValidateOwnerReferences: at most one reference is the controller. Upstream prints the
/// whole list as Go's `%#v` (with pointer addresses, not reproducible); kubesim prints
/// it as `kind/name` pairs.
fn owner_references_errors(refs: &[crate::api::OwnerReference], errs: &mut Vec<FieldError>) {
    let mut controller: Option<String> = None;
    for r in refs.iter().filter(|r| r.controller == Some(true)) {
        let name = format!("{}/{}", r.kind, r.name);
        match &controller {
            None => controller = Some(name),
            Some(first) => {
                let value =
                    refs.iter().map(|r| format!("{}/{}", r.kind, r.name)).collect::<Vec<_>>().join(", ");
                errs.push(invalid(
                    "metadata.ownerReferences",
                    &format!("[{value}]"),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {name}"),
                ));
                return;
            }
        }
    }
}

/// `IsDNS1123Label`: the first failing message, `None` when valid.
pub fn dns1123_label(name: &str) -> Option<String> {
    if name.len() > DNS1123_LABEL_MAX {
        return Some(max_len_error(DNS1123_LABEL_MAX));
    }
    (!is_dns1123_label(name)).then(|| DNS1123_LABEL_MSG.to_string())
}

/// Matches `dns1123LabelFmt`, `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// apimachinery util/validation `MaxLenError`.
fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// apimachinery util/validation `RegexError`: the message, examples and the regex.
fn regex_error(msg: &str, regex: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{msg} (e.g. {}regex used for validation is '{regex}')", examples.join(" or "))
}

/// util/validation `qualifiedNameFmt` and its message.
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// util/validation `labelValueFmt` (a qualified name or empty) and its message.
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// util/validation `dns1123SubdomainFmt` and its message.
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
/// util/validation `qualifiedNameMaxLength` and `LabelValueMaxLength` (63), and
/// `DNS1123SubdomainMaxLength` (253).
const QUALIFIED_NAME_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// Matches `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `IsDNS1123Subdomain`: every failing message.
fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !s.split('.').all(is_dns1123_label) {
        errs.push(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// `IsQualifiedName` (label keys, annotation keys): every failing message.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let regex = || regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"]);
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(dns1123_subdomain_errors(prefix).into_iter().map(|m| format!("prefix part {m}")));
            }
            name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex()
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!("name part {}", regex()));
    }
    errs
}

/// `IsValidLabelValue`: every failing message.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > QUALIFIED_NAME_MAX {
        errs.push(max_len_error(QUALIFIED_NAME_MAX));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errs
}

/// metav1validation `ValidateLabels`: each key a qualified name, each value a label
/// value (keys in order; Go's map order is random).
fn labels_errors(labels: &BTreeMap<String, String>, path: &str, errs: &mut Vec<FieldError>) {
    for (k, v) in labels {
        for m in qualified_name_errors(k) {
            errs.push(invalid(path, &quote(k), &m));
        }
        for m in label_value_errors(v) {
            errs.push(invalid(path, &quote(v), &m));
        }
    }
}

/// apimachinery `ValidateAnnotations`: each key, lower-cased, a qualified name (the
/// total size is checked by the caller).
fn annotation_key_errors(annotations: &BTreeMap<String, String>, path: &str, errs: &mut Vec<FieldError>) {
    for k in annotations.keys() {
        for m in qualified_name_errors(&k.to_lowercase()) {
            errs.push(invalid(path, &quote(k), &m));
        }
    }
}

/// `ValidatePodTemplateSpec`: the template's labels and annotation keys (at
/// `spec.template.labels`, upstream's path, without `metadata`), then its pod spec.
fn pod_template(t: &PodTemplateSpec, errs: &mut Vec<FieldError>) {
    labels_errors(&t.metadata.labels, "spec.template.labels", errs);
    annotation_key_errors(&t.metadata.annotations, "spec.template.annotations", errs);
    pod_spec(&t.spec, "spec.template.spec", errs);
}

fn selector_empty(s: &LabelSelector) -> bool {
    s.match_labels.is_empty() && s.match_expressions.is_empty()
}

/// Deployment/ReplicaSet/StatefulSet: `spec.selector: Required value` when missing (a
/// selector kubesim reads as empty is a missing one).
fn selector_required(s: &LabelSelector, _what: &str, errs: &mut Vec<FieldError>) {
    if selector_empty(s) {
        errs.push(required("spec.selector", ""));
    }
    selector_errors(s, "spec.selector", errs);
}

/// metav1validation `ValidateLabelSelector` (strict: AllowInvalidLabelValueInSelector
/// false, as the workload controllers' validation asks): matchLabels as labels, and per
/// requirement its values as the operator needs, its key and its values.
fn selector_errors(s: &LabelSelector, path: &str, errs: &mut Vec<FieldError>) {
    labels_errors(&s.match_labels, &format!("{path}.matchLabels"), errs);
    for (i, r) in s.match_expressions.iter().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        match r.operator {
            SelectorOperator::In | SelectorOperator::NotIn if r.values.is_empty() => errs.push(required(
                format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            SelectorOperator::Exists | SelectorOperator::DoesNotExist if !r.values.is_empty() => {
                errs.push(forbidden(
                    format!("{at}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ))
            }
            _ => {}
        }
        for m in qualified_name_errors(&r.key) {
            errs.push(invalid(format!("{at}.key"), &quote(&r.key), &m));
        }
        for (j, v) in r.values.iter().enumerate() {
            for m in label_value_errors(v) {
                errs.push(invalid(format!("{at}.values[{j}]"), &quote(v), &m));
            }
        }
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`: labels matching the selector (a nil selector
/// matches nothing), the pod spec, and restartPolicy Always.
fn template_for_replicas(sel: &LabelSelector, t: &PodTemplateSpec, errs: &mut Vec<FieldError>) {
    if selector_empty(sel) || !sel.matches(&t.metadata.labels) {
        errs.push(invalid("spec.template.metadata.labels", &go_map(&t.metadata.labels), SELECTOR_MISMATCH));
    }
    pod_template(t, errs);
    restart_always(&t.spec, errs);
}

fn restart_always(spec: &PodSpec, errs: &mut Vec<FieldError>) {
    let policy = spec.restart_policy.unwrap_or_default();
    if policy != RestartPolicy::Always {
        errs.push(not_supported("spec.template.spec.restartPolicy", restart_policy_str(policy), &["Always"]));
    }
}

fn restart_policy_str(p: RestartPolicy) -> &'static str {
    match p {
        RestartPolicy::Always => "Always",
        RestartPolicy::OnFailure => "OnFailure",
        RestartPolicy::Never => "Never",
    }
}

fn is_zero(v: &IntOrString) -> bool {
    match v {
        IntOrString::Int(i) => *i == 0,
        IntOrString::String(s) => s.trim_end_matches('%').parse::<i64>() == Ok(0),
    }
}

/// `ValidateRollingUpdateDeployment`: each a non-negative int or a percentage, not both
/// 0, maxUnavailable at most 100%.
fn rolling_update(
    max_unavailable: Option<&IntOrString>,
    max_surge: Option<&IntOrString>,
    errs: &mut Vec<FieldError>,
) {
    const PATH: &str = "spec.strategy.rollingUpdate";
    for (name, v) in [("maxUnavailable", max_unavailable), ("maxSurge", max_surge)] {
        if let Some(v) = v {
            int_or_percent(&format!("{PATH}.{name}"), v, errs);
        }
    }
    let zero = |v: Option<&IntOrString>| v.is_none_or(is_zero);
    if zero(max_unavailable) && zero(max_surge) {
        let v = max_unavailable.map_or("0".to_string(), int_or_string);
        errs.push(invalid(format!("{PATH}.maxUnavailable"), &v, "may not be 0 when `maxSurge` is 0"));
    }
    if let Some(v) = max_unavailable {
        not_more_than_100_percent(&format!("{PATH}.maxUnavailable"), v, errs);
    }
}

/// apps/validation `ValidatePositiveIntOrPercent`: a non-negative int, or a percentage
/// (`IsValidPercent`'s RegexError text).
fn int_or_percent(field: &str, v: &IntOrString, errs: &mut Vec<FieldError>) {
    match v {
        IntOrString::Int(i) if *i < 0 => errs.push(invalid(field, &i.to_string(), IS_NEGATIVE)),
        IntOrString::String(s) if !is_percent(s) => errs.push(invalid(
            field,
            s,
            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        )),
        _ => {}
    }
}

/// apps/validation `IsNotMoreThan100Percent`.
fn not_more_than_100_percent(field: &str, v: &IntOrString, errs: &mut Vec<FieldError>) {
    if let IntOrString::String(s) = v {
        if is_percent(s) && s.trim_end_matches('%').parse::<u64>().is_ok_and(|p| p > 100) {
            errs.push(invalid(field, s, "must not be greater than 100%"));
        }
    }
}

/// util/validation `IsValidPercent` (`^[0-9]+%$`).
fn is_percent(s: &str) -> bool {
    s.strip_suffix('%').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn non_negative(v: Option<i32>, field: &str, errs: &mut Vec<FieldError>) {
    if let Some(v) = v.filter(|v| *v < 0) {
        errs.push(invalid(field, &v.to_string(), IS_NEGATIVE));
    }
}

/// `ValidatePodSpec`'s container rules: at least one container; each named (a DNS-1123
/// label, unique across init and regular containers) with an image, valid ports and
/// resources; host ports unique across the pod.
fn pod_spec(spec: &PodSpec, path: &str, errs: &mut Vec<FieldError>) {
    let mut names = BTreeSet::new();
    // validateInitContainers runs after validateContainers upstream, but both share the
    // name set; kubesim checks regular containers first as upstream reports them first.
    if spec.containers.is_empty() {
        errs.push(required(format!("{path}.containers"), ""));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let cpath = format!("{path}.containers[{i}]");
        container(c, &cpath, errs);
        if !names.insert(c.name.as_str()) {
            errs.push(duplicate(format!("{cpath}.name"), &c.name));
        }
    }
    host_ports(&spec.containers, &format!("{path}.containers"), errs);
    for (i, c) in spec.init_containers.iter().enumerate() {
        let cpath = format!("{path}.initContainers[{i}]");
        container(c, &cpath, errs);
        if !names.insert(c.name.as_str()) {
            errs.push(duplicate(format!("{cpath}.name"), &c.name));
        }
    }
}

/// `validateContainerCommon`: name, image, ports, resources.
fn container(c: &Container, path: &str, errs: &mut Vec<FieldError>) {
    if c.name.is_empty() {
        errs.push(required(format!("{path}.name"), ""));
    } else if let Some(detail) = dns1123_label(&c.name) {
        errs.push(invalid(format!("{path}.name"), &quote(&c.name), &detail));
    }
    // Upstream does not trim: an image of spaces is allowed (validation.go's comment).
    if c.image.is_empty() {
        errs.push(required(format!("{path}.image"), ""));
    }
    // validateContainerPorts: names unique within the container, port numbers valid.
    let mut port_names = BTreeSet::new();
    for (i, p) in c.ports.iter().enumerate() {
        let ppath = format!("{path}.ports[{i}]");
        if !p.name.is_empty() && !port_names.insert(p.name.as_str()) {
            errs.push(duplicate(format!("{ppath}.name"), &p.name));
        }
        if p.container_port == 0 {
            errs.push(required(format!("{ppath}.containerPort"), ""));
        } else if !(1..=65535).contains(&p.container_port) {
            // IsValidPortNum.
            errs.push(invalid(
                format!("{ppath}.containerPort"),
                &p.container_port.to_string(),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    resources(c, path, errs);
}

/// `ValidateContainerResourceRequirements`: quantities non-negative (limits, then
/// requests; upstream walks the maps in random order, kubesim by name) and each request
/// at most its limit (`must be less than or equal to memory limit of 512Mi`, reported
/// at `resources.requests` with the request's value).
fn resources(c: &Container, path: &str, errs: &mut Vec<FieldError>) {
    let r = &c.resources;
    let lim = format!("{path}.resources.limits");
    let req = format!("{path}.resources.requests");
    for (name, q) in &r.limits {
        if q.milli_value() < 0 {
            errs.push(invalid(format!("{lim}[{name}]"), &quote(q.as_str()), IS_NEGATIVE));
        }
    }
    for (name, q) in &r.requests {
        if q.milli_value() < 0 {
            errs.push(invalid(format!("{req}[{name}]"), &quote(q.as_str()), IS_NEGATIVE));
        }
        match r.limits.get(name) {
            Some(l) if !overcommit_allowed(name) && q.milli_value() != l.milli_value() => errs.push(invalid(
                &req,
                &quote(q.as_str()),
                &format!("must be equal to {name} limit of {}", l.as_str()),
            )),
            Some(l) if q.milli_value() > l.milli_value() => errs.push(invalid(
                &req,
                &quote(q.as_str()),
                &format!("must be less than or equal to {name} limit of {}", l.as_str()),
            )),
            None if !overcommit_allowed(name) => {
                errs.push(required(&lim, "Limit must be set for non overcommitable resources"))
            }
            _ => {}
        }
    }
}

/// core/helper `IsOvercommitAllowed`: everything but extended resources (names with a
/// domain outside kubernetes.io) and hugepages.
fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

/// `AccumulateUniqueHostPorts`: a host port (with its IP and protocol) used twice.
fn host_ports(containers: &[Container], path: &str, errs: &mut Vec<FieldError>) {
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in c.ports.iter().enumerate() {
            if p.host_port == 0 {
                continue;
            }
            let protocol = if p.protocol.is_empty() { "TCP" } else { p.protocol.as_str() };
            let key = format!("{}/{protocol}/{}", p.host_ip, p.host_port);
            if !seen.insert(key.clone()) {
                errs.push(duplicate(format!("{path}[{ci}].ports[{pi}].hostPort"), &key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_is_bracketed_for_several_errors_and_deduplicated() {
        let a = required("spec.selector", "");
        let b = invalid("spec.replicas", "-1", IS_NEGATIVE);
        let one = invalid_error(Kind::Deployment, "web", &[a.clone(), a.clone()]);
        assert_eq!(one.message, "Deployment.apps \"web\" is invalid: spec.selector: Required value");
        let two = invalid_error(Kind::Deployment, "web", &[a, b]);
        assert_eq!(
            two.message,
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.replicas: Invalid value: -1: must be greater than or equal to 0]"
        );
        assert_eq!((two.code, two.reason), (422, "Invalid"));
    }

    #[test]
    fn go_formats() {
        let mut m = BTreeMap::new();
        assert_eq!(go_map(&m), "map[string]string(nil)");
        m.insert("b".to_string(), "2".to_string());
        m.insert("a".to_string(), "1".to_string());
        assert_eq!(go_map(&m), "map[string]string{\"a\":\"1\", \"b\":\"2\"}");
        let s = LabelSelector { match_labels: m, match_expressions: Vec::new() };
        assert_eq!(
            go_selector(&s),
            "v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"1\", \"b\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
        assert_eq!(group_kind(Kind::Job), "Job.batch");
        assert_eq!(group_kind(Kind::Pod), "Pod");
        assert_eq!(group_kind(Kind::StorageClass), "StorageClass.storage.k8s.io");
    }

    #[test]
    fn dns1123_labels() {
        assert_eq!(dns1123_label("web-1"), None);
        assert_eq!(dns1123_label("a.b").as_deref(), Some(DNS1123_LABEL_MSG));
        assert_eq!(dns1123_label(&"a".repeat(64)).as_deref(), Some("must be no more than 63 characters"));
    }

    /// Parses one manifest and defaults it as the API server does before validating.
    fn obj(yaml: &str) -> Object {
        let mut objs = crate::api::manifest::parse_manifests(yaml).expect("manifest parses").objects;
        assert_eq!(objs.len(), 1);
        let mut o = objs.remove(0);
        super::super::default_object(&mut o);
        o
    }

    fn create_err(yaml: &str) -> String {
        validate_create(&obj(yaml)).expect_err("must be rejected").message
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n";

    fn pod_with(containers: &str) -> String {
        format!("{POD}{containers}")
    }

    fn deployment(extra_spec: &str, labels: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n{extra_spec}  template:\n    metadata: {{labels: {labels}}}\n    spec:\n      containers: [{{name: c, image: nginx}}]\n"
        )
    }

    /// ValidateLabels and ValidateAnnotations: keys are qualified names (an optional DNS
    /// subdomain prefix and a name), values label values, with upstream's messages; a
    /// template's are at `spec.template.labels`.
    #[test]
    fn labels_and_annotation_keys_are_checked() {
        let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        let value = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        let e = create_err(&deployment(
            "  selector: {matchLabels: {app: web}}\n",
            "{app: web, 'bad key!': x, tier: '-bad', empty: ''}",
        ));
        assert_eq!(
            e,
            format!(
                "Deployment.apps \"web\" is invalid: [spec.template.labels: Invalid value: \"bad key!\": {name_part}, spec.template.labels: Invalid value: \"-bad\": {value}]"
            )
        );
        let e = create_err(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {{Example.com/x: '{}'}}\n  annotations: {{a/b/c: x, ok.io/fine: y}}\nspec:\n  containers: [{{name: c, image: nginx}}]\n",
            "v".repeat(64)
        ));
        let prefix = "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
        let too_long = format!(
            "metadata.labels: Invalid value: \"{}\": must be no more than 63 characters",
            "v".repeat(64)
        );
        let path = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
        assert_eq!(
            e,
            format!(
                "Pod \"p\" is invalid: [metadata.labels: Invalid value: \"Example.com/x\": {prefix}, {too_long}, metadata.annotations: Invalid value: \"a/b/c\": {path}]"
            )
        );
    }

    /// ValidateLabelSelector: an In requirement without values, an Exists one with values,
    /// and a bad key, each with upstream's path and message.
    #[test]
    fn selectors_are_checked() {
        let e = create_err(&deployment(
            "  selector:\n    matchLabels: {app: web}\n    matchExpressions:\n    - {key: tier, operator: In}\n    - {key: 'a b', operator: Exists, values: [x]}\n",
            "{app: web}",
        ));
        assert!(
            e.starts_with("Deployment.apps \"web\" is invalid: [spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn', spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist', spec.selector.matchExpressions[1].key: Invalid value: \"a b\": name part must consist of"),
            "{e}"
        );
    }

    #[test]
    fn a_valid_pod_and_deployment_pass() {
        validate_create(&obj(&pod_with(
            "  - {name: c, image: nginx, resources: {requests: {cpu: 100m}, limits: {cpu: 200m}}}\n",
        )))
        .unwrap();
        validate_create(&obj(&deployment("  selector: {matchLabels: {app: web}}\n", "{app: web, tier: x}")))
            .unwrap();
    }

    #[test]
    fn pod_needs_a_container() {
        let y = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n";
        assert_eq!(create_err(y), "Pod \"p\" is invalid: spec.containers: Required value");
    }

    #[test]
    fn container_needs_an_image() {
        assert_eq!(
            create_err(&pod_with("  - {name: c}\n")),
            "Pod \"p\" is invalid: spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn container_names_are_unique_labels() {
        assert_eq!(
            create_err(&pod_with("  - {name: c, image: a}\n  - {name: c, image: b}\n")),
            "Pod \"p\" is invalid: spec.containers[1].name: Duplicate value: \"c\""
        );
        assert_eq!(
            create_err(&pod_with("  - {name: Web, image: a}\n")),
            format!(
                "Pod \"p\" is invalid: spec.containers[0].name: Invalid value: \"Web\": {DNS1123_LABEL_MSG}"
            )
        );
    }

    #[test]
    fn container_port_names_and_host_ports_are_unique() {
        let y = pod_with("  - name: c\n    image: a\n    ports:\n      - {name: http, containerPort: 80}\n      - {name: http, containerPort: 81}\n");
        assert_eq!(
            create_err(&y),
            "Pod \"p\" is invalid: spec.containers[0].ports[1].name: Duplicate value: \"http\""
        );
        let y = pod_with("  - name: a\n    image: a\n    ports: [{containerPort: 80, hostPort: 8080}]\n  - name: b\n    image: b\n    ports: [{containerPort: 81, hostPort: 8080}]\n");
        assert_eq!(
            create_err(&y),
            "Pod \"p\" is invalid: spec.containers[1].ports[0].hostPort: Duplicate value: \"/TCP/8080\""
        );
        let y = pod_with("  - name: c\n    image: a\n    ports: [{containerPort: 70000}]\n");
        assert_eq!(
            create_err(&y),
            "Pod \"p\" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
    }

    #[test]
    fn quantities_are_non_negative() {
        let y = pod_with("  - {name: c, image: a, resources: {requests: {cpu: \"-1\"}}}\n");
        assert_eq!(
            create_err(&y),
            "Pod \"p\" is invalid: spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"
        );
    }

    #[test]
    fn requests_are_at_most_limits() {
        let y = pod_with(
            "  - {name: c, image: a, resources: {requests: {memory: 1Gi}, limits: {memory: 512Mi}}}\n",
        );
        assert_eq!(
            create_err(&y),
            "Pod \"p\" is invalid: spec.containers[0].resources.requests: Invalid value: \"1Gi\": must be less than or equal to memory limit of 512Mi"
        );
        // Extended resources may not overcommit at all.
        let y = pod_with("  - {name: c, image: a, resources: {requests: {nvidia.com/gpu: \"1\"}, limits: {nvidia.com/gpu: \"2\"}}}\n");
        assert_eq!(
            create_err(&y),
            "Pod \"p\" is invalid: spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to nvidia.com/gpu limit of 2"
        );
    }

    #[test]
    fn deployment_selector_must_match_the_template() {
        let y = deployment("  selector: {matchLabels: {app: web}}\n", "{app: x}");
        assert_eq!(
            create_err(&y),
            "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn deployment_selector_is_required() {
        let y = deployment("", "{app: web}");
        assert_eq!(
            create_err(&y),
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`]"
        );
    }

    #[test]
    fn deployment_template_restarts_always() {
        let y = deployment("  selector: {matchLabels: {app: web}}\n", "{app: web}")
            .replace("      containers:", "      restartPolicy: Never\n      containers:");
        assert_eq!(
            create_err(&y),
            "Deployment.apps \"web\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
        );
    }

    #[test]
    fn max_surge_and_max_unavailable_not_both_zero() {
        let y = deployment(
            "  selector: {matchLabels: {app: web}}\n  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}\n",
            "{app: web}",
        );
        assert_eq!(
            create_err(&y),
            "Deployment.apps \"web\" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
        );
        let y = deployment(
            "  selector: {matchLabels: {app: web}}\n  strategy: {rollingUpdate: {maxSurge: \"0%\", maxUnavailable: \"0%\"}}\n",
            "{app: web}",
        );
        assert!(
            create_err(&y).ends_with("maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0")
        );
    }

    #[test]
    fn replica_set_and_stateful_set_selectors() {
        let y = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}\n    spec: {containers: [{name: c, image: i}]}\n";
        assert_eq!(
            create_err(y),
            "ReplicaSet.apps \"rs\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"
        );
        let y = y.replace("ReplicaSet", "StatefulSet").replace("name: rs", "name: db");
        assert!(
            create_err(&y).starts_with("StatefulSet.apps \"db\" is invalid: spec.template.metadata.labels")
        );
    }

    #[test]
    fn daemon_set_selector_must_match() {
        let y = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}\n    spec: {containers: [{name: c, image: i}]}\n";
        assert_eq!(
            create_err(y),
            "DaemonSet.apps \"ds\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn job_restart_policy_is_on_failure_or_never() {
        let y = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  manualSelector: true\n  selector: {matchLabels: {app: j}}\n  template:\n    metadata: {labels: {app: j}}\n    spec: {containers: [{name: c, image: i}]}\n";
        assert_eq!(
            create_err(y),
            "Job.batch \"j\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        );
        let ok = y.replace("spec: {containers", "spec: {restartPolicy: Never, containers");
        validate_create(&obj(&ok)).unwrap();
    }

    #[test]
    fn replication_controller_template_matches_its_selector() {
        let y = "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec:\n  selector: {app: a}\n  template:\n    metadata: {labels: {app: b}}\n    spec: {containers: [{name: c, image: i}]}\n";
        assert_eq!(
            create_err(y),
            "ReplicationController \"rc\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn namespace_names_are_labels() {
        let y = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n";
        assert_eq!(
            create_err(y),
            format!(
                "Namespace \"a.b\" is invalid: metadata.name: Invalid value: \"a.b\": {DNS1123_LABEL_MSG}"
            )
        );
    }

    #[test]
    fn annotations_total_at_most_256_kib() {
        let mut o = obj(&pod_with("  - {name: c, image: a}\n"));
        o.meta_mut().annotations.insert("k".into(), "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B));
        assert_eq!(
            validate_create(&o).unwrap_err().message,
            "Pod \"p\" is invalid: metadata.annotations: Too long: must have at most 262144 bytes"
        );
        o.meta_mut().annotations.insert("k".into(), "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B - 1));
        validate_create(&o).unwrap();
    }

    #[test]
    fn request_bodies_over_3_mib_are_too_large() {
        let mut o = obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\n");
        let set = |o: &mut Object, n: usize| {
            let Object::ConfigMap(c) = o else { unreachable!() };
            c.data.insert("blob".into(), "x".repeat(n));
        };
        set(&mut o, MAX_REQUEST_BODY_BYTES);
        let e = check_request_size(&o).unwrap_err();
        assert_eq!((e.code, e.reason), (413, "RequestEntityTooLarge"));
        assert_eq!(e.message, "Request entity too large: limit is 3145728");
        set(&mut o, MAX_REQUEST_BODY_BYTES - 200);
        check_request_size(&o).unwrap();
    }

    #[test]
    fn storage_basics() {
        let y = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nspec: {}\n";
        assert_eq!(
            create_err(y),
            "PersistentVolumeClaim \"c\" is invalid: [spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
        );
        let y = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: s}\nprovisioner: \"\"\n";
        assert_eq!(
            create_err(y),
            "StorageClass.storage.k8s.io \"s\" is invalid: provisioner: Required value"
        );
    }

    #[test]
    fn selectors_are_immutable() {
        let old = obj(&deployment("  selector: {matchLabels: {app: web}}\n", "{app: web, v: x}"));
        let new = obj(&deployment("  selector: {matchLabels: {app: web, v: x}}\n", "{app: web, v: x}"));
        assert_eq!(
            validate_update(&old, &new).unwrap_err().message,
            "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"x\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        );
        validate_update(&old, &old).unwrap();
    }

    #[test]
    fn pod_updates_change_only_the_allowed_fields() {
        let old = obj(&pod_with("  - {name: c, image: a}\n"));
        let image = obj(&pod_with("  - {name: c, image: b}\n"));
        validate_update(&old, &image).unwrap();
        let ports = obj(&pod_with("  - {name: c, image: a, ports: [{containerPort: 80}]}\n"));
        assert_eq!(
            validate_update(&old, &ports).unwrap_err().message,
            format!("Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}")
        );
    }

    #[test]
    fn job_template_is_immutable() {
        let y = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  manualSelector: true\n  selector: {matchLabels: {app: j}}\n  template:\n    metadata: {labels: {app: j}}\n    spec: {restartPolicy: Never, containers: [{name: c, image: i}]}\n";
        let old = obj(y);
        let new = obj(&y.replace("image: i", "image: i2"));
        let e = validate_update(&old, &new).unwrap_err().message;
        assert!(e.starts_with("Job.batch \"j\" is invalid: spec.template: Invalid value: "), "{e}");
        assert!(e.ends_with(": field is immutable"), "{e}");
    }

    #[test]
    fn disruption_budgets() {
        let y = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: b}\nspec: {minAvailable: 1, maxUnavailable: 1, selector: {matchLabels: {app: a}}}\n";
        assert_eq!(
            create_err(y),
            "PodDisruptionBudget.policy \"b\" is invalid: spec: Invalid value: policy.PodDisruptionBudgetSpec{MinAvailable:1, MaxUnavailable:1}: minAvailable and maxUnavailable cannot be both set"
        );
        let y = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: b}\nspec: {minAvailable: 150%, selector: {matchLabels: {app: a}}}\n";
        assert_eq!(
            create_err(y),
            "PodDisruptionBudget.policy \"b\" is invalid: spec.minAvailable: Invalid value: 150%: must not be greater than 100%"
        );
        let y = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: b}\nspec: {maxUnavailable: -1, selector: {matchLabels: {app: a}}}\n";
        assert_eq!(
            create_err(y),
            "PodDisruptionBudget.policy \"b\" is invalid: spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"
        );
    }

    /// validateJobSpec: the per-index fields need Indexed mode; FailIndex needs
    /// backoffLimitPerIndex.
    #[test]
    fn per_index_fields_need_indexed_mode() {
        let base = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}\n";
        let o = obj(&format!("{base}  backoffLimitPerIndex: 1\n  maxFailedIndexes: 2\n"));
        assert_eq!(
            validate_create(&o).unwrap_err().message,
            "Job.batch \"j\" is invalid: [spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode, spec.maxFailedIndexes: Invalid value: 2: requires indexed completion mode]"
        );
        let o = obj(&format!("{base}  podFailurePolicy:\n    rules: [{{action: FailIndex, onExitCodes: {{operator: In, values: [42]}}}}]\n"));
        assert_eq!(
            validate_create(&o).unwrap_err().message,
            "Job.batch \"j\" is invalid: spec.podFailurePolicy.rules[0].action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set"
        );
    }
}
