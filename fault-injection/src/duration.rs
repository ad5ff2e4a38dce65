//! Go-style durations (`90s`, `1m30s`, `500ms`, `2h`, `1.5s`), as Kubernetes flags take them
//! (time.ParseDuration), without negative values. Scenarios, the fault catalogue and the
//! fuzzers all read and write durations through this one module.

use std::fmt;

use kubesim_model::time::SimTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration or a time since the start, with the text the user wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dur {
    pub time: SimTime,
    pub text: String,
}

/// Parses a Go duration into milliseconds (sub-millisecond parts round down).
pub fn parse_duration(s: &str) -> Result<SimTime, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t == "0" {
        return Ok(SimTime::ZERO);
    }
    let mut rest = t;
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let num: f64 = rest[..num_end].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            "" => return Err(format!("missing unit in duration {s:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total_ns += num * scale;
    }
    Ok(SimTime((total_ns / 1e6) as u64))
}

impl Dur {
    /// A duration with its canonical Go text (`1m30s`, `500ms`).
    pub fn from_duration(d: std::time::Duration) -> Dur {
        let time = SimTime(d.as_millis() as u64);
        Dur { time, text: kubesim_model::time::go_duration(time.as_duration()) }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 90s, 1m30s or 500ms")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(|time| Dur { time, text: v.to_string() }).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Err(E::custom(format!("duration {v} has no unit: add one, e.g. {v}s")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                Err(E::custom(format!("duration {v} has no unit: add one, e.g. {v}s")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!("duration {v} has no unit: add one, e.g. {v}s")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("90s").unwrap(), SimTime::from_secs(90));
        assert_eq!(parse_duration("1m30s").unwrap(), SimTime::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), SimTime(500));
        assert_eq!(parse_duration("2h").unwrap(), SimTime::from_secs(7200));
        assert_eq!(parse_duration("1.5s").unwrap(), SimTime(1500));
        for bad in ["soon", "5", "5x", "", "-1s", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
