//! The Priority admission plugin (plugin/pkg/admission/priority/admission.go, v1.33) and
//! PriorityClass validation (pkg/apis/scheduling/validation): a new pod's
//! `priorityClassName` resolves to `spec.priority` and `spec.preemptionPolicy`; without a
//! name, the `globalDefault` class (the lowest valued if several) or priority 0.

use crate::api::policy::{
    PriorityClass, HIGHEST_USER_DEFINABLE_PRIORITY, PREEMPT_LOWER_PRIORITY, PREEMPT_NEVER,
    SYSTEM_PRIORITY_CLASS_PREFIX,
};
use crate::api::{Kind, Object};
use crate::client::{ApiError, Cache};

/// `scheduling.DefaultPriorityWhenNoDefaultClassExists`.
pub const DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS_EXISTS: i32 = 0;

/// An RNG for a bootstrap object's uid, seeded from its name.
pub fn bootstrap_rng(name: &str) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let seed =
        name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

/// `admission.NewForbidden`: `pods "web-1" is forbidden: <reason>`.
fn forbidden(kind: Kind, name: &str, reason: String) -> ApiError {
    ApiError {
        code: 403,
        reason: "Forbidden",
        message: format!("{} \"{name}\" is forbidden: {reason}", kind.qualified_resource()),
    }
}

/// `getDefaultPriorityClass`: the global default with the lowest value.
fn default_class(cache: &Cache) -> Option<&PriorityClass> {
    cache
        .list(Kind::PriorityClass)
        .filter_map(|o| o.as_priority_class())
        .filter(|pc| pc.global_default)
        .min_by_key(|pc| pc.value)
}

/// Runs on create, before defaulting.
pub fn admit_create(obj: &mut Object, cache: &Cache) -> Result<(), ApiError> {
    match obj {
        Object::Pod(p) => {
            let name = p.metadata.name.clone();
            let spec = &p.spec;
            let (class_name, priority, policy) = if spec.priority_class_name.is_empty() {
                match default_class(cache) {
                    Some(pc) => (pc.metadata.name.clone(), pc.value, pc.preemption_policy.clone()),
                    None => (String::new(), DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS_EXISTS, None),
                }
            } else {
                let key =
                    crate::api::ObjectKey::new(Kind::PriorityClass, "", spec.priority_class_name.clone());
                let Some(pc) = cache.get(&key).and_then(|o| o.as_priority_class()) else {
                    let reason = format!("no PriorityClass with name {} was found", spec.priority_class_name);
                    return Err(forbidden(Kind::Pod, &name, reason));
                };
                (spec.priority_class_name.clone(), pc.value, pc.preemption_policy.clone())
            };
            if let Some(given) = spec.priority.filter(|g| *g != priority) {
                let reason = format!(
                    "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
                );
                return Err(forbidden(Kind::Pod, &name, reason));
            }
            if let (Some(policy), Some(given)) = (&policy, &spec.preemption_policy) {
                if given != policy {
                    let reason = format!(
                        "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
                    );
                    return Err(forbidden(Kind::Pod, &name, reason));
                }
            }
            // v1 SetDefaults_PodSpec: preemptionPolicy defaults to PreemptLowerPriority.
            let policy =
                policy.or_else(|| spec.preemption_policy.clone()).unwrap_or(PREEMPT_LOWER_PRIORITY.into());
            let unchanged = spec.priority_class_name == class_name
                && spec.priority == Some(priority)
                && spec.preemption_policy.as_deref() == Some(policy.as_str());
            if !unchanged {
                // Touch the (possibly template-shared) spec only when something changes.
                let spec = std::sync::Arc::make_mut(&mut p.spec);
                spec.priority_class_name = class_name;
                spec.priority = Some(priority);
                spec.preemption_policy = Some(policy);
            }
            Ok(())
        }
        Object::PriorityClass(pc) => validate_class(pc, cache),
        _ => Ok(()),
    }
}

