//! Simulated time.
//!
//! A [`SimTime`] is a point on the simulated timeline in milliseconds since the start of
//! the run. Objects show it as an RFC 3339 timestamp counted from [`EPOCH_UNIX_SECONDS`],
//! so a trace reads like a real cluster's and replays identically anywhere.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Simulated t=0 is 2025-01-01T00:00:00Z.
pub const EPOCH_UNIX_SECONDS: i64 = 1_735_689_600;

/// Milliseconds since the start of the simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    pub fn from_secs(s: u64) -> Self {
        SimTime(s * 1000)
    }
    pub fn from_millis(ms: u64) -> Self {
        SimTime(ms)
    }
    pub fn as_millis(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    /// Whole seconds, rounded down (what a seconds-precision timestamp shows).
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
    pub fn saturating_sub(self, other: SimTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(other.0))
    }
    /// RFC 3339, seconds precision with milliseconds only when non-zero: `2025-01-01T00:01:40Z`.
    pub fn rfc3339(self) -> String {
        let total = EPOCH_UNIX_SECONDS + (self.0 / 1000) as i64;
        let (y, mo, d, h, mi, s) = civil_from_unix(total);
        let ms = self.0 % 1000;
        if ms == 0 {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
        }
    }
    /// kubectl describe's layout: `Wed, 01 Jan 2025 00:01:40 +0000`.
    pub fn rfc1123z(self) -> String {
        let total = EPOCH_UNIX_SECONDS + (self.0 / 1000) as i64;
        let (y, mo, d, h, mi, s) = civil_from_unix(total);
        let days = total.div_euclid(86_400);
        // 1970-01-01 was a Thursday.
        let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
        let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            [mo as usize - 1];
        format!("{wd}, {d:02} {mon} {y:04} {h:02}:{mi:02}:{s:02} +0000")
    }
    /// Parses what [`SimTime::rfc3339`] writes (and any RFC 3339 UTC time after the epoch).
    pub fn parse_rfc3339(s: &str) -> Option<SimTime> {
        let s = s.strip_suffix('Z')?;
        let (date, time) = s.split_once('T')?;
        let mut dp = date.split('-').map(|p| p.parse::<i64>());
        let (y, mo, d) = (dp.next()?.ok()?, dp.next()?.ok()?, dp.next()?.ok()?);
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, b),
            None => (time, ""),
        };
        let mut tp = hms.split(':').map(|p| p.parse::<i64>());
        let (h, mi, sec) = (tp.next()?.ok()?, tp.next()?.ok()?, tp.next()?.ok()?);
        let ms: i64 = if frac.is_empty() {
            0
        } else {
            let f: String = frac.chars().chain("000".chars()).take(3).collect();
            f.parse().ok()?
        };
        let unix = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
        let rel = unix - EPOCH_UNIX_SECONDS;
        if rel < 0 {
            return None;
        }
        Some(SimTime(rel as u64 * 1000 + ms as u64))
    }
}

impl std::ops::Add<Duration> for SimTime {
    type Output = SimTime;
    fn add(self, d: Duration) -> SimTime {
        SimTime(self.0 + d.as_millis() as u64)
    }
}

impl fmt::Display for SimTime {
    /// Seconds since the start, as scenario files write them: `61.5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}s", self.0 / 1000)
        } else {
            write!(f, "{}s", self.0 as f64 / 1000.0)
        }
    }
}

impl SimTime {
    /// `metav1.Time` as the API serializes it: RFC 3339 in whole seconds, the fraction
    /// dropped (apimachinery meta/v1 time.go MarshalJSON formats with time.RFC3339).
    pub fn rfc3339_seconds(self) -> String {
        SimTime(self.0 / 1000 * 1000).rfc3339()
    }
    /// `metav1.MicroTime`: RFC 3339 with six fractional digits, always
    /// (micro_time.go RFC3339Micro, `2006-01-02T15:04:05.000000Z07:00`).
    pub fn rfc3339_micro(self) -> String {
        let secs = SimTime(self.0 / 1000 * 1000).rfc3339();
        let base = secs.strip_suffix('Z').unwrap_or(&secs);
        format!("{base}.{:06}Z", self.0 % 1000 * 1000)
    }
}

