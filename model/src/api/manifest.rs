//! Reading manifests written for a real cluster: multi-document YAML, `kind: List`, fields
//! kubesim does not simulate ignored with a warning, kinds it does not simulate skipped
//! with a warning. Errors carry the line and column.

use serde::Deserialize;

use super::object::{Document, Object};

/// Objects read from one manifest text, in document order, and the warnings to show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifests {
    pub objects: Vec<Object>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line} column {column}: {message}")]
pub struct ManifestError {
    /// 1-based; 0 when the parser could not tell.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ManifestError {
    pub fn from_yaml(e: &serde_yaml::Error) -> Self {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        // serde_yaml appends " at line L column C"; the location is kept separately.
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        ManifestError { line, column, message }
    }
}

/// Parses every document of `text`. Empty documents are skipped.
pub fn parse_manifests(text: &str) -> Result<Manifests, ManifestError> {
    let mut out = Manifests::default();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let mut ignored = Vec::new();
        let parsed: Option<Document> =
            serde_ignored::deserialize(doc, |path| ignored.push(field_path(&path)))
                .map_err(|e| ManifestError::from_yaml(&e))?;
        let Some(parsed) = parsed else { continue };
        let what = describe(&parsed);
        for path in ignored {
            out.warnings.push(format!("{what}: {path} is not simulated; dropped"));
        }
        out.warnings.extend(not_simulated(&parsed));
        flatten(parsed, &mut out);
    }
    // What a server sets, as `kubectl get -o yaml` prints it: applied as written, a
    // snapshot does not come back as it was. One warning per text, not one per object.
    let snapshot = out
        .objects
        .iter()
        .filter(|o| !o.meta().owner_references.is_empty() || o.meta().deletion_timestamp.is_some())
        .count();
    if snapshot > 0 {
        out.warnings.push(format!(
            "{snapshot} object(s) carry ownerReferences or a deletionTimestamp, as `kubectl get -o yaml` prints them: applied as written, owned objects are garbage-collected or adopted and Terminating pods come back Running; `kubesim import FILE -o scenario.yaml` turns a cluster snapshot into a scenario"
        ));
    }
    Ok(out)
}

/// A field's path as a manifest author writes it: `spec.volumes[0].csi` (serde_ignored
/// writes `?.spec.volumes.0.csi`).
pub fn field_path(p: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => match field_path(parent) {
            s if s.is_empty() => key.clone(),
            s => format!("{s}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            field_path(parent)
        }
    }
}

/// Pod-spec fields kubesim keeps and shows back without acting on them although they
/// change what a cluster does, with what happens here instead. Fields that change nothing
/// a simulation shows (securityContext, workingDir, imagePullSecrets, dnsConfig, ...) are
/// kept without a word.
const POD_SPEC_NOT_SIMULATED: &[(&str, &str)] = &[
    ("activeDeadlineSeconds", "the kubelet does not end the pod at its deadline"),
    ("readinessGates", "the pod's readiness does not wait for them"),
    ("schedulingGates", "the scheduler does not wait for them"),
    ("runtimeClassName", "no RuntimeClass overhead or node selection"),
    ("resourceClaims", "no device is allocated"),
];
const CONTAINER_NOT_SIMULATED: &[(&str, &str)] = &[
    ("lifecycle", "postStart and preStop hooks do not run (a preStop does not delay termination)"),
    ("volumeDevices", "no block device is attached"),
];

/// The warnings for what a document holds that kubesim keeps but does not act on
/// (`Deployment default/web: spec.template.spec.volumes[0].csi is not simulated: ...`).
pub fn not_simulated(d: &Document) -> Vec<String> {
    let what = describe(d);
    unsimulated(d).into_iter().map(|w| format!("{what}: {w}")).collect()
}

/// Workload-spec fields kubesim keeps and shows back without acting on them, by kind.
const WORKLOAD_NOT_SIMULATED: &[(super::Kind, &str, &str)] =
    &[(super::Kind::Job, "managedBy", "the built-in Job controller manages the Job")];