/// ValidatePriorityClass, the admission's single-default rule and
/// SetDefaults_PriorityClass.
fn validate_class(pc: &mut PriorityClass, cache: &Cache) -> Result<(), ApiError> {
    let name = pc.metadata.name.clone();
    let invalid = |detail: String| ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("{}.scheduling.k8s.io \"{name}\" is invalid: {detail}", Kind::PriorityClass),
    };
    let system = PriorityClass::system_classes();
    if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
        let known = system.iter().any(|s| s.metadata.name == name && s.value == pc.value);
        if !known {
            return Err(invalid(format!(
                "metadata.name: Invalid value: {name:?}: priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved"
            )));
        }
    } else if pc.value > HIGHEST_USER_DEFINABLE_PRIORITY {
        return Err(invalid(format!(
            "value: Forbidden: maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
        )));
    }
    match pc.preemption_policy.as_deref() {
        None => pc.preemption_policy = Some(PREEMPT_LOWER_PRIORITY.into()),
        Some(PREEMPT_LOWER_PRIORITY | PREEMPT_NEVER) => {}
        Some(other) => {
            return Err(invalid(format!(
                "preemptionPolicy: Unsupported value: {other:?}: supported values: \"Never\", \"PreemptLowerPriority\""
            )))
        }
    }
    if pc.global_default {
        if let Some(d) = default_class(cache) {
            let reason = format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                d.metadata.name
            );
            return Err(forbidden(Kind::PriorityClass, &name, reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ObjectMeta, Pod};

    fn class(name: &str, value: i32, global: bool) -> Object {
        Object::PriorityClass(PriorityClass {
            metadata: ObjectMeta { name: name.into(), ..Default::default() },
            value,
            global_default: global,
            ..Default::default()
        })
    }

    fn cache_with(objs: Vec<Object>) -> Cache {
        let mut c = Cache::default();
        for o in objs {
            c.apply(&crate::client::WatchEvent {
                type_: crate::client::WatchEventType::Added,
                object: std::sync::Arc::new(o),
            });
        }
        c
    }

    fn pod(class: &str) -> Object {
        let mut p = Pod::default();
        p.metadata.name = "p".into();
        std::sync::Arc::make_mut(&mut p.spec).priority_class_name = class.into();
        Object::Pod(p)
    }

    #[test]
    fn pods_get_their_class_value_or_the_lowest_global_default() {
        let cache =
            cache_with(vec![class("high", 1000, false), class("d1", 50, true), class("d0", 10, true)]);
        let mut p = pod("high");
        admit_create(&mut p, &cache).unwrap();
        let spec = &p.as_pod().unwrap().spec;
        assert_eq!(spec.priority, Some(1000));
        assert_eq!(spec.preemption_policy.as_deref(), Some(PREEMPT_LOWER_PRIORITY));
        let mut d = pod("");
        admit_create(&mut d, &cache).unwrap();
        assert_eq!(d.as_pod().unwrap().spec.priority, Some(10));
        assert_eq!(d.as_pod().unwrap().spec.priority_class_name, "d0");
        let mut none = pod("");
        admit_create(&mut none, &Cache::default()).unwrap();
        assert_eq!(none.as_pod().unwrap().spec.priority, Some(0));
    }

    #[test]
    fn unknown_class_and_mismatched_priority_are_forbidden() {
        let cache = cache_with(vec![class("high", 1000, false)]);
        let e = admit_create(&mut pod("nope"), &cache).unwrap_err();
        assert_eq!(e.message, "pods \"p\" is forbidden: no PriorityClass with name nope was found");
        let mut p = pod("high");
        if let Object::Pod(p) = &mut p {
            std::sync::Arc::make_mut(&mut p.spec).priority = Some(5);
        }
        let e = admit_create(&mut p, &cache).unwrap_err();
        assert_eq!(e.code, 403);
        assert!(e.message.ends_with("the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"));
    }

    #[test]
    fn class_validation() {
        let cache = cache_with(vec![class("d", 1, true)]);
        let e = admit_create(&mut class("other", 2, true), &cache).unwrap_err();
        assert!(e
            .message
            .ends_with("PriorityClass d is already marked as default. Only one default can exist"));
        let e = admit_create(&mut class("huge", 1_000_000_001, false), &cache).unwrap_err();
        assert!(e.message.contains("maximum allowed value of a user defined priority is 1000000000"));
        let e = admit_create(&mut class("system-mine", 1, false), &cache).unwrap_err();
        assert!(e.message.contains("reserved"));
        let mut ok = class("never", 1, false);
        if let Object::PriorityClass(pc) = &mut ok {
            pc.preemption_policy = Some(PREEMPT_NEVER.into());
        }
        admit_create(&mut ok, &cache).unwrap();
    }
}
