//! Integration tests: rrun against the real peers (skopeo, umoci, notary), one module per area.
//!
//! Fixtures (keys, busybox-static images) are built once per test process by `util`; a missing
//! peer tool is a failure that says to run `make deps`, never a skip.

mod cli;
mod skopeo_interop;
mod trust_notary;
mod trust_tuf;
mod trust_util;
mod util;
