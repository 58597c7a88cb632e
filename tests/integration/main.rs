//! Integration tests: rrun against the real peers (skopeo), one module per area.

mod crypto_schemes;
mod trust_notary;
mod trust_tuf;
mod trust_util;
