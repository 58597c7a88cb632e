//! Integration tests: rrun against the real peers (skopeo), one module per area.

mod runtime_root;
mod runtime_util;
