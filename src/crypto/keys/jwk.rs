//! JSON Web Keys (RFC 7517/7518): RSA and EC P-256/P-384/P-521, private or public, as go-jose's
//! `JSONWebKey` reads them for ocicrypt. A single-key JWK set is accepted too.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{kind, public, JWE_EC_ALGS, JWE_RSA_ALGS};
use crate::crypto::error::{CryptoError, Result};

/// The JWK members rrun reads; every string is wiped when the value is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop, Default)]
struct Jwk {
    kty: Option<String>,
    crv: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    x: Option<String>,
    y: Option<String>,
    keys: Option<Vec<Jwk>>,
}

/// The key type of a JWK, once checked.
enum Kty {
    Rsa,
    Ec(EcGroup),
}

/// A private JWK; its `alg` is kept as written (go-jose ignores it when decrypting).
pub(super) fn parse_private(data: &[u8], source: &Path) -> Result<(PKey<Private>, Option<String>)> {
    let doc = read(data, source, "expected PEM, DER or JWK")?;
    let jwk = single(&doc, source)?;
    let kty = key_type(jwk, source)?;
    if jwk.d.is_none() {
        return Err(CryptoError::PublicKeyGiven {
            path: source.into(),
        });
    }
    let pkey = match kty {
        Kty::Rsa => PKey::from_rsa(rsa_private(jwk, source)?)?,
        Kty::Ec(group) => PKey::from_ec_key(ec_private(jwk, &group, source)?)?,
    };
    Ok((pkey, jwk.alg.clone()))
}

/// A public JWK; an `alg` must be a JWE key-management algorithm for its key type
/// (ocicrypt commit 4b2101a "jwe: Support overriding the algorithm when supplying a JWK").
pub(super) fn parse_public(data: &[u8], source: &Path) -> Result<(PKey<Public>, Option<String>)> {
    let doc = read(
        data,
        source,
        "expected PEM, DER, JWK or an x509 certificate",
    )?;
    let jwk = single(&doc, source)?;
    let kty = key_type(jwk, source)?;
    if jwk.d.is_some() {
        return Err(public::private_given(source));
    }
    let allowed: &[&str] = match kty {
        Kty::Rsa => &JWE_RSA_ALGS,
        Kty::Ec(_) => &JWE_EC_ALGS,
    };
    if let Some(alg) = &jwk.alg {
        if !allowed.contains(&alg.as_str()) {
            return Err(key_error(
                source,
                &format!(
                    "JWK alg {alg:?} cannot wrap layer keys with a {} key: use one of {}",
                    jwk.kty.as_deref().unwrap_or_default(),
                    allowed.join(", ")
                ),
            ));
        }
    }
    let pkey = match kty {
        Kty::Rsa => PKey::from_rsa(Rsa::from_public_components(
            number(&jwk.n, "n", source)?,
            number(&jwk.e, "e", source)?,
        )?)?,
        Kty::Ec(group) => {
            let (x, y) = coordinates(jwk, &group, source)?;
            let ec = EcKey::from_public_key_affine_coordinates(&group, &x, &y)
                .map_err(|_| key_error(source, "JWK x, y is not a point on its curve"))?;
            ec.check_key()
                .map_err(|_| key_error(source, "JWK x, y is not a valid public key"))?;
            PKey::from_ec_key(ec)?
        }
    };
    Ok((pkey, jwk.alg.clone()))
}

/// Parse the JSON without ever echoing its contents (serde messages may quote values).
fn read(data: &[u8], source: &Path, expected: &str) -> Result<Jwk> {
    serde_json::from_slice::<Jwk>(data).map_err(|e| {
        key_error(
            source,
            &format!(
                "not a valid JWK: bad JSON or member types at line {} column {}; {expected}",
                e.line(),
                e.column()
            ),
        )
    })
}

/// The key itself, or the only key of a JWK set.
fn single<'a>(doc: &'a Jwk, source: &Path) -> Result<&'a Jwk> {
    match (&doc.kty, &doc.keys) {
        (None, Some(keys)) if keys.len() == 1 => Ok(&keys[0]),
        (None, Some(keys)) => Err(key_error(
            source,
            &format!(
                "is a JWK set with {} keys; give a file holding a single JWK",
                keys.len()
            ),
        )),
        _ => Ok(doc),
    }
}

fn key_type(jwk: &Jwk, source: &Path) -> Result<Kty> {
    match jwk.kty.as_deref() {
        Some("RSA") => Ok(Kty::Rsa),
        Some("EC") => {
            let crv = jwk.crv.as_deref().unwrap_or_default();
            let Some(nid) = kind::curve_nid(crv) else {
                return Err(kind::unsupported(&format!("EC {crv:?}"), source));
            };
            Ok(Kty::Ec(EcGroup::from_curve_name(nid)?))
        }
        Some("OKP") => Err(kind::unsupported(
            jwk.crv.as_deref().unwrap_or("OKP"),
            source,
        )),
        Some("oct") => Err(key_error(
            source,
            "is a symmetric (oct) JWK; JWE recipients need an RSA or EC key pair",
        )),
        Some(other) => Err(kind::unsupported(&format!("JWK kty {other:?}"), source)),
        None => Err(key_error(
            source,
            "not a JWK: the JSON has no \"kty\" member",
        )),
    }
}

