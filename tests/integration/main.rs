//! Integration tests: rrun against the real peers (skopeo, umoci), one module per area.
//!
//! Fixtures (keys, busybox-static images) are built once per test process by `util`; a missing
//! peer tool is a failure that says to run `make deps`, never a skip.

mod cli;
mod skopeo_interop;
mod util;
