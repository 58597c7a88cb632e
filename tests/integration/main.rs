//! Integration tests: rrun against the real peers (skopeo, umoci, gpg, notary, python-tuf,
//! docker-registry, runc), one module per area.
//!
//! Fixtures (keys, busybox-static images) are built once per test process by `util`; a missing
//! peer tool is a failure that says to run `make deps`, never a skip.

mod cli;
mod containerd_root;
mod containerd_util;
mod crypto_keyprovider;
mod crypto_pkcs11;
mod crypto_schemes;
mod registry;
mod registry_util;
mod run_image_root;
mod run_image_util;
mod runtime_root;
mod runtime_util;
mod skopeo_interop;
mod store;
mod store_util;
mod trust_cli;
mod trust_notary;
mod trust_pull;
mod trust_tuf;
mod trust_util;
mod unpack_root;
mod util;
