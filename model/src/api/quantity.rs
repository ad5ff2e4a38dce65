//! Resource quantities (`100m`, `1.5`, `512Mi`, `1G`, `2e3`), as apimachinery's
//! `resource.Quantity` parses them (k8s.io/apimachinery/pkg/api/resource/quantity.go).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// apimachinery's `ErrFormatWrong` text, with its regular expression.
pub const ERR_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// apimachinery's `ErrNumeric`.
pub const ERR_NUMERIC: &str = "unable to parse quantity's numeric part";
/// apimachinery's `ErrSuffix`.
pub const ERR_SUFFIX: &str = "unable to parse quantity's suffix";

/// A parsed quantity: its value in thousandths (rounded up, as `MilliValue()` does) and
/// the text the user wrote, kept for display.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quantity {
    milli: i128,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {reason}")]
pub struct QuantityError {
    pub text: String,
    pub reason: &'static str,
}

impl Quantity {
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let err = |reason| QuantityError { text: text.to_string(), reason };
        let s = text.trim();
        if s.is_empty() {
            return Err(err(ERR_FORMAT_WRONG));
        }
        let (neg, rest) = match s.as_bytes()[0] {
            b'+' => (false, &s[1..]),
            b'-' => (true, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, suffix) = rest.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err(if num.matches('.').count() > 1 { ERR_NUMERIC } else { ERR_FORMAT_WRONG }));
        }
        // mantissa * 10^scale
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(err(ERR_NUMERIC));
        }
        let mantissa: i128 =
            if digits.is_empty() { 0 } else { digits.parse().map_err(|_| err(ERR_NUMERIC))? };
        let mut exp10: i32 = -(frac_part.len() as i32);
        let mut mult: i128 = 1;
        match suffix {
            "" => {}
            "Ki" => mult = 1 << 10,
            "Mi" => mult = 1 << 20,
            "Gi" => mult = 1 << 30,
            "Ti" => mult = 1 << 40,
            "Pi" => mult = 1 << 50,
            "Ei" => mult = 1 << 60,
            "n" => exp10 -= 9,
            "u" => exp10 -= 6,
            "m" => exp10 -= 3,
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            _ => {
                let e = suffix.strip_prefix(['e', 'E']).ok_or_else(|| {
                    err(if suffix.chars().all(|c| "eEinumkKMGTP+-0123456789".contains(c)) {
                        ERR_SUFFIX
                    } else {
                        ERR_FORMAT_WRONG
                    })
                })?;
                let e: i32 = e.parse().map_err(|_| err(ERR_SUFFIX))?;
                if !(-30..=30).contains(&e) {
                    return Err(err(ERR_NUMERIC));
                }
                exp10 += e;
            }
        }
        // value in milli-units = mantissa * mult * 10^(exp10 + 3), rounded up.
        let e = exp10 + 3;
        let mut v = mantissa.checked_mul(mult).ok_or_else(|| err(ERR_NUMERIC))?;
        if e >= 0 {
            for _ in 0..e {
                v = v.checked_mul(10).ok_or_else(|| err(ERR_NUMERIC))?;
            }
        } else {
            let div = 10i128.checked_pow((-e) as u32).ok_or_else(|| err(ERR_NUMERIC))?;
            v = (v + div - 1) / div; // MilliValue rounds up
        }
        Ok(Quantity { milli: if neg { -v } else { v }, text: s.to_string() })
    }

    /// From a whole number of units (bytes, pods, cores).
    pub fn from_units(v: i64) -> Quantity {
        Quantity { milli: v as i128 * 1000, text: v.to_string() }
    }
    /// From milli-units, printed as `500m` or `2` when whole.
    pub fn from_milli(m: i64) -> Quantity {
        let text = if m % 1000 == 0 { (m / 1000).to_string() } else { format!("{m}m") };
        Quantity { milli: m as i128, text }
    }
    /// A count printed in the largest exact decimal suffix (`210k`, `4M`), as a DecimalSI
    /// quantity prints.
    pub fn from_units_decimal(v: i64) -> Quantity {
        let mut text = v.to_string();
        for (suf, p) in [("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3)] {
            let d = 10i64.pow(p);
            if v != 0 && v % d == 0 {
                text = format!("{}{suf}", v / d);
                break;
            }
        }
        Quantity { milli: v as i128 * 1000, text }
    }
    /// Bytes printed in the largest exact binary suffix (`32Gi`, `512Mi`), as kubelets report.
    pub fn from_bytes_binary(b: i64) -> Quantity {
        let mut text = b.to_string();
        for (suf, sh) in [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] {
            if b != 0 && b % (1i64 << sh) == 0 {
                text = format!("{}{suf}", b >> sh);
                break;
            }
        }
        Quantity { milli: b as i128 * 1000, text }
    }

    /// `MilliValue()`: thousandths, rounded up; saturates at i64.
    pub fn milli_value(&self) -> i64 {
        self.milli.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
    /// `Value()`: whole units, rounded up.
    pub fn value(&self) -> i64 {
        let v = if self.milli >= 0 { (self.milli + 999) / 1000 } else { self.milli / 1000 };
        v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quantity such as 500m, 1.5, 512Mi or 1G")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(|e| E::custom(format!("quantity {e}")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity::from_units(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::from_units(v as i64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(|e| E::custom(format!("quantity {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> i64 {
        Quantity::parse(s).unwrap().milli_value()
    }

    #[test]
    fn decimal_counts_print_as_decimal_si() {
        assert_eq!(Quantity::from_units_decimal(209274).to_string(), "209274");
        assert_eq!(Quantity::from_units_decimal(210000).to_string(), "210k");
        assert_eq!(Quantity::from_units_decimal(4_000_000).to_string(), "4M");
        assert_eq!(Quantity::from_units_decimal(0).to_string(), "0");
    }

    #[test]
    fn parses_upstream_forms() {
        assert_eq!(m("100m"), 100);
        assert_eq!(m("1.5"), 1500);
        assert_eq!(m("512Mi"), 512 * 1024 * 1024 * 1000);
        assert_eq!(m("1G"), 1_000_000_000_000);
        assert_eq!(m("2e3"), 2_000_000);
        assert_eq!(m("1E3"), 1_000_000);
        assert_eq!(m("0.1"), 100);
        assert_eq!(m("1n"), 1); // rounds up
        assert_eq!(Quantity::parse("8").unwrap().value(), 8);
        assert_eq!(Quantity::parse("32Gi").unwrap().value(), 32 << 30);
    }

    #[test]
    fn rejects_garbage_with_upstream_text() {
        for bad in ["1Gx", "", "abc", "1..5", "Mi", "1 Gi"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Quantity::parse("1Gx").unwrap_err().reason, ERR_FORMAT_WRONG);
    }

    #[test]
    fn binary_display() {
        assert_eq!(Quantity::from_bytes_binary(32 << 30).as_str(), "32Gi");
        assert_eq!(Quantity::from_milli(500).as_str(), "500m");
        assert_eq!(Quantity::from_milli(8000).as_str(), "8");
    }
}