/// Fields kubesim keeps and shows back but whose behaviour it does not simulate, each
/// with its path and what happens instead.
fn unsimulated(d: &Document) -> Vec<String> {
    let Document::Object(o) = d else { return Vec::new() };
    let mut out = workload_unsimulated(o);
    let (at, spec) = match o {
        super::Object::Pod(p) => ("spec", &p.spec),
        super::Object::ReplicaSet(r) => ("spec.template.spec", &r.spec.template.spec),
        super::Object::Deployment(x) => ("spec.template.spec", &x.spec.template.spec),
        super::Object::DaemonSet(x) => ("spec.template.spec", &x.spec.template.spec),
        super::Object::StatefulSet(x) => ("spec.template.spec", &x.spec.template.spec),
        super::Object::Job(x) => ("spec.template.spec", &x.spec.template.spec),
        super::Object::ReplicationController(x) => match &x.spec.template {
            Some(t) => ("spec.template.spec", &t.spec),
            None => return out,
        },
        _ => return out,
    };
    let mut listed = |path: String, extra: &super::pod::Extra, known: &[(&str, &str)]| {
        for (field, what) in known.iter().filter(|(f, _)| extra.contains_key(*f)) {
            out.push(format!("{path}.{field} is not simulated: {what}"));
        }
    };
    listed(at.to_string(), &spec.extra, POD_SPEC_NOT_SIMULATED);
    for (list, cs) in [("initContainers", &spec.init_containers), ("containers", &spec.containers)] {
        for (i, c) in cs.iter().enumerate() {
            listed(format!("{at}.{list}[{i}]"), &c.extra, CONTAINER_NOT_SIMULATED);
        }
    }
    for (i, v) in spec.volumes.iter().enumerate() {
        // Any other source (csi, nfs, ephemeral, ...): its driver is not simulated.
        for source in v.extra.keys() {
            out.push(format!("{at}.volumes[{i}].{source} is not simulated: the volume mounts at once"));
        }
        for (j, p) in v.projected.iter().flat_map(|p| p.sources.iter()).enumerate() {
            for source in p.extra.keys() {
                out.push(format!(
                    "{at}.volumes[{i}].projected.sources[{j}].{source} is not simulated: it projects nothing"
                ));
            }
        }
    }
    out
}

/// What a workload's own spec, a volume or a claim says that kubesim keeps without acting on.
fn workload_unsimulated(o: &super::Object) -> Vec<String> {
    use super::Object;
    let mut out = Vec::new();
    let extra = match o {
        Object::StatefulSet(x) => Some(&x.spec.extra),
        Object::Job(x) => Some(&x.spec.extra),
        _ => None,
    };
    for (_, field, what) in WORKLOAD_NOT_SIMULATED
        .iter()
        .filter(|(k, f, _)| *k == o.kind() && extra.is_some_and(|e| e.contains_key(*f)))
    {
        out.push(format!("spec.{field} is not simulated: {what}"));
    }
    if let Object::PersistentVolume(v) = o {
        // A source other than csi, hostPath, local or nfs: no driver attaches or mounts it.
        for source in v.spec.extra.keys() {
            out.push(format!("spec.{source} is not simulated: the volume mounts at once, without an attach"));
        }
    }
    if let Object::StorageClass(c) = o {
        if !c.allowed_topologies.is_empty() {
            out.push(
                "allowedTopologies is not simulated: provisioned volumes follow the selected node's zone"
                    .into(),
            );
        }
    }
    out
}

fn describe(d: &Document) -> String {
    match d {
        Document::Object(o) => {
            let m = o.meta();
            if m.namespace.is_empty() {
                format!("{} {}", o.kind(), m.name)
            } else {
                format!("{} {}/{}", o.kind(), m.namespace, m.name)
            }
        }
        Document::List(_) => "List".to_string(),
        Document::Unsupported { kind, name, .. } => format!("{kind} {name}"),
    }
}

fn flatten(d: Document, out: &mut Manifests) {
    match d {
        Document::Object(o) => out.objects.push(o),
        Document::List(items) => items.into_iter().for_each(|i| flatten(i, out)),
        Document::Unsupported { api_version, kind, name } => out
            .warnings
            .push(format!("{kind} {name} ({api_version}): kind not simulated by kubesim; skipped")),
    }
}

/// For `Option<Document>` with `null` documents (`---` followed by nothing).
impl Document {
    pub fn into_objects(self) -> Vec<Object> {
        let mut m = Manifests::default();
        flatten(self, &mut m);
        m.objects
    }
}

