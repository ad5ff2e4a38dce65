//! ConfigMap and Secret (core/v1): what pods read through volumes and environment
//! variables (the kubelet's volume manager and `makeEnvironmentVariables`).
//!
//! A Secret's `data` keeps the base64 text the API carries, so that a manifest round-trips
//! unchanged; `stringData` is write-only, merged into `data` by the API server
//! (pkg/apis/core/v1/conversion.go) and never stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::meta::ObjectMeta;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Keys to base64 text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "base64_values")]
    pub binary_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl ConfigMap {
    /// Does it have this key, in `data` or `binaryData`?
    pub fn has_key(&self, key: &str) -> bool {
        self.data.contains_key(key) || self.binary_data.contains_key(key)
    }
}

/// The root CA bundle's ConfigMap, which kube-controller-manager's root-ca-cert-publisher
/// writes in every namespace (rootcacertpublisher RootCACertConfigMapName).
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

/// `v1.SecretTypeOpaque`, the type the API server defaults.
pub const SECRET_TYPE_OPAQUE: &str = "Opaque";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Keys to base64 text, as the API carries them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "base64_values")]
    pub data: BTreeMap<String, String>,
    /// Write-only plain text, merged into `data` on create and update.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl Secret {
    /// SetDefaults_Secret and the stringData conversion: the type defaults to Opaque and
    /// each stringData entry replaces the data entry of its key, base64-encoded.
    pub fn apply_defaults(&mut self) {
        if self.type_.is_empty() {
            self.type_ = SECRET_TYPE_OPAQUE.into();
        }
        for (k, v) in std::mem::take(&mut self.string_data) {
            self.data.insert(k, base64_encode(v.as_bytes()));
        }
    }
}

/// A map whose values must be base64 (`[]byte` in the API).
fn base64_values<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = BTreeMap::<String, String>::deserialize(d)?;
    if let Some(k) = m.iter().find(|(_, v)| base64_decoded_len(v).is_none()).map(|(k, _)| k) {
        return Err(serde::de::Error::custom(format!(
            "the value of {k:?} is not base64: encode it (echo -n value | base64), or give it as plain text under stringData"
        )));
    }
    Ok(m)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (Go's `base64.StdEncoding`, which `[]byte` fields use in
/// JSON).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The number of bytes standard base64 `text` decodes to; None when it is not valid
/// padded base64 (line breaks aside).
pub fn base64_decoded_len(text: &str) -> Option<usize> {
    // Go's decoder skips line breaks.
    let bytes: Vec<u8> = text.bytes().filter(|c| !matches!(c, b'\r' | b'\n')).collect();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let padding = bytes.iter().rev().take_while(|c| **c == b'=').count();
    let body = &bytes[..bytes.len() - padding];
    if padding > 2 || !body.iter().all(|c| ALPHABET.contains(c)) {
        return None;
    }
    Some(bytes.len() / 4 * 3 - padding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_go_encodes_it() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"admin"), "YWRtaW4=");
        assert_eq!(base64_decoded_len("YWRtaW4="), Some(5));
        assert_eq!(base64_decoded_len("Zm9v"), Some(3));
        assert_eq!(base64_decoded_len("Zg=="), Some(1));
        assert_eq!(base64_decoded_len("Zm9v\nZm9v\n"), Some(6));
        assert_eq!(base64_decoded_len("Zm9"), None);
        assert_eq!(base64_decoded_len("Zm!v"), None);
        assert_eq!(base64_decoded_len("Z=9v"), None);
    }

    #[test]
    fn string_data_is_merged_into_data() {
        let mut s = Secret::default();
        s.data.insert("user".into(), base64_encode(b"old"));
        s.string_data.insert("user".into(), "admin".into());
        s.apply_defaults();
        assert_eq!(s.type_, "Opaque");
        assert_eq!(s.data["user"], "YWRtaW4=");
        assert!(s.string_data.is_empty());
    }
}
