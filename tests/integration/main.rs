//! Integration tests: rrun against the real peers (skopeo), one module per area.

mod registry;
mod registry_util;
