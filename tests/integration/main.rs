//! Integration tests: rrun against the real peers, one module per area.

mod crypto_schemes;
mod registry;
mod registry_util;
mod runtime_root;
mod runtime_util;
mod store;
mod store_util;
mod trust_cli;
mod trust_notary;
mod trust_tuf;
mod trust_util;
mod unpack_root;