/// Objects' timestamps are `metav1.Time`: whole seconds on the wire. The simulation
/// keeps milliseconds in memory; what is written out (a trace, `get -o yaml`) is what
/// an API server would return.
impl Serialize for SimTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339_seconds())
    }
}

/// `#[serde(with = "crate::time::micro_time")]` for an `Option<SimTime>` that is a
/// `metav1.MicroTime` (a Lease's acquireTime and renewTime, an Event's eventTime).
pub mod micro_time {
    use super::SimTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SimTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.rfc3339_micro()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SimTime>, D::Error> {
        Option::<SimTime>::deserialize(d)
    }
}

impl<'de> Deserialize<'de> for SimTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SimTime::parse_rfc3339(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid timestamp {s:?}: want RFC 3339 UTC, e.g. 2025-01-01T00:00:00Z"
            ))
        })
    }
}

// Howard Hinnant's civil-calendar algorithms (public domain), days <-> y/m/d.
fn civil_from_unix(t: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// kubectl's short age: `45s`, `5m3s`, `2m`, `3h4m`, `2d3h` (apimachinery duration.HumanDuration).
/// Go's `time.Duration.String()` at millisecond resolution: `500ms`, `3m0.1s`, `1h0m0s`
/// (upstream messages print durations with `%v`).
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if h > 0 || m > 0 {
        out += &format!("{m}m");
    }
    out += &s.to_string();
    if frac > 0 {
        out += format!(".{frac:03}").trim_end_matches('0');
    }
    out + "s"
}

pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs() as i64;
    if secs < 0 {
        return "<invalid>".into();
    }
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_times_in_whole_seconds_micro_times_with_six_digits() {
        let t = SimTime(100_250);
        // metav1.Time drops the fraction; MicroTime always prints six digits.
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2025-01-01T00:01:40Z\"");
        assert_eq!(t.rfc3339_micro(), "2025-01-01T00:01:40.250000Z");
        assert_eq!(SimTime(100_000).rfc3339_micro(), "2025-01-01T00:01:40.000000Z");
        let spec = crate::api::LeaseSpec { renew_time: Some(t), ..Default::default() };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["renewTime"], "2025-01-01T00:01:40.250000Z");
        let back: crate::api::LeaseSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back.renew_time, Some(t));
    }

    #[test]
    fn rfc3339_round_trips() {
        for ms in [0, 1, 999, 1000, 61_500, 86_400_000 * 400 + 7] {
            let t = SimTime(ms);
            assert_eq!(SimTime::parse_rfc3339(&t.rfc3339()), Some(t));
        }
        assert_eq!(SimTime(0).rfc3339(), "2025-01-01T00:00:00Z");
        assert_eq!(SimTime(100_000).rfc1123z(), "Wed, 01 Jan 2025 00:01:40 +0000");
    }

    #[test]
    fn go_duration_matches_go() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(ms(0)), "0s");
        assert_eq!(go_duration(ms(500)), "500ms");
        assert_eq!(go_duration(ms(180_100)), "3m0.1s");
        assert_eq!(go_duration(ms(61_000)), "1m1s");
        assert_eq!(go_duration(ms(3_600_000)), "1h0m0s");
        assert_eq!(go_duration(ms(1_250)), "1.25s");
    }

    #[test]
    fn human_duration_matches_kubectl() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(s(45)), "45s");
        assert_eq!(human_duration(s(119)), "119s");
        assert_eq!(human_duration(s(303)), "5m3s");
        assert_eq!(human_duration(s(600)), "10m");
        assert_eq!(human_duration(s(3 * 3600 + 240)), "3h4m");
    }
}
