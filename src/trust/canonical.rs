//! Canonical JSON: the exact bytes that TUF and Notary sign (sorted keys, no whitespace, only
//! `\\` and `"` escaped, integers only).

use serde::Serialize;
use serde_json::Value;

use super::error::{Result, TrustError};

/// Canonical JSON bytes of `value`, as Notary's `MarshalCanonical` and securesystemslib's
/// `encode_canonical` produce them. Floats are refused.
///
/// `olpc-cjson` normalises strings to NFC; Notary does not. Metadata with non-NFC text would
/// then fail verification (fail closed), never pass wrongly.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .map_err(|e| TrustError::meta("signed", format!("cannot canonicalise: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_and_escapes_only_quote_and_backslash() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":"x\"y\\z/é\n","c":[true,null]}"#).unwrap();
        let got = canonical_json(&v).unwrap();
        assert_eq!(
            got,
            "{\"a\":\"x\\\"y\\\\z/é\n\",\"b\":1,\"c\":[true,null]}".as_bytes()
        );
    }

    #[test]
    fn refuses_floats() {
        let v: Value = serde_json::from_str(r#"{"a":1.5}"#).unwrap();
        assert!(canonical_json(&v).is_err());
    }
}
