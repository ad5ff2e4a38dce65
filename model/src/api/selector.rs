//! Label selectors (`metav1.LabelSelector`) and their string form (`app=web,tier!=db`),
//! k8s.io/apimachinery/pkg/labels/selector.go.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    /// `metav1.LabelSelectorAsSelector` then `Matches`. An empty selector matches everything.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

impl LabelSelectorRequirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => v.is_some_and(|v| self.values.contains(v)),
            SelectorOperator::NotIn => v.is_none_or(|v| !self.values.contains(v)),
            SelectorOperator::Exists => v.is_some(),
            SelectorOperator::DoesNotExist => v.is_none(),
        }
    }
}

/// A parsed string selector, as `?labelSelector=` takes it: `a=b`, `a==b`, `a!=b`, `a`, `!a`,
/// `a in (x,y)`, `a notin (x)`, comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    reqs: Vec<LabelSelectorRequirement>,
}

/// As labels.Selector.String() writes it, with one-value `in`/`notin` as `=`/`!=`, the
/// way a selector is usually written: `app=web,tier in (a,b),!canary`.
impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .reqs
            .iter()
            .map(|r| match (r.operator, r.values.as_slice()) {
                (SelectorOperator::In, [v]) => format!("{}={v}", r.key),
                (SelectorOperator::NotIn, [v]) => format!("{}!={v}", r.key),
                (SelectorOperator::In, vs) => format!("{} in ({})", r.key, vs.join(",")),
                (SelectorOperator::NotIn, vs) => format!("{} notin ({})", r.key, vs.join(",")),
                (SelectorOperator::Exists, _) => r.key.clone(),
                (SelectorOperator::DoesNotExist, _) => format!("!{}", r.key),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Selector {
    pub fn everything() -> Self {
        Selector::default()
    }

    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                req(k, SelectorOperator::DoesNotExist, vec![])
            } else if let Some((k, v)) = p.split_once("!=") {
                req(k, SelectorOperator::NotIn, vec![v.trim().to_string()])
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                req(k, SelectorOperator::In, vec![v.trim().to_string()])
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                req(k, SelectorOperator::NotIn, set(rest)?)
            } else if let Some((k, rest)) = p.split_once(" in ") {
                req(k, SelectorOperator::In, set(rest)?)
            } else {
                req(p, SelectorOperator::Exists, vec![])
            };
            if req.key.is_empty() || req.key.contains(char::is_whitespace) {
                return Err(format!("unable to parse requirement: {p:?}"));
            }
            reqs.push(req);
        }
        Ok(Selector { reqs })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| r.matches(labels))
    }

    pub fn is_everything(&self) -> bool {
        self.reqs.is_empty()
    }
}

fn req(k: &str, operator: SelectorOperator, values: Vec<String>) -> LabelSelectorRequirement {
    LabelSelectorRequirement { key: k.trim().to_string(), operator, values }
}

fn set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set of values, got {rest:?}"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A parsed selector prints back as it is usually written.
    #[test]
    fn selectors_print_back() {
        for text in ["app=web", "app=web,tier in (a,b),!canary,env", "x!=y,z notin (1,2)"] {
            assert_eq!(Selector::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Selector::parse("app==web").unwrap().to_string(), "app=web");
    }

    #[test]
    fn label_selector_matches() {
        let sel = LabelSelector {
            match_labels: labels(&[("app", "web")]),
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: SelectorOperator::NotIn,
                values: vec!["db".into()],
            }],
        };
        assert!(sel.matches(&labels(&[("app", "web")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!sel.matches(&labels(&[("app", "api")])));
        assert!(LabelSelector::default().matches(&labels(&[])));
    }

    #[test]
    fn string_selectors() {
        let s = Selector::parse("app=web,tier in (a, b),!canary,env!=prod").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a"), ("canary", "1")])));
        assert!(Selector::parse("a b").is_err());
    }
}