#[derive(Deserialize)]
struct _AssertDocumentIsDeserialize(Document);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kind;

    #[test]
    fn a_kubectl_snapshot_warns_once_and_names_kubesim_import() {
        let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: web-1
    namespace: default
    ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d4b9c8f5, uid: 1f0c, controller: true}]
  spec: {containers: [{name: app, image: nginx}]}
- apiVersion: v1
  kind: Pod
  metadata:
    name: web-2
    namespace: default
    deletionTimestamp: "2025-03-04T09:40:02Z"
  spec: {containers: [{name: app, image: nginx}]}
- apiVersion: v1
  kind: Pod
  metadata: {name: debug, namespace: default}
  spec: {containers: [{name: app, image: busybox}]}
"#;
        let m = parse_manifests(text).unwrap();
        assert_eq!(m.objects.len(), 3);
        let w: Vec<&String> = m.warnings.iter().filter(|w| w.contains("kubesim import")).collect();
        assert_eq!(w.len(), 1, "{:?}", m.warnings);
        assert!(w[0].starts_with("2 object(s) carry ownerReferences or a deletionTimestamp"), "{}", w[0]);
        assert!(parse_manifests(DEPLOY).unwrap().warnings.iter().all(|w| !w.contains("kubesim import")));
    }

    const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
  managedFields: []
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        livenessProbe:
          httpGet: {path: /, port: 80}
        env: [{name: MODE, value: prod}]
        securityContext: {runAsUser: 1000}
        lifecycle:
          preStop: {exec: {command: [sleep, "5"]}}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
      volumes:
      - name: data
        csi: {driver: x}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: team-a}
- kind: Pod
  apiVersion: v1
  metadata: {name: solo, namespace: team-a}
  spec:
    containers: [{name: c, image: busybox}]
"#;

    #[test]
    fn parses_real_manifests_with_warnings() {
        let m = parse_manifests(DEPLOY).unwrap();
        let kinds: Vec<Kind> = m.objects.iter().map(|o| o.kind()).collect();
        assert_eq!(kinds, vec![Kind::Deployment, Kind::Namespace, Kind::Pod]);
        assert_eq!(
            m.warnings,
            vec![
                "Deployment default/web: spec.template.spec.containers[0].lifecycle is not simulated: postStart and preStop hooks do not run (a preStop does not delay termination)",
                "Deployment default/web: spec.template.spec.volumes[0].csi is not simulated: the volume mounts at once",
                "Service web (v1): kind not simulated by kubesim; skipped",
            ]
        );
        assert!(
            !m.warnings.iter().any(|w| w.contains("livenessProbe")),
            "probes are simulated: {:?}",
            m.warnings
        );
        let c = &m.objects[0].as_deployment().unwrap().spec.template.spec.containers[0];
        assert_eq!(c.env[0].value, "prod", "env is kept");
        // Fields kubesim does not model are kept as written and shown back.
        assert_eq!(c.extra["securityContext"]["runAsUser"], 1000);
        let json = serde_json::to_value(&m.objects[0]).unwrap();
        let pod_spec = &json["spec"]["template"]["spec"];
        assert_eq!(pod_spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1], "5");
        assert_eq!(pod_spec["volumes"][0]["csi"]["driver"], "x");
        assert!(m.warnings.iter().any(|w| w.contains("Service web")), "{:?}", m.warnings);
        let d = m.objects[0].as_deployment().unwrap();
        assert_eq!(d.spec.replicas, Some(3));
        let req = &d.spec.template.spec.containers[0].resources.requests;
        assert_eq!(req["cpu"].milli_value(), 100);
    }

    #[test]
    fn errors_carry_lines() {
        let bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources:\n      requests:\n        memory: 1Gx\n";
        let e = parse_manifests(bad).unwrap_err();
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.contains("quantities must match"), "{e}");

        let neg = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: -1\n";
        let e = parse_manifests(neg).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("must be greater than or equal to 0"), "{e}");
    }

    #[test]
    fn objects_round_trip_through_json() {
        let m = parse_manifests(DEPLOY).unwrap();
        for o in &m.objects {
            let json = serde_json::to_string(o).unwrap();
            assert!(json.starts_with("{\"apiVersion\""), "{json}");
            let back: Object = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, o);
        }
    }
}