fn rsa_private(jwk: &Jwk, source: &Path) -> Result<Rsa<Private>> {
    let n = number(&jwk.n, "n", source)?;
    let e = number(&jwk.e, "e", source)?;
    let d = number(&jwk.d, "d", source)?;
    // go-jose requires the primes; the CRT values are computed when absent, as it does.
    let p = number(&jwk.p, "p", source)?;
    let q = number(&jwk.q, "q", source)?;
    let mut ctx = BigNumContext::new_secure()?;
    let one = BigNum::from_u32(1)?;
    let crt = |given: &Option<String>, name: &str, prime: &BigNum| -> Result<BigNum> {
        if given.is_some() {
            return number(given, name, source);
        }
        let mut prime_less_one = BigNum::new_secure()?;
        prime_less_one.checked_sub(prime, &one)?;
        let mut out = BigNum::new_secure()?;
        let mut ctx = BigNumContext::new_secure()?;
        out.nnmod(&d, &prime_less_one, &mut ctx)?;
        Ok(out)
    };
    let dp = crt(&jwk.dp, "dp", &p)?;
    let dq = crt(&jwk.dq, "dq", &q)?;
    let qi = match &jwk.qi {
        Some(_) => number(&jwk.qi, "qi", source)?,
        None => {
            let mut out = BigNum::new_secure()?;
            out.mod_inverse(&q, &p, &mut ctx)
                .map_err(|_| key_error(source, "JWK p and q are not coprime"))?;
            out
        }
    };
    let rsa = Rsa::from_private_components(n, e, d, p, q, dp, dq, qi)
        .map_err(|_| key_error(source, "JWK RSA members do not form a key"))?;
    match rsa.check_key() {
        Ok(true) => Ok(rsa),
        _ => Err(key_error(
            source,
            "JWK RSA members are inconsistent (n, e, d, p, q do not belong together)",
        )),
    }
}

fn ec_private(jwk: &Jwk, group: &EcGroup, source: &Path) -> Result<EcKey<Private>> {
    let (x, y) = coordinates(jwk, group, source)?;
    let d = number(&jwk.d, "d", source)?;
    let point = EcKey::from_public_key_affine_coordinates(group, &x, &y)
        .map_err(|_| key_error(source, "JWK x, y is not a point on its curve"))?;
    let ec = EcKey::from_private_components(group, &d, point.public_key())
        .map_err(|_| key_error(source, "JWK EC members do not form a key"))?;
    ec.check_key().map_err(|_| {
        key_error(
            source,
            "JWK EC members are inconsistent (d does not match x, y)",
        )
    })?;
    Ok(ec)
}

/// `x` and `y`, no longer than the curve's field size.
fn coordinates(jwk: &Jwk, group: &EcGroup, source: &Path) -> Result<(BigNum, BigNum)> {
    let size = group.degree().div_ceil(8) as usize;
    let coordinate = |value: &Option<String>, name: &str| -> Result<BigNum> {
        let bytes = decode(value, name, source)?;
        if bytes.len() > size {
            return Err(key_error(
                source,
                &format!("JWK member {name:?} is longer than the curve's {size} bytes"),
            ));
        }
        Ok(BigNum::from_slice(&bytes)?)
    };
    Ok((coordinate(&jwk.x, "x")?, coordinate(&jwk.y, "y")?))
}

/// A base64url big-endian unsigned integer member, held in secure memory.
fn number(value: &Option<String>, name: &str, source: &Path) -> Result<BigNum> {
    let bytes = decode(value, name, source)?;
    let mut n = BigNum::new_secure()?;
    n.copy_from_slice(&bytes)?;
    Ok(n)
}

/// Decode a base64url member; trailing `=` padding is tolerated.
fn decode(value: &Option<String>, name: &str, source: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let Some(text) = value else {
        return Err(key_error(
            source,
            &format!("JWK member {name:?} is missing"),
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| key_error(source, &format!("JWK member {name:?} is not base64url")))?;
    let bytes = Zeroizing::new(bytes);
    if bytes.is_empty() {
        return Err(key_error(source, &format!("JWK member {name:?} is empty")));
    }
    Ok(bytes)
}

fn key_error(source: &Path, reason: &str) -> CryptoError {
    CryptoError::Key {
        path: source.into(),
        reason: reason.into(),
    }
}
