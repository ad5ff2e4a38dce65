//! What the API server does to an object before it is stored: name generation,
//! validation, defaulting (pkg/apis/*/v1/defaults.go) and admission (NamespaceLifecycle,
//! DefaultTolerationSeconds), and the update rules of each strategy (status only through
//! the status subresource, generation bumps on spec changes, immutable metadata).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::api::pod::condition;
use crate::api::{
    ConditionStatus, IntOrString, Kind, Object, PodCondition, PodPhase, TaintEffect, Toleration,
    TolerationOperator,
};
use crate::client::{ApiError, Cache};
use crate::time::SimTime;

/// apimachinery util/rand's alphabet for generated names: no vowels, no confusable digits.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// names.SimpleNameGenerator: five random characters.
const GENERATED_SUFFIX_LEN: usize = 5;
/// DefaultTolerationSeconds admission: --default-not-ready-toleration-seconds and
/// --default-unreachable-toleration-seconds, both 300.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// How an update changes the stored object.
pub enum MutationView<'a> {
    Replace(&'a Object),
    ReplaceStatus(&'a Object),
    Bind { node: &'a str, uid: &'a str },
    MarkDeleting { grace_seconds: i64 },
    Patch(&'a crate::client::Patch),
}

/// ValidateObjectMeta's name rule: an RFC 1123 subdomain (apimachinery validation.IsDNS1123Subdomain).
pub fn validate_name(name: &str) -> Result<(), String> {
    const MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    if name.len() > 253 {
        return Err(format!("metadata.name: Invalid value: {name:?}: must be no more than 253 characters"));
    }
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("metadata.name: Invalid value: {name:?}: {MSG}"))
    }
}

