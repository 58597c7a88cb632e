//! Integration tests: rrun against the real peers (skopeo), one module per area.

mod trust_cli;
mod trust_notary;
mod trust_tuf;
mod trust_util;