/// A random (version 4) UUID drawn from the seeded RNG, as `uuid.NewUUID()` gives.
pub fn uuid_v4(rng: &mut ChaCha8Rng) -> String {
    let mut b: [u8; 16] = rng.gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Fills server-set metadata, validates and defaults an object being created.
pub fn prepare_create(
    obj: &mut Object,
    cache: &Cache,
    now: SimTime,
    rng: &mut ChaCha8Rng,
) -> Result<(), ApiError> {
    let kind = obj.kind();
    {
        let m = obj.meta_mut();
        if m.name.is_empty() && !m.generate_name.is_empty() {
            let suffix: String = (0..GENERATED_SUFFIX_LEN)
                .map(|_| NAME_ALPHABET[rng.gen_range(0..NAME_ALPHABET.len())] as char)
                .collect();
            m.name = format!("{}{suffix}", m.generate_name);
        }
        if m.name.is_empty() {
            return Err(ApiError::invalid(
                kind,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        if kind.namespaced() {
            if m.namespace.is_empty() {
                m.namespace = "default".into();
            }
        } else {
            m.namespace.clear();
        }
    }
    let name = obj.meta().name.clone();
    if kind != Kind::Event {
        validate_name(&name).map_err(|e| ApiError::invalid(kind, &name, &e))?;
    }
    if kind.namespaced() {
        let ns = obj.meta().namespace.clone();
        // NamespaceLifecycle admission.
        if cache.get(&crate::api::ObjectKey::new(Kind::Namespace, "", ns.clone())).is_none() {
            return Err(ApiError {
                code: 404,
                reason: "NotFound",
                message: format!("namespaces \"{ns}\" not found"),
            });
        }
    }
    {
        let m = obj.meta_mut();
        m.uid = uuid_v4(rng);
        m.creation_timestamp = Some(now);
        m.resource_version = 0;
        m.deletion_timestamp = None;
        // ConfigMaps, Secrets and StorageClasses have no spec and no generation; the
        // strategies of volumes and claims do not set one.
        m.generation = i64::from(!matches!(
            kind,
            Kind::ConfigMap
                | Kind::Secret
                | Kind::ServiceAccount
                | Kind::StorageClass
                | Kind::PersistentVolume
                | Kind::PersistentVolumeClaim
        ));
    }
    super::priority::admit_create(obj, cache)?;
    default_object(obj);
    if let Object::Pod(p) = obj {
        admit_service_account(p, cache, rng)?;
    }
    admit_storage(obj, cache);
    generate_job_selector(obj);
    Ok(())
}

/// The Job strategy's PrepareForCreate (pkg/registry/batch/job/strategy.go
/// generateSelector), unless `manualSelector`: the template gets the job-name and
/// controller-uid labels (legacy and batch.kubernetes.io/ forms) it does not set, and the
/// selector matches `batch.kubernetes.io/controller-uid`.
fn generate_job_selector(obj: &mut Object) {
    use crate::controllers::job::{
        LABEL_CONTROLLER_UID, LABEL_JOB_NAME, LABEL_LEGACY_CONTROLLER_UID, LABEL_LEGACY_JOB_NAME,
    };
    let Object::Job(j) = obj else { return };
    if j.spec.manual_selector == Some(true) {
        return;
    }
    let (name, uid) = (j.metadata.name.clone(), j.metadata.uid.clone());
    let labels = &mut j.spec.template.metadata.labels;
    for (k, v) in [
        (LABEL_LEGACY_JOB_NAME, &name),
        (LABEL_JOB_NAME, &name),
        (LABEL_LEGACY_CONTROLLER_UID, &uid),
        (LABEL_CONTROLLER_UID, &uid),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| v.clone());
    }
    let sel = j.spec.selector.get_or_insert_with(Default::default);
    sel.match_labels.entry(LABEL_CONTROLLER_UID.to_string()).or_insert(uid);
    // SetDefaults_Job copies the template's labels to a Job without labels; it runs again
    // whenever the stored Job is decoded, so a Job read back has the generated ones.
    if j.metadata.labels.is_empty() {
        j.metadata.labels = j.spec.template.metadata.labels.clone();
    }
}

/// Defaulting as the v1 and apps/v1 defaulters do, plus DefaultTolerationSeconds.
pub fn default_object(obj: &mut Object) {
    match obj {
        Object::Pod(p) => {
            // Default a copy and keep the shared spec when nothing changed (a pod made
            // from an already-defaulted template).
            let mut spec = (*p.spec).clone();
            let s = &mut spec;
            s.priority.get_or_insert(0);
            default_pod_spec(s);
            // SetDefaults_Pod: enableServiceLinks (v1.DefaultEnableServiceLinks) and
            // each container's requests from its limits where unset.
            s.enable_service_links.get_or_insert(true);
            for c in s.containers.iter_mut().chain(s.init_containers.iter_mut()) {
                let r = &mut c.resources;
                for (k, v) in &r.limits {
                    r.requests.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            for (key, seconds) in [
                (TAINT_NOT_READY, DEFAULT_TOLERATION_SECONDS),
                (TAINT_UNREACHABLE, DEFAULT_TOLERATION_SECONDS),
            ] {
                // plugin/pkg/admission/defaulttolerationseconds: a toleration for the key
                // (or any key) with effect NoExecute (or any effect) counts; operator and
                // value are not looked at.
                let has = s.tolerations.iter().any(|t| {
                    (t.key == key || t.key.is_empty()) && t.effect.is_none_or(|e| e == TaintEffect::NoExecute)
                });
                if !has {
                    s.tolerations.push(Toleration {
                        key: key.into(),
                        operator: Some(TolerationOperator::Exists),
                        effect: Some(TaintEffect::NoExecute),
                        toleration_seconds: Some(seconds),
                        ..Default::default()
                    });
                }
            }
            if spec != *p.spec {
                p.spec = std::sync::Arc::new(spec);
            }
            if p.status.phase.is_none() {
                p.status.phase = Some(PodPhase::Pending);
            }
            p.status.qos_class = qos_class(p).into();
        }
        Object::Deployment(d) => {
            d.spec.replicas.get_or_insert(1);
            let st = d.spec.strategy.get_or_insert_with(Default::default);
            let t = *st.type_.get_or_insert(crate::api::workloads::DeploymentStrategyType::RollingUpdate);
            if t == crate::api::workloads::DeploymentStrategyType::RollingUpdate {
                let ru = st.rolling_update.get_or_insert_with(Default::default);
                ru.max_unavailable.get_or_insert(IntOrString::String("25%".into()));
                ru.max_surge.get_or_insert(IntOrString::String("25%".into()));
            }
            d.spec.revision_history_limit.get_or_insert(10);
            d.spec.progress_deadline_seconds.get_or_insert(600);
            default_template(&mut d.spec.template);
        }
        Object::ReplicaSet(r) => {
            r.spec.replicas.get_or_insert(1);
            default_template(&mut r.spec.template);
        }
        Object::DaemonSet(d) => {
            let us = d.spec.update_strategy.get_or_insert_with(Default::default);
            if us.type_.is_empty() {
                us.type_ = "RollingUpdate".into();
            }
            if us.type_ == "RollingUpdate" {
                let ru = us.rolling_update.get_or_insert_with(Default::default);
                ru.max_unavailable.get_or_insert(IntOrString::Int(1));
                ru.max_surge.get_or_insert(IntOrString::Int(0));
            }
            d.spec.revision_history_limit.get_or_insert(10);
            default_template(&mut d.spec.template);
        }
        Object::StatefulSet(st) => {
            st.spec.replicas.get_or_insert(1);
            if st.spec.pod_management_policy.is_empty() {
                st.spec.pod_management_policy = "OrderedReady".into();
            }
            let us = st.spec.update_strategy.get_or_insert_with(Default::default);
            if us.type_.is_empty() {
                us.type_ = "RollingUpdate".into();
            }
            st.spec.revision_history_limit.get_or_insert(10);
            default_template(&mut st.spec.template);
        }
        Object::Node(n) => {
            // plugin/pkg/admission/nodetaint (TaintNodesByCondition): a new node starts
            // with the not-ready NoSchedule taint; the node lifecycle controller removes
            // it once the node reports Ready.
            let taint = crate::api::Taint {
                key: TAINT_NOT_READY.into(),
                value: String::new(),
                effect: TaintEffect::NoSchedule,
                time_added: None,
            };
            if !n.spec.taints.iter().any(|t| t.key == taint.key && t.effect == taint.effect) {
                n.spec.taints.push(taint);
            }
        }
        Object::Namespace(n) if n.status.phase.is_empty() => n.status.phase = "Active".into(),
        Object::Secret(secret) => secret.apply_defaults(),
        _ => {}
    }
    // After the kind's own defaults (a StatefulSet's strategy type comes first).
    default_storage_and_controllers(obj);
}

/// Defaulting for the storage kinds, StatefulSet claim templates, Jobs' batch/v1 fields
/// and ReplicationControllers (pkg/apis/core/v1/defaults.go, storage/v1/defaults.go,
/// apps/v1/defaults.go, batch/v1/defaults.go).
fn default_storage_and_controllers(obj: &mut Object) {
    match obj {
        Object::PersistentVolume(v) => v.apply_defaults(),
        Object::PersistentVolumeClaim(c) => c.apply_defaults(),
        Object::StorageClass(c) => c.apply_defaults(),
        Object::StatefulSet(st) => {
            // The claim templates are defaulted as claims (SetObjectDefaults_StatefulSet).
            for t in &mut st.spec.volume_claim_templates {
                t.apply_defaults();
            }
            // SetDefaults_StatefulSet: a RollingUpdate strategy's partition is 0.
            if let Some(us) = st.spec.update_strategy.as_mut().filter(|u| u.type_ == "RollingUpdate") {
                us.rolling_update.get_or_insert_with(Default::default).partition.get_or_insert(0);
            }
        }
        Object::Job(j) => {
            // SetDefaults_Job: completionMode NonIndexed, podReplacementPolicy Failed with a
            // podFailurePolicy and TerminatingOrFailed without, a rule's onPodConditions
            // status True.
            if j.spec.completion_mode.is_empty() {
                j.spec.completion_mode = "NonIndexed".into();
            }
            // Neither completions nor parallelism: both 1; parallelism 1; backoffLimit 6
            // (MaxInt32 with backoffLimitPerIndex); suspend false.
            if j.spec.completions.is_none() && j.spec.parallelism.is_none() {
                j.spec.completions = Some(1);
            }
            j.spec.parallelism.get_or_insert(1);
            let limit = if j.spec.backoff_limit_per_index.is_some() { i32::MAX } else { 6 };
            j.spec.backoff_limit.get_or_insert(limit);
            j.spec.suspend.get_or_insert(false);
            let failed = if j.spec.pod_failure_policy.is_some() { "Failed" } else { "TerminatingOrFailed" };
            j.spec.pod_replacement_policy.get_or_insert_with(|| failed.into());
            for r in j.spec.pod_failure_policy.iter_mut().flat_map(|p| p.rules.iter_mut()) {
                for c in &mut r.on_pod_conditions {
                    c.status.get_or_insert(ConditionStatus::True);
                }
            }
        }
        Object::ReplicationController(rc) => {
            // SetDefaults_ReplicationController: selector and labels from the template's
            // labels when unset, one replica.
            let template_labels =
                rc.spec.template.as_ref().map(|t| t.metadata.labels.clone()).unwrap_or_default();
            if rc.spec.selector.is_empty() {
                rc.spec.selector = template_labels.clone();
            }
            if rc.metadata.labels.is_empty() {
                rc.metadata.labels = template_labels;
            }
            rc.spec.replicas.get_or_insert(1);
            if let Some(t) = rc.spec.template.as_mut() {
                default_template(t);
            }
        }
        _ => {}
    }
}

/// The admission plugins for claims and volumes: DefaultStorageClass (a claim without
/// storageClassName gets the default class, the newest when several are marked) and
/// StorageObjectInUseProtection (the pvc-protection and pv-protection finalizers, kept for
/// display: the simulated API server does not hold objects for finalizers).
fn admit_storage(obj: &mut Object, cache: &Cache) {
    match obj {
        Object::PersistentVolumeClaim(c) => {
            let named = c.spec.storage_class_name.is_some()
                || c.metadata.annotations.contains_key(crate::api::storage::ANN_BETA_STORAGE_CLASS);
            if !named {
                let default = cache
                    .list(Kind::StorageClass)
                    .filter_map(|o| o.as_storage_class())
                    .filter(|sc| sc.is_default())
                    .max_by_key(|sc| (sc.metadata.creation_timestamp, sc.metadata.name.clone()));
                if let Some(sc) = default {
                    c.spec.storage_class_name = Some(sc.metadata.name.clone());
                }
            }
            let f = crate::api::storage::FINALIZER_PVC_PROTECTION;
            if !c.metadata.finalizers.iter().any(|x| x == f) {
                c.metadata.finalizers.push(f.into());
            }
        }
        Object::PersistentVolume(v) => {
            let f = crate::api::storage::FINALIZER_PV_PROTECTION;
            if !v.metadata.finalizers.iter().any(|x| x == f) {
                v.metadata.finalizers.push(f.into());
            }
        }
        _ => {}
    }
}

/// A workload's pod template, defaulted as SetObjectDefaults_* do (the PodSpec's
/// defaulters; SetDefaults_Pod's and the admission plugins' only apply to pods).
fn default_template(t: &mut crate::api::PodTemplateSpec) {
    let mut spec = (*t.spec).clone();
    default_pod_spec(&mut spec);
    if spec != *t.spec {
        t.spec = std::sync::Arc::new(spec);
    }
}

/// `/dev/termination-log` (v1.TerminationMessagePathDefault).
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// The PodSpec defaulters of pkg/apis/core/v1/defaults.go, shared by pods and templates:
/// SetDefaults_PodSpec (dnsPolicy ClusterFirst, restartPolicy Always,
/// terminationGracePeriodSeconds 30, an empty securityContext, schedulerName
/// default-scheduler), SetDefaults_Container (imagePullPolicy from the tag,
/// terminationMessagePath and -Policy), SetDefaults_ContainerPort (protocol TCP),
/// SetDefaults_Probe and SetDefaults_HTTPGetAction, the volume and env defaulters, and
/// the v1 conversion's `serviceAccount` copy of `serviceAccountName`.
pub fn default_pod_spec(s: &mut crate::api::PodSpec) {
    if s.dns_policy.is_empty() {
        s.dns_policy = "ClusterFirst".into();
    }
    s.restart_policy.get_or_insert(crate::api::pod::RestartPolicy::Always);
    s.termination_grace_period_seconds.get_or_insert(30);
    s.extra.entry("securityContext".into()).or_insert_with(|| serde_json::json!({}));
    if s.scheduler_name.is_empty() {
        s.scheduler_name = crate::api::pod::DEFAULT_SCHEDULER_NAME.into();
    }
    if !s.service_account_name.is_empty() {
        s.service_account = s.service_account_name.clone();
    }
    for c in s.containers.iter_mut().chain(s.init_containers.iter_mut()) {
        if c.image_pull_policy.is_empty() {
            c.image_pull_policy = pull_policy_for(&c.image).into();
        }
        if c.termination_message_path.is_empty() {
            c.termination_message_path = TERMINATION_MESSAGE_PATH.into();
        }
        if c.termination_message_policy.is_empty() {
            c.termination_message_policy = "File".into();
        }
        for p in &mut c.ports {
            if p.protocol.is_empty() {
                p.protocol = "TCP".into();
            }
        }
        for probe in
            [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe].into_iter().flatten()
        {
            probe.timeout_seconds.get_or_insert(1);
            probe.period_seconds.get_or_insert(10);
            probe.success_threshold.get_or_insert(1);
            probe.failure_threshold.get_or_insert(3);
            if let Some(h) = &mut probe.http_get {
                if h.path.is_empty() {
                    h.path = "/".into();
                }
                if h.scheme.is_empty() {
                    h.scheme = "HTTP".into();
                }
            }
        }
    }
    s.default_volumes_and_env();
}

/// SetDefaults_Container's imagePullPolicy: Always when the tag is `latest` (which an
/// image with neither tag nor digest has, parsers.ParseImageName), else IfNotPresent.
pub fn pull_policy_for(image: &str) -> &'static str {
    let name = image.split('@').next().unwrap_or(image);
    let has_digest = name.len() != image.len();
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    match tag {
        Some("latest") => "Always",
        None if !has_digest => "Always",
        _ => "IfNotPresent",
    }
}

/// The ServiceAccount admission plugin's mount path for the API token.
pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// serviceaccount admission: the token's lifetime, an hour plus seven seconds
/// (serviceaccount.WarnOnlyBoundTokenExpirationSeconds, 3607).
pub const SERVICE_ACCOUNT_TOKEN_SECONDS: i64 = 3607;

/// plugin/pkg/admission/serviceaccount/admission.go on pod create: serviceAccountName
/// `default` when unset, and unless automountServiceAccountToken is false, the projected
/// `kube-api-access-<5 random characters>` volume (the token, the root CA, the
/// namespace) mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in
/// every container that mounts nothing there, unless the pod or else its account sets
/// automountServiceAccountToken false (shouldAutomount).
///
/// The account must exist: `pods "<name>" is forbidden: error looking up service account
/// <ns>/<account>: serviceaccount "<account>" not found` (a generated name shows its
/// prefix, extractResourceName). Upstream retries a missing `default` ten times, 100-200
/// ms apart, as the controller creates it with the namespace; kubesim lets a missing
/// `default` through for that reason.
fn admit_service_account(
    p: &mut crate::api::Pod,
    cache: &Cache,
    rng: &mut ChaCha8Rng,
) -> Result<(), ApiError> {
    use crate::api::pod::{
        DownwardApiProjection, DownwardApiVolumeFile, KeyToPath, ObjectFieldSelector, ProjectedKeys,
        ProjectedVolumeSource, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
    };
    // Mirror pods (the kubelet's static pods) are left alone.
    if p.metadata.annotations.contains_key("kubernetes.io/config.mirror") {
        return Ok(());
    }
    let ns = p.metadata.namespace.clone();
    let shown = if p.metadata.name.is_empty() { &p.metadata.generate_name } else { &p.metadata.name }.clone();
    let s = std::sync::Arc::make_mut(&mut p.spec);
    if s.service_account_name.is_empty() {
        s.service_account_name = crate::api::cluster::DEFAULT_SERVICE_ACCOUNT.into();
    }
    s.service_account = s.service_account_name.clone();
    let name = s.service_account_name.clone();
    let account = cache.get(&crate::api::ObjectKey::new(Kind::ServiceAccount, ns.clone(), name.clone()));
    if account.is_none() && name != crate::api::cluster::DEFAULT_SERVICE_ACCOUNT {
        return Err(ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "pods \"{shown}\" is forbidden: error looking up service account {ns}/{name}: serviceaccount \"{name}\" not found"
            ),
        });
    }
    let sa_automount = account.and_then(|o| match &**o {
        Object::ServiceAccount(sa) => sa.automount_service_account_token,
        _ => None,
    });
    let automount = match s.extra.get("automountServiceAccountToken") {
        Some(serde_json::Value::Bool(b)) => *b,
        _ => sa_automount.unwrap_or(true),
    };
    if !automount {
        return Ok(());
    }
    let mounted = |c: &crate::api::Container| {
        c.volume_mounts.iter().any(|m| m.mount_path == SERVICE_ACCOUNT_MOUNT_PATH)
    };
    if s.containers.iter().chain(&s.init_containers).all(mounted) {
        return Ok(());
    }
    // apimachinery rand.String(5) over names.SimpleNameGenerator's alphabet.
    let suffix: String = (0..GENERATED_SUFFIX_LEN)
        .map(|_| NAME_ALPHABET[rng.gen_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    let name = format!("kube-api-access-{suffix}");
    s.volumes.push(Volume {
        name: name.clone(),
        projected: Some(ProjectedVolumeSource {
            sources: vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        expiration_seconds: Some(SERVICE_ACCOUNT_TOKEN_SECONDS),
                        path: "token".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ProjectedKeys {
                        name: crate::api::config::ROOT_CA_CONFIG_MAP.into(),
                        items: vec![KeyToPath { key: "ca.crt".into(), path: "ca.crt".into(), mode: None }],
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardApiProjection {
                        items: vec![DownwardApiVolumeFile {
                            path: "namespace".into(),
                            field_ref: Some(ObjectFieldSelector {
                                api_version: "v1".into(),
                                field_path: "metadata.namespace".into(),
                            }),
                            ..Default::default()
                        }],
                    }),
                    ..Default::default()
                },
            ],
            default_mode: Some(crate::api::pod::VOLUME_DEFAULT_MODE),
        }),
        ..Default::default()
    });
    for c in s.containers.iter_mut().chain(s.init_containers.iter_mut()) {
        if !mounted(c) {
            c.volume_mounts.push(VolumeMount {
                name: name.clone(),
                mount_path: SERVICE_ACCOUNT_MOUNT_PATH.into(),
                read_only: true,
                ..Default::default()
            });
        }
    }
    Ok(())
}

/// `qos.GetPodQOS` (pkg/apis/core/helper/qos).
fn qos_class(p: &crate::api::Pod) -> &'static str {
    let (mut any, mut guaranteed) = (false, true);
    for c in p.spec.containers.iter().chain(&p.spec.init_containers) {
        let r = &c.resources;
        if !r.requests.is_empty() || !r.limits.is_empty() {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let lim = r.limits.get(res);
            let req = r.requests.get(res).or(lim);
            if lim.is_none() || req.map(|q| q.milli_value()) != lim.map(|q| q.milli_value()) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn has_status(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Pod
            | Kind::Node
            | Kind::ReplicaSet
            | Kind::Deployment
            | Kind::DaemonSet
            | Kind::StatefulSet
            | Kind::Job
            | Kind::Namespace
            | Kind::PersistentVolume
            | Kind::PersistentVolumeClaim
            | Kind::ReplicationController
            | Kind::PodDisruptionBudget
    )
}

/// A patch's `metadata.uid`: the object must still be the one the patch was made for.
/// A different uid patched in is an update of an immutable field (ValidateObjectMetaUpdate:
/// 422 `metadata.uid: Invalid value: "<uid>": field is immutable`), which ReleasePod
/// ignores as "the pod was replaced".
fn uid_precondition(uid: &str, o: &Object) -> Result<(), ApiError> {
    if uid == o.meta().uid {
        return Ok(());
    }
    let key = o.key();
    Err(ApiError::invalid(
        key.kind,
        &key.name,
        &format!("metadata.uid: Invalid value: \"{uid}\": field is immutable"),
    ))
}

/// The object an update stores, or `None` when nothing would change.
fn apply_patch(current: &Object, patch: &crate::client::Patch) -> Result<Object, ApiError> {
    use crate::client::Patch;
    let key = current.key();
    let mut next = current.clone();
    match (patch, &mut next) {
        (Patch::NodeTaints { add, remove }, Object::Node(n)) => {
            let same = |a: &crate::api::Taint, b: &crate::api::Taint| a.key == b.key && a.effect == b.effect;
            n.spec.taints.retain(|t| !remove.iter().chain(add.iter()).any(|r| same(r, t)));
            n.spec.taints.extend(add.iter().cloned());
        }
        (Patch::PodStatus { conditions, phase }, Object::Pod(p)) => {
            for c in conditions {
                p.set_condition(c.clone());
            }
            if let Some(ph) = phase {
                p.status.phase = Some(*ph);
            }
        }
        (Patch::NodeVolumesAttached { volumes }, Object::Node(n)) => {
            n.status.volumes_attached = volumes.clone();
        }
        (Patch::NodePodCidrs { cidrs }, Object::Node(n)) => {
            n.spec.pod_cidr = cidrs.first().cloned().unwrap_or_default();
            n.spec.pod_cidrs = cidrs.clone();
        }
        (Patch::AdoptByController { owner, uid }, o) => {
            uid_precondition(uid, o)?;
            let refs = &mut o.meta_mut().owner_references;
            // Strategic merge: ownerReferences merge by uid (types.go patchMergeKey).
            match refs.iter_mut().find(|r| r.uid == owner.uid) {
                Some(r) => *r = owner.clone(),
                None => refs.push(owner.clone()),
            }
        }
        (Patch::ReleaseFromController { owner_uid, uid }, o) => {
            uid_precondition(uid, o)?;
            o.meta_mut().owner_references.retain(|r| r.uid != *owner_uid);
        }
        _ => return Err(ApiError::invalid(key.kind, &key.name, "the patch does not apply to this kind")),
    }
    Ok(next)
}

pub fn mutate(current: &Object, m: &MutationView<'_>, now: SimTime) -> Result<Option<Object>, ApiError> {
    let key = current.key();
    let mut next = match m {
        MutationView::Replace(new) => {
            let mut next = (*new).clone();
            if next.kind() != current.kind() {
                return Err(ApiError::invalid(key.kind, &key.name, "kind is immutable"));
            }
            if has_status(key.kind) {
                copy_status(current, &mut next);
            }
            let spec_changed = !same_spec(current, &next);
            let cm = current.meta();
            let nm = next.meta_mut();
            nm.uid = cm.uid.clone();
            nm.creation_timestamp = cm.creation_timestamp;
            nm.deletion_timestamp = cm.deletion_timestamp;
            nm.deletion_grace_period_seconds = cm.deletion_grace_period_seconds;
            nm.namespace = cm.namespace.clone();
            nm.generation = cm.generation + i64::from(spec_changed);
            // Defaulting runs on every decoded request, updates included: a replaced
            // workload's template is defaulted as a created one's (the Deployment
            // controller compares templates with its ReplicaSets'). Admission plugins
            // that only act on create (node taints, DefaultTolerationSeconds) do not.
            if matches!(
                key.kind,
                Kind::Deployment
                    | Kind::ReplicaSet
                    | Kind::DaemonSet
                    | Kind::StatefulSet
                    | Kind::Secret
                    | Kind::Job
                    | Kind::ReplicationController
            ) {
                default_object(&mut next);
            }
            if let (Object::Pod(old), Object::Pod(new)) = (current, &mut next) {
                // spec.nodeName changes only through pods/binding.
                if old.spec.node_name != new.spec.node_name {
                    std::sync::Arc::make_mut(&mut new.spec).node_name = old.spec.node_name.clone();
                }
            }
            next
        }
        MutationView::ReplaceStatus(new) => {
            let mut next = current.clone();
            if next.kind() != new.kind() {
                return Err(ApiError::invalid(key.kind, &key.name, "kind is immutable"));
            }
            copy_status(new, &mut next);
            next
        }
        MutationView::Bind { node, uid } => {
            let Object::Pod(p) = current else {
                return Err(ApiError::invalid(key.kind, &key.name, "only pods bind"));
            };
            if !uid.is_empty() && *uid != p.metadata.uid {
                return Err(ApiError::conflict(Kind::Pod, &key.name));
            }
            if p.metadata.deletion_timestamp.is_some() {
                return Err(ApiError {
                    code: 409,
                    reason: "Conflict",
                    message: format!("pod {} is being deleted, cannot be assigned to a host", key.name),
                });
            }
            if !p.spec.node_name.is_empty() {
                // pkg/registry/core/pod/storage/storage.go assignPod
                return Err(ApiError {
                    code: 409,
                    reason: "Conflict",
                    message: format!("pod {} is already assigned to node \"{}\"", key.name, p.spec.node_name),
                });
            }
            let mut p = p.clone();
            std::sync::Arc::make_mut(&mut p.spec).node_name = node.to_string();
            p.set_condition(PodCondition {
                type_: condition::POD_SCHEDULED.into(),
                status: ConditionStatus::True,
                last_transition_time: Some(now),
                ..Default::default()
            });
            Object::Pod(p)
        }
        MutationView::Patch(patch) => apply_patch(current, patch)?,
        MutationView::MarkDeleting { grace_seconds } => {
            let mut next = current.clone();
            let m = next.meta_mut();
            m.deletion_timestamp = Some(now + std::time::Duration::from_secs(*grace_seconds as u64));
            m.deletion_grace_period_seconds = Some(*grace_seconds);
            next
        }
    };
    next.meta_mut().resource_version = current.meta().resource_version;
    if next == *current {
        return Ok(None);
    }
    Ok(Some(next))
}

fn copy_status(from: &Object, to: &mut Object) {
    match (from, to) {
        (Object::Pod(a), Object::Pod(b)) => b.status = a.status.clone(),
        (Object::Node(a), Object::Node(b)) => b.status = a.status.clone(),
        (Object::ReplicaSet(a), Object::ReplicaSet(b)) => b.status = a.status.clone(),
        (Object::Deployment(a), Object::Deployment(b)) => b.status = a.status.clone(),
        (Object::DaemonSet(a), Object::DaemonSet(b)) => b.status = a.status.clone(),
        (Object::StatefulSet(a), Object::StatefulSet(b)) => b.status = a.status.clone(),
        (Object::Job(a), Object::Job(b)) => b.status = a.status.clone(),
        (Object::Namespace(a), Object::Namespace(b)) => b.status = a.status.clone(),
        (Object::PersistentVolume(a), Object::PersistentVolume(b)) => b.status = a.status.clone(),
        (Object::PersistentVolumeClaim(a), Object::PersistentVolumeClaim(b)) => b.status = a.status.clone(),
        (Object::ReplicationController(a), Object::ReplicationController(b)) => b.status = a.status.clone(),
        (Object::PodDisruptionBudget(a), Object::PodDisruptionBudget(b)) => b.status = a.status.clone(),
        _ => {}
    }
}

fn same_spec(a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::Pod(x), Object::Pod(y)) => x.spec == y.spec,
        (Object::Node(x), Object::Node(y)) => x.spec == y.spec,
        (Object::ReplicaSet(x), Object::ReplicaSet(y)) => x.spec == y.spec,
        (Object::Deployment(x), Object::Deployment(y)) => x.spec == y.spec,
        (Object::DaemonSet(x), Object::DaemonSet(y)) => x.spec == y.spec,
        (Object::StatefulSet(x), Object::StatefulSet(y)) => x.spec == y.spec,
        (Object::Job(x), Object::Job(y)) => x.spec == y.spec,
        (Object::PersistentVolume(x), Object::PersistentVolume(y)) => x.spec == y.spec,
        (Object::PersistentVolumeClaim(x), Object::PersistentVolumeClaim(y)) => x.spec == y.spec,
        (Object::ReplicationController(x), Object::ReplicationController(y)) => x.spec == y.spec,
        (Object::PodDisruptionBudget(x), Object::PodDisruptionBudget(y)) => x.spec == y.spec,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::api::pod::{Container, ContainerPort, HttpGetAction, Probe};
    use crate::api::{Pod, PodSpec, Quantity};

    fn pod(containers: Vec<Container>) -> Pod {
        Pod { spec: std::sync::Arc::new(PodSpec { containers, ..Default::default() }), ..Default::default() }
    }

    /// Adoption and release patches: merged by owner uid, guarded by the object's uid;
    /// a second controller is refused by validation.
    #[test]
    fn adoption_and_release_patches() {
        use crate::api::OwnerReference;
        use crate::client::Patch;
        let mut p = pod(vec![]);
        p.metadata.name = "web-a".into();
        p.metadata.uid = "pod-uid".into();
        let current = Object::Pod(p);
        let owner = |uid: &str| OwnerReference {
            kind: "ReplicaSet".into(),
            name: uid.into(),
            uid: uid.into(),
            controller: Some(true),
            ..Default::default()
        };
        let adopt = |o: &Object, by: &str, uid: &str| {
            apply_patch(o, &Patch::AdoptByController { owner: owner(by), uid: uid.into() })
        };
        let adopted = adopt(&current, "rs-1", "pod-uid").unwrap();
        assert_eq!(adopted.meta().owner_references, vec![owner("rs-1")]);
        // Repeated: merged by uid, nothing new.
        assert_eq!(adopt(&adopted, "rs-1", "pod-uid").unwrap(), adopted);
        // Meant for an earlier pod of the same name.
        let e = adopt(&current, "rs-1", "old-uid").unwrap_err();
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(
            e.message,
            "Pod \"web-a\" is invalid: metadata.uid: Invalid value: \"old-uid\": field is immutable"
        );
        // Someone else's already: the merge makes two controllers, which validation refuses.
        let both = adopt(&adopted, "rs-2", "pod-uid").unwrap();
        let e = crate::apiserver::validation::validate_update(&adopted, &both).unwrap_err();
        assert!(
            e.message.contains("metadata.ownerReferences: Invalid value: [ReplicaSet/rs-1, ReplicaSet/rs-2]: Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/rs-1 and ReplicaSet/rs-2"),
            "{}",
            e.message
        );
        let released = apply_patch(
            &adopted,
            &Patch::ReleaseFromController { owner_uid: "rs-1".into(), uid: "pod-uid".into() },
        )
        .unwrap();
        assert!(released.meta().owner_references.is_empty());
    }

    #[test]
    fn pull_policy_from_the_tag() {
        // SetDefaults_Container: the tag `latest`, given or implied, pulls Always.
        assert_eq!(pull_policy_for("nginx"), "Always");
        assert_eq!(pull_policy_for("nginx:latest"), "Always");
        assert_eq!(pull_policy_for("localhost:5000/app"), "Always");
        assert_eq!(pull_policy_for("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy_for("localhost:5000/app:v2"), "IfNotPresent");
        assert_eq!(pull_policy_for("nginx@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn pod_spec_defaults() {
        let mut o = Object::Pod(pod(vec![Container {
            name: "app".into(),
            image: "nginx:1.27".into(),
            ports: vec![ContainerPort { container_port: 80, ..Default::default() }],
            readiness_probe: Some(Probe {
                http_get: Some(HttpGetAction { port: IntOrString::Int(80), ..Default::default() }),
                ..Default::default()
            }),
            resources: crate::api::pod::ResourceRequirements {
                limits: [("cpu".to_string(), "500m".parse::<Quantity>().unwrap())].into(),
                ..Default::default()
            },
            ..Default::default()
        }]));
        default_object(&mut o);
        let Object::Pod(p) = o else { unreachable!() };
        let s = &p.spec;
        assert_eq!(s.dns_policy, "ClusterFirst");
        assert_eq!(s.scheduler_name, "default-scheduler");
        assert_eq!(s.restart_policy, Some(crate::api::pod::RestartPolicy::Always));
        assert_eq!(s.termination_grace_period_seconds, Some(30));
        assert_eq!(s.enable_service_links, Some(true));
        assert_eq!(s.extra.get("securityContext"), Some(&serde_json::json!({})));
        let c = &s.containers[0];
        assert_eq!(c.image_pull_policy, "IfNotPresent");
        assert_eq!(c.termination_message_path, "/dev/termination-log");
        assert_eq!(c.termination_message_policy, "File");
        assert_eq!(c.ports[0].protocol, "TCP");
        assert_eq!(c.resources.requests.get("cpu").map(|q| q.milli_value()), Some(500));
        let probe = c.readiness_probe.as_ref().unwrap();
        assert_eq!(
            (probe.timeout_seconds, probe.period_seconds, probe.success_threshold, probe.failure_threshold),
            (Some(1), Some(10), Some(1), Some(3))
        );
        let h = probe.http_get.as_ref().unwrap();
        assert_eq!((h.path.as_str(), h.scheme.as_str()), ("/", "HTTP"));
    }

    #[test]
    fn templates_get_no_pod_only_defaults() {
        // SetDefaults_Pod (enableServiceLinks) does not run on a workload's template.
        let mut t = crate::api::PodTemplateSpec {
            spec: std::sync::Arc::new(PodSpec {
                containers: vec![Container {
                    name: "a".into(),
                    image: "busybox".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        default_template(&mut t);
        assert_eq!(t.spec.enable_service_links, None);
        assert_eq!(t.spec.containers[0].image_pull_policy, "Always");
        assert_eq!(t.spec.dns_policy, "ClusterFirst");
    }

    #[test]
    fn service_account_token_volume() {
        let mut p = pod(vec![Container { name: "app".into(), image: "nginx".into(), ..Default::default() }]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        admit_service_account(&mut p, &Cache::default(), &mut rng).unwrap();
        let s = &p.spec;
        assert_eq!((s.service_account_name.as_str(), s.service_account.as_str()), ("default", "default"));
        let v = &s.volumes[0];
        let suffix = v.name.strip_prefix("kube-api-access-").unwrap();
        assert_eq!(suffix.len(), 5);
        assert!(suffix.bytes().all(|b| NAME_ALPHABET.contains(&b)), "{suffix}");
        let proj = v.projected.as_ref().unwrap();
        assert_eq!(proj.default_mode, Some(0o644));
        assert_eq!(proj.sources[0].service_account_token.as_ref().unwrap().expiration_seconds, Some(3607));
        assert_eq!(proj.sources[1].config_map.as_ref().unwrap().name, "kube-root-ca.crt");
        let d = &proj.sources[2].downward_api.as_ref().unwrap().items[0];
        assert_eq!(d.field_ref.as_ref().unwrap().field_path, "metadata.namespace");
        let m = &s.containers[0].volume_mounts[0];
        assert_eq!(
            (m.name.as_str(), m.mount_path.as_str(), m.read_only),
            (v.name.as_str(), "/var/run/secrets/kubernetes.io/serviceaccount", true)
        );
    }

    #[test]
    fn no_token_volume_when_automount_is_off() {
        let mut p = pod(vec![Container { name: "app".into(), image: "nginx".into(), ..Default::default() }]);
        std::sync::Arc::make_mut(&mut p.spec)
            .extra
            .insert("automountServiceAccountToken".into(), serde_json::Value::Bool(false));
        admit_service_account(&mut p, &Cache::default(), &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(p.spec.service_account_name, "default");
        assert!(p.spec.volumes.is_empty());
        assert!(p.spec.containers[0].volume_mounts.is_empty());
    }

    /// The account must exist (a generated name shows its prefix); an account with
    /// automountServiceAccountToken false gives no token volume unless the pod asks.
    #[test]
    fn the_service_account_must_exist() {
        use crate::client::{WatchEvent, WatchEventType};
        let mut p = pod(vec![Container { name: "app".into(), image: "nginx".into(), ..Default::default() }]);
        p.metadata.namespace = "shop".into();
        p.metadata.generate_name = "web-7d9c8-".into();
        std::sync::Arc::make_mut(&mut p.spec).service_account_name = "builder".into();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let e = admit_service_account(&mut p.clone(), &Cache::default(), &mut rng).unwrap_err();
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "pods \"web-7d9c8-\" is forbidden: error looking up service account shop/builder: serviceaccount \"builder\" not found"
        );
        let mut cache = Cache::default();
        let mut sa = crate::api::ServiceAccount::default();
        sa.metadata.name = "builder".into();
        sa.metadata.namespace = "shop".into();
        sa.automount_service_account_token = Some(false);
        cache.apply(&WatchEvent {
            type_: WatchEventType::Added,
            object: std::sync::Arc::new(Object::ServiceAccount(sa)),
        });
        let mut q = p.clone();
        admit_service_account(&mut q, &cache, &mut rng).unwrap();
        assert!(q.spec.volumes.is_empty(), "the account turns the token off");
        std::sync::Arc::make_mut(&mut p.spec)
            .extra
            .insert("automountServiceAccountToken".into(), serde_json::Value::Bool(true));
        admit_service_account(&mut p, &cache, &mut rng).unwrap();
        assert_eq!(p.spec.volumes.len(), 1, "the pod's own setting wins");
    }
}
